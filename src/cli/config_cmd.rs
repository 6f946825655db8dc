//! `morgue config check` (every mistake of the config file, each naming the file, the
//! line and the key), `morgue config show` (the profiles as read, secrets masked) and
//! `morgue profiles` (one line per profile).

use super::profile::{Config, Profile, default_config_path, load_config};
use super::{BackendArgs, UsageError, print_line};
use crate::tui::keymap::Keymap;
use crate::tui::theme::{Palette, ThemeSetting};

/// What `morgue config` does.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Check the config file: syntax, keys, and each profile's values.
    Check,
    /// Print the profiles as read, with passwords and secrets masked.
    Show,
    /// Print an example config file, every key explained (assets/config.example.toml).
    Example,
}

/// The example config file, as shipped.
pub const EXAMPLE: &str = include_str!("../../assets/config.example.toml");

fn path_of(backend: &BackendArgs) -> std::path::PathBuf {
    backend.config.clone().unwrap_or_else(default_config_path)
}

/// The keymap and palette of the config file (the shipped ones when there is no
/// file); a mistake names the file, the line and the key.
pub fn ui(backend: &BackendArgs) -> Result<(Keymap, Palette), UsageError> {
    let path = path_of(backend);
    if !path.exists() && backend.config.is_none() {
        return Ok((
            Keymap::defaults(),
            Palette::shipped("dark").map_err(UsageError)?,
        ));
    }
    let config = load_config(&path)?;
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mistakes = ui_mistakes(&config);
    if let Some((table, key, why)) = mistakes.into_iter().next() {
        let line = line_in(&text, table, &key);
        return Err(UsageError(format!(
            "config '{}' line {line}: {}key '{key}': {why}",
            path.display(),
            if table.is_empty() {
                String::new()
            } else {
                format!("[{table}] ")
            }
        )));
    }
    let keymap = Keymap::with(&config.keys).map_err(UsageError)?;
    let palette = match &config.theme {
        Some(t) => Palette::of(t).map_err(UsageError)?,
        None => Palette::shipped("dark").map_err(UsageError)?,
    };
    Ok((keymap, palette))
}

/// The mistakes of `[keys]` and `theme`: (table, key, why).
fn ui_mistakes(config: &Config) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    for (action, keys) in &config.keys {
        let one = std::collections::BTreeMap::from([(action.clone(), keys.clone())]);
        if let Err(e) = Keymap::with(&one) {
            out.push(("keys", action.clone(), e));
        }
    }
    match &config.theme {
        Some(t @ ThemeSetting::Name(_)) => {
            if let Err(e) = Palette::of(t) {
                out.push(("", "theme".into(), e));
            }
        }
        Some(ThemeSetting::Custom(table)) => {
            for (k, v) in table {
                let mut one = std::collections::BTreeMap::from([(k.clone(), v.clone())]);
                if k != "base"
                    && let Some(b) = table.get("base")
                {
                    one.insert("base".into(), b.clone());
                }
                if let Err(e) = Palette::of(&ThemeSetting::Custom(one)) {
                    out.push(("theme", k.clone(), e));
                }
            }
        }
        None => {}
    }
    out
}

/// Runs `morgue config …`.
pub fn config(backend: &BackendArgs, cmd: &ConfigCommand) -> anyhow::Result<()> {
    if let ConfigCommand::Example = cmd {
        return print_line(EXAMPLE.trim_end());
    }
    let path = path_of(backend);
    let config = load_config(&path)?;
    match cmd {
        ConfigCommand::Example => Ok(()),
        ConfigCommand::Check => {
            let text = std::fs::read_to_string(&path)?;
            let ui = ui_mistakes(&config).into_iter().map(|(table, key, why)| {
                let line = line_in(&text, table, &key);
                let place = match table {
                    "" => String::new(),
                    t => format!("[{t}] "),
                };
                let m = format!(
                    "config '{}' line {line}: {place}key '{key}': {why}",
                    path.display()
                );
                (line, m)
            });
            let mut mistakes: Vec<(usize, String)> = config
                .profiles
                .iter()
                .flat_map(|(name, p)| super::profile_check::check(name, p))
                .map(|(name, key, why)| {
                    let line = line_of(&text, &name, key);
                    let m = format!(
                        "config '{}' line {line}: profile '{name}' key '{key}': {why}",
                        path.display()
                    );
                    (line, m)
                })
                .chain(ui)
                .collect();
            // In the file's order; the last one is the command's error.
            mistakes.sort();
            if let Some((_, last)) = mistakes.pop() {
                for (_, m) in &mistakes {
                    eprintln!("morgue: {m}");
                }
                return Err(UsageError(last).into());
            }
            print_line(format!(
                "config '{}': {} profile{} ok",
                path.display(),
                config.profiles.len(),
                if config.profiles.len() == 1 { "" } else { "s" }
            ))
        }
        ConfigCommand::Show => {
            let mut shown = config.profiles.clone();
            for p in shown.values_mut() {
                mask(p);
            }
            let mut out = toml::Table::new();
            out.insert(
                "profiles".into(),
                toml::Value::try_from(&shown).map_err(|e| anyhow::anyhow!("{e}"))?,
            );
            print_line(format!(
                "# {}\n{}",
                path.display(),
                toml::to_string(&out)?.trim_end()
            ))
        }
    }
}

/// Runs `morgue profiles`: name, where, and the flags that matter.
pub fn profiles(backend: &BackendArgs) -> anyhow::Result<()> {
    let path = path_of(backend);
    if !path.exists() && backend.config.is_none() {
        return print_line(format!("no config file at '{}'", path.display()));
    }
    let config = load_config(&path)?;
    for (name, p) in &config.profiles {
        print_line(format!("{name:<20} {}", summary(p)).trim_end())?;
    }
    Ok(())
}

/// The config file's profiles for the TUI's picker (none when there is no file or it
/// does not read).
pub fn rows(backend: &BackendArgs) -> Vec<crate::tui::profiles::ProfileRow> {
    load_config(&path_of(backend))
        .map(|c| {
            c.profiles
                .iter()
                .map(|(name, p)| crate::tui::profiles::ProfileRow {
                    name: name.clone(),
                    dlq: summary(p),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Where a profile's DLQ is, and the flags that matter (`kafka H topic T  read-only`).
fn summary(p: &Profile) -> String {
    {
        let dlq = match (&p.kafka, &p.topic, &p.mongo) {
            (_, _, Some(uri)) => format!(
                "mongo {} {}.{}",
                crate::backends::mongo::redact(uri),
                p.db.as_deref().unwrap_or("?"),
                p.collection
                    .as_deref()
                    .unwrap_or(crate::backends::mongo::DEFAULT_COLLECTION)
            ),
            (Some(k), Some(t), None) => format!("kafka {k} topic {t}"),
            (Some(k), None, None) => format!("kafka {k} (overview)"),
            _ => "no DLQ".to_string(),
        };
        let flags: Vec<&str> = [
            (p.read_only, "read-only"),
            (p.production, "production"),
            (p.redact.is_some(), "redacted"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| *f)
        .collect();
        format!("{dlq}  {}", flags.join(" ")).trim_end().to_string()
    }
}

/// The line of `key` in `[profiles.NAME]` (1 when not found).
/// A key that is a table of its own (`[profiles.NAME.schemas]`) is found by its header.
fn line_of(text: &str, profile: &str, key: &str) -> usize {
    match line_in(text, &format!("profiles.{profile}"), key) {
        1 => text
            .lines()
            .position(|l| l.trim() == format!("[profiles.{profile}.{key}]"))
            .map_or(1, |i| i + 1),
        n => n,
    }
}

/// The line of `key` in table `[TABLE]` ("": before any table; 1 when not found).
fn line_in(text: &str, table: &str, key: &str) -> usize {
    let quoted = match table.split_once('.') {
        Some((a, b)) => format!("[{a}.\"{b}\"]"),
        None => format!("[\"{table}\"]"),
    };
    let mut inside = table.is_empty();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == format!("[{table}]") || t == quoted;
        } else if inside
            && t.split('=')
                .next()
                .is_some_and(|k| k.trim().trim_matches('"') == key)
        {
            return i + 1;
        }
    }
    1
}

/// Masks what must never print: passwords in URIs and secret-looking properties.
fn mask(p: &mut Profile) {
    if let Some(m) = &p.mongo {
        p.mongo = Some(crate::backends::mongo::redact(m));
    }
    if let Some(r) = &p.schema_registry {
        p.schema_registry = Some(crate::engine::model::urls::redact(r));
    }
    for (k, v) in p.properties.iter_mut() {
        let k = k.to_ascii_lowercase();
        if [
            "password",
            "secret",
            "token",
            "oauthbearer.config",
            "key.pem",
        ]
        .iter()
        .any(|s| k.contains(s))
        {
            *v = "***".into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_their_profile() {
        let text = "[profiles.a]\nconfirm_after = \"x\"\n[profiles.b]\nkafka = \"k\"\nconfirm_after = \"soon\"\n";
        assert_eq!(line_of(text, "b", "confirm_after"), 5);
        assert_eq!(line_of(text, "a", "confirm_after"), 2);
    }

    #[test]
    fn a_shown_profile_has_no_password_in_its_urls() {
        let mut p = Profile {
            mongo: Some("mongodb://ops:p@ss@db-1,db-2/admin".into()),
            schema_registry: Some("http://ops:p@ss@reg:8081".into()),
            ..Profile::default()
        };
        mask(&mut p);
        assert_eq!(
            p.mongo.as_deref(),
            Some("mongodb://ops:***@db-1,db-2/admin")
        );
        let registry = p.schema_registry.unwrap_or_default();
        assert!(
            registry.starts_with("http://ops:***@reg:8081"),
            "{registry}"
        );
        assert!(!registry.contains("ss@"), "{registry}");
    }
}
