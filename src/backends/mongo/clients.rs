//! The MongoDB clients this process opened, closed before it exits.
//!
//! Why this exists: when the last handle on a driver `Client` is dropped, the driver
//! spawns a task that ends the client's server sessions, and a cursor dropped before
//! its end spawns one that kills it on the server. A process that returns from `main`
//! right then shuts its runtime down while those tasks run; the driver's connection
//! pool is torn down under them and the driver panics (`connection_requester.rs`,
//! an `unwrap` on a closed channel), measured at 1 run in 40 of `list --limit 1`.
//! So every client opened by [`super::MongoConfig::database`] is kept here, and
//! [`close_all`] shuts each down (its sessions ended and its cursors killed, awaited)
//! before the runtime stops. A client is kept until then: a process opens a handful.

use std::sync::Mutex;
use std::time::Duration;

use mongodb::Client;

/// Every client opened so far (clones share the driver's state).
static OPEN: Mutex<Vec<Client>> = Mutex::new(Vec::new());

/// How long a graceful shutdown may wait for a cursor or session still held by a task.
const GRACE: Duration = Duration::from_secs(2);

/// Keeps `client` to be closed by [`close_all`].
pub fn track(client: &Client) {
    // A poisoned lock only means another thread panicked while pushing: the list is
    // still a list.
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    open.push(client.clone());
}

/// Shuts down every client opened so far: their sessions ended and their cursors
/// killed on the server, waited for up to two seconds each, then closed at once
/// (a task that still holds a cursor gets an error from the driver, not a panic).
pub async fn close_all() {
    let open = std::mem::take(&mut *OPEN.lock().unwrap_or_else(|p| p.into_inner()));
    for client in open {
        let graceful = client.clone().shutdown();
        if tokio::time::timeout(GRACE, graceful).await.is_err() {
            client.shutdown().immediate(true).await;
        }
    }
}
