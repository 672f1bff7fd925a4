//! The command line. With no subcommand (or `serve`), serve MCP over stdio (optionally
//! registering a name at start-up). Every tool of the registry is also a subcommand
//! (`tool_cmd`), for people and scripts; `tail` follows the bus, `sessions` shows who is on it,
//! `rooms` lists the rooms, `init` wires a project for Claude Code and `doctor` checks it; the
//! hidden `gen-spec` writes the generated reference. Exit status: 0 done, 1 a tool or the
//! database failed, 2 bad usage. Logs go to stderr, since stdout belongs to the protocol.

mod doctor;
mod gen_spec;
pub(crate) mod hook;
mod init;
mod json_text;
mod render;
pub(crate) mod serve;
mod sessions;
mod setup;
mod tail;
mod token;
mod tool_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{Config, DEFAULT_MAX_BODY_BYTES, DEFAULT_ROOM};
use crate::dispatch::{Dispatcher, Pending};
use crate::registry::{ToolDef, ToolSet};
use crate::remote::client::{HubClient, block_on};
use crate::store;
use crate::tools::Tools;

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
    #[command(flatten)]
    server: serve::ServerArgs,

    // The environment variables below are read by `Settings`, not by clap: clap counts a value
    // from the environment as given, and would print `--db <PATH>` in the usage line of every
    // error as if it were required.
    /// The SQLite database file [env: CLAUDE_C2C_DB] [default: ~/.claude/c2c.db].
    #[arg(
        long,
        value_name = "PATH",
        global = true,
        help_heading = "Global options"
    )]
    db: Option<PathBuf>,

    /// The largest message body or state value accepted, in bytes [env: C2C_MAX_BODY_BYTES]
    /// [default: 1048576].
    #[arg(
        long,
        value_name = "BYTES",
        global = true,
        help_heading = "Global options"
    )]
    max_body_bytes: Option<usize>,

    /// How long to wait for another process's lock on the database, in milliseconds
    /// [env: C2C_BUSY_TIMEOUT_MS] [default: 10000].
    #[arg(
        long,
        value_name = "MS",
        global = true,
        help_heading = "Global options"
    )]
    busy_timeout_ms: Option<u64>,

    /// The room: sessions see only the names, messages and state of their own room
    /// [env: C2C_ROOM] [default: default].
    #[arg(
        long,
        value_name = "ROOM",
        global = true,
        help_heading = "Global options"
    )]
    room: Option<String>,

    /// Use the hub at this URL (e.g. https://hub.example:7420) instead of a local database:
    /// the server becomes a relay, and every command and hook talks to the hub. The token is
    /// read from C2C_TOKEN [env: C2C_HUB].
    #[arg(
        long,
        value_name = "URL",
        global = true,
        help_heading = "Global options"
    )]
    hub: Option<String>,

    /// Trust only this PEM certificate (or CA) for the hub's HTTPS, e.g. a self-signed one
    /// [env: C2C_HUB_CA].
    #[arg(
        long,
        value_name = "PEM",
        global = true,
        help_heading = "Global options"
    )]
    hub_ca: Option<PathBuf>,
}

/// The global options after the environment has filled in what the command line left out.
struct Settings {
    /// `--db` or `CLAUDE_C2C_DB`; `None` for the default path.
    db: Option<PathBuf>,
    max_body_bytes: usize,
    busy_timeout: std::time::Duration,
    /// `--room` or `C2C_ROOM`, checked; `None` for the default room.
    room: Option<String>,
    /// `--hub` or `C2C_HUB`: the hub to talk to instead of a database.
    hub: Option<String>,
    /// `--hub-ca` or `C2C_HUB_CA`.
    hub_ca: Option<PathBuf>,
}

impl Settings {
    /// The room commands act in.
    fn room(&self) -> &str {
        self.room.as_deref().unwrap_or(DEFAULT_ROOM)
    }

    /// Where the hub is, when commands talk to one.
    fn hub_target(&self) -> Result<Option<crate::remote::HubTarget>, Failure> {
        let Some(url) = &self.hub else {
            return Ok(None);
        };
        crate::remote::HubTarget::new(url, self.hub_ca.as_deref(), self.room.as_deref())
            .map(Some)
            .map_err(Failure::Usage)
    }

    /// A client of the hub, when commands talk to one.
    fn hub_client(&self) -> Result<Option<HubClient>, Failure> {
        match self.hub_target()? {
            Some(target) => HubClient::new(target).map(Some).map_err(Failure::Usage),
            None => Ok(None),
        }
    }
}

impl Cli {
    fn settings(&self) -> Result<Settings, Failure> {
        let db = self.db.clone().or_else(|| {
            std::env::var_os("CLAUDE_C2C_DB")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        });
        let max_body_bytes = match self.max_body_bytes {
            Some(n) => n,
            None => from_env("C2C_MAX_BODY_BYTES", "a number of bytes")?
                .unwrap_or(DEFAULT_MAX_BODY_BYTES),
        };
        let busy_timeout_ms = match self.busy_timeout_ms {
            Some(n) => n,
            None => from_env("C2C_BUSY_TIMEOUT_MS", "a number of milliseconds")?
                .unwrap_or(store::BUSY_TIMEOUT.as_millis() as u64),
        };
        let room = match &self.room {
            Some(room) => Some(room.clone()),
            // Unset or blank: the default room. Not text: refused, not read as unset (which
            // would put the session in the default room, with other projects' mail).
            None => match std::env::var("C2C_ROOM") {
                Ok(room) => Some(room).filter(|r| !r.trim().is_empty()),
                Err(std::env::VarError::NotPresent) => None,
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(Failure::Usage(
                        "C2C_ROOM is not valid UTF-8: fix or unset it (a room is named like a \
                         session)"
                            .to_string(),
                    ));
                }
            },
        };
        if let Some(room) = &room {
            let from = if self.room.is_some() {
                "--room"
            } else {
                "C2C_ROOM"
            };
            if let Err(e) = crate::tools::check_name(from, room, false) {
                let problem = match e {
                    crate::error::ToolError::InvalidArgument { problem, .. } => problem,
                    other => other.to_string(),
                };
                return Err(Failure::Usage(format!(
                    "{from} {room:?} is not a room name: it {problem}; a room is named like a \
                     session: 1 to 64 characters, no control characters, no leading or trailing \
                     spaces, and not \"*\""
                )));
            }
        }
        let env_text = |var: &str| {
            std::env::var(var)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let hub = self.hub.clone().or_else(|| env_text("C2C_HUB"));
        let hub_ca = self
            .hub_ca
            .clone()
            .or_else(|| env_text("C2C_HUB_CA").map(PathBuf::from));
        if hub.is_some() && self.db.is_some() {
            return Err(Failure::Usage(
                "--db and --hub exclude each other: with a hub, the database is the hub's".into(),
            ));
        }
        Ok(Settings {
            db,
            max_body_bytes,
            busy_timeout: std::time::Duration::from_millis(busy_timeout_ms),
            room,
            hub,
            hub_ca,
        })
    }
}

/// The environment variable `var` parsed as a number; `None` when unset or empty.
fn from_env<T: std::str::FromStr>(var: &str, what: &str) -> Result<Option<T>, Failure> {
    match std::env::var(var) {
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            Failure::Usage(format!(
                "{var} must be {what}, not {text:?}: fix or unset it"
            ))
        }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Failure::Usage(format!(
            "{var} must be {what}: fix or unset it"
        ))),
    }
}

/// The options of `sessions`.
#[derive(Debug, Args)]
struct SessionsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Show the sessions of every room, not only of --room.
    #[arg(long)]
    all_rooms: bool,
}

/// The options of `rooms`.
#[derive(Debug, Args)]
struct RoomsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn command() -> clap::Command {
    let tools = <Tools as ToolSet>::TOOLS;
    Cli::command()
        .subcommand(
            crate::hub::HubArgs::augment_args(serve::ServerArgs::augment_args(
                clap::Command::new("serve"),
            ))
            .about(
                "Serve MCP over stdio (what running without a subcommand does), or over HTTP \
                 as a hub for other machines (--listen)",
            ),
        )
        .subcommand(
            token::TokenCommand::augment_subcommands(clap::Command::new("token"))
                .about("Make, list and revoke the tokens clients of the hub (serve --listen) use")
                .subcommand_required(true),
        )
        // The `about` comes after `augment_*`, which would put the options struct's own doc
        // comment in its place.
        .subcommand(
            tail::TailArgs::augment_args(clap::Command::new("tail")).about(
                "Follow the bus: print each message as it is sent, until interrupted (reads only)",
            ),
        )
        .subcommand(
            SessionsArgs::augment_args(clap::Command::new("sessions")).about(
                "Show the room's live sessions, how long since each was seen, and their unread counts",
            ),
        )
        .subcommand(
            RoomsArgs::augment_args(clap::Command::new("rooms"))
                .about("List the rooms with their live sessions and unread counts"),
        )
        .subcommand(
            crate::ui::UiArgs::augment_args(clap::Command::new("ui")).about(
                "Serve a live page of the bus for people (on 127.0.0.1): the room's sessions, \
                 threads with receipts and state, and a form to send; prints its address",
            ),
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
        // For developers of claude-c2c, not its users.
        .subcommand(
            gen_spec::GenSpecArgs::augment_args(clap::Command::new("gen-spec"))
                .about("Write spec/tools.md, spec/tools.json and spec/schema.sql from the code")
                .hide(true),
        )
        .subcommands(tools.iter().map(tool_cmd::command))
}

/// Runs the command line and returns the process's exit status.
pub fn main() -> ExitCode {
    let mut cli = command();
    let matches = match cli.try_get_matches_from_mut(std::env::args_os()) {
        Ok(matches) => matches,
        // A hook that exits 2 on UserPromptSubmit makes Claude Code drop the prompt: a hook
        // command it cannot parse (a typo, an option this version lacks) must not do that.
        Err(e) if hook::is_hook_command(&cli, std::env::args().skip(1)) && e.use_stderr() => {
            eprintln!("claude-c2c hook: {e}continuing without messages");
            return ExitCode::SUCCESS;
        }
        Err(e) => e.exit(),
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logging();
    let settings = match cli.settings() {
        Ok(settings) => settings,
        Err(Failure::Usage(m) | Failure::Failed(m))
            if matches.subcommand_name() == Some("hook") =>
        {
            eprintln!("claude-c2c hook: {m}; continuing without messages");
            return ExitCode::SUCCESS;
        }
        Err(failure) => return exit(Err(failure)),
    };
    if settings.hub.is_some() {
        return exit(remote(&settings, &cli, &matches));
    }
    let result = match matches.subcommand() {
        None => serve(&settings, cli.server.clone()),
        Some(("serve", m)) => {
            let own = serve::ServerArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            let hub = crate::hub::HubArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            if hub.listen.is_some() {
                serve_hub(&settings, own.or(&cli.server), &hub)
            } else {
                serve(&settings, own.or(&cli.server))
            }
        }
        Some(("token", m)) => {
            let command = token::TokenCommand::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            open(&settings, None)
                .and_then(|d| {
                    d.with_db(|db| token::run(db, settings.room(), &command, render::use_color()))
                        .map_err(Failure::from)
                })
                .map(|text| print!("{text}"))
        }
        Some(("gen-spec", m)) => {
            gen_spec::run(&gen_spec::GenSpecArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit()))
        }
        Some(("hook", m)) => {
            let hook = hook::Hook::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            let (name, db) = (cli.server.name.as_deref(), settings.db.as_deref());
            return hook::run(
                &hook,
                name,
                settings.room.as_deref(),
                db,
                settings.busy_timeout,
            );
        }
        Some(("tail", m)) => {
            let args = tail::TailArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            open(&settings, None).and_then(|d| {
                let path = d.config().db_path.clone();
                let room = (!args.all_rooms).then(|| settings.room());
                d.with_db(|db| tail::run(db, &path, room, &args, render::use_color()))
                    .map_err(Failure::from)
            })
        }
        Some(("sessions", m)) => {
            let args = SessionsArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            let room = (!args.all_rooms).then(|| settings.room());
            open(&settings, None)
                .and_then(|d| {
                    d.with_db(|db| sessions::run(db, room, args.json, render::use_color()))
                        .map_err(Failure::from)
                })
                .map(|text| print!("{text}"))
        }
        Some(("ui", m)) => {
            let args = crate::ui::UiArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            serve_page(&settings, &args)
        }
        Some(("rooms", m)) => {
            let args = RoomsArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            open(&settings, None)
                .and_then(|d| {
                    d.with_db(|db| sessions::rooms(db, args.json, render::use_color()))
                        .map_err(Failure::from)
                })
                .map(|text| print!("{text}"))
        }
        Some(("init", m)) => {
            let args = init::InitArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            init::run(
                &args,
                settings.room.as_deref(),
                settings.db.as_deref(),
                None,
            )
            .map(|text| print!("{text}"))
            .map_err(Failure::from)
        }
        Some(("doctor", m)) => {
            let args = doctor::DoctorArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            let (text, ok) = doctor::run(
                &args,
                settings.room.as_deref(),
                settings.db.as_deref(),
                None,
            );
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
            Some(tool) => run_tool(&settings, tool, m),
            None => unreachable!("clap only accepts the subcommands it was given"),
        },
    };
    exit(result)
}

/// Runs the command `matches` against the hub `settings` names instead of a database.
fn remote(settings: &Settings, cli: &Cli, matches: &ArgMatches) -> Result<(), Failure> {
    let all_rooms = |m: &ArgMatches| {
        if m.get_flag("all_rooms") {
            Err(Failure::Usage(
                "--all-rooms: a hub token reaches one room, so there is only the one".into(),
            ))
        } else {
            Ok(())
        }
    };
    match matches.subcommand() {
        None | Some(("serve", _)) => {
            let own = match matches.subcommand() {
                Some((_, m)) => {
                    if crate::hub::HubArgs::from_arg_matches(m).is_ok_and(|h| h.listen.is_some()) {
                        return Err(Failure::Usage(
                            "--hub is for the clients of a hub; `serve --listen` is the hub \
                             itself: unset C2C_HUB to run one"
                                .into(),
                        ));
                    }
                    serve::ServerArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit())
                }
                None => serve::ServerArgs::default(),
            }
            .or(&cli.server);
            let target = settings.hub_target()?.expect("a hub is set");
            crate::remote::relay::run(crate::remote::relay::RelaySettings {
                target,
                name: own.name,
                channel: own.channel,
            })
            .map_err(Failure::from)
        }
        Some(("hook", m)) => {
            let hook = hook::Hook::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            match settings.hub_client() {
                Ok(client) => {
                    let client = client.expect("a hub is set");
                    let code = hook::run_remote(&hook, cli.server.name.as_deref(), &client);
                    if code != std::process::ExitCode::SUCCESS {
                        // Exit 2 hands the messages to Claude Code; it is not a failure.
                        std::process::exit(2);
                    }
                    Ok(())
                }
                Err(Failure::Usage(m) | Failure::Failed(m)) => {
                    eprintln!("claude-c2c hook: {m}; continuing without messages");
                    Ok(())
                }
            }
        }
        Some(("tail", m)) => {
            all_rooms(m)?;
            let args = tail::TailArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            let client = settings.hub_client()?.expect("a hub is set");
            let room = block_on(client.overview())??.room;
            tail::run_remote(&client, &room, &args, render::use_color()).map_err(Failure::from)
        }
        Some(("sessions", m)) => {
            all_rooms(m)?;
            let args = SessionsArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            let client = settings.hub_client()?.expect("a hub is set");
            let answer = block_on(client.overview())??;
            let text = sessions::show(
                &answer.sessions,
                Some(&answer.room),
                args.json,
                render::use_color(),
            );
            print!("{text}");
            Ok(())
        }
        Some(("rooms", m)) => {
            let args = RoomsArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            let client = settings.hub_client()?.expect("a hub is set");
            let answer = block_on(client.overview())??;
            let text = sessions::show_rooms(
                answer.rooms,
                &answer.sessions,
                args.json,
                render::use_color(),
            );
            print!("{text}");
            Ok(())
        }
        Some(("ui", _)) => {
            let base = settings.hub_target()?.expect("a hub is set").base;
            Err(Failure::Usage(format!(
                "the hub serves the page itself: open {base}/ in a browser and sign in with a \
                 token (`claude-c2c ui` without --hub or C2C_HUB serves this machine's database)"
            )))
        }
        Some(("token", _)) => Err(Failure::Usage(
            "tokens are made on the hub's own machine (`claude-c2c token create` there, without \
             --hub)"
                .into(),
        )),
        Some(("init", m)) => {
            let args = init::InitArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            let hub = settings
                .hub
                .as_deref()
                .map(|h| (h, settings.hub_ca.as_deref()));
            init::run(&args, settings.room.as_deref(), None, hub)
                .map(|text| print!("{text}"))
                .map_err(Failure::from)
        }
        Some(("doctor", m)) => {
            let args = doctor::DoctorArgs::from_arg_matches(m).unwrap_or_else(|e| e.exit());
            let hub = settings
                .hub
                .as_deref()
                .map(|h| (h, settings.hub_ca.as_deref()));
            let (text, ok) = doctor::run(&args, settings.room.as_deref(), None, hub);
            print!("{text}");
            if ok {
                Ok(())
            } else {
                Err(Failure::Failed("some checks failed (see above)".into()))
            }
        }
        Some(("gen-spec", _)) => Err(Failure::Usage(
            "this command works on a local installation: run it without --hub / C2C_HUB".into(),
        )),
        Some((name, m)) => {
            let Some(tool) = <Tools as ToolSet>::TOOLS
                .iter()
                .find(|t| tool_cmd::command_name(t) == name)
            else {
                unreachable!("clap only accepts the subcommands it was given")
            };
            let args = tool_cmd::arguments(tool, m).map_err(Failure::Usage)?;
            let client = settings.hub_client()?.expect("a hub is set");
            let act_as = m.get_one::<String>(tool_cmd::AS).map(String::as_str);
            let value = block_on(client.call(tool, act_as, args))??
                .map_err(|e| format!("{}: {e}", tool_cmd::command_name(tool)))?;
            print_value(&value, m);
            Ok(())
        }
    }
}

fn print_value(value: &serde_json::Value, matches: &ArgMatches) {
    if matches.get_flag(tool_cmd::JSON) {
        println!("{value}");
    } else {
        print!("{}", render::render(value, render::use_color()));
    }
}

/// Reports a failure on stderr and turns the outcome into the exit status.
fn exit(result: Result<(), Failure>) -> ExitCode {
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

// `RUST_LOG` takes a level (`debug`) or levels by target (`rmcp=debug,warn`); anything else,
// or nothing, means warnings only. (tracing-subscriber's `EnvFilter` would also take span and
// field filters, but brings a regex engine, a quarter of a megabyte in every process.)
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| {
            directives
                .parse::<tracing_subscriber::filter::Targets>()
                .ok()
        })
        .unwrap_or_else(|| {
            // rmcp warns of every error response it sends, such as the answer to Claude Code's
            // probe for a protocol version newer than ours at each connect: noise in a hub's log.
            tracing_subscriber::filter::Targets::new()
                .with_default(tracing_subscriber::filter::LevelFilter::WARN)
                .with_target(
                    "rmcp::service",
                    tracing_subscriber::filter::LevelFilter::ERROR,
                )
        });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false),
        )
        .with(filter)
        .init();
}

/// Opens the database and a dispatcher over it, as configured: for the MCP server when
/// `server` options are given, else for one command (which is no Claude Code session's server).
fn open(settings: &Settings, server: Option<serve::ServerArgs>) -> Result<Dispatcher, Failure> {
    let path = db_path(settings)?;
    let conn = store::open_with(&path, settings.busy_timeout).map_err(|e| e.to_string())?;
    let mut config = Config::new(path);
    config.max_body_bytes = settings.max_body_bytes;
    config.room = settings.room().to_string();
    match server {
        Some(server) => {
            config.channel = server.channel;
            config.name = server.name;
            config.process = Some(crate::process::ProcessInfo::current());
        }
        None => config.claude_session = None,
    }
    Ok(Dispatcher::new(conn, config))
}

fn serve(settings: &Settings, server: serve::ServerArgs) -> Result<(), Failure> {
    serve::run(open(settings, Some(server))?).map_err(Failure::from)
}

/// `claude-c2c ui`: the page for the local database.
fn serve_page(settings: &Settings, args: &crate::ui::UiArgs) -> Result<(), Failure> {
    crate::ui::run(
        crate::ui::Settings {
            db_path: db_path(settings)?,
            busy_timeout: settings.busy_timeout,
            max_body_bytes: settings.max_body_bytes,
            room: settings.room().to_string(),
        },
        args,
    )
    .map_err(Failure::from)
}

/// The database `settings` name: `--db`, `CLAUDE_C2C_DB` or the default.
fn db_path(settings: &Settings) -> Result<PathBuf, Failure> {
    match &settings.db {
        Some(path) => Ok(path.clone()),
        None => Ok(store::default_path().map_err(|e| e.to_string())?),
    }
}

fn serve_hub(
    settings: &Settings,
    server: serve::ServerArgs,
    hub: &crate::hub::HubArgs,
) -> Result<(), Failure> {
    if server.name.is_some() || server.channel || settings.room.is_some() {
        return Err(Failure::Usage(
            "--name, --channel and --room are for a session's server, not the hub: the hub \
             serves every room, and each client's token chooses its room (and name); unset \
             C2C_NAME, C2C_CHANNEL and C2C_ROOM for serve --listen"
                .to_string(),
        ));
    }
    crate::hub::run(
        crate::hub::Settings {
            db_path: db_path(settings)?,
            busy_timeout: settings.busy_timeout,
            max_body_bytes: settings.max_body_bytes,
        },
        hub,
    )
    .map_err(Failure::from)
}

fn run_tool(
    settings: &Settings,
    tool: &'static ToolDef,
    matches: &ArgMatches,
) -> Result<(), Failure> {
    let args = tool_cmd::arguments(tool, matches).map_err(Failure::Usage)?;
    let mut dispatcher = open(settings, None)?;
    if let Some(name) = matches.get_one::<String>(tool_cmd::AS) {
        dispatcher
            .visit_for(name, tool)
            .map_err(|e| format!("{}: {e}", tool_cmd::command_name(tool)))?;
    }
    let value = dispatcher
        .call_tool(Pending::new(tool, args))
        .map_err(|e| format!("{}: {e}", tool_cmd::command_name(tool)))?;
    print_value(&value, matches);
    Ok(())
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
