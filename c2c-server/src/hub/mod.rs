//! The hub: `claude-c2c serve --listen ADDR` serves the bus over HTTP, so that sessions on
//! other machines meet on this machine's database. MCP clients (Claude Code, relays, SDKs) use
//! rmcp's streamable HTTP transport at `/mcp` ([`mcp`]); the command line and the hooks use a
//! small JSON API under `/v1` ([`api`]). Every request passes the [`guard`]: its `Host` and
//! `Origin` must name this hub, and its bearer token must be one `claude-c2c token create`
//! made and no one revoked; the token's room (and name, if bound to one) is all it reaches.
//! Waits and pushes are woken in-process for the hub's own writes, through one shared watcher
//! that also notices other local writers. At `/` it serves the [page for people](crate::ui),
//! whose browsers sign in with a token.

pub mod api;
pub mod guard;
pub mod mcp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, SessionConfig};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::wake::Wake;

/// The address the hub listens on unless `--listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7420";

/// The header by which an MCP client names the session it is (as the server's `--name`).
pub const NAME_HEADER: &str = "x-c2c-name";
/// The header by which an MCP client says which room it expects its token to reach.
pub const ROOM_HEADER: &str = "x-c2c-room";
/// The header by which an MCP client asks for new messages as Claude Code channel events.
pub const CHANNEL_HEADER: &str = "x-c2c-channel";
/// The header by which a relay tells the hub its working directory, recorded with the session.
pub const CWD_HEADER: &str = "x-c2c-cwd";

/// How long an MCP session may go without a request before the hub forgets it. rmcp's default
/// (5 minutes) would drop a Claude Code session idle over lunch, and Claude Code does not
/// re-attach its push stream after re-initialising; a session left by a client that vanished
/// still goes in the end.
pub const SESSION_IDLE_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// The hub's own options, after `serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HubArgs {
    /// Serve the bus over HTTP on this address (the hub) instead of MCP over stdio
    /// [default address: 127.0.0.1:7420].
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = DEFAULT_LISTEN)]
    pub listen: Option<String>,

    /// Also accept requests addressed to this host name (or host:port), e.g. the hub's public
    /// name; loopback names and the address listened on (unless 0.0.0.0 or ::) are always
    /// accepted. Repeatable.
    #[arg(long, value_name = "HOST", requires = "listen")]
    pub allow_host: Vec<String>,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", requires_all = ["listen", "tls_key"])]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// What every request of the hub shares.
pub struct Hub {
    /// The database.
    pub db_path: PathBuf,
    /// How long a connection waits for another's write lock.
    pub busy_timeout: Duration,
    /// The largest message body or state value accepted.
    pub max_body_bytes: usize,
    /// The one watcher of the database, shared by every waiting call and push.
    pub wake: Wake,
    /// The connection tokens are looked up on, by the guard and by the page's sign-in.
    auth: Arc<Mutex<rusqlite::Connection>>,
    /// Host names (lowercase, without port) and `host:port` authorities requests may name.
    allowed_hosts: Vec<String>,
    /// Which token opened each MCP session (by `Mcp-Session-Id`): rmcp serves a session's push
    /// stream and its end itself, to whoever names its id, so the guard checks the owner.
    owners: Mutex<std::collections::HashMap<String, i64>>,
    /// rmcp's MCP sessions, for closing those of a revoked token.
    sessions: std::sync::OnceLock<Arc<LocalSessionManager>>,
}

impl Hub {
    /// The largest HTTP request body this hub reads.
    pub fn request_limit(&self) -> usize {
        request_limit(self.max_body_bytes)
    }

    /// A new connection to the database, for one client.
    pub fn connect(&self) -> Result<rusqlite::Connection, String> {
        crate::store::open_with(&self.db_path, self.busy_timeout).map_err(|e| e.to_string())
    }
}

/// The error body every refusal of the hub carries: `{"error": "..."}`.
pub fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    let mut response = json_response(&serde_json::json!({ "error": message.into() }));
    *response.status_mut() = status;
    response
}

/// `value` as a JSON answer.
pub fn json_response(value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The hub's settings, from the command line.
pub struct Settings {
    /// The database.
    pub db_path: PathBuf,
    /// How long a connection waits for another's write lock.
    pub busy_timeout: Duration,
    /// The largest message body or state value accepted.
    pub max_body_bytes: usize,
}

/// Runs the hub until a signal asks it to stop.
pub fn run(settings: Settings, args: &HubArgs) -> Result<(), String> {
    let listen = args.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let addr: SocketAddr = listen.parse().map_err(|_| {
        format!("--listen {listen:?} is not an address: give IP:PORT, e.g. 127.0.0.1:7420 or 0.0.0.0:7420")
    })?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => None,
    };
    // Opened before listening, so that a bad path fails at start rather than at the first
    // request; the connection then serves token look-ups.
    let auth = crate::store::open_with(&settings.db_path, settings.busy_timeout)
        .map_err(|e| e.to_string())?;
    let (listener, bound) = listen_on(addr, "is another hub running there?")?;
    let hub = Arc::new(Hub {
        wake: Wake::new(&settings.db_path),
        db_path: settings.db_path,
        busy_timeout: settings.busy_timeout,
        max_body_bytes: settings.max_body_bytes,
        auth: Arc::new(Mutex::new(auth)),
        allowed_hosts: guard::allowed_hosts(bound, &args.allow_host),
        owners: Mutex::new(Default::default()),
        sessions: Default::default(),
    });
    let page = Arc::new(crate::ui::Ui {
        db_path: hub.db_path.clone(),
        busy_timeout: hub.busy_timeout,
        max_body_bytes: hub.max_body_bytes,
        wake: hub.wake.clone(),
        default_room: crate::config::DEFAULT_ROOM.to_string(),
        access: crate::ui::access::Access::new(
            crate::ui::access::Gate::Tokens(hub.auth.clone()),
            hub.allowed_hosts.clone(),
        )
        .map_err(|e| format!("cannot start the page: {e}"))?,
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    if !bound.ip().is_loopback() && tls.is_none() {
        eprintln!(
            "claude-c2c: warning: listening on {bound} without TLS: tokens and messages cross the \
             network in clear text; give --tls-cert and --tls-key, or put the hub behind a \
             reverse proxy that serves HTTPS"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let router = router(hub.clone(), page, shutdown.child_token());
        tokio::spawn(close_revoked(hub.clone()));
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            crate::cli::serve::shutdown_signal().await;
            eprintln!("claude-c2c: hub stopping (asked to by a signal)");
            stop.cancel();
            stopper.graceful_shutdown(Some(Duration::from_secs(2)));
        });
        // Everything that can fail at start is done before the address is printed: a script
        // that reads it knows the hub is up.
        let tls = match tls {
            Some((cert, key)) => {
                crate::tls::install_provider();
                let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                    .await
                    .map_err(|e| tls_error(&cert, &key, e))?;
                Some(config)
            }
            None => None,
        };
        let app = router.into_make_service();
        let server = axum_server::from_tcp(listener).map_err(|e| e.to_string())?;
        // The address on stdout, once listening: scripts started with `--listen 127.0.0.1:0`
        // read the port from it.
        println!("{scheme}://{bound}/mcp");
        eprintln!(
            "claude-c2c: hub serving {} at {scheme}://{bound}/mcp (the page for people at \
             {scheme}://{bound}/); tokens: claude-c2c token create --room ROOM",
            hub.db_path.display()
        );
        // Nagle's algorithm off: rmcp writes an answer in pieces (the head, the event, the
        // end of the stream), and with it on, the kernel holds each piece after the first
        // until the client's delayed acknowledgement, some 40 ms later.
        let no_delay = axum_server::accept::NoDelayAcceptor::new();
        let served = match tls {
            Some(config) => {
                let acceptor =
                    axum_server::tls_rustls::RustlsAcceptor::new(config).acceptor(no_delay);
                server.acceptor(acceptor).handle(handle).serve(app).await
            }
            None => server.acceptor(no_delay).handle(handle).serve(app).await,
        };
        served.map_err(|e| format!("the hub stopped: {e}"))
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// A non-blocking listener on `addr`, and the address it got (the port, when `addr` asked for
/// any); `hint` says what to check when the address is taken.
pub fn listen_on(
    addr: SocketAddr,
    hint: &str,
) -> Result<(std::net::TcpListener, SocketAddr), String> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen on {addr}: {e} ({hint})"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot read the address listened on: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    Ok((listener, bound))
}

fn tls_error(cert: &Path, key: &Path, e: std::io::Error) -> String {
    format!(
        "cannot use {} and {} for TLS: {e} (give a PEM certificate chain and its PEM private key)",
        cert.display(),
        key.display()
    )
}

/// Ends the MCP sessions of tokens revoked while they were open (a revoke is a write to the
/// database, which the watcher notices): their push streams and waits stop at once, not at
/// their next request.
async fn close_revoked(hub: Arc<Hub>) {
    use rmcp::transport::streamable_http_server::SessionManager;
    let mut waiter = match hub.wake.subscribe() {
        Ok(waiter) => waiter,
        Err(e) => {
            tracing::warn!(error = %e, "revoked tokens' sessions end only at their next request");
            return;
        }
    };
    loop {
        waiter.changed().await;
        let owners: Vec<(String, i64)> = hub
            .owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(session, token)| (session.clone(), *token))
            .collect();
        // Each token once, however many sessions it has open.
        let tokens: std::collections::BTreeSet<i64> = owners.iter().map(|(_, t)| *t).collect();
        if tokens.is_empty() {
            continue;
        }
        // A look-up by key per token, microseconds each: done in place, as the guard's is.
        let dead: std::collections::BTreeSet<i64> = {
            let conn = hub.auth.lock().unwrap_or_else(|p| p.into_inner());
            tokens
                .into_iter()
                .filter(|token| matches!(crate::store::tokens::is_live(&conn, *token), Ok(false)))
                .collect()
        };
        let open = match hub.sessions.get() {
            Some(sessions) => Some(
                sessions
                    .sessions
                    .read()
                    .await
                    .keys()
                    .map(|k| k.to_string())
                    .collect::<std::collections::HashSet<_>>(),
            ),
            None => None,
        };
        let mut revoked = Vec::new();
        {
            let mut owners = hub.owners.lock().unwrap_or_else(|p| p.into_inner());
            // Forget the sessions rmcp has ended meanwhile (closed, or idle too long).
            if let Some(open) = &open {
                owners.retain(|session, _| open.contains(session));
            }
            owners.retain(|session, token| {
                let keep = !dead.contains(token);
                if !keep {
                    revoked.push(session.clone());
                }
                keep
            });
        }
        for session in revoked {
            if let Some(sessions) = hub.sessions.get() {
                let _ = sessions.close_session(&Arc::from(session.as_str())).await;
            }
        }
    }
}

/// The largest HTTP request body the hub reads: room for the largest message body JSON-escaped
/// (most text grows little; control characters sixfold), and never below rmcp's 4 MiB.
pub fn request_limit(max_body_bytes: usize) -> usize {
    max_body_bytes
        .saturating_mul(4)
        .saturating_add(64 << 10)
        .max(4 << 20)
}

/// The hub's routes: MCP at `/mcp`, the JSON API under `/v1`, both behind the guard; the page
/// for people at `/` (let in by a token through its sign-in form); anything else, OAuth
/// discovery included, is 404.
pub fn router(
    hub: Arc<Hub>,
    page: Arc<crate::ui::Ui>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Router {
    let mut sessions = LocalSessionManager::default();
    let mut session_config = SessionConfig::default();
    session_config.keep_alive = Some(SESSION_IDLE_LIMIT);
    sessions.session_config = session_config;
    // The guard checks Host and Origin for every route; rmcp's own Host check would only
    // repeat it for /mcp.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_cancellation_token(shutdown)
        .with_max_request_body_bytes(request_limit(hub.max_body_bytes));
    let for_sessions = hub.clone();
    let sessions = Arc::new(sessions);
    let _ = hub.sessions.set(sessions.clone());
    let mcp = StreamableHttpService::new(
        move || Ok(mcp::HubSession::new(for_sessions.clone())),
        sessions,
        config,
    );
    Router::new()
        .nest_service("/mcp", mcp)
        .merge(api::routes(hub.clone()))
        .route_layer(axum::middleware::from_fn_with_state(hub, guard::guard))
        .merge(crate::ui::routes(page))
        .fallback(|| async {
            error_response(
                StatusCode::NOT_FOUND,
                "not found: the hub serves MCP at /mcp (and no OAuth: authenticate with \
                 Authorization: Bearer TOKEN)",
            )
        })
}
