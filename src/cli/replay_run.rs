//! How `morgue replay` works through its windows: [`IN_FLIGHT`] at once when unpaced
//! (outcomes printed in the order read), one after the other in slices when paced by
//! `--rate`, while the ledger is made ready for the first claim.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Tally, Windows};
use crate::engine::transform::Jq;
use crate::engine::write::{ReplayOutcome, Writer, window};
use crate::engine::{DeadLetter, LetterId};

/// Runs `work` while the writer's ledger is made ready for its first claim.
pub(super) async fn readied(
    writer: &Writer,
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let (prepared, done) = tokio::join!(writer.prepare(), work);
    // A ledger that could not be made ready failed each claim too, every letter saying
    // why (each claim tries again); a run that took no letter needed none.
    if let Err(e) = prepared {
        tracing::debug!("ledger not made ready ahead of the first claim: {e}");
    }
    done
}

/// Replays the windows `w` reads: paced one after the other with a rate, else overlapped.
pub(super) async fn run(
    writer: &Writer,
    w: Windows<'_>,
    how: (Option<&str>, bool, Option<&Jq>),
    rate: Option<f64>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    if rate.is_some() {
        paced(writer, w, how, rate, tally).await
    } else {
        overlapped(writer, w, how, tally).await
    }
}

/// Windows an unpaced replay works on at once: while one waits on the broker (its claim,
/// its commit, its confirm), the next is planned and claimed.
const IN_FLIGHT: usize = 2;

/// Replays the windows `w` reads, [`IN_FLIGHT`] at a time (each its own claim and
/// transaction), and reports each letter's outcome in the order read.
async fn overlapped(
    writer: &Writer,
    mut w: Windows<'_>,
    (to, force, jq): (Option<&str>, bool, Option<&Jq>),
    tally: &mut Tally,
) -> anyhow::Result<()> {
    use futures::StreamExt;
    // The reader fills a small queue of windows; the replays take them from it. A
    // channel's receive can be raced safely, a window half-read cannot.
    let (tx, mut rx) = mpsc::channel::<Vec<DeadLetter>>(1);
    let read = async move {
        while let Some(letters) = w.next().await? {
            if tx.send(letters).await.is_err() {
                break;
            }
        }
        anyhow::Ok(())
    };
    let replay = async {
        let mut running = futures::stream::FuturesOrdered::new();
        let mut reading = true;
        // A report that cannot be printed stops the run: no window is taken after it,
        // and the ones in flight finish their claim, send and confirm first.
        let mut failed: Option<anyhow::Error> = None;
        loop {
            tokio::select! {
                Some(done) = running.next(), if !running.is_empty() => {
                    let done: Vec<(LetterId, ReplayOutcome)> = done;
                    for (id, o) in &done {
                        if failed.is_none()
                            && let Err(e) = tally.add(&id.to_string(), o)
                        {
                            failed = Some(e);
                            reading = false;
                        }
                    }
                    tally.steady.get_or_insert((Instant::now(), done.len() as u64));
                }
                got = rx.recv(), if reading && running.len() < IN_FLIGHT => match got {
                    Some(letters) => {
                        tally.started.get_or_insert_with(Instant::now);
                        tally.took(&letters);
                        running.push_back(async move {
                            writer.replay_with(&letters, to, force, jq).await
                        });
                    }
                    None => reading = false,
                },
                else => break,
            }
        }
        // The reader stops with the channel.
        drop(rx);
        failed.map_or(Ok(()), Err)
    };
    let (read, replay) = tokio::join!(read, replay);
    replay.and(read)
}

/// Replays the windows `w` reads one after the other, in slices paced to `rate`.
async fn paced(
    writer: &Writer,
    mut w: Windows<'_>,
    (to, force, jq): (Option<&str>, bool, Option<&Jq>),
    rate: Option<f64>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let mut sent = 0u64;
    while let Some(letters) = w.next().await? {
        run_window(writer, letters, to, force, jq, rate, &mut sent, tally).await?;
    }
    Ok(())
}

/// Replays one window; with `--rate`, in slices paced to the rate.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_window(
    writer: &Writer,
    letters: Vec<DeadLetter>,
    to: Option<&str>,
    force: bool,
    jq: Option<&Jq>,
    rate: Option<f64>,
    sent: &mut u64,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    tally.started.get_or_insert_with(Instant::now);
    // With a rate, a slice is about a tenth of a second's worth of letters, more when
    // the sends fell behind the schedule (each slice costs a claim and a confirm).
    let base = rate.map_or(window(), |r| {
        ((r / 10.0).ceil() as usize).clamp(1, window())
    });
    let mut rest = letters.as_slice();
    while !rest.is_empty() {
        let mut n = base;
        if let Some((from, first)) = tally.steady {
            pace(from, *sent - first, rate).await;
            if let Some(r) = rate.filter(|r| *r > 0.0) {
                let due = (from.elapsed().as_secs_f64() * r) as u64;
                n = n.max(usize::try_from(due.saturating_sub(*sent - first)).unwrap_or(n));
            }
        }
        let (part, tail) = rest.split_at(n.min(rest.len()).min(window()));
        rest = tail;
        tally.took(part);
        for (id, o) in writer.replay_with(part, to, force, jq).await {
            tally.add(&id.to_string(), &o)?;
        }
        *sent += part.len() as u64;
        tally.steady.get_or_insert((Instant::now(), *sent));
    }
    Ok(())
}

/// Waits so that `done` letters take at least `done / rate` seconds from `start`.
async fn pace(start: Instant, done: u64, rate: Option<f64>) {
    if let Some(r) = rate.filter(|r| *r > 0.0) {
        let due = start + Duration::from_secs_f64(done as f64 / r);
        tokio::time::sleep_until(due.into()).await;
    }
}
