//! `morgue export` (letters to a file with a manifest) and `morgue open` (the TUI on
//! such a file, read-only): the incident bundle to attach to a ticket.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use tokio::sync::mpsc;

use super::{BackendArgs, UsageError, stdout_error};
use crate::backends::open::{Dlq, Target};
use crate::engine::export::bundle::{FORMAT, Manifest};
use crate::engine::export::json::LetterJson;
use crate::engine::read::source::{SourceEvent, StartAt};

/// Options of `morgue export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Only letters matching this query.
    #[arg(long, short = 'f', value_name = "QUERY", allow_hyphen_values = true)]
    pub filter: Option<String>,
    /// Where to write (`-`: stdout).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Mask before writing: `$.json.path`, `header:NAME`, `/regex/`, `pii` (e-mails,
    /// card numbers), `hash` (sha256 instead of `***`), comma-separated; added to the
    /// profile's mandatory `redact`.
    #[arg(long, value_name = "SPEC")]
    pub redact: Option<String>,
    /// A jq expression each letter is fixed with first (its value as it arrived; a
    /// letter it fails for is left out and reported), to try a fix on a bundle.
    #[command(flatten)]
    pub transform: super::transform::TransformArgs,
}

/// Writes the manifest, then every matching letter, to `--output`.
pub async fn export(backend: &BackendArgs, args: &ExportArgs) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let jq = args.transform.compile()?;
    let mut tally = super::transform::TransformTally::default();
    let target = backend.target()?;
    let filter = super::filter_arg(args.filter.as_deref(), now.timestamp_millis())?
        .map(|f| f.decoding(target.decoders.clone()));
    let spec: Vec<&str> = [target.redact.as_deref(), args.redact.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let redaction = match spec.is_empty() {
        true => None,
        false => Some(
            crate::engine::export::redact::Redaction::parse(&spec.join(","))
                .map_err(|e| UsageError(format!("--redact: {e}")))?,
        ),
    };
    let mut notes = Vec::new();
    let opened = target.dlq.open().await?;
    // Letters go to a scratch file first: the manifest, written first, counts them.
    let scratch = tempfile(&args.output)?;
    let mut body = BufWriter::new(std::fs::File::create(&scratch)?);
    let (tx, mut rx) = mpsc::channel(crate::engine::read::source::AHEAD);
    let source = opened.source.clone();
    let reader = tokio::spawn(async move { source.stream(StartAt::Beginning, false, tx).await });
    let mut ids = Vec::new();
    while let Some(event) = rx.recv().await {
        let SourceEvent::Letters(batch) = event else {
            continue;
        };
        crate::engine::decoders::prepare_letters(&target.decoders, &batch).await;
        for mut l in batch {
            if filter.as_ref().is_some_and(|f| !f.matches(&l)) {
                continue;
            }
            if let Some(jq) = &jq {
                let id = l.id.as_ref().map(ToString::to_string).unwrap_or_default();
                let applied =
                    crate::engine::transform::apply(jq, &l, l.value.as_deref(), &target.decoders);
                tally.add(&id, &applied);
                match applied {
                    crate::engine::transform::Applied::Failed(why) => {
                        eprintln!("morgue: left out {id}: transform failed: {why}");
                        continue;
                    }
                    crate::engine::transform::Applied::Changed(c) => c.apply_to(&mut l),
                    crate::engine::transform::Applied::Unchanged => {}
                }
            }
            if let Some(r) = &redaction {
                notes.extend(r.letter(&mut l, &target.decoders));
            }
            serde_json::to_writer(&mut body, &LetterJson::of(&l, &target.decoders))?;
            body.write_all(b"\n")?;
            if let Some(id) = &l.id {
                ids.push(id.to_string());
            }
        }
    }
    reader.await??;
    body.flush()?;
    drop(body);
    let ledger = opened.ledger.current(&ids, &[]).await?;
    let manifest = Manifest {
        format: FORMAT.to_string(),
        dlq: opened.ledger.dlq(),
        exported_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        by: crate::engine::model::names::whoami(),
        filter: args.filter.clone(),
        letters: ids.len() as u64,
        ledger: ledger.entries().cloned().collect(),
        redaction: redaction.map(|r| crate::engine::export::bundle::RedactionNote {
            spec: r.spec().to_string(),
            notes,
        }),
        transform: jq.as_ref().map(|j| j.spec().to_ledger()),
    };
    let result = write_out(&args.output, &manifest, &scratch);
    // The scratch file is a full copy of the letters: a leftover one must be reported.
    if let Err(e) = std::fs::remove_file(&scratch) {
        tracing::warn!("cannot remove the scratch file {}: {e}", scratch.display());
    }
    result?;
    if let Some(jq) = &jq {
        eprintln!("morgue: {}", tally.line(jq));
    }
    eprintln!(
        "morgue: exported {} letter{} of {}",
        ids.len(),
        if ids.len() == 1 { "" } else { "s" },
        manifest.dlq
    );
    Ok(())
}

fn tempfile(output: &std::path::Path) -> anyhow::Result<PathBuf> {
    let dir = match output.parent() {
        Some(d) if output != std::path::Path::new("-") && !d.as_os_str().is_empty() => {
            d.to_path_buf()
        }
        _ => std::env::temp_dir(),
    };
    Ok(dir.join(format!(".morgue-export-{}.tmp", uuid::Uuid::new_v4())))
}

fn write_out(
    output: &std::path::Path,
    manifest: &Manifest,
    scratch: &std::path::Path,
) -> anyhow::Result<()> {
    let copy = |out: &mut dyn Write| -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, manifest)?;
        out.write_all(b"\n")?;
        let mut lines = std::io::BufReader::new(std::fs::File::open(scratch)?);
        loop {
            let buf = lines.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let n = buf.len();
            out.write_all(buf)?;
            lines.consume(n);
        }
        out.flush()
    };
    if output == std::path::Path::new("-") {
        let stdout = std::io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        return copy(&mut out).map_err(stdout_error);
    }
    // Written beside the target, then renamed: a reader never sees half a file.
    let part = output.with_extension("part");
    let mut out = BufWriter::new(std::fs::File::create(&part)?);
    copy(&mut out)?;
    drop(out);
    std::fs::rename(&part, output)?;
    Ok(())
}

/// The target of `morgue open FILE` (`-`: stdin, kept in a temporary file): the file,
/// read-only.
pub fn open_target(backend: &BackendArgs, path: PathBuf) -> anyhow::Result<Target> {
    let path = if path == std::path::Path::new("-") {
        let tmp = std::env::temp_dir().join(format!("morgue-open-{}.jsonl", uuid::Uuid::new_v4()));
        let mut f = std::fs::File::create(&tmp)?;
        std::io::copy(&mut std::io::stdin().lock(), &mut f)?;
        tmp
    } else {
        path
    };
    crate::backends::file::FileDlq::open(&path).map_err(UsageError)?;
    Ok(Target {
        profile: None,
        dlq: Dlq::File { path },
        read_only: true,
        production: false,
        audit: crate::engine::write::audit::AuditLog::new(
            backend
                .audit_log
                .clone()
                .unwrap_or_else(crate::engine::write::audit::AuditLog::default_path),
        ),
        group: None,
        confirm_after_ms: crate::engine::read::outcome::DEFAULT_CONFIRM_AFTER_MS,
        redact: None,
        decoders: std::sync::Arc::new(crate::engine::decoders::Registry::new(
            backend.schema_source()?,
        )),
    })
}

/// Options of `morgue import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file written by `morgue export`.
    pub file: PathBuf,
    /// Do not ask (needed without a terminal).
    #[arg(long)]
    pub yes: bool,
}

/// Writes the file's letters that the DLQ does not hold yet; audits each.
pub async fn import(backend: &BackendArgs, args: &ImportArgs) -> anyhow::Result<()> {
    use crate::backends::import::{import_id, into_kafka, into_mongo};
    let target = backend.target()?;
    if target.read_only {
        return Err(crate::engine::EngineError::ReadOnly("importing into the DLQ".into()).into());
    }
    let file = crate::backends::file::FileDlq::open(&args.file).map_err(UsageError)?;
    let mut letters = Vec::new();
    let from = file.manifest().dlq.clone();
    file.for_each(|l| {
        let id = l.id.as_ref().map(ToString::to_string).unwrap_or_default();
        letters.push((import_id(&from, &id), l));
        true
    })
    .map_err(anyhow::Error::msg)?;
    // Into MongoDB, the first letter creates a collection that is not there yet.
    let opened = target.dlq.open_to_fill().await?;
    let dlq = opened.ledger.dlq();
    super::replay::confirm(
        args.yes,
        &format!(
            "import {} letters exported from {from} into {dlq}",
            letters.len()
        ),
    )?;
    let done = match (&target.dlq, &opened.mongo) {
        (Dlq::Kafka { cfg, topic }, _) => into_kafka(cfg, topic, letters).await?,
        (Dlq::Mongo { .. }, Some(m)) => into_mongo(m, letters).await?,
        _ => {
            return Err(
                UsageError("import needs a Kafka topic or a MongoDB collection".into()).into(),
            );
        }
    };
    let by = crate::engine::model::names::whoami();
    let at = crate::engine::write::audit::now_rfc3339();
    let records: Vec<_> = done
        .written
        .iter()
        .map(|id| crate::engine::write::audit::AuditRecord {
            at: at.clone(),
            by: &by,
            action: "import",
            dlq: &dlq,
            id,
            topic: None,
            partition: None,
            offset: None,
            replay_id: None,
            edited: false,
            transform: None,
        })
        .collect();
    target
        .audit
        .append_all(&records)
        .await
        .map_err(|e| anyhow::anyhow!("imported, but the audit log could not be written: {e}"))?;
    super::print_line(serde_json::json!({
        "file": args.file.display().to_string(),
        "from": from,
        "into": dlq,
        "written": done.written.len(),
        "already_there": done.present,
    }))
}
