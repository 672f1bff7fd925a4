//! The command line. With no subcommand, serve MCP over stdio (optionally registering a name
//! at start-up). Every tool of the registry is also a subcommand (`tool_cmd`), for people and
//! scripts; `tail` follows the bus, `sessions` shows who is on it, `init` wires a project for
//! Claude Code and `doctor` checks it, `gen-spec` writes the generated reference. Exit status:
//! 0 done, 1 a tool or the database failed, 2 bad usage. Logs go to stderr, since stdout
//! belongs to the protocol.

mod doctor;
mod hook;
mod init;
mod render;
mod sessions;
mod setup;
mod tail;
mod tool_cmd;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use rmcp::ServiceExt;

use crate::config::{Config, DEFAULT_MAX_BODY_BYTES};
use crate::dispatch::{Dispatcher, Pending};
use crate::registry::{ToolDef, ToolSet};
use crate::server::Server;
use crate::tools::Tools;
use crate::{spec, store};

/// How a command failed, which decides the exit status.
enum Failure {
    /// The command line was wrong (exit 2).
    Usage(String),
    /// A tool, the database or the server failed (exit 1).
    Failed(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Failed(message)
    }
}

/// The options every command shares, and the server's own.
#[derive(Debug, Parser)]
#[command(
    name = "claude-c2c",
    version,
    about = "Local MCP server through which coding-agent sessions hand work to each other by name",
    long_about = "Local MCP server through which coding-agent sessions (Claude Code or any MCP \
client) hand work to each other by name: durable messages and shared key/value state in one \
SQLite file.\n\nWith no subcommand it serves MCP over stdio; an MCP client starts it, e.g. \
`claude mcp add c2c -- claude-c2c --name local`. Every tool is also a subcommand for people and \
scripts, e.g. `claude-c2c send-message --as ci --to local --body \"deploy done\"`.",
    after_help = "Exit status: 0 done, 1 a tool or the database failed, 2 bad usage.\n\
Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for more."
)]
pub struct Cli {
    /// Register under this name at start-up, so the model need not call register_session.
    #[arg(long, env = "C2C_NAME", value_name = "NAME")]
    name: Option<String>,

    /// Push each new message to the client as a Claude Code channel event (start Claude Code
    /// with `--dangerously-load-development-channels server:<name>` so that it listens).
    #[arg(long, env = "C2C_CHANNEL")]
    channel: bool,

    /// The SQLite database file [default: ~/.claude/c2c.db].
    #[arg(long, env = "CLAUDE_C2C_DB", value_name = "PATH", global = true)]
    db: Option<PathBuf>,

    /// The largest message body or state value accepted, in bytes.
    #[arg(long, env = "C2C_MAX_BODY_BYTES", value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES, global = true)]
    max_body_bytes: usize,

    /// How long to wait for another process's lock on the database, in milliseconds.
    #[arg(long, env = "C2C_BUSY_TIMEOUT_MS", value_name = "MS", default_value_t = store::BUSY_TIMEOUT.as_millis() as u64, global = true)]
    busy_timeout_ms: u64,
}

/// The options of `gen-spec`.
#[derive(Debug, Args)]
struct GenSpecArgs {
    /// The directory to write into.
    #[arg(long, default_value = "spec", value_name = "DIR")]
    out: PathBuf,
    /// Only check that the files are up to date; exit 1 naming any that are stale.
    #[arg(long)]
    check: bool,
}

/// The options of `sessions`.
#[derive(Debug, Args)]
struct SessionsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn command() -> clap::Command {
    let tools = <Tools as ToolSet>::TOOLS;
    Cli::command()
        .subcommand(
            clap::Command::new("serve")
                .about("Serve MCP over stdio (what running without a subcommand does)"),
        )
        // The `about` comes after `augment_*`, which would put the options struct's own doc
        // comment in its place.
        .subcommand(
            tail::TailArgs::augment_args(clap::Command::new("tail")).about(
                "Follow the bus: print each message as it is sent, until interrupted (reads only)",
            ),
        )
        .subcommand(
            SessionsArgs::augment_args(clap::Command::new("sessions"))
                .about("Show live sessions, how long since each was seen, and their unread counts"),
        )
        .subcommand(
            init::InitArgs::augment_args(clap::Command::new("init"))
                .about("Wire this project for Claude Code: the MCP server entry and the hooks"),
        )
        .subcommand(
            doctor::DoctorArgs::augment_args(clap::Command::new("doctor"))
                .about("Check the installation, configuration and database, and say how to fix each problem"),
        )
        .subcommand(
            hook::Hook::augment_subcommands(clap::Command::new("hook"))
                .about("Commands for Claude Code hooks: hand the session's unread messages to Claude Code")
                .subcommand_required(true),
        )
        .subcommand(
            GenSpecArgs::augment_args(clap::Command::new("gen-spec"))
                .about("Write spec/tools.md, spec/tools.json and spec/schema.sql from the code"),
        )
        .subcommands(tools.iter().map(tool_cmd::command))
}

/// Runs the command line and returns the process's exit status.
pub fn main() -> ExitCode {
    let matches = match command().try_get_matches() {
        Ok(matches) => matches,
        // A hook that exits 2 on UserPromptSubmit makes Claude Code drop the prompt: a hook
        // command it cannot parse (a typo, an option this version lacks) must not do that.
        Err(e) if hook::is_hook_command(std::env::args().skip(1)) && e.use_stderr() => {
            eprintln!("claude-c2c hook: {e}continuing without messages");
            return ExitCode::SUCCESS;
        }
        Err(e) => e.exit(),
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logging();
    let result = match matches.subcommand() {
        None | Some(("serve", _)) => serve(&cli).map_err(Failure::from),
        Some(("gen-spec", m)) => {
            gen_spec(&GenSpecArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit()))
        }
        Some(("hook", m)) => {
            let hook = hook::Hook::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            let timeout = std::time::Duration::from_millis(cli.busy_timeout_ms);
            return hook::run(&hook, cli.name.as_deref(), cli.db.as_deref(), timeout);
        }
        Some(("tail", m)) => {
            let args = tail::TailArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            open(&cli, false).and_then(|d| {
                let path = d.config().db_path.clone();
                d.with_db(|db| tail::run(db, &path, &args, render::use_color()))
                    .map_err(Failure::from)
            })
        }
        Some(("sessions", m)) => {
            let args = SessionsArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            open(&cli, false)
                .and_then(|d| {
                    d.with_db(|db| sessions::run(db, args.json, render::use_color()))
                        .map_err(Failure::from)
                })
                .map(|text| print!("{text}"))
        }
        Some(("init", m)) => {
            let args = init::InitArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            init::run(&args, cli.db.as_deref())
                .map(|text| print!("{text}"))
                .map_err(Failure::from)
        }
        Some(("doctor", m)) => {
            let args = doctor::DoctorArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            let (text, ok) = doctor::run(&args, cli.db.as_deref());
            print!("{text}");
            return if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
        }
        Some((name, m)) => match <Tools as ToolSet>::TOOLS
            .iter()
            .find(|t| tool_cmd::command_name(t) == name)
        {
            Some(tool) => run_tool(&cli, tool, m),
            None => unreachable!("clap only accepts the subcommands it was given"),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("claude-c2c: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("claude-c2c: {message}");
            ExitCode::from(1)
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

fn gen_spec(args: &GenSpecArgs) -> Result<(), Failure> {
    if args.check {
        let stale = spec::stale(&args.out);
        if stale.is_empty() {
            return Ok(());
        }
        return Err(Failure::Failed(format!(
            "{} out of date: run `{}`",
            paths(&stale),
            spec::REGENERATE
        )));
    }
    let written =
        spec::write(&args.out).map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    eprintln!("claude-c2c: wrote {}", paths(&written));
    Ok(())
}

fn paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

/// Opens the database and a dispatcher over it, as configured: for the MCP server when
/// `serving`, else for one command (which is no Claude Code session's server).
fn open(cli: &Cli, serving: bool) -> Result<Dispatcher, Failure> {
    let path = match &cli.db {
        Some(path) => path.clone(),
        None => store::default_path().map_err(|e| e.to_string())?,
    };
    let timeout = std::time::Duration::from_millis(cli.busy_timeout_ms);
    let conn = store::open_with(&path, timeout).map_err(|e| e.to_string())?;
    let mut config = Config::new(path);
    config.max_body_bytes = cli.max_body_bytes;
    config.channel = cli.channel && serving;
    if serving {
        config.name = cli.name.clone();
        config.process = Some(crate::process::ProcessInfo::current());
    } else {
        config.claude_session = None;
    }
    Ok(Dispatcher::new(conn, config))
}

fn run_tool(cli: &Cli, tool: &'static ToolDef, matches: &ArgMatches) -> Result<(), Failure> {
    let args = tool_cmd::arguments(tool, matches).map_err(Failure::Usage)?;
    let mut dispatcher = open(cli, false)?;
    if let Some(name) = matches.get_one::<String>(tool_cmd::AS) {
        dispatcher
            .visit(name)
            .map_err(|e| format!("cannot act as {name:?}: {e}"))?;
    }
    let value = dispatcher
        .call_tool(Pending::new(tool, args))
        .map_err(|e| format!("{}: {e}", tool_cmd::command_name(tool)))?;
    if matches.get_flag(tool_cmd::JSON) {
        println!("{value}");
    } else {
        print!("{}", render::render(&value, render::use_color()));
    }
    Ok(())
}

fn serve(cli: &Cli) -> Result<(), String> {
    let dispatcher = match open(cli, true) {
        Ok(d) => Arc::new(d),
        Err(Failure::Usage(m) | Failure::Failed(m)) => return Err(m),
    };
    if let Some(name) = &cli.name {
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let outcome = runtime.block_on(async move {
        let guarded = crate::transport::stdio();
        let running = Server::new(dispatcher)
            .serve((guarded.reader, guarded.writer))
            .await
            .map_err(|e| format!("MCP initialisation failed: {e}"))?;
        let outcome = tokio::select! {
            done = running.waiting() => done.map(|_| ()).map_err(|e| format!("server stopped: {e}")),
            _ = shutdown_signal() => Ok(()),
        };
        // Let the last responses reach stdout before the process ends.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), guarded.output).await;
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
#[cfg(unix)]
async fn shutdown_signal() {
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
#[cfg(windows)]
async fn shutdown_signal() {
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        super::command().debug_assert();
    }

    #[test]
    fn every_subcommand_has_its_own_one_line_summary() {
        let cmd = super::command();
        for sub in cmd.get_subcommands() {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            assert!(!about.is_empty(), "{}", sub.get_name());
            assert!(
                !about.starts_with("The options of"),
                "{}: {about}",
                sub.get_name()
            );
            assert!(!about.ends_with("(e.g"), "{}: {about}", sub.get_name());
        }
    }
}
