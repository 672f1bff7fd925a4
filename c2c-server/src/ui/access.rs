//! Who may see the page. Every request must name this server in its `Host`, and a browser's
//! `Origin`, when it sends one, must name this very server (host and port), so that no
//! other site reaches the page by DNS rebinding or a cross-site form. A browser is let in by a
//! secret in the page's address, `/view/ID/`: the per-run key of `claude-c2c ui`, or on the hub
//! the id of a [`Viewer`] that a token typed into the sign-in form made. No cookie is used:
//! browsers send a host's cookies to every port of it, where another local user's server could
//! collect them. A form that writes also carries the viewer's own random `csrf` value. A token's
//! viewer is checked against the token on every request, so a revoke signs it out at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::{Ui, html};
use crate::hub::guard::{host_allowed, origin_allowed, request_host};
use crate::server::in_place;
use crate::store::tokens::{self, random_hex};

/// How many signed-in viewers the hub remembers; beyond that, the one unused longest is
/// forgotten (its browser is asked to sign in again).
const MAX_VIEWERS: usize = 1024;

/// How many of them one token may have: beyond that, its own unused longest is forgotten, so
/// that one token's holder cannot push everyone else out.
const MAX_VIEWERS_PER_TOKEN: usize = 32;

/// How long a signed-in page's address works without being used (an open page uses it every
/// few seconds): an address left in a history or a log does not let anyone in for ever.
pub const VIEWER_IDLE: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// What lets a browser in.
pub enum Gate {
    /// The per-run key of `claude-c2c ui`, the id of its one viewer, who sees every room.
    Key(String),
    /// A hub token, looked up on this connection (the hub's guard's); its viewer sees the
    /// token's room.
    Tokens(Arc<Mutex<rusqlite::Connection>>),
}

/// A browser that was let in.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The secret in its address, `/view/ID/`.
    pub id: String,
    /// The room it may see; `None`: every room.
    pub room: Option<String>,
    /// The one name it may send as, if its token is bound to one.
    pub name: Option<String>,
    /// The token that let it in, if any.
    pub token: Option<i64>,
    /// That token's label, shown on the page, so that a person sees whose room they are in.
    pub label: Option<String>,
    /// The value its forms must carry.
    pub csrf: String,
}

impl Viewer {
    /// The address of its page, which its other addresses start with.
    pub fn base(&self) -> String {
        format!("/view/{}/", self.id)
    }

    /// Whether it signed in with a token (and may sign out).
    pub fn signed_in(&self) -> bool {
        self.token.is_some()
    }
}

/// The gate and the viewers let in through it.
pub struct Access {
    gate: Gate,
    allowed_hosts: Vec<String>,
    // The key's viewer (`claude-c2c ui`), or none (the hub).
    local: Option<Viewer>,
    // The hub's signed-in viewers by id, with when each was last used.
    viewers: Mutex<HashMap<String, (Viewer, Instant)>>,
    // Moves on every sign-out, so that open streams look at once.
    signed_out: tokio::sync::watch::Sender<u64>,
}

/// Why a request's viewer is not let in.
pub enum Refusal {
    /// The id names no viewer (mistyped, signed out, forgotten, or of an earlier run), or its
    /// token was revoked.
    Unknown,
    /// The tokens could not be read.
    Unavailable(String),
}

impl Access {
    /// Lets in through `gate` requests that name one of `allowed_hosts`.
    pub fn new(gate: Gate, allowed_hosts: Vec<String>) -> Result<Self, getrandom::Error> {
        let local = match &gate {
            Gate::Key(key) => Some(Viewer {
                id: key.clone(),
                room: None,
                name: None,
                token: None,
                label: None,
                csrf: random_hex()?,
            }),
            Gate::Tokens(_) => None,
        };
        Ok(Access {
            gate,
            allowed_hosts,
            local,
            viewers: Mutex::new(HashMap::new()),
            signed_out: tokio::sync::watch::channel(0).0,
        })
    }

    /// Changes whenever a viewer signs out (or is forgotten).
    pub fn sign_outs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.signed_out.subscribe()
    }

    /// Whether the sign-in form for tokens is offered (the hub), rather than a key.
    pub fn takes_tokens(&self) -> bool {
        matches!(self.gate, Gate::Tokens(_))
    }

    fn viewers(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Viewer, Instant)>> {
        self.viewers.lock().unwrap_or_else(|p| p.into_inner())
    }

    // Remembers a new viewer for `token` and returns it.
    fn admit(&self, token: &tokens::Token) -> Result<Viewer, getrandom::Error> {
        let viewer = Viewer {
            id: random_hex()?,
            room: Some(token.room.clone()),
            name: token.name.clone(),
            token: Some(token.id),
            label: token.label.clone(),
            csrf: random_hex()?,
        };
        let mut viewers = self.viewers();
        viewers.retain(|_, (_, used)| used.elapsed() < VIEWER_IDLE);
        loop {
            let same_token = viewers
                .values()
                .filter(|(v, _)| v.token == viewer.token)
                .count();
            // The token's own first, when it has its share; else anyone's.
            let crowded = same_token >= MAX_VIEWERS_PER_TOKEN;
            if !crowded && viewers.len() < MAX_VIEWERS {
                break;
            }
            let oldest = viewers
                .iter()
                .filter(|(_, (v, _))| !crowded || v.token == viewer.token)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => viewers.remove(&id),
                None => break,
            };
        }
        viewers.insert(viewer.id.clone(), (viewer.clone(), Instant::now()));
        Ok(viewer)
    }

    fn forget(&self, id: &str) {
        if self.viewers().remove(id).is_some() {
            self.signed_out.send_modify(|n| *n += 1);
        }
    }

    /// The viewer whose address holds `id`, if it is let in (the key's viewer, or a signed-in
    /// viewer whose token is not revoked).
    pub fn viewer(&self, id: &str) -> Result<Viewer, Refusal> {
        if let Some(local) = &self.local {
            return if same_secret(id, &local.id) {
                Ok(local.clone())
            } else {
                Err(Refusal::Unknown)
            };
        }
        let viewer = {
            let mut viewers = self.viewers();
            let Some((viewer, used)) = viewers.get_mut(id) else {
                return Err(Refusal::Unknown);
            };
            if used.elapsed() >= VIEWER_IDLE {
                viewers.remove(id);
                return Err(Refusal::Unknown);
            }
            *used = Instant::now();
            viewer.clone()
        };
        if let (Some(token), Gate::Tokens(conn)) = (viewer.token, &self.gate) {
            let live = in_place(|| {
                let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                tokens::is_live(&conn, token)
            });
            match live {
                Ok(true) => {}
                Ok(false) => {
                    self.forget(id);
                    return Err(Refusal::Unknown);
                }
                Err(e) => return Err(Refusal::Unavailable(e.to_string())),
            }
        }
        Ok(viewer)
    }
}

/// The answer for a browser that `refusal` keeps out of a page: on the hub the sign-in form,
/// else a pointer to the address `claude-c2c ui` printed.
pub fn refused(ui: &Ui, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Unknown if ui.access.takes_tokens() => html::sign_in_page(
            StatusCode::UNAUTHORIZED,
            Some(
                "this page's address is no longer signed in (signed out, token revoked, or the hub restarted): sign in again",
            ),
        ),
        Refusal::Unknown => html::message_page(
            StatusCode::UNAUTHORIZED,
            "Open the page by its address",
            "this address is not this run's: open the address `claude-c2c ui` printed last (it holds a key, new each run)",
        ),
        Refusal::Unavailable(e) => html::message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The tokens cannot be read",
            &format!("{e}; try again in a moment"),
        ),
    }
}

/// Checks `Host` and `Origin`, and adds the headers that keep the page to itself.
pub async fn door(State(ui): State<Arc<Ui>>, req: Request, next: Next) -> Response {
    let access = &ui.access;
    let host = request_host(&req);
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
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("(not text)");
        // This very server: another port of the same host is another site's server.
        let same = origin.split_once("://").is_some_and(|(_, authority)| {
            host.as_deref()
                .is_some_and(|h| authority.eq_ignore_ascii_case(h))
        });
        if !same || !origin_allowed(&access.allowed_hosts, origin) {
            return html::message_page(
                StatusCode::FORBIDDEN,
                "Refused",
                &format!("requests from pages at {origin} are not accepted"),
            );
        }
    }
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
    // The address holds the secret: it must not travel to any other site. (With
    // `no-referrer`, Chromium sends `Origin: null` on the page's own form posts.)
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

/// `GET /`: the hub's sign-in form, or a pointer to the address `claude-c2c ui` printed.
pub async fn front(State(ui): State<Arc<Ui>>) -> Response {
    if ui.access.takes_tokens() {
        return html::sign_in_page(StatusCode::OK, None);
    }
    html::message_page(
        StatusCode::UNAUTHORIZED,
        "Open the page by its address",
        "this page is at the address `claude-c2c ui` printed (it holds a key, new each run); \
         open that address in this browser",
    )
}

/// The sign-in form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct SignIn {
    /// A token of the hub.
    #[serde(default)]
    pub token: String,
}

/// `POST /ui/signin`: lets a browser in by a hub token, sending it to its own page's address.
pub async fn sign_in(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    form: Result<axum::Form<SignIn>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Gate::Tokens(conn) = &ui.access.gate else {
        return html::message_page(
            StatusCode::NOT_FOUND,
            "No sign-in here",
            "this page is opened by the address `claude-c2c ui` printed, not by a token",
        );
    };
    if cross_site(&headers) {
        return html::message_page(StatusCode::FORBIDDEN, "Refused", NOT_FROM_PAGE);
    }
    let token = match form {
        Ok(axum::Form(form)) => form.token,
        Err(e) => {
            return html::sign_in_page(
                StatusCode::BAD_REQUEST,
                Some(&format!("the form could not be read: {}", e.body_text())),
            );
        }
    };
    let found = in_place(|| {
        let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
        tokens::find(&conn, token.trim())
    });
    match found {
        Ok(Some(token)) => match ui.access.admit(&token) {
            Ok(viewer) => Redirect::to(&viewer.base()).into_response(),
            Err(e) => html::message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot sign in",
                &format!("no random numbers for the page's address: {e}"),
            ),
        },
        Ok(None) => html::sign_in_page(
            StatusCode::UNAUTHORIZED,
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

/// `POST /view/ID/signout`: forgets the viewer, whose address then leads nowhere.
pub async fn sign_out(
    State(ui): State<Arc<Ui>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    form: Result<axum::Form<SignOut>, axum::extract::rejection::FormRejection>,
) -> Response {
    let viewer = match ui.access.viewer(&id) {
        Ok(viewer) => viewer,
        Err(refusal) => return refused(&ui, refusal),
    };
    let csrf = form.map(|axum::Form(f)| f.csrf).unwrap_or_default();
    if !from_page(&viewer, &csrf, &headers) {
        return html::message_page(StatusCode::FORBIDDEN, "Refused", NOT_FROM_PAGE);
    }
    ui.access.forget(&viewer.id);
    Redirect::to("/").into_response()
}

/// Why a form is refused that did not come from the viewer's own page.
pub const NOT_FROM_PAGE: &str =
    "this form did not come from the page (or the page is old): reload the page and send again";

/// Whether a form came from this viewer's page: it carries the viewer's `csrf` value, and the
/// browser does not say another site sent it.
pub fn from_page(viewer: &Viewer, csrf: &str, headers: &HeaderMap) -> bool {
    !cross_site(headers) && same_secret(csrf, &viewer.csrf)
}

// Whether the browser says another site sent the request.
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site != "same-origin" && site != "none")
}

// Compares secrets in time that does not depend on where they differ.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    !b.is_empty()
        && a.len() == b.len()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    fn secrets_compare_whole_and_encode_for_a_query() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", ""), "an empty secret lets no one in");
        assert_eq!(url_encode("a b/ü&=x"), "a%20b%2F%C3%BC%26%3Dx");
    }

    #[test]
    fn a_form_needs_the_viewers_csrf_value_and_no_other_site() {
        let viewer = Viewer {
            id: "id".into(),
            room: None,
            name: None,
            token: None,
            label: None,
            csrf: "secret".into(),
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

    #[test]
    fn the_hub_forgets_the_viewer_unused_longest_and_one_tokens_beyond_its_share() {
        let conn = crate::store::open_in_memory().unwrap();
        let access = Access::new(Gate::Tokens(Arc::new(Mutex::new(conn))), vec![]).unwrap();
        let token = |id: i64| tokens::Token {
            id,
            room: "r".into(),
            name: None,
            label: None,
            created_at: String::new(),
            revoked_at: None,
        };
        // One token's holder signing in again and again pushes out only its own pages.
        let others: Vec<Viewer> = (0..10)
            .map(|i| access.admit(&token(1000 + i)).unwrap())
            .collect();
        let first = access.admit(&token(1)).unwrap();
        for _ in 0..3 * MAX_VIEWERS_PER_TOKEN {
            access.admit(&token(1)).unwrap();
        }
        {
            let viewers = access.viewers();
            assert!(others.iter().all(|v| viewers.contains_key(&v.id)));
            assert!(!viewers.contains_key(&first.id));
            let own = viewers.values().filter(|(v, _)| v.token == Some(1)).count();
            assert_eq!(own, MAX_VIEWERS_PER_TOKEN);
        }
        // Across tokens, the page unused longest goes once all are full.
        let mut ids = Vec::new();
        for i in 0..MAX_VIEWERS as i64 {
            ids.push(access.admit(&token(i)).unwrap().id);
        }
        let viewers = access.viewers();
        assert_eq!(viewers.len(), MAX_VIEWERS);
        assert!(
            ids.iter().all(|id| viewers.contains_key(id)),
            "the newest stay"
        );
    }

    #[test]
    fn a_page_unused_too_long_is_forgotten() {
        let conn = crate::store::open_in_memory().unwrap();
        tokens::create(&conn, "r", None, Some("laptop"), "c2c_secret").unwrap();
        let token = tokens::find(&conn, "c2c_secret").unwrap().unwrap();
        let access = Access::new(Gate::Tokens(Arc::new(Mutex::new(conn))), vec![]).unwrap();
        let viewer = access.admit(&token).unwrap();
        assert_eq!(
            access.viewer(&viewer.id).ok().and_then(|v| v.label),
            Some("laptop".into())
        );
        let long_ago = Instant::now().checked_sub(VIEWER_IDLE);
        let Some(long_ago) = long_ago else {
            return; // a clock too young to go back that far: nothing to test
        };
        access.viewers().get_mut(&viewer.id).unwrap().1 = long_ago;
        assert!(matches!(access.viewer(&viewer.id), Err(Refusal::Unknown)));
        assert!(access.viewers().is_empty());
    }
}
