//! The filter language shared by `--filter` and the TUI's `/` line.
//!
//! Terms are separated by spaces (all must match) and grouped with `or`; `-` negates
//! a term. Terms: `key:GLOB`, `topic:GLOB`, `error:TEXT` (exception class or message),
//! `reason:R`, `state:S` (`replayed` includes `confirmed` and `failed-again`), `header.NAME:GLOB`, `since:T` / `until:T` (RFC 3339, a date,
//! or an age such as `15m`), `$.json.path OP VALUE` (OP is `=`, `!=`, `<`, `>` or `~`
//! for a regex), `/regex/` (value or key) and free text (value, key or error).
//! Terms that only look at index fields answer without the payload; see
//! [`Filter::needs_payload`].

use regex::Regex;

use crate::engine::model::duration::parse_duration;
use crate::engine::model::letter::{DeadLetter, LetterState};
use crate::engine::read::index::{IndexRow, NO_TIME};
use crate::engine::read::jsonpath;
use crate::engine::read::store::Store;

/// Whether state `s` is asked for by `state:{want}`; `replayed` also takes the letters
/// whose replay has an outcome (`confirmed`, `failed-again`).
fn state_matches(s: LetterState, want: &str) -> bool {
    s.as_str() == want
        || (want == "replayed" && matches!(s, LetterState::Confirmed | LetterState::FailedAgain))
}

/// A parsed query: an `or` of `and` groups of (possibly negated) terms.
#[derive(Debug, Clone)]
pub struct Filter {
    groups: Vec<Vec<(bool, Term)>>,
}

/// One predicate.
#[derive(Debug, Clone)]
enum Term {
    Key(Glob),
    Topic(Glob),
    Error(String),
    Fingerprint(String),
    Reason(String),
    State(String),
    Header(String, Glob),
    Since(i64),
    Until(i64),
    Json(Vec<String>, Op, String),
    Regex(Regex),
    Text(String),
}

/// A comparison in a `$.path` term.
#[derive(Debug, Clone)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Matches(Regex),
}

/// `*` and `?` wildcards; without them, an exact match.
#[derive(Debug, Clone)]
struct Glob(Regex);

impl Glob {
    fn new(p: &str) -> Result<Glob, String> {
        let mut re = String::from("^");
        for c in p.chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push('$');
        Regex::new(&re)
            .map(Glob)
            .map_err(|e| format!("bad pattern '{p}': {}", first_line(&e.to_string())))
    }

    fn is_match(&self, s: &str) -> bool {
        self.0.is_match(s)
    }
}

impl Filter {
    /// Parses `query`; relative times (`since:15m`) count back from `now_ms`. The
    /// error quotes the term that could not be read.
    pub fn parse(query: &str, now_ms: i64) -> Result<Filter, String> {
        let tokens = tokenize(query)?;
        let mut groups = vec![Vec::new()];
        let mut i = 0;
        while i < tokens.len() {
            let tok = &tokens[i];
            i += 1;
            if tok.eq_ignore_ascii_case("or") {
                if groups.last().is_some_and(Vec::is_empty) {
                    return Err("'or' needs a term on each side".into());
                }
                groups.push(Vec::new());
                continue;
            }
            let (neg, body) = match tok.strip_prefix('-') {
                Some(rest) if !rest.is_empty() => (true, rest),
                _ => (false, tok.as_str()),
            };
            let term = if body.starts_with("$.") && !has_op(body) && i + 1 < tokens.len() {
                // `$.price > 5` written with spaces.
                let joined = format!("{body}{}{}", tokens[i], tokens[i + 1]);
                i += 2;
                parse_term(&joined, now_ms)?
            } else {
                parse_term(body, now_ms)?
            };
            if let Some(g) = groups.last_mut() {
                g.push((neg, term));
            }
        }
        if groups.last().is_some_and(Vec::is_empty) && groups.len() > 1 {
            return Err("'or' needs a term on each side".into());
        }
        groups.retain(|g| !g.is_empty());
        Ok(Filter { groups })
    }

    /// True when the query is empty (matches everything).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// True when some term looks inside the value (JSON path, regex, free text).
    pub fn needs_payload(&self) -> bool {
        self.groups
            .iter()
            .flatten()
            .any(|(_, t)| matches!(t, Term::Json(..) | Term::Regex(_) | Term::Text(_)))
    }

    /// True when every term can be answered from an index row alone (key, source
    /// topic, fingerprint, reason, state, time), so a filter applies at once without reading payloads.
    pub fn index_only(&self) -> bool {
        self.groups.iter().flatten().all(|(_, t)| {
            matches!(
                t,
                Term::Key(_)
                    | Term::Fingerprint(_)
                    | Term::Topic(_)
                    | Term::Reason(_)
                    | Term::State(_)
                    | Term::Since(_)
                    | Term::Until(_)
            )
        })
    }

    /// Whether the letter behind `row` matches; exact when [`Filter::index_only`].
    pub fn matches_row(&self, row: &IndexRow, store: &Store) -> bool {
        let term = |t: &Term| match t {
            Term::Key(g) => store
                .key(row)
                .is_some_and(|(k, _)| g.is_match(&String::from_utf8_lossy(&k))),
            Term::Topic(g) => store.topic(row).is_some_and(|name| g.is_match(name)),
            Term::Fingerprint(f) => store.fingerprint(row) == *f,
            Term::Reason(r) => row.reason.as_str() == r,
            Term::State(s) => state_matches(row.state, s),
            Term::Since(t) => row.dlq_ts_ms != NO_TIME && row.dlq_ts_ms >= *t,
            Term::Until(t) => row.dlq_ts_ms != NO_TIME && row.dlq_ts_ms <= *t,
            _ => true,
        };
        self.groups.is_empty()
            || self
                .groups
                .iter()
                .any(|g| g.iter().all(|(neg, t)| term(t) != *neg))
    }

    /// Whether `l` matches.
    pub fn matches(&self, l: &DeadLetter) -> bool {
        self.groups.is_empty()
            || self
                .groups
                .iter()
                .any(|g| g.iter().all(|(neg, t)| t.matches(l) != *neg))
    }
}

fn has_op(s: &str) -> bool {
    s.contains(['=', '<', '>', '~'])
}

/// Splits on whitespace, keeping `"quoted strings"` and `/regex with spaces/` whole.
fn tokenize(q: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in q.chars() {
        match quote {
            Some(qc) if c == qc => {
                quote = None;
                if qc == '/' {
                    cur.push(c);
                }
            }
            Some(_) => cur.push(c),
            None if c == '"' => quote = Some('"'),
            None if c == '/' && (cur.is_empty() || cur == "-") => {
                quote = Some('/');
                cur.push(c);
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if let Some(qc) = quote {
        return Err(format!("unclosed {qc} in '{q}'"));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn parse_term(t: &str, now_ms: i64) -> Result<Term, String> {
    if let Some(re) = t.strip_prefix('/').and_then(|r| r.strip_suffix('/')) {
        return Regex::new(re)
            .map(Term::Regex)
            .map_err(|e| format!("bad regex '/{re}/': {}", first_line(&e.to_string())));
    }
    if let Some(path) = t.strip_prefix("$.") {
        return parse_json_term(path, t);
    }
    let Some((field, value)) = t.split_once(':') else {
        return Ok(Term::Text(t.to_lowercase()));
    };
    if let Some(name) = field.strip_prefix("header.") {
        return Ok(Term::Header(name.to_string(), Glob::new(value)?));
    }
    let known = [
        "key",
        "topic",
        "error",
        "fingerprint",
        "reason",
        "state",
        "since",
        "until",
    ];
    if value.is_empty() && known.contains(&field) {
        return Err(format!("'{t}' needs a value after ':'"));
    }
    match field {
        "key" => Ok(Term::Key(Glob::new(value)?)),
        "topic" => Ok(Term::Topic(Glob::new(value)?)),
        "error" => Ok(Term::Error(value.to_lowercase())),
        "fingerprint" => Ok(Term::Fingerprint(value.to_lowercase())),
        "reason" => match value {
            "failed" | "max-attempts-exceeded" | "expired" | "unknown" => {
                Ok(Term::Reason(value.into()))
            }
            _ => Err(format!(
                "unknown reason '{value}' (failed, max-attempts-exceeded, expired, unknown)"
            )),
        },
        "state" => match value {
            "new" | "edited" | "replaying" | "replayed" | "resolved" | "claimed" | "confirmed"
            | "failed-again" => Ok(Term::State(value.into())),
            _ => Err(format!(
                "unknown state '{value}' (new, edited, replaying, replayed, confirmed, failed-again, resolved, claimed)"
            )),
        },
        "since" => parse_time(value, now_ms).map(Term::Since),
        "until" => parse_time(value, now_ms).map(Term::Until),
        // A URL or a `host:port` is free text, not an unknown field.
        _ if field.contains(['.', '/']) || field.is_empty() => Ok(Term::Text(t.to_lowercase())),
        _ => Err(format!(
            "unknown field '{field}' in '{t}' (key, topic, error, fingerprint, reason, state, header.NAME, since, until)"
        )),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim()
}

/// Builds the comparison of a `$.path` term from its value.
type MakeOp = fn(&str) -> Result<Op, String>;

fn parse_json_term(path: &str, whole: &str) -> Result<Term, String> {
    let ops: [(&str, MakeOp); 5] = [
        ("!=", |_| Ok(Op::Ne)),
        ("=", |_| Ok(Op::Eq)),
        ("<", |_| Ok(Op::Lt)),
        (">", |_| Ok(Op::Gt)),
        ("~", |v| {
            Regex::new(v)
                .map(Op::Matches)
                .map_err(|e| format!("bad regex '{v}': {}", first_line(&e.to_string())))
        }),
    ];
    for (sym, make) in ops {
        if let Some((p, v)) = path.split_once(sym) {
            let segs: Vec<String> = p.split('.').map(str::to_string).collect();
            if segs.iter().any(String::is_empty) {
                return Err(format!("bad JSON path in '{whole}'"));
            }
            if v.is_empty() {
                return Err(format!("'{whole}' needs a value after '{sym}'"));
            }
            let v = v.trim_matches('"').to_string();
            return Ok(Term::Json(segs, make(&v)?, v));
        }
    }
    Err(format!("'{whole}' needs an operator: =, !=, <, > or ~"))
}

/// RFC 3339, a plain date (UTC midnight), or an age such as `15m` counted back from now.
fn parse_time(v: &str, now_ms: i64) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis());
    }
    parse_duration(v)
        .map(|d| now_ms - i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .map_err(|_| {
            format!("bad time '{v}': use 2024-11-27, 2024-11-27T09:30:00Z or an age like 15m, 2h")
        })
}

fn text(b: Option<&[u8]>) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b.unwrap_or_default())
}

impl Term {
    fn matches(&self, l: &DeadLetter) -> bool {
        let f = &l.failure;
        match self {
            Term::Key(g) => l.key.is_some() && g.is_match(&text(l.key.as_deref())),
            Term::Topic(g) => l.source.topic.as_deref().is_some_and(|t| g.is_match(t)),
            Term::Fingerprint(f) => crate::engine::read::fingerprint::of_letter(l) == *f,
            Term::Error(s) => [&f.exception_class, &f.message, &f.cause_class]
                .iter()
                .any(|v| {
                    v.as_deref()
                        .is_some_and(|v| v.to_lowercase().contains(s.as_str()))
                }),
            Term::Reason(r) => f.reason.as_str() == r,
            Term::State(s) => state_matches(l.state, s),
            Term::Header(n, g) => l
                .headers
                .last(n)
                .is_some_and(|v| g.is_match(&String::from_utf8_lossy(v))),
            Term::Since(t) => l.dlq_timestamp_ms.is_some_and(|ts| ts >= *t),
            Term::Until(t) => l.dlq_timestamp_ms.is_some_and(|ts| ts <= *t),
            Term::Regex(re) => {
                re.is_match(&text(l.value.as_deref())) || re.is_match(&text(l.key.as_deref()))
            }
            Term::Text(s) => {
                text(l.value.as_deref()).to_lowercase().contains(s.as_str())
                    || text(l.key.as_deref()).to_lowercase().contains(s.as_str())
                    || Term::Error(s.clone()).matches(l)
            }
            Term::Json(path, op, v) => json_matches(l, path, op, v),
        }
    }
}

fn json_matches(l: &DeadLetter, path: &[String], op: &Op, want: &str) -> bool {
    let Some(found) = l.value.as_deref().and_then(|v| {
        jsonpath::lookup(v, path).or_else(|| {
            // Not JSON: a binary format's decoded value (Avro, CBOR, compressed, …).
            let json_text = v
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| matches!(b, b'{' | b'['));
            if json_text {
                return None;
            }
            match crate::engine::decoders::global().decode(v, l.source.topic.as_deref()) {
                crate::engine::decoders::Attempt::Decoded(s) => {
                    jsonpath::lookup_value(&s.value, path)
                }
                _ => None,
            }
        })
    }) else {
        return false;
    };
    let cur = &found;
    let got = match cur {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let nums = (cur.as_f64(), want.parse::<f64>().ok());
    match (op, nums) {
        (Op::Eq, (Some(a), Some(b))) => a == b,
        (Op::Ne, (Some(a), Some(b))) => a != b,
        (Op::Lt, (Some(a), Some(b))) => a < b,
        (Op::Gt, (Some(a), Some(b))) => a > b,
        (Op::Eq, _) => got == want,
        (Op::Ne, _) => got != want,
        (Op::Lt, _) => got.as_str() < want,
        (Op::Gt, _) => got.as_str() > want,
        (Op::Matches(re), _) => re.is_match(&got),
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
