//! Noticing that the database changed, whichever process changed it. One thread per process,
//! started by the first waiter, sleeps until the operating system reports a write to the
//! database or its WAL file (by way of `notify`: inotify on Linux, FSEvents on macOS,
//! ReadDirectoryChangesW on Windows; should no watcher be had, it looks every [`POLL_EVERY`]),
//! then reads SQLite's `PRAGMA data_version` on a connection of its own and wakes the waiters
//! when it moved. Nothing runs between writes but a look every [`LOOK_ANYWAY`] while something
//! waits, so waiting costs no measurable CPU. Waiters then run their own query, so a wake-up
//! that finds nothing new is harmless.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::watch;

/// How often the database is checked for changes while something waits, when the operating
/// system's write notices cannot be had: the bound on how late a waiter then learns of another's
/// commit.
pub const POLL_EVERY: Duration = Duration::from_millis(4);

/// How long the watcher goes without a write notice, while something waits, before it looks
/// anyway: the bound on how late a waiter learns of a commit whose notice was lost or held back.
pub const LOOK_ANYWAY: Duration = Duration::from_secs(1);

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

impl Wake {
    /// Wakes this process's waiters for a write it has just committed itself, without waiting
    /// for the operating system's notice of it (which still comes, as a harmless second wake).
    pub fn notify_own_write(&self) {
        self.shared.bump();
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
            match &watch {
                Some(w) => {
                    let looked = w.wait(LOOK_ANYWAY).and_then(|noticed| {
                        if noticed {
                            self.settle(w)
                        } else {
                            self.check_or_wake();
                            Ok(())
                        }
                    });
                    if let Err(e) = looked {
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
    fn settle(&self, watch: &notice::Notice) -> std::io::Result<()> {
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

mod notice {
    //! The operating system's notices of writes to the database file and its WAL, by a
    //! `notify` watch on their directory (the WAL file comes and goes). The watcher's own
    //! thread filters the events by file name and leaves at most one notice for the change
    //! watcher, so writes while nothing waits pile up nothing.

    use std::ffi::OsString;
    use std::path::Path;
    use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
    use std::time::Duration;

    use notify::{Event, EventKind, RecursiveMode, Watcher};

    pub struct Notice {
        // Owns the watch and the thread that serves it; dropping it ends both.
        _watcher: notify::RecommendedWatcher,
        notices: Receiver<()>,
    }

    impl Notice {
        pub fn new(db: &Path) -> notify::Result<Notice> {
            let dir = match db.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let file = db.file_name().unwrap_or_default().to_os_string();
            let mut wal = file.clone();
            wal.push("-wal");
            let names = [file, wal];
            let (tx, notices) = mpsc::sync_channel(1);
            let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
                if ours(&names, &event) {
                    // Full: a notice is already waiting to be taken, and it stands for this one.
                    let _ = tx.try_send(());
                }
            })?;
            // Returns once the watch is in place, so no write after it goes unreported.
            watcher.watch(dir, RecursiveMode::NonRecursive)?;
            Ok(Notice {
                _watcher: watcher,
                notices,
            })
        }

        /// Blocks until a write to the database or its WAL (or a sign that one may have been
        /// missed), or for at most `limit`; says whether there was one.
        pub fn wait(&self, limit: Duration) -> std::io::Result<bool> {
            match self.notices.recv_timeout(limit) {
                Ok(()) => Ok(true),
                Err(RecvTimeoutError::Timeout) => Ok(false),
                Err(RecvTimeoutError::Disconnected) => Err(stopped()),
            }
        }

        /// Whether such a write was noticed since the last look, without blocking.
        pub fn pending(&self) -> std::io::Result<bool> {
            match self.notices.try_recv() {
                Ok(()) => Ok(true),
                Err(TryRecvError::Empty) => Ok(false),
                Err(TryRecvError::Disconnected) => Err(stopped()),
            }
        }
    }

    fn ours(names: &[OsString; 2], event: &notify::Result<Event>) -> bool {
        let event = match event {
            Ok(event) => event,
            // Something may have been missed.
            Err(e) => {
                tracing::debug!(error = %e, "the write watcher reported an error");
                return true;
            }
        };
        if event.need_rescan() {
            return true;
        }
        // Opening, reading or closing a file (inotify reports the first and last) changes nothing.
        if matches!(event.kind, EventKind::Access(_)) {
            return false;
        }
        // Case aside: macOS and Windows file names usually ignore it, and a false match only
        // costs a look.
        event.paths.iter().any(|p| {
            p.file_name()
                .is_some_and(|n| names.iter().any(|o| n.eq_ignore_ascii_case(o)))
        })
    }

    // The watcher's thread ended (it never should): the change watcher goes back to polling.
    fn stopped() -> std::io::Error {
        std::io::Error::other("the write watcher stopped")
    }

    #[cfg(test)]
    mod tests {
        use std::path::PathBuf;
        use std::time::{SystemTime, UNIX_EPOCH};

        use notify::event::{AccessKind, CreateKind, Flag, ModifyKind};

        use super::*;

        #[test]
        fn only_writes_to_the_database_or_its_wal_count() {
            let names = [OsString::from("c2c.db"), OsString::from("c2c.db-wal")];
            let write = |name: &str| {
                Ok(Event::new(EventKind::Modify(ModifyKind::Any)).add_path(PathBuf::from(name)))
            };
            assert!(ours(&names, &write("/d/c2c.db")));
            assert!(ours(&names, &write("/d/c2c.db-wal")));
            assert!(ours(&names, &write("/d/C2C.DB-WAL")));
            assert!(!ours(&names, &write("/d/c2c.db-shm")));
            assert!(!ours(&names, &write("/d/history.jsonl")));
            let created =
                Event::new(EventKind::Create(CreateKind::File)).add_path("/d/c2c.db-wal".into());
            assert!(ours(&names, &Ok(created)));
            let opened =
                Event::new(EventKind::Access(AccessKind::Any)).add_path("/d/c2c.db".into());
            assert!(!ours(&names, &Ok(opened)));
            let overflow = Event::new(EventKind::Other).set_flag(Flag::Rescan);
            assert!(ours(&names, &Ok(overflow)));
            assert!(ours(&names, &Err(notify::Error::generic("lost"))));
        }

        #[test]
        fn a_write_to_the_wal_is_noticed_and_one_beside_it_is_not() {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir =
                std::env::temp_dir().join(format!("c2c-notice-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let notice = Notice::new(&dir.join("c2c.db")).unwrap();
            assert!(!notice.pending().unwrap());
            std::fs::write(dir.join("other"), b"x").unwrap();
            assert!(!notice.wait(Duration::from_millis(200)).unwrap());
            std::fs::write(dir.join("c2c.db-wal"), b"x").unwrap();
            assert!(notice.wait(Duration::from_secs(5)).unwrap());
            std::fs::remove_dir_all(&dir).unwrap();
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
