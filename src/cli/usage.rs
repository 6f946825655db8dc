//! Mistakes in the command line as one line on stderr, exit code 2: clap's own errors
//! (a usage block and a tip over several lines) become `morgue: --flag: why, got
//! 'value'`, and options that take a number or a duration see a value starting with
//! `-` (`--rate -3`) so that their parser refuses it by name instead of clap taking
//! it for an unknown flag.

use std::any::TypeId;
use std::error::Error as _;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Lets every option whose value is a number or a duration take a value starting
/// with `-`, in `cmd` and its subcommands.
pub fn numbers_take_a_minus(cmd: clap::Command) -> clap::Command {
    let numeric = [
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
        TypeId::of::<f32>(),
        TypeId::of::<f64>(),
        TypeId::of::<std::time::Duration>(),
    ];
    cmd.mut_args(|a| {
        let takes_number = !a.is_positional()
            && a.get_action().takes_values()
            && numeric.iter().any(|t| a.get_value_parser().type_id() == *t);
        if takes_number {
            a.allow_hyphen_values(true)
        } else {
            a
        }
    })
    .mut_subcommands(numbers_take_a_minus)
}

/// True for the "errors" that are clap printing help or the version as asked.
pub fn is_help(e: &clap::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    )
}

/// Clap's error as one line, without `morgue: `: the flag's name first, then why,
/// and the value quoted.
pub fn one_line(e: &clap::Error) -> String {
    let text = |k| e.get(k).map(ToString::to_string);
    let flag = text(ContextKind::InvalidArg).map(|a| flag_name(&a));
    let value = text(ContextKind::InvalidValue);
    let line = match (e.kind(), flag, value) {
        (ErrorKind::ValueValidation, Some(flag), Some(value)) => {
            let why = e.source().map(ToString::to_string).unwrap_or_default();
            if why.contains('\'') {
                format!("{flag}: {why}")
            } else if why.is_empty() {
                format!("{flag}: bad value '{value}'")
            } else {
                format!("{flag}: {why}, got '{value}'")
            }
        }
        (ErrorKind::InvalidValue, Some(flag), Some(value)) if value.is_empty() => {
            format!("{flag}: needs a value, got ''")
        }
        (ErrorKind::InvalidValue, Some(flag), Some(value)) => {
            let valid = match e.get(ContextKind::ValidValue) {
                Some(ContextValue::Strings(v)) => v.join(", "),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let hint = match text(ContextKind::SuggestedValue) {
                Some(s) => format!(" (did you mean '{s}'?)"),
                None => String::new(),
            };
            format!("{flag}: expected one of {valid}, got '{value}'{hint}")
        }
        (ErrorKind::UnknownArgument, _, _) => unknown(e),
        _ => rendered(e),
    };
    line.replace(['\n', '\r'], " ")
}

/// `--rate <N>` → `--rate`; `[ID]...` → `ID`.
fn flag_name(arg: &str) -> String {
    let first = arg.split_whitespace().next().unwrap_or(arg);
    if first.starts_with('-') {
        return first.to_string();
    }
    first
        .trim_end_matches("...")
        .trim_matches(['[', ']', '<', '>'])
        .to_string()
}

/// An unknown argument, quoted whole as typed (clap names only its first letters:
/// `-1` of `-1:3`), with clap's suggestion or how to pass a value starting with `-`.
fn unknown(e: &clap::Error) -> String {
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(a) => a.to_string(),
        None => return rendered(e),
    };
    let typed = std::env::args()
        .skip(1)
        .find(|a| a == &arg)
        .or_else(|| std::env::args().skip(1).find(|a| a.starts_with(&arg)))
        .unwrap_or(arg);
    let hint = match e.get(ContextKind::SuggestedArg) {
        Some(s) => format!(" (did you mean '{s}'?)"),
        None if typed.starts_with('-') => {
            " (a value starting with '-' goes after `--`, or as --flag=VALUE)".to_string()
        }
        None => String::new(),
    };
    format!("unexpected argument '{typed}'{hint}")
}

/// Clap's own text up to the usage block, its lines joined.
fn rendered(e: &clap::Error) -> String {
    let all = e.render().to_string();
    let mut out = String::new();
    for line in all.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        let line = line.strip_prefix("error: ").unwrap_or(line);
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(line);
    }
    out
}
