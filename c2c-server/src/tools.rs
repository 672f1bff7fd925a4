//! The tools, each one annotated function: its doc comment is the description the model reads,
//! its parameters are the arguments (by value) and the context it needs (by reference), its
//! result type is the output schema. `#[tools]` turns the block into the registry
//! (`<Tools as ToolSet>::TOOLS`); the bodies check their input and call the store.

use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::call::{Client, Session};
use crate::clock;
use crate::error::ToolError;
use crate::store::messages::{self, BROADCAST, Filter, Message, NotMarked, Outgoing, Via};
use crate::store::sessions::{self, Origin, SessionInfo};
use crate::store::state::{self, StateEntry};

/// The longest session name or tag, in characters (the `max_chars` of `name`, `to` and `tag`,
/// which the tests hold to this).
pub const MAX_NAME_CHARS: usize = 64;
/// The most messages one inbox call returns (the top of `limit`'s `range`).
pub const MAX_INBOX_LIMIT: u32 = 500;

/// The rules for a name that are not bounds, for the reference: `check_name` enforces them.
pub const NAME_RULES: &str = "A session name (`register_session`'s `name`, `send_message`'s \
    `to`) or tag is not empty and has no control characters and no leading or trailing \
    spaces; `\"*\"` is never a session's name: as `to` it means every session, as a tag it is \
    an ordinary tag.";

/// The registry's home: `#[tools]` implements `ToolSet` for it.
pub struct Tools;

/// `register_session`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Registered {
    /// The new registration's id.
    pub session_id: String,
    /// The name now held.
    pub name: String,
}

/// `heartbeat`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Beat {
    /// Always true.
    pub ok: bool,
    /// The new `last_seen_at`.
    pub at: String,
}

/// `list_sessions`' result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Sessions {
    /// The room they are in: names, messages and state are the room's own.
    pub room: String,
    /// Live sessions, most recently seen first.
    pub sessions: Vec<SessionInfo>,
}

/// `send_message`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Sent {
    /// The new message's id.
    pub id: i64,
    /// The recipient name, or `*`.
    pub to: String,
    /// The tag, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Something the sender should know, e.g. that no session has ever had this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `inbox`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Inbox {
    /// The messages, oldest first.
    pub messages: Vec<Message>,
}

/// `wait_for_message`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Waited {
    /// The unread messages that matched, oldest first; empty when the time ran out.
    pub messages: Vec<Message>,
    /// True when no matching message came before the timeout.
    pub timed_out: bool,
}

/// `outbox`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Outbox {
    /// Sent messages, newest first, with per-recipient receipts.
    pub messages: Vec<Outgoing>,
}

/// `mark_read`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Marked {
    /// How many messages were acknowledged now.
    pub marked: usize,
    /// The ids left alone, each with the reason; absent when every id was marked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_marked: Vec<NotMarked>,
}

/// `set_state`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Stored {
    /// The key written.
    pub key: String,
    /// The entry's version now: give it as `if_version` to write it again only if nobody has.
    pub version: i64,
    /// The writer's name.
    pub updated_by: String,
    /// When the entry expires, if written with `ttl_seconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `delete_state`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Deleted {
    /// The key.
    pub key: String,
    /// Whether there was an entry to delete.
    pub deleted: bool,
}

/// `get_state`'s result: `entry` for a key, `entries` for a prefix or everything.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
#[schemars(extend("type" = "object"))]
pub enum StateRead {
    /// The entry at the key asked for, or null when there is none.
    One {
        /// The entry, or null.
        entry: Option<StateEntry>,
        /// True when a wait (`wait_while_version`) ended at its timeout with no change.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        timed_out: bool,
    },
    /// The entries under the prefix asked for (all entries without one), in key order.
    Many {
        /// The entries.
        entries: Vec<StateEntry>,
    },
}

/// `prune`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Pruned {
    /// Messages deleted.
    pub messages_deleted: usize,
    /// Sessions deleted.
    pub sessions_deleted: usize,
    /// State entries deleted: those that expired or were deleted that long ago.
    pub entries_deleted: usize,
}

#[c2c_macros::tools]
impl Tools {
    /// Claim a name (e.g. "local") others address you by; its live holder is superseded (stops receiving). Again with your current name: keeps your registration.
    #[tool(idempotent)]
    pub fn register_session(
        db: &Connection,
        client: &Client,
        #[arg(max_chars = 64, desc = "The name to claim, not \"*\".")] name: String,
        #[arg(desc = "About this session; list_sessions shows it.")] metadata: Option<
            Map<String, Value>,
        >,
    ) -> Result<Registered, ToolError> {
        check_name("name", &name, false)?;
        if let Some(metadata) = &metadata {
            let bytes = serde_json::to_string(metadata).map_or(0, |json| json.len());
            check_size("metadata", bytes, client.config().max_body_bytes)?;
        }
        // Registering again under the name this client holds keeps its registration.
        if let Some(current) = client.live_session().filter(|s| s.name == name) {
            if let Some(metadata) = &metadata {
                sessions::set_metadata(db, &current.session_id, metadata)?;
            }
            return Ok(Registered {
                session_id: current.session_id.clone(),
                name,
            });
        }
        let room = client.config().room.as_str();
        if !client.is_server()
            && let Some(holder) = sessions::holder(db, room, &name)?
            && holder.may_be_running()
        {
            return Err(ToolError::invalid(
                "name",
                format!(
                    "\"{name}\" is held by a running session (process {}): the command line \
                     never takes a name from one; act as it with --as {name}, or stop that \
                     session first",
                    holder.pid.unwrap_or_default()
                ),
            ));
        }
        let previous = client.session().map(|s| s.session_id.as_str());
        let metadata = metadata.unwrap_or_default();
        let origin = Origin {
            cwd: client.config().cwd.as_deref(),
            claude_session: client.config().claude_session.as_deref(),
            process: client.config().process.as_ref(),
        };
        let session = sessions::register(db, room, &name, origin, &metadata, previous)?;
        client.bind(session.clone());
        Ok(Registered {
            session_id: session.session_id,
            name: session.name,
        })
    }

    /// Refresh this session's last_seen_at (any call does, at most once a second).
    #[tool(no_heartbeat, idempotent)]
    pub fn heartbeat(db: &Connection, me: &Session) -> Result<Beat, ToolError> {
        let at = clock::now();
        if sessions::heartbeat(db, &me.session_id, &at)? == sessions::Standing::Superseded {
            return Err(ToolError::Superseded {
                name: me.name.clone(),
            });
        }
        Ok(Beat { ok: true, at })
    }

    /// List live sessions seen recently.
    #[tool(read_only)]
    pub fn list_sessions(
        db: &Connection,
        client: &Client,
        #[arg(
            default = 10,
            range = 1..=525_600,
            desc = "Only sessions seen within this many minutes."
        )]
        active_within_min: i64,
    ) -> Result<Sessions, ToolError> {
        let cutoff = clock::ago(Duration::from_secs(active_within_min as u64 * 60));
        let me = client.session().map(|s| s.session_id.as_str());
        let room = &client.config().room;
        Ok(Sessions {
            sessions: sessions::list(db, room, &cutoff, me)?,
            room: room.clone(),
        })
    }

    /// Send a message to a session by name, or "*" for all. It waits until read, even if the recipient is offline. Tags are free-form filters: handoff, question, status, error.
    #[tool]
    pub fn send_message(
        db: &Connection,
        me: &Session,
        client: &Client,
        #[arg(max_chars = 64, desc = "Recipient name, or \"*\" to broadcast.")] to: String,
        #[arg(desc = "The message text.")] body: String,
        #[arg(max_chars = 64, desc = "A tag to filter by.")] tag: Option<String>,
        #[arg(desc = "The id of the message this answers.")] reply_to: Option<i64>,
    ) -> Result<Sent, ToolError> {
        check_name("to", &to, true)?;
        if let Some(tag) = &tag {
            // A tag is a filter, not an address: "*" is an ordinary tag.
            check_name("tag", tag, true)?;
        }
        if body.is_empty() {
            return Err(ToolError::invalid(
                "body",
                "is empty: write the message text",
            ));
        }
        check_size("body", body.len(), client.config().max_body_bytes)?;
        if let Some(original) = reply_to
            && !messages::visible(db, me, original)?
        {
            return Err(ToolError::invalid(
                "reply_to",
                format!(
                    "no message {original} that you can see: give the id of a message you received or sent"
                ),
            ));
        }
        let id = messages::send(db, me, &to, &body, tag.as_deref(), reply_to)?;
        // A typo in a name would otherwise wait forever in silence.
        let note = (to != BROADCAST && !sessions::ever_registered(db, &me.room, &to)?).then(|| {
            format!(
                "no session has ever registered as \"{to}\" in room {}: it waits until one does; check the name with list_sessions (which shows this room's sessions)",
                me.room
            )
        });
        Ok(Sent { id, to, tag, note })
    }

    /// Read messages to you (or to "*"), oldest first. Does not mark them read: call mark_read with the ids you handled.
    #[tool(mostly_reads)]
    pub fn inbox(
        db: &Connection,
        me: &Session,
        client: &Client,
        #[arg(
            default = true,
            negate = "all",
            desc = "Only unread messages; false shows the latest, read or not."
        )]
        unread_only: bool,
        #[arg(default = 20, range = 1..=500, desc = "Most messages to return.")] limit: i64,
        #[arg(desc = "Only messages with this tag.")] tag: Option<String>,
    ) -> Result<Inbox, ToolError> {
        let filter = Filter {
            tag: tag.as_deref(),
            ..Filter::default()
        };
        let found = messages::inbox(db, me, unread_only, limit as u32, &filter)?;
        if client.is_server() {
            messages::deliver(db, &me.name, &found, Via::Inbox)?;
        }
        Ok(Inbox { messages: found })
    }

    /// Wait for unread messages (matching tag or reply_to, if given) and return them, oldest first, unmarked. To ask and await the answer: send_message, then wait_for_message(reply_to=its id).
    #[tool(mostly_reads)]
    pub fn wait_for_message(
        db: &Connection,
        me: &Session,
        client: &Client,
        #[arg(desc = "Only messages with this tag.")] tag: Option<String>,
        #[arg(desc = "Only replies to this message id.")] reply_to: Option<i64>,
        #[arg(
            default = 30,
            range = 0..=600,
            desc = "Seconds to wait; then timed_out is true."
        )]
        timeout_seconds: i64,
        #[arg(default = 20, range = 1..=500, desc = "Most messages to return.")] limit: i64,
    ) -> Result<Waited, ToolError> {
        let filter = Filter {
            tag: tag.as_deref(),
            reply_to,
            ..Filter::default()
        };
        let found = messages::inbox(db, me, true, limit as u32, &filter)?;
        if found.is_empty() {
            client.retry_on_change(Duration::from_secs(timeout_seconds as u64), "a message");
        }
        if client.is_server() {
            messages::deliver(db, &me.name, &found, Via::Wait)?;
        }
        Ok(Waited {
            timed_out: found.is_empty(),
            messages: found,
        })
    }

    /// Your sent messages, newest first, with each recipient's receipt: queued, delivered (reached the agent) or read (mark_read).
    #[tool(read_only)]
    pub fn outbox(
        db: &Connection,
        me: &Session,
        #[arg(default = 10, range = 1..=500, desc = "Most messages to return.")] limit: i64,
        #[arg(desc = "Only messages with this tag.")] tag: Option<String>,
    ) -> Result<Outbox, ToolError> {
        Ok(Outbox {
            messages: messages::outbox(db, me, limit as u32, tag.as_deref())?,
        })
    }

    /// Acknowledge messages you handled, by id; ids not addressed to you (or to "*") are listed with the reason.
    #[tool(idempotent)]
    pub fn mark_read(
        db: &Connection,
        me: &Session,
        #[arg(max_items = 1000, desc = "Ids from inbox.")] message_ids: Vec<i64>,
    ) -> Result<Marked, ToolError> {
        let (marked, not_marked) = messages::mark_read(db, me, &message_ids)?;
        Ok(Marked { marked, not_marked })
    }

    /// Store a JSON value at a key in shared state for others to see. Last writer wins. To claim work without racing, take a lease: if_version=0 and ttl_seconds; renew with its version and ttl_seconds; release with delete_state.
    // Not idempotent: each write moves the version on, which wakes those waiting on it.
    #[tool]
    pub fn set_state(
        db: &Connection,
        me: &Session,
        client: &Client,
        #[arg(max_chars = 256, desc = "The key.")] key: String,
        #[arg(desc = "Any JSON.")] value: Value,
        #[arg(
            range = 0..,
            desc = "Write only at this version (0: only if absent)."
        )]
        if_version: Option<i64>,
        #[arg(
            range = 1..=31_536_000,
            desc = "Expire after this many seconds."
        )]
        ttl_seconds: Option<i64>,
    ) -> Result<Stored, ToolError> {
        check_key("key", &key)?;
        let json = value.to_string();
        check_size("value", json.len(), client.config().max_body_bytes)?;
        let expires_at = ttl_seconds
            .map(|ttl| clock::format_time(SystemTime::now() + Duration::from_secs(ttl as u64)));
        let write = state::Write {
            room: &me.room,
            key: &key,
            value: &json,
            by: &me.name,
            if_version,
            expires_at: expires_at.as_deref(),
        };
        let version = state::set(db, &write)?.map_err(|refused| match refused {
            state::Refused::Conflict(conflict) => ToolError::VersionConflict {
                op: state::Op::Set,
                key: key.clone(),
                conflict,
            },
            state::Refused::WouldNotExpire { expires_at } => ToolError::invalid(
                "ttl_seconds",
                format!(
                    "is missing: {key:?} is a lease that expires at {expires_at}; give \
                     ttl_seconds to renew it (or write it without if_version to keep the value \
                     for good)"
                ),
            ),
        })?;
        Ok(Stored {
            key,
            version,
            updated_by: me.name.clone(),
            expires_at,
        })
    }

    /// Read shared state: one entry by key (null if missing), a prefix's entries, or all. With wait_while_version, first wait until the key's version differs (0: absent), e.g. a lease renewed or ended.
    #[tool(read_only)]
    pub fn get_state(
        db: &Connection,
        client: &Client,
        #[arg(max_chars = 256, desc = "Exact key to read.")] key: Option<String>,
        #[arg(desc = "Read every key starting with this.")] prefix: Option<String>,
        #[arg(
            range = 0..,
            desc = "Wait while key is at this version."
        )]
        wait_while_version: Option<i64>,
        #[arg(
            default = 30,
            range = 0..=600,
            desc = "Seconds to wait at most."
        )]
        timeout_seconds: i64,
    ) -> Result<StateRead, ToolError> {
        let room = client.config().room.as_str();
        match (key, prefix) {
            (Some(_), Some(_)) => Err(ToolError::invalid(
                "prefix",
                "give either key or prefix, not both",
            )),
            (Some(key), None) => {
                check_key("key", &key)?;
                let entry = state::get(db, room, &key)?;
                let unchanged = wait_while_version
                    .is_some_and(|v| v == entry.as_ref().map_or(0, |e| e.version));
                if unchanged {
                    client.retry_on_change(
                        Duration::from_secs(timeout_seconds as u64),
                        "the entry to change",
                    );
                    // An expiry changes nothing in the file: look again when it is due.
                    if let Some(at) = entry
                        .as_ref()
                        .and_then(|e| e.expires_at.as_deref())
                        .and_then(clock::parse)
                    {
                        client.retry_at(at);
                    }
                }
                Ok(StateRead::One {
                    entry,
                    timed_out: unchanged,
                })
            }
            (None, _) if wait_while_version.is_some() => Err(ToolError::invalid(
                "wait_while_version",
                "waits on one entry: give its key too",
            )),
            (None, prefix) => Ok(StateRead::Many {
                entries: state::list(db, room, prefix.as_deref())?,
            }),
        }
    }

    /// Delete a shared-state entry (e.g. release a lease).
    #[tool(destructive, idempotent)]
    pub fn delete_state(
        db: &Connection,
        me: &Session,
        #[arg(max_chars = 256, desc = "The key.")] key: String,
        #[arg(
            range = 0..,
            desc = "Delete only at this version."
        )]
        if_version: Option<i64>,
    ) -> Result<Deleted, ToolError> {
        check_key("key", &key)?;
        if if_version == Some(0) {
            return Err(ToolError::invalid(
                "if_version",
                "is 0, which means no entry: there is nothing to delete; give the version you read",
            ));
        }
        let deleted =
            state::delete(db, &me.room, &key, &me.name, if_version)?.map_err(|conflict| {
                ToolError::VersionConflict {
                    op: state::Op::Delete,
                    key: key.clone(),
                    conflict,
                }
            })?;
        Ok(Deleted {
            key,
            deleted: deleted.is_some(),
        })
    }

    /// Delete what is done with and older than N days: read messages, idle sessions, expired state.
    #[tool(destructive, idempotent)]
    pub fn prune(
        db: &Connection,
        client: &Client,
        #[arg(default = 30, range = 0..=36_500, desc = "Age in days.")] older_than_days: i64,
    ) -> Result<Pruned, ToolError> {
        // It deletes other sessions' rows: not for a client that may act as one name only.
        if let Some(allowed) = &client.config().only_name {
            return Err(ToolError::RoomWide {
                tool: "prune",
                allowed: allowed.clone(),
            });
        }
        let cutoff = clock::ago(Duration::from_secs(older_than_days as u64 * 86_400));
        let room = client.config().room.as_str();
        Ok(Pruned {
            messages_deleted: messages::prune(db, room, &cutoff)?,
            sessions_deleted: sessions::prune(
                db,
                room,
                &cutoff,
                client.session().map(|s| s.session_id.as_str()),
            )?,
            entries_deleted: state::prune(db, room, &cutoff)?,
        })
    }
}

/// Checks a session name (or, with `broadcast`, a recipient that may be `*`).
pub fn check_name(arg: &str, name: &str, broadcast: bool) -> Result<(), ToolError> {
    let problem = if name.is_empty() {
        "is empty".to_string()
    } else if name == BROADCAST && !broadcast {
        "is \"*\", which means every session and cannot be a name".to_string()
    } else if name.chars().count() > MAX_NAME_CHARS {
        format!(
            "is {} characters long: use at most {MAX_NAME_CHARS}",
            name.chars().count()
        )
    } else if name.chars().any(char::is_control) {
        "contains control characters".to_string()
    } else if name.trim() != name {
        "has leading or trailing spaces".to_string()
    } else {
        return Ok(());
    };
    Err(ToolError::invalid(arg, problem))
}

// The length of a key is bounded by its `max_chars`; an empty one is no key.
fn check_key(arg: &str, key: &str) -> Result<(), ToolError> {
    if key.is_empty() {
        return Err(ToolError::invalid(arg, "is empty"));
    }
    Ok(())
}

fn check_size(arg: &str, bytes: usize, max: usize) -> Result<(), ToolError> {
    if bytes > max {
        return Err(ToolError::invalid(
            arg,
            format!(
                "is {bytes} bytes, over the {max}-byte cap: store large content in a file and send its path (the cap is set with --max-body-bytes)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{ArgDef, ToolSet};

    fn arg(tool: &str, name: &str) -> &'static ArgDef {
        <Tools as ToolSet>::TOOLS
            .iter()
            .find(|t| t.name == tool)
            .and_then(|t| t.args.iter().find(|a| a.name == name))
            .unwrap_or_else(|| panic!("no argument {tool}.{name}"))
    }

    // The bounds are literals in the attributes; the code that shares them reads these
    // constants, so the two must not drift apart.
    #[test]
    fn declared_bounds_agree_with_the_constants() {
        for (tool, name) in [
            ("register_session", "name"),
            ("send_message", "to"),
            ("send_message", "tag"),
        ] {
            assert_eq!(
                arg(tool, name).max_chars,
                Some(MAX_NAME_CHARS),
                "{tool}.{name}"
            );
        }
        for tool in ["inbox", "wait_for_message", "outbox"] {
            let limit = arg(tool, "limit");
            assert_eq!(
                (limit.min, limit.max),
                (Some(1), Some(i64::from(MAX_INBOX_LIMIT))),
                "{tool}.limit"
            );
        }
    }

    #[test]
    fn every_default_is_within_its_bounds() {
        for tool in <Tools as ToolSet>::TOOLS {
            for arg in tool.args {
                let Some(default) = arg.default.map(|d| d()) else {
                    continue;
                };
                if let Some(n) = default.as_i64() {
                    assert!(
                        arg.min.is_none_or(|min| n >= min),
                        "{}.{}",
                        tool.name,
                        arg.name
                    );
                    assert!(
                        arg.max.is_none_or(|max| n <= max),
                        "{}.{}",
                        tool.name,
                        arg.name
                    );
                }
                if let (Some(s), Some(max)) = (default.as_str(), arg.max_chars) {
                    assert!(s.chars().count() <= max, "{}.{}", tool.name, arg.name);
                }
            }
        }
    }
}
