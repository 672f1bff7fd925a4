//! Claude Code channel push: with `--channel`, while this server's session holds its name,
//! every message for it (direct, or a broadcast from another name) that is unread and that no
//! path has delivered yet is sent once as a `notifications/claude/channel` event, then recorded
//! as delivered (never as read: the model acknowledges with `mark_read`). Messages that came
//! while no server of the session ran go out when it starts; new ones as [`wake`] notices them.
//!
//! [`wake`]: crate::wake

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::{CustomNotification, ServerNotification};
use rmcp::service::Peer;
use serde_json::{Map, Value, json};

use crate::dispatch::Dispatcher;
use crate::store::messages::Message;

/// The capability key under `experimental` that makes Claude Code listen for our events.
pub const CAPABILITY: &str = "claude/channel";

/// The notification method of a channel event.
pub const METHOD: &str = "notifications/claude/channel";

/// How often a push loop with nothing to send looks whether its client has gone.
const PEER_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The most messages taken per query; more are sent in the next round.
const BATCH: u32 = 50;

/// The event for `message`: its body as the content; id, sender, tag and the message it
/// answers as meta (string values, keys of letters, digits and `_`).
pub fn event(message: &Message) -> Value {
    let mut meta = Map::new();
    meta.insert("message_id".into(), Value::String(message.id.to_string()));
    meta.insert("from".into(), Value::String(message.from_name.clone()));
    if let Some(tag) = &message.tag {
        meta.insert("tag".into(), Value::String(tag.clone()));
    }
    if message.to_name == crate::store::messages::BROADCAST {
        meta.insert("to".into(), Value::String(message.to_name.clone()));
    }
    if let Some(original) = message.reply_to {
        meta.insert("reply_to".into(), Value::String(original.to_string()));
    }
    json!({ "content": message.body, "meta": meta })
}

/// Pushes undelivered messages to `peer` until the client goes away.
pub async fn push(dispatcher: Arc<Dispatcher>, peer: Peer<RoleServer>) {
    let mut waiter = match crate::server::in_place(|| dispatcher.subscribe()) {
        Ok(waiter) => waiter,
        Err(e) => {
            tracing::error!(error = %e, "channel push is off: cannot watch the database");
            return;
        }
    };
    loop {
        let batch = match crate::server::in_place(|| dispatcher.undelivered(BATCH)) {
            Ok(batch) => batch,
            Err(e) => {
                // Left unread and undelivered: the next change, or inbox, picks them up.
                tracing::warn!(error = %e, "channel push: reading new messages failed");
                Vec::new()
            }
        };
        let full = batch.len() == BATCH as usize;
        for message in batch {
            let notification = ServerNotification::CustomNotification(CustomNotification::new(
                METHOD,
                Some(event(&message)),
            ));
            if let Err(e) = peer.send_notification(notification).await {
                tracing::debug!(error = %e, "channel push: the client is gone");
                return;
            }
            let recorded = crate::server::in_place(|| {
                dispatcher.record_delivery(std::slice::from_ref(&message))
            });
            if let Err(e) = recorded {
                tracing::warn!(error = %e, id = message.id, "channel push: recording the delivery failed");
            }
        }
        if !full {
            // Between messages, look now and then whether the client is still there: a push
            // loop whose client left (an HTTP session that ended) must not live on.
            loop {
                tokio::select! {
                    _ = waiter.changed() => break,
                    _ = tokio::time::sleep(PEER_CHECK_EVERY) => {
                        if peer.is_transport_closed() {
                            return;
                        }
                    }
                }
            }
        }
    }
}
