//! `claude-c2c tail`: follow the bus, printing each message of the room (or of every room) as
//! it is committed (or, with `--since`, from an id on), each with its room, optionally only
//! those to or from a name or with a tag. It only reads: nothing is marked read or delivered.
//! Between looks it sleeps until a write to the database is noticed (the same watcher that
//! wakes `wait_for_message`).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;

use crate::remote::client::{HubClient, block_on};
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
    loop {
        let batch = messages::after(db, last, BATCH).map_err(fail)?;
        if let Some((_, message)) = batch.last() {
            last = message.id;
        }
        let in_room = batch
            .iter()
            .filter(|(in_room, _)| room.is_none_or(|r| r == in_room));
        if !print(in_room, args, color) {
            return Ok(());
        }
        if batch.len() < BATCH as usize {
            waiter.wait_until(Instant::now() + Duration::from_millis(args.poll_ms));
        }
    }
}

/// Follows the room of the hub `client` reaches, as `run` follows a database.
pub fn run_remote(
    client: &HubClient,
    room: &str,
    args: &TailArgs,
    color: bool,
) -> Result<(), String> {
    block_on(async {
        let mut last = args.since.map(|id| id.saturating_sub(1));
        loop {
            let answer = client.messages(last, REMOTE_WAIT_MS).await?;
            last = Some(answer.last);
            let batch: Vec<(String, Message)> = answer
                .messages
                .into_iter()
                .map(|m| (room.to_string(), m))
                .collect();
            if !print(batch.iter(), args, color) {
                return Ok(());
            }
        }
    })?
}

/// How long one request of `tail --hub` waits for a message.
const REMOTE_WAIT_MS: u64 = 25_000;

// Prints the wanted messages of `batch`; `false` when stdout was closed (`tail | head`: the
// reader has seen enough).
fn print<'a>(
    batch: impl Iterator<Item = &'a (String, Message)>,
    args: &TailArgs,
    color: bool,
) -> bool {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (in_room, message) in batch {
        if !wanted(message, args) {
            continue;
        }
        let line = if args.json {
            let mut object = serde_json::to_value(message).expect("messages serialise");
            object["room"] = in_room.as_str().into();
            object.to_string()
        } else {
            format_line(in_room, message, color)
        };
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return false;
        }
    }
    true
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
