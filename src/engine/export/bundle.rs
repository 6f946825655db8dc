//! Letters as a file (the incident bundle): a first line, the [`Manifest`] — where the
//! letters come from, when, who, the filter, and the ledger history of the letters —
//! then one letter per line in the JSON-lines schema of `list` (keys, values and
//! headers byte-exact: UTF-8 text or base64). [`parse_letter`] reads a line back.

use serde::{Deserialize, Serialize};

use crate::engine::model::encoding::EncodedBytes;
use crate::engine::model::ledger::LedgerEntry;
use crate::engine::model::letter::{DeadLetter, Headers, LetterId};

/// Marks a file as a morgue export, with the format's version.
pub const FORMAT: &str = "morgue-export/1";

/// The first line of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The DLQ the letters were exported from (`kafka://brokers/topic`, `mongodb://…`).
    pub dlq: String,
    /// When, RFC 3339.
    pub exported_at: String,
    /// Who, `user@host`.
    pub by: String,
    /// The filter that selected the letters, if any.
    pub filter: Option<String>,
    /// How many letters follow.
    pub letters: u64,
    /// The ledger entries of the exported letters (their states and replay history).
    pub ledger: Vec<LedgerEntry>,
    /// What was redacted, when anything was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<RedactionNote>,
    /// The transform the values were made with (`export --transform`), as the ledger
    /// keeps it; letters it failed for are not in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
}

/// What an export redacted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedactionNote {
    /// The spec (`pii,$.card.number,header:authorization`).
    pub spec: String,
    /// One line per letter part that could not be kept (raw bytes dropped).
    pub notes: Vec<String>,
}

impl Manifest {
    /// Reads a manifest line; the error says what is wrong with it.
    pub fn parse(line: &str) -> Result<Manifest, String> {
        let m: Manifest = serde_json::from_str(line)
            .map_err(|e| format!("not a morgue export (first line: {e})"))?;
        if m.format != FORMAT {
            return Err(format!(
                "export format '{}' is not '{FORMAT}' (written by another morgue version?)",
                m.format
            ));
        }
        Ok(m)
    }
}

/// A letter line as written by `list -o json` / `export`.
#[derive(Debug, Deserialize)]
struct LetterLine {
    id: Option<String>,
    timestamp: Option<String>,
    key: Option<EncodedBytes>,
    value: Option<EncodedBytes>,
    #[serde(default)]
    headers: Vec<HeaderLine>,
}

#[derive(Debug, Deserialize)]
struct HeaderLine {
    name: String,
    value: Option<EncodedBytes>,
}

/// The letter of one exported line, bytes restored exactly; source and failure are
/// decoded again from its headers.
pub fn parse_letter(line: &str) -> Result<DeadLetter, String> {
    let l: LetterLine = serde_json::from_str(line).map_err(|e| format!("not a letter: {e}"))?;
    let bytes = |b: Option<EncodedBytes>| b.map(|b| b.to_bytes()).transpose();
    let mut headers = Headers::default();
    for h in l.headers {
        headers.0.push(crate::engine::model::letter::Header {
            name: h.name,
            value: bytes(h.value)?,
        });
    }
    let id = match l.id {
        Some(id) => Some(id.parse::<LetterId>().map_err(|e| e.to_string())?),
        None => None,
    };
    let ts = match l.timestamp {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(&t)
                .map_err(|e| format!("timestamp '{t}': {e}"))?
                .timestamp_millis(),
        ),
        None => None,
    };
    Ok(DeadLetter::from_record(
        id,
        ts,
        bytes(l.key)?,
        bytes(l.value)?,
        headers,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::export::json::LetterJson;

    #[test]
    fn a_letter_survives_the_file_byte_for_byte() {
        let mut h = Headers::default();
        h.push("kafka_dlt-original-offset", 17i64.to_be_bytes());
        h.0.push(crate::engine::model::letter::Header {
            name: "nothing".into(),
            value: None,
        });
        let l = DeadLetter::from_record(
            Some(LetterId::Kafka {
                partition: 2,
                offset: 9,
            }),
            Some(1_732_700_000_123),
            Some(vec![0xff, 0x00, b'k']),
            Some(b"{\"price\": -1}".to_vec()),
            h,
        );
        let line = serde_json::to_string(&LetterJson::of(&l, &crate::engine::decoders::builtin()))
            .unwrap();
        let back = parse_letter(&line).unwrap();
        assert_eq!(back, l);
        assert!(
            parse_letter("{\"id\": \"x y\"}")
                .unwrap_err()
                .contains("x y")
        );
        let e = Manifest::parse(r#"{"format":"other/9","dlq":"","exported_at":"","by":"","filter":null,"letters":0,"ledger":[]}"#)
            .unwrap_err();
        assert!(e.contains("'other/9'"), "{e}");
    }
}
