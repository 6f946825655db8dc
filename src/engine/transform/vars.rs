//! A letter's context as the variables a jq expression reads ([`super::VARIABLES`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jaq_json::Val;
use serde_json::{Value as Json, json};

use crate::engine::model::letter::{DeadLetter, Headers};

/// Bytes as JSON: text when UTF-8, `{"base64": …}` otherwise, null when absent.
pub fn bytes_json(b: Option<&[u8]>) -> Json {
    match b {
        None => Json::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => Json::String(s.to_string()),
            Err(_) => json!({ "base64": STANDARD.encode(b) }),
        },
    }
}

/// Bytes from JSON written as [`bytes_json`] reads them (any other JSON value is
/// written as its JSON text); `what` names the part in the error.
pub fn json_bytes(v: &Json, what: &str) -> Result<Option<Vec<u8>>, String> {
    match v {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s.clone().into_bytes())),
        Json::Object(o) if o.len() == 1 && o.contains_key("base64") => {
            let Some(text) = o.get("base64").and_then(Json::as_str) else {
                return Err(format!("{what}: {} is not {{\"base64\": TEXT}}", short(v)));
            };
            STANDARD
                .decode(text)
                .map(Some)
                .map_err(|e| format!("{what}: '{text}' is not base64: {e}"))
        }
        other => Ok(Some(other.to_string().into_bytes())),
    }
}

/// Headers as a JSON object, name → value (the last of repeated names).
pub fn headers_json(h: &Headers) -> Json {
    let mut o = serde_json::Map::new();
    for header in &h.0 {
        o.insert(header.name.clone(), bytes_json(header.value.as_deref()));
    }
    Json::Object(o)
}

/// Headers from a JSON object written as [`headers_json`] reads them.
pub fn json_headers(v: &Json) -> Result<Headers, String> {
    let Json::Object(o) = v else {
        return Err(format!("headers: expected an object, got {}", short(v)));
    };
    let mut out = Headers::default();
    for (name, value) in o {
        let value = json_bytes(value, &format!("header '{name}'"))?;
        out.0.push(crate::engine::model::letter::Header {
            name: name.clone(),
            value,
        });
    }
    Ok(out)
}

/// A JSON value quoted in a message, at most 80 characters.
pub fn short(v: &Json) -> String {
    let text = v.to_string();
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// The letter's variables, in [`super::VARIABLES`]' order.
pub fn letter_vars(l: &DeadLetter) -> Vec<Val> {
    let f = &l.failure;
    let error = json!({
        "message": f.message,
        "exception": f.exception_class,
        "cause": f.cause_class,
        "cause_message": f.cause_message,
        "stack_trace": f.stack_trace,
        "reason": f.reason.as_str(),
        "attempts": f.attempts,
        "processor": f.processor,
    });
    let s = &l.source;
    [
        bytes_json(l.key.as_deref()),
        headers_json(&l.headers),
        json!(s.topic),
        json!(s.partition),
        json!(s.offset),
        json!(l.id.as_ref().map(ToString::to_string)),
        json!(s.timestamp_ms),
        error,
    ]
    .iter()
    .map(super::to_val)
    .collect()
}
