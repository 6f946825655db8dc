//! How the screens write a letter's time and error: `MM-DD HH:MM:SS` in UTC, and
//! the short exception class with its message, the class said once.

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

#[cfg(test)]
mod tests {
    use super::error_line;

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
