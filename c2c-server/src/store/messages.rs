//! The `messages` table and the per-recipient read state of broadcasts: sending, reading an
//! inbox (direct messages to the caller's name and broadcasts from others), acknowledging,
//! and pruning what has been read.

use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, params};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::call::Session;
use crate::clock;

/// The recipient name that addresses every session.
pub const BROADCAST: &str = "*";

/// A message as an inbox shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    /// The message id; ids grow in the order messages were sent.
    pub id: i64,
    /// The registration that sent it.
    pub from_session: String,
    /// The name it was sent under.
    pub from_name: String,
    /// The recipient's name, or `*` for a broadcast.
    pub to_name: String,
    /// The text.
    pub body: String,
    /// The sender's tag, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The id of the message this one answers, if it is a reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    /// When it was sent.
    pub created_at: String,
    /// When the reader acknowledged it with `mark_read`; absent while unread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_at: Option<String>,
    /// Whether some path had handed it to the reader before: set by an inbox read (false
    /// elsewhere), so that recording a delivery need not look it up. Not part of what a tool
    /// returns.
    #[serde(skip)]
    #[schemars(skip)]
    pub delivered: bool,
}

/// Which of a reader's messages an inbox query returns.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    /// Only messages with this tag.
    pub tag: Option<&'a str>,
    /// Only replies to this message id.
    pub reply_to: Option<i64>,
    /// Only unread messages that no path has handed to the reader yet (for pushes).
    pub undelivered: bool,
}

/// How a message's text reached its recipient, as its delivery receipt records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// An `inbox` result.
    Inbox,
    /// A `wait_for_message` result.
    Wait,
    /// A Claude Code channel event.
    Channel,
    /// A Claude Code hook's output.
    Hook,
}

impl Via {
    /// The word stored in `deliveries.via`.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Inbox => "inbox",
            Via::Wait => "wait",
            Via::Channel => "channel",
            Via::Hook => "hook",
        }
    }
}

/// Why `mark_read` left an id alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotMarkedReason {
    /// No message has this id (never sent, or pruned).
    NotFound,
    /// The message is addressed to another session.
    NotAddressedToYou,
    /// The caller had already acknowledged it.
    AlreadyRead,
}

/// An id `mark_read` did not mark, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct NotMarked {
    /// The message id given.
    pub id: i64,
    /// Why it was not marked.
    pub reason: NotMarkedReason,
}

/// Stores a message from `from` to `to` (a name or `*`), answering `reply_to` if given, and
/// returns its id.
pub fn send(
    db: &Connection,
    from: &Session,
    to: &str,
    body: &str,
    tag: Option<&str>,
    reply_to: Option<i64>,
) -> rusqlite::Result<i64> {
    db.prepare_cached(
        "INSERT INTO messages (from_session, from_name, to_name, body, tag, created_at, reply_to,
                               room)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        from.session_id,
        from.name,
        to,
        body,
        tag,
        clock::now(),
        reply_to,
        from.room
    ])?;
    Ok(db.last_insert_rowid())
}

/// Whether `me` can see message `id`: in its room, sent to its name or to everyone, or sent
/// under it.
pub fn visible(db: &Connection, me: &Session, id: i64) -> rusqlite::Result<bool> {
    db.prepare_cached(
        "SELECT 1 FROM messages
          WHERE id = ?1 AND room = ?3 AND (to_name IN (?2, '*') OR from_name = ?2)",
    )?
    .exists(params![id, me.name, me.room])
}

const COLUMNS: &str = "id, from_session, from_name, to_name, body, tag, created_at, reply_to";

/// SQL for the first broadcast id that the reader named by parameter `reader` may not have
/// read yet in the room named by parameter `room`.
fn cursor(reader: &str, room: &str) -> String {
    format!(
        "coalesce((SELECT below FROM broadcast_cursors WHERE room = {room} AND reader = {reader}), 0)"
    )
}

// The inbox queries. Each is one compound SELECT ordered by id: SQLite merges its two
// branches (messages to the reader's name, broadcasts), each walking its (room, to_name, id)
// index in that order and stopping once the limit is taken, so the cost follows `limit`, not
// the number of messages stored, and no row is sorted. (Written as two limited subqueries
// instead, each branch was copied into a temporary b-tree to be ordered again, two of them per
// call, each allocating and touching its own page cache.)
const PICK: &str = "(?2 IS NULL OR tag = ?2) AND (?4 IS NULL OR reply_to = ?4)
    AND (NOT ?5 OR NOT EXISTS (SELECT 1 FROM deliveries AS d
                                WHERE d.message_id = m.id AND d.recipient = ?1))";

// Whether the reader has had the message, the column after `read_at`.
const DELIVERED: &str = "EXISTS (SELECT 1 FROM deliveries AS d
                                 WHERE d.message_id = m.id AND d.recipient = ?1)";

// Unread, oldest first.
static INBOX_UNREAD: LazyLock<String> = LazyLock::new(|| {
    let cursor = cursor("?1", "?6");
    format!(
        "SELECT {COLUMNS}, NULL, {DELIVERED} FROM messages AS m
          WHERE room = ?6 AND to_name = ?1 AND read_at IS NULL AND {PICK}
         UNION ALL
         SELECT {COLUMNS}, NULL, {DELIVERED} FROM messages AS m
          WHERE room = ?6 AND to_name = '*' AND id >= {cursor} AND from_name != ?1 AND {PICK}
            AND NOT EXISTS (SELECT 1 FROM broadcast_reads AS r
                             WHERE r.message_id = m.id AND r.reader = ?1)
         ORDER BY id LIMIT ?3"
    )
});

// Read or not, newest first.
static INBOX_LATEST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS}, read_at, {DELIVERED} FROM messages AS m
          WHERE room = ?6 AND to_name = ?1 AND {PICK}
         UNION ALL
         SELECT {COLUMNS}, (SELECT r.read_at FROM broadcast_reads AS r
                             WHERE r.message_id = m.id AND r.reader = ?1),
                {DELIVERED}
           FROM messages AS m
          WHERE room = ?6 AND to_name = '*' AND from_name != ?1 AND {PICK}
         ORDER BY id DESC LIMIT ?3"
    )
});

/// The SQL of [`inbox`]: of unread messages, or of the latest ones.
pub(super) fn inbox_sql(unread_only: bool) -> &'static str {
    if unread_only {
        &INBOX_UNREAD
    } else {
        &INBOX_LATEST
    }
}

/// Messages for `me` that pass `filter`: in its room, sent to its name, or broadcast by
/// another name. Unread ones oldest first; with `unread_only` false, the latest `limit` of
/// all, oldest first.
pub fn inbox(
    db: &Connection,
    me: &Session,
    unread_only: bool,
    limit: u32,
    filter: &Filter<'_>,
) -> rusqlite::Result<Vec<Message>> {
    let mut stmt = db.prepare_cached(inbox_sql(unread_only))?;
    let rows = stmt.query_map(
        params![
            me.name,
            filter.tag,
            limit,
            filter.reply_to,
            filter.undelivered,
            me.room
        ],
        |r| {
            Ok(Message {
                delivered: r.get(9)?,
                ..row(r)?
            })
        },
    )?;
    let mut messages: Vec<Message> = rows.collect::<rusqlite::Result<_>>()?;
    if !unread_only {
        messages.reverse();
    }
    Ok(messages)
}

/// Records that `messages` (addressed to `me`) were handed to it `via` some path; a message
/// keeps its first delivery.
pub fn deliver(db: &Connection, me: &str, messages: &[Message], via: Via) -> rusqlite::Result<()> {
    // Look first, write only what is new: an inbox that hands over nothing new stays a read
    // and never waits for another process's write lock. What the read found delivered needs
    // no look; the rest may have been delivered since the read (a channel push is recorded
    // in a transaction of its own).
    let mut known =
        db.prepare_cached("SELECT 1 FROM deliveries WHERE message_id = ?1 AND recipient = ?2")?;
    let mut new = Vec::new();
    for m in messages.iter().filter(|m| !m.delivered) {
        if !known.exists(params![m.id, me])? {
            new.push(m.id);
        }
    }
    if new.is_empty() {
        return Ok(());
    }
    let now = clock::now();
    let mut insert = db.prepare_cached(
        "INSERT OR IGNORE INTO deliveries (message_id, recipient, delivered_at, via)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for id in new {
        insert.execute(params![id, me, now, via.as_str()])?;
    }
    Ok(())
}

/// Where one recipient's copy of a sent message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Stored; its text has not reached the recipient yet.
    Queued,
    /// Its text was handed to the recipient agent, which has not acknowledged it.
    Delivered,
    /// The recipient acknowledged it with `mark_read`.
    Read,
}

/// One recipient's receipt for a sent message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Receipt {
    /// The recipient's name.
    pub name: String,
    /// Queued, delivered or read.
    pub status: Status,
    /// When its text first reached the recipient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    /// How it got there: inbox, wait, channel or hook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// When the recipient acknowledged it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_at: Option<String>,
}

/// A message as its sender's outbox shows it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Outgoing {
    /// The message id.
    pub id: i64,
    /// The recipient's name, or `*`.
    pub to_name: String,
    /// The tag, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The message it answers, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    /// When it was sent.
    pub created_at: String,
    /// The start of the text.
    pub preview: String,
    /// Per recipient: the one addressed, or for a broadcast everyone it has reached so far.
    pub recipients: Vec<Receipt>,
}

/// How much of a body an outbox row shows, in characters.
pub const PREVIEW_CHARS: usize = 60;

/// The latest `limit` messages sent under `me` in its room (optionally only with `tag`),
/// newest first, with their receipts.
pub fn outbox(
    db: &Connection,
    me: &Session,
    limit: u32,
    tag: Option<&str>,
) -> rusqlite::Result<Vec<Outgoing>> {
    let mut stmt = db.prepare_cached(
        "SELECT id, to_name, tag, reply_to, created_at, substr(body, 1, ?4 + 1), read_at
           FROM messages WHERE room = ?5 AND from_name = ?1 AND (?2 IS NULL OR tag = ?2)
          ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![me.name, tag, limit, PREVIEW_CHARS as i64, me.room],
        |r| {
            Ok((
                Outgoing {
                    id: r.get(0)?,
                    to_name: r.get(1)?,
                    tag: r.get(2)?,
                    reply_to: r.get(3)?,
                    created_at: r.get(4)?,
                    preview: preview(r.get::<_, String>(5)?),
                    recipients: Vec::new(),
                },
                r.get::<_, Option<String>>(6)?,
            ))
        },
    )?;
    let sent: Vec<(Outgoing, Option<String>)> = rows.collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(sent.len());
    for (mut m, direct_read_at) in sent {
        m.recipients = receipts(db, m.id, &m.to_name, direct_read_at)?;
        out.push(m);
    }
    Ok(out)
}

/// The receipts of message `id` sent to `to_name` (a name, or `*`), whose direct read time is
/// `direct_read_at`: one per recipient its text reached or who read it, and for a direct
/// message that reached no one yet, its recipient's as queued.
pub fn receipts(
    db: &Connection,
    id: i64,
    to_name: &str,
    direct_read_at: Option<String>,
) -> rusqlite::Result<Vec<Receipt>> {
    let mut deliveries = db.prepare_cached(
        "SELECT recipient, delivered_at, via FROM deliveries WHERE message_id = ?1
          ORDER BY delivered_at, recipient",
    )?;
    let mut receipts: Vec<Receipt> = deliveries
        .query_map([id], |r| {
            Ok(Receipt {
                delivered_at: r.get(1)?,
                via: r.get(2)?,
                ..Receipt::queued(r.get(0)?)
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let read: Vec<(String, String)> = if to_name == BROADCAST {
        db.prepare_cached("SELECT reader, read_at FROM broadcast_reads WHERE message_id = ?1")?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    } else {
        direct_read_at
            .map(|at| (to_name.to_string(), at))
            .into_iter()
            .collect()
    };
    for (name, at) in read {
        let i = match receipts.iter().position(|r| r.name == name) {
            Some(i) => i,
            None => {
                receipts.push(Receipt::queued(name));
                receipts.len() - 1
            }
        };
        receipts[i].read_at = Some(at);
    }
    if to_name != BROADCAST && receipts.is_empty() {
        receipts.push(Receipt::queued(to_name.to_string()));
    }
    for r in &mut receipts {
        r.status = match (&r.read_at, &r.delivered_at) {
            (Some(_), _) => Status::Read,
            (None, Some(_)) => Status::Delivered,
            (None, None) => Status::Queued,
        };
    }
    Ok(receipts)
}

/// A message of a room as people looking at the bus see it: its body cut to a length, with
/// the length it has in all, and its receipts.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// The message (its `read_at` is the direct recipient's; a broadcast's reads are in
    /// `receipts`).
    pub message: Message,
    /// How many characters the whole body has (more than `message.body` when it was cut).
    pub body_chars: usize,
    /// One receipt per recipient known.
    pub receipts: Vec<Receipt>,
}

/// The latest `limit` messages of `room` (only those from or to `only`, and broadcasts, when
/// given), oldest first, each body cut to `max_chars` characters, with their receipts. Reads
/// only.
pub fn latest(
    db: &Connection,
    room: &str,
    only: Option<&str>,
    limit: u32,
    max_chars: usize,
) -> rusqlite::Result<Vec<Shown>> {
    // The ids come from the indexes alone (for `only`, three walks of (room, name, id) merged);
    // only the rows shown are read, bodies and all.
    let ids = match only {
        // (?4, always null here, is named so that both statements take the same parameters.)
        None => "SELECT id FROM messages WHERE room = ?1 AND ?4 IS NULL ORDER BY id DESC LIMIT ?2",
        Some(_) => {
            "SELECT id FROM (SELECT id FROM messages WHERE room = ?1 AND from_name = ?4
                               ORDER BY id DESC LIMIT ?2)
             UNION SELECT id FROM (SELECT id FROM messages WHERE room = ?1 AND to_name = ?4
                                    ORDER BY id DESC LIMIT ?2)
             UNION SELECT id FROM (SELECT id FROM messages WHERE room = ?1 AND to_name = '*'
                                    ORDER BY id DESC LIMIT ?2)
             ORDER BY id DESC LIMIT ?2"
        }
    };
    let mut stmt = db.prepare_cached(&format!(
        "SELECT id, from_session, from_name, to_name, substr(body, 1, ?3), tag, created_at,
                reply_to, read_at, length(body)
           FROM messages WHERE id IN ({ids}) ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![room, limit, max_chars as i64, only], |r| {
        Ok((row(r)?, r.get::<_, i64>(9)?))
    })?;
    let found: Vec<(Message, i64)> = rows.collect::<rusqlite::Result<_>>()?;
    found
        .into_iter()
        .map(|(message, chars)| {
            let receipts = receipts(db, message.id, &message.to_name, message.read_at.clone())?;
            Ok(Shown {
                message,
                body_chars: usize::try_from(chars).unwrap_or(0),
                receipts,
            })
        })
        .collect()
}

impl Receipt {
    /// A receipt for `name` with nothing recorded yet: queued.
    pub fn queued(name: String) -> Self {
        Receipt {
            name,
            status: Status::Queued,
            delivered_at: None,
            via: None,
            read_at: None,
        }
    }
}

// Cuts a body to PREVIEW_CHARS characters, marking the cut.
fn preview(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(PREVIEW_CHARS) {
        text.truncate(at);
        text.push('…');
    }
    text
}

/// Up to `limit` messages with ids above `after`, in id order, as stored (a broadcast's
/// `read_at` is null: its reads are per recipient), each with its room. Reads only; marks
/// nothing.
pub fn after(db: &Connection, after: i64, limit: u32) -> rusqlite::Result<Vec<(String, Message)>> {
    let mut stmt = db.prepare_cached(&format!(
        "SELECT {COLUMNS}, read_at, room FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![after, limit], |r| Ok((r.get(9)?, row(r)?)))?;
    rows.collect()
}

/// The highest message id stored, or 0.
pub fn last_id(db: &Connection) -> rusqlite::Result<i64> {
    db.query_row("SELECT coalesce(max(id), 0) FROM messages", [], |r| {
        r.get(0)
    })
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(0)?,
        from_session: r.get(1)?,
        from_name: r.get(2)?,
        to_name: r.get(3)?,
        body: r.get(4)?,
        tag: r.get(5)?,
        created_at: r.get(6)?,
        reply_to: r.get(7)?,
        read_at: r.get(8)?,
        delivered: false,
    })
}

/// Acknowledges the messages `ids` for `me` (in its room: others' ids are not found);
/// returns how many were marked and which were not.
pub fn mark_read(
    db: &Connection,
    session: &Session,
    ids: &[i64],
) -> rusqlite::Result<(usize, Vec<NotMarked>)> {
    let me = session.name.as_str();
    let now = clock::now();
    let mut marked = 0;
    let mut not_marked = Vec::new();
    let mut lookup = db.prepare_cached(
        "SELECT to_name, from_name, read_at IS NOT NULL FROM messages WHERE id = ?1 AND room = ?2",
    )?;
    for &id in ids {
        let found: Option<(String, String, bool)> = lookup
            .query_row(params![id, session.room], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let reason = match found {
            None => Some(NotMarkedReason::NotFound),
            Some((to, _, true)) if to == me => Some(NotMarkedReason::AlreadyRead),
            Some((to, _, false)) if to == me => {
                db.prepare_cached("UPDATE messages SET read_at = ?1, read_by = ?2 WHERE id = ?3")?
                    .execute(params![now, me, id])?;
                None
            }
            Some((to, from, _)) if to == BROADCAST && from != me => {
                let inserted = db
                    .prepare_cached(
                        "INSERT OR IGNORE INTO broadcast_reads (message_id, reader, read_at)
                         VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![id, me, now])?;
                (inserted == 0).then_some(NotMarkedReason::AlreadyRead)
            }
            Some(_) => Some(NotMarkedReason::NotAddressedToYou),
        };
        match reason {
            None => marked += 1,
            Some(reason) => not_marked.push(NotMarked { id, reason }),
        }
    }
    advance_cursor(db, session)?;
    Ok((marked, not_marked))
}

// Moves `me`'s broadcast cursor up to its first unread broadcast in its room (past the newest
// message if there is none): the scan covers only what was read since the cursor last moved.
fn advance_cursor(db: &Connection, me: &Session) -> rusqlite::Result<()> {
    let cursor = cursor("?1", "?2");
    db.prepare_cached(&format!(
        "INSERT INTO broadcast_cursors (room, reader, below) VALUES (?2, ?1, coalesce(
            (SELECT min(m.id) FROM messages AS m
              WHERE m.room = ?2 AND m.to_name = '*' AND m.id >= {cursor} AND m.from_name != ?1
                AND NOT EXISTS (SELECT 1 FROM broadcast_reads AS r
                                 WHERE r.message_id = m.id AND r.reader = ?1)),
            (SELECT coalesce(max(id), 0) + 1 FROM messages)))
         ON CONFLICT(room, reader) DO UPDATE SET below = excluded.below"
    ))?
    .execute([&me.name, &me.room])?;
    Ok(())
}

/// Deletes the messages of `room` sent before `cutoff` that are done with: direct messages
/// once read, and broadcasts once someone other than the sender has read them and so has every
/// live session of the room (other than the sender's name). A broadcast nobody has read yet
/// stays, however old, for a session that registers later. Its `broadcast_reads` and
/// `deliveries` rows go with it (`ON DELETE CASCADE`).
pub fn prune(db: &Connection, room: &str, cutoff: &str) -> rusqlite::Result<usize> {
    let direct = db
        .prepare_cached(
            "DELETE FROM messages
              WHERE room = ?2 AND to_name != '*' AND read_at IS NOT NULL AND created_at < ?1",
        )?
        .execute([cutoff, room])?;
    let broadcast = db
        .prepare_cached(
            "DELETE FROM messages
              WHERE room = ?2 AND to_name = '*' AND created_at < ?1
                AND EXISTS (SELECT 1 FROM broadcast_reads AS r
                             WHERE r.message_id = messages.id AND r.reader != messages.from_name)
                AND NOT EXISTS (
                    SELECT 1 FROM sessions AS s
                     WHERE s.room = ?2 AND s.superseded_at IS NULL
                       AND s.name != messages.from_name
                       AND NOT EXISTS (SELECT 1 FROM broadcast_reads AS r
                                        WHERE r.message_id = messages.id AND r.reader = s.name))",
        )?
        .execute([cutoff, room])?;
    Ok(direct + broadcast)
}
