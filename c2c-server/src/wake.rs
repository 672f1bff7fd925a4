//! Noticing that the database changed, whichever process changed it. One thread per process,
//! started by the first waiter, sleeps until the kernel reports a write to the database or its
//! WAL file (inotify, on Linux; elsewhere, or should inotify fail, it looks every
//! [`POLL_EVERY`]), then reads SQLite's `PRAGMA data_version` on a connection of its own and
//! wakes the waiters when it moved. Nothing runs between writes, so waiting costs no CPU.
//! Waiters then run their own query, so a wake-up that finds nothing new is harmless.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::watch;

/// How often the database is checked for changes while something waits, where the kernel
/// cannot report writes: the bound on how late a waiter then learns of another's commit.
pub const POLL_EVERY: Duration = Duration::from_millis(4);

// When to look at data_version again after the last write notice.
const SETTLE: &[Duration] = &[
    Duration::from_millis(2),
    Duration::from_millis(5),
    Duration::from_millis(15),
    Duration::from_millis(60),
];

/// The change watcher of one process. Cheap to clone; the thread starts with the first waiter.
#[derive(Clone)]
pub struct Wake {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    // The watcher's own connection and the last data_version it read.
    probe: Mutex<Option<(Connection, i64)>>,
    // Held while the thread is being started, so that its watch exists before any waiter's
    // subscription returns.
    starting: Mutex<()>,
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
                starting: Mutex::new(()),
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
        let starting = lock(&shared.starting);
        // Watch for writes first, then read the baseline: a commit after this returns is then
        // always seen as a change, even when the thread has been idle.
        let watch = (!lock(&shared.state).thread).then(|| notice::Notice::new(&shared.path));
        shared.check()?;
        let mut state = lock(&shared.state);
        if let Some(watch) = watch {
            let watch = watch
                .inspect_err(|e| tracing::debug!(error = %e, "no write notices; polling instead"))
                .ok();
            let poller = shared.clone();
            match std::thread::Builder::new()
                .name("c2c-wake".into())
                .spawn(move || poller.run(watch))
            {
                Ok(_) => state.thread = true,
                // Waiters still end at their deadline; the next subscription tries again.
                Err(e) => tracing::error!(error = %e, "could not start the change watcher"),
            }
        }
        drop(starting);
        state.waiters += 1;
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

    fn run(&self, mut watch: Option<notice::Notice>) {
        loop {
            {
                let mut state = lock(&self.state);
                while state.waiters == 0 {
                    state = self.wanted.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            }
            match &mut watch {
                Some(w) => {
                    if let Err(e) = w.wait().and_then(|()| self.settle(w)) {
                        tracing::warn!(error = %e, "write notices failed; polling instead");
                        watch = None;
                    }
                }
                None => {
                    std::thread::sleep(POLL_EVERY);
                    self.check_or_wake();
                }
            }
        }
    }

    // After a write notice: look at once, then keep looking for a short while (reacting to
    // further notices within a millisecond), since a writer appends to the WAL (the notice) a
    // moment before it publishes the commit in shared memory, and notices close together merge.
    fn settle(&self, watch: &mut notice::Notice) -> std::io::Result<()> {
        self.check_or_wake();
        let mut since = Instant::now();
        let mut next = 0;
        while next < SETTLE.len() {
            std::thread::sleep(Duration::from_millis(1));
            if watch.pending()? {
                self.check_or_wake();
                since = Instant::now();
                next = 0;
                continue;
            }
            if since.elapsed() >= SETTLE[next] {
                self.check_or_wake();
                while next < SETTLE.len() && since.elapsed() >= SETTLE[next] {
                    next += 1;
                }
            }
        }
        Ok(())
    }

    fn check_or_wake(&self) {
        if let Err(e) = self.check() {
            // Wake everyone: they will meet the error themselves, and not wait in vain.
            tracing::debug!(error = %e, "checking the database for changes failed");
            self.bump();
            std::thread::sleep(Duration::from_millis(100));
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

#[cfg(target_os = "linux")]
mod notice {
    //! The kernel's notices of writes to the database file and its WAL, by inotify on the
    //! directory (the WAL file comes and goes).

    use std::ffi::OsString;
    use std::path::Path;

    use inotify::{Inotify, WatchMask};

    pub struct Notice {
        inotify: Inotify,
        names: [OsString; 2],
        buffer: Vec<u8>,
    }

    impl Notice {
        pub fn new(db: &Path) -> std::io::Result<Notice> {
            let dir = match db.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let file = db.file_name().unwrap_or_default().to_os_string();
            let mut wal = file.clone();
            wal.push("-wal");
            let inotify = Inotify::init()?;
            inotify.watches().add(
                dir,
                WatchMask::MODIFY | WatchMask::CREATE | WatchMask::MOVED_TO,
            )?;
            Ok(Notice {
                inotify,
                names: [file, wal],
                buffer: vec![0; 4096],
            })
        }

        /// Blocks until a write to the database or its WAL (or an event queue overflow).
        pub fn wait(&mut self) -> std::io::Result<()> {
            loop {
                let events = self.inotify.read_events_blocking(&mut self.buffer)?;
                if Self::ours(&self.names, events) {
                    return Ok(());
                }
            }
        }

        /// Whether such a write was noticed since the last look, without blocking.
        pub fn pending(&mut self) -> std::io::Result<bool> {
            let mut any = false;
            loop {
                match self.inotify.read_events(&mut self.buffer) {
                    Ok(events) => any |= Self::ours(&self.names, events),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(any),
                    Err(e) => return Err(e),
                }
            }
        }

        fn ours(names: &[OsString], events: inotify::Events<'_>) -> bool {
            let mut ours = false;
            for event in events {
                // A nameless event is the queue overflowing: something may have been missed.
                ours |= event.name.is_none_or(|n| names.iter().any(|o| o == n));
            }
            ours
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod notice {
    //! No kernel notices here: the watcher polls.

    use std::path::Path;

    pub struct Notice;

    impl Notice {
        pub fn new(_db: &Path) -> std::io::Result<Notice> {
            Err(std::io::Error::other(
                "write notices are only used on Linux",
            ))
        }

        pub fn wait(&mut self) -> std::io::Result<()> {
            unreachable!("never constructed")
        }

        pub fn pending(&mut self) -> std::io::Result<bool> {
            unreachable!("never constructed")
        }
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
