//! The errors that cross a boundary: `ToolError`, which a tool call turns into one `isError`
//! result whose text tells the model what was wrong and what to do, and `StoreError`, which
//! opening the database turns into a message that names the path.

use std::fmt;
use std::path::PathBuf;

/// Why a tool call failed. Its `Display` is the exact text the client receives.
#[derive(Debug)]
pub enum ToolError {
    /// The tool needs `register_session` first.
    NotRegistered,
    /// Another session registered this session's name since.
    Superseded {
        /// The name that was taken over.
        name: String,
    },
    /// The call named arguments the tool does not have.
    UnknownArguments {
        /// The names that were not recognised.
        unknown: Vec<String>,
        /// Every argument the tool takes.
        valid: Vec<String>,
    },
    /// A required argument was left out.
    MissingArgument {
        /// The argument's name.
        name: String,
    },
    /// An argument has the wrong JSON type or an unacceptable value.
    InvalidArgument {
        /// The argument's name.
        name: String,
        /// What is wrong with it and, where it helps, what would be right.
        problem: String,
    },
    /// A write asked for a version of a state entry (`if_version`) that it no longer has.
    VersionConflict {
        /// What it tried to do.
        op: crate::store::state::Op,
        /// The key.
        key: String,
        /// What it found.
        conflict: crate::store::state::Conflict,
    },
    /// The client may act only as one name (its hub token is bound to it), and tried another.
    NameNotAllowed {
        /// The name it tried.
        name: String,
        /// The one name it may act as.
        allowed: String,
    },
    /// The tool acts on the whole room, which a client bound to one name may not do.
    RoomWide {
        /// The tool.
        tool: &'static str,
        /// The one name the client may act as.
        allowed: String,
    },
    /// The database failed; nothing was changed.
    Store(rusqlite::Error),
    /// The database at `path` failed; nothing was changed (a `Store` error the dispatcher has
    /// placed).
    Database {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The client cancelled the call (`notifications/cancelled`) before it answered; nothing
    /// is sent back for it.
    Cancelled,
    /// A bug: something that should not happen did.
    Internal(String),
}

impl ToolError {
    /// An invalid-argument error for `name`.
    pub fn invalid(name: &str, problem: impl Into<String>) -> Self {
        ToolError::InvalidArgument {
            name: name.to_string(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::NotRegistered => f.write_str(
                "this session has no name yet: call register_session(name=\"...\") first \
                 (or start the server with --name)",
            ),
            ToolError::Superseded { name } => write!(
                f,
                "another session has registered as \"{name}\" since, so this one no longer \
                 receives its messages: call register_session to take a name again"
            ),
            ToolError::UnknownArguments { unknown, valid } => {
                let list = |names: &[String]| {
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                write!(f, "unknown argument {}; ", list(unknown))?;
                if valid.is_empty() {
                    f.write_str("this tool takes no arguments")
                } else {
                    write!(f, "valid arguments: {}", list(valid))
                }
            }
            ToolError::MissingArgument { name } => {
                write!(f, "missing required argument `{name}`")
            }
            ToolError::InvalidArgument { name, problem } => {
                write!(f, "invalid argument `{name}`: {problem}")
            }
            ToolError::VersionConflict { op, key, conflict } => {
                conflict_message(f, *op, key, conflict)
            }
            ToolError::NameNotAllowed { name, allowed } => write!(
                f,
                "this client's hub token acts only as \"{allowed}\": it cannot act as \"{name}\" \
                 (ask the hub's owner for a token for that name, or a room token)"
            ),
            ToolError::RoomWide { tool, allowed } => write!(
                f,
                "{tool} acts on the whole room, and this client's hub token acts only as \
                 \"{allowed}\": run it on the hub's machine, or with a token for the room"
            ),
            ToolError::Store(e) => store_message(f, e),
            ToolError::Database { path, source } => {
                store_message(f, source)?;
                write!(f, " [database: {}]", path.display())
            }
            ToolError::Cancelled => f.write_str("the client cancelled this call"),
            ToolError::Internal(message) => write!(
                f,
                "internal error (a bug in claude-c2c, nothing was changed): {message}"
            ),
        }
    }
}

// Says what the entry is now and what to do about it.
fn conflict_message(
    f: &mut fmt::Formatter<'_>,
    op: crate::store::state::Op,
    key: &str,
    conflict: &crate::store::state::Conflict,
) -> fmt::Result {
    use crate::store::state::Op;
    let expected = conflict.expected;
    let Some(entry) = &conflict.current else {
        return match op {
            Op::Set => write!(
                f,
                "{key:?} has no entry now (it expired or was deleted), not version {expected}: \
                 nothing was changed; a lease held at version {expected} is lost: take it again \
                 with if_version=0"
            ),
            Op::Delete => write!(
                f,
                "{key:?} has no entry now (it expired or was deleted), not version {expected}: \
                 nothing was deleted"
            ),
        };
    };
    write!(
        f,
        "{key:?} is at version {} (written by {:?} at {}",
        entry.version, entry.updated_by, entry.updated_at
    )?;
    if let Some(at) = &entry.expires_at {
        write!(f, ", expires at {at}")?;
    }
    write!(f, "), not {expected}: nothing was changed; ")?;
    if expected == 0 {
        write!(
            f,
            "someone holds it: get_state(key, wait_while_version={}) waits until it changes \
             (renewed: wait again with the new version; released or expired: take it)",
            entry.version
        )
    } else {
        f.write_str("read it with get_state and try again")
    }
}

fn store_message(f: &mut fmt::Formatter<'_>, e: &rusqlite::Error) -> fmt::Result {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, ReadOnly};
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked) => write!(
            f,
            "the database stayed locked by another process past the busy timeout; nothing \
             was changed: try again ({e})"
        ),
        Some(ReadOnly) => write!(
            f,
            "the database is read-only; nothing was changed: check the file's permissions ({e})"
        ),
        _ => write!(f, "database error, nothing was changed: {e}"),
    }
}

impl std::error::Error for ToolError {}

impl From<rusqlite::Error> for ToolError {
    fn from(e: rusqlite::Error) -> Self {
        ToolError::Store(e)
    }
}

/// Why the database could not be opened or brought up to date.
#[derive(Debug)]
pub enum StoreError {
    /// The directory for the database could not be created.
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The database file could not be created.
    CreateFile {
        /// The database file.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// SQLite refused to open or set up the file.
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The file was written by a newer claude-c2c.
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build knows.
        known: i64,
    },
    /// The path names a directory, not a file.
    IsDirectory {
        /// The path given.
        path: PathBuf,
    },
    /// No home directory is known, so the default path cannot be formed.
    NoHome,
}

/// Why no home directory was found, in the terms of the platform.
#[cfg(unix)]
const NO_HOME: &str = "HOME is empty, or unset and the system records no home for this user";
/// Why no home directory was found, in the terms of the platform.
#[cfg(windows)]
const NO_HOME: &str = "USERPROFILE is unset and Windows reports no profile folder for this user";

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::CreateDir { path, source } => write!(
                f,
                "cannot create the directory {} for the database: {source}; create it or \
                 point --db / CLAUDE_C2C_DB elsewhere",
                path.display()
            ),
            StoreError::CreateFile { path, source } => write!(
                f,
                "cannot create the database {}: {source}; check the directory's permissions \
                 or point --db / CLAUDE_C2C_DB elsewhere",
                path.display()
            ),
            // SQLite's own text for a foreign file ("file is not a database") says what the
            // explanation says, so only the explanation is given.
            StoreError::Open { path, source }
                if source.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) =>
            {
                write!(
                    f,
                    "cannot open the database {}: the file is not an SQLite database: move it \
                     away or point --db / CLAUDE_C2C_DB at another path",
                    path.display()
                )
            }
            StoreError::Open { path, source } => {
                write!(f, "cannot open the database {}: {source}", path.display())?;
                match source.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen) => f
                        .write_str(
                            "; check that the file and its directory are writable by you, or \
                             point --db / CLAUDE_C2C_DB elsewhere",
                        ),
                    Some(
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked,
                    ) => {
                        f.write_str("; another process holds it locked: try again when it is done")
                    }
                    _ => Ok(()),
                }
            }
            StoreError::TooNew { path, found, known } => write!(
                f,
                "the database {} has schema version {found}, newer than this claude-c2c knows \
                 ({known}): upgrade claude-c2c",
                path.display()
            ),
            StoreError::IsDirectory { path } => write!(
                f,
                "the database path {} is a directory: give a file path, e.g. {}",
                path.display(),
                path.join("c2c.db").display()
            ),
            StoreError::NoHome => write!(
                f,
                "no home directory ({NO_HOME}): give the database path with --db or \
                 CLAUDE_C2C_DB"
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::CreateDir { source, .. } | StoreError::CreateFile { source, .. } => {
                Some(source)
            }
            StoreError::Open { source, .. } => Some(source),
            _ => None,
        }
    }
}
