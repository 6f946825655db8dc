//! Config profiles through the binary, as a user meets them: valid fixtures resolve
//! (flags override them), invalid ones fail with one line on stderr that names the
//! file and quotes the mistake, with exit code 2. No server is needed.
#![allow(clippy::unwrap_used)]

fn morgue(config: &str, args: &[&str]) -> (Option<i32>, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = crate::common::procs::morgue_cmd()
        .args(args)
        .arg("--config")
        .arg(format!("{root}/tests/{config}"))
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
        "configs/valid/profiles.toml",
        &["--profile", "orders-prod", "resolve", "0:1", "--yes"],
    );
    // The broker at 127.0.0.1:1 is unreachable: the refusal comes before any connection.
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        "morgue: refused resolve of 1 letters: the profile is read-only\n"
    );
    let (code, err) = morgue(
        "configs/valid/profiles.toml",
        &["--profile", "orders-prod", "replay", "0:1", "--yes"],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("read-only"), "{err}");
}

#[test]
fn profiles_resolve_kafka_and_mongo_targets() {
    let (code, err) = morgue(
        "configs/valid/profiles.toml",
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
        "configs/valid/profiles.toml",
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
        "configs/valid/profiles.toml",
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
        ("configs/invalid/unknown_key.toml", "unknown field `topik`"),
        ("configs/invalid/not_toml.toml", "not_toml.toml' line 2"),
        (
            "configs/invalid/unknown_field.toml",
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
    let out = crate::common::procs::morgue_cmd()
        .args(args)
        .arg("--config")
        .arg(format!("{root}/tests/{config}"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The fixtures of a directory under `tests/configs`, by absolute path.
fn fixtures(dir: &str) -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{root:?}");
    files
}

fn check(file: &std::path::Path) -> std::process::Output {
    crate::common::procs::morgue_cmd()
        .args(["config", "check", "--config"])
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn every_invalid_fixture_gets_exactly_its_messages_from_config_check() {
    // Each file under tests/configs/invalid says what `config check` must print, one
    // `# expect: ` line per mistake, in the file's order, `{file}` for its path.
    for file in fixtures("invalid") {
        let text = std::fs::read_to_string(&file).unwrap();
        let want: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|l| l.replace("{file}", file.to_str().unwrap()))
            .collect();
        assert!(!want.is_empty(), "{file:?} has no # expect: line");
        let out = check(&file);
        assert_eq!(out.status.code(), Some(2), "{file:?}");
        let got: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(got, want, "{file:?}");
        assert!(out.stdout.is_empty(), "{file:?}");
    }
}

#[test]
fn every_valid_fixture_passes_config_check() {
    for file in fixtures("valid") {
        let out = check(&file);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{file:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("ok"), "{file:?}: {stdout}");
    }
    let (code, out, _) = stdout_of("configs/valid/profiles.toml", &["config", "check"]);
    assert_eq!(code, Some(0));
    assert!(out.ends_with("profiles.toml': 2 profiles ok\n"), "{out}");
    // The example the binary prints (assets/config.example.toml) is valid too.
    let example = crate::common::procs::morgue_cmd()
        .args(["config", "example"])
        .output()
        .unwrap();
    assert!(example.status.success());
    let file = std::env::temp_dir().join(format!("morgue-example-{}.toml", std::process::id()));
    std::fs::write(&file, &example.stdout).unwrap();
    let out = check(&file);
    let _ = std::fs::remove_file(&file);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        format!("config '{}': 4 profiles ok", file.display())
    );
}

#[test]
fn config_show_and_profiles_never_print_a_secret() {
    let (code, out, err) = stdout_of("configs/valid/secrets.toml", &["config", "show"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("hunter2") && !out.contains("s3cret"), "{out}");
    assert!(out.contains("\"sasl.password\" = \"***\""), "{out}");
    assert!(out.contains("mongodb://ops:***@db:27017"), "{out}");
    assert!(
        out.contains("sasl.username") && out.contains("ops"),
        "{out}"
    );
    let (code, out, _) = stdout_of("configs/valid/profiles.toml", &["profiles"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("orders-prod") && out.contains("read-only production"),
        "{out}"
    );
    assert!(
        out.contains("trades-mongo") && out.contains("trading.failed_trades"),
        "{out}"
    );
    let (_, out, _) = stdout_of("configs/valid/secrets.toml", &["profiles"]);
    assert!(
        !out.contains("hunter2") && out.contains("redacted"),
        "{out}"
    );
}
