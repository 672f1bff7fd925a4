//! Noticing that the database changed, whichever process changed it: while anything waits,
//! one thread per process reads SQLite's `PRAGMA data_version` (a counter in shared memory,
//! no table is touched) every [`POLL_EVERY`] on a connection of its own, and wakes the waiters
//! when it moves; with no waiter the thread sleeps on a condition variable and costs nothing.
//! Waiters then run their own query, so a wake-up that finds nothing new is harmless.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::watch;

/// How often the database is checked for changes while something waits: the bound on how
/// late a waiter learns of a commit by another process.
pub const POLL_EVERY: Duration = Duration::from_millis(4);

/// The change watcher of one process. Cheap to clone; the thread starts with the first waiter.
#[derive(Clone)]
pub struct Wake {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    // The watcher's own connection and the last data_version it read.
    probe: Mutex<Option<(Connection, i64)>>,
    state: Mutex<State>,
    // Wakes the thread when the first waiter comes.
    wanted: Condvar,
    // Wakes blocking waiters on a change.
    changed: Condvar,
    // Wakes async waiters on a change.
    generation: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    generation: u64,
    waiters: usize,
    thread: bool,
}

impl Wake {
    /// A watcher for the database at `path` (opened when first needed).
    pub fn new(path: &Path) -> Self {
        Wake {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                probe: Mutex::new(None),
                state: Mutex::new(State::default()),
                wanted: Condvar::new(),
                changed: Condvar::new(),
                generation: watch::channel(0).0,
            }),
        }
    }

    /// Starts waiting for changes. Every commit after this returns is reported to the
    /// waiter, and perhaps some from just before (a spurious wake-up).
    pub fn subscribe(&self) -> rusqlite::Result<Waiter> {
        let shared = &self.shared;
        // Read the baseline now, so that a commit after this returns is always seen as a change
        // even when the thread has been idle.
        shared.check()?;
        let mut state = lock(&shared.state);
        state.waiters += 1;
        if !state.thread {
            let poller = self.shared.clone();
            match std::thread::Builder::new()
                .name("c2c-wake".into())
                .spawn(move || poller.run())
            {
                Ok(_) => state.thread = true,
                // Waiters still end at their deadline; the next subscription tries again.
                Err(e) => tracing::error!(error = %e, "could not start the change watcher"),
            }
        }
        shared.wanted.notify_all();
        Ok(Waiter {
            shared: shared.clone(),
            seen: state.generation,
            rx: shared.generation.subscribe(),
        })
    }
}

impl Shared {
    // Reads data_version; says whether it moved since the last read (and records the change).
    fn check(&self) -> rusqlite::Result<bool> {
        let mut probe = lock(&self.probe);
        if probe.is_none() {
            let conn = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(Duration::from_secs(1))?;
            let version = data_version(&conn)?;
            *probe = Some((conn, version));
            return Ok(false);
        }
        let (conn, last) = probe.as_mut().expect("opened above");
        let version = data_version(conn)?;
        if version == *last {
            return Ok(false);
        }
        *last = version;
        drop(probe);
        self.bump();
        Ok(true)
    }

    fn bump(&self) {
        let mut state = lock(&self.state);
        state.generation += 1;
        self.generation.send_replace(state.generation);
        self.changed.notify_all();
    }

    fn run(&self) {
        loop {
            {
                let mut state = lock(&self.state);
                while state.waiters == 0 {
                    state = self.wanted.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            }
            std::thread::sleep(POLL_EVERY);
            if let Err(e) = self.check() {
                // Wake everyone: they will meet the error themselves, and not wait in vain.
                tracing::debug!(error = %e, "checking the database for changes failed");
                self.bump();
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// One waiter's subscription; dropping it lets the watcher go idle when it was the last.
pub struct Waiter {
    shared: Arc<Shared>,
    seen: u64,
    rx: watch::Receiver<u64>,
}

impl Waiter {
    /// Blocks until the database changed since the last wake-up (or the subscription), or
    /// until `deadline`; says whether it changed.
    pub fn wait_until(&mut self, deadline: Instant) -> bool {
        let mut state = lock(&self.shared.state);
        while state.generation == self.seen {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        self.seen = state.generation;
        self.rx.mark_unchanged();
        true
    }

    /// Resolves when the database changed since the last wake-up (or the subscription).
    pub async fn changed(&mut self) {
        let current = *self.rx.borrow_and_update();
        if current != self.seen {
            self.seen = current;
            return;
        }
        if self.rx.changed().await.is_err() {
            // The sender lives as long as the watcher; never reached, but never spin either.
            std::future::pending::<()>().await;
        }
        self.seen = *self.rx.borrow_and_update();
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        lock(&self.shared.state).waiters -= 1;
    }
}

fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))
}

// A poisoned lock only means a waiter panicked; the counters are still right.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
