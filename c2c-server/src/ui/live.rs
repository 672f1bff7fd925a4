//! The page's live stream (server-sent events at `/view/ID/events`): on connecting it sends
//! every fragment of the room, then waits for a change of the database or a sign-out (or ten
//! seconds, for the ages and the processes that end without writing), reads the room again and
//! sends the fragments that changed, as one `board` event whose data is a JSON object from
//! element id to HTML.
//! A viewer that signs out, or whose token is revoked, gets `signed-out` and the stream ends.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::access::{self, Refusal, Viewer};
use super::{Ui, board, html};
use crate::server::in_place;
use crate::wake::Waiter;

/// How often the room is read again without a change (for ages and ended processes).
const REFRESH: Duration = Duration::from_secs(10);

/// The least time between two reads of the room: on a busy bus, the changes of that time are
/// shown together, and an open page costs at most a few reads a second.
const SETTLE: Duration = Duration::from_millis(200);

/// The query of the stream's address.
#[derive(Debug, Default, serde::Deserialize)]
pub struct EventsQuery {
    /// The room to follow.
    pub room: Option<String>,
}

// One open stream.
struct Follow {
    ui: Arc<Ui>,
    viewer: Viewer,
    room: String,
    waiter: Waiter,
    sign_outs: tokio::sync::watch::Receiver<u64>,
    conn: Option<rusqlite::Connection>,
    sent: HashMap<&'static str, String>,
    first: bool,
    ended: bool,
}

/// `GET /view/ID/events?room=R`: the live stream of room R.
pub async fn events(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let viewer = match ui.access.viewer(&id) {
        Ok(viewer) => viewer,
        Err(refusal) => return access::refused(&ui, refusal),
    };
    let asked = query.ok().and_then(|Query(q)| q.room);
    let room = match ui.room_for(&viewer, asked.as_deref()) {
        Ok(room) => room,
        Err(problem) => {
            return html::message_page(StatusCode::BAD_REQUEST, "No such room", &problem);
        }
    };
    // Subscribed before the first read, so no change between the two goes unseen.
    let waiter = match in_place(|| ui.wake.subscribe()) {
        Ok(waiter) => waiter,
        Err(e) => {
            return html::message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot follow the database",
                &e.to_string(),
            );
        }
    };
    let sign_outs = ui.access.sign_outs();
    let follow = Follow {
        sign_outs,
        ui,
        viewer,
        room,
        waiter,
        conn: None,
        sent: HashMap::new(),
        first: true,
        ended: false,
    };
    let stream = futures_util::stream::unfold(follow, next);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

// The next event of `f`'s stream, once something changed.
async fn next(mut f: Follow) -> Option<(Result<Event, Infallible>, Follow)> {
    if f.ended {
        return None;
    }
    loop {
        if !f.first {
            tokio::time::sleep(SETTLE).await;
            tokio::select! {
                () = f.waiter.changed() => {}
                _ = f.sign_outs.changed() => {}
                () = tokio::time::sleep(REFRESH) => {}
            }
        }
        f.first = false;
        // Signed out, forgotten, or its token revoked: the page reloads, to the sign-in form.
        match f.ui.access.viewer(&f.viewer.id) {
            Ok(_) => {}
            Err(Refusal::Unknown) => {
                f.ended = true;
                return Some((Ok(Event::default().event("signed-out").data("")), f));
            }
            Err(Refusal::Unavailable(e)) => {
                tracing::warn!(error = %e, "the page's stream could not check its token");
                continue;
            }
        }
        let read = in_place(|| {
            let conn = match f.conn.take() {
                Some(conn) => conn,
                None => f.ui.connect()?,
            };
            let board = board::read(&conn, &f.viewer, &f.room);
            f.conn = Some(conn);
            board
        });
        let board = match read {
            Ok(board) => board,
            Err(e) => {
                tracing::warn!(error = %e, "the page's stream could not read the room");
                continue;
            }
        };
        let mut changed = serde_json::Map::new();
        for (id, html) in html::fragments(&board, SystemTime::now()) {
            if f.sent.get(id) != Some(&html) {
                changed.insert(id.to_string(), html.clone().into());
                f.sent.insert(id, html);
            }
        }
        if changed.is_empty() {
            continue;
        }
        let data = serde_json::Value::Object(changed).to_string();
        return Some((Ok(Event::default().event("board").data(data)), f));
    }
}
