//! The server's settings after the command line and environment have been read: where the
//! database lives and the limits that bad input is checked against.

use std::path::PathBuf;

use crate::process::ProcessInfo;

/// The room a server or command is in unless `--room` or `C2C_ROOM` says otherwise; it holds
/// everything written before rooms existed.
pub const DEFAULT_ROOM: &str = "default";

/// The default cap on a message body or a state value, in bytes (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// Settings shared by every call of one server process.
#[derive(Debug, Clone)]
pub struct Config {
    /// The SQLite file.
    pub db_path: PathBuf,
    /// The largest message body or serialised state value accepted, in bytes.
    pub max_body_bytes: usize,
    /// The working directory recorded with a registration.
    pub cwd: Option<String>,
    /// The Claude Code session this server serves (`CLAUDE_CODE_SESSION_ID`), recorded with a
    /// registration so that hooks of the same Claude Code session find it.
    pub claude_session: Option<String>,
    /// Push new messages as Claude Code channel events (`--channel`).
    pub channel: bool,
    /// The room: the namespace of the names, messages and state this client sees (`--room`).
    pub room: String,
    /// The name this server claims (`--name`): registered at start when free, else at the
    /// first tool call, and taken back when its holder's process has exited.
    pub name: Option<String>,
    /// The one name this client may act as (a hub token bound to a name); `None`: any.
    pub only_name: Option<String>,
    /// The server process, recorded with a registration; `None` for the command line, which
    /// acts for a person or a script: it takes no name from a running session and records no
    /// deliveries.
    pub process: Option<ProcessInfo>,
}

impl Config {
    /// Settings for `db_path` with the default limits, no channel, the Claude Code session
    /// from `CLAUDE_CODE_SESSION_ID` and, as the working directory, the project Claude Code
    /// names in `CLAUDE_PROJECT_DIR`, else the process's own.
    pub fn new(db_path: PathBuf) -> Self {
        let cwd = working_dir();
        let claude_session = std::env::var("CLAUDE_CODE_SESSION_ID")
            .ok()
            .filter(|s| !s.is_empty());
        Config {
            db_path,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            cwd,
            claude_session,
            channel: false,
            room: DEFAULT_ROOM.to_string(),
            name: None,
            only_name: None,
            process: None,
        }
    }

    /// Settings for a client in `room` that reaches the bus through a door (the hub's MCP
    /// sessions and JSON API, the page): this process's working directory and Claude Code
    /// session say nothing about it, so neither is recorded, and no process holds its names
    /// unless the door sets one; `only_name` is the one name it may act as, if any.
    pub fn for_remote(
        db_path: PathBuf,
        max_body_bytes: usize,
        room: String,
        only_name: Option<String>,
    ) -> Self {
        Config {
            max_body_bytes,
            room,
            only_name,
            cwd: None,
            claude_session: None,
            ..Config::new(db_path)
        }
    }
}

/// The working directory a registration records: the project Claude Code names in
/// `CLAUDE_PROJECT_DIR`, else the process's own.
pub fn working_dir() -> Option<String> {
    let project = std::env::var_os("CLAUDE_PROJECT_DIR").filter(|p| !p.is_empty());
    project
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .map(|p| p.to_string_lossy().into_owned())
}
