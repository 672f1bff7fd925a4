//! A corpus of malformed input written straight to the server's stdin: each line gets a
//! clear error (a JSON-RPC error or an `isError` result), and the server answers a normal call
//! right after it.

mod common;

use std::process::Command;
use std::time::Duration;

use common::raw::Raw;
use common::{BIN, TempDb};
use serde_json::{Value, json};

/// The server under test: registered, with a small body cap so the oversized cases are cheap.
fn start(db: &TempDb) -> Raw {
    let mut cmd = Command::new(BIN);
    cmd.arg("--db")
        .arg(db.path())
        .args(["--name", "fuzzed", "--max-body-bytes", "100000"]);
    Raw::start(cmd)
}

/// The next line the server writes.
fn next(s: &Raw) -> Value {
    s.next(Duration::from_secs(10)).expect("a reply")
}

/// Calls `tool` with request id `id` and returns the whole reply.
fn call(s: &mut Raw, id: i64, tool: &str, args: Value) -> Value {
    let line = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                      "params": {"name": tool, "arguments": args}});
    s.send(line.to_string().as_bytes())
        .expect("the server reads");
    next(s)
}

/// A normal call still works.
fn healthy(s: &mut Raw, after: &str) {
    let reply = call(s, 9999, "heartbeat", json!({}));
    assert_eq!(reply["id"], 9999, "after {after}: {reply}");
    assert_eq!(
        reply["result"]["structuredContent"]["ok"], true,
        "after {after}: {reply}"
    );
}

/// Expects a JSON-RPC error with `code` whose message contains `needle`.
fn rpc_error(reply: &Value, code: i64, needle: &str, what: &str) {
    assert!(!needle.is_empty(), "{what}: an empty needle checks nothing");
    assert_eq!(reply["error"]["code"], code, "{what}: {reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "{what}: {message:?} lacks {needle:?}"
    );
}

/// Expects an isError tool result whose text contains `needle`.
fn tool_error(reply: &Value, needle: &str, what: &str) {
    assert_eq!(reply["result"]["isError"], true, "{what}: {reply}");
    let text = reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains(needle), "{what}: {text:?} lacks {needle:?}");
}

#[test]
fn every_malformed_line_gets_a_clear_error_and_the_server_keeps_serving() {
    let db = TempDb::new("malformed");
    let mut s = start(&db);
    healthy(&mut s, "start-up");

    let protocol: Vec<(&str, Vec<u8>, i64, &str)> = vec![
        ("broken JSON", b"{\"jsonrpc\":\"2.0\",\"id\":1,".to_vec(), -32700, "Parse error"),
        ("not JSON at all", b"hello".to_vec(), -32700, "Parse error"),
        ("invalid UTF-8", b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\xff\"}".to_vec(), -32700, "UTF-8"),
        ("a raw NUL byte", b"{\"jsonrpc\":\"2.0\",\0\"id\":3,\"method\":\"ping\"}".to_vec(), -32700, "Parse error"),
        ("deeply nested", format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(), -32700, "recursion"),
        ("a very long line", vec![b'x'; 8 << 20], -32700, "Parse error"),
        ("an array", b"[1,2,3]".to_vec(), -32600, "Invalid request"),
        ("a request without a method", br#"{"jsonrpc":"2.0","id":4}"#.to_vec(), -32600, "Invalid request"),
        ("a bare string", br#""tools/call""#.to_vec(), -32600, "Invalid request"),
        ("an unknown method", br#"{"jsonrpc":"2.0","id":5,"method":"no/such/method"}"#.to_vec(), -32601, "no/such/method"),
        ("params not an object", br#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":[1]}"#.to_vec(), -32602, "params"),
        ("no tool name", br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":{}}}"#.to_vec(), -32602, "params.name"),
        ("arguments not an object", br#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"inbox","arguments":[]}}"#.to_vec(), -32602, "params.arguments"),
        ("an unknown tool", br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"nope"}}"#.to_vec(), -32602, "unknown tool"),
    ];
    for (what, line, code, needle) in protocol {
        s.send(&line).expect("the server reads");
        let reply = next(&s);
        rpc_error(&reply, code, needle, what);
        healthy(&mut s, what);
    }

    let tools: Vec<(&str, &str, Value, &str)> = vec![
        (
            "a wrong argument type",
            "inbox",
            json!({"limit": "many"}),
            "`limit`",
        ),
        (
            "a missing argument",
            "send_message",
            json!({"to": "x"}),
            "missing required argument `body`",
        ),
        (
            "an unknown argument",
            "inbox",
            json!({"limti": 5}),
            "valid arguments",
        ),
        (
            "a huge body",
            "send_message",
            json!({"to": "x", "body": "y".repeat(5 << 20)}),
            "cap",
        ),
        (
            "a huge state value",
            "set_state",
            json!({"key": "k", "value": vec![1; 200_000]}),
            "cap",
        ),
        (
            "a nested value past the cap",
            "set_state",
            json!({"key": "k", "value": (0..100).fold(json!("z".repeat(2000)), |v, _| json!([v, "z".repeat(1000)]))}),
            "cap",
        ),
        (
            "a number for a name",
            "register_session",
            json!({"name": 12}),
            "`name`",
        ),
        (
            "null for a required list",
            "mark_read",
            json!({"message_ids": null}),
            "`message_ids`",
        ),
        (
            "floats for ids",
            "mark_read",
            json!({"message_ids": [1.5]}),
            "`message_ids`",
        ),
        (
            "an id beyond i64",
            "mark_read",
            json!({"message_ids": [u64::MAX]}),
            "`message_ids`",
        ),
    ];
    for (n, (what, tool, args, needle)) in tools.into_iter().enumerate() {
        let reply = call(&mut s, 100 + n as i64, tool, args);
        tool_error(&reply, needle, what);
        healthy(&mut s, what);
    }

    // NUL inside a JSON string: refused in a tag (a control character), kept in a body.
    let tagged = call(
        &mut s,
        199,
        "send_message",
        json!({"to": "fuzzed", "body": "x", "tag": "t\u{0}"}),
    );
    tool_error(&tagged, "control characters", "NUL in a tag");
    let sent = call(
        &mut s,
        200,
        "send_message",
        json!({"to": "fuzzed", "body": "a\u{0}b"}),
    );
    assert_eq!(sent["result"]["isError"], false, "{sent}");
    let inbox = call(&mut s, 201, "inbox", json!({}));
    let messages = &inbox["result"]["structuredContent"]["messages"];
    assert_eq!(
        messages.as_array().unwrap().len(),
        1,
        "only the valid message was stored: {inbox}"
    );
    assert_eq!(messages[0]["body"], "a\u{0}b");

    // End of input ends the server cleanly.
    let status = s.finish();
    assert!(status.success(), "{status}");
}

#[test]
fn a_request_before_initialize_is_told_to_initialize_first() {
    let db = TempDb::new("before-init");
    let mut cmd = Command::new(BIN);
    cmd.arg("--db").arg(db.path()).args(["--name", "early"]);
    let mut s = Raw::spawn(cmd);
    for (id, method) in [(1, "tools/list"), (2, "tools/call")] {
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method,
                          "params": {"name": "inbox", "arguments": {}}});
        s.send(line.to_string().as_bytes())
            .expect("the server reads");
        let reply = next(&s);
        assert_eq!(reply["id"], id, "{reply}");
        rpc_error(
            &reply,
            -32600,
            &format!(
                "`{method}` came before `initialize`: an MCP client must first send initialize"
            ),
            method,
        );
    }
    // A ping is allowed before the handshake, and the handshake still works afterwards.
    let pong = s.request("ping", json!({})).expect("a reply to ping");
    assert_eq!(pong["result"], json!({}), "{pong}");
    let init = s
        .request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}),
        )
        .expect("initialize");
    assert_eq!(init["result"]["serverInfo"]["name"], "claude-c2c", "{init}");
    s.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .expect("initialized");
    healthy(&mut s, "a request before initialize");
}
