//! The MongoDB clients this process opened, closed before it exits.
//!
//! Why this exists: when the last handle on a driver `Client` is dropped, the driver
//! spawns a task that ends the client's server sessions, and a cursor dropped before
//! its end spawns one that kills it on the server. A process that returns from `main`
//! right then shuts its runtime down while those tasks run; the driver's connection
//! pool is torn down under them and the driver panics (`connection_requester.rs`,
//! an `unwrap` on a closed channel), measured at 1 run in 40 of `list --limit 1`.
//! So every client opened by [`super::MongoConfig::database`] is kept here, one per
//! URI and timeout (the driver's advice: one client, shared; an exporter or an overview
//! refreshed every few seconds reuses it, rather than opening a pool each time), and
//! [`close_all`] shuts each down (its sessions ended and its cursors killed, awaited)
//! before the runtime stops.

use std::sync::Mutex;
use std::time::Duration;

use mongodb::Client;

/// Every client opened so far, by URI, server-selection timeout and runtime (a client
/// lives on the runtime it was made on: a library user with several, a test binary,
/// gets one per runtime); clones share the driver's state.
static OPEN: Mutex<Vec<(Key, Client)>> = Mutex::new(Vec::new());

/// What a client is shared by.
type Key = (String, Duration, Option<tokio::runtime::Id>);

/// How long a graceful shutdown may wait for a cursor or session still held by a task.
const GRACE: Duration = Duration::from_secs(2);

/// The client for `uri` (with `timeout`), the one opened before or a new one from
/// `open`, kept to be closed by [`close_all`].
pub fn shared<E>(
    uri: &str,
    timeout: Duration,
    open: impl FnOnce() -> Result<Client, E>,
) -> Result<Client, E> {
    // A poisoned lock only means another thread panicked while pushing: the list is
    // still a list.
    let runtime = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
    let key = (uri.to_string(), timeout, runtime);
    let mut all = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, c)) = all.iter().find(|(k, _)| *k == key) {
        return Ok(c.clone());
    }
    let client = open()?;
    all.push((key, client.clone()));
    Ok(client)
}

/// Shuts down every client opened so far: their sessions ended and their cursors
/// killed on the server, waited for up to two seconds each, then closed at once
/// (a task that still holds a cursor gets an error from the driver, not a panic),
/// given two seconds more at most.
pub async fn close_all() {
    // A task may open one while others close: taken again until none is left (thrice).
    for _ in 0..3 {
        let open = std::mem::take(&mut *OPEN.lock().unwrap_or_else(|p| p.into_inner()));
        if open.is_empty() {
            return;
        }
        for (_, client) in open {
            let graceful = client.clone().shutdown();
            if tokio::time::timeout(GRACE, graceful).await.is_err() {
                // Closed at once; a server that answers nothing is not waited on either.
                let now = client.shutdown().immediate(true);
                let _ = tokio::time::timeout(GRACE, now).await;
            }
        }
    }
}
