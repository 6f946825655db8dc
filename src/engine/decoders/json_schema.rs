//! JSON Schema checks of edited values (the `jsonschema` crate): a letter framed under a
//! JSON Schema id is re-encoded only when the edit is valid under that schema (and, with
//! `--schema-version latest`, under the latest one too). The schema's references are
//! served from what the registry listed, by name; nothing is fetched from elsewhere.

use serde_json::Value;

use super::DecodeError;
use crate::engine::model::text::clip;

/// Longest reason kept from a validation error, in characters (it can quote a whole
/// value).
const MAX_REASON: usize = 200;

/// A compiled JSON Schema.
#[derive(Debug)]
pub struct JsonSchema {
    validator: jsonschema::Validator,
}

impl JsonSchema {
    /// Compiles `text`, whose `$ref`s may name `refs` (`(name, schema text)`).
    pub fn compile(text: &str, refs: &[(String, String)]) -> Result<Self, DecodeError> {
        let bad = DecodeError::bad_schema;
        let schema: Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let mut docs = Vec::with_capacity(refs.len());
        for (name, t) in refs {
            let v: Value = serde_json::from_str(t)
                .map_err(|e| bad(format!("reference '{name}' is not JSON: {e}")))?;
            docs.push((name.clone(), v));
        }
        let validator = jsonschema::options()
            .with_retriever(References(docs))
            .build(&schema)
            .map_err(|e| bad(one_line(&e.to_string())))?;
        Ok(JsonSchema { validator })
    }

    /// Checks `value`; the first mismatch as `$.path: reason`.
    pub fn check(&self, value: &Value) -> Result<(), DecodeError> {
        self.validator.validate(value).map_err(|e| {
            DecodeError::mismatch(format!(
                "{}: {}",
                path(e.instance_path().as_str()),
                one_line(&e.to_string())
            ))
        })
    }
}

/// The references a registry listed for a schema, served by name.
struct References(Vec<(String, Value)>);

impl jsonschema::Retrieve for References {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let u = uri.as_str();
        self.0
            .iter()
            .find(|(name, _)| u == name || u.ends_with(&format!("/{name}")))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("'{u}' is not among the schema's references").into())
    }
}

/// A JSON pointer (`/legs/0/qty`) as morgue writes paths (`$.legs.0.qty`).
fn path(pointer: &str) -> String {
    let mut out = String::from("$");
    for seg in pointer.split('/').skip(1) {
        out.push('.');
        out.push_str(&seg.replace("~1", "/").replace("~0", "~"));
    }
    out
}

/// `s` on one line, at most [`MAX_REASON`] characters.
fn one_line(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    clip(&flat, MAX_REASON).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TRADE: &str = r#"{
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "price": {"type": "number", "minimum": 0},
            "legs": {"type": "array", "items": {"$ref": "leg.json"}}
        },
        "required": ["id", "price"],
        "additionalProperties": false
    }"#;
    const LEG: &str = r#"{"type": "object", "properties": {"qty": {"type": "integer"}},
        "required": ["qty"]}"#;

    fn trade() -> JsonSchema {
        JsonSchema::compile(TRADE, &[("leg.json".into(), LEG.into())]).unwrap()
    }

    #[test]
    fn a_valid_edit_passes_and_a_mismatch_names_its_path() {
        let s = trade();
        s.check(&json!({"id": "T-1", "price": 9.5, "legs": [{"qty": 3}]}))
            .unwrap();
        let e = s
            .check(&json!({"id": "T-1", "price": "cheap"}))
            .unwrap_err()
            .message;
        assert!(e.starts_with("$.price: "), "{e}");
        assert!(e.contains("cheap") && e.contains("number"), "{e}");
        let e = s
            .check(&json!({"id": "T-1", "price": 1, "legs": [{"qty": "three"}]}))
            .unwrap_err()
            .message;
        assert!(e.starts_with("$.legs.0.qty: "), "{e}");
        let e = s.check(&json!({"id": "T-1"})).unwrap_err().message;
        assert!(e.starts_with("$: ") && e.contains("price"), "{e}");
        let e = s
            .check(&json!({"id": "T-1", "price": 1, "note": "x"}))
            .unwrap_err()
            .message;
        assert!(e.contains("note"), "{e}");
    }

    #[test]
    fn broken_schemas_and_missing_references_say_why() {
        let e = JsonSchema::compile("{not json", &[]).unwrap_err().message;
        assert!(e.starts_with("not JSON"), "{e}");
        let e = JsonSchema::compile(TRADE, &[]).unwrap_err().message;
        assert!(e.contains("leg.json"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn reasons_stay_on_one_short_line() {
        let s = JsonSchema::compile(r#"{"type": "integer"}"#, &[]).unwrap();
        let long = "x\n".repeat(500);
        let e = s.check(&json!(long)).unwrap_err().message;
        assert!(
            !e.contains('\n') && e.chars().count() < MAX_REASON + 10,
            "{e}"
        );
    }
}
