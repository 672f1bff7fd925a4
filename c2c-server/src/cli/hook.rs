//! `claude-c2c hook ...`: commands for Claude Code hooks. Each reads the hook's JSON from
//! stdin, finds the c2c session it serves (`--name`, else the session whose server the same
//! Claude Code process started, else the one that recorded the hook's Claude Code session id,
//! else the latest server in the project), and hands its messages to Claude Code:
//! `prompt` as `additionalContext` (UserPromptSubmit, SessionStart), `wait` by exiting 2 with
//! them on stderr (a Stop hook with `asyncRewake`, which wakes the idle session). A hook never
//! stands in the user's way: with nothing to say, no session bound, or a broken database it
//! prints nothing on stdout and exits 0 (a note on stderr says what went wrong).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Subcommand;
use rusqlite::{Connection, TransactionBehavior};
use serde::Deserialize;
use serde_json::json;

use crate::call::Session;
use crate::config::DEFAULT_ROOM;
use crate::hub::api::HookRequest;
use crate::process;
use crate::remote::client::{HubClient, block_on};
use crate::store::messages::{self, BROADCAST, Filter, Message, Via};
use crate::store::{self, sessions};
use crate::tools::MAX_INBOX_LIMIT;
use crate::wake::Wake;

/// The most characters of `additionalContext` Claude Code takes.
pub const MAX_CONTEXT_CHARS: usize = 10_000;

/// Commands for Claude Code hooks: hand the session's unread messages to Claude Code.
#[derive(Debug, Subcommand)]
pub enum Hook {
    /// For UserPromptSubmit and SessionStart: print the session's unread messages as
    /// additionalContext (at most 10,000 characters, with a count of what did not fit).
    Prompt {
        #[command(flatten)]
        bind: BindArgs,
    },
    /// For a Stop hook with "asyncRewake": true: wait for a message that has not reached the
    /// session yet, then exit 2 with it on stderr, which wakes the idle session; exit 0 at the
    /// timeout, and at once under `claude -p` (which would wait for the hook before exiting).
    Wait {
        #[command(flatten)]
        bind: BindArgs,
        /// Give up (exit 0, silently) after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
        timeout_seconds: u64,
    },
}

/// Which session a hook serves.
#[derive(Debug, clap::Args)]
pub struct BindArgs {
    /// The session's name (as the server's --name). Without it, the hook finds the session
    /// whose server the same Claude Code process started, else the one that recorded the
    /// hook's Claude Code session id, else the latest server started in the project.
    #[arg(long, env = "C2C_NAME", value_name = "NAME")]
    name: Option<String>,
}

impl Hook {
    fn bind_args(&self) -> &BindArgs {
        match self {
            Hook::Prompt { bind } | Hook::Wait { bind, .. } => bind,
        }
    }
}

/// Whether a command line (without the program name) runs `hook`: its first word that is not
/// one of `cli`'s top-level options or an option's value.
pub fn is_hook_command(cli: &clap::Command, args: impl IntoIterator<Item = String>) -> bool {
    // The options that take a value, as clap knows them, so none is listed twice.
    let takes_value: Vec<String> = cli
        .get_arguments()
        .filter(|a| a.get_action().takes_values())
        .filter_map(|a| a.get_long().map(|long| format!("--{long}")))
        .collect();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if takes_value.contains(&arg) {
            args.next();
        } else if !arg.starts_with('-') {
            return arg == "hook";
        }
    }
    false
}

/// What Claude Code sends a hook on stdin (the fields used here).
#[derive(Debug, Clone, Default, Deserialize)]
struct HookInput {
    session_id: Option<String>,
    cwd: Option<String>,
    hook_event_name: Option<String>,
}

/// Runs `hook` against the database at `db` (the default path if `None`) for the session
/// named `name` (the top-level `--name`, unless the hook's own is given) in `room` (`--room`;
/// the default room if `None`), else the one it finds; returns the exit status Claude Code
/// expects.
pub fn run(
    hook: &Hook,
    name: Option<&str>,
    room: Option<&str>,
    db: Option<&Path>,
    busy_timeout: Duration,
) -> ExitCode {
    match run_inner(hook, name, room, db, busy_timeout) {
        Ok(code) => code,
        Err(note) => {
            eprintln!("claude-c2c hook: {note}; continuing without messages");
            ExitCode::SUCCESS
        }
    }
}

fn run_inner(
    hook: &Hook,
    name: Option<&str>,
    room: Option<&str>,
    db: Option<&Path>,
    busy_timeout: Duration,
) -> Result<ExitCode, String> {
    if matches!(hook, Hook::Wait { .. }) && print_mode() {
        // `claude -p` waits for its background hooks before it exits: waking an idle session
        // is for interactive ones, so let the run end, without so much as opening the file.
        return Ok(ExitCode::SUCCESS);
    }
    let input = read_input()?;
    let path: PathBuf = match db {
        Some(path) => path.to_path_buf(),
        None => store::default_path().map_err(|e| e.to_string())?,
    };
    if !path.exists() {
        // Nothing was ever sent through this file; do not create it from a hook.
        eprintln!(
            "claude-c2c hook: no database at {} yet (no session has started with it): nothing to hand over",
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut conn = store::open_with(&path, busy_timeout).map_err(|e| e.to_string())?;
    let project = std::env::var("CLAUDE_PROJECT_DIR")
        .ok()
        .filter(|p| !p.is_empty())
        .or(input.cwd.clone());
    let fail = |e: rusqlite::Error| format!("{}: {e}", path.display());
    let name = hook.bind_args().name.as_deref().or(name);
    let session = match bind(&conn, name, room, &input, project.as_deref()).map_err(fail)? {
        Ok(session) => session,
        Err(why) => {
            eprintln!(
                "claude-c2c hook: no session to hand messages to in {}: {why}",
                path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    tracing::debug!(name = %session.name, "hook bound");
    match hook {
        Hook::Prompt { .. } => {
            let Claim::Messages(text) = claim(&mut conn, &session, None).map_err(fail)? else {
                return Ok(ExitCode::SUCCESS);
            };
            print_context(&input, &text);
            Ok(ExitCode::SUCCESS)
        }
        Hook::Wait {
            timeout_seconds, ..
        } => {
            let deadline = Instant::now() + Duration::from_secs(*timeout_seconds);
            let mut waiter = Wake::new(&path).subscribe().map_err(fail)?;
            // A turn that ends starts a new waiter: the one before it gives way, so waiters do
            // not pile up over a long session.
            let me = store::new_id(&conn).map_err(fail)?;
            sessions::set_hook_waiter(&conn, &session.session_id, &me).map_err(fail)?;
            loop {
                match claim(&mut conn, &session, Some(&me)).map_err(fail)? {
                    Claim::Messages(text) => {
                        eprint!("{text}");
                        return Ok(ExitCode::from(2));
                    }
                    Claim::GiveWay => return Ok(ExitCode::SUCCESS),
                    Claim::Nothing => {}
                }
                if !waiter.wait_until(deadline) {
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    }
}

/// Runs `hook` through the hub `client` for the session named `name` (the hook's own `--name`
/// first): the hub finds the session by name in the token's room. Exit statuses as [`run`].
pub fn run_remote(hook: &Hook, name: Option<&str>, client: &HubClient) -> ExitCode {
    match run_remote_inner(hook, name, client) {
        Ok(code) => code,
        Err(note) => {
            eprintln!("claude-c2c hook: {note}; continuing without messages");
            ExitCode::SUCCESS
        }
    }
}

/// How long one request of a waiting hook waits at the hub.
const REMOTE_WAIT: Duration = Duration::from_secs(25);

fn run_remote_inner(
    hook: &Hook,
    name: Option<&str>,
    client: &HubClient,
) -> Result<ExitCode, String> {
    if matches!(hook, Hook::Wait { .. }) && print_mode() {
        return Ok(ExitCode::SUCCESS);
    }
    let input = read_input()?;
    let Some(name) = hook.bind_args().name.as_deref().or(name) else {
        return Err(
            "with --hub a hook finds its session by name only: give it --name NAME \
                    (as `claude-c2c init --hub URL` writes it)"
                .to_string(),
        );
    };
    let request = |wait: bool, waiter: Option<String>, wait_for: Duration| HookRequest {
        name: name.to_string(),
        waiter,
        wait,
        wait_ms: wait_for.as_millis() as u64,
    };
    block_on(async {
        match hook {
            Hook::Prompt { .. } => {
                let answer = client.hook(&request(false, None, Duration::ZERO)).await?;
                if let Some(text) = answer.text {
                    print_context(&input, &text);
                }
                Ok(ExitCode::SUCCESS)
            }
            Hook::Wait {
                timeout_seconds, ..
            } => {
                let deadline = Instant::now() + Duration::from_secs(*timeout_seconds);
                let mut waiter = None;
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let answer = client
                        .hook(&request(true, waiter.clone(), left.min(REMOTE_WAIT)))
                        .await?;
                    if let Some(text) = answer.text {
                        eprint!("{text}");
                        return Ok(ExitCode::from(2));
                    }
                    if answer.give_way || left.is_zero() {
                        return Ok(ExitCode::SUCCESS);
                    }
                    waiter = answer.waiter;
                }
            }
        }
    })?
}

// Hands `text` to Claude Code as the prompt hook's additionalContext, for the event that ran it.
fn print_context(input: &HookInput, text: &str) {
    let event = input
        .hook_event_name
        .as_deref()
        .unwrap_or("UserPromptSubmit");
    let out = json!({
        "hookSpecificOutput": { "hookEventName": event, "additionalContext": text }
    });
    println!("{out}");
}

// Whether the hook runs under `claude -p` (print mode), as Claude Code tells its hooks.
fn print_mode() -> bool {
    std::env::var("CLAUDE_CODE_ENTRYPOINT").is_ok_and(|e| e == "sdk-cli")
}

fn read_input() -> Result<HookInput, String> {
    let mut raw = String::new();
    std::io::stdin()
        .take(1 << 20)
        .read_to_string(&mut raw)
        .map_err(|e| format!("cannot read the hook input on stdin: {e}"))?;
    if raw.trim().is_empty() {
        return Ok(HookInput::default());
    }
    serde_json::from_str(&raw).map_err(|e| format!("the hook input on stdin is not JSON: {e}"))
}

// The registration whose server the nearest of `ancestors` (on this machine) started, with
// whether it still holds its name.
fn nearest_server(
    conn: &Connection,
    ancestors: &[u32],
) -> rusqlite::Result<Option<(Session, sessions::Standing)>> {
    let host = process::host();
    for &pid in ancestors {
        if let Some(found) = sessions::started_by(conn, pid, &host)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// How many of the hook's ancestor processes are looked at for the Claude Code process that
/// started a server (the hook runs under a shell, the shell under Claude Code, which may
/// itself run under a launcher).
const ANCESTORS: usize = 8;

// Finds the session a hook serves: the one named (the one this hook's Claude Code process
// started if it holds the name, else the one in `room`, the default room if `None`), else the
// one whose server was started by the same Claude Code process (an ancestor of this hook), else the one that recorded the hook's Claude Code session id, else the latest server
// started in the project (in `room`, if given). Holds across
// `--continue`, `/clear`, forks and compaction, which change the session id but not the
// process. `Ok(Err(why))` when none is found.
fn bind(
    conn: &Connection,
    name: Option<&str>,
    room: Option<&str>,
    input: &HookInput,
    project: Option<&str>,
) -> rusqlite::Result<Result<Session, String>> {
    let ancestors = process::ancestors(ANCESTORS);
    // The nearest ancestor that started a server decides which session is this process's own.
    let own = nearest_server(conn, &ancestors)?;
    if let Some(name) = name {
        // The server this Claude Code process started, when it holds the name, in whatever
        // room: its room may come from where the hook's does not (the server entry's `env`),
        // and another room's namesake is someone else.
        if let Some((session, sessions::Standing::Live)) = &own
            && session.name == name
        {
            return Ok(Ok(session.clone()));
        }
        let in_room = room.unwrap_or(DEFAULT_ROOM);
        return Ok(sessions::live(conn, in_room, name)?.ok_or_else(|| {
            format!(
                "no live session is named \"{name}\" in room {in_room} (has its Claude Code \
                 session started, with the server on this database and in this room?)"
            )
        }));
    }
    // A Claude Code process whose session lost its name hands over nothing, rather than
    // another session's messages.
    match own {
        Some((session, sessions::Standing::Live)) => return Ok(Ok(session)),
        Some((session, sessions::Standing::Superseded)) => {
            return Ok(Err(format!(
                "the session this Claude Code process started (\"{}\") has lost its name \
                 to another session (it takes the name back once that one has exited)",
                session.name
            )));
        }
        None => {}
    }
    if let Some(id) = input.session_id.as_deref()
        && let Some(session) = sessions::serving_claude_session(conn, id)?
    {
        return Ok(Ok(session));
    }
    if let Some(dir) = project
        && let Some(session) = sessions::latest_server_in(conn, dir, room)?
    {
        return Ok(Ok(session));
    }
    Ok(Err(format!(
        "no live session's server was started by this Claude Code process (ancestors {ancestors:?}), \
         recorded its session id {}, or runs in {}; give the hook the session's name \
         (`claude-c2c hook prompt --name NAME`, as `claude-c2c init` writes it), and make sure \
         the hook and the server use the same database (--db / CLAUDE_C2C_DB)",
        input.session_id.as_deref().unwrap_or("(none)"),
        project.unwrap_or("(no project directory)"),
    )))
}

/// What a hook found to hand over.
pub(crate) enum Claim {
    /// The text of the messages handed over.
    Messages(String),
    /// Nothing to hand over now.
    Nothing,
    /// A newer `hook wait` of the session took over (or the session lost its name).
    GiveWay,
}

// Takes the session's unread messages (for the `hook wait` `waiter`, only those no path
// delivered yet), renders what fits and records those as delivered by a hook, in one
// transaction, so that two hooks never hand out the same new message twice. It reads first and
// takes the write lock only to record a new delivery; should another process have written
// since the read began, it starts over with the lock taken up front.
pub(crate) fn claim(
    conn: &mut Connection,
    session: &Session,
    waiter: Option<&str>,
) -> rusqlite::Result<Claim> {
    match claim_in(conn, session, waiter, TransactionBehavior::Deferred) {
        Err(e) if store::is_busy(&e) => {
            claim_in(conn, session, waiter, TransactionBehavior::Immediate)
        }
        other => other,
    }
}

fn claim_in(
    conn: &mut Connection,
    session: &Session,
    waiter: Option<&str>,
    behavior: TransactionBehavior,
) -> rusqlite::Result<Claim> {
    let tx = conn.transaction_with_behavior(behavior)?;
    if let Some(me) = waiter
        && !sessions::is_hook_waiter(&tx, &session.session_id, me)?
    {
        return Ok(Claim::GiveWay);
    }
    let filter = Filter {
        undelivered: waiter.is_some(),
        ..Filter::default()
    };
    let unread = messages::inbox(&tx, session, true, MAX_INBOX_LIMIT, &filter)?;
    if unread.is_empty() {
        return Ok(Claim::Nothing);
    }
    let (text, shown) = render(&session.name, &unread, MAX_CONTEXT_CHARS);
    if waiter.is_some() && shown.is_empty() {
        // Only messages too long for a hook are new: waking the session for a mere count of
        // them would wake it again at every stop. The prompt hook counts them; inbox reads them.
        return Ok(Claim::Nothing);
    }
    messages::deliver(&tx, &session.name, &shown, Via::Hook)?;
    tx.commit()?;
    Ok(Claim::Messages(text))
}

/// The text handed to the model for `unread` (messages to `name`), at most `cap` characters:
/// a header, one entry per message that fits whole (oldest first), and a count of those that
/// did not. Returns it with the messages it shows.
pub fn render(name: &str, unread: &[Message], cap: usize) -> (String, Vec<Message>) {
    let count = unread.len();
    let plural = if count == 1 { "" } else { "s" };
    let mut text = format!(
        "claude-c2c: {count} unread message{plural} for \"{name}\" (handle them, then mark_read their ids):\n"
    );
    // Room for the line that counts the messages left out, should any be.
    const RESERVE: usize = 80;
    let mut used = text.chars().count() + RESERVE;
    let mut shown = Vec::new();
    for m in unread {
        let entry = entry(m);
        let len = entry.chars().count();
        if used + len > cap {
            // Too long for what is left; a shorter later message may still fit.
            continue;
        }
        text.push_str(&entry);
        used += len;
        shown.push(m.clone());
    }
    if shown.len() < count {
        let left = count - shown.len();
        let plural = if left == 1 { "" } else { "s" };
        text.push_str(&format!(
            "({left} more unread message{plural} did not fit: call inbox() to read them)\n"
        ));
    }
    (text, shown)
}

fn entry(m: &Message) -> String {
    let mut head = format!("[id {}] from {}", m.id, m.from_name);
    if m.to_name == BROADCAST {
        head.push_str(" to everyone");
    }
    if let Some(tag) = &m.tag {
        head.push_str(&format!(", tag {tag}"));
    }
    if let Some(original) = m.reply_to {
        head.push_str(&format!(", reply to {original}"));
    }
    format!("{head}, {}:\n{}\n", m.created_at, m.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: i64, body: &str) -> Message {
        Message {
            id,
            from_session: "s".into(),
            from_name: "beta".into(),
            to_name: "alpha".into(),
            body: body.into(),
            tag: Some("question".into()),
            reply_to: Some(3),
            created_at: "2026-11-25T10:00:00.000000+00:00".into(),
            read_at: None,
            delivered: false,
        }
    }

    #[test]
    fn render_fits_the_cap_and_counts_what_was_left_out() {
        let unread: Vec<Message> = (1..=30).map(|i| message(i, &"x".repeat(900))).collect();
        let (text, shown) = render("alpha", &unread, MAX_CONTEXT_CHARS);
        assert!(text.chars().count() <= MAX_CONTEXT_CHARS, "{}", text.len());
        let n = shown.len();
        assert!(n > 5 && n < 30, "{n}");
        assert_eq!(shown[n - 1].id, n as i64, "the oldest are shown");
        assert!(text.starts_with("claude-c2c: 30 unread messages for \"alpha\""));
        assert!(text.contains(&format!("({} more unread messages did not fit", 30 - n)));
        assert!(text.contains("[id 1] from beta, tag question, reply to 3, 2026-11-25"));
        assert!(!text.contains(&format!("[id {}]", n + 1)));
    }

    #[test]
    fn hook_commands_are_told_apart_from_values_that_say_hook() {
        let cli = crate::cli::command();
        let is_hook_command = |args| is_hook_command(&cli, args);
        let words = |line: &str| line.split(' ').map(String::from).collect::<Vec<_>>();
        assert!(is_hook_command(words("hook prompt --bogus")));
        assert!(is_hook_command(words("--db /x.db --name local hook wait")));
        assert!(is_hook_command(words("--db=/x.db hook prompt")));
        assert!(!is_hook_command(words("send-message --body hook")));
        assert!(!is_hook_command(words("--db hook inbox")));
        assert!(!is_hook_command(words("--bogus")));
    }

    #[test]
    fn render_shows_everything_that_fits() {
        let unread = vec![message(7, "hello"), message(8, "world")];
        let (text, shown) = render("alpha", &unread, MAX_CONTEXT_CHARS);
        assert_eq!(shown, unread);
        assert!(text.contains("hello\n") && text.contains("world\n"));
        assert!(!text.contains("did not fit"));
    }

    #[test]
    fn a_message_longer_than_the_cap_is_counted_not_cut_and_later_ones_still_shown() {
        let unread = vec![message(1, &"y".repeat(20_000)), message(2, "short")];
        let (text, shown) = render("alpha", &unread, MAX_CONTEXT_CHARS);
        assert_eq!(shown, vec![unread[1].clone()]);
        assert!(text.contains("short\n"));
        assert!(text.contains("(1 more unread message did not fit"));
        assert!(text.chars().count() <= MAX_CONTEXT_CHARS);
    }
}
