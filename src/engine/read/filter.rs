//! The filter language shared by `--filter` and the TUI's `/` line.
//!
//! Terms are separated by spaces (all must match, `and` may be written) and grouped
//! with `or`; `-` negates the term it touches. Terms: `key:GLOB`, `topic:GLOB`,
//! `error:TEXT` (exception class or message), `fingerprint:HEX`, `reason:R`, `state:S`
//! (`replayed` includes `confirmed` and `failed-again`), `header.NAME:GLOB`,
//! `since:T` / `until:T` (RFC 3339, a date, or an age such as `15m`),
//! `$.json.path OP VALUE` (OP is `=`, `!=`, `<`, `<=`, `>`, `>=` or `~` for a regex),
//! `/regex/` (value or key), `jq:EXPR` (a jq expression over the decoded value, with
//! the letter's variables; it matches when its first value is `true`, quoted as
//! `jq:".a > 1"` when it has spaces) and free text (value, key or error). The grammar and its
//! errors live in [`super::filter_parse`]: a query that does not parse is refused
//! with the column it failed at, never read as "everything". Terms that only look at
//! index fields answer without the payload; see [`Filter::index_only`].

use std::sync::Arc;

use crate::engine::decoders::Registry;
use crate::engine::model::letter::{DeadLetter, LetterState};
use crate::engine::read::filter_parse::{Groups, Literal, Op, Term};
use crate::engine::read::index::{IndexRow, NO_TIME};
use crate::engine::read::jsonpath;
use crate::engine::read::store::Store;

pub use crate::engine::read::filter_parse::FilterError;

/// Whether state `s` is asked for by `state:{want}`; `replayed` also takes the letters
/// whose replay has an outcome (`confirmed`, `failed-again`).
fn state_matches(s: LetterState, want: &str) -> bool {
    s.as_str() == want
        || (want == "replayed" && matches!(s, LetterState::Confirmed | LetterState::FailedAgain))
}

/// A parsed query: an `or` of `and` groups of (possibly negated) terms, and the
/// decoders that read a binary payload for its JSON-path terms.
#[derive(Clone)]
pub struct Filter {
    groups: Groups,
    decoders: Arc<Registry>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("groups", &self.groups)
            .finish()
    }
}

impl Filter {
    /// Parses `query`; relative times (`since:15m`) count back from `now_ms`. A query
    /// that does not parse is an error naming the column and what was expected there.
    pub fn parse(query: &str, now_ms: i64) -> Result<Filter, FilterError> {
        crate::engine::read::filter_parse::parse(query, now_ms).map(|groups| Filter {
            groups,
            decoders: crate::engine::decoders::builtin(),
        })
    }

    /// Reads binary payloads (Avro, Protobuf, …) for JSON-path terms with `decoders`
    /// (their schemas) rather than the built-in decoders alone.
    pub fn decoding(mut self, decoders: Arc<Registry>) -> Self {
        self.decoders = decoders;
        self
    }

    /// The decoders its JSON-path terms read binary payloads with.
    pub fn decoders(&self) -> &Arc<Registry> {
        &self.decoders
    }

    /// True when the query is empty (matches everything).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// True when some term looks inside the value (JSON path, regex, free text).
    pub fn needs_payload(&self) -> bool {
        self.groups.iter().flatten().any(|(_, t)| {
            matches!(
                t,
                Term::Json(..) | Term::Regex(_) | Term::Text(_) | Term::Jq(_)
            )
        })
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
            || self.groups.iter().any(|g| {
                g.iter()
                    .all(|(neg, t)| t.matches(l, &self.decoders) != *neg)
            })
    }
}

fn text(b: Option<&[u8]>) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b.unwrap_or_default())
}

impl Term {
    fn matches(&self, l: &DeadLetter, decoders: &Registry) -> bool {
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
                    || Term::Error(s.clone()).matches(l, decoders)
            }
            Term::Json(path, op, v) => json_matches(l, path, op, v, decoders),
            // An error (or a value no decoder reads) is no match.
            Term::Jq(jq) => {
                let topic = l.source.topic.as_deref();
                crate::engine::transform::value_json(l.value.as_deref(), decoders, topic)
                    .and_then(|v| jq.test(&v, crate::engine::transform::letter_vars(l)))
                    .unwrap_or(false)
            }
        }
    }
}

fn json_matches(
    l: &DeadLetter,
    path: &[String],
    op: &Op,
    want: &Literal,
    decoders: &Registry,
) -> bool {
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
            match decoders.decode(v, l.source.topic.as_deref()) {
                crate::engine::decoders::Attempt::Decoded(s) => {
                    jsonpath::lookup_value(&s.value, path)
                }
                _ => None,
            }
        })
    }) else {
        return false;
    };
    compare(&found, op, want)
}

/// `found OP want`: numbers compare with numbers, strings with quoted strings; `=`
/// and `!=` also compare the value's text with what was written (`$.n="5"`,
/// `$.ok=true`). An ordered comparison of a number with a string is false.
fn compare(found: &serde_json::Value, op: &Op, want: &Literal) -> bool {
    use std::cmp::Ordering;
    let got = match found {
        serde_json::Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
        other => std::borrow::Cow::Owned(other.to_string()),
    };
    let ord = match (found, want) {
        (serde_json::Value::Number(n), Literal::Num(b, _)) => {
            n.as_f64().and_then(|a| a.partial_cmp(b))
        }
        (serde_json::Value::String(s), Literal::Text(t)) => Some(s.as_str().cmp(t.as_str())),
        _ => None,
    };
    let eq = ord.map_or(got == want.text(), |o| o == Ordering::Equal);
    match op {
        Op::Eq => eq,
        Op::Ne => !eq,
        Op::Lt => ord == Some(Ordering::Less),
        Op::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => ord == Some(Ordering::Greater),
        Op::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
        Op::Matches(re) => re.is_match(&got),
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
