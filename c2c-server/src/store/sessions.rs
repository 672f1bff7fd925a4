//! The `sessions` table: registering a name (superseding its previous live holder), the
//! heartbeat, listing who is around, and pruning the rows not seen for a while.

use rusqlite::{Connection, OptionalExtension, params};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::call::Session;
use crate::clock;
use crate::process::{self, ProcessInfo};

/// A session as `list_sessions` shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionInfo {
    /// The registration's unique id.
    pub session_id: String,
    /// The name it answers to.
    pub name: String,
    /// Its working directory when it registered, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// When it registered.
    pub started_at: String,
    /// When it last called a tool.
    pub last_seen_at: String,
    /// What it said about itself when it registered.
    pub metadata: Map<String, Value>,
    /// Whether this is the caller.
    pub is_self: bool,
}

/// Whether a registration still holds its name, as its heartbeat finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// It holds its name.
    Live,
    /// Another registration took its name, or its row was pruned.
    Superseded,
}

/// Where a registration runs: its working directory, the Claude Code session it serves
/// (`CLAUDE_CODE_SESSION_ID`) and its server process, by which hooks find it and by which a
/// name held by a process that has exited can be taken back.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// The working directory.
    pub cwd: Option<&'a str>,
    /// The Claude Code session id.
    pub claude_session: Option<&'a str>,
    /// The server process; none for a registration made from the command line.
    pub process: Option<&'a ProcessInfo>,
}

/// The live registration of a name and the process that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The registration.
    pub session: Session,
    /// Its server's process id, if it recorded one.
    pub pid: Option<i64>,
    /// The machine it recorded, if any.
    pub host: Option<String>,
}

impl Holder {
    /// Whether the holder's process may still be running (see [`process::may_be_running`]).
    pub fn may_be_running(&self) -> bool {
        process::may_be_running(self.pid, self.host.as_deref())
    }
}

/// Registers `name` in `room` as a new session; the name's live holder there and the caller's
/// own previous registration (`previous`) are marked superseded, keeping their history.
pub fn register(
    db: &Connection,
    room: &str,
    name: &str,
    origin: Origin<'_>,
    metadata: &Map<String, Value>,
    previous: Option<&str>,
) -> rusqlite::Result<Session> {
    let session_id = super::new_id(db)?;
    let now = clock::now();
    db.prepare_cached(
        "UPDATE sessions SET superseded_at = ?1, superseded_by = ?2
          WHERE superseded_at IS NULL AND ((room = ?5 AND name = ?3) OR session_id = ?4)",
    )?
    .execute(params![now, session_id, name, previous, room])?;
    let process = origin.process;
    db.prepare_cached(
        "INSERT INTO sessions (session_id, name, cwd, started_at, last_seen_at, metadata,
                               claude_session_id, pid, client_pid, host, room)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        session_id,
        name,
        origin.cwd,
        now,
        Value::Object(metadata.clone()).to_string(),
        origin.claude_session,
        process.map(|p| p.pid),
        process.and_then(|p| p.client_pid),
        process.map(|p| p.host.as_str()),
        room,
    ])?;
    Ok(Session {
        session_id,
        name: name.to_string(),
        room: room.to_string(),
    })
}

/// Replaces the metadata of `session_id`.
pub fn set_metadata(
    db: &Connection,
    session_id: &str,
    metadata: &Map<String, Value>,
) -> rusqlite::Result<()> {
    db.prepare_cached("UPDATE sessions SET metadata = ?1 WHERE session_id = ?2")?
        .execute(params![
            Value::Object(metadata.clone()).to_string(),
            session_id
        ])?;
    Ok(())
}

/// Refreshes `last_seen_at` of `session_id` and says whether it still holds its name.
pub fn heartbeat(db: &Connection, session_id: &str, at: &str) -> rusqlite::Result<Standing> {
    let superseded: Option<bool> = db
        .prepare_cached(
            "UPDATE sessions SET last_seen_at = ?1 WHERE session_id = ?2
             RETURNING superseded_at IS NOT NULL",
        )?
        .query_row(params![at, session_id], |r| r.get(0))
        .optional()?;
    Ok(match superseded {
        Some(false) => Standing::Live,
        Some(true) | None => Standing::Superseded,
    })
}

/// Whether `session_id` still holds its name, without writing anything.
pub fn standing(db: &Connection, session_id: &str) -> rusqlite::Result<Standing> {
    let superseded: Option<bool> = db
        .prepare_cached("SELECT superseded_at IS NOT NULL FROM sessions WHERE session_id = ?1")?
        .query_row([session_id], |r| r.get(0))
        .optional()?;
    Ok(match superseded {
        Some(false) => Standing::Live,
        Some(true) | None => Standing::Superseded,
    })
}

/// The live sessions of `room` seen since `cutoff`, most recently seen first.
pub fn list(
    db: &Connection,
    room: &str,
    cutoff: &str,
    me: Option<&str>,
) -> rusqlite::Result<Vec<SessionInfo>> {
    let mut stmt = db.prepare_cached(
        "SELECT session_id, name, cwd, started_at, last_seen_at, metadata FROM sessions
          WHERE room = ?2 AND superseded_at IS NULL AND last_seen_at >= ?1
          ORDER BY last_seen_at DESC",
    )?;
    let rows = stmt.query_map([cutoff, room], |r| {
        let session_id: String = r.get(0)?;
        let metadata: Option<String> = r.get(5)?;
        Ok(SessionInfo {
            is_self: Some(session_id.as_str()) == me,
            session_id,
            name: r.get(1)?,
            cwd: r.get(2)?,
            started_at: r.get(3)?,
            last_seen_at: r.get(4)?,
            metadata: metadata_object(metadata.as_deref()),
        })
    })?;
    rows.collect()
}

// Metadata as stored: an object from this server; whatever an older writer left (NULL, JSON
// that is not an object, text that is not JSON) is kept visible under "value".
fn metadata_object(stored: Option<&str>) -> Map<String, Value> {
    let parsed = match stored.map(str::trim) {
        None | Some("") => return Map::new(),
        Some(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into())),
    };
    match parsed {
        Value::Object(object) => object,
        Value::Null => Map::new(),
        other => Map::from_iter([("value".to_string(), other)]),
    }
}

/// Deletes the registrations of `room`, live or superseded, last seen before `cutoff`, except
/// `keep`; returns how many. Messages are addressed by name, so a deleted session's unread messages
/// wait for the next session of that name; a server that registered by `--name` registers
/// again on its next call.
pub fn prune(
    db: &Connection,
    room: &str,
    cutoff: &str,
    keep: Option<&str>,
) -> rusqlite::Result<usize> {
    db.prepare_cached(
        "DELETE FROM sessions WHERE room = ?3 AND last_seen_at < ?1 AND session_id IS NOT ?2",
    )?
    .execute(params![cutoff, keep, room])
}

/// Forgets the process of the registration `session_id` (its server has ended without the
/// process exiting: a hub's MCP session), so that its name can be taken as from an exited one.
pub fn release_process(db: &Connection, session_id: &str) -> rusqlite::Result<()> {
    db.prepare_cached("UPDATE sessions SET pid = NULL, client_pid = NULL WHERE session_id = ?1")?
        .execute([session_id])?;
    Ok(())
}

/// The live registration holding `name` in `room`, if any.
pub fn live(db: &Connection, room: &str, name: &str) -> rusqlite::Result<Option<Session>> {
    Ok(holder(db, room, name)?.map(|h| h.session))
}

/// Whether any session, live or superseded, has ever registered as `name` in `room`.
pub fn ever_registered(db: &Connection, room: &str, name: &str) -> rusqlite::Result<bool> {
    if live(db, room, name)?.is_some() {
        return Ok(true);
    }
    db.prepare_cached("SELECT 1 FROM sessions WHERE room = ?1 AND name = ?2")?
        .exists([room, name])
}

/// The live registration of `name` in `room` with the process that made it, if any.
pub fn holder(db: &Connection, room: &str, name: &str) -> rusqlite::Result<Option<Holder>> {
    db.prepare_cached(
        "SELECT session_id, name, room, pid, host FROM sessions
          WHERE room = ?1 AND name = ?2 AND superseded_at IS NULL",
    )?
    .query_row([room, name], |r| {
        Ok(Holder {
            session: session_row(r)?,
            pid: r.get(3)?,
            host: r.get(4)?,
        })
    })
    .optional()
}

/// The registration whose server was started by the client process `client_pid` on `host`,
/// with whether it still holds its name: the live one if there is one, else the most recently
/// seen.
pub fn started_by(
    db: &Connection,
    client_pid: u32,
    host: &str,
) -> rusqlite::Result<Option<(Session, Standing)>> {
    db.prepare_cached(
        "SELECT session_id, name, room, superseded_at IS NULL FROM sessions
          WHERE client_pid = ?1 AND coalesce(host, '') = ?2
          ORDER BY superseded_at IS NULL DESC, last_seen_at DESC LIMIT 1",
    )?
    .query_row(params![client_pid, host], |r| {
        let live: bool = r.get(3)?;
        Ok((
            session_row(r)?,
            if live {
                Standing::Live
            } else {
                Standing::Superseded
            },
        ))
    })
    .optional()
}

/// The live registration that recorded the Claude Code session `claude_session`.
pub fn serving_claude_session(
    db: &Connection,
    claude_session: &str,
) -> rusqlite::Result<Option<Session>> {
    db.prepare_cached(
        "SELECT session_id, name, room FROM sessions
          WHERE claude_session_id = ?1 AND superseded_at IS NULL
          ORDER BY last_seen_at DESC LIMIT 1",
    )?
    .query_row([claude_session], session_row)
    .optional()
}

/// The most recently seen live registration of a server started in `cwd`, in `room` if given
/// (registrations made from the command line have no server, and do not count).
pub fn latest_server_in(
    db: &Connection,
    cwd: &str,
    room: Option<&str>,
) -> rusqlite::Result<Option<Session>> {
    db.prepare_cached(
        "SELECT session_id, name, room FROM sessions
          WHERE cwd = ?1 AND pid IS NOT NULL AND superseded_at IS NULL
            AND (?2 IS NULL OR room = ?2)
          ORDER BY last_seen_at DESC LIMIT 1",
    )?
    .query_row(params![cwd, room], session_row)
    .optional()
}

// A session from the first three columns: session_id, name, room.
fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        session_id: r.get(0)?,
        name: r.get(1)?,
        room: r.get(2)?,
    })
}

/// Makes `waiter` the one `hook wait` of `session_id`, replacing any earlier one.
pub fn set_hook_waiter(db: &Connection, session_id: &str, waiter: &str) -> rusqlite::Result<()> {
    db.prepare_cached("UPDATE sessions SET hook_waiter = ?1 WHERE session_id = ?2")?
        .execute(params![waiter, session_id])?;
    Ok(())
}

/// Whether `waiter` is still the `hook wait` of `session_id`, and the session still holds its
/// name.
pub fn is_hook_waiter(db: &Connection, session_id: &str, waiter: &str) -> rusqlite::Result<bool> {
    db.prepare_cached(
        "SELECT 1 FROM sessions
          WHERE session_id = ?1 AND hook_waiter = ?2 AND superseded_at IS NULL",
    )?
    .exists(params![session_id, waiter])
}

/// A live session with its count of unread messages, for people looking at the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    /// The room it is in.
    pub room: String,
    /// The name.
    pub name: String,
    /// When it last called a tool.
    pub last_seen_at: String,
    /// Its working directory.
    pub cwd: Option<String>,
    /// Messages addressed to it (directly or by broadcast) that it has not acknowledged.
    pub unread: i64,
    /// Whether the process that holds its name may still be running (false for a name the
    /// command line holds, and for one whose server has exited).
    #[serde(default)]
    pub running: bool,
}

/// Every live session of `room` (of every room if `None`), by room, most recently seen first,
/// with its unread count.
pub fn overview(db: &Connection, room: Option<&str>) -> rusqlite::Result<Vec<Overview>> {
    let mut stmt = db.prepare_cached(
        "SELECT s.room, s.name, s.last_seen_at, s.cwd, s.pid, s.host,
                (SELECT count(*) FROM messages
                  WHERE room = s.room AND to_name = s.name AND read_at IS NULL)
              + (SELECT count(*) FROM messages AS m
                  WHERE m.room = s.room AND m.to_name = '*' AND m.from_name != s.name
                    AND m.id >= coalesce((SELECT below FROM broadcast_cursors
                                           WHERE room = s.room AND reader = s.name), 0)
                    AND NOT EXISTS (SELECT 1 FROM broadcast_reads AS r
                                     WHERE r.message_id = m.id AND r.reader = s.name))
           FROM sessions AS s WHERE s.superseded_at IS NULL AND (?1 IS NULL OR s.room = ?1)
          ORDER BY s.room, s.last_seen_at DESC",
    )?;
    let rows = stmt.query_map([room], |r| {
        Ok(Overview {
            room: r.get(0)?,
            name: r.get(1)?,
            last_seen_at: r.get(2)?,
            cwd: r.get(3)?,
            running: process::may_be_running(r.get(4)?, r.get::<_, Option<String>>(5)?.as_deref()),
            unread: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// Every room that holds anything: a session, a message or a state entry, in name order.
pub fn rooms(db: &Connection) -> rusqlite::Result<Vec<String>> {
    // The messages' rooms by a skip over the (room, id) index, one look-up per room, rather
    // than a scan of every message (the page asks on every change).
    let mut stmt = db.prepare_cached(
        "WITH RECURSIVE message_rooms(room) AS (
             SELECT min(room) FROM messages
             UNION ALL
             SELECT (SELECT min(room) FROM messages WHERE room > message_rooms.room)
               FROM message_rooms WHERE message_rooms.room IS NOT NULL)
         SELECT room FROM message_rooms WHERE room IS NOT NULL
         UNION SELECT room FROM sessions UNION SELECT room FROM state ORDER BY 1",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}
