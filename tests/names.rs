//! Who holds a name, with real processes: a health check (a server that starts, lists its
//! tools and exits) or a command-line visitor never takes a name from a running session; a
//! restarted session takes it from one whose process has exited; between two running
//! sessions the last one to use the name holds it; a server takes its name back from a holder
//! that has exited. Also the receipts a person at a terminal leaves (none) and the note on a
//! message to a name nobody has had.

mod common;

use std::path::Path;

use common::{Server, TempDb, cli, cli_json};
use serde_json::{Value, json};

/// The process id recorded by the live holder of `name`, if any.
fn holder_pid(db: &Path, name: &str) -> Option<i64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT pid FROM sessions WHERE name = ?1 AND superseded_at IS NULL",
        [name],
        |r| r.get(0),
    )
    .ok()
    .flatten()
}

/// Sends `body` from `from` to `to` through the command line; returns its result.
fn send_from_cli(db: &Path, from: &str, to: &str, body: &str) -> Value {
    cli_json(
        db,
        &["send-message", "--as", from, "--to", to, "--body", body],
    )
}

/// A server with `--name name` on `db`.
async fn named_server(db: &TempDb, name: &str) -> Server {
    Server::start_with(db, &["--name", name], &[]).await
}

#[tokio::test]
async fn a_health_check_never_takes_a_running_sessions_name() {
    let db = TempDb::new("names-health");
    let session = named_server(&db, "local").await;
    let id = session.ok("heartbeat", json!({})).await;
    assert_eq!(id["ok"], true);
    assert_eq!(holder_pid(&db.path(), "local"), Some(session.pid().into()));

    // What `claude mcp list` does: start, initialize, list the tools, exit.
    let check = named_server(&db, "local").await;
    let listed = check.client().list_all_tools().await.unwrap();
    assert!(!listed.is_empty());
    let check_pid = check.pid();
    check.stop().await;

    assert_eq!(
        holder_pid(&db.path(), "local"),
        Some(session.pid().into()),
        "the health check ({check_pid}) took the name"
    );
    session.ok("heartbeat", json!({})).await;
    let sent = send_from_cli(&db.path(), "online", "local", "still yours");
    assert_eq!(common::bodies(&session.unread().await), ["still yours"]);
    assert!(sent.get("note").is_none(), "{sent}");
    session.stop().await;
}

#[tokio::test]
async fn the_command_line_never_takes_a_running_sessions_name() {
    let db = TempDb::new("names-cli");
    let session = named_server(&db, "local").await;
    session.ok("heartbeat", json!({})).await;
    let out = cli(&db.path(), &["register-session", "--name", "local"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("held by a running session") && err.contains("--as local"),
        "{err}"
    );
    assert_eq!(holder_pid(&db.path(), "local"), Some(session.pid().into()));
    session.ok("heartbeat", json!({})).await;

    // A name nobody runs under can be taken from the command line, and records no process.
    let taken = cli_json(&db.path(), &["register-session", "--name", "ci"]);
    assert_eq!(taken["name"], "ci");
    assert_eq!(holder_pid(&db.path(), "ci"), None);
    session.stop().await;
}

#[tokio::test]
async fn a_restarted_session_takes_the_name_of_one_that_has_exited() {
    let db = TempDb::new("names-restart");
    let first = named_server(&db, "local").await;
    first.ok("heartbeat", json!({})).await;
    let first_pid = first.pid();
    first.stop().await;

    // The next server with the name holds it from its start, before any call.
    let second = named_server(&db, "local").await;
    assert_eq!(
        holder_pid(&db.path(), "local"),
        Some(second.pid().into()),
        "the exited holder {first_pid} kept the name"
    );
    second.stop().await;

    // A name taken from the command line (no process) is no obstacle either.
    cli_json(&db.path(), &["register-session", "--name", "cli-held"]);
    let server = named_server(&db, "cli-held").await;
    assert_eq!(
        holder_pid(&db.path(), "cli-held"),
        Some(server.pid().into())
    );
    server.stop().await;
}

#[tokio::test]
async fn between_two_running_sessions_the_last_to_use_the_name_holds_it() {
    let db = TempDb::new("names-two");
    let first = named_server(&db, "local").await;
    first.ok("heartbeat", json!({})).await;
    let second = named_server(&db, "local").await;
    // Started, but not used yet: the first still holds the name.
    assert_eq!(holder_pid(&db.path(), "local"), Some(first.pid().into()));
    second.ok("list_sessions", json!({})).await;
    assert_eq!(holder_pid(&db.path(), "local"), Some(second.pid().into()));
    first
        .err(
            "heartbeat",
            json!({}),
            &["another session has registered as \"local\""],
        )
        .await;
    for s in [first, second] {
        s.stop().await;
    }
}

#[tokio::test]
async fn a_server_takes_its_name_back_from_a_holder_that_has_exited() {
    let db = TempDb::new("names-reclaim");
    let first = named_server(&db, "local").await;
    first.ok("heartbeat", json!({})).await;
    let second = named_server(&db, "local").await;
    second.ok("heartbeat", json!({})).await;
    assert_eq!(holder_pid(&db.path(), "local"), Some(second.pid().into()));
    second.stop().await;

    // The first session's next call finds the holder gone and takes the name back.
    let sent = send_from_cli(&db.path(), "online", "local", "back again");
    assert_eq!(common::bodies(&first.unread().await), ["back again"]);
    assert_eq!(holder_pid(&db.path(), "local"), Some(first.pid().into()));
    assert!(sent.get("note").is_none());
    first.stop().await;
}

#[tokio::test]
async fn a_person_reading_at_a_terminal_is_no_delivery_to_the_agent() {
    let db = TempDb::new("names-peek");
    let agent = named_server(&db, "online").await;
    agent.ok("heartbeat", json!({})).await;
    let sent = send_from_cli(&db.path(), "local", "online", "deploy?");
    let id = sent["id"].as_i64().unwrap();
    let status = |db: &Path| {
        let outbox = cli_json(db, &["outbox", "--as", "local"]);
        let row = outbox["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()
            .clone();
        row["recipients"][0].clone()
    };
    // A person peeks at the agent's inbox: the message is still queued for the agent.
    let peek = cli_json(&db.path(), &["inbox", "--as", "online"]);
    assert_eq!(common::ids(&peek), [id]);
    assert_eq!(status(&db.path())["status"], "queued");
    // The agent reads it: delivered, once, by inbox.
    assert_eq!(agent.unread_ids().await, [id]);
    let receipt = status(&db.path());
    assert_eq!(
        (&receipt["status"], &receipt["via"]),
        (&json!("delivered"), &json!("inbox"))
    );
    let first = receipt["delivered_at"].clone();
    agent.unread_ids().await;
    assert_eq!(status(&db.path())["delivered_at"], first);
    agent.stop().await;
}

#[tokio::test]
async fn a_message_to_a_name_nobody_has_had_says_so() {
    let db = TempDb::new("names-typo");
    let sender = named_server(&db, "local").await;
    let _online = named_server(&db, "online").await;
    let typo = sender
        .ok(
            "send_message",
            json!({"to": "onlien", "body": "for onlien"}),
        )
        .await;
    let note = typo["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("no session has ever registered as \"onlien\"")
            && note.contains("list_sessions"),
        "{typo}"
    );
    for to in ["online", "*"] {
        let sent = sender
            .ok("send_message", json!({"to": to, "body": "hi"}))
            .await;
        assert!(sent.get("note").is_none(), "{sent}");
    }
    // The message still waits for a session that takes the name.
    let late = named_server(&db, "onlien").await;
    assert_eq!(common::bodies(&late.unread().await), ["for onlien", "hi"]);
}
