//! Config profiles through the binary, as a user meets them: valid fixtures resolve
//! (flags override them), invalid ones fail with one line on stderr that names the
//! file and quotes the mistake, with exit code 2. No server is needed.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn morgue(config: &str, args: &[&str]) -> (Option<i32>, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_morgue"))
        .args(args)
        .arg("--config")
        .arg(format!("{root}/tests/{config}"))
        .env_remove("MORGUE_PROFILE")
        .env_remove("MORGUE_KAFKA")
        .env_remove("MORGUE_MONGO")
        .env_remove("MORGUE_READ_ONLY")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_read_only_profile_refuses_writes_before_touching_anything() {
    let (code, err) = morgue(
        "valid_configs/profiles.toml",
        &["--profile", "orders-prod", "resolve", "0:1", "--yes"],
    );
    // The broker at 127.0.0.1:1 is unreachable: the refusal comes before any connection.
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        "morgue: refused resolve of 1 letters: the profile is read-only\n"
    );
    let (code, err) = morgue(
        "valid_configs/profiles.toml",
        &["--profile", "orders-prod", "replay", "0:1", "--yes"],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("read-only"), "{err}");
}

#[test]
fn profiles_resolve_kafka_and_mongo_targets() {
    let (code, err) = morgue(
        "valid_configs/profiles.toml",
        &["--profile", "trades-mongo", "list"],
    );
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("morgue: cannot reach MongoDB at 'mongodb://127.0.0.1:1/"),
        "{err}"
    );
    // A flag overrides the profile.
    let other = "mongodb://127.0.0.1:2/?serverSelectionTimeoutMS=200";
    let (code, err) = morgue(
        "valid_configs/profiles.toml",
        &["--profile", "trades-mongo", "--mongo", other, "list"],
    );
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("morgue: cannot reach MongoDB at 'mongodb://127.0.0.1:2/"),
        "{err}"
    );
}

#[test]
fn a_missing_profile_lists_the_known_ones() {
    let (code, err) = morgue(
        "valid_configs/profiles.toml",
        &["--profile", "nope", "list"],
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("no profile 'nope'"), "{err}");
    assert!(
        err.contains("(profiles: orders-prod, trades-mongo)"),
        "{err}"
    );
}

#[test]
fn invalid_configs_are_one_line_usage_errors() {
    for (file, expect) in [
        ("invalid_configs/unknown_key.toml", "unknown field `topik`"),
        ("invalid_configs/not_toml.toml", "not_toml.toml' line 1"),
        (
            "invalid_configs/unknown_field.toml",
            "unknown MongoDB field 'colour'",
        ),
    ] {
        let (code, err) = morgue(file, &["--profile", "p", "list"]);
        assert_eq!(code, Some(2), "{file}: {err}");
        assert!(err.contains(expect), "{file}: {err}");
        assert_eq!(err.lines().count(), 1, "{file}: {err}");
    }
}

fn stdout_of(config: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_morgue"))
        .args(args)
        .arg("--config")
        .arg(format!("{root}/tests/{config}"))
        .env_remove("MORGUE_PROFILE")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_check_names_file_line_profile_and_key_of_each_mistake() {
    let (code, out, _) = stdout_of("valid_configs/profiles.toml", &["config", "check"]);
    assert_eq!(code, Some(0));
    assert!(out.ends_with("profiles.toml': 2 profiles ok\n"), "{out}");
    let (code, _, err) = stdout_of("invalid_configs/bad_values.toml", &["config", "check"]);
    assert_eq!(code, Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines.iter().any(|l| l
            .contains("bad_values.toml' line 5: profile 'p' key 'confirm_after'")
            && l.contains("'soon'")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("line 9: profile 'q' key 'redact'") && l.contains("'bogus'")),
        "{err}"
    );
    let (code, _, err) = stdout_of("invalid_configs/unknown_key.toml", &["config", "check"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown field `topik`"), "{err}");
}

#[test]
fn config_show_and_profiles_never_print_a_secret() {
    let (code, out, err) = stdout_of("valid_configs/secrets.toml", &["config", "show"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("hunter2") && !out.contains("s3cret"), "{out}");
    assert!(out.contains("\"sasl.password\" = \"***\""), "{out}");
    assert!(out.contains("mongodb://ops:***@db:27017"), "{out}");
    assert!(
        out.contains("sasl.username") && out.contains("ops"),
        "{out}"
    );
    let (code, out, _) = stdout_of("valid_configs/profiles.toml", &["profiles"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("orders-prod") && out.contains("read-only production"),
        "{out}"
    );
    assert!(
        out.contains("trades-mongo") && out.contains("trading.failed_trades"),
        "{out}"
    );
    let (_, out, _) = stdout_of("valid_configs/secrets.toml", &["profiles"]);
    assert!(
        !out.contains("hunter2") && out.contains("redacted"),
        "{out}"
    );
}
