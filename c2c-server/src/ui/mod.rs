//! The page for the humans: what the sessions say to each other, live, and a form to step in.
//! `claude-c2c ui` serves it for the local database on 127.0.0.1 at an address that holds a
//! per-run key; the hub serves the same page behind a sign-in form for its tokens at `/`
//! ([`access`]).
//! A request for the page reads the room from the [`store`](crate::store) into a [`board`],
//! which [`html`] renders as escaped, server-made HTML in a few fragments; the page's small
//! script opens the [`live`] stream, which sends a fragment again whenever the database change
//! alters it; a person's message goes through the dispatcher like any other ([`send`]).

pub mod access;
pub mod board;
pub mod html;
pub mod live;
pub mod send;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::wake::Wake;
use access::{Gate, Viewer};

/// The name a person's message is sent as unless they choose another.
pub const DEFAULT_SENDER: &str = "human";

/// The options of `claude-c2c ui`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UiArgs {
    /// The port to serve the page on (on 127.0.0.1) [default: a free one].
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
}

/// What every request for the page shares.
pub struct Ui {
    /// The database.
    pub db_path: PathBuf,
    /// How long a connection waits for another's write lock.
    pub busy_timeout: Duration,
    /// The largest message body accepted.
    pub max_body_bytes: usize,
    /// The watcher of the database, which wakes the live streams.
    pub wake: Wake,
    /// The room shown when the address names none and the viewer may see every room.
    pub default_room: String,
    /// Who is let in, and the viewers let in so far.
    pub access: access::Access,
}

impl Ui {
    /// A new connection to the database.
    pub fn connect(&self) -> Result<rusqlite::Connection, String> {
        crate::store::open_with(&self.db_path, self.busy_timeout).map_err(|e| e.to_string())
    }

    /// The room `asked` for, as `viewer` may see it: a token's viewer sees its token's room
    /// whatever the address says; a local viewer the room asked for, or the default. A name
    /// that cannot be a room's is refused, saying why.
    pub fn room_for(&self, viewer: &Viewer, asked: Option<&str>) -> Result<String, String> {
        let room = match &viewer.room {
            Some(room) => room.clone(),
            None => asked
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .unwrap_or(&self.default_room)
                .to_string(),
        };
        crate::tools::check_name("room", &room, false).map_err(|e| e.to_string())?;
        Ok(room)
    }
}

/// The query of the page's address.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    /// The room to show.
    pub room: Option<String>,
}

/// The page's routes: `/` (the hub's sign-in form), `/ui/` (sign-in, script and style) and
/// each viewer's page under `/view/ID/`. Each request passes [`access::door`] first (its `Host`
/// and `Origin` must name this server); bodies are limited as the hub's are.
pub fn routes(ui: Arc<Ui>) -> Router {
    let limit = crate::hub::request_limit(ui.max_body_bytes);
    Router::new()
        .route("/", get(access::front))
        .route("/ui/signin", post(access::sign_in))
        .route("/ui/page.js", get(script))
        .route("/ui/page.css", get(style))
        .route("/view/{id}", get(to_page))
        .route("/view/{id}/", get(page))
        .route("/view/{id}/events", get(live::events))
        .route("/view/{id}/send", post(send::send))
        .route("/view/{id}/signout", post(access::sign_out))
        .route_layer(axum::middleware::from_fn_with_state(
            ui.clone(),
            access::door,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .with_state(ui)
}

// `/view/ID` without its slash: the page's links are relative to `/view/ID/`.
async fn to_page(Path(id): Path<String>) -> Redirect {
    Redirect::to(&format!("/view/{}/", access::url_encode(&id)))
}

async fn page(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let viewer = match ui.access.viewer(&id) {
        Ok(viewer) => viewer,
        Err(refusal) => return access::refused(&ui, refusal),
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let room = match ui.room_for(&viewer, query.room.as_deref()) {
        Ok(room) => room,
        Err(problem) => {
            return html::message_page(
                StatusCode::BAD_REQUEST,
                "No such room",
                &format!("{problem}: choose a room from the list"),
            );
        }
    };
    let read = crate::server::in_place(|| board::read(&ui.connect()?, &viewer, &room));
    match read {
        Ok(board) => html::page_response(html::page(&board, &viewer)),
        Err(e) => html::message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The database cannot be read",
            &e,
        ),
    }
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("page.js"))
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", include_str!("page.css"))
}

fn asset(kind: &'static str, text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

/// Where `viewer` sees `room`, as a redirect.
pub fn back_to(viewer: &Viewer, room: &str) -> Redirect {
    Redirect::to(&format!(
        "{}?room={}",
        viewer.base(),
        access::url_encode(room)
    ))
}

/// The settings `claude-c2c ui` runs with, from the command line.
pub struct Settings {
    /// The database.
    pub db_path: PathBuf,
    /// How long a connection waits for another's write lock.
    pub busy_timeout: Duration,
    /// The largest message body accepted.
    pub max_body_bytes: usize,
    /// The room shown first.
    pub room: String,
}

/// Serves the page for the local database until a signal asks it to stop; the first line of
/// stdout is its address, with the key that lets a browser in.
pub fn run(settings: Settings, args: &UiArgs) -> Result<(), String> {
    // Opened before listening, so that a bad path fails at start rather than in the browser.
    crate::store::open_with(&settings.db_path, settings.busy_timeout).map_err(|e| e.to_string())?;
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port.unwrap_or(0)));
    let (listener, bound) = crate::hub::listen_on(
        addr,
        "is something else using the port? give another with --port, or none for a free one",
    )?;
    let key = crate::store::tokens::random_hex()
        .map_err(|e| format!("cannot make the page's key: {e}"))?;
    let ui = Arc::new(Ui {
        wake: Wake::new(&settings.db_path),
        db_path: settings.db_path,
        busy_timeout: settings.busy_timeout,
        max_body_bytes: settings.max_body_bytes,
        default_room: settings.room,
        access: access::Access::new(
            Gate::Key(key.clone()),
            crate::hub::guard::allowed_hosts(bound, &[]),
        )
        .map_err(|e| format!("cannot make the page's key: {e}"))?,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let db = ui.db_path.display().to_string();
        let app = routes(ui);
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "http://{bound}/view/{key}/");
        let _ = out.flush();
        drop(out);
        eprintln!(
            "claude-c2c: the page for {db} is at the address above (open it in a browser on \
             this machine; the key in it is new each run); Ctrl+C stops"
        );
        // The live streams never end by themselves, so a graceful shutdown would wait for
        // every open page: on a signal the server simply stops.
        tokio::select! {
            served = axum::serve(listener, app) => served.map_err(|e| format!("the page's server stopped: {e}")),
            () = crate::cli::serve::shutdown_signal() => {
                eprintln!("claude-c2c: page server stopping (asked to by a signal)");
                Ok(())
            }
        }
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
