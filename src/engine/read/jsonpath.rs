//! Looking up one `$.a.b.0` path in a JSON payload without building the document.
//! A byte scanner walks to the value (skipping everything off the path without
//! parsing it) and only that value is parsed; keys with escapes fall back to a
//! serde visitor that does the same through the parser. A payload search thus costs
//! little more than a scan.

use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The value at `path` (object keys, array indexes) in an already decoded value.
pub fn lookup_value(value: &Value, path: &[String]) -> Option<Value> {
    let mut cur = value;
    for seg in path {
        cur = match cur {
            Value::Object(o) => o.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur.clone())
}

/// The value at `path` in the JSON text `bytes`; `None` when the text is not JSON or the
/// path is absent.
pub fn lookup(bytes: &[u8], path: &[String]) -> Option<Value> {
    match scan(bytes, path) {
        Scan::Found(raw) => serde_json::from_slice(raw).ok(),
        Scan::Absent => None,
        Scan::Unsure => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            Seek(path).deserialize(&mut de).ok().flatten()
        }
    }
}

/// What the byte scanner found.
enum Scan<'a> {
    /// The raw text of the value at the path.
    Found(&'a [u8]),
    /// The path is not in the document (or the document is not JSON).
    Absent,
    /// An escaped key was met: let the parser decide.
    Unsure,
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// Index just past the string starting at `i` (which holds the opening quote).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j += memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        if b[j] == b'"' {
            return Some(j + 1);
        }
        j += 2;
    }
}

/// Index just past the value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let rest = &b[i..];
            let n = rest
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(rest.len());
            Some(i + n)
        }
    }
}

fn scan<'a>(b: &'a [u8], path: &[String]) -> Scan<'a> {
    let Some(found) = scan_inner(b, path) else {
        return Scan::Absent;
    };
    found
}

fn scan_inner<'a>(b: &'a [u8], path: &[String]) -> Option<Scan<'a>> {
    let mut i = ws(b, 0);
    for seg in path {
        match *b.get(i)? {
            b'{' => {
                i = ws(b, i + 1);
                loop {
                    if *b.get(i)? != b'"' {
                        return Some(Scan::Absent);
                    }
                    let end = string_end(b, i)?;
                    let key = &b[i + 1..end - 1];
                    if key.contains(&b'\\') {
                        return Some(Scan::Unsure);
                    }
                    i = ws(b, end);
                    if *b.get(i)? != b':' {
                        return Some(Scan::Absent);
                    }
                    i = ws(b, i + 1);
                    if key == seg.as_bytes() {
                        break;
                    }
                    i = ws(b, value_end(b, i)?);
                    match *b.get(i)? {
                        b',' => i = ws(b, i + 1),
                        _ => return Some(Scan::Absent),
                    }
                }
            }
            b'[' => {
                let want: usize = seg.parse().ok()?;
                i = ws(b, i + 1);
                for _ in 0..want {
                    i = ws(b, value_end(b, i)?);
                    match *b.get(i)? {
                        b',' => i = ws(b, i + 1),
                        _ => return Some(Scan::Absent),
                    }
                }
                if *b.get(i)? == b']' {
                    return Some(Scan::Absent);
                }
            }
            _ => return Some(Scan::Absent),
        }
    }
    let end = value_end(b, i)?;
    Some(Scan::Found(&b[i..end]))
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
    fn the_scanner_and_the_parser_agree() {
        let docs: [&[u8]; 6] = [
            br#"{"a": "x\"}y", "b": {"c": [1, "]", {"d": true}]}, "e": -1.5e3}"#,
            br#"  {"a":1,"b":{"c":[{"d":null},2]}}  "#,
            br#"[{"a": 1}, {"b": "two"}]"#,
            br#"{"a": {"b": 1}, "a": {"b": 2}}"#,
            br#"{"list": [], "obj": {}, "s": ""}"#,
            br#"{"t\u0041b": 1, "tab": 2}"#,
        ];
        let paths = [
            "a", "b.c.2.d", "b.c.0.d", "e", "0.a", "1.b", "a.b", "list.0", "obj", "s", "tab", "tAb",
        ];
        for doc in docs {
            for p in paths {
                let p = path(p);
                let mut de = serde_json::Deserializer::from_slice(doc);
                let parsed = Seek(&p).deserialize(&mut de).ok().flatten();
                assert_eq!(
                    lookup(doc, &p),
                    parsed,
                    "{} at {p:?}",
                    String::from_utf8_lossy(doc)
                );
            }
        }
    }

    #[test]
    fn broken_json_is_no_match() {
        assert_eq!(lookup(b"{\"a\": ", &path("a")), None);
        assert_eq!(lookup(b"\xff\xfe", &path("a")), None);
        assert_eq!(lookup(b"", &path("a")), None);
    }
}
