//! Delivery without polling, end to end over stdio: `wait_for_message` (woken by another
//! process, filters, timeout, cancellation, progress), replies, receipts in `outbox`, channel
//! push with `--channel`, and the hook commands (`hook prompt`, `hook wait`).

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{Server, TempDb, bodies, ids, messages, std_command};
use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest, ServerResult};
use rmcp::service::PeerRequestOptions;
use serde_json::{Value, json};

const CHANNEL: &str = "notifications/claude/channel";

/// Runs the binary's command line on `db` with `args`, feeding `stdin`.
fn cli(db: &Path, args: &[&str], stdin: &str, envs: &[(&str, &str)]) -> Output {
    common::cli_with(db, args, envs, stdin)
}

/// Sends `body` to `to` as `from` from another process (the CLI); returns the id.
fn send_from_cli(db: &Path, from: &str, to: &str, body: &str, extra: &[&str]) -> i64 {
    let mut args = vec![
        "send-message",
        "--as",
        from,
        "--to",
        to,
        "--body",
        body,
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = cli(db, &args, "", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: Value = serde_json::from_slice(&out.stdout).unwrap();
    sent["id"].as_i64().unwrap()
}

fn receipts(outbox: &Value, id: i64) -> Vec<Value> {
    outbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("message {id} not in the outbox: {outbox}"))["recipients"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn wait_returns_unread_at_once_and_marks_nothing_read() {
    let db = TempDb::new("wait-now");
    let [alpha, beta] = Server::several(&db, ["alpha", "beta"]).await;
    let id = beta.send("alpha", "already here").await;
    let got = alpha.ok("wait_for_message", json!({})).await;
    assert_eq!(ids(&got), [id]);
    assert_eq!(got["timed_out"], false);
    assert_eq!(alpha.unread_ids().await, [id], "wait marks nothing read");
    let r = receipts(&beta.ok("outbox", json!({})).await, id);
    assert_eq!(r[0]["name"], "alpha");
    assert_eq!(r[0]["status"], "delivered");
    assert_eq!(r[0]["via"], "wait");
}

#[tokio::test]
async fn wait_is_woken_by_another_process_and_filters_by_tag_and_reply() {
    let db = TempDb::new("wait-wake");
    let alpha = Server::named(&db, "alpha").await;
    let question = alpha.send("beta", "what is the port?").await;
    let path = db.path();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // Neither of these is a reply to the question: the waiter must sleep through them.
        send_from_cli(&path, "beta", "alpha", "unrelated", &["--tag", "status"]);
        send_from_cli(&path, "beta", "*", "to everyone", &[]);
        std::thread::sleep(Duration::from_millis(300));
        let q = question.to_string();
        send_from_cli(&path, "beta", "alpha", "8080", &["--reply-to", &q])
    });
    let start = Instant::now();
    let got = alpha
        .ok(
            "wait_for_message",
            json!({ "reply_to": question, "timeout_seconds": 20 }),
        )
        .await;
    let waited = start.elapsed();
    let answer = sender.join().unwrap();
    assert_eq!(ids(&got), [answer], "only the reply: {got}");
    assert_eq!(messages(&got)[0]["reply_to"], question);
    assert_eq!(messages(&got)[0]["body"], "8080");
    assert!(waited < Duration::from_secs(10), "woken late: {waited:?}");
    // The tag filter picks the status message out of the three unread.
    let tagged = alpha
        .ok(
            "wait_for_message",
            json!({ "tag": "status", "timeout_seconds": 0 }),
        )
        .await;
    assert_eq!(messages(&tagged).len(), 1);
    assert_eq!(messages(&tagged)[0]["body"], "unrelated");
    assert_eq!(alpha.unread().await.len(), 3);
}

#[tokio::test]
async fn wait_times_out_empty_and_checks_its_arguments() {
    let db = TempDb::new("wait-timeout");
    let alpha = Server::named(&db, "alpha").await;
    let start = Instant::now();
    let got = alpha
        .ok("wait_for_message", json!({ "timeout_seconds": 1 }))
        .await;
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert_eq!(got, json!({ "messages": [], "timed_out": true }));
    alpha
        .err(
            "wait_for_message",
            json!({ "timeout_seconds": 601 }),
            &["timeout_seconds", "0 to 600"],
        )
        .await;
    let fresh = Server::start(&db).await;
    fresh
        .err("wait_for_message", json!({}), &["register_session"])
        .await;
}

#[tokio::test]
async fn a_cancelled_wait_stops_waiting() {
    let db = TempDb::new("wait-cancel");
    // At debug level the server logs every tool error, a cancelled call's included: the event
    // that says the wait has ended, where fixed pauses would let a slow but broken one pass.
    let alpha = Server::start_with(&db, &[], &[("RUST_LOG", "debug")]).await;
    alpha.register("alpha").await;
    let params = CallToolRequestParams::new("wait_for_message").with_arguments(
        json!({ "timeout_seconds": 60 })
            .as_object()
            .unwrap()
            .clone(),
    );
    // Dropping the call sends notifications/cancelled for it.
    let dropped =
        tokio::time::timeout(Duration::from_millis(300), alpha.client().call_tool(params)).await;
    assert!(dropped.is_err(), "the wait should still be waiting");
    let deadline = Instant::now() + common::CALL_TIMEOUT;
    while !alpha.stderr().contains("the client cancelled this call") {
        assert!(
            Instant::now() < deadline,
            "the wait did not end on its cancellation: {}",
            alpha.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let id = send_from_cli(&db.path(), "beta", "alpha", "after the cancel", &[]);
    let beta = Server::named(&db, "beta").await;
    let r = receipts(&beta.ok("outbox", json!({})).await, id);
    assert_eq!(
        r[0]["status"], "queued",
        "a cancelled wait must not deliver: {r:?}"
    );
    // The server is still at work, and took the cancellation as routine: no warning.
    assert_eq!(alpha.unread_ids().await, [id]);
    assert!(
        !alpha.stderr().contains("WARN"),
        "a cancellation logged a warning: {}",
        alpha.stderr()
    );
}

#[tokio::test]
async fn progress_keeps_a_long_wait_alive() {
    let db = TempDb::new("wait-progress");
    let alpha = Server::named(&db, "alpha").await;
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("wait_for_message")
            .with_arguments(json!({ "timeout_seconds": 9 }).as_object().unwrap().clone()),
    ));
    let mut options = PeerRequestOptions::no_options();
    // Without a progress notification within 7 s the client gives up: 2 s after the first
    // one is due (every 5 s), 2 s before the wait would answer by itself.
    options.timeout = Some(Duration::from_secs(7));
    options.reset_timeout_on_progress = true;
    let handle = alpha
        .client()
        .send_request_with_option(request, options)
        .await
        .unwrap();
    let response = handle
        .await_response()
        .await
        .expect("kept alive by progress");
    let ServerResult::CallToolResult(result) = response else {
        panic!("not a tool result: {response:?}");
    };
    assert_eq!(result.structured_content.unwrap()["timed_out"], true);
    let progress = alpha.notifications("notifications/progress");
    assert!(!progress.is_empty(), "no progress notification");
    assert_eq!(progress[0]["total"], 9.0);
}

#[tokio::test]
async fn replies_must_answer_a_visible_message() {
    let db = TempDb::new("replies");
    let [alpha, beta, gamma] = Server::several(&db, ["alpha", "beta", "gamma"]).await;
    let to_beta = alpha.send("beta", "question").await;
    let broadcast = gamma.send("*", "hello all").await;
    let not_seen = gamma.send("beta", "private").await;
    for original in [to_beta, broadcast] {
        let sent = beta
            .ok(
                "send_message",
                json!({ "to": "alpha", "body": "answer", "reply_to": original }),
            )
            .await;
        assert!(sent["id"].as_i64().unwrap() > original);
    }
    alpha
        .err(
            "send_message",
            json!({ "to": "gamma", "body": "x", "reply_to": not_seen }),
            &["reply_to", &not_seen.to_string()],
        )
        .await;
    alpha
        .err(
            "send_message",
            json!({ "to": "gamma", "body": "x", "reply_to": 999_999 }),
            &["reply_to"],
        )
        .await;
    let unread = alpha.unread().await;
    let replies: Vec<&Value> = unread
        .iter()
        .filter(|m| m["from_name"] == "beta")
        .map(|m| &m["reply_to"])
        .collect();
    assert_eq!(replies, [&json!(to_beta), &json!(broadcast)]);
}

#[tokio::test]
async fn outbox_receipts_go_queued_delivered_read_per_recipient() {
    let db = TempDb::new("receipts");
    let [alpha, beta, gamma] = Server::several(&db, ["alpha", "beta", "gamma"]).await;
    let direct = alpha.send("beta", "direct").await;
    let all = alpha.send("*", "broadcast").await;
    let outbox = alpha.ok("outbox", json!({})).await;
    assert_eq!(receipts(&outbox, direct)[0]["status"], "queued");
    assert_eq!(receipts(&outbox, all), Vec::<Value>::new());
    assert_eq!(outbox["messages"][0]["id"], all, "newest first");

    beta.unread().await;
    let r = receipts(&alpha.ok("outbox", json!({})).await, direct);
    assert_eq!(
        (&r[0]["status"], &r[0]["via"]),
        (&json!("delivered"), &json!("inbox"))
    );
    assert!(r[0].get("read_at").is_none());

    beta.ok("mark_read", json!({ "message_ids": [direct, all] }))
        .await;
    gamma.unread().await;
    let outbox = alpha.ok("outbox", json!({})).await;
    let r = receipts(&outbox, direct);
    assert_eq!(r[0]["status"], "read");
    assert!(r[0]["read_at"].is_string() && r[0]["delivered_at"].is_string());
    let mut broadcast: Vec<(String, String)> = receipts(&outbox, all)
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    broadcast.sort();
    assert_eq!(
        broadcast,
        [
            ("beta".to_string(), "read".to_string()),
            ("gamma".to_string(), "delivered".to_string())
        ]
    );
    // Only the sender's own messages are in its outbox.
    assert_eq!(beta.ok("outbox", json!({})).await["messages"], json!([]));
}

#[tokio::test]
async fn channel_pushes_each_new_message_once_as_delivered_not_read() {
    let db = TempDb::new("channel");
    // Waiting before the session's server starts: pushed when it starts.
    let early = send_from_cli(&db.path(), "beta", "alpha", "while you were away", &[]);
    let alpha = Server::start_with(&db, &["--name", "alpha", "--channel"], &[]).await;
    let caps = alpha.client().peer_info().unwrap().capabilities.clone();
    assert!(
        caps.experimental.unwrap().contains_key("claude/channel"),
        "capability missing"
    );
    let instructions = alpha.client().peer_info().unwrap().instructions.clone();
    assert!(instructions.unwrap().contains("<channel"));
    let first = alpha.wait_for_notifications(CHANNEL, 1).await;
    assert_eq!(first[0]["content"], "while you were away");
    assert_eq!(first[0]["meta"]["message_id"], early.to_string());
    assert_eq!(first[0]["meta"]["from"], "beta");

    let tagged = send_from_cli(
        &db.path(),
        "beta",
        "alpha",
        "new one",
        &["--tag", "question"],
    );
    send_from_cli(&db.path(), "beta", "gamma", "not for alpha", &[]);
    let all = send_from_cli(&db.path(), "beta", "*", "for everyone", &[]);
    let got = alpha.wait_for_notifications(CHANNEL, 3).await;
    assert_eq!(got[1]["meta"]["message_id"], tagged.to_string());
    assert_eq!(got[1]["meta"]["tag"], "question");
    assert_eq!(got[2]["meta"]["message_id"], all.to_string());
    assert_eq!(got[2]["meta"]["to"], "*");
    // Its own broadcast is not pushed back to it: the next push is the message after it.
    alpha.send("*", "mine").await;
    let after = send_from_cli(&db.path(), "beta", "alpha", "after mine", &[]);
    let got = alpha.wait_for_notifications(CHANNEL, 4).await;
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[3]["meta"]["message_id"], after.to_string());
    // Delivered, not read.
    assert_eq!(alpha.unread_ids().await, [early, tagged, all, after]);
    let beta = Server::named(&db, "beta").await;
    let r = receipts(&beta.ok("outbox", json!({})).await, tagged);
    assert_eq!(
        (&r[0]["status"], &r[0]["via"]),
        (&json!("delivered"), &json!("channel"))
    );
    // A restarted server of the session does not push them again.
    alpha.stop().await;
    let again = Server::start_with(&db, &["--name", "alpha", "--channel"], &[]).await;
    let late = send_from_cli(&db.path(), "beta", "alpha", "after restart", &[]);
    let later = send_from_cli(&db.path(), "beta", "alpha", "and another", &[]);
    let pushed = again.wait_for_notifications(CHANNEL, 2).await;
    let pushed_ids: Vec<Value> = pushed
        .iter()
        .map(|e| e["meta"]["message_id"].clone())
        .collect();
    assert_eq!(
        pushed_ids,
        [json!(late.to_string()), json!(later.to_string())],
        "{pushed:?}"
    );
}

#[tokio::test]
async fn without_channel_nothing_is_pushed_or_declared() {
    let db = TempDb::new("no-channel");
    let alpha = Server::start_with(&db, &["--name", "alpha"], &[]).await;
    let caps = alpha.client().peer_info().unwrap().capabilities.clone();
    assert!(
        caps.experimental
            .is_none_or(|e| !e.contains_key("claude/channel"))
    );
    let id = send_from_cli(&db.path(), "beta", "alpha", "hello", &[]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(alpha.notifications(CHANNEL).is_empty());
    let beta = Server::named(&db, "beta").await;
    assert_eq!(
        receipts(&beta.ok("outbox", json!({})).await, id)[0]["status"],
        "queued"
    );
}

#[tokio::test]
async fn c2c_channel_in_the_environment_turns_channels_on() {
    let db = TempDb::new("channel-env");
    let alpha = Server::start_with(&db, &["--name", "alpha"], &[("C2C_CHANNEL", "true")]).await;
    let caps = alpha.client().peer_info().unwrap().capabilities.clone();
    assert!(
        caps.experimental
            .is_some_and(|e| e.contains_key("claude/channel")),
        "C2C_CHANNEL=true did not declare the channel"
    );
    let id = send_from_cli(&db.path(), "beta", "alpha", "pushed", &[]);
    let pushed = alpha.wait_for_notifications(CHANNEL, 1).await;
    assert_eq!(pushed[0]["meta"]["message_id"], json!(id.to_string()));
    // Any other value is refused at start-up rather than read as off.
    let out = std_command()
        .arg("--db")
        .arg(db.path())
        .env("C2C_CHANNEL", "sometimes")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
}

/// The server of Claude Code session `cc-alpha`, registered as "alpha".
async fn alpha_of_claude_session(db: &TempDb) -> Server {
    Server::start_with(
        db,
        &["--name", "alpha"],
        &[("CLAUDE_CODE_SESSION_ID", "cc-alpha")],
    )
    .await
}

fn hook_input(session: &str, cwd: &str) -> String {
    json!({ "session_id": session, "cwd": cwd, "hook_event_name": "UserPromptSubmit" }).to_string()
}

#[tokio::test]
async fn the_prompt_hook_answers_for_the_event_it_was_run_for() {
    let db = TempDb::new("hook-event");
    let path = db.path();
    let alpha = Server::start_with(&db, &["--name", "alpha"], &[]).await;
    alpha.ok("heartbeat", json!({})).await;
    let run = |input: String| {
        let out = cli(&path, &["hook", "prompt", "--name", "alpha"], &input, &[]);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["hookSpecificOutput"].clone()
    };
    // As a SessionStart hook, the output names SessionStart (Claude Code drops output whose
    // event name is not the hook's own).
    send_from_cli(&path, "beta", "alpha", "at start-up", &[]);
    let input = json!({ "session_id": "s", "cwd": "/x", "hook_event_name": "SessionStart" });
    let printed = run(input.to_string());
    assert_eq!(printed["hookEventName"], "SessionStart", "{printed}");
    assert!(
        printed["additionalContext"]
            .as_str()
            .unwrap()
            .contains("at start-up"),
        "{printed}"
    );
    // Input without an event name is taken as a prompt.
    send_from_cli(&path, "beta", "alpha", "later on", &[]);
    let printed = run(json!({ "session_id": "s", "cwd": "/x" }).to_string());
    assert_eq!(printed["hookEventName"], "UserPromptSubmit", "{printed}");
    assert!(
        printed["additionalContext"]
            .as_str()
            .unwrap()
            .contains("later on"),
        "{printed}"
    );
    alpha.stop().await;
}

#[tokio::test]
async fn prompt_hook_finds_its_session_and_hands_over_unread_messages() {
    let db = TempDb::new("hook-prompt");
    let project = db.dir().to_string_lossy().into_owned();
    // Both servers are started apart from this test, so the hooks it runs do not find them by
    // their shared Claude Code process but by session id and project.
    let alpha = Server::start_apart(
        &db,
        &["--name", "alpha"],
        &[
            ("CLAUDE_CODE_SESSION_ID", "cc-alpha"),
            ("CLAUDE_PROJECT_DIR", "/elsewhere"),
        ],
    )
    .await;
    let _other = Server::start_apart(
        &db,
        &["--name", "other"],
        &[
            ("CLAUDE_CODE_SESSION_ID", "cc-other"),
            ("CLAUDE_PROJECT_DIR", project.as_str()),
        ],
    )
    .await;
    let path = db.path();
    // Nothing unread: no output at all.
    let quiet = cli(
        &path,
        &["hook", "prompt"],
        &hook_input("cc-alpha", "/x"),
        &[],
    );
    assert!(quiet.status.success());
    assert!(
        quiet.stdout.is_empty() && quiet.stderr.is_empty(),
        "{quiet:?}"
    );

    let id = send_from_cli(
        &path,
        "beta",
        "alpha",
        "please review",
        &["--tag", "handoff"],
    );
    send_from_cli(&path, "beta", "other", "for the other one", &[]);
    let out = cli(
        &path,
        &["hook", "prompt"],
        &hook_input("cc-alpha", &project),
        &[],
    );
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let context = printed["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert_eq!(
        printed["hookSpecificOutput"]["hookEventName"],
        "UserPromptSubmit"
    );
    assert!(context.contains("please review") && context.contains(&format!("[id {id}]")));
    assert!(!context.contains("for the other one"), "{context}");
    // Delivered by the hook, still unread.
    assert_eq!(alpha.unread_ids().await, [id]);
    let beta = Server::start_apart(&db, &["--name", "beta"], &[]).await;
    let r = receipts(&beta.ok("outbox", json!({})).await, id);
    assert_eq!(
        (&r[0]["status"], &r[0]["via"]),
        (&json!("delivered"), &json!("hook"))
    );

    // An unknown Claude Code session (as after `claude -p --continue`) falls back to the
    // project directory: the latest server started there, whatever session id it recorded.
    let fallback = cli(
        &path,
        &["hook", "prompt"],
        &hook_input("cc-unknown", &project),
        &[],
    );
    let printed: Value =
        serde_json::from_slice(&fallback.stdout).unwrap_or_else(|e| panic!("{e}: {fallback:?}"));
    let context = printed["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert!(context.contains("for the other one") && !context.contains("please review"));
    // Neither bound: nothing for the model, and a note on stderr that says why.
    let unbound = cli(
        &path,
        &["hook", "prompt"],
        &hook_input("cc-unknown", "/nowhere"),
        &[],
    );
    assert!(unbound.status.success() && unbound.stdout.is_empty());
    let note = String::from_utf8_lossy(&unbound.stderr);
    assert!(
        note.contains("no session to hand messages to")
            && note.contains("cc-unknown")
            && note.contains("--name NAME"),
        "{note}"
    );
    // A name given to the hook wins over everything else.
    let named = cli(
        &path,
        &["hook", "prompt", "--name", "other"],
        &hook_input("cc-alpha", "/nowhere"),
        &[],
    );
    let printed: Value = serde_json::from_slice(&named.stdout).unwrap();
    let context = printed["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert!(context.contains("for the other one") && !context.contains("please review"));
}

#[tokio::test]
async fn a_hook_finds_the_server_its_claude_code_process_started() {
    // This test stands in for Claude Code: it starts one server itself (its child, as Claude
    // Code's MCP servers are) and runs the hooks as its children too, with a session id and
    // project that match nothing (as after `--continue` or `/clear`).
    let db = TempDb::new("hook-ancestry");
    let _apart = Server::start_apart(
        &db,
        &["--name", "elsewhere"],
        &[("CLAUDE_PROJECT_DIR", "/p")],
    )
    .await;
    let mine = Server::start_with(&db, &["--name", "mine"], &[("CLAUDE_PROJECT_DIR", "/p")]).await;
    mine.ok("heartbeat", json!({})).await;
    let path = db.path();
    let id = send_from_cli(&path, "beta", "mine", "for this process", &[]);
    send_from_cli(&path, "beta", "elsewhere", "for another process", &[]);
    let out = cli(
        &path,
        &["hook", "prompt"],
        &hook_input("cc-renewed", "/p"),
        &[],
    );
    let printed: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let context = printed["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert!(
        context.contains("for this process") && !context.contains("for another process"),
        "{context}"
    );
    assert_eq!(mine.unread_ids().await, [id]);
}

#[test]
fn hooks_never_block_the_prompt_on_a_broken_database() {
    let db = TempDb::new("hook-broken");
    let garbage = db.dir().join("garbage.db");
    std::fs::write(&garbage, b"this is not an SQLite database, not at all").unwrap();
    for (path, input) in [
        (garbage.as_path(), hook_input("s", "/x")),
        (db.dir(), hook_input("s", "/x")),
        (garbage.as_path(), "not json".to_string()),
    ] {
        let out = cli(path, &["hook", "prompt"], &input, &[]);
        assert!(out.status.success(), "{out:?}");
        assert!(out.stdout.is_empty());
        let note = String::from_utf8_lossy(&out.stderr);
        assert!(note.contains("continuing without messages"), "{note}");
    }
    // A hook command this version cannot parse (exit 2 would make Claude Code drop the prompt).
    let out = cli(
        &db.path(),
        &["hook", "prompt", "--bogus"],
        &hook_input("s", "/x"),
        &[],
    );
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("--bogus") && note.contains("continuing without messages"),
        "{note}"
    );
    // A missing file is not created by a hook, which says so on stderr.
    let missing = db.dir().join("missing.db");
    let out = cli(&missing, &["hook", "wait"], &hook_input("s", "/x"), &[]);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("no database at") && note.contains("missing.db"),
        "{note}"
    );
    assert!(!missing.exists());
}

#[tokio::test]
async fn wait_hook_exits_2_with_the_next_new_message_and_0_at_its_timeout() {
    let db = TempDb::new("hook-wait");
    let alpha = alpha_of_claude_session(&db).await;
    let path = db.path();
    let input = hook_input("cc-alpha", "/x");
    // A message already handed over (here by the session's inbox) does not wake it again.
    let old = send_from_cli(&path, "beta", "alpha", "old news", &[]);
    assert_eq!(bodies(&alpha.unread().await), ["old news"]);
    let start = Instant::now();
    let idle = cli(
        &path,
        &["hook", "wait", "--timeout-seconds", "1"],
        &input,
        &[],
    );
    assert_eq!(idle.status.code(), Some(0), "{idle:?}");
    assert!(idle.stdout.is_empty() && idle.stderr.is_empty());
    assert!(start.elapsed() >= Duration::from_secs(1));

    // Under `claude -p`, which would wait for the hook before exiting, it ends at once.
    let start = Instant::now();
    let print_mode = cli(
        &path,
        &["hook", "wait", "--timeout-seconds", "20"],
        &input,
        &[("CLAUDE_CODE_ENTRYPOINT", "sdk-cli")],
    );
    assert_eq!(print_mode.status.code(), Some(0));
    assert!(start.elapsed() < Duration::from_secs(10));

    let sender_path = path.clone();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        send_from_cli(&sender_path, "beta", "alpha", "wake up", &[])
    });
    let woke = cli(
        &path,
        &["hook", "wait", "--timeout-seconds", "20"],
        &input,
        &[],
    );
    let id = sender.join().unwrap();
    assert_eq!(woke.status.code(), Some(2));
    assert!(woke.stdout.is_empty());
    let text = String::from_utf8_lossy(&woke.stderr);
    assert!(
        text.contains("wake up") && text.contains(&format!("[id {id}]")),
        "{text}"
    );
    assert!(!text.contains("old news") && !text.contains(&format!("[id {old}]")));
}

#[tokio::test]
async fn channel_push_starts_when_the_model_registers() {
    let db = TempDb::new("channel-register");
    let early = send_from_cli(&db.path(), "beta", "alpha", "queued for alpha", &[]);
    let server = Server::start_with(&db, &["--channel"], &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server.notifications(CHANNEL).is_empty(),
        "nobody to push to yet"
    );
    server.register("alpha").await;
    let late = send_from_cli(&db.path(), "beta", "alpha", "after registering", &[]);
    let got = server.wait_for_notifications(CHANNEL, 2).await;
    let pushed: Vec<Value> = got
        .iter()
        .map(|e| e["meta"]["message_id"].clone())
        .collect();
    assert_eq!(pushed, [json!(early.to_string()), json!(late.to_string())]);
    // Superseded by another session of the name: pushes stop. The new holder's own push of
    // the next message marks the moment by which the old one would have pushed it too.
    let other = Server::start_with(&db, &["--channel"], &[]).await;
    other.register("alpha").await;
    send_from_cli(&db.path(), "beta", "alpha", "for the new holder", &[]);
    let theirs = other.wait_for_notifications(CHANNEL, 1).await;
    assert_eq!(theirs.last().unwrap()["content"], "for the new holder");
    assert_eq!(server.notifications(CHANNEL).len(), 2);
}

#[tokio::test]
async fn a_newer_wait_hook_takes_over_from_the_one_before() {
    let db = TempDb::new("hook-takeover");
    let _alpha = alpha_of_claude_session(&db).await;
    let path = db.path();
    let input = hook_input("cc-alpha", "/x");
    let spawn_waiter = |path: std::path::PathBuf, input: String| {
        std::thread::spawn(move || {
            let start = Instant::now();
            let out = cli(
                &path,
                &["hook", "wait", "--timeout-seconds", "30"],
                &input,
                &[],
            );
            (out, start.elapsed())
        })
    };
    // The waiter that may wake alpha, as recorded in the file.
    let waiter = |path: &Path| -> Option<String> {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT hook_waiter FROM sessions WHERE name = 'alpha' AND superseded_at IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let first = spawn_waiter(path.clone(), input.clone());
    // The second starts once the first has recorded itself, not after a guessed head start.
    let deadline = Instant::now() + Duration::from_secs(20);
    let first_id = loop {
        if let Some(id) = waiter(&path) {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the first waiter never took over"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let second = spawn_waiter(path.clone(), input.clone());
    let (out, took) = first.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "the older waiter gives way");
    assert!(out.stderr.is_empty() && took < Duration::from_secs(20));
    assert_ne!(waiter(&path), Some(first_id), "the second waiter took over");
    let id = send_from_cli(&path, "beta", "alpha", "for the newest waiter", &[]);
    let (out, _) = second.join().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("[id {id}]")));
}

#[tokio::test]
async fn outbox_limits_filters_cuts_previews_and_shows_replies_even_to_oneself() {
    let db = TempDb::new("outbox-views");
    let [alpha, beta] = Server::several(&db, ["alpha", "beta"]).await;
    let first = alpha
        .ok(
            "send_message",
            json!({ "to": "beta", "body": "é".repeat(60), "tag": "status" }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    // A follow-up to one's own message is a reply like any other.
    let long = format!("{}and more", "ü".repeat(60));
    let follow_up = alpha
        .ok(
            "send_message",
            json!({ "to": "beta", "body": long, "reply_to": first }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let last = alpha.send("*", "to everyone").await;

    let outbox = alpha.ok("outbox", json!({ "limit": 2 })).await;
    let shown: Vec<i64> = ids(&outbox);
    assert_eq!(shown, [last, follow_up], "the two newest: {outbox}");
    let row = &outbox["messages"][1];
    assert_eq!(row["reply_to"], first);
    // 60 characters (not bytes) and a mark where the text was cut.
    assert_eq!(row["preview"], format!("{}…", "ü".repeat(60)));
    let tagged = alpha.ok("outbox", json!({ "tag": "status" })).await;
    assert_eq!(ids(&tagged), [first]);
    // Exactly 60 characters are shown whole.
    assert_eq!(tagged["messages"][0]["preview"], "é".repeat(60));
    assert_eq!(tagged["messages"][0]["tag"], "status");
    assert!(tagged["messages"][0].get("reply_to").is_none());

    let inbox = beta.unread().await;
    assert_eq!(inbox[1]["id"], follow_up);
    assert_eq!(inbox[1]["reply_to"], first);
    assert_eq!(inbox[1]["body"], long, "the inbox shows the whole body");
}

#[tokio::test]
async fn channel_pushes_a_backlog_longer_than_one_batch_and_the_reply_to_meta() {
    // More waiting than one read of undelivered messages takes (50).
    const BACKLOG: usize = 57;
    let db = TempDb::new("channel-backlog");
    let beta = Server::named(&db, "beta").await;
    let mut queued = Vec::new();
    for n in 0..BACKLOG {
        queued.push(beta.send("alpha", &format!("backlog {n}")).await);
    }
    let alpha = Server::start_with(&db, &["--name", "alpha", "--channel"], &[]).await;
    let got = alpha.wait_for_notifications(CHANNEL, BACKLOG).await;
    let pushed: Vec<Value> = got
        .iter()
        .map(|e| e["meta"]["message_id"].clone())
        .collect();
    let expected: Vec<Value> = queued.iter().map(|id| json!(id.to_string())).collect();
    assert_eq!(pushed, expected, "each once, in order");

    // A reply says which message it answers.
    let question = alpha.send("beta", "which port?").await;
    let answer = send_from_cli(
        &db.path(),
        "beta",
        "alpha",
        "8080",
        &["--reply-to", &question.to_string()],
    );
    let got = alpha.wait_for_notifications(CHANNEL, BACKLOG + 1).await;
    assert_eq!(got.len(), BACKLOG + 1, "{:?}", &got[BACKLOG..]);
    let meta = &got[BACKLOG]["meta"];
    assert_eq!(meta["message_id"], answer.to_string());
    assert_eq!(meta["reply_to"], question.to_string());
    assert!(got[0]["meta"].get("reply_to").is_none());
}

#[tokio::test]
async fn a_wait_ends_when_its_session_is_superseded_meanwhile() {
    let db = TempDb::new("wait-superseded");
    let alpha = Server::named(&db, "alpha").await;
    let started = Instant::now();
    let waiting = alpha.call("wait_for_message", json!({ "timeout_seconds": 30 }));
    let takeover = async {
        // The wait is under way once its first run is over; the new registration is a
        // change of the file that wakes it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Server::named(&db, "alpha").await
    };
    let (waited, newer) = tokio::join!(waiting, takeover);
    let took = started.elapsed();
    let error = waited.expect_err("a superseded session's wait must not go on");
    assert!(error.contains("\"alpha\""), "{error}");
    assert!(took < Duration::from_secs(20), "noticed after {took:?}");
    // What arrives now is the new holder's.
    let id = newer.send("alpha", "for the new one").await;
    assert_eq!(newer.unread_ids().await, [id]);
}
