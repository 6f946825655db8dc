//! Redaction for letters that leave the cluster (`export --redact`, and the TUI's copy
//! when a profile makes it mandatory). A spec is a comma-separated list of:
//! `$.json.path` (a field of the value, decoded formats included), `header:NAME`,
//! `/regex/` (on every string of the value and key), `pii` (e-mail addresses and card
//! numbers), and `hash`. Masked values keep their type and length class — a string
//! becomes as many `*`, a number keeps its digit count (`4711` → `9999`) — or, with
//! `hash`, become `sha256:` and 16 hex digits of their hash, so equal values stay equal
//! across letters. A value in a binary format is redacted decoded and encoded back;
//! when it cannot be, its raw bytes are dropped and a note says so.

use regex::Regex;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::engine::decoders::{Attempt, Registry, encode::reencode};
use crate::engine::model::letter::DeadLetter;

/// E-mail addresses.
const EMAIL: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}";
/// Card numbers: 13 to 19 digits, in groups separated by spaces or dashes.
const CARD: &str = r"\b(?:\d[ -]?){12,18}\d\b";

/// The `pii` preset, compiled once.
static PII: std::sync::LazyLock<Vec<Regex>> = std::sync::LazyLock::new(|| {
    [EMAIL, CARD]
        .iter()
        .filter_map(|p| Regex::new(p).ok())
        .collect()
});

/// What to redact, parsed from a spec.
#[derive(Debug, Clone)]
pub struct Redaction {
    spec: String,
    paths: Vec<Vec<String>>,
    headers: Vec<String>,
    patterns: Vec<Regex>,
    hash: bool,
}

impl Redaction {
    /// Parses `spec`; the error quotes the item it cannot read.
    pub fn parse(spec: &str) -> Result<Redaction, String> {
        let mut r = Redaction {
            spec: spec.to_string(),
            paths: Vec::new(),
            headers: Vec::new(),
            patterns: Vec::new(),
            hash: false,
        };
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "pii" {
                r.patterns.extend(PII.iter().cloned());
            } else if item == "hash" {
                r.hash = true;
            } else if let Some(name) = item.strip_prefix("header:") {
                r.headers.push(name.to_ascii_lowercase());
            } else if let Some(path) = item.strip_prefix("$.") {
                r.paths.push(path.split('.').map(str::to_string).collect());
            } else if item.len() > 2 && item.starts_with('/') && item.ends_with('/') {
                let re = Regex::new(&item[1..item.len() - 1])
                    .map_err(|e| format!("redaction '{item}': {e}"))?;
                r.patterns.push(re);
            } else {
                return Err(format!(
                    "redaction '{item}': use $.path, header:NAME, /regex/, pii or hash"
                ));
            }
        }
        Ok(r)
    }

    /// The spec, as given (for the manifest).
    pub fn spec(&self) -> &str {
        &self.spec
    }

    fn mask_text(&self, s: &str) -> String {
        if self.hash {
            let h = Sha256::digest(s.as_bytes());
            format!("sha256:{}", hex::encode(&h[..8]))
        } else {
            "*".repeat(s.chars().count())
        }
    }

    fn mask(&self, v: &Json) -> Json {
        match v {
            Json::String(s) => Json::String(self.mask_text(s)),
            Json::Number(n) if self.hash => Json::String(self.mask_text(&n.to_string())),
            Json::Number(n) => {
                let nines: String = n
                    .to_string()
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '9' } else { c })
                    .collect();
                serde_json::from_str(&nines).unwrap_or(Json::Null)
            }
            Json::Array(a) => Json::Array(a.iter().map(|x| self.mask(x)).collect()),
            Json::Object(o) => {
                Json::Object(o.iter().map(|(k, x)| (k.clone(), self.mask(x))).collect())
            }
            other => other.clone(),
        }
    }

    fn patterns_in(&self, s: &str) -> String {
        let mut out = s.to_string();
        for re in &self.patterns {
            let card = re.as_str() == CARD;
            out = re
                .replace_all(&out, |c: &regex::Captures<'_>| {
                    // A run of digits is a card number only when its check digit says so.
                    if card && !luhn(&c[0]) {
                        c[0].to_string()
                    } else {
                        self.mask_text(&c[0])
                    }
                })
                .into_owned();
        }
        out
    }

    /// `v` with the paths masked and the patterns masked in every string.
    pub fn value(&self, v: &Json) -> Json {
        let mut out = self.strings(v);
        for p in &self.paths {
            if let Some(slot) = walk(&mut out, p) {
                *slot = self.mask(slot);
            }
        }
        out
    }

    fn strings(&self, v: &Json) -> Json {
        match v {
            Json::String(s) if !self.patterns.is_empty() => Json::String(self.patterns_in(s)),
            Json::Array(a) => Json::Array(a.iter().map(|x| self.strings(x)).collect()),
            Json::Object(o) => Json::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), self.strings(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Redacts `l` in place: named headers, the key's text, and the value (JSON or
    /// text, or a binary format decoded and encoded back). Returns one note per thing
    /// that could not be kept (`value of 0:7 dropped: …`).
    pub fn letter(&self, l: &mut DeadLetter, reg: &Registry) -> Vec<String> {
        let mut notes = Vec::new();
        let id = l.id.as_ref().map(ToString::to_string).unwrap_or_default();
        for h in &mut l.headers.0 {
            let Some(v) = &h.value else {
                continue;
            };
            if self.headers.contains(&h.name.to_ascii_lowercase()) {
                h.value = Some(self.mask_text(&String::from_utf8_lossy(v)).into_bytes());
            } else if let Ok(t) = std::str::from_utf8(v)
                && !self.patterns.is_empty()
            {
                // Exception messages and stack traces quote values too.
                h.value = Some(self.patterns_in(t).into_bytes());
            }
        }
        // The source and failure shown are read again from the redacted headers.
        (l.source, l.failure) = crate::engine::model::conventions::decode(&l.headers);
        if let Some(k) = l.key.as_deref().and_then(|k| std::str::from_utf8(k).ok()) {
            l.key = Some(self.patterns_in(k).into_bytes());
        }
        let Some(raw) = l.value.clone() else {
            return notes;
        };
        if let Ok(j) = serde_json::from_slice::<Json>(&raw) {
            l.value = serde_json::to_vec(&self.value(&j)).ok();
        } else if let Attempt::Decoded(s) = reg.decode(&raw, l.source.topic.as_deref()) {
            match reencode(
                &raw,
                &self.value(&s.value),
                reg,
                l.source.topic.as_deref(),
                false,
            ) {
                Ok(bytes) => l.value = Some(bytes),
                Err(e) => {
                    l.value = None;
                    notes.push(format!("value of {id} dropped: its {} could not be encoded back after redaction: {e}", s.format));
                }
            }
        } else if let Ok(t) = std::str::from_utf8(&raw) {
            l.value = Some(self.patterns_in(t).into_bytes());
        } else if !self.patterns.is_empty() || !self.paths.is_empty() {
            l.value = None;
            notes.push(format!(
                "value of {id} dropped: binary bytes that cannot be redacted"
            ));
        }
        notes
    }
}

/// The Luhn check of the digits in `s` (card numbers pass it).
fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2, d * 2) {
            (1, dd) if dd > 9 => dd - 9,
            (1, dd) => dd,
            _ => d,
        })
        .sum();
    sum.is_multiple_of(10)
}

fn walk<'a>(v: &'a mut Json, path: &[String]) -> Option<&'a mut Json> {
    let mut cur = v;
    for seg in path {
        cur = match cur {
            Json::Object(o) => o.get_mut(seg)?,
            Json::Array(a) => a.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Headers;
    use crate::engine::decoders::SchemaSource;

    fn letter(value: &[u8]) -> DeadLetter {
        let mut h = Headers::default();
        h.push("Authorization", "Bearer abc.def");
        h.push("tenant", "acme");
        DeadLetter::from_record(
            None,
            None,
            Some(b"ann@example.com".to_vec()),
            Some(value.to_vec()),
            h,
        )
    }

    #[test]
    fn pii_paths_and_headers_are_masked_keeping_type_and_length() {
        let r = Redaction::parse("pii,$.card.cvv,$.amount,header:authorization").unwrap();
        let reg = Registry::new(SchemaSource::default());
        let mut l = letter(
            br#"{"email":"bob@corp.io","note":"card 4111 1111 1111 1111 ok","card":{"cvv":"123"},"amount":4711.5,"qty":3}"#,
        );
        assert!(r.letter(&mut l, &reg).is_empty());
        let v: Json = serde_json::from_slice(l.value.as_deref().unwrap()).unwrap();
        assert_eq!(v["email"], "***********");
        assert_eq!(v["note"], "card ******************* ok");
        assert_eq!(v["card"]["cvv"], "***");
        assert_eq!(v["amount"], 9999.9);
        assert_eq!(v["qty"], 3, "untouched");
        // A 13-digit time in a string is not a card number (its check digit says so).
        let mut t = letter(br#"{"at":"1732700000001"}"#);
        r.letter(&mut t, &reg);
        assert_eq!(t.value.as_deref(), Some(&br#"{"at":"1732700000001"}"#[..]));
        assert_eq!(l.key.as_deref(), Some(&b"***************"[..]));
        assert_eq!(
            l.headers.last("Authorization"),
            Some(&b"**************"[..])
        );
        assert_eq!(l.headers.last("tenant"), Some(&b"acme"[..]));
    }

    #[test]
    fn hashing_keeps_equal_values_equal_and_binary_is_dropped_with_a_note() {
        let r = Redaction::parse("pii,hash").unwrap();
        let reg = Registry::new(SchemaSource::default());
        let mut a = letter(br#"{"to":"bob@corp.io"}"#);
        let mut b = letter(br#"{"cc":"bob@corp.io"}"#);
        r.letter(&mut a, &reg);
        r.letter(&mut b, &reg);
        let va: Json = serde_json::from_slice(a.value.as_deref().unwrap()).unwrap();
        let vb: Json = serde_json::from_slice(b.value.as_deref().unwrap()).unwrap();
        assert!(va["to"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(va["to"], vb["cc"]);
        let mut bin = letter(&[0xff, 0x00, 0x12]);
        let notes = r.letter(&mut bin, &reg);
        assert_eq!(bin.value, None);
        assert!(
            notes[0].contains("binary bytes that cannot be redacted"),
            "{notes:?}"
        );
        assert!(
            Redaction::parse("$.a,bogus")
                .unwrap_err()
                .contains("'bogus'")
        );
    }
}
