//! The SQLite store: opening the file with the settings every connection needs (WAL,
//! `synchronous=NORMAL`, a busy timeout, foreign keys), private file permissions, and the
//! migrations; the queries themselves live in one module per table.

pub mod messages;
pub mod migrate;
pub mod sessions;
pub mod state;
pub mod tokens;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::Connection;

use crate::error::StoreError;

/// Whether `e` is SQLITE_BUSY: the write lock stayed taken past the busy timeout, or a read
/// transaction tried to write after another process had written since it began.
pub fn is_busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

/// A transaction on a connection: committed by [`Transaction::commit`], rolled back when
/// dropped otherwise. rusqlite's own runs `BEGIN` and `COMMIT` through `execute_batch`, which
/// parses them anew on every call; these statements are prepared once and kept.
pub struct Transaction<'c> {
    conn: &'c Connection,
}

impl<'c> Transaction<'c> {
    /// Begins a transaction that takes the write lock at once (`immediate`) or at its first
    /// write.
    pub fn begin(conn: &'c Connection, immediate: bool) -> rusqlite::Result<Self> {
        let begin = if immediate {
            "BEGIN IMMEDIATE"
        } else {
            "BEGIN DEFERRED"
        };
        conn.prepare_cached(begin)?.execute([])?;
        Ok(Transaction { conn })
    }

    /// Commits; on failure the transaction is rolled back as it is dropped.
    pub fn commit(self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self
                .conn
                .prepare_cached("ROLLBACK")
                .and_then(|mut rollback| rollback.execute([]));
        }
    }
}

/// How long a statement waits for another process's write lock before it gives up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The database path: `--db`, else `CLAUDE_C2C_DB`, else `c2c.db` in the `.claude` folder of
/// the user's home directory, where Claude Code keeps its own files: `$HOME` on Unix,
/// `%USERPROFILE%` on Windows (each falling back to what the system records for the user when
/// the variable is unset, as Node's `os.homedir()` does for Claude Code).
pub fn default_path() -> Result<PathBuf, StoreError> {
    path_from(std::env::var_os("CLAUDE_C2C_DB"), std::env::home_dir())
}

// `default_path` without the environment: `db` is `CLAUDE_C2C_DB`, `home` the home directory.
fn path_from(db: Option<OsString>, home: Option<PathBuf>) -> Result<PathBuf, StoreError> {
    if let Some(path) = db.filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    // An empty HOME would put the database in whatever directory the process starts in.
    let home = home
        .filter(|h| !h.as_os_str().is_empty())
        .ok_or(StoreError::NoHome)?;
    Ok(home.join(".claude").join("c2c.db"))
}

/// Opens (creating if needed) the database at `path` with the default busy timeout.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    open_with(path, BUSY_TIMEOUT)
}

/// Opens (creating if needed) the database at `path`, waiting up to `busy_timeout` for other
/// processes' locks, and brings its schema up to date. New directories and the new file are
/// private to the user (see `create_private_dir` and `create_private_file`).
pub fn open_with(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    if path.is_dir() {
        return Err(StoreError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        create_private_dir(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    if !path.exists()
        && let Err(source) = create_private_file(path)
        && source.kind() != std::io::ErrorKind::AlreadyExists
    {
        return Err(StoreError::CreateFile {
            path: path.to_path_buf(),
            source,
        });
    }
    let open_error = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut conn = Connection::open(path).map_err(open_error)?;
    configure(&mut conn, busy_timeout).map_err(open_error)?;
    match migrate::migrate(&mut conn) {
        Ok(()) => Ok(conn),
        Err(migrate::MigrateError::Sqlite(source)) => Err(open_error(source)),
        Err(migrate::MigrateError::TooNew(found)) => Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known: migrate::MIGRATIONS.len() as i64,
        }),
    }
}

/// Creates `dir` and its missing parents, mode 0700: only the user may list or enter them.
#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates `dir` and its missing parents. Windows has no mode bits: a new folder inherits the
/// access list of the folder it is made in. We rely on that rather than write one: under the
/// user's profile, where the default path lies, it grants the user, SYSTEM and the
/// Administrators only. A `--db` elsewhere gets what its folder grants.
#[cfg(windows)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new().recursive(true).create(dir)
}

/// Creates the empty database file, mode 0600 (SQLite gives its -wal and -shm files the main
/// file's mode).
#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

/// Creates the empty database file, which (like SQLite's -wal and -shm files next to it)
/// inherits its folder's access list, as `create_private_dir` says.
#[cfg(windows)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
}

/// A fresh in-memory database with the full schema, for tests and the generated spec.
pub fn open_in_memory() -> rusqlite::Result<Connection> {
    let mut conn = Connection::open_in_memory()?;
    configure(&mut conn, BUSY_TIMEOUT)?;
    match migrate::migrate(&mut conn) {
        Ok(()) => Ok(conn),
        Err(migrate::MigrateError::Sqlite(e)) => Err(e),
        Err(migrate::MigrateError::TooNew(_)) => unreachable!("a new database has version 0"),
    }
}

fn configure(conn: &mut Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    BUSY_TIMEOUT_MS.store(busy_timeout.as_millis() as u64, Ordering::Relaxed);
    conn.busy_handler(Some(wait_for_lock))?;
    switch_to_wal(conn, busy_timeout)?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    conn.set_prepared_statement_cache_capacity(64);
    // Plans that never depend on bound values. Otherwise SQLite (3.54 peeks at `LIMIT ?` and
    // `? IS NULL`) marks such a statement to be compiled again whenever its bindings change,
    // and rusqlite clears the bindings of every cached statement it hands back: the inbox
    // query was parsed and planned anew on each call. Our queries are written to walk their
    // index whatever the values.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

// The busy handler is a plain fn, so the timeout it enforces lives here; a process opens its
// database with one timeout.
static BUSY_TIMEOUT_MS: AtomicU64 = AtomicU64::new(10_000);

/// How long the first retries of a locked write wait: writes here take tens of microseconds,
/// so SQLite's default steps of 1 to 100 ms would leave the lock idle most of the time.
const FINE_RETRIES: i32 = 200;
const FINE_WAIT: Duration = Duration::from_micros(50);
const COARSE_WAIT: Duration = Duration::from_millis(1);

// Retries a locked statement: 200 short waits (10 ms in all), then 1 ms waits until the
// busy timeout has passed.
fn wait_for_lock(retries: i32) -> bool {
    let waited_ms = if retries < FINE_RETRIES {
        0
    } else {
        10 + (retries - FINE_RETRIES) as u64
    };
    if waited_ms >= BUSY_TIMEOUT_MS.load(Ordering::Relaxed) {
        return false;
    }
    std::thread::sleep(if retries < FINE_RETRIES {
        FINE_WAIT
    } else {
        COARSE_WAIT
    });
    true
}

// Switching a new file to WAL needs the write lock, and SQLite answers "busy" there without
// calling the busy handler (a read lock would have to be upgraded), so two servers starting
// on a new file at once would fail: retry until the busy timeout instead.
fn switch_to_wal(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + busy_timeout;
    loop {
        // journal_mode answers with a row, so it goes through query_row.
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A fresh session id: 16 random bytes from SQLite, written as a version-4 UUID.
pub fn new_id(conn: &Connection) -> rusqlite::Result<String> {
    let mut bytes: Vec<u8> = conn.query_row("SELECT randomblob(16)", [], |r| r.get(0))?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests;
