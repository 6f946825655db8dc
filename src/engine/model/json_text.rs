//! JSON text laid out again without being read into values: every token (a number's
//! spelling, a string's escapes, a repeated key) stays as written, only the whitespace
//! between tokens changes. An edit of a letter is shown and sent this way, so that
//! what the operator confirms is what was typed, and a field nobody touched is sent
//! as it came (`1.10` stays `1.10`, `\u00e9` stays `\u00e9`, a 20-digit id stays whole).

/// `text` with the whitespace between tokens removed; None when it is not JSON.
pub fn compact(text: &str) -> Option<String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    Some(out)
}

/// `text` laid out as serde_json's pretty printer does (two spaces, one member per
/// line, `{}` and `[]` when empty), its tokens untouched; None when it is not JSON.
pub fn pretty(text: &str) -> Option<String> {
    let flat: Vec<char> = compact(text)?.chars().collect();
    let mut out = String::with_capacity(flat.len() * 2);
    let mut depth = 0usize;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    let mut i = 0;
    while i < flat.len() {
        let c = flat[i];
        match c {
            '"' => {
                // A string, escapes and all.
                out.push(c);
                i += 1;
                let mut escaped = false;
                while let Some(&d) = flat.get(i) {
                    out.push(d);
                    i += 1;
                    match (escaped, d) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => {}
                    }
                }
                continue;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                out.push(c);
                if flat.get(i + 1) == Some(&close) {
                    out.push(close);
                    i += 1;
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_serde_jsons_and_the_tokens_are_the_texts() {
        for doc in [
            r#"{"a":1,"b":[1,2,{"c":null}],"d":{},"e":[],"f":"x, y: {z}"}"#,
            r#"[{"k":"v"},"s",true]"#,
            r#"{"n":-3}"#,
        ] {
            let v: serde_json::Value = serde_json::from_str(doc).unwrap();
            assert_eq!(
                pretty(doc).unwrap(),
                serde_json::to_string_pretty(&v).unwrap()
            );
        }
        // What a parse would change stays as written.
        let doc = "{ \"id\": 123456789012345678901234, \"px\": 1.10, \"e\": \"\\u00e9 \\\" }\", \"k\": 1, \"k\": 2 }";
        assert_eq!(
            compact(doc).unwrap(),
            r#"{"id":123456789012345678901234,"px":1.10,"e":"\u00e9 \" }","k":1,"k":2}"#
        );
        let p = pretty(doc).unwrap();
        assert!(
            p.contains("\n  \"px\": 1.10,\n") && p.contains("\"e\": \"\\u00e9 \\\" }\""),
            "{p}"
        );
        assert_eq!(
            compact(&p),
            compact(doc),
            "pretty then compact is the compact text"
        );
        assert_eq!(pretty("{\"a\": "), None);
        assert_eq!(compact("not json"), None);
    }
}
