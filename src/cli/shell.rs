//! Shell integration, generated from the same clap definitions as the parser:
//! `morgue completions bash|zsh|fish|elvish|powershell`, `morgue man` (a roff man
//! page), and `--version` with librdkafka's version and built-in features.

use clap::CommandFactory;

use super::{Cli, print_line};

/// The command line's definition, with the long version filled in at run time (and
/// numbers and durations taking a leading `-`, for their parsers to refuse by name).
pub fn command() -> clap::Command {
    super::usage::numbers_take_a_minus(Cli::command().long_version(long_version()))
}

/// `0.1.0`, then librdkafka's version and features, then how this binary was built.
pub fn long_version() -> String {
    let (_, rdkafka) = rdkafka::util::get_rdkafka_version();
    let features = rdkafka::ClientConfig::new()
        .create_native_config()
        .and_then(|c| c.get("builtin.features"))
        .unwrap_or_else(|e| format!("unknown ({e})"));
    let build = if cfg!(target_env = "musl") {
        "static (musl; librdkafka, OpenSSL, zlib and zstd built in)"
    } else {
        "dynamic"
    };
    format!(
        "{}\nlibrdkafka {rdkafka} (features: {features})\nbuild: {build}, {}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "morgue", &mut out);
    print_line(String::from_utf8_lossy(&out).trim_end())
}

/// Writes the man page (roff) to stdout.
pub fn man() -> anyhow::Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command()).render(&mut out)?;
    print_line(String::from_utf8_lossy(&out).trim_end())
}
