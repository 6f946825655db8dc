//! Turning a payload into something a person can read: the binary formats of the
//! [`decoders`](crate::engine::decoders) registry (Avro, CBOR, compressed, …) as JSON, JSON
//! pretty-printed, XML and text as they are, base64 recognised and decoded, anything
//! else as a hex dump (with the reason when a decoder recognised it but failed) — with
//! a size cap above which only a prefix is shown, and a note saying what was done.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::engine::decoders::{Attempt, Registry};

/// What a payload turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Valid JSON (shown pretty-printed).
    Json,
    /// Starts like XML.
    Xml,
    /// UTF-8 text (including JSON that does not parse: see the note).
    Text,
    /// Not UTF-8 (shown as a hex dump).
    Binary,
    /// Null or empty.
    Empty,
}

/// A payload made readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// What it is.
    pub kind: Kind,
    /// The text to show.
    pub text: String,
    /// True when only a prefix is shown.
    pub truncated: bool,
    /// One line about what was done (`not valid JSON: …`, `base64 of 120 bytes`, …).
    pub note: Option<String>,
    /// The binary format it was decoded from (`Avro (schema 17, subject trades-value)`),
    /// by the [`decoders`](crate::engine::decoders) registry.
    pub format: Option<String>,
}

/// Payloads larger than this show a prefix only, unless asked otherwise.
pub const DEFAULT_CAP: usize = 256 * 1024;

/// Decodes `bytes` with `decoders`, a payload of a letter from source `topic` (which
/// may map a schema), showing at most `cap` bytes of it.
pub fn decode(
    decoders: &Registry,
    bytes: Option<&[u8]>,
    topic: Option<&str>,
    cap: usize,
) -> Decoded {
    let Some(all) = bytes.filter(|b| !b.is_empty()) else {
        let text = if bytes.is_some() { "(empty)" } else { "(null)" };
        return Decoded {
            kind: Kind::Empty,
            text: text.into(),
            truncated: false,
            note: None,
            format: None,
        };
    };
    match decoders.decode(all, topic) {
        Attempt::Decoded(s) => {
            return Decoded {
                kind: Kind::Json,
                text: serde_json::to_string_pretty(&s.value).unwrap_or_default(),
                truncated: false,
                note: None,
                format: Some(s.format),
            };
        }
        Attempt::Failed(why) => {
            let shown = &all[..all.len().min(cap)];
            return Decoded {
                kind: Kind::Binary,
                text: hex_dump(shown),
                truncated: all.len() > cap,
                note: Some(why.message),
                format: None,
            };
        }
        Attempt::NotMine => {}
    }
    let truncated = all.len() > cap;
    let shown = &all[..all.len().min(cap)];
    let cap_note =
        truncated.then(|| format!("showing the first {} of {} bytes", shown.len(), all.len()));
    let with_cap = |note: Option<String>| match (&cap_note, note) {
        (Some(c), Some(n)) => Some(format!("{n}; {c}")),
        (Some(c), None) => Some(c.clone()),
        (None, n) => n,
    };
    // A cut can split a UTF-8 character: accept a valid prefix.
    let text = match std::str::from_utf8(shown) {
        Ok(t) => Some(t),
        Err(e) if truncated && e.valid_up_to() + 4 > shown.len() => {
            std::str::from_utf8(&shown[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    };
    let Some(text) = text else {
        return Decoded {
            kind: Kind::Binary,
            text: hex_dump(shown),
            truncated,
            note: with_cap(None),
            format: None,
        };
    };
    let trimmed = text.trim_start();
    if !truncated && (trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => Decoded {
                kind: Kind::Json,
                text: serde_json::to_string_pretty(&v).unwrap_or_else(|_| text.to_string()),
                truncated,
                note: None,
                format: None,
            },
            Err(e) => Decoded {
                kind: Kind::Text,
                text: text.to_string(),
                truncated,
                note: Some(format!("not valid JSON: {e}")),
                format: None,
            },
        };
    }
    if trimmed.starts_with('<') {
        return Decoded {
            kind: Kind::Xml,
            text: text.to_string(),
            truncated,
            note: with_cap(None),
            format: None,
        };
    }
    if let Some(inner) = base64_payload(text) {
        let mut d = decode(decoders, Some(&inner), topic, cap);
        let what = format!("base64 of {} bytes, decoded", inner.len());
        d.note = Some(match d.note {
            Some(n) => format!("{what}; {n}"),
            None => what,
        });
        return d;
    }
    Decoded {
        kind: Kind::Text,
        text: text.to_string(),
        truncated,
        note: with_cap(None),
        format: None,
    }
}

/// The decoded bytes when `text` is plausibly base64 (16+ characters, only the base64
/// alphabet, length a multiple of 4, and decodes).
fn base64_payload(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    let alphabet = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
    if t.len() < 16 || !t.len().is_multiple_of(4) || !t.chars().all(alphabet) {
        return None;
    }
    // Plain words and numbers are valid base64 too: require some mix.
    let has_digit_or_symbol = t
        .chars()
        .any(|c| c.is_ascii_digit() || c == '+' || c == '/' || c == '=');
    let has_upper = t.chars().any(|c| c.is_ascii_uppercase());
    let has_lower = t.chars().any(|c| c.is_ascii_lowercase());
    if !(has_digit_or_symbol && has_upper && has_lower) {
        return None;
    }
    STANDARD.decode(t).ok()
}

/// `offset  hex bytes  |ascii|`, 16 bytes a line.
pub fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4 + 16);
    for (i, chunk) in bytes.chunks(16).enumerate() {
        out.push_str(&format!("{:08x}  ", i * 16));
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => out.push_str(&format!("{b:02x} ")),
                None => out.push_str("   "),
            }
            if j == 7 {
                out.push(' ');
            }
        }
        out.push_str(" |");
        out.extend(chunk.iter().map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        }));
        out.push_str("|\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_pretty_printed() {
        let d = decode(
            &crate::engine::decoders::builtin(),
            Some(br#"{"a":1,"b":[true,null]}"#),
            None,
            DEFAULT_CAP,
        );
        assert_eq!(d.kind, Kind::Json);
        assert_eq!(
            d.text,
            "{\n  \"a\": 1,\n  \"b\": [\n    true,\n    null\n  ]\n}"
        );
        assert_eq!(d.note, None);
    }

    #[test]
    fn broken_json_is_text_with_the_parse_error() {
        let d = decode(
            &crate::engine::decoders::builtin(),
            Some(br#"{"price": 12.5"#),
            None,
            DEFAULT_CAP,
        );
        assert_eq!(d.kind, Kind::Text);
        assert_eq!(d.text, r#"{"price": 12.5"#);
        assert!(
            d.note
                .unwrap()
                .starts_with("not valid JSON: EOF while parsing")
        );
    }

    #[test]
    fn binary_becomes_a_hex_dump() {
        let d = decode(
            &crate::engine::decoders::builtin(),
            Some(&[0xde, 0xad, 0xbe, 0xef, b'A']),
            None,
            DEFAULT_CAP,
        );
        assert_eq!(d.kind, Kind::Binary);
        let full = hex_dump(&[b'a'; 16]);
        assert_eq!(
            full,
            "00000000  61 61 61 61 61 61 61 61  61 61 61 61 61 61 61 61  |aaaaaaaaaaaaaaaa|\n"
        );
        assert_eq!(
            d.text.len(),
            full.len() - 11,
            "short lines keep the ascii column aligned"
        );
        assert!(d.text.starts_with("00000000  de ad be ef 41 "));
        assert!(d.text.ends_with("  |....A|\n"));
    }

    #[test]
    fn base64_is_recognised_and_decoded() {
        let enc = STANDARD.encode(br#"{"wrapped": true}"#);
        let d = decode(
            &crate::engine::decoders::builtin(),
            Some(enc.as_bytes()),
            None,
            DEFAULT_CAP,
        );
        assert_eq!(d.kind, Kind::Json);
        assert!(d.text.contains("\"wrapped\": true"));
        assert_eq!(d.note.as_deref(), Some("base64 of 17 bytes, decoded"));
        let plain = decode(
            &crate::engine::decoders::builtin(),
            Some(b"HelloWorldHelloWorld"),
            None,
            DEFAULT_CAP,
        );
        assert_eq!(plain.kind, Kind::Text, "a word is not base64");
    }

    #[test]
    fn xml_text_and_empty() {
        assert_eq!(
            decode(
                &crate::engine::decoders::builtin(),
                Some(b"<trade id='1'/>"),
                None,
                DEFAULT_CAP
            )
            .kind,
            Kind::Xml
        );
        assert_eq!(
            decode(
                &crate::engine::decoders::builtin(),
                Some(b"plain words"),
                None,
                DEFAULT_CAP
            )
            .kind,
            Kind::Text
        );
        assert_eq!(
            decode(&crate::engine::decoders::builtin(), None, None, DEFAULT_CAP).text,
            "(null)"
        );
        assert_eq!(
            decode(
                &crate::engine::decoders::builtin(),
                Some(b""),
                None,
                DEFAULT_CAP
            )
            .text,
            "(empty)"
        );
    }

    #[test]
    fn a_huge_payload_shows_a_prefix_and_says_so() {
        let big = format!("{{\"x\": \"{}é\"}}", "a".repeat(100));
        let d = decode(
            &crate::engine::decoders::builtin(),
            Some(big.as_bytes()),
            None,
            108,
        );
        assert!(d.truncated);
        assert_eq!(d.text.len(), 107, "the cut does not split é");
        assert!(d.note.unwrap().contains("showing the first 108 of"));
    }
}
