//! How the screens write a letter's time and error: `MM-DD HH:MM:SS` in UTC, and
//! the short exception class with its message, the class said once.

use crate::engine::model::text::clip;
use crate::engine::read::index::NO_TIME;

/// `MM-DD HH:MM:SS` in UTC, `-` when unknown.
pub fn time(ms: i64) -> String {
    if ms == NO_TIME {
        return "-".into();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

/// The short class and the normalised message: `ValidationException: price must be positive: -#`.
pub fn error_line(error: Option<&str>, message: Option<&str>) -> String {
    let class = short_error(error);
    // Some writers put the class in the message too (`ValueError: bad price`): once.
    let message = message.map(|m| {
        [error.unwrap_or_default(), class.as_str()]
            .iter()
            .filter(|c| !c.is_empty())
            .find_map(|c| m.strip_prefix(*c).and_then(|r| r.strip_prefix(": ")))
            .unwrap_or(m)
    });
    match message {
        Some(m) if !m.is_empty() => format!("{class}: {m}"),
        _ => class,
    }
}

/// The last segment of an exception class (`x.y.Boom` → `Boom`); messages stay whole.
pub fn short_error(e: Option<&str>) -> String {
    let e = e.unwrap_or("-");
    if e.contains(' ') {
        e.to_string()
    } else {
        e.rsplit(['.', ':']).next().unwrap_or(e).to_string()
    }
}

/// The ERROR cell in `w` columns: the class and the message, or the message alone when
/// the class would leave fewer than 15 of its characters.
pub fn error_cell(error: Option<&str>, said: Option<&str>, w: u16) -> String {
    let line = error_line(error, said);
    let class = short_error(error);
    match line.strip_prefix(&format!("{class}: ")) {
        Some(message) if class.chars().count() + 2 + 15 > usize::from(w) => {
            clip(message, usize::from(w)).into_owned()
        }
        _ => clip(&line, usize::from(w)).into_owned(),
    }
}

/// Which optional columns fit, in the order given (most wanted first): each is taken,
/// with its one-column gap, while the column that fills the rest keeps `keep` of the
/// `room` left beside the fixed columns. A column that does not fit leaves room for a
/// narrower one after it; a column of width 0 is not wanted.
pub fn give_way(room: u16, keep: u16, optional: &[u16]) -> Vec<bool> {
    let mut left = room;
    optional
        .iter()
        .map(|w| {
            let fits = *w > 0 && left > keep + w;
            if fits {
                left -= w + 1;
            }
            fits
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{error_line, give_way};

    #[test]
    fn optional_columns_give_way_in_order() {
        assert_eq!(give_way(100, 30, &[16, 14, 14]), [true, true, true]);
        assert_eq!(give_way(60, 24, &[16, 14, 14]), [true, true, false]);
        assert_eq!(give_way(50, 24, &[16, 14, 14]), [true, false, false]);
        assert_eq!(give_way(50, 24, &[30, 9]), [false, true]);
        assert_eq!(give_way(10, 24, &[1]), [false]);
    }

    #[test]
    fn the_class_is_shown_once() {
        let with = |e, m| error_line(Some(e), Some(m));
        // Written by morgue's router before it stopped repeating the class, or by others.
        assert_eq!(
            with("ValidationError", "ValidationError: price must be positive"),
            "ValidationError: price must be positive"
        );
        assert_eq!(
            with(
                "json.decoder.JSONDecodeError",
                "json.decoder.JSONDecodeError: Expecting value"
            ),
            "JSONDecodeError: Expecting value"
        );
        assert_eq!(
            with("x.y.Boom", "Boom: no"),
            "Boom: no",
            "the short class too"
        );
        // A message that merely starts with the same word keeps it.
        assert_eq!(with("Timeout", "Timeouts: 3"), "Timeout: Timeouts: 3");
        assert_eq!(error_line(Some("x.Boom"), None), "Boom");
    }
}
