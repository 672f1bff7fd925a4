//! The command line: with no subcommand, serve MCP over stdio (optionally registering a name at
//! start-up); `gen-spec` writes or checks the generated reference. Logs go to stderr, since
//! stdout belongs to the protocol.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use rmcp::ServiceExt;
use serde_json::json;

use crate::config::{Config, DEFAULT_MAX_BODY_BYTES};
use crate::dispatch::Dispatcher;
use crate::server::Server;
use crate::{spec, store};

/// Exit status for a failure to start (bad database, bad name) or a failed check; a command
/// line that clap rejects exits with 2.
const EXIT_FAILURE: u8 = 1;

/// The command line of `claude-c2c`.
#[derive(Debug, Parser)]
#[command(
    name = "claude-c2c",
    version,
    about = "Local MCP server through which coding-agent sessions hand work to each other by name",
    long_about = "Local MCP server through which coding-agent sessions (Claude Code or any MCP \
client) hand work to each other by name: durable messages and shared key/value state in one \
SQLite file.\n\nWith no subcommand it serves MCP over stdio; an MCP client starts it, e.g. \
`claude mcp add c2c -- claude-c2c --name local`.",
    after_help = "Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for more."
)]
pub struct Cli {
    /// Register under this name at start-up, so the model need not call register_session.
    #[arg(long, env = "C2C_NAME", value_name = "NAME")]
    name: Option<String>,

    /// The SQLite database file [default: ~/.claude/c2c.db].
    #[arg(long, env = "CLAUDE_C2C_DB", value_name = "PATH")]
    db: Option<PathBuf>,

    /// The largest message body or state value accepted, in bytes.
    #[arg(long, env = "C2C_MAX_BODY_BYTES", value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MCP over stdio (what running without a subcommand does).
    Serve,
    /// Write spec/tools.md, spec/tools.json and spec/schema.sql from the code.
    GenSpec {
        /// The directory to write into.
        #[arg(long, default_value = "spec", value_name = "DIR")]
        out: PathBuf,
        /// Only check that the files are up to date; exit 1 naming any that are stale.
        #[arg(long)]
        check: bool,
    },
}

/// Runs the command line and returns the process's exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Some(Command::GenSpec { ref out, check }) => gen_spec(out, check),
        Some(Command::Serve) | None => serve(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("claude-c2c: {message}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

fn gen_spec(out: &std::path::Path, check: bool) -> Result<(), String> {
    if check {
        let stale = spec::stale(out);
        if stale.is_empty() {
            return Ok(());
        }
        return Err(format!(
            "{} out of date in {}: run `{}`",
            stale.join(", "),
            out.display(),
            spec::REGENERATE
        ));
    }
    spec::write(out).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!(
        "claude-c2c: wrote tools.md, tools.json and schema.sql to {}",
        out.display()
    );
    Ok(())
}

fn serve(cli: &Cli) -> Result<(), String> {
    let path = match &cli.db {
        Some(path) => path.clone(),
        None => store::default_path().map_err(|e| e.to_string())?,
    };
    let conn = store::open(&path).map_err(|e| e.to_string())?;
    let mut config = Config::new(path);
    config.max_body_bytes = cli.max_body_bytes;
    let dispatcher = Arc::new(Dispatcher::new(conn, config));
    if let Some(name) = &cli.name {
        let args = json!({ "name": name });
        let args = args.as_object().cloned().unwrap_or_default();
        match dispatcher.call("register_session", args) {
            Ok(Ok(_)) => tracing::info!(%name, "registered"),
            Ok(Err(e)) => {
                return Err(format!(
                    "cannot register as {name:?} (--name / C2C_NAME): {e}"
                ));
            }
            Err(_) => unreachable!("register_session is in the registry"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let running = Server::new(dispatcher)
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| format!("MCP initialisation failed: {e}"))?;
        tokio::select! {
            done = running.waiting() => done.map(|_| ()).map_err(|e| format!("server stopped: {e}")),
            _ = shutdown_signal() => Ok(()),
        }
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
