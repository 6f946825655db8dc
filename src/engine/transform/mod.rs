//! jq expressions over letters, evaluated with jaq: `replay --transform`, `export
//! --transform`, the TUI's transform prompt and the filter's `jq:EXPR` term.
//!
//! An expression sees the letter's decoded value as `.` and its context as variables:
//! `$key` (text, or `{"base64": …}` when not UTF-8; null for a null key), `$headers`
//! (an object, name → the last value of that name, as `$key`), `$topic`, `$partition`, `$offset`, `$id`, `$timestamp`
//! (ms) of the source message, and `$error` (`{message, exception, cause,
//! cause_message, stack_trace, reason, attempts, processor}`, absent ones null).
//!
//! **Envelope mode** (`--transform-envelope`, decided here: one expression, one value,
//! rather than one flag per part): `.` is `{"key", "value", "headers"}` and the result
//! must be an object; its `value`, `key` and `headers` replace the letter's, a missing
//! one is left as it was. A header object returned unchanged leaves the letter's
//! headers exactly as they were (repeated names included).
//!
//! A transform must yield exactly one value: an error, no value or several are that
//! letter's failure (see [`apply`]). What a transform writes is computed from the
//! letter's original value, or its kept edit, never from an earlier send, so running
//! it twice never transforms twice. The ledger keeps the expression ([`Spec::to_ledger`])
//! so whoever finishes an interrupted replay sends the same bytes.
//!
//! Not bounded: an expression that never ends (`def f: f; f`, `repeat(.)`) runs until
//! the command is interrupted; the TUI evaluates its previews off the UI thread.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data};
use jaq_json::Val;
use serde_json::Value as Json;

/// A transform applied to one letter, in the value's own format.
pub mod apply;
/// What a transform changed, path by path.
pub mod diff;
/// A transform's counts and first changes over many letters (the TUI prompt).
pub mod preview;
mod vars;

pub use apply::{Applied, Change, apply, value_json};
pub use vars::letter_vars;

/// The variables every expression may read, in the order [`letter_vars`] gives them.
pub const VARIABLES: [&str; 8] = [
    "$key",
    "$headers",
    "$topic",
    "$partition",
    "$offset",
    "$id",
    "$timestamp",
    "$error",
];

/// What a transform was asked to do: the expression and its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The jq expression as typed.
    pub expr: String,
    /// `.` is `{key, value, headers}` rather than the value.
    pub envelope: bool,
}

/// The prefix marking an envelope-mode expression in the ledger.
const ENVELOPE: &str = "envelope:";

impl Spec {
    /// The expression as the ledger keeps it (`envelope:` before one in envelope mode:
    /// no jq expression starts that way).
    pub fn to_ledger(&self) -> String {
        match self.envelope {
            true => format!("{ENVELOPE}{}", self.expr),
            false => self.expr.clone(),
        }
    }

    /// The spec a ledger kept.
    pub fn from_ledger(kept: &str) -> Spec {
        match kept.strip_prefix(ENVELOPE) {
            Some(expr) => Spec {
                expr: expr.to_string(),
                envelope: true,
            },
            None => Spec {
                expr: kept.to_string(),
                envelope: false,
            },
        }
    }
}

impl std::fmt::Display for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.envelope {
            true => write!(f, "{} (envelope)", self.expr),
            false => f.write_str(&self.expr),
        }
    }
}

/// An expression that does not compile: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{expr}': at column {column}: {message}")]
pub struct ParseError {
    /// The expression as given.
    pub expr: String,
    /// 1-based column (in characters) where the mistake is.
    pub column: usize,
    /// What was expected or is unknown.
    pub message: String,
}

type Data = data::JustLut<Val>;

/// jq functions left out: they end the process (`halt`), read or write outside the
/// letter (`input`, `env`, `debug`, `stderr`), or differ from one run or host to the
/// next (`now`, the local time zone's `localtime`, `strflocaltime`) — a takeover must
/// compute the bytes the first attempt did. Using one is a
/// mistake at its column (`unknown filter`).
const OUTSIDE: [&str; 9] = [
    "halt",
    "localtime",
    "strflocaltime",
    "input",
    "inputs",
    "env",
    "now",
    "debug_empty",
    "stderr_empty",
];
/// The library's definitions built on [`OUTSIDE`], left out with them.
const OUTSIDE_DEFS: [&str; 4] = ["halt", "halt_error", "stderr", "debug"];

/// A compiled jq expression.
pub struct Jq {
    spec: Spec,
    filter: jaq_core::Filter<Data>,
}

impl std::fmt::Debug for Jq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Jq").field(&self.spec).finish()
    }
}

/// Why an expression gave no single value for a letter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The expression raised an error.
    #[error("error: {0}")]
    Error(String),
    /// It yielded no value (`empty`, `select` that did not match).
    #[error("yielded no value")]
    Empty,
    /// It yielded more than one value.
    #[error("yielded {0} values, expected one")]
    Many(usize),
}

impl Jq {
    /// Compiles `spec`'s expression; a mistake says where it is.
    pub fn compile(spec: Spec) -> Result<Jq, ParseError> {
        let code = spec.expr.as_str();
        let fail = |at: &str, message: String| {
            let offset = jaq_core::load::span(code, at).start.min(code.len());
            ParseError {
                expr: code.to_string(),
                column: code[..offset].chars().count() + 1,
                message,
            }
        };
        if code.trim().is_empty() {
            return Err(fail(
                code,
                "an empty expression (`.` keeps the value)".into(),
            ));
        }
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .filter(|d| !OUTSIDE_DEFS.contains(&d.name));
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs())
            .filter(|(name, _, _)| !OUTSIDE.contains(name));
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(&arena, File { code, path: () })
            .map_err(|errs| {
                let first = errs.into_iter().next().map(|(_, e)| e);
                match first {
                    Some(jaq_core::load::Error::Lex(es)) => match es.first() {
                        Some((expect, at)) => fail(at, format!("expected {}", expect.as_str())),
                        None => fail(code, "does not parse".into()),
                    },
                    Some(jaq_core::load::Error::Parse(es)) => match es.first() {
                        Some((expect, "")) => fail(
                            &code[code.len()..],
                            format!("expected {} at the end", expect.as_str()),
                        ),
                        Some((expect, at)) => {
                            fail(at, format!("expected {}, found '{at}'", expect.as_str()))
                        }
                        None => fail(code, "does not parse".into()),
                    },
                    Some(jaq_core::load::Error::Io(es)) => match es.first() {
                        Some((at, why)) => fail(at, why.clone()),
                        None => fail(code, "cannot load a module".into()),
                    },
                    None => fail(code, "does not parse".into()),
                }
            })?;
        let filter = Compiler::default()
            .with_global_vars(VARIABLES)
            .with_funs(funs)
            .compile(modules)
            .map_err(|errs| {
                let first = errs
                    .into_iter()
                    .next()
                    .and_then(|(_, e)| e.into_iter().next());
                match first {
                    Some((name, undefined)) => {
                        fail(name, format!("unknown {} '{name}'", undefined.as_str()))
                    }
                    None => fail(code, "does not compile".into()),
                }
            })?;
        Ok(Jq { spec, filter })
    }

    /// Compiles `expr` over values (not in envelope mode): the filter term and the TUI.
    pub fn value(expr: &str) -> Result<Jq, ParseError> {
        Jq::compile(Spec {
            expr: expr.to_string(),
            envelope: false,
        })
    }

    /// What was compiled.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Every value the expression yields for `input` with `vars` (in [`VARIABLES`]'
    /// order), at most `limit` of them; the first error ends the run.
    fn outputs(&self, input: Val, vars: Vec<Val>, limit: usize) -> Result<Vec<Val>, String> {
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new(vars));
        let mut out = Vec::new();
        for v in self.filter.id.run((ctx, input)) {
            let v = v.map_err(|exn| match exn.get_err() {
                Ok(e) => one_line(&e.to_string()),
                // No `halt` is compiled in; were one to come, it ends this letter only.
                Err(_) => "halt is not allowed in a transform".to_string(),
            });
            out.push(v?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The one value the expression yields for `input`.
    pub fn run(&self, input: &Json, vars: Vec<Val>) -> Result<Json, RunError> {
        let mut out = self
            .outputs(to_val(input), vars, 2)
            .map_err(RunError::Error)?;
        match out.len() {
            0 => Err(RunError::Empty),
            1 => to_json(&out.remove(0)).map_err(RunError::Error),
            // Counting the rest could take forever (`repeat`): two say "more than one".
            n => Err(RunError::Many(n)),
        }
    }

    /// Whether the expression's first value for `input` is `true` (a filter term).
    pub fn test(&self, input: &Json, vars: Vec<Val>) -> Result<bool, String> {
        let out = self.outputs(to_val(input), vars, 1)?;
        Ok(matches!(out.first(), Some(Val::Bool(true))))
    }
}

/// A JSON value as jaq's.
pub fn to_val(v: &Json) -> Val {
    match v {
        Json::Null => Val::Null,
        Json::Bool(b) => Val::Bool(*b),
        Json::Number(n) => match n.as_i64().and_then(|i| isize::try_from(i).ok()) {
            Some(i) => Val::from(i),
            None => match n.as_f64() {
                Some(f) if n.is_f64() => Val::from(f),
                // A u64 beyond isize, kept exact as a decimal.
                _ => Val::Num(jaq_json::Num::Dec(jaq_json::Rc::new(n.to_string()))),
            },
        },
        Json::String(s) => Val::from(s.clone()),
        Json::Array(a) => a.iter().map(to_val).collect(),
        Json::Object(o) => Val::obj(
            o.iter()
                .map(|(k, v)| (Val::from(k.clone()), to_val(v)))
                .collect(),
        ),
    }
}

/// jaq's value as JSON: integers exact, a float that JSON cannot hold (NaN, ±∞) null
/// as jq prints it, big and decimal numbers through their digits.
pub fn to_json(v: &Val) -> Result<Json, String> {
    Ok(match v {
        Val::Null => Json::Null,
        Val::Bool(b) => Json::Bool(*b),
        Val::Num(jaq_json::Num::Int(i)) => Json::from(*i as i64),
        Val::Num(jaq_json::Num::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number)
        }
        Val::Num(n) => {
            let text = n.to_string();
            match serde_json::from_str(&text) {
                Ok(v) => v,
                // Beyond a double (`1e1000`): the largest one, as jq prints it.
                Err(_) => match text.parse::<f64>() {
                    Ok(f) => Json::from(f.clamp(f64::MIN, f64::MAX)),
                    Err(e) => return Err(format!("the number {text}: {e}")),
                },
            }
        }
        Val::TStr(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        // A byte string (`@base64d` of binary) is not JSON text: said, not mangled.
        Val::BStr(b) => match std::str::from_utf8(b) {
            Ok(s) => Json::String(s.to_string()),
            Err(_) => {
                return Err(format!(
                    "a byte string of {} bytes that is not UTF-8",
                    b.len()
                ));
            }
        },
        Val::Arr(a) => Json::Array(a.iter().map(to_json).collect::<Result<_, _>>()?),
        Val::Obj(o) => {
            let mut m = serde_json::Map::with_capacity(o.len());
            for (k, v) in o.iter() {
                let key = match k {
                    Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
                    other => return Err(format!("an object key that is not a string: {other}")),
                };
                m.insert(key, to_json(v)?);
            }
            Json::Object(m)
        }
    })
}

/// An error's text on one line, at most 300 characters.
fn one_line(s: &str) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
