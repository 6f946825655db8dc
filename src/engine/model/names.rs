//! Names: who runs this process (`user@host`, for the ledger and the audit log), and
//! whether a topic or collection name matches a glob.

/// `user@host` of whoever runs this process, for the ledger and audit log.
pub fn whoami() -> String {
    let env = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok();
    format!("{}@{}", user_name(env), hostname())
}

/// This process's user: the system's name for it, else `env` (`$USER`), else `unknown`.
fn user_name(env: Option<String>) -> String {
    pick_user(user_from_system(), env)
}

/// The first name that is there and not empty: the system's, then the environment's,
/// then `unknown`.
fn pick_user(system: Option<String>, env: Option<String>) -> String {
    [system, env]
        .into_iter()
        .flatten()
        .find(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The name of this process's real user in the system's user database (getpwuid_r:
/// /etc/passwd, and through NSS also LDAP or SSSD users).
fn user_from_system() -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// This machine's host name, or `unknown`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

/// True when `name` matches one of the glob `patterns` (see [`super::glob`]).
pub fn matches_any(name: &str, patterns: &[String]) -> bool {
    super::glob::matches_any(name, patterns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_is_the_one_the_system_names() {
        let id = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        assert!(id.status.success(), "id -un failed");
        let expected = String::from_utf8(id.stdout).unwrap().trim().to_string();
        assert_eq!(user_from_system().as_deref(), Some(expected.as_str()));
        let env = Some("not-the-system-user".to_string());
        assert_eq!(user_name(env), expected, "$USER does not win");
        assert!(
            whoami().starts_with(&format!("{expected}@")),
            "{}",
            whoami()
        );
    }

    #[test]
    fn the_system_name_wins_over_the_environment() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(pick_user(s("alice"), s("bob")), "alice");
        assert_eq!(pick_user(None, s("bob")), "bob");
        assert_eq!(pick_user(s(""), s("bob")), "bob");
        assert_eq!(pick_user(None, None), "unknown");
    }
}
