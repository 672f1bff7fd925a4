//! `claude-c2c doctor`: checks the things that go wrong in practice, each with how to fix it:
//! the binary on the PATH, Claude Code, the MCP server entry, the hooks (present, runnable, on
//! the server's database and name), the database (permissions, schema version, integrity), the
//! live sessions and the kernel's write notices. It changes nothing: the database is opened
//! without creating or migrating it. Exit 0 when no check failed (warnings allowed), else 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::setup::{self, HOOK_EVENTS, PROGRAM};
use crate::config::DEFAULT_ROOM;
use crate::store::{self, migrate, sessions};

/// The options of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print `{"ok": ..., "checks": [...]}` instead of lines.
    #[arg(long)]
    json: bool,
    /// The project folder to check [default: the current directory].
    #[arg(long, value_name = "DIR")]
    project: Option<PathBuf>,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check: what was looked at, what was found, and how to fix it.
#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    status: Status,
    detail: String,
    fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// How long a `--version` of another program may take.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(10);

const INIT_FIX: &str = "run `claude-c2c init --name NAME` in the project folder";

/// Runs every check for the project folder and database `db` (`--db` / `CLAUDE_C2C_DB`);
/// returns the report for stdout and whether no check failed.
pub fn run(
    args: &DoctorArgs,
    room: Option<&str>,
    db: Option<&Path>,
    hub: Option<(&str, Option<&Path>)>,
) -> (String, bool) {
    let project = args
        .project
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    let project = setup::canonical(&project).unwrap_or(project);
    let mut checks = vec![check_binary(), check_claude()];

    // Claude Code passes its environment (C2C_ROOM too) to the server and the hooks, so a room
    // set there, or given to doctor, applies where the entry and hooks name none.
    let server = find_server(&project, room, &mut checks);
    let server_db = server.as_ref().and_then(|s| s.db.clone());
    let server_name = server.as_ref().and_then(|s| s.name.clone());
    check_hooks(&project, server.as_ref(), room, &mut checks);
    let room = server
        .as_ref()
        .map_or(room.unwrap_or(DEFAULT_ROOM), Server::room);

    // A project wired to a hub has no database here: the hub is what to check.
    let server_hub = server
        .as_ref()
        .and_then(|s| s.hub.clone().map(|url| (url, s.hub_ca.clone())));
    let hub = hub
        .map(|(url, ca)| (url.to_string(), ca.map(Path::to_path_buf)))
        .or(server_hub);
    if let Some((url, ca)) = hub {
        checks.push(check_hub(&url, ca.as_deref(), room));
        return finish(args, checks);
    }
    let db_path = match db.map(setup::absolute).or(server_db) {
        Some(path) => Some(path),
        None => store::default_path().ok(),
    };
    match db_path {
        Some(path) => check_database(&path, &project, (server_name.as_deref(), room), &mut checks),
        None => checks.push(Check::fail(
            "database",
            "no database path: HOME is not set",
            "set HOME, or give the path with --db / CLAUDE_C2C_DB",
        )),
    }
    checks.push(check_notices());
    finish(args, checks)
}

// The report of `checks`, and whether none failed.
fn finish(args: &DoctorArgs, checks: Vec<Check>) -> (String, bool) {
    let ok = checks.iter().all(|c| c.status != Status::Fail);
    let text = if args.json {
        json!({ "ok": ok, "checks": checks }).to_string() + "\n"
    } else {
        render(&checks, ok)
    };
    (text, ok)
}

fn render(checks: &[Check], ok: bool) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let status = match c.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        out.push_str(&format!("{status:<4}  {:<width$}  {}\n", c.name, c.detail));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("{:<4}  {:<width$}  fix: {fix}\n", "", ""));
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    out.push_str(&match (ok, warned) {
        (true, 0) => "All checks passed.\n".to_string(),
        (true, w) => format!("No check failed ({w} warning(s)).\n"),
        (false, w) => format!("{failed} check(s) failed, {w} warning(s).\n"),
    });
    out
}

/// Runs `program args` and returns its output, killing it after [`PROGRAM_TIMEOUT`].
fn run_program(program: &Path, args: &[&str]) -> Result<Output, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let deadline = Instant::now() + PROGRAM_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => {
                return child
                    .wait_with_output()
                    .map_err(|e| format!("{}: {e}", program.display()));
            }
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{} {}` did not answer within {} s",
                    program.display(),
                    args.join(" "),
                    PROGRAM_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("{}: {e}", program.display())),
        }
    }
}

fn check_binary() -> Check {
    const NAME: &str = "claude-c2c";
    let this = format!("{PROGRAM} {}", env!("CARGO_PKG_VERSION"));
    let here = std::env::current_exe().ok();
    let Some(found) = setup::find_on_path(PROGRAM) else {
        let dir = here
            .as_deref()
            .and_then(Path::parent)
            .map(|d| format!(", or add {} to PATH", d.display()))
            .unwrap_or_default();
        return Check::fail(
            NAME,
            "not on PATH: Claude Code starts the server and the hooks by that name",
            format!("install it with `cargo install --locked --path c2c-server`{dir}"),
        );
    };
    let version = match run_program(&found, &["--version"]) {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(out) => {
            return Check::fail(
                NAME,
                format!("{} --version failed ({})", found.display(), out.status),
                "reinstall it: `cargo install --locked --path c2c-server`",
            );
        }
        Err(e) => {
            return Check::fail(
                NAME,
                e,
                "reinstall it: `cargo install --locked --path c2c-server`",
            );
        }
    };
    let same_file = here
        .and_then(|h| h.canonicalize().ok())
        .zip(found.canonicalize().ok())
        .is_some_and(|(a, b)| a == b);
    let detail = format!(
        "{} ({version}{})",
        found.display(),
        if same_file { ", this binary" } else { "" }
    );
    if version == this {
        Check::ok(NAME, detail)
    } else {
        Check::warn(
            NAME,
            format!("{detail}, but this doctor is {this}"),
            "install one version: `cargo install --locked --path c2c-server`, and remove the other",
        )
    }
}

fn check_claude() -> Check {
    const NAME: &str = "claude code";
    let Some(found) = setup::find_on_path("claude") else {
        return Check::warn(
            NAME,
            "`claude` is not on PATH",
            "install Claude Code (npm install -g @anthropic-ai/claude-code); ignore this if \
             another MCP client runs claude-c2c",
        );
    };
    match run_program(&found, &["--version"]) {
        Ok(out) if out.status.success() => Check::ok(
            NAME,
            format!(
                "{} ({})",
                found.display(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
        ),
        Ok(out) => Check::warn(
            NAME,
            format!("{} --version failed ({})", found.display(), out.status),
            "reinstall Claude Code",
        ),
        Err(e) => Check::warn(NAME, e, "reinstall Claude Code"),
    }
}

/// The MCP server entry that runs claude-c2c for the project.
struct Server {
    /// Where it was found, e.g. `.mcp.json`.
    source: String,
    key: String,
    /// Its `--name` (or `C2C_NAME` in its `env`).
    name: Option<String>,
    /// Its `--db` (or `CLAUDE_C2C_DB`), absolute.
    db: Option<PathBuf>,
    /// Its `--room` (or `C2C_ROOM`).
    room: Option<String>,
    /// Its `--hub` (or `C2C_HUB`).
    hub: Option<String>,
    /// Its `--hub-ca` (or `C2C_HUB_CA`).
    hub_ca: Option<PathBuf>,
}

impl Server {
    /// The room it serves in.
    fn room(&self) -> &str {
        self.room.as_deref().unwrap_or(DEFAULT_ROOM)
    }
}

/// Finds the project's claude-c2c server entries, in Claude Code's order of precedence
/// (local, project, user), and checks the one that applies.
fn find_server(project: &Path, room: Option<&str>, checks: &mut Vec<Check>) -> Option<Server> {
    const NAME: &str = "mcp server";
    let mut sources: Vec<(String, Map<String, Value>)> = Vec::new();
    let claude_json = setup::claude_json_path().map(|p| (setup::read_json(&p), p));
    let claude_config = match claude_json {
        Some((Ok(config), _)) => config,
        Some((Err(e), path)) => {
            checks.push(Check::warn(
                NAME,
                e,
                format!(
                    "Claude Code cannot read {} either: repair it",
                    path.display()
                ),
            ));
            None
        }
        None => None,
    };
    if let Some(config) = &claude_config {
        sources.push((
            "Claude Code's local config".into(),
            setup::claude_json_servers(config, "local", project),
        ));
    }
    match setup::read_json(&project.join(".mcp.json")) {
        Ok(Some(file)) => sources.push((
            ".mcp.json".into(),
            file.get("mcpServers")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        )),
        Ok(None) => {}
        Err(e) => checks.push(Check::fail(
            NAME,
            e,
            "Claude Code ignores a .mcp.json it cannot parse: repair it, then run init again",
        )),
    }
    if let Some(config) = &claude_config {
        sources.push((
            "Claude Code's user config".into(),
            setup::claude_json_servers(config, "user", project),
        ));
    }
    let ours: Vec<(String, String, Value)> = sources
        .into_iter()
        .flat_map(|(source, servers)| {
            servers
                .into_iter()
                .filter(|(_, v)| {
                    v.get("command")
                        .and_then(Value::as_str)
                        .is_some_and(setup::is_our_program)
                })
                .map(move |(k, v)| (source.clone(), k, v))
        })
        .collect();
    let Some((source, key, entry)) = ours.first().cloned() else {
        checks.push(Check::fail(
            NAME,
            "no MCP server runs claude-c2c in .mcp.json or Claude Code's local or user config",
            INIT_FIX,
        ));
        return None;
    };
    let args = setup::entry_args(&entry);
    let env = entry.get("env").and_then(Value::as_object);
    let from_env = |var: &str| {
        env.and_then(|e| e.get(var))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let name = setup::option_value(&args, "--name").or_else(|| from_env("C2C_NAME"));
    let db = setup::option_value(&args, "--db")
        .or_else(|| from_env("CLAUDE_C2C_DB"))
        .map(|p| project.join(p));
    // An empty C2C_ROOM means the default room, as at run time.
    let room = setup::option_value(&args, "--room")
        .or_else(|| from_env("C2C_ROOM").filter(|r| !r.trim().is_empty()))
        .or_else(|| room.map(str::to_string));
    let command = entry["command"].as_str().unwrap_or_default();
    let line = setup::entry_command_line(&entry).unwrap_or_default();
    let detail = format!("\"{key}\" in {source}: {line}");
    let check = if !setup::resolves(command) {
        Check::fail(
            NAME,
            format!("{detail}; `{command}` is not found"),
            "install claude-c2c on the PATH, or give its full path as the command",
        )
    } else if name.is_none() {
        Check::warn(
            NAME,
            format!("{detail}; no --name, so the model must call register_session itself"),
            INIT_FIX,
        )
    } else if ours.len() > 1 {
        let others: Vec<String> = ours[1..]
            .iter()
            .map(|(s, k, _)| format!("\"{k}\" in {s}"))
            .collect();
        Check::warn(
            NAME,
            format!("{detail}; also {}", others.join(", ")),
            "keep one claude-c2c server per project (`claude mcp remove ...` or edit .mcp.json)",
        )
    } else {
        Check::ok(NAME, detail)
    };
    checks.push(check);
    let hub = setup::option_value(&args, "--hub").or_else(|| from_env("C2C_HUB"));
    let hub_ca = setup::option_value(&args, "--hub-ca")
        .or_else(|| from_env("C2C_HUB_CA"))
        .map(PathBuf::from);
    Some(Server {
        source,
        key,
        name,
        db,
        room,
        hub,
        hub_ca,
    })
}

/// Checks the hub at `url` once (no retries: a doctor says what is wrong now): `C2C_TOKEN` is
/// set, the hub answers, and the token is good for `room`.
fn check_hub(url: &str, ca: Option<&Path>, room: &str) -> Check {
    const NAME: &str = "hub";
    let room = Some(room).filter(|r| *r != DEFAULT_ROOM);
    let target = match crate::remote::HubTarget::new(url, ca, room) {
        Ok(target) => target,
        Err(e) => {
            return Check::fail(
                NAME,
                e,
                "export C2C_TOKEN in the environment Claude Code starts in (and here)",
            );
        }
    };
    let probe = crate::remote::client::HubClient::new(target)
        .and_then(|client| crate::remote::client::block_on(client.probe()).and_then(|r| r));
    match probe {
        Ok(answer) => Check::ok(
            NAME,
            format!(
                "{url} answers; the token reaches room \"{}\" ({} live session(s))",
                answer.room,
                answer.sessions.len()
            ),
        ),
        Err(e) => Check::fail(
            NAME,
            e,
            "start the hub (claude-c2c serve --listen ..., on its machine), check the URL, and \
             ask its owner for a token for this room if it was refused",
        ),
    }
}

/// One hook of ours found in a settings file.
struct FoundHook {
    file: String,
    event: &'static str,
    hook: Value,
    parsed: setup::HookCommand,
}

// `room` is the room of the environment (or doctor's own `--room`), which a hook naming none
// inherits.
fn check_hooks(
    project: &Path,
    server: Option<&Server>,
    room: Option<&str>,
    checks: &mut Vec<Check>,
) {
    let mut files = vec![
        (
            ".claude/settings.json".to_string(),
            project.join(".claude/settings.json"),
        ),
        (
            ".claude/settings.local.json".to_string(),
            project.join(".claude/settings.local.json"),
        ),
    ];
    if let Some(home) = setup::home() {
        files.push((
            "~/.claude/settings.json".into(),
            home.join(".claude/settings.json"),
        ));
    }
    let mut found = Vec::new();
    let mut unreadable = false;
    for (label, path) in files {
        let settings = match setup::read_json(&path) {
            Ok(Some(settings)) => settings,
            Ok(None) => continue,
            Err(e) => {
                unreadable = true;
                checks.push(Check::fail(
                    "hooks",
                    e,
                    "Claude Code cannot use settings it cannot parse: repair the file",
                ));
                continue;
            }
        };
        for event in HOOK_EVENTS {
            let groups = settings
                .get("hooks")
                .and_then(|h| h.get(event))
                .and_then(Value::as_array);
            for hook in groups
                .into_iter()
                .flatten()
                .filter_map(|g| g.get("hooks").and_then(Value::as_array))
                .flatten()
            {
                let parsed = hook
                    .get("command")
                    .and_then(Value::as_str)
                    .and_then(setup::parse_hook_command);
                if let Some(parsed) = parsed {
                    found.push(FoundHook {
                        file: label.clone(),
                        event,
                        hook: hook.clone(),
                        parsed,
                    });
                }
            }
        }
    }
    if found.is_empty() && unreadable {
        return;
    }
    if found.is_empty() {
        checks.push(Check::warn(
            "hooks",
            "no claude-c2c hooks: messages reach the model only when it calls inbox or \
             wait_for_message",
            INIT_FIX,
        ));
        return;
    }

    // Presence and shape.
    let mut problems = Vec::new();
    let missing: Vec<&str> = HOOK_EVENTS
        .iter()
        .copied()
        .filter(|e| !found.iter().any(|h| h.event == *e))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("none for {}", missing.join(", ")));
    }
    for h in &found {
        let want = if h.event == "Stop" { "wait" } else { "prompt" };
        if h.parsed.sub != want {
            problems.push(format!(
                "{} in {} runs `hook {}`, not `hook {want}`",
                h.event, h.file, h.parsed.sub
            ));
        }
        if h.event == "Stop" && h.hook.get("asyncRewake") != Some(&Value::Bool(true)) {
            problems.push(format!(
                "the Stop hook in {} lacks \"asyncRewake\": true",
                h.file
            ));
        }
    }
    for event in HOOK_EVENTS {
        let n = found.iter().filter(|h| h.event == event).count();
        if n > 1 {
            problems.push(format!("{n} claude-c2c hooks for {event}"));
        }
    }
    // "file: Event, Event" per file, in the order found.
    let mut by_file: Vec<(&str, Vec<&str>)> = Vec::new();
    for h in &found {
        match by_file.iter_mut().find(|(f, _)| *f == h.file) {
            Some((_, events)) if events.contains(&h.event) => {}
            Some((_, events)) => events.push(h.event),
            None => by_file.push((&h.file, vec![h.event])),
        }
    }
    let places: Vec<String> = by_file
        .iter()
        .map(|(f, events)| format!("{f}: {}", events.join(", ")))
        .collect();
    checks.push(if problems.is_empty() {
        Check::ok("hooks", places.join("; "))
    } else {
        Check::warn(
            "hooks",
            format!("{}; {}", places.join("; "), problems.join("; ")),
            INIT_FIX,
        )
    });

    // Their binary.
    let missing_bin: Vec<&str> = found
        .iter()
        .map(|h| h.parsed.program.as_str())
        .filter(|p| !setup::resolves(p))
        .collect();
    checks.push(match missing_bin.first() {
        None => Check::ok("hook binary", "every hook's claude-c2c is found"),
        Some(program) => Check::fail(
            "hook binary",
            format!("`{program}` (run by a hook) is not found"),
            "install claude-c2c on the PATH, then run `claude-c2c init --name NAME` again",
        ),
    });

    // Their database and name, against the server's.
    let Some(server) = server else { return };
    let resolve = |db: Option<&Path>| -> Option<PathBuf> {
        match db {
            Some(p) => Some(project.join(p)),
            None => store::default_path().ok(),
        }
    };
    let server_db = resolve(server.db.as_deref());
    let shown = |p: &Option<PathBuf>| {
        p.as_ref()
            .map_or_else(|| "(unknown)".to_string(), |p| p.display().to_string())
    };
    let mut mismatches = Vec::new();
    for h in &found {
        let hook_db = resolve(h.parsed.db.as_deref());
        if hook_db != server_db {
            mismatches.push(format!(
                "the {} hook in {} reads {} but the server \"{}\" uses {}",
                h.event,
                h.file,
                shown(&hook_db),
                server.key,
                shown(&server_db)
            ));
        }
        if let (Some(hook_name), Some(server_name)) = (&h.parsed.name, &server.name)
            && hook_name != server_name
        {
            mismatches.push(format!(
                "the {} hook in {} is for \"{hook_name}\" but the server ({}) is \"{server_name}\"",
                h.event, h.file, server.source
            ));
        }
        let hook_room = h.parsed.room.as_deref().or(room).unwrap_or(DEFAULT_ROOM);
        if hook_room != server.room() {
            mismatches.push(format!(
                "the {} hook in {} is in room \"{hook_room}\" but the server ({}) is in \"{}\"",
                h.event,
                h.file,
                server.source,
                server.room()
            ));
        }
    }
    let db_arg = server
        .db
        .as_ref()
        .map(|p| format!(" --db {}", setup::quote_if_needed(&p.display().to_string())))
        .unwrap_or_default();
    let room_arg = server
        .room
        .as_ref()
        .map(|r| format!(" --room {}", setup::quote_if_needed(r)))
        .unwrap_or_default();
    let db_arg = format!("{room_arg}{db_arg}");
    let name = server.name.as_deref().unwrap_or("NAME");
    checks.push(if mismatches.is_empty() {
        Check::ok(
            "hook database",
            format!(
                "the hooks use the server's database{}",
                server
                    .name
                    .as_ref()
                    .map_or(String::new(), |n| format!(" and name \"{n}\""))
            ),
        )
    } else {
        Check::fail(
            "hook database",
            mismatches.join("; "),
            format!(
                "run `claude-c2c init --name {}{db_arg}` so the hooks and the server agree",
                setup::quote_if_needed(name)
            ),
        )
    });
}

// `server` is the server entry's name, if any, and room.
fn check_database(
    path: &Path,
    project: &Path,
    server: (Option<&str>, &str),
    checks: &mut Vec<Check>,
) {
    let shown = path.display().to_string();
    if path.is_dir() {
        checks.push(Check::fail(
            "database",
            format!("{shown} is a folder"),
            "point --db / CLAUDE_C2C_DB at a file",
        ));
        return;
    }
    if !path.exists() {
        checks.push(Check::ok(
            "database",
            format!("{shown} does not exist yet; the first server creates it"),
        ));
        checks.push(check_permissions(path));
        return;
    }
    checks.push(Check::ok("database", shown.clone()));
    checks.push(check_permissions(path));

    let conn = match Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(conn) => conn,
        Err(e) => {
            checks.push(Check::fail(
                "schema",
                format!("cannot open {shown} for writing: {e}"),
                "make it yours and writable: `chmod 600` it (and check its owner)",
            ));
            return;
        }
    };
    let _ = conn.busy_timeout(store::BUSY_TIMEOUT);
    let broken_fix = format!(
        "move it away (`mv {shown} {shown}.broken`); the next server start creates a new one"
    );
    let version: i64 = match conn.query_row("PRAGMA user_version", [], |r| r.get(0)) {
        Ok(v) => v,
        Err(e) => {
            checks.push(Check::fail("schema", format!("{shown}: {e}"), broken_fix));
            return;
        }
    };
    let known = migrate::MIGRATIONS.len() as i64;
    checks.push(if version == known {
        Check::ok("schema", format!("version {version} (current)"))
    } else if version < known {
        Check::ok(
            "schema",
            format!("version {version}; the next server start migrates it to {known}"),
        )
    } else {
        Check::fail(
            "schema",
            format!("version {version}, written by a newer claude-c2c (this one knows {known})"),
            "install the newer claude-c2c (`cargo install --locked --path c2c-server` from an \
             up-to-date clone)",
        )
    });
    let verdict: Result<Vec<String>, rusqlite::Error> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect());
    match verdict {
        Ok(rows) if rows == ["ok"] => checks.push(Check::ok("integrity", "quick_check: ok")),
        Ok(rows) => {
            checks.push(Check::fail(
                "integrity",
                format!("quick_check: {}", rows.join("; ")),
                format!(
                    "stop the sessions, then `sqlite3 {shown} .recover` into a new file, or {broken_fix}"
                ),
            ));
            return;
        }
        Err(e) => {
            checks.push(Check::fail("integrity", e.to_string(), broken_fix));
            return;
        }
    }
    // The sessions are read with the current schema (rooms came with version 6).
    if version == known {
        checks.push(check_sessions(&conn, project, server));
    } else if version < known {
        checks.push(Check::ok(
            "sessions",
            format!(
                "not read: schema {version} predates rooms; shown once a server has migrated it"
            ),
        ));
    }
}

fn check_permissions(path: &Path) -> Check {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| p.metadata().ok().map(|m| m.permissions().mode() & 0o777);
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let file_mode = mode(path);
        if let Some(m) = file_mode
            && m & 0o077 != 0
        {
            return Check::fail(
                "permissions",
                format!(
                    "{} is {m:04o}: other users can read the messages",
                    path.display()
                ),
                format!("`chmod 600 {}`", path.display()),
            );
        }
        match mode(dir) {
            Some(m) if m & 0o077 != 0 => Check::warn(
                "permissions",
                format!(
                    "file {}, but its folder {} is {m:04o}",
                    file_mode.map_or("not created yet".into(), |m| format!("{m:04o}")),
                    dir.display()
                ),
                format!("`chmod 700 {}`", dir.display()),
            ),
            Some(m) => Check::ok(
                "permissions",
                format!(
                    "file {}, folder {m:04o}",
                    file_mode.map_or("not created yet".into(), |m| format!("{m:04o}"))
                ),
            ),
            None => Check::ok("permissions", "the folder is created 0700 with the file"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Check::ok("permissions", "not checked on this platform")
    }
}

fn check_sessions(conn: &Connection, project: &Path, (name, room): (Option<&str>, &str)) -> Check {
    let rows = match sessions::overview(conn, Some(room)) {
        Ok(rows) => rows,
        Err(e) => {
            return Check::fail(
                "sessions",
                format!("reading sessions failed: {e}"),
                "run `claude-c2c doctor` again; if it persists, the database needs repair",
            );
        }
    };
    if rows.is_empty() {
        return Check::ok("sessions", format!("none yet in room {room}"));
    }
    let now = std::time::SystemTime::now();
    let age = |seen: &str| crate::clock::parse(seen).and_then(|t| now.duration_since(t).ok());
    let list: Vec<String> = rows
        .iter()
        .map(|s| {
            let ago = age(&s.last_seen_at)
                .map_or_else(|| "?".to_string(), |d| format!("{}s ago", d.as_secs()));
            format!("{} ({ago}, {} unread)", s.name, s.unread)
        })
        .collect();
    let detail = format!("{} in room {room}: {}", rows.len(), list.join(", "));
    let elsewhere = name.and_then(|n| {
        rows.iter().find(|s| {
            s.name == n
                && s.cwd
                    .as_deref()
                    .is_some_and(|cwd| Path::new(cwd) != project)
        })
    });
    // Held there by a process that may still run: a session started here waits for its first
    // tool call to take the name (the store's rule, not a guess from how recently it was seen).
    let elsewhere = elsewhere.filter(|s| {
        sessions::holder(conn, room, &s.name)
            .ok()
            .flatten()
            .is_some_and(|h| h.may_be_running())
    });
    match elsewhere {
        Some(s) => Check::warn(
            "sessions",
            format!(
                "{detail}; \"{}\" is held by a running session in {}: one started here takes the name at its first tool call",
                s.name,
                s.cwd.as_deref().unwrap_or("?")
            ),
            "give each project its own name: `claude-c2c init --name OTHER`",
        ),
        None => Check::ok("sessions", detail),
    }
}

fn check_notices() -> Check {
    const NAME: &str = "write notices";
    #[cfg(target_os = "linux")]
    {
        const FIX: &str = "raise the limit: `sudo sysctl fs.inotify.max_user_instances=1024` \
                           (until then, waiting falls back to polling)";
        let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok());
        let Some(limit) = limit else {
            return Check::warn(
                NAME,
                "inotify limits are not readable: waiting may fall back to polling",
                "check that /proc is mounted",
            );
        };
        let used = inotify_instances_in_use();
        match used {
            Some(used) if used >= limit => Check::warn(
                NAME,
                format!("inotify: all {limit} instances of this user are in use"),
                FIX,
            ),
            Some(used) => Check::ok(
                NAME,
                format!("inotify: {used} of {limit} instances of this user in use"),
            ),
            None => Check::ok(NAME, format!("inotify: limit {limit} instances per user")),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        Check::ok(
            NAME,
            "not checked on this platform (writes are noticed by the platform's watcher, or polled)",
        )
    }
}

// Counts the inotify instances held by this user's processes, from /proc.
#[cfg(target_os = "linux")]
fn inotify_instances_in_use() -> Option<usize> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let mut count = 0;
    for process in std::fs::read_dir("/proc").ok()?.flatten() {
        let is_pid = process
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid || process.metadata().ok().map(|m| m.uid()) != Some(uid) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        count += fds
            .flatten()
            .filter(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|target| target.as_os_str() == "anon_inode:inotify")
            })
            .count();
    }
    Some(count)
}
