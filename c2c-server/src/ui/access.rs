//! Who may see the page. Every request must name this server in its `Host` (and, when a
//! browser sends one, its `Origin`), so that no other site reaches it by DNS rebinding or a
//! cross-site form. A browser is let in once, by the per-run key of `claude-c2c ui` (in the
//! address it printed) or by a hub token typed into the sign-in form, and from then on is
//! known by a random cookie (`HttpOnly`, `SameSite=Strict`) that names its [`Viewer`]. A form
//! that writes also carries the viewer's own random `csrf` value. A token's viewer is checked
//! against the token on every request, so a revoke signs it out at once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Ui, html};
use crate::hub::guard::{host_allowed, origin_allowed, request_host};
use crate::store::tokens::{self, random_hex};

/// How many signed-in viewers are remembered; the oldest is forgotten beyond that (its browser
/// is asked to sign in again).
const MAX_VIEWERS: usize = 1024;

/// What lets a browser in.
pub enum Gate {
    /// The per-run key of `claude-c2c ui`; its viewer sees every room.
    Key(String),
    /// A hub token, looked up on this connection; its viewer sees the token's room.
    Tokens(Mutex<rusqlite::Connection>),
}

/// A browser that was let in.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The room it may see; `None`: every room.
    pub room: Option<String>,
    /// The one name it may send as, if its token is bound to one.
    pub name: Option<String>,
    /// The token that let it in, if any.
    pub token: Option<i64>,
    /// The value its forms must carry, unknown to other sites.
    pub csrf: String,
    /// Whether a sign-out is offered (a token's viewer).
    pub signed_in: bool,
}

/// The gate and the viewers let in through it.
pub struct Access {
    gate: Gate,
    allowed_hosts: Vec<String>,
    cookie: String,
    secure: bool,
    viewers: Mutex<Viewers>,
}

#[derive(Default)]
struct Viewers {
    by_cookie: HashMap<String, Viewer>,
    order: VecDeque<String>,
}

impl Access {
    /// Lets in through `gate` requests that name one of `allowed_hosts`, on the server at
    /// `port` (its cookie is named after it: browsers share cookies between a host's ports);
    /// `secure` marks the cookie for HTTPS only.
    pub fn new(gate: Gate, allowed_hosts: Vec<String>, port: u16, secure: bool) -> Self {
        Access {
            gate,
            allowed_hosts,
            cookie: format!("c2c_ui_{port}"),
            secure,
            viewers: Mutex::new(Viewers::default()),
        }
    }

    /// Whether the sign-in form for tokens is offered (the hub), rather than a key.
    pub fn takes_tokens(&self) -> bool {
        matches!(self.gate, Gate::Tokens(_))
    }

    fn viewers(&self) -> std::sync::MutexGuard<'_, Viewers> {
        self.viewers.lock().unwrap_or_else(|p| p.into_inner())
    }

    // Remembers a new viewer and returns its cookie value.
    fn admit(&self, mut viewer: Viewer) -> Result<String, getrandom::Error> {
        let cookie = random_hex()?;
        viewer.csrf = random_hex()?;
        let mut viewers = self.viewers();
        while viewers.order.len() >= MAX_VIEWERS {
            if let Some(old) = viewers.order.pop_front() {
                viewers.by_cookie.remove(&old);
            }
        }
        viewers.order.push_back(cookie.clone());
        viewers.by_cookie.insert(cookie.clone(), viewer);
        Ok(cookie)
    }

    fn forget(&self, cookie: &str) {
        let mut viewers = self.viewers();
        viewers.by_cookie.remove(cookie);
        viewers.order.retain(|c| c != cookie);
    }

    // The viewer the request's cookie names, if it is still let in.
    fn viewer(&self, headers: &HeaderMap) -> Option<Viewer> {
        let cookie = cookie_value(headers, &self.cookie)?;
        let viewer = self.viewers().by_cookie.get(cookie).cloned()?;
        if !self.still_let_in(&viewer) {
            self.forget(cookie);
            return None;
        }
        Some(viewer)
    }

    /// Whether `viewer` is still let in: its token (if any) is not revoked.
    pub fn still_let_in(&self, viewer: &Viewer) -> bool {
        match (viewer.token, &self.gate) {
            (Some(token), Gate::Tokens(conn)) => {
                let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                matches!(tokens::is_live(&conn, token), Ok(true))
            }
            _ => true,
        }
    }

    fn set_cookie(&self, value: &str) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Strict{secure}",
            self.cookie
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    fn clear_cookie(&self) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
            self.cookie
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Checks `Host` and `Origin`, finds the request's viewer (put into its extensions when there
/// is one), and adds the headers that keep the page to itself.
pub async fn door(State(ui): State<Arc<Ui>>, mut req: Request, next: Next) -> Response {
    let access = &ui.access;
    let host = request_host(&req);
    let headers = req.headers();
    if !host
        .as_deref()
        .is_some_and(|h| host_allowed(&access.allowed_hosts, h))
    {
        let shown = host.as_deref().unwrap_or("(none)");
        return html::message_page(
            StatusCode::FORBIDDEN,
            "Wrong address",
            &format!(
                "this server does not answer to the host {shown:?}: open the page by the \
                 address it printed (a hub: start it with --allow-host NAME for each name \
                 people use)"
            ),
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("(not text)");
        if !origin_allowed(&access.allowed_hosts, origin) {
            return html::message_page(
                StatusCode::FORBIDDEN,
                "Refused",
                &format!("requests from pages at {origin} are not accepted"),
            );
        }
    }
    let viewer = access.viewer(headers);
    req.extensions_mut().insert(viewer);
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Swaps the per-run `key` of the address for a cookie, and sends the browser to the page
/// without the key in its address (nor in its history).
pub fn key_exchange(ui: &Ui, key: &str, room: Option<&str>) -> Response {
    let Gate::Key(expected) = &ui.access.gate else {
        return let_in_page(ui, None);
    };
    if !same_secret(key.trim(), expected) {
        return let_in_page(
            ui,
            Some(
                "the key in this address is not this run's: open the address `claude-c2c ui` printed last",
            ),
        );
    }
    let viewer = Viewer {
        room: None,
        name: None,
        token: None,
        csrf: String::new(),
        signed_in: false,
    };
    admitted(ui, viewer, room.unwrap_or(""))
}

// Lets `viewer` in: a cookie, and back to the page (of `room`, if any).
fn admitted(ui: &Ui, viewer: Viewer, room: &str) -> Response {
    let cookie = match ui.access.admit(viewer) {
        Ok(cookie) => cookie,
        Err(e) => {
            return html::message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot sign in",
                &format!("no random numbers for a cookie: {e}"),
            );
        }
    };
    let to = if room.is_empty() {
        super::Redirect::to("/").into_response()
    } else {
        super::back_to(room).into_response()
    };
    let mut response = (StatusCode::SEE_OTHER, to).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, ui.access.set_cookie(&cookie));
    response
}

/// The page for a browser that is not let in: the hub's sign-in form, or a pointer to the
/// address `claude-c2c ui` printed; `error` says why the last try failed.
pub fn let_in_page(ui: &Ui, error: Option<&str>) -> Response {
    if ui.access.takes_tokens() {
        let status = if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        return html::sign_in_page(status, error);
    }
    html::message_page(
        StatusCode::UNAUTHORIZED,
        "Open the page by its address",
        error.unwrap_or(
            "this page needs the address `claude-c2c ui` printed (it holds a key, new each run); \
             open that address in this browser",
        ),
    )
}

/// The sign-in form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct SignIn {
    /// A token of the hub.
    #[serde(default)]
    pub token: String,
}

/// `POST /ui/signin`: lets a browser in by a hub token.
pub async fn sign_in(
    State(ui): State<Arc<Ui>>,
    form: Result<axum::Form<SignIn>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Gate::Tokens(conn) = &ui.access.gate else {
        return html::message_page(
            StatusCode::NOT_FOUND,
            "No sign-in here",
            "this page is opened by the address `claude-c2c ui` printed, not by a token",
        );
    };
    let token = match form {
        Ok(axum::Form(form)) => form.token,
        Err(e) => {
            return let_in_page(
                &ui,
                Some(&format!("the form could not be read: {}", e.body_text())),
            );
        }
    };
    let found = {
        let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
        tokens::find(&conn, token.trim())
    };
    match found {
        Ok(Some(token)) => {
            let viewer = Viewer {
                room: Some(token.room.clone()),
                name: token.name.clone(),
                token: Some(token.id),
                csrf: String::new(),
                signed_in: true,
            };
            admitted(&ui, viewer, "")
        }
        Ok(None) => let_in_page(
            &ui,
            Some(
                "that token is not valid here (mistyped, revoked, or of another hub): make one on the hub with claude-c2c token create --room ROOM",
            ),
        ),
        Err(e) => html::message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Cannot sign in",
            &format!("the tokens cannot be read: {e}"),
        ),
    }
}

/// The sign-out form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct SignOut {
    /// The viewer's `csrf` value.
    #[serde(default)]
    pub csrf: String,
}

/// `POST /ui/signout`: forgets the browser's viewer.
pub async fn sign_out(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    axum::Extension(viewer): axum::Extension<Option<Viewer>>,
    form: Result<axum::Form<SignOut>, axum::extract::rejection::FormRejection>,
) -> Response {
    if let (Some(viewer), Ok(axum::Form(form))) = (viewer, form) {
        if !from_page(&viewer, &form.csrf, &headers) {
            return html::message_page(StatusCode::FORBIDDEN, "Refused", NOT_FROM_PAGE);
        }
        if let Some(cookie) = cookie_value(&headers, &ui.access.cookie) {
            ui.access.forget(cookie);
        }
    }
    let mut response = (StatusCode::SEE_OTHER, super::Redirect::to("/")).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, ui.access.clear_cookie());
    response
}

/// Why a form is refused that did not come from the viewer's own page.
pub const NOT_FROM_PAGE: &str =
    "this form did not come from the page (or the page is old): reload the page and send again";

/// Whether a form came from this viewer's page: it carries the viewer's `csrf` value, and the
/// browser does not say another site sent it.
pub fn from_page(viewer: &Viewer, csrf: &str, headers: &HeaderMap) -> bool {
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site != "same-origin" && site != "none");
    !cross_site && same_secret(csrf, &viewer.csrf)
}

/// The value of the cookie `name` in the request's `Cookie` headers.
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

// Compares secrets in time that does not depend on where they differ.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    a.len() == b.len()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        && !b.is_empty()
}

/// `text` percent-encoded for a query value.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others_and_secrets_compare_whole() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; c2c_ui_80=abc"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("c2c_ui_8=zzz"));
        assert_eq!(cookie_value(&headers, "c2c_ui_80"), Some("abc"));
        assert_eq!(cookie_value(&headers, "c2c_ui_8"), Some("zzz"));
        assert_eq!(cookie_value(&headers, "c2c_ui_9"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", ""), "an empty secret lets no one in");
        assert_eq!(url_encode("a b/ü&=x"), "a%20b%2F%C3%BC%26%3Dx");
    }

    #[test]
    fn a_form_needs_the_viewers_csrf_value_and_no_other_site() {
        let viewer = Viewer {
            room: None,
            name: None,
            token: None,
            csrf: "secret".into(),
            signed_in: false,
        };
        let mut headers = HeaderMap::new();
        assert!(from_page(&viewer, "secret", &headers));
        assert!(!from_page(&viewer, "guess", &headers));
        assert!(!from_page(&viewer, "", &headers));
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!from_page(&viewer, "secret", &headers));
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(from_page(&viewer, "secret", &headers));
    }
}
