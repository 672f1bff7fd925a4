//! The `state` table: shared key/value entries, last writer wins, each stamped with when and by
//! whom it was last written.

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
    /// When it was last written.
    pub updated_at: String,
    /// The name of the session that last wrote it.
    pub updated_by: String,
}

/// Writes `value` (already serialised JSON) at `key`, stamped with `by` and the time.
pub fn set(db: &Connection, key: &str, value: &str, by: &str) -> rusqlite::Result<()> {
    db.prepare_cached(
        "INSERT INTO state (key, value, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(key) DO UPDATE SET
            value = excluded.value, updated_at = excluded.updated_at,
            updated_by = excluded.updated_by",
    )?
    .execute(params![key, value, clock::now(), by])?;
    Ok(())
}

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<StateEntry> {
    let raw: String = r.get(1)?;
    Ok(StateEntry {
        key: r.get(0)?,
        // Every writer stores JSON; should a row hold anything else, show it as a string.
        value: serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
        updated_at: r.get(2)?,
        updated_by: r.get(3)?,
    })
}

/// The entry at `key`, if there is one.
pub fn get(db: &Connection, key: &str) -> rusqlite::Result<Option<StateEntry>> {
    db.prepare_cached("SELECT key, value, updated_at, updated_by FROM state WHERE key = ?1")?
        .query_row([key], entry)
        .optional()
}

/// Every entry whose key starts with `prefix` (all entries without one), in key order.
pub fn list(db: &Connection, prefix: Option<&str>) -> rusqlite::Result<Vec<StateEntry>> {
    let mut stmt = db.prepare_cached(
        "SELECT key, value, updated_at, updated_by FROM state
          WHERE ?1 IS NULL OR substr(key, 1, length(?1)) = ?1 ORDER BY key",
    )?;
    let rows = stmt.query_map([prefix], entry)?;
    rows.collect()
}
