//! `morgue list`: the DLQ's letters (from a position, filtered, optionally followed
//! live), streamed to stdout as they are read, with their ledger state and, for
//! replayed letters, what became of the replay (see `engine::read::outcome`).

use crate::engine::decoders::Registry;
use std::io::Write;

use tokio::sync::mpsc;

use super::backend::Dlq;
use super::{BackendArgs, Output, UsageError, stdout_error};
use crate::engine::DeadLetter;
use crate::engine::export::json::{LetterJson, rfc3339};
use crate::engine::model::letter::FailureContext;
use crate::engine::model::text::{MORE, clip, clip_middle};
use crate::engine::read::outcome::{self, Watch};
use crate::engine::read::source::{SourceEvent, StartAt};

/// Options of `morgue list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Output,
    /// Where to start: beginning, end, an offset (each partition), an RFC 3339 time or an age like 2h.
    #[arg(long, default_value = "beginning", value_name = "POS")]
    pub from: String,
    /// Keep printing new letters as they arrive (Ctrl-C stops), like `tail -f`.
    #[arg(long)]
    pub follow: bool,
    /// Only letters matching this query (syntax: docs/commands.md, Filter syntax).
    #[arg(long, short = 'f', value_name = "QUERY", allow_hyphen_values = true)]
    pub filter: Option<String>,
    /// Stop after this many letters (at least 1).
    #[arg(long, short = 'n', value_name = "N", value_parser = super::values::count)]
    pub limit: Option<u32>,
}

/// Streams the DLQ from `--from` and prints each matching letter as it is read.
pub async fn run(backend: &BackendArgs, args: &ListArgs) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    let from = StartAt::parse(&args.from, now).map_err(|e| UsageError(format!("--from: {e}")))?;
    let target = backend.target()?;
    let filter = super::filter_arg(args.filter.as_deref(), now)?
        .map(|f| f.decoding(target.decoders.clone()));
    let mut table = Table::new(match target.dlq {
        // An ObjectId's 24 hex digits.
        Dlq::Mongo { .. } => 24,
        Dlq::Kafka { .. } | Dlq::File { .. } => ID_WIDTH,
    });
    let source = target.dlq.open().await?.source;
    // Replayed letters show what became of their replay: a read of the DLQ's tail
    // since the earliest replay (nothing when none was replayed or only new letters are asked).
    let watch = match from {
        StartAt::End => Watch::new(target.confirm_after_ms),
        _ => outcome::prepare(source.as_ref(), target.confirm_after_ms).await?,
    };
    let (tx, mut rx) = mpsc::channel(crate::engine::read::source::AHEAD);
    let follow = args.follow;
    let reader = tokio::spawn(async move { source.stream(from, follow, tx).await });
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut printed = 0u64;
    'read: while let Some(event) = rx.recv().await {
        let batch = match event {
            SourceEvent::Letters(batch) => batch,
            ev @ (SourceEvent::Notice(_)
            | SourceEvent::Silent { .. }
            | SourceEvent::Answering { .. }) => {
                super::tell(&ev);
                continue;
            }
            SourceEvent::CaughtUp { .. } => {
                if follow {
                    if let Output::Table = args.output {
                        // Following: the header now, not with the first new letter.
                        table.header(&mut out, &[]).map_err(stdout_error)?;
                    }
                    out.flush().map_err(stdout_error)?;
                    // As kcat says it reached the end: what follows is new.
                    eprintln!("morgue: caught up; following (ctrl-c stops)");
                }
                continue;
            }
        };
        crate::engine::decoders::prepare_letters(&target.decoders, &batch).await;
        let mut shown = Vec::with_capacity(batch.len());
        let mut enough = false;
        for mut l in batch {
            watch.settle(&mut l, now);
            if filter.as_ref().is_some_and(|f| !f.matches(&l)) {
                continue;
            }
            shown.push(l);
            printed += 1;
            if args.limit.is_some_and(|n| printed >= u64::from(n)) {
                enough = true;
                break;
            }
        }
        print_letters(&target.decoders, &mut out, &shown, args.output, &mut table)
            .map_err(stdout_error)?;
        if enough {
            break 'read;
        }
        if follow {
            out.flush().map_err(stdout_error)?;
        }
    }
    if let Output::Table = args.output {
        // Nothing matched: the header alone.
        table.header(&mut out, &[]).map_err(stdout_error)?;
    }
    out.flush().map_err(stdout_error)?;
    drop(rx);
    reader.await??;
    Ok(())
}

fn print_letters(
    decoders: &Registry,
    out: &mut impl Write,
    letters: &[DeadLetter],
    output: Output,
    table: &mut Table,
) -> std::io::Result<()> {
    match output {
        Output::Json => {
            for l in letters {
                serde_json::to_writer(&mut *out, &LetterJson::of(l, decoders))?;
                writeln!(out)?;
            }
            Ok(())
        }
        Output::Table if letters.is_empty() => Ok(()),
        Output::Table => {
            table.header(out, letters)?;
            for l in letters {
                writeln!(out, "{}", table.row(l))?;
            }
            Ok(())
        }
    }
}

/// Width of the ID column at least (a Kafka `PARTITION:OFFSET`).
const ID_WIDTH: usize = 12;
/// Width of the KEY column: a longer key keeps its start and end (`ORD-2024…-000123`).
const KEY_WIDTH: usize = 16;
/// Width of the ERROR column: the class, then as much of the message as fits.
const ERROR_WIDTH: usize = 40;
/// The fewest characters of the message (its `…` included) worth showing after the class.
const MESSAGE_AT_LEAST: usize = 5;

/// The table of `-o table`. Ids are never cut (they are what `show` and `replay`
/// take): the ID column is as wide as the longest id of the first letters printed
/// (at least the DLQ's usual id), and a longer id that comes later widens its own row.
#[derive(Debug)]
struct Table {
    /// The ID column's least width.
    min_id: usize,
    /// The ID column's width, once the header is printed.
    id_width: Option<usize>,
}

impl Table {
    /// A table whose ID column is at least `min_id` wide.
    fn new(min_id: usize) -> Self {
        Table {
            min_id,
            id_width: None,
        }
    }

    /// Prints the header, sized for `first`, unless it was printed already.
    fn header(&mut self, out: &mut impl Write, first: &[DeadLetter]) -> std::io::Result<()> {
        if self.id_width.is_some() {
            return Ok(());
        }
        let w = first
            .iter()
            .map(|l| id_text(l).chars().count())
            .fold(self.min_id, usize::max);
        self.id_width = Some(w);
        writeln!(
            out,
            "{:<w$} {:<24} {:<20} {:<KEY_WIDTH$} {:<ERROR_WIDTH$} {:<22} {:<9} {:>8}",
            "ID", "TIME", "SOURCE", "KEY", "ERROR", "REASON", "STATE", "SIZE"
        )
    }

    /// One letter's row.
    fn row(&self, l: &DeadLetter) -> String {
        let w = self.id_width.unwrap_or(self.min_id);
        let time = l.dlq_timestamp_ms.and_then(rfc3339).unwrap_or_default();
        let source = l.source.topic.as_deref().unwrap_or("(unknown)");
        format!(
            "{:<w$} {:<24} {:<20} {:<KEY_WIDTH$} {:<ERROR_WIDTH$} {:<22} {:<9} {:>8}",
            id_text(l),
            time,
            clip(source, 20),
            clip_middle(&key_text(l.key.as_deref()), KEY_WIDTH),
            error_text(&l.failure, ERROR_WIDTH),
            l.failure.reason.as_str(),
            l.state.as_str(),
            l.size()
        )
    }
}

/// The letter's id, whole.
fn id_text(l: &DeadLetter) -> String {
    l.id.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// The key as text: UTF-8 with control characters as `?`, else hex (a long one by its
/// first and last 16 bytes).
fn key_text(key: Option<&[u8]>) -> String {
    match key {
        None => "(null)".to_string(),
        Some(k) => match std::str::from_utf8(k) {
            Ok(s) => s.replace(char::is_control, "?"),
            Err(_) if k.len() > 32 => format!(
                "0x{}{MORE}{}",
                hex::encode(&k[..16]),
                hex::encode(&k[k.len() - 16..])
            ),
            Err(_) => format!("0x{}", hex::encode(k)),
        },
    }
}

/// `Class: message` in at most `width` characters: the class without its package, then
/// the start of the message's first line when at least [`MESSAGE_AT_LEAST`] characters
/// of it fit (else the class alone); the message alone when there is no class.
fn error_text(f: &FailureContext, width: usize) -> String {
    let class = f
        .exception_class
        .as_deref()
        .map(|c| c.rsplit('.').next().unwrap_or(c))
        .filter(|c| !c.is_empty());
    let message = f
        .message
        .as_deref()
        .and_then(|m| m.lines().map(str::trim).find(|l| !l.is_empty()))
        .map(|m| m.replace(char::is_control, " "));
    let text = match (class, message) {
        (None, None) => "-".to_string(),
        (Some(c), Some(m)) if c.chars().count() + 2 + MESSAGE_AT_LEAST <= width => {
            format!("{c}: {m}")
        }
        (Some(c), _) => c.to_string(),
        (None, Some(m)) => m,
    };
    clip(&text, width).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LetterId;

    fn letter(id: &str, key: &[u8], class: Option<&str>, message: Option<&str>) -> DeadLetter {
        let mut l = DeadLetter::from_record(
            Some(LetterId::Mongo(id.into())),
            None,
            Some(key.to_vec()),
            None,
            Default::default(),
        );
        l.failure.exception_class = class.map(str::to_string);
        l.failure.message = message.map(str::to_string);
        l
    }

    #[test]
    fn ids_are_never_cut_and_keys_keep_both_ends() {
        let oid = "6b16918b7d6e2a0c4f1d9e73";
        let long = "m.Xy1.trades.3.1042.1764760000000";
        let a = letter(oid, b"ORD-2024-11-27-000123", None, None);
        let b = letter(long, b"k", None, None);
        let mut t = Table::new(ID_WIDTH);
        let mut out = Vec::new();
        t.header(&mut out, std::slice::from_ref(&a)).unwrap();
        t.header(&mut out, std::slice::from_ref(&b)).unwrap();
        let header = String::from_utf8(out).unwrap();
        assert_eq!(header.lines().count(), 1, "one header: {header}");
        assert!(
            header.starts_with(&format!("{:<24} TIME", "ID")),
            "{header}"
        );
        let row = t.row(&a);
        assert!(row.starts_with(&format!("{oid} ")), "{row}");
        assert!(row.contains(" ORD-2024…-000123 "), "{row}");
        assert!(
            t.row(&b).starts_with(&format!("{long} ")),
            "a later, longer id whole"
        );
    }

    #[test]
    fn error_shows_the_class_and_the_start_of_the_message() {
        let f = |class: Option<&str>, message: Option<&str>| {
            error_text(&letter("x", b"k", class, message).failure, ERROR_WIDTH)
        };
        assert_eq!(
            f(
                Some("java.lang.IllegalArgumentException"),
                Some("negative price -3 for T-1\n\tat Foo")
            ),
            "IllegalArgumentException: negative pric…"
        );
        assert_eq!(f(Some("ValueError"), Some("bad")), "ValueError: bad");
        assert_eq!(f(None, Some("only a message")), "only a message");
        assert_eq!(f(Some("a.b.C"), None), "C");
        assert_eq!(f(None, None), "-");
        let long = "org.example.AVeryLongExceptionClassNameThatFillsTheColumn";
        assert_eq!(
            f(Some(long), Some("why")),
            "AVeryLongExceptionClassNameThatFillsThe…",
            "no room for the message: the class alone"
        );
        assert_eq!(key_text(Some(&[0xff; 40])).chars().count(), 67);
        assert_eq!(key_text(None), "(null)");
    }
}
