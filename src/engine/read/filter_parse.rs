//! The grammar of the filter language, read by one recursive-descent parser that
//! knows where it is: every malformed query is refused with the 1-based column of
//! the first character it could not read and what it expected there, so a typo is
//! an error, never a filter that matches more than was meant.
//!
//! ```text
//! query   = ws* [ any ] ws*                      (empty: every letter)
//! any     = all { ws+ "or" ws+ all }
//! all     = unary { ws+ [ "and" ws+ ] unary }
//! unary   = [ "-" ] atom                         ("-" touches its term)
//! atom    = "/" REGEX "/"                        (non-empty; "\/" is a slash)
//!         | "$." path ws* op ws* literal
//!         | field ":" value                      (field: key topic error fingerprint
//!                                                 reason state since until header.NAME
//!                                                 jq: a jq expression, true matches)
//!         | "\"" TEXT "\""                       (non-empty; "\"" and "\\" escape)
//!         | WORD                                 (free text; a WORD with ':' whose
//!                                                 field has '.' or '/' is text too)
//! path    = seg { "." seg }      seg = NAME | "\"" TEXT "\""
//! op      = "=" | "!=" | "<" | "<=" | ">" | ">=" | "~"
//! literal = NUMBER | "\"" TEXT "\"" | true | false | null | WORD (after = and != only)
//!         | REGEX up to a space, or quoted (after ~)
//! ```
//!
//! A term ends at a space or the end of the query: `$.price<1)` is refused at the `)`.

use regex::Regex;

use crate::engine::model::duration::parse_duration;
use crate::engine::model::glob::Glob;

/// A query that could not be read: the query, where (1-based column, in characters),
/// and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad filter '{}' at {pos}: {message}", one_line(query))]
pub struct FilterError {
    /// The whole query as given.
    pub query: String,
    /// 1-based column (in characters) of the first character that could not be read.
    pub pos: usize,
    /// What was expected there, or why the term is refused.
    pub message: String,
}

/// One predicate of a query.
#[derive(Debug, Clone)]
pub(super) enum Term {
    Key(Glob),
    Topic(Glob),
    Error(String),
    Fingerprint(String),
    Reason(String),
    State(String),
    Header(String, Glob),
    Since(i64),
    Until(i64),
    Json(Vec<String>, Op, Literal),
    Regex(Regex),
    Text(String),
    Jq(std::sync::Arc<crate::engine::transform::Jq>),
}

/// A comparison in a `$.path` term.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Matches(Regex),
}

/// The right side of a `$.path` comparison.
#[derive(Debug, Clone)]
pub(super) enum Literal {
    /// A number: compared numerically with numbers.
    Num(f64, String),
    /// A quoted string, a bare word or `true`/`false`/`null`: compared as text.
    Text(String),
}

impl Literal {
    /// The literal as written (without quotes).
    pub(super) fn text(&self) -> &str {
        match self {
            Literal::Num(_, t) | Literal::Text(t) => t,
        }
    }
}

/// An `or` of `and` groups of (negated?, term).
pub(super) type Groups = Vec<Vec<(bool, Term)>>;

/// The fields a `field:value` term may name.
const FIELDS: &str = "key, topic, error, fingerprint, reason, state, header.NAME, since, until, jq";
const REASONS: [&str; 4] = ["failed", "max-attempts-exceeded", "expired", "unknown"];
const STATES: [&str; 8] = [
    "new",
    "claimed",
    "edited",
    "replaying",
    "replayed",
    "confirmed",
    "failed-again",
    "resolved",
];

/// Parses `query`; relative times count back from `now_ms`.
pub(super) fn parse(query: &str, now_ms: i64) -> Result<Groups, FilterError> {
    Parser {
        query,
        chars: query.chars().collect(),
        pos: 0,
        now_ms,
    }
    .query()
}

struct Parser<'q> {
    query: &'q str,
    chars: Vec<char>,
    pos: usize,
    now_ms: i64,
}

/// `s` with control characters (a newline pasted into a query) escaped, so an error
/// stays on one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim()
}

fn is_end(c: Option<char>) -> bool {
    c.is_none_or(char::is_whitespace)
}

impl Parser<'_> {
    fn err<T>(&self, at: usize, message: impl Into<String>) -> Result<T, FilterError> {
        Err(FilterError {
            query: self.query.to_string(),
            pos: at + 1,
            message: one_line(&message.into()),
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.chars[from..to].iter().collect()
    }

    /// Whether the next word is the keyword `kw` (any case) standing alone.
    fn at_keyword(&self, kw: &str) -> bool {
        let n = kw.chars().count();
        self.pos + n <= self.chars.len()
            && self.text(self.pos, self.pos + n).eq_ignore_ascii_case(kw)
            && is_end(self.peek_at(n))
    }

    /// After a term: a space or the end, else the term has characters it cannot use.
    fn end_of_term(&self, after: &str) -> Result<(), FilterError> {
        match self.peek() {
            c if is_end(c) => Ok(()),
            Some(c) => self.err(
                self.pos,
                format!("unexpected '{c}' after {after} (terms are separated by spaces)"),
            ),
            None => Ok(()),
        }
    }

    fn query(&mut self) -> Result<Groups, FilterError> {
        let mut groups: Groups = Vec::new();
        let mut cur = Vec::new();
        loop {
            self.skip_ws();
            let Some(c) = self.peek() else { break };
            let start = self.pos;
            for kw in ["or", "and"] {
                if self.at_keyword(kw) {
                    if cur.is_empty() {
                        return self.err(start, format!("expected a term before '{kw}'"));
                    }
                    self.pos += kw.len();
                    self.skip_ws();
                    if self.peek().is_none() || self.at_keyword("or") || self.at_keyword("and") {
                        return self.err(self.pos, format!("expected a term after '{kw}'"));
                    }
                    if kw == "or" {
                        groups.push(std::mem::take(&mut cur));
                    }
                }
            }
            if self.pos != start {
                continue;
            }
            let neg = c == '-';
            if neg {
                self.pos += 1;
                match self.peek() {
                    n if is_end(n) => {
                        return self.err(
                            self.pos,
                            "expected a term after '-' (it negates the term it touches)",
                        );
                    }
                    Some('-') => {
                        return self.err(self.pos, "expected a term after '-', not a second '-'");
                    }
                    _ => {}
                }
            }
            let term = self.atom()?;
            cur.push((neg, term));
        }
        if !cur.is_empty() {
            groups.push(cur);
        }
        Ok(groups)
    }

    fn atom(&mut self) -> Result<Term, FilterError> {
        match self.peek() {
            Some('/') => self.regex(),
            Some('"') => {
                let at = self.pos;
                let s = self.quoted()?;
                if s.is_empty() {
                    return self.err(at + 1, "expected text between the quotes");
                }
                self.end_of_term("the quoted text")?;
                Ok(Term::Text(s.to_lowercase()))
            }
            Some('$') if self.peek_at(1) == Some('.') => self.json(),
            _ => self.word_or_field(),
        }
    }

    /// A `"..."` string starting at the cursor, with `\"` and `\\` escapes.
    fn quoted(&mut self) -> Result<String, FilterError> {
        let open = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => {
                    return self.err(open, "unclosed '\"' (a quote opened here is never closed)");
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some('\\') if matches!(self.peek_at(1), Some('"' | '\\')) => {
                    s.extend(self.peek_at(1));
                    self.pos += 2;
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `pattern` compiled; the error (at column `at`) quotes it as `shown`.
    fn regex_at(&self, pattern: &str, shown: &str, at: usize) -> Result<Regex, FilterError> {
        Regex::new(pattern).or_else(|e| {
            self.err(
                at,
                format!("bad regex '{shown}': {}", last_line(&e.to_string())),
            )
        })
    }

    /// Where the bare word at the cursor ends (a space or the end).
    fn bare_end(&self) -> usize {
        let mut end = self.pos;
        while !is_end(self.chars.get(end).copied()) {
            end += 1;
        }
        end
    }

    /// Characters up to a space or the end.
    fn bare(&mut self) -> String {
        let from = self.pos;
        while !is_end(self.peek()) {
            self.pos += 1;
        }
        self.text(from, self.pos)
    }

    fn regex(&mut self) -> Result<Term, FilterError> {
        let open = self.pos;
        self.pos += 1;
        let from = self.pos;
        loop {
            match self.peek() {
                None => {
                    return self.err(open, "unclosed '/' (a regex opened here is never closed)");
                }
                Some('\\') if self.peek_at(1).is_some() => self.pos += 2,
                Some('/') => break,
                Some(_) => self.pos += 1,
            }
        }
        let pattern = self.text(from, self.pos);
        self.pos += 1;
        if pattern.is_empty() {
            return self.err(from, "expected a pattern between the slashes");
        }
        let re = self.regex_at(&pattern, &format!("/{pattern}/"), from)?;
        self.end_of_term("the regex")?;
        Ok(Term::Regex(re))
    }

    fn word_or_field(&mut self) -> Result<Term, FilterError> {
        let start = self.pos;
        while !is_end(self.peek()) && self.peek() != Some(':') {
            self.pos += 1;
        }
        let field = self.text(start, self.pos);
        if self.peek() != Some(':') {
            if field.starts_with("header.") {
                // Not text that happens to start so: a header term cut short.
                return self.err(self.pos, "expected ':' and a value after header.NAME");
            }
            return Ok(Term::Text(field.to_lowercase()));
        }
        let header = field.strip_prefix("header.");
        let known = header.is_some() || FIELDS.split(", ").any(|f| f == field);
        if !known {
            // A URL (`http://…`) or a `host:port` is free text, not an unknown field.
            let word = self.text(start, self.bare_end());
            let port = word[field.len() + 1..].chars().all(|c| c.is_ascii_digit());
            if word.contains("://") || (!field.is_empty() && word.len() > field.len() + 1 && port) {
                self.pos = start;
                return Ok(Term::Text(self.bare().to_lowercase()));
            }
            let hint = if field.to_lowercase().starts_with("header") {
                " (a header is header.NAME:VALUE)"
            } else {
                ""
            };
            return self.err(
                start,
                format!("unknown field '{field}'{hint} (the fields are {FIELDS})"),
            );
        }
        if header == Some("") {
            return self.err(
                start + "header.".len(),
                "expected a header name after 'header.'",
            );
        }
        self.pos += 1;
        let at = self.pos;
        let quoted = self.peek() == Some('"');
        let value = match quoted {
            true => self.quoted()?,
            false => self.bare(),
        };
        if value.is_empty() {
            return self.err(at, format!("expected a value after '{field}:'"));
        }
        self.end_of_term("the value")?;
        if let Some(name) = header {
            return Ok(Term::Header(name.to_string(), Glob::new(&value)));
        }
        Ok(match field.as_str() {
            "key" => Term::Key(Glob::new(&value)),
            "topic" => Term::Topic(Glob::new(&value)),
            "error" => Term::Error(value.to_lowercase()),
            "fingerprint" if value.chars().all(|c| c.is_ascii_hexdigit()) => {
                Term::Fingerprint(value.to_lowercase())
            }
            "fingerprint" => {
                return self.err(
                    at,
                    format!("expected the hex digits of a fingerprint, got '{value}'"),
                );
            }
            "reason" if REASONS.contains(&value.as_str()) => Term::Reason(value),
            "reason" => {
                let all = REASONS.join(", ");
                return self.err(at, format!("unknown reason '{value}' ({all})"));
            }
            "state" if STATES.contains(&value.as_str()) => Term::State(value),
            "state" => {
                let all = STATES.join(", ");
                return self.err(at, format!("unknown state '{value}' ({all})"));
            }
            "since" => Term::Since(self.time(&value, at)?),
            "jq" => match crate::engine::transform::Jq::value(&value) {
                Ok(jq) => Term::Jq(std::sync::Arc::new(jq)),
                // The column within the expression (escapes before it not counted).
                Err(e) => return self.err(at + usize::from(quoted) + e.column - 1, e.message),
            },
            _ => Term::Until(self.time(&value, at)?),
        })
    }

    /// RFC 3339, a plain date (UTC midnight), or an age such as `15m` counted back from now.
    fn time(&self, v: &str, at: usize) -> Result<i64, FilterError> {
        if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return self.err(
                at,
                format!("'{v}' needs a unit: an age like 15m, 2h, 3d, or a date like 2024-11-27"),
            );
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
            return Ok(t.timestamp_millis());
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
            return Ok(d
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp_millis());
        }
        match parse_duration(v) {
            Ok(d) => Ok(self.now_ms - i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(_) => self.err(
                at,
                format!(
                    "bad time '{v}': use 2024-11-27, 2024-11-27T09:30:00Z or an age like 15m, 2h"
                ),
            ),
        }
    }

    fn json(&mut self) -> Result<Term, FilterError> {
        self.pos += 2;
        let mut path = Vec::new();
        loop {
            let at = self.pos;
            let seg = match self.peek() {
                Some('"') => self.quoted()?,
                _ => {
                    while self
                        .peek()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
                    {
                        self.pos += 1;
                    }
                    self.text(at, self.pos)
                }
            };
            if seg.is_empty() {
                return self.err(at, "expected a field name in the JSON path");
            }
            if self.peek() == Some('[') {
                return self.err(
                    self.pos,
                    "an array index is a segment of its own: $.items.0.qty",
                );
            }
            path.push(seg);
            if self.peek() != Some('.') {
                break;
            }
            self.pos += 1;
        }
        self.skip_ws();
        let op_at = self.pos;
        let two = self.text(self.pos, (self.pos + 2).min(self.chars.len()));
        let (op, len) = match (two.as_str(), self.peek()) {
            ("!=", _) => ("!=", 2),
            ("<=", _) => ("<=", 2),
            (">=", _) => (">=", 2),
            (_, Some('=')) => ("=", 1),
            (_, Some('<')) => ("<", 1),
            (_, Some('>')) => (">", 1),
            (_, Some('~')) => ("~", 1),
            _ => return self.err(op_at, "expected an operator: =, !=, <, <=, >, >= or ~"),
        };
        self.pos += len;
        self.skip_ws();
        let at = self.pos;
        if self.peek().is_none() {
            return self.err(at, format!("expected a value after '{op}'"));
        }
        if op == "~" {
            let pattern = match self.peek() {
                Some('"') => self.quoted()?,
                _ => self.bare(),
            };
            self.end_of_term("the regex")?;
            if pattern.is_empty() {
                return self.err(at, "expected a regex after '~'");
            }
            let re = self.regex_at(&pattern, &pattern, at)?;
            return Ok(Term::Json(path, Op::Matches(re), Literal::Text(pattern)));
        }
        let ordered = !matches!(op, "=" | "!=");
        let lit = self.literal(ordered)?;
        let op = match op {
            "=" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            _ => Op::Ge,
        };
        Ok(Term::Json(path, op, lit))
    }

    /// The value of a comparison: a number, a quoted string, `true`/`false`/`null`, or
    /// (for `=` and `!=` only) a bare word.
    fn literal(&mut self, ordered: bool) -> Result<Literal, FilterError> {
        let at = self.pos;
        let expected = if ordered {
            "expected a number or a \"quoted string\""
        } else {
            "expected a number, string or true/false/null"
        };
        match self.peek() {
            Some('"') => {
                let s = self.quoted()?;
                self.end_of_term("the string")?;
                Ok(Literal::Text(s))
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let number = self.number().and_then(|n| {
                    self.end_of_term("the number")?;
                    Ok(n)
                });
                match number {
                    Ok(n) => Ok(Literal::Num(n, self.text(at, self.pos))),
                    // `$.day=2024-11-27`: after = and != a word that is not a number is text.
                    Err(_) if !ordered => {
                        self.pos = at;
                        Ok(Literal::Text(self.bare()))
                    }
                    Err(e) => Err(e),
                }
            }
            Some(c) if !ordered && !"=!<>~".contains(c) => {
                let word = self.bare();
                Ok(Literal::Text(word))
            }
            _ => self.err(at, expected),
        }
    }

    /// `-?digits[.digits][e[+-]digits]` (a leading `+` or `.` is accepted too).
    fn number(&mut self) -> Result<f64, FilterError> {
        let at = self.pos;
        let digits = |p: &mut Self| {
            let from = p.pos;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.pos += 1;
            }
            p.pos - from
        };
        if matches!(self.peek(), Some('-' | '+')) {
            self.pos += 1;
        }
        let mut n = digits(self);
        if self.peek() == Some('.') {
            self.pos += 1;
            n += digits(self);
        }
        if n == 0 {
            return self.err(at, "expected a number, string or true/false/null");
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some('-' | '+')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return self.err(self.pos, "expected the digits of the exponent");
            }
        }
        let text = self.text(at, self.pos);
        text.parse::<f64>()
            .or_else(|_| self.err(at, format!("'{text}' is not a number")))
    }
}
