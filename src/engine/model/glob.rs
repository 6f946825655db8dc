//! The one glob matcher: `*` any run of characters (newlines too), `?` one character,
//! everything else itself. Used by the filter language (`key:`, `topic:`,
//! `header.NAME:`) and by DLQ name patterns (`--pattern`, `dlq_patterns`). Linear in
//! practice: the classic two-pointer walk that backtracks only to the last `*`, never
//! exponential however many `*` a pattern has.

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(Vec<char>);

impl Glob {
    /// The pattern `p`.
    pub fn new(p: &str) -> Glob {
        Glob(p.chars().collect())
    }

    /// Whether the whole of `s` matches (no allocation: `s` is walked by byte index
    /// on character boundaries).
    pub fn is_match(&self, s: &str) -> bool {
        let p = &self.0;
        let next = |j: usize| s[j..].chars().next().map(|c| (c, j + c.len_utf8()));
        let (mut i, mut j) = (0, 0);
        // The last `*` seen, and where in `s` it was tried up to.
        let mut star: Option<(usize, usize)> = None;
        while let Some((c, after)) = next(j) {
            match p.get(i) {
                Some('*') => {
                    star = Some((i, j));
                    i += 1;
                }
                Some(q) if *q == '?' || *q == c => {
                    i += 1;
                    j = after;
                }
                _ => match star {
                    // Let the last `*` take one more character.
                    Some((si, sj)) => {
                        let taken = next(sj).map_or(s.len(), |(_, a)| a);
                        i = si + 1;
                        j = taken;
                        star = Some((si, taken));
                    }
                    None => return false,
                },
            }
        }
        p[i..].iter().all(|c| *c == '*')
    }
}

/// True when `name` matches one of the glob `patterns`.
pub fn matches_any(name: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| Glob::new(p).is_match(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_marks_match_characters() {
        let m = |p: &str, s: &str| Glob::new(p).is_match(s);
        assert!(m("orders.*", "orders.DLT"));
        assert!(m("*.DLT", "orders.DLT") && !m("*.DLT", "orders.DLQ"));
        assert!(m("ORD-?", "ORD-é"), "? is one character, not one byte");
        assert!(!m("ORD-?", "ORD-"));
        assert!(m("a*b*c", "aXXbYYc") && !m("a*b*c", "aXXbYY"));
        assert!(m("*", "") && m("", "") && !m("", "x"));
        assert!(m("key*", "key\nwith a newline"));
        assert!(m("exact", "exact") && !m("exact", "exactly"));
        // Many stars on a long name stay quick (the recursive matcher took minutes).
        let p = "*a".repeat(30);
        assert!(!m(&p, &"a".repeat(29)));
        assert!(m(&p, &"a".repeat(200)));
    }
}
