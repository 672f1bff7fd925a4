//! What the page shows of a room, read in one transaction: the rooms the viewer may see, the
//! room's sessions (holding a running process or gone, last seen, unread), its latest messages
//! arranged as threads by `reply_to` with each recipient's receipt, and its live state entries.

use std::collections::HashMap;

use rusqlite::Connection;

use super::access::Viewer;
use crate::store::messages::{self, BROADCAST, Receipt, Shown};
use crate::store::sessions::{self, Overview};
use crate::store::state::{self, StateEntry};

/// How many of a room's latest messages the page shows.
pub const SHOWN_MESSAGES: u32 = 200;

/// How much of a body the page shows, in characters.
pub const BODY_CHARS: usize = 2000;

/// A room in the list of rooms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomLine {
    /// Its name.
    pub name: String,
    /// How many sessions hold a name in it.
    pub sessions: usize,
    /// Their unread messages, together.
    pub unread: i64,
}

/// A message and the replies to it, each a thread of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Thread {
    /// The message.
    pub message: Shown,
    /// The replies, oldest first.
    pub replies: Vec<Thread>,
}

/// Everything the page shows of one room.
#[derive(Debug, Clone, PartialEq)]
pub struct Board {
    /// The room shown.
    pub room: String,
    /// The rooms the viewer may see.
    pub rooms: Vec<RoomLine>,
    /// The room's sessions, most recently seen first.
    pub sessions: Vec<Overview>,
    /// The conversation: threads, the one with the latest message first.
    pub threads: Vec<Thread>,
    /// Whether the room holds older messages than those shown.
    pub older: bool,
    /// The room's live state entries, by key.
    pub state: Vec<StateEntry>,
}

/// Reads `room` as `viewer` may see it.
pub fn read(conn: &Connection, viewer: &Viewer, room: &str) -> Result<Board, String> {
    let fail = |e: rusqlite::Error| format!("reading the room failed: {e}");
    // One read transaction: the parts agree with each other.
    let tx = crate::store::Transaction::begin(conn, false).map_err(fail)?;
    let everyone = sessions::overview(conn, None).map_err(fail)?;
    let mut names = sessions::rooms(conn).map_err(fail)?;
    if let Some(only) = &viewer.room {
        names.retain(|r| r == only);
    }
    if !names.iter().any(|r| r == room) {
        names.push(room.to_string());
        names.sort();
    }
    let rooms = names
        .into_iter()
        .map(|name| {
            let members = everyone.iter().filter(|s| s.room == name);
            RoomLine {
                sessions: members.clone().count(),
                unread: members.map(|s| s.unread).sum(),
                name,
            }
        })
        .collect();
    let sessions: Vec<Overview> = everyone.into_iter().filter(|s| s.room == room).collect();
    // A token bound to a name sees what that name sends and receives, as its tail does.
    let only = viewer.name.as_deref();
    let mut shown =
        messages::latest(conn, room, only, SHOWN_MESSAGES + 1, BODY_CHARS).map_err(fail)?;
    let older = shown.len() > SHOWN_MESSAGES as usize;
    if older {
        shown.remove(0);
    }
    // A broadcast waits for every session of the room but its sender's until each reads it
    // (as their unread counts say): those it has not reached yet are queued.
    for s in shown.iter_mut().filter(|s| s.message.to_name == BROADCAST) {
        for member in &sessions {
            if member.name != s.message.from_name
                && !s.receipts.iter().any(|r| r.name == member.name)
            {
                s.receipts.push(Receipt::queued(member.name.clone()));
            }
        }
    }
    let state = state::list(conn, room, None).map_err(fail)?;
    drop(tx);
    Ok(Board {
        room: room.to_string(),
        rooms,
        sessions,
        threads: threads(shown),
        older,
        state,
    })
}

/// `shown` (oldest first) as threads: a message that answers one among them goes under it;
/// the others start threads, the one with the latest message first.
pub fn threads(shown: Vec<Shown>) -> Vec<Thread> {
    let at: HashMap<i64, usize> = shown
        .iter()
        .enumerate()
        .map(|(i, s)| (s.message.id, i))
        .collect();
    let mut replies: Vec<Vec<usize>> = vec![Vec::new(); shown.len()];
    let mut roots = Vec::new();
    for (i, s) in shown.iter().enumerate() {
        // A reply's original has a smaller id, so every link points back: no cycles.
        match s.message.reply_to.and_then(|id| at.get(&id)) {
            Some(&parent) if parent < i => replies[parent].push(i),
            _ => roots.push(i),
        }
    }
    // The latest id in each thread, children before parents (they come later in `shown`).
    let mut latest: Vec<i64> = shown.iter().map(|s| s.message.id).collect();
    for i in (0..shown.len()).rev() {
        let newest = replies[i].iter().map(|&c| latest[c]).max();
        if let Some(newest) = newest {
            latest[i] = latest[i].max(newest);
        }
    }
    roots.sort_by_key(|&i| std::cmp::Reverse(latest[i]));
    let mut slots: Vec<Option<Shown>> = shown.into_iter().map(Some).collect();
    roots
        .into_iter()
        .map(|i| build(i, &replies, &mut slots))
        .collect()
}

fn build(i: usize, replies: &[Vec<usize>], slots: &mut [Option<Shown>]) -> Thread {
    let message = slots[i].take().expect("each message is placed once");
    Thread {
        message,
        replies: replies[i]
            .iter()
            .map(|&c| build(c, replies, slots))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::messages::Message;

    fn shown(id: i64, reply_to: Option<i64>) -> Shown {
        Shown {
            message: Message {
                id,
                from_session: "s".into(),
                from_name: "a".into(),
                to_name: "b".into(),
                body: format!("m{id}"),
                tag: None,
                reply_to,
                created_at: String::new(),
                read_at: None,
                delivered: false,
            },
            body_chars: 2,
            receipts: Vec::new(),
        }
    }

    fn shape(threads: &[Thread]) -> String {
        threads
            .iter()
            .map(|t| {
                let inner = shape(&t.replies);
                if inner.is_empty() {
                    t.message.message.id.to_string()
                } else {
                    format!("{}({inner})", t.message.message.id)
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn replies_nest_under_their_originals_and_the_latest_thread_comes_first() {
        let list = vec![
            shown(1, None),
            shown(2, None),
            shown(3, Some(1)),
            shown(4, Some(3)),
            shown(5, Some(99)), // its original is not shown: a thread of its own
            shown(6, Some(2)),
            shown(7, Some(1)),
        ];
        assert_eq!(shape(&threads(list)), "1(3(4) 7) 2(6) 5");
    }
}
