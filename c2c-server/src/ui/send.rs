//! A person's message from the page (`POST /view/ID/send`): checked to come from the viewer's own
//! page, then sent by the dispatcher's `send_message` as the name the person chose (default
//! `human`; a name-bound token's name only), like a message from the command line. The page's
//! script asks for a JSON answer (header `x-c2c-page`); a plain form post is sent back to
//! the page.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::access::{self, NOT_FROM_PAGE, Refusal, Viewer, from_page};
use super::{DEFAULT_SENDER, Ui, back_to, html};
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::server::in_place;

/// The header by which the page's script asks for a JSON answer.
pub const PAGE_HEADER: &str = "x-c2c-page";

/// The send form's fields.
#[derive(Debug, Default, serde::Deserialize)]
pub struct SendForm {
    /// The viewer's `csrf` value.
    #[serde(default)]
    pub csrf: String,
    /// The room to send in.
    #[serde(default)]
    pub room: Option<String>,
    /// The name to send as.
    #[serde(default)]
    pub from: String,
    /// The recipient, or `*` for everyone.
    #[serde(default)]
    pub to: String,
    /// The text.
    #[serde(default)]
    pub body: String,
    /// The id of the message this answers; empty for none.
    #[serde(default)]
    pub reply_to: String,
}

/// `POST /view/ID/send`.
pub async fn send(
    State(ui): State<Arc<Ui>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    form: Result<axum::Form<SendForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let script = headers.contains_key(PAGE_HEADER);
    let back = format!("/view/{}/", access::url_encode(&id));
    let refuse = |status: StatusCode, text: &str| -> Response {
        if script {
            crate::hub::error_response(status, text)
        } else {
            html::message_page_back_to(status, "Not sent", text, &back)
        }
    };
    let viewer = match ui.access.viewer(&id) {
        Ok(viewer) => viewer,
        Err(Refusal::Unknown) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "this page's address is no longer let in: reload it (and sign in again)",
            );
        }
        Err(Refusal::Unavailable(e)) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the tokens cannot be read: {e}; send again in a moment"),
            );
        }
    };
    let form = match form {
        Ok(axum::Form(form)) => form,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("the form could not be read: {}", e.body_text()),
            );
        }
    };
    if !from_page(&viewer, &form.csrf, &headers) {
        return refuse(StatusCode::FORBIDDEN, NOT_FROM_PAGE);
    }
    let room = match ui.room_for(&viewer, form.room.as_deref()) {
        Ok(room) => room,
        Err(problem) => return refuse(StatusCode::BAD_REQUEST, &problem),
    };
    let reply_to = match form.reply_to.trim() {
        "" => None,
        id => match id.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    &format!("reply_to {id:?} is not a message id"),
                );
            }
        },
    };
    let from = match form.from.trim() {
        "" => DEFAULT_SENDER,
        name => name,
    };
    // Browsers send a text area's line breaks as CR LF.
    let body = form.body.replace("\r\n", "\n");
    let to = form.to.trim();
    let sent = in_place(|| send_as(&ui, &viewer, &room, from, to, &body, reply_to));
    match sent {
        Ok(answer) if script => crate::hub::json_response(&answer),
        Ok(_) => back_to(&viewer, &room).into_response(),
        Err(e) => refuse(StatusCode::BAD_REQUEST, &e),
    }
}

// Sends `body` from `from` to `to` in `room` through the dispatcher; the tool's answer.
fn send_as(
    ui: &Ui,
    viewer: &Viewer,
    room: &str,
    from: &str,
    to: &str,
    body: &str,
    reply_to: Option<i64>,
) -> Result<Value, String> {
    let conn = ui.connect()?;
    let config = Config::for_remote(
        ui.db_path.clone(),
        ui.max_body_bytes,
        room.to_string(),
        viewer.name.clone(),
    );
    let mut dispatcher = Dispatcher::new(conn, config).with_wake(ui.wake.clone());
    let tool = dispatcher
        .find("send_message")
        .ok_or("this build has no send_message tool")?;
    dispatcher.visit_for(from, tool)?;
    let mut args = serde_json::Map::new();
    args.insert("to".into(), to.into());
    args.insert("body".into(), body.into());
    if let Some(id) = reply_to {
        args.insert("reply_to".into(), id.into());
    }
    dispatcher.run(tool, args).map_err(|e| e.to_string())
}
