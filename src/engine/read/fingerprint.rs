//! Error messages with their variable parts masked, so that letters failing the same
//! way read (and group) the same: `order 8f1c…-… of jane@x.io: '42.00' > 10` becomes
//! `order <uuid> of <email>: '…' > #`. UUIDs, e-mail addresses, hex ids (eight or more
//! hex digits with a digit among them), quoted values and digit runs are masked; the
//! first line only, at most [`MAX_CHARS`] characters. A failure's fingerprint
//! ([`id`]) is a short stable hash of its error class and normalised message: the
//! triage board groups by it and `fingerprint:ID` filters on it. (The first
//! application frame is not part of it: the index does not keep stack traces.)

/// Longest normalised message kept.
pub const MAX_CHARS: usize = 160;

/// The fingerprint of a failure: 8 hex digits of FNV-1a over the error (class, or
/// message when there is no class) and the normalised message.
pub fn id(error: Option<&str>, normalized: Option<&str>) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in error
        .unwrap_or_default()
        .bytes()
        .chain([0u8])
        .chain(normalized.unwrap_or_default().bytes())
    {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// The fingerprint of a letter, as the index computes it.
pub fn of_letter(l: &crate::engine::DeadLetter) -> String {
    let f = &l.failure;
    let error = f.exception_class.as_deref().or(f.message.as_deref());
    let message = f
        .exception_class
        .as_ref()
        .and(f.message.as_deref())
        .map(normalize);
    id(error, message.as_deref())
}

/// `message` with its variable parts masked.
pub fn normalize(message: &str) -> String {
    let mut out = String::new();
    for p in pieces(message) {
        out.push_str(match p {
            Piece::Kept(s) => s,
            Piece::Masked(mask, _) => mask,
        });
    }
    out
}

/// Stands for a masked part in a [`shape`].
pub const HOLE: char = '\u{1}';

/// `message` split for keeping it small: its normalised form, its shape (the
/// normalised form with [`HOLE`] before each mask, so that one shape is one normalised
/// form) and the masked parts in order. [`fill`] puts them back.
pub fn shape(message: &str) -> (String, String, Vec<&str>) {
    let (mut normalized, mut shape, mut parts) = (String::new(), String::new(), Vec::new());
    for p in pieces(message) {
        match p {
            Piece::Kept(s) => {
                normalized.push_str(s);
                // A control character shows as nothing useful; HOLE must stay unique.
                shape.extend(s.chars().map(|c| if c.is_control() { ' ' } else { c }));
            }
            Piece::Masked(mask, original) => {
                normalized.push_str(mask);
                shape.push(HOLE);
                shape.push_str(mask);
                parts.push(original);
            }
        }
    }
    (normalized, shape, parts)
}

/// The masks of one form (a `<…>` mask ends at its `>`).
const FIXED_MASKS: [&str; 3] = ["#", "'…'", "\"…\""];

/// The message a [`shape`] was made from: each [`HOLE`] and the mask after it
/// replaced by the next part.
pub fn fill<'a>(shape: &str, parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut parts = parts.into_iter();
    let mut out = String::with_capacity(shape.len() + 16);
    let mut rest = shape;
    while let Some(at) = rest.find(HOLE) {
        out.push_str(&rest[..at]);
        let after = &rest[at + HOLE.len_utf8()..];
        // The mask: `#`, `<uuid>`-like, or a quote, `…` and the same quote; what
        // follows a HOLE is skipped only when it is one (any shape is safe to fill).
        let mask_len = match FIXED_MASKS.iter().find(|m| after.starts_with(**m)) {
            Some(m) => m.len(),
            None if after.starts_with('<') => after.find('>').map_or(0, |e| e + 1),
            None => 0,
        };
        out.push_str(parts.next().unwrap_or("?"));
        rest = after.get(mask_len..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// The normalised form of a [`shape`].
pub fn unshape(shape: &str) -> String {
    shape.chars().filter(|c| *c != HOLE).collect()
}

/// A run of a message as normalised: kept as it is, or masked (the mask, the original).
enum Piece<'a> {
    Kept(&'a str),
    Masked(&'static str, &'a str),
}

/// The first line of `message` in pieces, at most [`MAX_CHARS`] characters shown.
fn pieces(message: &str) -> Vec<Piece<'_>> {
    let line = message.lines().next().unwrap_or_default().trim();
    let mut out = Vec::new();
    let mut shown = 0;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if shown >= MAX_CHARS {
            out.push(Piece::Kept("…"));
            break;
        }
        if (c == '\'' || c == '"')
            && let Some(end) = rest[1..].find(c)
        {
            let quoted = &rest[..end + 2];
            out.push(Piece::Masked(
                if c == '"' { "\"…\"" } else { "'…'" },
                quoted,
            ));
            shown += 3;
            rest = &rest[end + 2..];
            continue;
        }
        let word_len = rest
            .find(|ch: char| !(ch.is_alphanumeric() || "-_.@+".contains(ch)))
            .unwrap_or(rest.len());
        if word_len == 0 {
            out.push(Piece::Kept(&rest[..c.len_utf8()]));
            shown += 1;
            rest = &rest[c.len_utf8()..];
            continue;
        }
        shown += mask_word(&rest[..word_len], &mut out);
        rest = &rest[word_len..];
    }
    out
}

/// Appends `word` in pieces: a whole UUID, e-mail or hex id masked, else its digit
/// runs; the characters shown.
fn mask_word<'a>(word: &'a str, out: &mut Vec<Piece<'a>>) -> usize {
    let trimmed = word.trim_end_matches(['.', '-']);
    let tail = &word[trimmed.len()..];
    let whole = if is_uuid(trimmed) {
        Some("<uuid>")
    } else if is_email(trimmed) {
        Some("<email>")
    } else if is_hex_id(trimmed) {
        Some("<hex>")
    } else {
        None
    };
    let mut shown = tail.chars().count();
    if let Some(mask) = whole {
        out.push(Piece::Masked(mask, trimmed));
        shown += mask.len();
    } else {
        let mut start = 0;
        let mut digits = None;
        for (i, ch) in trimmed.char_indices() {
            match (ch.is_ascii_digit(), digits) {
                (true, None) => {
                    if start < i {
                        out.push(Piece::Kept(&trimmed[start..i]));
                        shown += trimmed[start..i].chars().count();
                    }
                    digits = Some(i);
                }
                (false, Some(d)) => {
                    out.push(Piece::Masked("#", &trimmed[d..i]));
                    shown += 1;
                    (start, digits) = (i, None);
                }
                _ => {}
            }
        }
        match digits {
            Some(d) => {
                out.push(Piece::Masked("#", &trimmed[d..]));
                shown += 1;
            }
            None if start < trimmed.len() => {
                out.push(Piece::Kept(&trimmed[start..]));
                shown += trimmed[start..].chars().count();
            }
            None => {}
        }
    }
    if !tail.is_empty() {
        out.push(Piece::Kept(tail));
    }
    shown
}

fn is_uuid(w: &str) -> bool {
    w.len() == 36 && uuid::Uuid::try_parse(w).is_ok()
}

fn is_email(w: &str) -> bool {
    w.split_once('@').is_some_and(|(user, host)| {
        !user.is_empty() && host.contains('.') && !host.starts_with('.')
    })
}

fn is_hex_id(w: &str) -> bool {
    let w = w.strip_prefix("0x").unwrap_or(w);
    w.len() >= 8
        && w.chars().all(|c| c.is_ascii_hexdigit())
        && w.chars().any(|c| c.is_ascii_digit())
}

/// A stack frame of the application rather than a framework or the runtime.
pub fn is_app_frame(line: &str) -> bool {
    const LIBRARY: &[&str] = &[
        "java.",
        "javax.",
        "jdk.",
        "sun.",
        "org.springframework.",
        "org.apache.kafka.",
        "kotlin.",
        "scala.",
        "io.micrometer.",
        "reactor.",
        "std::",
        "core::",
        "tokio::",
        "<frozen",
        "site-packages",
        "/usr/lib/python",
    ];
    let t = line.trim_start().trim_start_matches("at ");
    !t.is_empty() && !t.starts_with("...") && !LIBRARY.iter().any(|p| t.contains(p))
}

/// The first application frame of a stack trace (the exception's own line skipped).
pub fn first_app_frame(trace: &str) -> Option<&str> {
    trace
        .lines()
        .skip(1)
        .find(|l| is_app_frame(l))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn variable_parts_are_masked() {
        for (raw, want) in [
            (
                "order 6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b of jane.doe@example.com: '42.00' > 10",
                "order <uuid> of <email>: '…' > #",
            ),
            ("price must be positive: -3", "price must be positive: -#"),
            ("timed out after 30000ms", "timed out after #ms"),
            (
                "object 65f0c0ffee0000000000abcd not found.",
                "object <hex> not found.",
            ),
            ("field \"amount\" is required", "field \"…\" is required"),
            ("no digits at all", "no digits at all"),
            ("first line\nat com.acme.X(X.java:10)", "first line"),
            ("it's broken", "it's broken"),
            ("", ""),
        ] {
            assert_eq!(normalize(raw), want, "{raw}");
        }
    }

    #[test]
    fn fingerprints_are_stable_and_tell_failures_apart() {
        let a = super::id(Some("x.Boom"), Some("order # failed"));
        assert_eq!(a, super::id(Some("x.Boom"), Some("order # failed")));
        assert_eq!(a.len(), 8);
        assert_ne!(a, super::id(Some("x.Boom"), Some("order # late")));
        assert_ne!(a, super::id(Some("x.Bang"), Some("order # failed")));
        // A known value: the hash must not change between builds or machines.
        assert_eq!(super::id(None, None), "050c5d1f");
    }

    #[test]
    fn equal_failures_normalise_equal_and_long_ones_are_cut() {
        assert_eq!(
            normalize("order 17 of 3 failed"),
            normalize("order 99812 of 12 failed")
        );
        let long = normalize(&"word ".repeat(100));
        assert!(long.chars().count() <= super::MAX_CHARS + 1, "{long}");
        assert!(long.ends_with('…'));
    }

    #[test]
    fn a_shape_and_its_parts_give_back_the_message() {
        for raw in [
            "order 6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b of jane.doe@example.com: '42.00' > 10",
            "price must be positive: -3.25",
            "object 65f0c0ffee0000000000abcd not found.",
            "field \"amount\" is required in v2beta3",
            "no digits at all",
            "größe 12 überschritten – 7€",
            "",
        ] {
            let (normalized, shape, parts) = super::shape(raw);
            assert_eq!(normalized, normalize(raw));
            assert_eq!(super::unshape(&shape), normalized);
            assert_eq!(super::fill(&shape, parts), raw);
        }
        let (_, a, _) = super::shape("order 17 of 3 failed");
        let (_, b, _) = super::shape("order 99812 of 12 failed");
        assert_eq!(a, b, "one shape for one failure");
        let (_, shape, parts) = super::shape("x\u{1}y 1");
        assert_eq!(
            super::fill(&shape, parts),
            "x y 1",
            "no part lost to a stray HOLE"
        );
        // A HOLE before what is not a whole mask (no shape has one) keeps it as it is.
        assert_eq!(super::fill("\u{1}'é…", ["x"]), "x'é…");
        assert_eq!(super::fill("a\u{1}'…'b\u{1}", ["1"]), "a1b?");
        let long = "id 12 ".repeat(60);
        let (_, shape, parts) = super::shape(&long);
        let back = super::fill(&shape, parts);
        assert!(back.ends_with('…') && long.starts_with(back.trim_end_matches('…')));
    }
}
