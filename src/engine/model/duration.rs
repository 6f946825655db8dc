//! Short human durations as people type them on the command line: `250ms`, `5s`,
//! `15m`, `2h`, `1d` (a bare number means seconds).

use std::time::Duration;

/// The longest duration taken (100 years): anything longer is a typo, and would
/// overflow the clocks it is added to.
pub const MAX: Duration = Duration::from_secs(100 * 365 * 86400);

/// Parses `250ms`, `5s`, `15m`, `2h`, `1d` or a bare number of seconds, from 0 to
/// [`MAX`]; the error quotes the input.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.strip_prefix('-')
        .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
    {
        return Err(format!("bad duration '{s}': negative"));
    }
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("bad duration '{s}': expected e.g. 500ms, 5s, 15m, 2h, 1d"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        u => {
            return Err(format!(
                "bad duration '{s}': unknown unit '{u}' (use ms, s, m, h, d)"
            ));
        }
    };
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| *d <= MAX)
        .ok_or_else(|| format!("bad duration '{s}': out of range (at most 100 years)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
    }

    #[test]
    fn errors_quote_the_input() {
        assert!(parse_duration("soon").unwrap_err().contains("'soon'"));
        assert!(
            parse_duration("5y")
                .unwrap_err()
                .contains("unknown unit 'y'")
        );
    }
}
