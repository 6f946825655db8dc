//! What a transform changed, path by path (`$.legs[0].qty: 3 → 4`): the dry run's
//! `changes` and the TUI preview's lines.

use serde_json::{Value as Json, json};

use super::vars::short;

/// One changed place: absent `from` is an addition, absent `to` a removal.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// `$`, `$.name`, `$.list[2]`, `$["odd key"]`.
    pub path: String,
    /// The value before.
    pub from: Option<Json>,
    /// The value after.
    pub to: Option<Json>,
}

impl Edit {
    /// As a JSON object `{path, from, to}` (absent sides left out).
    pub fn to_json(&self) -> Json {
        let mut o = json!({ "path": self.path });
        if let Some(f) = &self.from {
            o["from"] = f.clone();
        }
        if let Some(t) = &self.to {
            o["to"] = t.clone();
        }
        o
    }

    /// One line for people: `$.price: -3 → 3`, `+ $.currency: "EUR"`, `- $.legacy: 1`.
    pub fn line(&self) -> String {
        match (&self.from, &self.to) {
            (Some(f), Some(t)) => format!("{}: {} → {}", self.path, short(f), short(t)),
            (None, Some(t)) => format!("+ {}: {}", self.path, short(t)),
            (Some(f), None) => format!("- {}: {}", self.path, short(f)),
            (None, None) => self.path.clone(),
        }
    }
}

/// The places where `after` differs from `before`, in document order.
pub fn diff(before: &Json, after: &Json) -> Vec<Edit> {
    let mut out = Vec::new();
    walk("$".to_string(), before, after, &mut out);
    out
}

fn walk(path: String, a: &Json, b: &Json, out: &mut Vec<Edit>) {
    match (a, b) {
        _ if a == b => {}
        (Json::Object(x), Json::Object(y)) => {
            for (k, v) in x {
                let p = member(&path, k);
                match y.get(k) {
                    Some(w) => walk(p, v, w, out),
                    None => out.push(Edit {
                        path: p,
                        from: Some(v.clone()),
                        to: None,
                    }),
                }
            }
            for (k, w) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                out.push(Edit {
                    path: member(&path, k),
                    from: None,
                    to: Some(w.clone()),
                });
            }
        }
        (Json::Array(x), Json::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let p = format!("{path}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(v), Some(w)) => walk(p, v, w, out),
                    (v, w) => out.push(Edit {
                        path: p,
                        from: v.cloned(),
                        to: w.cloned(),
                    }),
                }
            }
        }
        _ => out.push(Edit {
            path,
            from: Some(a.clone()),
            to: Some(b.clone()),
        }),
    }
}

/// `path.key`, or `path["key"]` when the key is not a plain name.
fn member(path: &str, k: &str) -> String {
    let plain = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match plain {
        true => format!("{path}.{k}"),
        false => format!("{path}[{}]", Json::String(k.to_string())),
    }
}
