//! Editing a payload in the user's own editor (`$VISUAL`, `$EDITOR`, else `vi`) on a
//! temporary file while the TUI steps aside, then checking and diffing the result.

use std::io::Write;

/// Opens `text` in the user's editor and returns what was saved; the error says why not.
pub fn edit(text: &str, json: bool) -> Result<String, String> {
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|e| !e.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".to_string());
    edit_with(&editor, text, json)
}

/// Opens `text` in the editor command `editor` (run by `sh`, with the file as `$1`).
fn edit_with(editor: &str, text: &str, json: bool) -> Result<String, String> {
    let ext = if json { "json" } else { "txt" };
    let path = std::env::temp_dir().join(format!(
        "morgue-edit-{}-{}.{ext}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    let fail = |e: std::io::Error| format!("temporary file '{}': {e}", path.display());
    {
        let mut f = std::fs::File::create(&path).map_err(fail)?;
        f.write_all(text.as_bytes()).map_err(fail)?;
    }
    // The editor command may carry arguments (`code --wait`): let the shell split it.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("morgue-editor")
        .arg(&path)
        .status();
    let result = match status {
        Ok(s) if s.success() => std::fs::read_to_string(&path).map_err(fail),
        Ok(s) => Err(format!(
            "editor '{editor}' exited with {s}; the edit was not kept"
        )),
        Err(e) => Err(format!("cannot run editor '{editor}': {e}")),
    };
    // The edit is already read; a leftover file still holds the letter's value, so log it.
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(
            "cannot remove the editor's temp file {}: {e}",
            path.display()
        );
    }
    result.map(|t| t.strip_suffix('\n').map(str::to_string).unwrap_or(t))
}

/// Why `text` cannot be sent where the original was JSON.
pub fn invalid_json(text: &str, json: bool) -> Option<String> {
    if !json {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(text)
        .err()
        .map(|e| format!("not valid JSON: {e}"))
}

/// A line diff: `(' ' | '-' | '+', line)`, shortest edit by longest common subsequence.
/// Payloads of more than 2000 lines are compared as removed-then-added.
pub fn diff(old: &str, new: &str) -> Vec<(char, String)> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len() * b.len() > 4_000_000 {
        return a
            .iter()
            .map(|l| ('-', l.to_string()))
            .chain(b.iter().map(|l| ('+', l.to_string())))
            .collect();
    }
    // lcs[i][j]: common lines of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push((' ', a[i].to_string()));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(('-', a[i].to_string()));
            i += 1;
        } else {
            out.push(('+', b[j].to_string()));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_show_changed_lines_only_as_changes() {
        let d = diff(
            "{\n  \"price\": -3,\n  \"sym\": \"A\"\n}",
            "{\n  \"price\": 3,\n  \"sym\": \"A\"\n}",
        );
        let changed: Vec<_> = d.iter().filter(|(c, _)| *c != ' ').collect();
        assert_eq!(
            changed,
            [
                &('-', "  \"price\": -3,".to_string()),
                &('+', "  \"price\": 3,".to_string())
            ]
        );
        assert_eq!(d.len(), 5);
    }

    #[test]
    fn json_is_checked_only_where_it_was_json() {
        assert!(
            invalid_json("{\"a\": }", true)
                .unwrap()
                .starts_with("not valid JSON")
        );
        assert_eq!(invalid_json("{\"a\": 1}", true), None);
        assert_eq!(invalid_json("free text", false), None);
    }

    #[test]
    fn a_scripted_editor_changes_the_file() {
        // The editor is a sed script, as in the tmux test (no environment changed).
        let out = edit_with("sed -i s/-3/3/", "{\"price\": -3}", true);
        assert_eq!(out.unwrap(), "{\"price\": 3}");
    }
}
