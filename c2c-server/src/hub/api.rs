//! The hub's JSON API, for the command line and the hooks of machines without the database:
//! `POST /v1/call` runs a tool as the command line does (acting as a name with `as`, waiting
//! while the tool waits), `GET /v1/overview` gives what `sessions` and `rooms` show,
//! `GET /v1/messages` what `tail` follows (long-polling), and `POST /v1/hook` hands a session's
//! new messages to a hook. Everything is confined to the token's room, and to its name when it
//! is bound to one. A tool's own failure is an answer (`{"error": ...}` with 200); the HTTP
//! status is for what kept the call from running.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::guard::Identity;
use super::{Hub, error_response, json_response};
use crate::call::Session;
use crate::config::Config;
use crate::dispatch::{Dispatcher, Pending};
use crate::registry::JsonObject;
use crate::server::{in_place, run_to_answer};
use crate::store::messages::{self, Message};
use crate::store::sessions::{self, Overview};

/// The longest a `/v1/messages` or `/v1/hook` request waits before answering with nothing.
pub const MAX_POLL: Duration = Duration::from_secs(30);

/// The routes under `/v1`.
pub fn routes(hub: Arc<Hub>) -> Router {
    let limit = super::request_limit(hub.max_body_bytes);
    Router::new()
        .route("/v1/call", post(call))
        .route("/v1/overview", get(overview))
        .route("/v1/messages", get(messages_after))
        .route("/v1/hook", post(hook))
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{method} is not how this path is used: POST /v1/call and /v1/hook, GET \
                     /v1/overview and /v1/messages"
                ),
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .with_state(hub)
}

/// A `POST /v1/call` request.
#[derive(Debug, Serialize, Deserialize)]
pub struct CallRequest {
    /// The tool's name.
    pub tool: String,
    /// The name to act as (`--as`); a token bound to a name acts as it without this.
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub act_as: Option<String>,
    /// The tool's arguments.
    #[serde(default)]
    pub arguments: JsonObject,
}

/// What `GET /v1/overview` answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct OverviewAnswer {
    /// The token's room.
    pub room: String,
    /// The rooms that hold anything, of those the token reaches.
    pub rooms: Vec<String>,
    /// The live sessions of the room, with their unread counts.
    pub sessions: Vec<Overview>,
}

/// The query of `GET /v1/messages`.
#[derive(Debug, Deserialize)]
pub struct MessagesQuery {
    /// Messages with a greater id; absent: only those sent from now on.
    pub after: Option<i64>,
    /// How long to wait for one, in milliseconds (at most 30 s).
    #[serde(default)]
    pub wait_ms: u64,
}

/// What `GET /v1/messages` answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessagesAnswer {
    /// The room's messages after the id asked for, oldest first.
    pub messages: Vec<Message>,
    /// The id to ask after next time.
    pub last: i64,
}

/// A `POST /v1/hook` request.
#[derive(Debug, Serialize, Deserialize)]
pub struct HookRequest {
    /// The session's name.
    pub name: String,
    /// For `hook wait`: its waiter id (from an earlier answer), or absent to become the
    /// session's waiter; absent with `wait_ms` 0: a prompt hook, which takes every unread message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiter: Option<String>,
    /// Whether this is `hook wait` (new messages only, waiting up to `wait_ms`).
    #[serde(default)]
    pub wait: bool,
    /// How long to wait for a new message, in milliseconds (at most 30 s).
    #[serde(default)]
    pub wait_ms: u64,
}

/// What `POST /v1/hook` answers.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct HookAnswer {
    /// The text to hand to Claude Code, if there were messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A newer `hook wait` of the session took over: stop.
    #[serde(default)]
    pub give_way: bool,
    /// The waiter id to send next time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiter: Option<String>,
}

/// Why a request of the API could not be served: its status and what to say.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = error_response(self.0, self.1);
        if self.0 == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is not read: the connection cannot carry another request.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

// A dispatcher in the token's room, acting for a person or script (no process: it records no
// deliveries and takes no name from a running session).
fn dispatcher(hub: &Hub, id: &Identity) -> Result<Dispatcher, ApiError> {
    let conn = hub.connect().map_err(unavailable)?;
    let config = Config::for_remote(
        hub.db_path.clone(),
        hub.max_body_bytes,
        id.room.clone(),
        id.name.clone(),
    );
    Ok(Dispatcher::new(conn, config).with_wake(hub.wake.clone()))
}

/// A request body read and parsed as `what`; the refusal to send otherwise (a body that could
/// not be read, too large or cut off, or that is not `what`).
fn parsed<T: serde::de::DeserializeOwned>(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
    what: &str,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        ApiError(
            e.status(),
            format!("the body cannot be read: {}", e.body_text()),
        )
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("the body is not {what}: {e}"),
        )
    })
}

async fn call(
    State(hub): State<Arc<Hub>>,
    Extension(id): Extension<Identity>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let request: CallRequest =
        match parsed(body, "a call (send {\"tool\": NAME, \"arguments\": {..}})") {
            Ok(request) => request,
            Err(refusal) => return refusal.into_response(),
        };
    // The set-up is quick and synchronous; the call itself waits on this task, so a client
    // that hangs up (dropping it) stops a long wait at once.
    let ready = in_place(|| -> Result<Result<_, String>, ApiError> {
        let mut dispatcher = dispatcher(&hub, &id)?;
        let Some(tool) = dispatcher.find(&request.tool) else {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no tool is called {:?}", request.tool),
            ));
        };
        let act_as = request.act_as.clone().or(id.name.clone());
        if let Some(name) = &act_as
            && let Err(e) = dispatcher.visit_for(name, tool)
        {
            return Ok(Err(e));
        }
        Ok(Ok((dispatcher, tool)))
    });
    let (dispatcher, tool) = match ready {
        Ok(Ok(ready)) => ready,
        Ok(Err(refused)) => return json_response(&json!({ "error": refused })),
        Err(e) => return e.into_response(),
    };
    let answer = match run_to_answer(&dispatcher, Pending::new(tool, request.arguments)).await {
        Ok(value) => json!({ "result": value }),
        Err(e) => json!({ "error": e.to_string() }),
    };
    json_response(&answer)
}

async fn overview(State(hub): State<Arc<Hub>>, Extension(id): Extension<Identity>) -> Response {
    let answer = in_place(|| -> Result<OverviewAnswer, ApiError> {
        let conn = hub.connect().map_err(unavailable)?;
        let sessions = sessions::overview(&conn, Some(&id.room)).map_err(unavailable)?;
        let rooms = sessions::rooms(&conn)
            .map_err(unavailable)?
            .into_iter()
            .filter(|r| *r == id.room)
            .collect();
        Ok(OverviewAnswer {
            room: id.room.clone(),
            rooms,
            sessions,
        })
    });
    match answer {
        Ok(answer) => json_response(&answer),
        Err(e) => e.into_response(),
    }
}

async fn messages_after(
    State(hub): State<Arc<Hub>>,
    Extension(id): Extension<Identity>,
    query: Result<Query<MessagesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                format!(
                    "{}: after is a message id, wait_ms a number of milliseconds",
                    e.body_text()
                ),
            );
        }
    };
    const BATCH: u32 = 500;
    let deadline = Instant::now() + Duration::from_millis(query.wait_ms).min(MAX_POLL);
    let conn = match in_place(|| hub.connect()) {
        Ok(conn) => conn,
        Err(e) => return unavailable(e).into_response(),
    };
    let mut last = match query.after {
        Some(after) => after,
        None => match in_place(|| messages::last_id(&conn)) {
            Ok(last) => last,
            Err(e) => return unavailable(e).into_response(),
        },
    };
    let mut waiter = None;
    loop {
        let batch = match in_place(|| messages::after(&conn, last, BATCH)) {
            Ok(batch) => batch,
            Err(e) => return unavailable(e).into_response(),
        };
        let full = batch.len() == BATCH as usize;
        let mut found = Vec::new();
        for (room, message) in batch {
            last = message.id;
            // A token bound to a name sees what that name sends and receives, no one else's.
            let theirs = id.name.as_deref().is_none_or(|name| {
                message.from_name == name
                    || message.to_name == name
                    || message.to_name == messages::BROADCAST
            });
            if room == id.room && theirs {
                found.push(message);
            }
        }
        if !found.is_empty() || full || Instant::now() >= deadline {
            return json_response(&MessagesAnswer {
                messages: found,
                last,
            });
        }
        // Waits on this task: a client that hangs up stops it.
        let Some(w) = &mut waiter else {
            match in_place(|| hub.wake.subscribe()) {
                Ok(w) => waiter = Some(w),
                Err(e) => return unavailable(e).into_response(),
            }
            continue;
        };
        tokio::select! {
            _ = w.changed() => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
}

async fn hook(
    State(hub): State<Arc<Hub>>,
    Extension(id): Extension<Identity>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let request: HookRequest = match parsed(body, "a hook request") {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    if let Some(allowed) = &id.name
        && *allowed != request.name
    {
        return error_response(
            StatusCode::FORBIDDEN,
            format!(
                "this token acts only as \"{allowed}\", not \"{}\"",
                request.name
            ),
        );
    }
    let setup = in_place(|| -> Result<_, ApiError> {
        let conn = hub.connect().map_err(unavailable)?;
        let Some(session) = sessions::live(&conn, &id.room, &request.name).map_err(unavailable)?
        else {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!(
                    "no live session is named \"{}\" in room {} (has its session started?)",
                    request.name, id.room
                ),
            ));
        };
        Ok((conn, session))
    });
    let (mut conn, session) = match setup {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    match hand_over(&hub, &mut conn, &session, request).await {
        Ok(answer) => json_response(&answer),
        Err(e) => unavailable(e).into_response(),
    }
}

// What a hook takes for `session`: for a prompt hook every unread message at once; for a wait
// hook the new ones, waiting up to its `wait_ms` while it is still the session's waiter.
async fn hand_over(
    hub: &Hub,
    conn: &mut rusqlite::Connection,
    session: &Session,
    request: HookRequest,
) -> rusqlite::Result<HookAnswer> {
    use crate::cli::hook::{Claim, claim};
    if !request.wait {
        let text = match in_place(|| claim(conn, session, None))? {
            Claim::Messages(text) => Some(text),
            _ => None,
        };
        return Ok(HookAnswer {
            text,
            ..HookAnswer::default()
        });
    }
    let deadline = Instant::now() + Duration::from_millis(request.wait_ms).min(MAX_POLL);
    let me = match request.waiter {
        Some(me) => me,
        None => in_place(|| -> rusqlite::Result<String> {
            let me = crate::store::new_id(conn)?;
            sessions::set_hook_waiter(conn, &session.session_id, &me)?;
            Ok(me)
        })?,
    };
    let mut waiter = None;
    loop {
        match in_place(|| claim(conn, session, Some(&me)))? {
            Claim::Messages(text) => {
                return Ok(HookAnswer {
                    text: Some(text),
                    give_way: false,
                    waiter: Some(me),
                });
            }
            Claim::GiveWay => {
                return Ok(HookAnswer {
                    give_way: true,
                    ..HookAnswer::default()
                });
            }
            Claim::Nothing => {}
        }
        if Instant::now() >= deadline {
            return Ok(HookAnswer {
                waiter: Some(me),
                ..HookAnswer::default()
            });
        }
        // Waits on this task: a hook that hangs up stops it.
        let Some(w) = &mut waiter else {
            waiter = Some(in_place(|| hub.wake.subscribe())?);
            continue;
        };
        tokio::select! {
            _ = w.changed() => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
}
