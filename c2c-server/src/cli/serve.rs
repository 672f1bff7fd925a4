//! `claude-c2c` and `claude-c2c serve`: the MCP server over stdio, with the options both
//! forms take (`--name`, `--channel`). It runs until its client closes stdin or a signal asks
//! it to stop; a person who starts it on a terminal is told what it is on stderr.

use std::sync::Arc;

use clap::Args;
use rmcp::ServiceExt;

use crate::dispatch::Dispatcher;
use crate::server::Server;

/// The server's own options, taken before a subcommand or after `serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// Register under this name at start-up, so the model need not call register_session.
    #[arg(long, env = "C2C_NAME", value_name = "NAME")]
    pub name: Option<String>,

    /// Push each new message to the client as a Claude Code channel event (start Claude Code
    /// with `--dangerously-load-development-channels server:<name>` so that it listens).
    #[arg(long, env = "C2C_CHANNEL")]
    pub channel: bool,
}

impl ServerArgs {
    /// These options, each falling back to `outer`'s (given before the subcommand).
    pub fn or(self, outer: &ServerArgs) -> ServerArgs {
        ServerArgs {
            name: self.name.or_else(|| outer.name.clone()),
            channel: self.channel || outer.channel,
        }
    }
}

/// What a person who starts the server on a terminal reads on stderr.
pub const TERMINAL_NOTE: &str = "claude-c2c is an MCP server that speaks JSON-RPC over stdin \
and stdout; an MCP client starts it (see `claude-c2c init` to wire a project for Claude Code). \
For the command line, see `claude-c2c --help`. Waiting for a client on this terminal; press \
Ctrl-C to stop.";

/// Serves MCP on stdin/stdout with `dispatcher` until the client leaves or a signal comes.
pub fn run(dispatcher: Dispatcher) -> Result<(), String> {
    use std::io::IsTerminal;
    // Keep serving: a person typing JSON-RPC by hand is a client too, and the note is all
    // that a person who meant something else needs.
    if std::io::stdin().is_terminal() {
        eprintln!("{TERMINAL_NOTE}");
    }
    let dispatcher = Arc::new(dispatcher);
    if let Some(name) = &dispatcher.config().name {
        match dispatcher.claim_at_start() {
            Ok(true) => tracing::info!(%name, "registered"),
            Ok(false) => {}
            Err(e) => {
                return Err(format!(
                    "cannot register as {name:?} (--name / C2C_NAME): {e}"
                ));
            }
        }
    }
    // Start-up (migrating the database, building the command line and the tool list) leaves
    // freed heap behind that glibc keeps for reuse; a server that idles for hours should not.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    // One thread: a stdio server has one client, whose requests mostly come one at a time;
    // handing each between worker threads cost more than the calls themselves.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let outcome = runtime.block_on(async move {
        let (transport, closed) = crate::transport::stdio();
        let running = Server::new(dispatcher)
            .serve(transport)
            .await
            .map_err(|e| format!("MCP initialisation failed: {e}"))?;
        let outcome = tokio::select! {
            done = running.waiting() => done.map(|_| ()).map_err(|e| format!("server stopped: {e}")),
            _ = shutdown_signal() => Ok(()),
        };
        // Let the last responses reach stdout before the process ends.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), closed).await;
        outcome
    });
    // Reading stdin blocks a thread until the client writes or closes it, and dropping the
    // runtime would wait for that thread: after a signal the server would live on until then.
    runtime.shutdown_background();
    outcome
}

// What asks the server to stop besides its client closing stdin (which ends `waiting()`, and is
// how Claude Code stops its servers on every platform): SIGTERM or Ctrl-C on Unix. A listener
// that cannot be set up never fires.
/// Waits for a signal that asks the process to stop.
#[cfg(unix)]
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => s.recv().await,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = ctrl_c() => {}
    }
}

// Windows has no SIGTERM: a console sends Ctrl-C or Ctrl-Break, a close event when its window
// is closed, and a shutdown event when the system shuts down.
/// Waits for a signal that asks the process to stop.
#[cfg(windows)]
pub(crate) async fn shutdown_signal() {
    use std::future::pending;
    use tokio::signal::windows;
    let ctrl_break = async {
        match windows::ctrl_break() {
            Ok(mut s) => s.recv().await,
            Err(_) => pending().await,
        }
    };
    let close = async {
        match windows::ctrl_close() {
            Ok(mut s) => s.recv().await,
            Err(_) => pending().await,
        }
    };
    let shutdown = async {
        match windows::ctrl_shutdown() {
            Ok(mut s) => s.recv().await,
            Err(_) => pending().await,
        }
    };
    tokio::select! {
        _ = ctrl_c() => {}
        _ = ctrl_break => {}
        _ = close => {}
        _ = shutdown => {}
    }
}

async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
