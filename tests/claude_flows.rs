//! The real Claude Code CLI (see `tests/common/claude.rs`) set up as a user sets it up: our
//! server added with `claude mcp add c2c -- claude-c2c --name local --db DB`, the hooks of
//! `examples/settings.json` in `~/.claude/settings.json` (their commands given `--db DB`), and
//! another party sending with `claude-c2c send-message --as online --to local`. Each test walks
//! one flow in which Claude Code's ids or processes change under the c2c session, and checks
//! that a message for `local` still reaches the model: `-p` then `-p --continue` (the resumed
//! run's server gets a new `CLAUDE_CODE_SESSION_ID`, its hooks the conversation's old id),
//! `-p --resume ID`, `--resume ID --fork-session`, `/clear` in the interactive REPL (a new id
//! for the hooks, the same server), and `claude mcp list` / `claude mcp get` while a session
//! runs (a health check that starts the server with the session's `--name`); and a session in
//! a room, beside a session of the same name in the default room. Without the CLI
//! (or util-linux `script`, for the REPL) a test skips, saying why, and fails under `CI=true`.

#![cfg(unix)]

#[path = "common/claude.rs"]
mod claude;
mod common;
#[path = "common/standin.rs"]
mod standin;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use claude::{CONNECTED, RUN_LIMIT, Repl, Rig, Run, claude_cli, drawn, required, shell_quote};
use common::BIN;
use common::raw::Raw;
use serde_json::{Value, json};
use standin::{Request, Step};

/// The name our server is given in every test here.
const LOCAL: &str = "local";

/// How the hook commands say which c2c session they serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    /// As in `examples/settings.json`: no name; the hook finds its session.
    Found,
    /// With `--name local`, as `claude-c2c init` writes them.
    Named,
    /// With `--name local --room ROOM`, as `claude-c2c init --room ROOM` writes them (the
    /// server gets `--room ROOM` too).
    NamedIn(&'static str),
    /// With `--name local` only, while the server gets `--room ROOM`: hooks written before the
    /// server was moved to a room (or with the room only in the server's environment).
    NamedServerIn(&'static str),
}

/// The hook events of `examples/settings.json`.
const ALL_HOOKS: &[&str] = &["SessionStart", "UserPromptSubmit", "Stop"];

/// A rig for `test` whose model answers with `script`, with our server added to Claude Code
/// by `claude mcp add` (local scope, in the rig's working directory) as
/// `claude-c2c --name local --db DB`, and the hooks of `examples/settings.json` for `events`
/// in the user's settings, named as `naming` says. `None` (after saying why) if the CLI is
/// missing, outside CI.
fn flow_rig(test: &str, script: Vec<Step>, naming: Naming, events: &[&str]) -> Option<Rig> {
    let cli = required(test, claude_cli())?;
    let label = format!("flow-{}", test.replace('_', "-"));
    let label = &label[..label.len().min(40)];
    let rig = Rig::bare(cli, label, script);
    let db = rig.dir.path().display().to_string();
    let mut add = vec![
        "mcp", "add", "--scope", "local", "c2c", "--", BIN, "--name", LOCAL, "--db", &db,
    ];
    if let Naming::NamedIn(room) | Naming::NamedServerIn(room) = naming {
        add.extend(["--room", room]);
    }
    let added = rig.claude(&add, &[]);
    assert!(
        added.stdout.contains("c2c"),
        "claude mcp add said: {}{}",
        added.stdout,
        added.stderr
    );
    write_settings(&rig, naming, events, None);
    Some(rig)
}

/// Writes `~/.claude/settings.json` with the hooks of `examples/settings.json` for `events`:
/// `claude-c2c` in their commands becomes the binary under test, and each command gets
/// `--db DB` (and `--name local` when `naming` says so). With `logger`, a command hook that
/// runs that script is added to every event, first.
fn write_settings(rig: &Rig, naming: Naming, events: &[&str], logger: Option<&Path>) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/settings.json");
    let text = std::fs::read_to_string(&examples).unwrap();
    let mut settings: Value = serde_json::from_str(&text).unwrap();
    let hooks = settings["hooks"].as_object_mut().unwrap();
    hooks.retain(|event, _| events.contains(&event.as_str()));
    assert_eq!(hooks.len(), events.len(), "{events:?} not all in {text}");
    let mut extra = format!(
        " --db {}",
        shell_quote(&rig.dir.path().display().to_string())
    );
    match naming {
        Naming::Found => {}
        Naming::Named | Naming::NamedServerIn(_) => extra.push_str(&format!(" --name {LOCAL}")),
        Naming::NamedIn(room) => extra.push_str(&format!(" --name {LOCAL} --room {room}")),
    }
    for groups in hooks.values_mut() {
        for group in groups.as_array_mut().unwrap() {
            let list = group["hooks"].as_array_mut().unwrap();
            for hook in list.iter_mut() {
                let command = hook["command"].as_str().unwrap();
                let rest = command
                    .strip_prefix("claude-c2c ")
                    .unwrap_or_else(|| panic!("not a claude-c2c command: {command}"));
                hook["command"] = json!(format!("{} {rest}{extra}", shell_quote(BIN)));
            }
            if let Some(logger) = logger {
                let command = shell_quote(&logger.display().to_string());
                list.insert(
                    0,
                    json!({ "type": "command", "command": command, "timeout": 10 }),
                );
            }
        }
    }
    let dir = rig.file("home/.claude");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("settings.json"), settings.to_string()).unwrap();
}

/// Sends `body` to `to` from "online", as another process would; the message id.
fn send(rig: &Rig, to: &str, body: &str) -> i64 {
    let sent = rig.c2c(&["send-message", "--as", "online", "--to", to, "--body", body]);
    sent["id"].as_i64().expect("id")
}

/// The name of the [`Neighbour`].
const NEIGHBOUR: &str = "neighbour";

/// Another session's server in the same project, started as a second Claude Code session
/// there would start it (`--name neighbour`, its parent a shell that is no ancestor of the
/// hooks under test), calling `heartbeat` every 50 ms until dropped, so that it is always the
/// most recently seen server in the project: a hook that bound by project directory rather
/// than by its own Claude Code session would find it, and hand the model its messages.
struct Neighbour {
    stop: Arc<AtomicBool>,
    beating: Option<std::thread::JoinHandle<()>>,
}

impl Neighbour {
    /// Starts the neighbour in `rig`'s working directory; returns once it is registered.
    fn start(rig: &Rig) -> Neighbour {
        let work = rig.file("work");
        let mut cmd = std::process::Command::new("sh");
        // `; exit $?` keeps the shell from replacing itself with the server.
        cmd.arg("-c")
            .arg("\"$0\" \"$@\"; exit $?")
            .arg(BIN)
            .arg("--db")
            .arg(rig.dir.path())
            .args(["--name", NEIGHBOUR])
            .current_dir(&work);
        for var in common::SERVER_ENV {
            cmd.env_remove(var);
        }
        cmd.env("CLAUDE_PROJECT_DIR", &work);
        let mut raw = Raw::start(cmd);
        let beat = raw.call("heartbeat", json!({}));
        assert!(
            matches!(beat, Some(Ok(_))),
            "the neighbour's heartbeat: {beat:?}"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let beating = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) && raw.call("heartbeat", json!({})).is_some() {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Neighbour {
            stop,
            beating: Some(beating),
        }
    }
}

impl Drop for Neighbour {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(beating) = self.beating.take() {
            let _ = beating.join();
        }
    }
}

/// The live registration of local, as `list-sessions` shows it.
fn holder(rig: &Rig) -> Option<Value> {
    let list = rig.c2c(&["list-sessions"]);
    list["sessions"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == LOCAL))
        .cloned()
}

/// Waits up to [`RUN_LIMIT`] for a live registration of local; its session id.
fn await_holder(rig: &Rig) -> String {
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        if let Some(holder) = holder(rig) {
            return holder["session_id"].as_str().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "local was never registered{}",
            context(rig)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every row of the sessions table (superseded ones too), one line each, for failure messages.
fn sessions_table(rig: &Rig) -> String {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let read = || -> rusqlite::Result<Vec<String>> {
        let conn = rusqlite::Connection::open_with_flags(rig.dir.path(), flags)?;
        let mut stmt = conn.prepare("SELECT * FROM sessions ORDER BY rowid")?;
        let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
        let rows = stmt.query_map([], |row| {
            let mut line = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let value = match row.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => continue,
                    rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                    rusqlite::types::ValueRef::Real(x) => x.to_string(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    rusqlite::types::ValueRef::Blob(_) => "<blob>".into(),
                };
                line.push(format!("{name}={value}"));
            }
            Ok(line.join(" "))
        })?;
        rows.collect()
    };
    match read() {
        Ok(rows) => rows.join("\n"),
        Err(e) => format!("(cannot read the sessions table: {e})"),
    }
}

/// What a failure message shows: the sessions table, the debug log's lines about our server
/// and hooks, and the requests the stand-in got.
fn context(rig: &Rig) -> String {
    format!(
        "\nsessions table:\n{}\ndebug log:\n{}\nrequests:\n{}",
        sessions_table(rig),
        rig.server_lines(),
        rig.standin.summary()
    )
}

/// Whether `request` carries `needle` in any text.
fn carries(request: &Request, needle: &str) -> bool {
    request.texts().iter().any(|t| t.contains(needle))
}

/// The `session_id` a run with `--output-format json` reports.
fn session_of(run: &Run) -> String {
    let result: Value = serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", run.stdout);
    });
    result["session_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no session_id in {result}"))
        .to_string()
}

/// How a second `claude -p` picks up the first one's conversation.
#[derive(Debug, Clone, Copy)]
enum Resume {
    /// `--continue`: the most recent conversation in the directory.
    Continue,
    /// `--resume ID`.
    Id,
    /// `--resume ID --fork-session`: a copy of it under a new id.
    Fork,
}

/// One `claude -p` run, then a message for local, then a second run that resumes the first
/// conversation as `resume` says, while a [`Neighbour`] runs in the same project: the message
/// reaches the second run's model through the hooks (SessionStart or UserPromptSubmit,
/// whichever runs once local is bound), in a request that carries the first conversation, its
/// receipt says `hook`, and the neighbour's message does not reach that model. Returns the
/// two runs' session ids.
fn message_reaches_resumed_run(
    test: &str,
    naming: Naming,
    resume: Resume,
) -> Option<(String, String)> {
    let script = vec![Step::text("first answer"), Step::text("second answer")];
    let rig = flow_rig(test, script, naming, ALL_HOOKS)?;
    let first_prompt = format!("{test}: first prompt");
    let first = rig.run(&first_prompt, &["--output-format", "json"], &[]);
    let first_id = session_of(&first);
    assert!(
        rig.standin
            .main_requests()
            .iter()
            .any(|r| carries(r, &first_prompt)),
        "the first run's prompt reached no model request{}",
        context(&rig)
    );
    let holder_before = holder(&rig).map(|h| h["session_id"].clone());

    let neighbour = Neighbour::start(&rig);
    let aside = format!("{test}: for the neighbour only");
    send(&rig, NEIGHBOUR, &aside);
    let body = format!("{test}: sent between the runs");
    let id = send(&rig, LOCAL, &body);
    let before = rig.standin.main_requests().len();
    let mut extra = vec!["--output-format", "json"];
    match resume {
        Resume::Continue => extra.push("--continue"),
        Resume::Id => extra.extend(["--resume", &first_id]),
        Resume::Fork => extra.extend(["--resume", &first_id, "--fork-session"]),
    }
    let second = rig.run(&format!("{test}: second prompt"), &extra, &[]);
    let second_id = session_of(&second);
    drop(neighbour);
    let holder_after = holder(&rig).map(|h| h["session_id"].clone());
    eprintln!(
        "{test}: Claude Code session {first_id} then {second_id}; local held by {holder_before:?} \
         then {holder_after:?}"
    );

    let later: Vec<Request> = rig.standin.main_requests().split_off(before);
    assert!(
        !later.is_empty(),
        "the second run sent no request{}",
        context(&rig)
    );
    assert!(
        later.iter().all(|r| carries(r, &first_prompt)),
        "the second run did not resume the first conversation{}",
        context(&rig)
    );
    assert!(
        later.iter().any(|r| carries(r, &body)),
        "the message sent between the runs did not reach the second run's model ({resume:?}, \
         hooks {naming:?}){}",
        context(&rig)
    );
    assert!(
        !rig.standin.requests().iter().any(|r| carries(r, &aside)),
        "the neighbour's message reached local's model ({resume:?}, hooks {naming:?}){}",
        context(&rig)
    );
    let receipt = rig.receipt("online", id, LOCAL);
    assert_eq!(receipt["via"], "hook", "receipt {receipt}");
    Some((first_id, second_id))
}

/// `claude -p`, a message, `claude -p --continue`: the message reaches the resumed run,
/// whose server got a new `CLAUDE_CODE_SESSION_ID` while its hooks got the conversation's id.
#[test]
fn message_reaches_a_continued_print_run() {
    message_reaches_resumed_run(
        "message_reaches_a_continued_print_run",
        Naming::Found,
        Resume::Continue,
    );
}

/// The same with `--resume ID`, which keeps one id for the server and the hooks.
#[test]
fn message_reaches_a_resumed_print_run() {
    let ids = message_reaches_resumed_run(
        "message_reaches_a_resumed_print_run",
        Naming::Found,
        Resume::Id,
    );
    if let Some((first, second)) = ids {
        assert_eq!(first, second, "--resume ID changed the session id");
    }
}

/// The same with `--resume ID --fork-session`, which continues under a new id.
#[test]
fn message_reaches_a_forked_print_run() {
    let ids = message_reaches_resumed_run(
        "message_reaches_a_forked_print_run",
        Naming::Found,
        Resume::Fork,
    );
    if let Some((first, second)) = ids {
        assert_ne!(first, second, "--fork-session kept the session id");
    }
}

/// Hooks that name their session (`--name local`, as `claude-c2c init` writes them) bind in
/// the `-p --continue` flow too.
#[test]
fn named_hooks_reach_a_continued_print_run() {
    message_reaches_resumed_run(
        "named_hooks_reach_a_continued_print_run",
        Naming::Named,
        Resume::Continue,
    );
}

/// A session in a room (server and hooks given `--room shop`, as `init --room shop` wires
/// them) through `-p` then `-p --continue`, while the default room has a `local` of its own
/// with a message waiting: the message sent to local in shop reaches the model, by a hook, and
/// the default room's never does.
#[test]
fn a_room_keeps_its_messages_through_a_continued_print_run() {
    room_keeps_its_messages(
        "a_room_keeps_its_messages_through_a_continued_print_run",
        Naming::NamedIn("shop"),
    );
}

/// The same with hooks that name the session but not its room (the server alone was given
/// `--room shop`): a hook binds the session its own Claude Code process started, not the
/// default room's namesake.
#[test]
fn hooks_without_the_room_bind_their_own_server_in_its_room() {
    room_keeps_its_messages(
        "hooks_without_the_room_bind_their_own_server_in_its_room",
        Naming::NamedServerIn("shop"),
    );
}

// The flow of the two tests above, with the hooks named as `naming` says.
fn room_keeps_its_messages(test: &str, naming: Naming) {
    let script = vec![Step::text("first answer"), Step::text("second answer")];
    let Some(rig) = flow_rig(test, script, naming, ALL_HOOKS) else {
        return;
    };
    let first_prompt = format!("{test}: first prompt");
    rig.run(&first_prompt, &["--output-format", "json"], &[]);
    let in_shop = rig.c2c(&["list-sessions", "--room", "shop"]);
    assert_eq!(in_shop["room"], "shop");
    assert!(
        in_shop["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == LOCAL),
        "the server did not register in shop: {in_shop}{}",
        context(&rig)
    );

    // The default room's own local, with a message that must stay there.
    rig.c2c(&["register-session", "--name", LOCAL]);
    let aside = format!("{test}: for the default room's local");
    send(&rig, LOCAL, &aside);
    let body = format!("{test}: for shop's local");
    let sent = rig.c2c(&[
        "send-message",
        "--room",
        "shop",
        "--as",
        "online",
        "--to",
        LOCAL,
        "--body",
        &body,
    ]);
    let id = sent["id"].as_i64().expect("id");

    let before = rig.standin.main_requests().len();
    rig.run(
        &format!("{test}: second prompt"),
        &["--output-format", "json", "--continue"],
        &[],
    );
    let later: Vec<Request> = rig.standin.main_requests().split_off(before);
    assert!(
        later.iter().any(|r| carries(r, &body)),
        "shop's message did not reach the continued run's model{}",
        context(&rig)
    );
    assert!(
        !rig.standin.requests().iter().any(|r| carries(r, &aside)),
        "the default room's message reached shop's model{}",
        context(&rig)
    );
    let outbox = rig.c2c(&["outbox", "--room", "shop", "--as", "online"]);
    let receipt = outbox["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["id"] == id))
        .map(|m| m["recipients"][0].clone())
        .unwrap_or_else(|| panic!("message {id} not in shop's outbox: {outbox}"));
    assert_eq!(
        (&receipt["name"], &receipt["via"]),
        (&json!(LOCAL), &json!("hook")),
        "{receipt}"
    );
    let waiting = rig.c2c(&["inbox", "--as", LOCAL]);
    assert_eq!(
        waiting["messages"][0]["body"], aside,
        "the default room's message is no longer waiting: {waiting}"
    );
}

/// `claude mcp list` and `claude mcp get c2c`, run in the project while a session works there,
/// start our server with the session's own `--name local` for a health check (initialize,
/// list, exit). The running session keeps its name: the same registration holds `local`
/// afterwards, and a message then sent to `local` reaches that session's model (through an
/// `inbox` call the model makes once the stand-in lets its turn go on).
#[test]
fn health_check_leaves_the_running_session_its_name() {
    let test = "health_check_leaves_the_running_session_its_name";
    let script = vec![
        Step::Wait(RUN_LIMIT),
        Step::tool("mcp__c2c__inbox", json!({})),
        Step::text("done"),
    ];
    let Some(rig) = flow_rig(test, script, Naming::Found, ALL_HOOKS) else {
        return;
    };
    let running = rig.spawn("hold on, then read your inbox", &[], &[]);
    assert!(
        rig.standin.wait_for_main(1, RUN_LIMIT),
        "the session sent no request{}",
        context(&rig)
    );
    let session = await_holder(&rig);

    for args in [&["mcp", "list"][..], &["mcp", "get", "c2c"]] {
        let check = rig.claude(args, &[]);
        let said = format!("{}{}", check.stdout, check.stderr);
        assert!(
            said.contains("c2c") && said.contains("Connected"),
            "claude {args:?} did not check our server: {said}"
        );
        let now = holder(&rig).map(|h| h["session_id"].clone());
        assert_eq!(
            now,
            Some(json!(session)),
            "after claude {args:?}, the running session no longer holds local{}",
            context(&rig)
        );
    }

    let body = format!("{test}: for the running session");
    let id = send(&rig, LOCAL, &body);
    rig.standin.release();
    rig.finish(running);
    let read = rig
        .standin
        .main_requests()
        .iter()
        .flat_map(|r| r.tool_results())
        .any(|b| standin::result_texts(&b).iter().any(|t| t.contains(&body)));
    assert!(
        read,
        "the running session's inbox did not show the message{}",
        context(&rig)
    );
    let receipt = rig.receipt("online", id, LOCAL);
    assert_ne!(receipt["status"], "queued", "receipt {receipt}");
}

/// Waits for the REPL to connect our server and draw its prompt; fails saying why not.
fn await_prompt(rig: &Rig, repl: &Repl) {
    let ready = repl.wait_for(RUN_LIMIT, || {
        (rig.debug_log().contains(CONNECTED) && drawn(&repl.screen()).contains('❯')).then_some(())
    });
    assert!(
        ready.is_some(),
        "the REPL did not get ready{}\nscreen:\n{}",
        context(rig),
        drawn(&repl.screen())
    );
}

/// Waits for a debug-log line containing every one of `parts`; the line.
fn await_log(rig: &Rig, repl: &Repl, parts: &[&str]) -> String {
    repl.wait_for(RUN_LIMIT, || {
        rig.debug_log()
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
            .map(str::to_string)
    })
    .unwrap_or_else(|| {
        panic!(
            "no debug-log line with {parts:?}{}\nscreen:\n{}",
            context(rig),
            drawn(&repl.screen())
        )
    })
}

/// In the interactive REPL, `/clear` starts a new conversation: the hooks get a new session
/// id while the server runs on, started under the old one. A message sent after `/clear`
/// reaches the model through the prompt hooks with the next prompt, in a request without the
/// cleared conversation, and a [`Neighbour`]'s message never does. The Stop hook is left out: Claude Code 2.1.332 keeps the first
/// turn's `hook wait` running in the background through `/clear`, and that waiter, bound
/// before the ids changed, would hand over the message by waking the new conversation, which
/// is not the path under test here.
#[test]
fn message_reaches_the_repl_after_clear() {
    let test = "message_reaches_the_repl_after_clear";
    let script = vec![Step::text("first answer"), Step::text("second answer")];
    let hooks = &["SessionStart", "UserPromptSubmit"];
    let Some(rig) = flow_rig(test, script, Naming::Found, hooks) else {
        return;
    };
    let Some(mut repl) = required(test, rig.repl(&[], &[])) else {
        return;
    };
    await_prompt(&rig, &repl);
    let neighbour = Neighbour::start(&rig);
    let aside = format!("{test}: for the neighbour only");
    send(&rig, NEIGHBOUR, &aside);
    repl.submit("first question");
    assert!(
        rig.standin.wait_for_main(1, RUN_LIMIT),
        "the first prompt reached no model request{}",
        context(&rig)
    );
    let answered = repl.wait_for(RUN_LIMIT, || {
        drawn(&repl.screen()).contains("firstanswer").then_some(())
    });
    assert!(answered.is_some(), "no answer drawn{}", context(&rig));

    repl.submit("/clear");
    let cleared = await_log(&rig, &repl, &["Hooks: SessionStart:clear", "finished"]);
    eprintln!("{test}: {cleared}");
    let body = format!("{test}: sent after /clear");
    let id = send(&rig, LOCAL, &body);
    let before = rig.standin.main_requests().len();
    repl.submit("second question");
    let reached = repl.wait_for(RUN_LIMIT, || {
        rig.standin
            .main_requests()
            .into_iter()
            .find(|r| carries(r, "second question"))
    });
    let reached = reached.unwrap_or_else(|| {
        panic!(
            "the second prompt reached no model request{}\nscreen:\n{}",
            context(&rig),
            drawn(&repl.screen())
        )
    });
    repl.stop();
    drop(neighbour);
    assert_eq!(
        rig.standin.main_requests()[before].body,
        reached.body,
        "a request came between /clear and the second prompt's{}",
        context(&rig)
    );
    assert!(
        !carries(&reached, "first question"),
        "/clear did not clear the conversation{}",
        context(&rig)
    );
    assert!(
        carries(&reached, &body),
        "the message sent after /clear did not reach the model with the next prompt{}",
        context(&rig)
    );
    assert!(
        !rig.standin.requests().iter().any(|r| carries(r, &aside)),
        "the neighbour's message reached local's model{}",
        context(&rig)
    );
    let receipt = rig.receipt("online", id, LOCAL);
    assert_eq!(receipt["via"], "hook", "receipt {receipt}");
}

/// A process as `/proc` shows it.
#[cfg(target_os = "linux")]
#[derive(Debug)]
struct Proc {
    pid: u32,
    ppid: u32,
    /// Its arguments after the program.
    args: Vec<String>,
    /// `CLAUDE_CODE_SESSION_ID` in its environment.
    claude_session: Option<String>,
}

/// The live processes whose command line has `arg` as one of its arguments.
#[cfg(target_os = "linux")]
fn processes_with(arg: &str) -> Vec<Proc> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let dir = entry.path();
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .strip_suffix(&[0])
            .unwrap_or(&cmdline)
            .split(|b| *b == 0)
            .skip(1)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !args.iter().any(|a| a == arg) {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let ppid = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
        let claude_session = environ
            .split(|b| *b == 0)
            .find_map(|v| v.strip_prefix(b"CLAUDE_CODE_SESSION_ID="))
            .map(|v| String::from_utf8_lossy(v).into_owned());
        found.push(Proc {
            pid,
            ppid,
            args,
            claude_session,
        });
    }
    found
}

/// What the logging hook wrote about one run of it.
#[cfg(target_os = "linux")]
#[derive(Debug)]
struct HookRun {
    /// Its process and their ancestors, nearest first, as `pid:name`.
    ancestry: Vec<String>,
    /// `CLAUDE_CODE_SESSION_ID` in its environment, if set.
    env_session: String,
    /// What Claude Code gave it on stdin.
    input: Value,
}

#[cfg(target_os = "linux")]
impl HookRun {
    fn pids(&self) -> Vec<u32> {
        self.ancestry
            .iter()
            .filter_map(|a| a.split(':').next()?.parse().ok())
            .collect()
    }
}

/// Writes a hook script that appends its ancestry, `CLAUDE_CODE_SESSION_ID` and its input to
/// `log`, one tab-separated line per run; the script's path.
#[cfg(target_os = "linux")]
fn ancestry_logger(rig: &Rig, log: &Path) -> PathBuf {
    let script = format!(
        r#"#!/bin/sh
input=$(tr -d '\n')
chain=""
pid=$$
while [ -n "$pid" ] && [ "$pid" -gt 0 ]; do
    chain="$chain $pid:$(cat /proc/$pid/comm 2>/dev/null)"
    pid=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$pid/status 2>/dev/null)
done
printf '%s\t%s\t%s\n' "${{chain# }}" "${{CLAUDE_CODE_SESSION_ID:-}}" "$input" >> {}
"#,
        shell_quote(&log.display().to_string())
    );
    let path = rig.file("ancestry.sh");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The runs the logging hook wrote to `log` so far.
#[cfg(target_os = "linux")]
fn hook_runs(log: &Path) -> Vec<HookRun> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '\t');
            let ancestry = fields.next()?.split(' ').map(str::to_string).collect();
            let env_session = fields.next()?.to_string();
            let input = serde_json::from_str(fields.next()?).ok()?;
            Some(HookRun {
                ancestry,
                env_session,
                input,
            })
        })
        .collect()
}

/// What the fix's binding by process rests on, seen with the real CLI in the `-p --continue`
/// flow: the hooks of the resumed run (SessionStart, UserPromptSubmit) and its MCP server are
/// children of one Claude Code process, while the ids they are given differ (the server's
/// `CLAUDE_CODE_SESSION_ID` is new, the hooks get the conversation's). A hook that logs its
/// ancestry and input records it; the server's parent is read from `/proc` while the stand-in
/// holds the turn open.
#[cfg(target_os = "linux")]
#[test]
fn hooks_and_server_share_the_claude_process() {
    let test = "hooks_and_server_share_the_claude_process";
    let script = vec![
        Step::text("first answer"),
        Step::Wait(RUN_LIMIT),
        Step::text("second answer"),
    ];
    let Some(rig) = flow_rig(test, script, Naming::Found, ALL_HOOKS) else {
        return;
    };
    let log = rig.file("ancestry.log");
    let logger = ancestry_logger(&rig, &log);
    write_settings(&rig, Naming::Found, ALL_HOOKS, Some(&logger));
    let first = rig.run("first prompt", &["--output-format", "json"], &[]);
    let conversation = session_of(&first);
    let earlier = hook_runs(&log).len();

    let running = rig.spawn("second prompt", &["--continue"], &[]);
    assert!(
        rig.standin.wait_for_main(2, RUN_LIMIT),
        "the continued run sent no request{}",
        context(&rig)
    );
    let db = rig.dir.path().display().to_string();
    // Our server, not a `claude-c2c hook` still running.
    let servers: Vec<Proc> = processes_with(&db)
        .into_iter()
        .filter(|p| !p.args.iter().any(|a| a == "hook"))
        .collect();
    let hooks: Vec<HookRun> = hook_runs(&log).split_off(earlier);
    let claude = running.id();
    rig.standin.release();
    rig.finish(running);

    eprintln!("{test}: claude -p --continue is pid {claude}; conversation {conversation}");
    for server in &servers {
        eprintln!(
            "{test}: server pid {} (parent {}), CLAUDE_CODE_SESSION_ID {:?}",
            server.pid, server.ppid, server.claude_session
        );
    }
    for hook in &hooks {
        eprintln!(
            "{test}: hook {} session_id {} (env CLAUDE_CODE_SESSION_ID {:?}), ancestry {}",
            hook.input["hook_event_name"],
            hook.input["session_id"],
            hook.env_session,
            hook.ancestry.join(" ")
        );
    }
    let [server] = &servers[..] else {
        panic!("not one server process: {servers:?}{}", context(&rig));
    };
    assert_eq!(server.ppid, claude, "the server's parent is not claude");
    let events: Vec<&str> = hooks
        .iter()
        .filter_map(|h| h.input["hook_event_name"].as_str())
        .collect();
    for event in ["SessionStart", "UserPromptSubmit"] {
        assert!(events.contains(&event), "no {event} hook ran: {events:?}");
    }
    for hook in &hooks {
        assert!(
            hook.pids().contains(&server.ppid),
            "the {} hook does not descend from the server's parent {}: {}",
            hook.input["hook_event_name"],
            server.ppid,
            hook.ancestry.join(" ")
        );
        assert_eq!(
            hook.input["session_id"], conversation,
            "the hook's session_id is not the conversation's"
        );
    }
    assert_ne!(
        server.claude_session.as_deref(),
        Some(conversation.as_str()),
        "the continued run's server got the conversation's id: Claude Code changed; the \
         notes in RMCP-NOTES.md and DESIGN.md say otherwise"
    );
}
