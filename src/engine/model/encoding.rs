//! Raw bytes as text for people and JSON: UTF-8 when the bytes are valid UTF-8,
//! base64 otherwise, always saying which, so nothing is mangled on the way out.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// How a byte string was rendered as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The bytes were valid UTF-8 and are given as they are.
    Utf8,
    /// The bytes were not UTF-8 and are given as standard base64.
    Base64,
}

/// Bytes rendered as text, with the encoding that undoes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedBytes {
    /// `utf8` or `base64`.
    pub encoding: Encoding,
    /// The text.
    pub data: String,
}

impl EncodedBytes {
    /// Renders `bytes` as UTF-8 text when valid, base64 otherwise.
    pub fn of(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => EncodedBytes {
                encoding: Encoding::Utf8,
                data: s.to_string(),
            },
            Err(_) => EncodedBytes {
                encoding: Encoding::Base64,
                data: STANDARD.encode(bytes),
            },
        }
    }

    /// Gives back the original bytes; a base64 error quotes the start of the bad text.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        match self.encoding {
            Encoding::Utf8 => Ok(self.data.as_bytes().to_vec()),
            Encoding::Base64 => STANDARD.decode(&self.data).map_err(|e| {
                let start: String = self.data.chars().take(24).collect();
                format!("invalid base64 '{start}': {e}")
            }),
        }
    }
}

/// Borrowed bytes that serialize exactly like [`EncodedBytes`], without copying text.
#[derive(Debug, Clone, Copy)]
pub struct BytesRef<'a>(pub &'a [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("EncodedBytes", 2)?;
        match std::str::from_utf8(self.0) {
            Ok(text) => {
                st.serialize_field("encoding", &Encoding::Utf8)?;
                st.serialize_field("data", text)?;
            }
            Err(_) => {
                st.serialize_field("encoding", &Encoding::Base64)?;
                st.serialize_field("data", &STANDARD.encode(self.0))?;
            }
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stays_text_and_binary_becomes_base64() {
        let t = EncodedBytes::of("{\"a\":\"é\"}".as_bytes());
        assert_eq!(t.encoding, Encoding::Utf8);
        assert_eq!(t.data, "{\"a\":\"é\"}");
        let b = EncodedBytes::of(&[0xff, 0x00, 0x41]);
        assert_eq!(b.encoding, Encoding::Base64);
        assert_eq!(b.data, "/wBB");
        assert_eq!(b.to_bytes().unwrap(), vec![0xff, 0x00, 0x41]);
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"encoding":"base64","data":"/wBB"}"#
        );
    }

    #[test]
    fn borrowed_and_owned_print_the_same() {
        for b in [&b"text"[..], &[0xff, 0x01][..], &[][..]] {
            assert_eq!(
                serde_json::to_string(&BytesRef(b)).unwrap(),
                serde_json::to_string(&EncodedBytes::of(b)).unwrap()
            );
        }
    }

    #[test]
    fn bad_base64_is_quoted() {
        let e = EncodedBytes {
            encoding: Encoding::Base64,
            data: "not base64!".into(),
        };
        assert!(e.to_bytes().unwrap_err().contains("'not base64!'"));
    }
}
