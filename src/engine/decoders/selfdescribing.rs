//! Formats that carry their own structure: CBOR and MessagePack. Either could read
//! almost any bytes as *something*, so a payload counts only when it is not UTF-8 text,
//! its top level is a map or an array, and the value fills the payload exactly.

use super::{Attempt, DecodeError, Decoder, Registry, Structured};

/// CBOR (RFC 8949).
pub struct Cbor;

/// MessagePack.
pub struct MessagePack;

fn candidate(bytes: &[u8]) -> bool {
    !bytes.is_empty() && std::str::from_utf8(bytes).is_err()
}

fn structured(format: &str, value: serde_json::Value) -> Attempt {
    Attempt::Decoded(Structured {
        format: format.to_string(),
        schema_id: None,
        subject: None,
        value,
    })
}

impl Decoder for Cbor {
    fn decode(&self, bytes: &[u8], _reg: &Registry, _topic: Option<&str>) -> Attempt {
        // Major types 4 (array) and 5 (map).
        if !candidate(bytes) || !matches!(bytes[0] >> 5, 4 | 5) {
            return Attempt::NotMine;
        }
        let mut rest = bytes;
        let Ok(v) = ciborium::de::from_reader::<ciborium::Value, _>(&mut rest) else {
            return Attempt::NotMine;
        };
        if !rest.is_empty() {
            return Attempt::NotMine;
        }
        match cbor_json(v) {
            Ok(j) => structured("CBOR", j),
            Err(why) => Attempt::Failed(DecodeError::malformed(format!("CBOR: {why}"))),
        }
    }
}

fn cbor_json(v: ciborium::Value) -> Result<serde_json::Value, String> {
    use ciborium::Value as C;
    use serde_json::Value as J;
    Ok(match v {
        C::Integer(i) => {
            let i = i128::from(i);
            i64::try_from(i)
                .map(J::from)
                .or_else(|_| u64::try_from(i).map(J::from))
                .map_err(|_| format!("integer {i} out of range"))?
        }
        C::Bytes(b) => J::String(format!("0x{}", hex::encode(b))),
        C::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        C::Text(t) => J::String(t),
        C::Bool(b) => J::Bool(b),
        C::Null => J::Null,
        C::Tag(_, inner) => cbor_json(*inner)?,
        C::Array(a) => J::Array(a.into_iter().map(cbor_json).collect::<Result<_, _>>()?),
        C::Map(m) => {
            let mut o = serde_json::Map::new();
            for (k, v) in m {
                let key = match cbor_json(k)? {
                    J::String(s) => s,
                    other => other.to_string(),
                };
                o.insert(key, cbor_json(v)?);
            }
            J::Object(o)
        }
        _ => J::Null,
    })
}

impl Decoder for MessagePack {
    fn decode(&self, bytes: &[u8], _reg: &Registry, _topic: Option<&str>) -> Attempt {
        // fixmap, fixarray, array16/32, map16/32.
        let first = bytes.first().copied().unwrap_or(0);
        let container = matches!(first, 0x80..=0x9f | 0xdc..=0xdf);
        if !candidate(bytes) || !container {
            return Attempt::NotMine;
        }
        let mut rest = bytes;
        let Ok(v) = rmpv::decode::read_value(&mut rest) else {
            return Attempt::NotMine;
        };
        if !rest.is_empty() {
            return Attempt::NotMine;
        }
        structured("MessagePack", msgpack_json(v))
    }
}

fn msgpack_json(v: rmpv::Value) -> serde_json::Value {
    use rmpv::Value as M;
    use serde_json::Value as J;
    match v {
        M::Nil => J::Null,
        M::Boolean(b) => J::Bool(b),
        M::Integer(i) => i
            .as_i64()
            .map(J::from)
            .or_else(|| i.as_u64().map(J::from))
            .unwrap_or(J::Null),
        M::F32(f) => serde_json::Number::from_f64(f64::from(f)).map_or(J::Null, J::Number),
        M::F64(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        M::String(s) => match s.into_str() {
            Some(s) => J::String(s),
            None => J::Null,
        },
        M::Binary(b) => J::String(format!("0x{}", hex::encode(b))),
        M::Array(a) => J::Array(a.into_iter().map(msgpack_json).collect()),
        M::Map(m) => J::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match msgpack_json(k) {
                        J::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, msgpack_json(v))
                })
                .collect(),
        ),
        M::Ext(t, b) => J::String(format!("ext {t}: 0x{}", hex::encode(b))),
    }
}
