//! The `state` table: shared key/value entries of a room. Each entry carries a version (1 when
//! the key is first written, +1 on every write or delete), so that a writer can ask for its
//! write to happen only at the version it read (compare-and-set); and it may expire. A delete
//! expires the entry at once and keeps its row, so versions never repeat for a key and a lease
//! holder whose lease ran out cannot renew what another took since. Expired rows go at prune,
//! which raises the room's floor (`state_floors`) above their versions: a key written after
//! that starts at the floor rather than at 1, so pruning cannot bring an old version back.

use rusqlite::{Connection, OptionalExtension, params};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::clock;

/// One shared-state entry.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct StateEntry {
    /// The key.
    pub key: String,
    /// The stored JSON value.
    pub value: Value,
    /// 1 when the key was first written (or the room's floor, after a prune), +1 on every write
    /// or delete since.
    pub version: i64,
    /// When it was last written.
    pub updated_at: String,
    /// The name of the session that last wrote it.
    pub updated_by: String,
    /// When it expires, if it was written with a time to live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// What a compare-and-set tried to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Write the entry (`set_state`).
    Set,
    /// Delete it (`delete_state`).
    Delete,
}

/// A compare-and-set that found another version than the one asked for; nothing was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The version the writer asked for.
    pub expected: i64,
    /// The entry as it is, or `None` when there is none (its version counts as 0).
    pub current: Option<Box<StateEntry>>,
}

impl Conflict {
    /// The version found: the entry's, or 0 when there is none.
    pub fn found(&self) -> i64 {
        self.current.as_ref().map_or(0, |e| e.version)
    }
}

/// Why [`set`] wrote nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// The entry is not at the version the write asked for.
    Conflict(Conflict),
    /// A conditional write would take the expiry off an entry that has one: a lease renewed
    /// without a time to live would never free itself should its holder die.
    WouldNotExpire {
        /// When the entry expires now.
        expires_at: String,
    },
}

impl Refused {
    /// The version conflict, if that is why.
    pub fn conflict(self) -> Option<Conflict> {
        match self {
            Refused::Conflict(conflict) => Some(conflict),
            Refused::WouldNotExpire { .. } => None,
        }
    }
}

/// A write of one key: the value (serialised JSON), who writes it, and its conditions.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    /// The room.
    pub room: &'a str,
    /// The key.
    pub key: &'a str,
    /// The new value, as JSON text.
    pub value: &'a str,
    /// The writer's name.
    pub by: &'a str,
    /// Write only if the entry is at this version (0: only if there is none).
    pub if_version: Option<i64>,
    /// The expiry time to record, if any (none clears an earlier one).
    pub expires_at: Option<&'a str>,
}

const COLUMNS: &str = "key, value, version, updated_at, updated_by, expires_at";

// The row of `key` in `room` whether or not it has expired, with whether it is live at `now`.
fn row(
    db: &Connection,
    room: &str,
    key: &str,
    now: &str,
) -> rusqlite::Result<Option<(StateEntry, bool)>> {
    db.prepare_cached(&format!(
        "SELECT {COLUMNS}, expires_at IS NULL OR expires_at > ?3 FROM state
          WHERE room = ?1 AND key = ?2"
    ))?
    .query_row(params![room, key, now], |r| Ok((entry(r)?, r.get(6)?)))
    .optional()
}

// Checks `if_version` against the row found: the live entry, if any, and its version.
fn check(
    found: &Option<(StateEntry, bool)>,
    if_version: Option<i64>,
) -> Result<Option<StateEntry>, Conflict> {
    let current = found
        .as_ref()
        .filter(|(_, live)| *live)
        .map(|(e, _)| e.clone());
    match if_version {
        Some(expected) if expected != current.as_ref().map_or(0, |e| e.version) => Err(Conflict {
            expected,
            current: current.map(Box::new),
        }),
        _ => Ok(current),
    }
}

/// Writes `w`: the new version, or why it was not written.
pub fn set(db: &Connection, w: &Write<'_>) -> rusqlite::Result<Result<i64, Refused>> {
    let now = clock::now();
    let found = row(db, w.room, w.key, &now)?;
    let current = match check(&found, w.if_version) {
        Ok(current) => current,
        Err(conflict) => return Ok(Err(Refused::Conflict(conflict))),
    };
    if w.if_version.is_some()
        && w.expires_at.is_none()
        && let Some(expires_at) = current.and_then(|e| e.expires_at)
    {
        return Ok(Err(Refused::WouldNotExpire { expires_at }));
    }
    // An expired or deleted row keeps counting, so an old version never comes back.
    let version = match found {
        Some((e, _)) => e.version + 1,
        None => floor(db, w.room)?,
    };
    db.prepare_cached(
        "INSERT INTO state (room, key, value, updated_at, updated_by, version, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(room, key) DO UPDATE SET
            value = excluded.value, updated_at = excluded.updated_at,
            updated_by = excluded.updated_by, version = excluded.version,
            expires_at = excluded.expires_at",
    )?
    .execute(params![
        w.room,
        w.key,
        w.value,
        now,
        w.by,
        version,
        w.expires_at
    ])?;
    Ok(Ok(version))
}

/// Deletes the entry at `key` in `room` (only at version `if_version`, if given) as `by`: the
/// version it had, `None` when there was none, or the conflict.
pub fn delete(
    db: &Connection,
    room: &str,
    key: &str,
    by: &str,
    if_version: Option<i64>,
) -> rusqlite::Result<Result<Option<i64>, Conflict>> {
    let now = clock::now();
    let found = row(db, room, key, &now)?;
    let current = match check(&found, if_version) {
        Ok(current) => current,
        Err(conflict) => return Ok(Err(conflict)),
    };
    let Some(current) = current else {
        return Ok(Ok(None));
    };
    db.prepare_cached(
        "UPDATE state SET version = version + 1, updated_at = ?3, updated_by = ?4,
                          expires_at = ?3
          WHERE room = ?1 AND key = ?2",
    )?
    .execute(params![room, key, now, by])?;
    Ok(Ok(Some(current.version)))
}

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<StateEntry> {
    let raw: String = r.get(1)?;
    Ok(StateEntry {
        key: r.get(0)?,
        // Every writer stores JSON; should a row hold anything else, show it as a string.
        value: serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
        version: r.get(2)?,
        updated_at: r.get(3)?,
        updated_by: r.get(4)?,
        expires_at: r.get(5)?,
    })
}

/// The live entry at `key` in `room`, if there is one.
pub fn get(db: &Connection, room: &str, key: &str) -> rusqlite::Result<Option<StateEntry>> {
    let found = row(db, room, key, &clock::now())?;
    Ok(found.filter(|(_, live)| *live).map(|(entry, _)| entry))
}

/// Every live entry of `room` whose key starts with `prefix` (all without one), in key order.
pub fn list(
    db: &Connection,
    room: &str,
    prefix: Option<&str>,
) -> rusqlite::Result<Vec<StateEntry>> {
    let mut stmt = db.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM state
          WHERE room = ?1 AND (?2 IS NULL OR substr(key, 1, length(?2)) = ?2)
            AND (expires_at IS NULL OR expires_at > ?3)
          ORDER BY key"
    ))?;
    let rows = stmt.query_map(params![room, prefix, clock::now()], entry)?;
    rows.collect()
}

// The version a key of `room` that has no row starts at.
fn floor(db: &Connection, room: &str) -> rusqlite::Result<i64> {
    let next: Option<i64> = db
        .prepare_cached("SELECT next FROM state_floors WHERE room = ?1")?
        .query_row([room], |r| r.get(0))
        .optional()?;
    Ok(next.unwrap_or(1))
}

/// Deletes the rows of `room` that expired (or were deleted) before `cutoff`, first raising
/// the room's floor above their versions; returns how many.
pub fn prune(db: &Connection, room: &str, cutoff: &str) -> rusqlite::Result<usize> {
    db.prepare_cached(
        "INSERT INTO state_floors (room, next)
         SELECT room, max(version) + 1 FROM state
          WHERE room = ?1 AND expires_at < ?2 GROUP BY room
         ON CONFLICT(room) DO UPDATE SET next = max(next, excluded.next)",
    )?
    .execute(params![room, cutoff])?;
    db.prepare_cached("DELETE FROM state WHERE room = ?1 AND expires_at < ?2")?
        .execute(params![room, cutoff])
}
