//! `claude-c2c tail`: follow the bus, printing each message of the room (or of every room) as
//! it is committed (or, with `--since`, from an id on), each with its room, optionally only
//! those to or from a name or with a tag. It only reads: nothing is marked read or delivered.
//! Between looks it sleeps until a write to the database is noticed (the same watcher that
//! wakes `wait_for_message`).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;

use crate::store::messages::{self, Message};
use crate::wake::Wake;

/// The options of `tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Only messages from or to this name (broadcasts included).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Only messages with this tag.
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    /// Replay stored messages from this id on, then follow.
    #[arg(long, value_name = "ID")]
    since: Option<i64>,
    /// Print each message as one line of JSON.
    #[arg(long)]
    json: bool,
    /// Follow every room, not only --room.
    #[arg(long)]
    pub all_rooms: bool,
    /// Look at least this often, in milliseconds, even when no write was noticed.
    #[arg(long, default_value_t = 1000, value_name = "MS", hide = true)]
    poll_ms: u64,
}

/// How many rows one look at the table reads at most.
const BATCH: u32 = 500;

/// Follows `room` (every room if `None`) on `db` (the file at `path`) until interrupted or
/// stdout closes.
pub fn run(
    db: &rusqlite::Connection,
    path: &Path,
    room: Option<&str>,
    args: &TailArgs,
    color: bool,
) -> Result<(), String> {
    let fail = |e: rusqlite::Error| format!("reading messages failed: {e}");
    let mut waiter = Wake::new(path).subscribe().map_err(fail)?;
    let mut last = match args.since {
        Some(id) => id.saturating_sub(1),
        None => messages::last_id(db).map_err(fail)?,
    };
    let stdout = std::io::stdout();
    loop {
        let batch = messages::after(db, last, BATCH).map_err(fail)?;
        let mut out = stdout.lock();
        for (in_room, message) in &batch {
            last = message.id;
            if room.is_some_and(|r| r != in_room) || !wanted(message, args) {
                continue;
            }
            let line = if args.json {
                let mut object = serde_json::to_value(message).expect("messages serialise");
                object["room"] = in_room.as_str().into();
                object.to_string()
            } else {
                format_line(in_room, message, color)
            };
            // A closed pipe (`tail | head`) is the reader saying it has seen enough.
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                return Ok(());
            }
        }
        drop(out);
        if batch.len() < BATCH as usize {
            waiter.wait_until(Instant::now() + Duration::from_millis(args.poll_ms));
        }
    }
}

fn wanted(message: &Message, args: &TailArgs) -> bool {
    let name_ok = args.name.as_deref().is_none_or(|n| {
        message.from_name == n || message.to_name == n || message.to_name == messages::BROADCAST
    });
    let tag_ok = args.tag.is_none() || message.tag == args.tag;
    name_ok && tag_ok
}

/// `#id  time  room  from -> to  [tag]  body`.
pub fn format_line(room: &str, message: &Message, color: bool) -> String {
    let time = super::render::cell(
        "created_at",
        &serde_json::Value::String(message.created_at.clone()),
    );
    let route = super::render::bold(
        &format!("{} -> {}", message.from_name, message.to_name),
        color,
    );
    let tag = message
        .tag
        .as_deref()
        .map(|t| format!("  [{t}]"))
        .unwrap_or_default();
    format!(
        "#{}  {time}  {room}  {route}{tag}  {}",
        message.id,
        message.body.replace('\n', "\n    ")
    )
}
