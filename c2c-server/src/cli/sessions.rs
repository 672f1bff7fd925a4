//! `claude-c2c sessions` and `claude-c2c rooms`: who is on the bus (in one room or all), how
//! long since each was seen, and how many messages each has not acknowledged; and the rooms
//! that hold anything, with their live sessions.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::clock;
use crate::store::sessions::{self, Overview};

/// The live sessions of `room` (of every room if `None`) as a JSON object (`--json`) and as a
/// table.
pub fn run(
    db: &rusqlite::Connection,
    room: Option<&str>,
    as_json: bool,
    color: bool,
) -> Result<String, String> {
    let rows = sessions::overview(db, room).map_err(|e| format!("reading sessions failed: {e}"))?;
    Ok(show(&rows, room, as_json, color))
}

/// `rows`, the live sessions of `room` (of every room if `None`), as `run` shows them.
pub fn show(rows: &[Overview], room: Option<&str>, as_json: bool, color: bool) -> String {
    let now = SystemTime::now();
    let seen_ago = |s: &Overview| {
        clock::parse(&s.last_seen_at)
            .and_then(|t| now.duration_since(t).ok())
            .map(|d| d.as_secs())
    };
    if as_json {
        let list: Vec<Value> = rows
            .iter()
            .map(|s| {
                json!({
                    "room": s.room,
                    "name": s.name,
                    "last_seen_at": s.last_seen_at,
                    "seen_seconds_ago": seen_ago(s),
                    "unread": s.unread,
                    "cwd": s.cwd,
                })
            })
            .collect();
        return json!({ "room": room, "sessions": list }).to_string() + "\n";
    }
    if rows.is_empty() {
        return match room {
            Some(room) => format!("(no sessions in room {room})\n"),
            None => "(no sessions)\n".to_string(),
        };
    }
    let table: Vec<Value> = rows
        .iter()
        .map(|s| {
            json!({
                "room": s.room,
                "name": s.name,
                "seen": seen_ago(s).map(clock::age).unwrap_or_else(|| "?".into()),
                "unread": s.unread,
                "cwd": s.cwd,
            })
        })
        .collect();
    super::render::table(&table, color)
}

/// Every room that holds a session, a message or a state entry, with its live sessions and
/// their unread counts, as JSON (`--json`) or a table.
pub fn rooms(db: &rusqlite::Connection, as_json: bool, color: bool) -> Result<String, String> {
    let fail = |e: rusqlite::Error| format!("reading rooms failed: {e}");
    let names = sessions::rooms(db).map_err(fail)?;
    let live = sessions::overview(db, None).map_err(fail)?;
    Ok(show_rooms(names, &live, as_json, color))
}

/// The rooms `names`, with their sessions among `live`, as `rooms` shows them.
pub fn show_rooms(names: Vec<String>, live: &[Overview], as_json: bool, color: bool) -> String {
    let rooms: Vec<(String, Vec<&Overview>)> = names
        .into_iter()
        .map(|room| {
            let members = live.iter().filter(|s| s.room == room).collect();
            (room, members)
        })
        .collect();
    if as_json {
        let list: Vec<Value> = rooms
            .iter()
            .map(|(room, members)| {
                let sessions: Vec<Value> = members
                    .iter()
                    .map(|s| json!({"name": s.name, "unread": s.unread, "last_seen_at": s.last_seen_at}))
                    .collect();
                json!({
                    "room": room,
                    "sessions": sessions,
                    "unread": members.iter().map(|s| s.unread).sum::<i64>(),
                })
            })
            .collect();
        return json!({ "rooms": list }).to_string() + "\n";
    }
    if rooms.is_empty() {
        return "(no rooms: nothing has been written yet)\n".to_string();
    }
    let table: Vec<Value> = rooms
        .iter()
        .map(|(room, members)| {
            let names: Vec<String> = members
                .iter()
                .map(|s| match s.unread {
                    0 => s.name.clone(),
                    n => format!("{} ({n} unread)", s.name),
                })
                .collect();
            json!({
                "room": room,
                "live": members.len(),
                "sessions": if names.is_empty() { "-".to_string() } else { names.join(", ") },
                "unread": members.iter().map(|s| s.unread).sum::<i64>(),
            })
        })
        .collect();
    super::render::table(&table, color)
}
