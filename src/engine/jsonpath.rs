//! Looking up one `$.a.b.0` path in a JSON payload without building the document:
//! everything off the path is skipped, so a payload search costs little more than a scan.

use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The value at `path` in the JSON text `bytes`; `None` when the text is not JSON or the
/// path is absent.
pub fn lookup(bytes: &[u8], path: &[String]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Seek(path).deserialize(&mut de).ok().flatten()
}

/// Finds the value at the remaining path.
struct Seek<'p>(&'p [String]);

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = Option<Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.0.is_empty() {
            return serde::Deserialize::deserialize(d).map(Some);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(&self.0[0]))? {
            if hit && found.is_none() {
                found = map.next_value_seed(Seek(&self.0[1..]))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let want = self.0[0].parse::<usize>().ok();
        let mut found = None;
        let mut i = 0;
        loop {
            if Some(i) == want {
                match seq.next_element_seed(Seek(&self.0[1..]))? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Whether an object key equals the wanted one, without allocating it.
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    #[test]
    fn finds_nested_values_and_skips_the_rest() {
        let doc = br#"{"a": {"skip": [1, {"x": "y"}], "b": [10, {"c": "hit"}]}, "z": 1}"#;
        assert_eq!(lookup(doc, &path("a.b.1.c")), Some(Value::from("hit")));
        assert_eq!(lookup(doc, &path("a.b.0")), Some(Value::from(10)));
        assert_eq!(lookup(doc, &path("z")), Some(Value::from(1)));
        assert_eq!(
            lookup(doc, &path("a.b")).unwrap().as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(lookup(doc, &path("a.missing")), None);
        assert_eq!(lookup(doc, &path("z.deeper")), None);
        assert_eq!(
            lookup(br#"{"k\"ey": 5}"#, &[String::from("k\"ey")]),
            Some(Value::from(5))
        );
    }

    #[test]
    fn broken_json_is_no_match() {
        assert_eq!(lookup(b"{\"a\": ", &path("a")), None);
        assert_eq!(lookup(b"\xff\xfe", &path("a")), None);
        assert_eq!(lookup(b"", &path("a")), None);
    }
}
