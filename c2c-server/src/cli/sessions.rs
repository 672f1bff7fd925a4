//! `claude-c2c sessions`: who is on the bus, how long since each was seen, and how many
//! messages each has not acknowledged.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::clock;
use crate::store::sessions;

/// The live sessions as a JSON object (`--json`) and as a table.
pub fn run(db: &rusqlite::Connection, as_json: bool, color: bool) -> Result<String, String> {
    let rows = sessions::overview(db).map_err(|e| format!("reading sessions failed: {e}"))?;
    let now = SystemTime::now();
    let list: Vec<Value> = rows
        .iter()
        .map(|s| {
            let ago = clock::parse(&s.last_seen_at)
                .and_then(|t| now.duration_since(t).ok())
                .map(|d| d.as_secs());
            json!({
                "name": s.name,
                "last_seen_at": s.last_seen_at,
                "seen_seconds_ago": ago,
                "unread": s.unread,
                "cwd": s.cwd,
            })
        })
        .collect();
    if as_json {
        return Ok(json!({ "sessions": list }).to_string() + "\n");
    }
    if list.is_empty() {
        return Ok("(no sessions)\n".to_string());
    }
    let table: Vec<Value> = rows
        .iter()
        .zip(&list)
        .map(|(s, j)| {
            json!({
                "name": s.name,
                "seen": j["seen_seconds_ago"].as_u64().map(age).unwrap_or_else(|| "?".into()),
                "unread": s.unread,
                "cwd": s.cwd,
            })
        })
        .collect();
    Ok(super::render::table(&table, color))
}

/// `42s ago`, `5m ago`, `3h ago`, `2d ago`.
fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}
