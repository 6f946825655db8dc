//! Cutting text short for one-line messages: always on a character, never inside one
//! (a byte index into a `str` that lands inside `é` panics), with `…` where it was cut.

use std::borrow::Cow;

/// The `…` that marks a cut.
pub const MORE: char = '…';

/// `s` in at most `max` characters, the last of them `…` when it was cut.
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some(_) => {
            let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
            out.push(MORE);
            Cow::Owned(out)
        }
    }
}

/// `s` in at most `max` characters, cut in the middle when too long: its start and end
/// kept around a `…` (`ORD-2024…-000123`), for names told apart by either end.
pub fn clip_middle(s: &str, max: usize) -> Cow<'_, str> {
    clip_ends(s, max, |kept| kept.div_ceil(2))
}

/// `s` in at most `max` characters, cut in the middle when too long, `head(kept)` of
/// the `kept` characters (all but the `…`) taken from its start and the rest from its end.
pub fn clip_ends(s: &str, max: usize, head: impl Fn(usize) -> usize) -> Cow<'_, str> {
    let n = s.chars().count();
    if n <= max {
        return Cow::Borrowed(s);
    }
    let kept = max.saturating_sub(1);
    let head = head(kept).min(kept);
    let mut out: String = s.chars().take(head).collect();
    out.push(MORE);
    out.extend(s.chars().skip(n - (kept - head)));
    Cow::Owned(out)
}

/// `s` in at most `max` bytes (when `max` holds a `…`), cut on a character, the last of
/// them `…` when it was cut; for budgets counted in bytes.
pub fn clip_bytes(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max.saturating_sub(MORE.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + MORE.len_utf8());
    out.push_str(&s[..end]);
    out.push(MORE);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_counts_characters_and_cuts_between_them() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
        assert_eq!(clip("ééééé", 3), "éé…");
        assert_eq!(clip("e\u{301}e\u{301}", 3), "e\u{301}…", "a combining mark");
        assert_eq!(clip("😀😀😀😀", 2), "😀…");
        assert_eq!(clip("abc", 0), "…");
        assert_eq!(clip("", 0), "");
    }

    #[test]
    fn clip_middle_keeps_both_ends_on_characters() {
        assert_eq!(clip_middle("ORD-2024-11-27-000123", 16), "ORD-2024…-000123");
        assert_eq!(clip_middle("ORD-2024-000123", 16), "ORD-2024-000123");
        assert_eq!(clip_middle("ééééé", 4), "éé…é");
        assert_eq!(clip_middle("abcdef", 1), "…");
        assert_eq!(clip_middle("abcdef", 0), "…");
        assert_eq!(clip_middle("😀😀😀😀", 3), "😀…😀");
    }

    #[test]
    fn clip_bytes_stays_within_the_budget_on_a_character() {
        assert_eq!(clip_bytes("abc", 3), "abc");
        // 'é' is two bytes: 9 bytes hold three of them and the three of `…`.
        let cut = clip_bytes("ééééééé", 9);
        assert_eq!(cut, "ééé…");
        assert_eq!(clip_bytes("ééééééé", 8), "éé…", "not half of the third");
        assert!(cut.len() <= 9);
        assert_eq!(clip_bytes("😀😀", 6), "…");
        assert_eq!(clip_bytes("😀😀", 7), "😀…");
        assert_eq!(
            clip_bytes("abcdef", 1),
            "…",
            "a budget too small for the mark"
        );
    }
}
