//! Test-only pauses inside the write protocol, so that a test can SIGKILL a process
//! or break a server at an exact step. Compiled into debug builds only (the test
//! builds); a release binary has none. `MORGUE_TEST_PAUSE=announced:3000,sent:3000`
//! makes the writer print `morgue-test-pause: announced` on stderr and sleep 3 s
//! right after the step named. The replay's steps: `announced` (claimed), `opened`
//! (the claim's sender initialised and the ledger read again), `produced` (inside the
//! open transaction), `sent` (committed, not yet confirmed), `reconciled`. A Kafka
//! ledger's checkpoint: `checkpoint-snapshot` (its state gathered, nothing written),
//! `checkpoint-head` (its head written, no part yet) and
//! `checkpoint-parts` (every part written, nothing cut yet).
//! `MORGUE_TEST_DROP=rewind` skips a step as if a server had lost it: the router's
//! rewind to a dead letter the broker lost (what a commit refused while the group
//! rejoins does), so a test can show that the router notices and rewinds again.

/// Pauses at `step` when `MORGUE_TEST_PAUSE` names it (debug builds only).
#[cfg(debug_assertions)]
pub async fn pause(step: &str) {
    let Ok(spec) = std::env::var("MORGUE_TEST_PAUSE") else {
        return;
    };
    for part in spec.split(',') {
        if let Some((name, ms)) = part.split_once(':')
            && name.trim() == step
        {
            let ms = ms.trim().parse::<u64>().unwrap_or(0);
            eprintln!("morgue-test-pause: {step}");
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }
}

/// Pauses at `step` when `MORGUE_TEST_PAUSE` names it (debug builds only).
#[cfg(not(debug_assertions))]
pub async fn pause(_step: &str) {}

/// True when `MORGUE_TEST_DROP` names `step` (debug builds only): the caller skips it.
#[cfg(debug_assertions)]
pub fn dropped(step: &str) -> bool {
    std::env::var("MORGUE_TEST_DROP").is_ok_and(|s| s.split(',').any(|p| p.trim() == step))
}

/// True when `MORGUE_TEST_DROP` names `step` (debug builds only): the caller skips it.
#[cfg(not(debug_assertions))]
pub fn dropped(_step: &str) -> bool {
    false
}
