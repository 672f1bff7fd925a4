//! End-to-end tests: the built `claude-c2c` binary driven over stdio by rmcp's client, as an
//! MCP client such as Claude Code drives it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::{Server, TempDb, ids};
use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};

#[tokio::test]
async fn handshake_reports_our_name_version_protocol_and_instructions() {
    let db = TempDb::new("handshake");
    let server = Server::start(&db).await;
    let info = server.client().peer_info().expect("initialize result");
    let server_info = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(server_info.name, "claude-c2c");
    assert_eq!(server_info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
    let instructions = info.instructions.clone().expect("instructions");
    assert!(
        instructions.len() < 2048,
        "{} characters",
        instructions.len()
    );
    for needle in [
        "register_session",
        "inbox()",
        "mark_read",
        "set_state",
        "send_message",
    ] {
        assert!(instructions.contains(needle), "instructions lack {needle}");
    }
    assert!(info.capabilities.tools.is_some());
    server.stop().await;
}

#[tokio::test]
async fn tools_list_is_exactly_spec_tools_json() {
    let db = TempDb::new("tools-list");
    let server = Server::start(&db).await;
    let tools = server.client().list_all_tools().await.unwrap();
    let live = serde_json::to_value(&tools).unwrap();
    let spec: Value = serde_json::from_str(include_str!("../spec/tools.json")).unwrap();
    assert_eq!(
        live, spec["tools"],
        "spec/tools.json is not the live tools/list payload"
    );
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "register_session",
            "heartbeat",
            "list_sessions",
            "send_message",
            "inbox",
            "mark_read",
            "set_state",
            "get_state",
            "prune"
        ]
    );
    for tool in &tools {
        assert_eq!(
            tool.output_schema.as_ref().unwrap()["type"],
            "object",
            "{}",
            tool.name
        );
        assert_eq!(
            tool.input_schema["additionalProperties"], false,
            "{}",
            tool.name
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn two_sessions_hand_work_to_each_other() {
    let db = TempDb::new("two-sessions");
    let local = Server::named(&db, "local").await;
    let online = Server::named(&db, "online").await;

    let sent = local
        .ok(
            "send_message",
            json!({"to": "online", "body": "ran the etl, last_run_id=abc123", "tag": "status"}),
        )
        .await;
    assert_eq!(sent["to"], "online");
    assert_eq!(sent["tag"], "status");
    let id = sent["id"].as_i64().unwrap();
    local
        .ok(
            "set_state",
            json!({"key": "last_run_id", "value": "abc123"}),
        )
        .await;

    let inbox = online.ok("inbox", json!({})).await;
    let messages = inbox["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["id"], id);
    assert_eq!(m["from_name"], "local");
    assert_eq!(m["to_name"], "online");
    assert_eq!(m["body"], "ran the etl, last_run_id=abc123");
    assert_eq!(m["tag"], "status");
    assert!(m["from_session"].as_str().unwrap().len() == 36);
    assert!(m["created_at"].as_str().unwrap().ends_with("+00:00"));
    assert_eq!(m["read_at"], Value::Null);
    assert!(
        local.unread_ids().await.is_empty(),
        "the sender does not receive its own message"
    );

    // Reading does not mark read; mark_read does.
    assert_eq!(online.unread_ids().await, vec![id]);
    assert_eq!(
        online.ok("mark_read", json!({"message_ids": [id]})).await,
        json!({"marked": 1})
    );
    assert!(online.unread_ids().await.is_empty());
    let all = online.ok("inbox", json!({"unread_only": false})).await;
    assert_eq!(ids(&all), vec![id]);
    assert!(all["messages"][0]["read_at"].is_string());

    // State set by one is read by the other.
    let entry = online.ok("get_state", json!({"key": "last_run_id"})).await;
    assert_eq!(entry["entry"]["value"], "abc123");
    assert_eq!(entry["entry"]["updated_by"], "local");
    assert!(entry["entry"]["updated_at"].is_string());
    online
        .ok(
            "set_state",
            json!({"key": "last_run_id", "value": {"id": "def", "n": 2}}),
        )
        .await;
    let entry = local.ok("get_state", json!({"key": "last_run_id"})).await;
    assert_eq!(entry["entry"]["value"], json!({"id": "def", "n": 2}));
    assert_eq!(entry["entry"]["updated_by"], "online");
    local
        .ok(
            "set_state",
            json!({"key": "deploy/state", "value": "green"}),
        )
        .await;
    let prefixed = local.ok("get_state", json!({"prefix": "deploy/"})).await;
    assert_eq!(prefixed["entries"].as_array().unwrap().len(), 1);
    let everything = local.ok("get_state", json!({})).await;
    let keys: Vec<&str> = everything["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["deploy/state", "last_run_id"]);
    assert_eq!(
        local.ok("get_state", json!({"key": "missing"})).await,
        json!({"entry": null})
    );

    // The reply goes back the other way.
    let reply = online
        .ok(
            "send_message",
            json!({"to": "local", "body": "redeploying", "tag": "handoff"}),
        )
        .await;
    assert_eq!(
        local.unread_ids().await,
        vec![reply["id"].as_i64().unwrap()]
    );

    // Both are listed, each seeing itself.
    let listed = local.ok("list_sessions", json!({})).await;
    let mut seen: Vec<(String, bool)> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["is_self"].as_bool().unwrap(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [("local".to_string(), true), ("online".to_string(), false)]
    );
    local.stop().await;
    online.stop().await;
}

#[tokio::test]
async fn registering_a_taken_name_supersedes_the_holder() {
    let db = TempDb::new("supersede");
    let local = Server::named(&db, "local").await;
    let old = Server::named(&db, "online").await;
    let queued = local
        .ok("send_message", json!({"to": "online", "body": "before"}))
        .await["id"]
        .as_i64()
        .unwrap();

    let new = Server::named(&db, "online").await;
    // The old holder is told, on every tool that needs its name.
    for tool in ["inbox", "heartbeat"] {
        old.err(tool, json!({}), &["\"online\"", "register_session"])
            .await;
    }
    old.err(
        "send_message",
        json!({"to": "local", "body": "x"}),
        &["no longer receives"],
    )
    .await;
    // Unread messages to the name are the new holder's, as are new ones.
    let after = local
        .ok("send_message", json!({"to": "online", "body": "after"}))
        .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(new.unread_ids().await, vec![queued, after]);
    let listed = new.ok("list_sessions", json!({})).await;
    let online: Vec<&Value> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "online")
        .collect();
    assert_eq!(online.len(), 1);
    assert_eq!(online[0]["is_self"], true);
    // The old one can take a name again.
    old.ok("register_session", json!({"name": "online-2"}))
        .await;
    old.ok("inbox", json!({})).await;

    // Registering again under one's own name keeps the registration.
    let first = new.ok("register_session", json!({"name": "online"})).await;
    let again = new
        .ok(
            "register_session",
            json!({"name": "online", "metadata": {"v": 2}}),
        )
        .await;
    assert_eq!(first["session_id"], again["session_id"]);
    let listed = new.ok("list_sessions", json!({})).await;
    let me = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["is_self"] == true)
        .unwrap()
        .clone();
    assert_eq!(me["metadata"], json!({"v": 2}));
    for s in [local, old, new] {
        s.stop().await;
    }
}

#[tokio::test]
async fn broadcasts_are_read_per_recipient() {
    let db = TempDb::new("broadcast");
    let a = Server::named(&db, "a").await;
    let b = Server::named(&db, "b").await;
    let c = Server::named(&db, "c").await;
    let id = a
        .ok("send_message", json!({"to": "*", "body": "standup in 5"}))
        .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(b.unread_ids().await, vec![id]);
    assert_eq!(c.unread_ids().await, vec![id]);
    assert!(
        a.unread_ids().await.is_empty(),
        "a broadcast does not come back to its sender"
    );

    assert_eq!(
        b.ok("mark_read", json!({"message_ids": [id]})).await["marked"],
        1
    );
    assert!(b.unread_ids().await.is_empty());
    assert_eq!(
        c.unread_ids().await,
        vec![id],
        "b's read must not hide it from c"
    );

    let late = Server::named(&db, "late").await;
    assert_eq!(
        late.unread_ids().await,
        vec![id],
        "a later session still sees it"
    );
    let b_all = b.ok("inbox", json!({"unread_only": false})).await;
    assert!(b_all["messages"][0]["read_at"].is_string());
    let c_all = c.ok("inbox", json!({"unread_only": false})).await;
    assert_eq!(c_all["messages"][0]["read_at"], Value::Null);
    for s in [a, b, c, late] {
        s.stop().await;
    }
}

#[tokio::test]
async fn mark_read_only_acknowledges_the_callers_messages() {
    let db = TempDb::new("mark-read");
    let a = Server::named(&db, "a").await;
    let b = Server::named(&db, "b").await;
    let c = Server::named(&db, "c").await;
    let to_b = a
        .ok("send_message", json!({"to": "b", "body": "for b"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let to_c = a
        .ok("send_message", json!({"to": "c", "body": "for c"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let own = a
        .ok("send_message", json!({"to": "*", "body": "from a"}))
        .await["id"]
        .as_i64()
        .unwrap();

    let result = b
        .ok("mark_read", json!({"message_ids": [to_b, to_c, 424242]}))
        .await;
    assert_eq!(
        result,
        json!({"marked": 1, "not_marked": [
            {"id": to_c, "reason": "not_addressed_to_you"},
            {"id": 424242, "reason": "not_found"}
        ]})
    );
    let again = b.ok("mark_read", json!({"message_ids": [to_b]})).await;
    assert_eq!(
        again,
        json!({"marked": 0, "not_marked": [{"id": to_b, "reason": "already_read"}]})
    );
    let own_result = a.ok("mark_read", json!({"message_ids": [own]})).await;
    assert_eq!(
        own_result["not_marked"][0]["reason"],
        "not_addressed_to_you"
    );
    // c's message is untouched.
    assert_eq!(c.unread_ids().await, vec![to_c, own]);
    assert_eq!(
        b.ok("mark_read", json!({"message_ids": []})).await,
        json!({"marked": 0})
    );
    for s in [a, b, c] {
        s.stop().await;
    }
}

#[tokio::test]
async fn a_name_containing_stale_is_an_ordinary_name() {
    let db = TempDb::new("stale-name");
    let x = Server::named(&db, "x-stale-y").await;
    let other = Server::named(&db, "other").await;
    other
        .ok("send_message", json!({"to": "x-stale-y", "body": "hi"}))
        .await;
    assert_eq!(x.unread_ids().await.len(), 1);
    let listed = other.ok("list_sessions", json!({})).await;
    assert!(
        listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "x-stale-y")
    );
    x.stop().await;
    other.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let db = TempDb::new("bad-input");
    let s = Server::start_with(&db, &["--max-body-bytes", "1000"], &[]).await;

    // Tools that need a name say so before registration.
    for tool in [
        "inbox",
        "heartbeat",
        "mark_read",
        "send_message",
        "set_state",
        "prune",
    ] {
        let args = match tool {
            "mark_read" => json!({"message_ids": [1]}),
            "send_message" => json!({"to": "b", "body": "x"}),
            "set_state" => json!({"key": "k", "value": 1}),
            _ => json!({}),
        };
        s.err(tool, args, &["register_session"]).await;
    }
    // Bad names.
    s.err(
        "register_session",
        json!({"name": ""}),
        &["`name`", "empty"],
    )
    .await;
    s.err(
        "register_session",
        json!({"name": "n".repeat(65)}),
        &["`name`", "64"],
    )
    .await;
    s.err(
        "register_session",
        json!({"name": "*"}),
        &["`name`", "every session"],
    )
    .await;
    s.err(
        "register_session",
        json!({"name": " padded"}),
        &["`name`", "spaces"],
    )
    .await;
    s.err(
        "register_session",
        json!({"name": "a\u{7}b"}),
        &["`name`", "control"],
    )
    .await;
    s.err(
        "register_session",
        json!({"name": "x", "metadata": "repo=etl"}),
        &["`metadata`", "JSON object"],
    )
    .await;
    s.err(
        "register_session",
        json!({"name": "x", "metadata": [1]}),
        &["`metadata`", "JSON object"],
    )
    .await;
    s.err(
        "register_session",
        json!({"name": 5}),
        &["`name`", "expected a string"],
    )
    .await;
    s.err(
        "register_session",
        json!({}),
        &["missing required argument `name`"],
    )
    .await;
    s.err(
        "register_session",
        json!({"name": "x", "nmae": "y"}),
        &["unknown argument `nmae`", "`name`", "`metadata`"],
    )
    .await;
    let listed = s.ok("list_sessions", json!({})).await;
    assert_eq!(
        listed["sessions"],
        json!([]),
        "failed registrations registered nothing"
    );

    s.ok("register_session", json!({"name": "me"})).await;
    s.err("inbox", json!({"limit": 0}), &["`limit`", "1 to 500"])
        .await;
    s.err("inbox", json!({"limit": 501}), &["`limit`", "1 to 500"])
        .await;
    s.err("inbox", json!({"limit": "ten"}), &["`limit`", "integer"])
        .await;
    s.err(
        "inbox",
        json!({"unread_only": "yes"}),
        &["`unread_only`", "boolean"],
    )
    .await;
    s.err(
        "list_sessions",
        json!({"active_within_min": 0}),
        &["`active_within_min`"],
    )
    .await;
    s.err(
        "prune",
        json!({"older_than_days": -1}),
        &["`older_than_days`", "0 to"],
    )
    .await;
    s.err(
        "mark_read",
        json!({"message_ids": "1,2"}),
        &["`message_ids`", "array"],
    )
    .await;
    s.err(
        "mark_read",
        json!({"message_ids": (0..1001).collect::<Vec<i64>>()}),
        &["at most 1000"],
    )
    .await;
    s.err(
        "send_message",
        json!({"to": "me", "body": ""}),
        &["`body`", "empty"],
    )
    .await;
    s.err(
        "send_message",
        json!({"to": "", "body": "x"}),
        &["`to`", "empty"],
    )
    .await;
    s.err(
        "send_message",
        json!({"to": "me", "body": "x".repeat(1001)}),
        &["`body`", "1001 bytes", "--max-body-bytes"],
    )
    .await;
    s.ok(
        "send_message",
        json!({"to": "me", "body": "x".repeat(1000)}),
    )
    .await;
    s.err(
        "set_state",
        json!({"key": "k", "value": "v".repeat(1000)}),
        &["`value`", "cap"],
    )
    .await;
    s.err(
        "set_state",
        json!({"key": "", "value": 1}),
        &["`key`", "empty"],
    )
    .await;
    s.err(
        "set_state",
        json!({"key": "k"}),
        &["missing required argument `value`"],
    )
    .await;
    s.err(
        "get_state",
        json!({"key": "k", "prefix": "k"}),
        &["not both"],
    )
    .await;
    s.err(
        "heartbeat",
        json!({"x": 1}),
        &["unknown argument `x`", "takes no arguments"],
    )
    .await;

    // Only the one valid message and no state were stored.
    assert_eq!(s.unread_ids().await.len(), 1);
    assert_eq!(s.ok("get_state", json!({})).await, json!({"entries": []}));

    // An unknown tool is a protocol error, and the server keeps serving.
    let unknown = s
        .client()
        .call_tool(rmcp::model::CallToolRequestParams::new("no_such_tool"))
        .await;
    assert!(unknown.is_err());
    s.ok("heartbeat", json!({})).await;
    s.stop().await;
}

#[tokio::test]
async fn prune_deletes_read_messages_and_keeps_unread_ones() {
    let db = TempDb::new("prune");
    let a = Server::named(&db, "a").await;
    let b = Server::named(&db, "b").await;
    let read = a
        .ok("send_message", json!({"to": "b", "body": "read"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let unread = a
        .ok("send_message", json!({"to": "b", "body": "unread"}))
        .await["id"]
        .as_i64()
        .unwrap();
    b.ok("mark_read", json!({"message_ids": [read]})).await;
    assert_eq!(
        a.ok("prune", json!({})).await,
        json!({"messages_deleted": 0, "sessions_deleted": 0})
    );
    let pruned = a.ok("prune", json!({"older_than_days": 0})).await;
    assert_eq!(pruned["messages_deleted"], 1);
    assert_eq!(b.unread_ids().await, vec![unread]);
    assert_eq!(
        ids(&b.ok("inbox", json!({"unread_only": false})).await),
        vec![unread]
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn name_flag_and_env_register_at_start_up() {
    let db = TempDb::new("name-flag");
    let flagged = Server::start_with(&db, &["--name", "local"], &[]).await;
    let from_env = Server::start_with(&db, &[], &[("C2C_NAME", "online")]).await;
    let instructions = flagged
        .client()
        .peer_info()
        .unwrap()
        .instructions
        .clone()
        .unwrap();
    assert!(instructions.contains("\"local\""), "{instructions}");
    flagged
        .ok(
            "send_message",
            json!({"to": "online", "body": "no register call needed"}),
        )
        .await;
    assert_eq!(from_env.unread_ids().await.len(), 1);
    let listed = from_env.ok("list_sessions", json!({})).await;
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2);
    flagged.stop().await;
    from_env.stop().await;
}

#[test]
fn version_and_help_exit_without_serving() {
    let out = Command::new(common::BIN)
        .arg("--version")
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("claude-c2c {}", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(common::BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--name",
        "--db",
        "--max-body-bytes",
        "CLAUDE_C2C_DB",
        "C2C_NAME",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn unusable_databases_fail_with_the_path_and_what_to_do() {
    let db = TempDb::new("bad-db");
    let garbage = db.dir().join("garbage.db");
    std::fs::write(&garbage, vec![b'x'; 4096]).unwrap();
    let run = |path: &std::path::Path| {
        Command::new(common::BIN)
            .arg("--db")
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&garbage);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&garbage.display().to_string())
            && stderr.contains("not an SQLite database"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing but the protocol may reach stdout"
    );
    assert_eq!(
        std::fs::read(&garbage).unwrap(),
        vec![b'x'; 4096],
        "the file was changed"
    );

    let out = run(db.dir());
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("is a directory"), "{stderr}");
}

#[tokio::test]
async fn a_new_database_is_private() {
    let db = TempDb::new("perms");
    let nested = db.dir().join("nested");
    let path = nested.join("c2c.db");
    let mut cmd = tokio::process::Command::new(common::BIN);
    cmd.arg("--db").arg(&path);
    let client = rmcp::ServiceExt::serve((), rmcp::transport::TokioChildProcess::new(cmd).unwrap())
        .await
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&nested), 0o700);
    assert_eq!(mode(&path), 0o600);
    let _ = client.cancel().await;
}
