//! The hub (`serve --listen`) end to end: tokens made on the command line, the door every
//! request passes (token, Host, Origin), MCP over streamable HTTP with rmcp's client, the JSON
//! API under /v1, what a token's room and name confine it to, bad HTTP input, a hundred
//! concurrent sessions, TLS, and clients that hang up in the middle of a call.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::hub::{Api, Hub, McpHttp, Reply, initialize_body, mcp_post, read_db, send, token};
use common::{TempDb, cli};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

const CHANNEL: &str = "notifications/claude/channel";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether `haystack` contains `needle` as bytes.
fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The bytes of the database file and of its WAL and shared-memory files, if any.
fn database_bytes(db: &TempDb) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut path = db.path().into_os_string();
        path.push(suffix);
        if let Ok(b) = std::fs::read(&path) {
            bytes.extend(b);
        }
    }
    assert!(!bytes.is_empty(), "no database file");
    bytes
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn names(overview_or_list: &Value) -> BTreeSet<String> {
    overview_or_list["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

// 1 -------------------------------------------------------------------------------------------

/// `token create` prints the secret alone (or JSON with it), once; `token list` never shows
/// it, and neither the secret nor its bytes are anywhere in the database's files (only a
/// SHA-256 of it); `revoke` marks a token, says so again the second time, and exits 1 for an
/// id that does not exist.
#[test]
fn tokens_are_made_listed_and_revoked_and_their_secrets_are_not_kept() {
    let db = TempDb::new("hub-tokens");
    let path = db.path();

    let out = cli(&path, &["token", "create", "--room", "alpha"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plain = stdout(&out);
    assert!(
        plain.ends_with('\n') && plain.lines().count() == 1,
        "{plain:?}"
    );
    let first = plain.trim_end().to_string();
    assert!(common::hub::is_secret(&first), "{first:?}");
    let note = stderr(&out);
    assert!(note.contains("alpha"), "{note:?}");
    assert!(!note.contains(&first), "the note repeats the secret");

    let out = cli(
        &path,
        &[
            "token", "create", "--room", "beta", "--name", "bob", "--label", "laptop", "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let made: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let second = made["token"].as_str().expect("token").to_string();
    assert!(common::hub::is_secret(&second), "{made}");
    assert_ne!(first, second);
    assert_eq!(made["room"], "beta");
    assert_eq!(made["name"], "bob");
    assert_eq!(made["label"], "laptop");
    assert!(made["created_at"].is_string(), "{made}");
    assert!(made.get("revoked_at").is_none(), "{made}");
    let second_id = made["id"].as_i64().expect("id");

    // A name that could not be a session's is refused.
    let out = cli(&path, &["token", "create", "--room", "beta", "--name", "*"]);
    assert!(!out.status.success(), "a token for the name \"*\"");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));

    let table = cli(&path, &["token", "list"]);
    assert!(table.status.success(), "{}", stderr(&table));
    let listed = cli(&path, &["token", "list", "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    for secret in [&first, &second] {
        let hex = &secret[4..];
        for text in [
            stdout(&table),
            stdout(&listed),
            stderr(&table),
            stderr(&listed),
        ] {
            assert!(!text.contains(hex), "token list shows a secret: {text}");
        }
    }
    let table = stdout(&table);
    for shown in ["alpha", "beta", "bob", "laptop"] {
        assert!(table.contains(shown), "{shown} missing from {table}");
    }
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let tokens = listed["tokens"].as_array().expect("tokens").clone();
    assert_eq!(tokens.len(), 2, "{listed}");
    assert!(!listed.to_string().contains("c2c_"), "{listed}");
    let first_id = tokens
        .iter()
        .find(|t| t["room"] == "alpha")
        .and_then(|t| t["id"].as_i64())
        .expect("the alpha token");
    assert_ne!(first_id, second_id);
    assert!(tokens.iter().all(|t| t.get("revoked_at").is_none()));

    // The files hold neither the secret's text, nor its hex, nor the 32 bytes it encodes;
    // the table holds exactly the SHA-256 of each secret.
    let bytes = database_bytes(&db);
    for secret in [&first, &second] {
        let hex = &secret[4..];
        assert!(
            !contains_bytes(&bytes, secret.as_bytes()),
            "the secret is in the database"
        );
        assert!(
            !contains_bytes(&bytes, hex.as_bytes()),
            "its hex is in the database"
        );
        assert!(
            !contains_bytes(&bytes, hex.to_ascii_uppercase().as_bytes()),
            "its hex (upper case) is in the database"
        );
        assert!(
            !contains_bytes(&bytes, &hex_decode(hex)),
            "its random bytes are in the database"
        );
    }
    {
        use sha2::Digest;
        let conn = read_db(&path);
        let mut stmt = conn
            .prepare("SELECT id, secret_hash FROM tokens ORDER BY id")
            .unwrap();
        let stored: Vec<(i64, Vec<u8>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: Vec<(i64, Vec<u8>)> = vec![
            (first_id, sha2::Sha256::digest(first.as_bytes()).to_vec()),
            (second_id, sha2::Sha256::digest(second.as_bytes()).to_vec()),
        ];
        assert_eq!(stored, expected);
    }

    let out = cli(&path, &["token", "revoke", &first_id.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("revoked token {first_id}")),
        "{}",
        stdout(&out)
    );
    let listed: Value =
        serde_json::from_slice(&cli(&path, &["token", "list", "--json"]).stdout).unwrap();
    for t in listed["tokens"].as_array().unwrap() {
        let revoked = t.get("revoked_at").is_some_and(Value::is_string);
        assert_eq!(revoked, t["id"] == first_id, "{t}");
    }
    let out = cli(&path, &["token", "revoke", &first_id.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("already"), "{}", stdout(&out));

    let out = cli(&path, &["token", "revoke", "999"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("999"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

// 2 -------------------------------------------------------------------------------------------

fn expect_unauthorized(reply: &Reply, sent: Option<&str>) {
    let error = reply.expect_error(401);
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer realm=\"claude-c2c\""),
        "{reply:?}"
    );
    if let Some(sent) = sent {
        assert!(
            !error.contains(sent),
            "the refusal repeats the token: {error}"
        );
    }
}

/// /mcp and /v1 answer 401 with a JSON error and `WWW-Authenticate` to a request with no
/// token, a wrong one, or one revoked while the hub runs (the very next request, an MCP
/// session opened before included); OAuth discovery is 404 without a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_are_refused_with_401() {
    let db = TempDb::new("hub-401");
    let kept = token(&db.path(), "main", None);
    let doomed = token(&db.path(), "main", None);
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let http = common::hub::http_client();
    let call = json!({"tool": "list_sessions", "arguments": {}}).to_string();

    let wrong = format!("c2c_{}", "0".repeat(64));
    let cases: [(&str, Option<String>); 5] = [
        ("missing", None),
        ("wrong", Some(format!("Bearer {wrong}"))),
        ("not a c2c token", Some("Bearer nonsense".into())),
        ("another scheme", Some(format!("Basic {kept}"))),
        ("empty", Some("Bearer ".into())),
    ];
    for (label, authorization) in &cases {
        let with = |b: reqwest::RequestBuilder| match authorization {
            Some(a) => b.header("authorization", a),
            None => b,
        };
        let sent = authorization
            .as_deref()
            .map(|a| a.split(' ').nth(1).unwrap_or(""));
        let sent = sent.filter(|s| s.len() > 4);
        let reply = send(with(mcp_post(&http, &hub.url, initialize_body()))).await;
        eprintln!("{label}: /mcp {}", reply.status);
        expect_unauthorized(&reply, sent);
        let reply = send(with(
            http.post(format!("{}/v1/call", hub.base))
                .header("content-type", "application/json")
                .body(call.clone()),
        ))
        .await;
        expect_unauthorized(&reply, sent);
        let reply = send(with(http.get(format!("{}/v1/overview", hub.base)))).await;
        expect_unauthorized(&reply, sent);
    }
    // rmcp's client with a wrong token fails at initialize.
    assert!(McpHttp::connect(&hub.url, &wrong, &[]).await.is_err());

    // The same requests with a good token pass.
    let reply = send(mcp_post(&http, &hub.url, initialize_body()).bearer_auth(&doomed)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.header("mcp-session-id").is_some(), "{reply:?}");
    let api = hub.api(&doomed);
    api.ok("list_sessions", None, json!({})).await;
    let session = hub.mcp(&doomed, &[("x-c2c-name", "early")]).await;
    session.ok("list_sessions", json!({})).await;

    // Revoked while the hub runs: the next request of each kind is refused.
    let id = {
        let listed: Value =
            serde_json::from_slice(&cli(&db.path(), &["token", "list", "--json"]).stdout).unwrap();
        // The later of the two.
        listed["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["id"].as_i64())
            .max()
            .unwrap()
    };
    let out = cli(&db.path(), &["token", "revoke", &id.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reply = api
        .post("/v1/call", &serde_json::from_str(&call).unwrap())
        .await;
    expect_unauthorized(&reply, Some(&doomed));
    expect_unauthorized(&api.get("/v1/overview").await, Some(&doomed));
    let reply = send(mcp_post(&http, &hub.url, initialize_body()).bearer_auth(&doomed)).await;
    expect_unauthorized(&reply, Some(&doomed));
    let refused = session.raw_call("list_sessions", json!({})).await;
    assert!(
        refused.is_err(),
        "an MCP session kept working after its token was revoked: {refused:?}"
    );
    // The other token is untouched.
    hub.api(&kept).ok("list_sessions", None, json!({})).await;

    // No OAuth discovery, with or without a token: Claude Code must not go looking for one.
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/register",
    ] {
        let reply = send(http.get(format!("{}{path}", hub.base))).await;
        reply.expect_error(404);
        assert!(
            reply.header("www-authenticate").is_none(),
            "{path}: {reply:?}"
        );
        let reply = send(http.get(format!("{}{path}", hub.base)).bearer_auth(&kept)).await;
        reply.expect_error(404);
    }
}

// 3 -------------------------------------------------------------------------------------------

/// A request must name the hub in `Host` (loopback, the address listened on, or an
/// `--allow-host` name, with or without the port) and, if it has an `Origin`, there too:
/// anything else is 403 before the token is even looked at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_origin_must_name_the_hub() {
    let db = TempDb::new("hub-host");
    let secret = token(&db.path(), "main", None);
    let hub = Hub::start(&db.path(), &[], &["--allow-host", "hub.example"]).await;
    let http = common::hub::http_client();
    let port = hub.port;
    let overview = format!("{}/v1/overview", hub.base);
    let get = |host: Option<&str>, origin: Option<&str>| {
        let mut b = http.get(&overview).bearer_auth(&secret);
        if let Some(h) = host {
            b = b.header("host", h);
        }
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        send(b)
    };

    for host in [
        "evil.example",
        "evil.example:80",
        "hub.example.evil.example",
        "localhost.evil.example",
        "10.1.2.3",
    ] {
        let error = get(Some(host), None).await.expect_error(403);
        assert!(error.contains(host), "{error}");
        // Before the token: no 401 to tell a page whether its guess was right.
        let reply = send(http.get(&overview).header("host", host)).await;
        reply.expect_error(403);
    }
    let reply = send(
        mcp_post(&http, &hub.url, initialize_body())
            .bearer_auth(&secret)
            .header("host", "evil.example"),
    )
    .await;
    reply.expect_error(403);

    for host in [
        format!("hub.example:{port}"),
        "hub.example".to_string(),
        format!("HUB.Example:{port}"),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let reply = get(Some(&host), None).await;
        assert_eq!(reply.status, 200, "{host}: {reply:?}");
    }

    for origin in [
        "http://evil.example".to_string(),
        format!("http://evil.example:{port}"),
        "null".to_string(),
        format!("ftp://127.0.0.1:{port}"),
    ] {
        let error = get(None, Some(&origin)).await.expect_error(403);
        assert!(error.contains(&origin), "{error}");
    }
    let reply = send(
        mcp_post(&http, &hub.url, initialize_body())
            .bearer_auth(&secret)
            .header("origin", "http://evil.example"),
    )
    .await;
    reply.expect_error(403);

    for origin in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        "https://hub.example".to_string(),
    ] {
        let reply = get(None, Some(&origin)).await;
        assert_eq!(reply.status, 200, "{origin}: {reply:?}");
    }
    let reply = send(
        mcp_post(&http, &hub.url, initialize_body())
            .bearer_auth(&secret)
            .header("origin", format!("http://127.0.0.1:{port}")),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");

    // Without --allow-host, the same name is refused.
    let plain = Hub::start(&db.path(), &[], &[]).await;
    let reply = send(
        http.get(format!("{}/v1/overview", plain.base))
            .bearer_auth(&secret)
            .header("host", format!("hub.example:{}", plain.port)),
    )
    .await;
    reply.expect_error(403);
}

// 4 -------------------------------------------------------------------------------------------

/// Sessions of one room token, named by `x-c2c-name`, exchange a message (a wait woken by the
/// other's send, a reply found by reply_to, a channel push with `x-c2c-channel`) and shared
/// state (compare-and-set conflicts, a wait on a version), every result checked against its
/// outputSchema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_http_sessions_exchange_messages_and_state() {
    let db = TempDb::new("hub-mcp");
    let secret = token(&db.path(), "team", None);
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let alice = hub.mcp(&secret, &[("x-c2c-name", "alice")]).await;
    let bob = hub
        .mcp(&secret, &[("x-c2c-name", "bob"), ("x-c2c-room", "team")])
        .await;
    let carol = hub
        .mcp(&secret, &[("x-c2c-name", "carol"), ("x-c2c-channel", "1")])
        .await;

    // Named at initialize, in the token's room.
    let listed = alice.ok("list_sessions", json!({})).await;
    assert_eq!(listed["room"], "team");
    assert_eq!(
        names(&listed),
        BTreeSet::from(["alice".into(), "bob".into(), "carol".into()])
    );
    let me: Vec<_> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["is_self"] == true)
        .collect();
    assert_eq!(me.len(), 1);
    assert_eq!(me[0]["name"], "alice");

    // A waiting bob is woken by alice's send.
    let started = Instant::now();
    let (waited, sent) = tokio::join!(
        bob.ok("wait_for_message", json!({"timeout_seconds": 20})),
        alice.ok(
            "send_message",
            json!({"to": "bob", "body": "the build is yours", "tag": "handoff"})
        ),
    );
    let took = started.elapsed();
    let id = sent["id"].as_i64().unwrap();
    assert_eq!(sent["to"], "bob");
    assert!(sent.get("note").is_none(), "bob is registered: {sent}");
    assert_eq!(waited["timed_out"], false, "{waited}");
    let got = common::messages(&waited);
    assert_eq!(got.len(), 1, "{waited}");
    assert_eq!(got[0]["id"], id);
    assert_eq!(got[0]["body"], "the build is yours");
    assert_eq!(got[0]["from_name"], "alice");
    assert_eq!(got[0]["tag"], "handoff");
    assert!(took < Duration::from_secs(10), "the wait took {took:?}");

    let marked = bob.ok("mark_read", json!({"message_ids": [id]})).await;
    assert_eq!(marked["marked"], 1, "{marked}");
    let again = bob
        .ok("wait_for_message", json!({"timeout_seconds": 0}))
        .await;
    assert_eq!(again["timed_out"], true);
    assert!(common::messages(&again).is_empty());

    // A reply, found by reply_to.
    let reply = bob
        .ok(
            "send_message",
            json!({"to": "alice", "body": "taken", "reply_to": id}),
        )
        .await;
    let answer = alice
        .ok(
            "wait_for_message",
            json!({"reply_to": id, "timeout_seconds": 20}),
        )
        .await;
    assert_eq!(common::ids(&answer), vec![reply["id"].as_i64().unwrap()]);
    let outbox = alice.ok("outbox", json!({})).await;
    let first = &outbox["messages"][0];
    assert_eq!(first["id"], id, "{outbox}");
    assert_eq!(first["recipients"][0]["status"], "read", "{outbox}");

    // carol asked for channel pushes.
    let pushed = alice
        .ok("send_message", json!({"to": "carol", "body": "ping carol"}))
        .await;
    let events = carol.wait_for_notifications(CHANNEL, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["content"], "ping carol");
    assert_eq!(events[0]["meta"]["from"], "alice");
    assert_eq!(
        events[0]["meta"]["message_id"],
        pushed["id"].as_i64().unwrap().to_string()
    );
    assert!(alice.notifications(CHANNEL).is_empty());
    assert!(bob.notifications(CHANNEL).is_empty());

    // Shared state with compare-and-set.
    let stored = alice
        .ok(
            "set_state",
            json!({"key": "plan", "value": {"step": 1}, "if_version": 0}),
        )
        .await;
    assert_eq!(stored["version"], 1);
    assert_eq!(stored["updated_by"], "alice");
    bob.err(
        "set_state",
        json!({"key": "plan", "value": {"step": 99}, "if_version": 0}),
        &["\"plan\" is at version 1", "alice"],
    )
    .await;
    let read = bob.ok("get_state", json!({"key": "plan"})).await;
    assert_eq!(read["entry"]["value"], json!({"step": 1}), "{read}");
    assert_eq!(read["entry"]["version"], 1);
    assert_eq!(read["entry"]["updated_by"], "alice");
    let stored = bob
        .ok(
            "set_state",
            json!({"key": "plan", "value": {"step": 2}, "if_version": 1}),
        )
        .await;
    assert_eq!(stored["version"], 2);
    alice
        .err(
            "set_state",
            json!({"key": "plan", "value": {"step": 3}, "if_version": 1}),
            &["is at version 2", "bob"],
        )
        .await;
    // A wait on the version, ended by the other session's write.
    let started = Instant::now();
    let (changed, _) = tokio::join!(
        alice.ok(
            "get_state",
            json!({"key": "plan", "wait_while_version": 2, "timeout_seconds": 20})
        ),
        bob.ok(
            "set_state",
            json!({"key": "plan", "value": {"step": 3}, "if_version": 2})
        ),
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(changed["entry"]["version"], 3, "{changed}");
    assert_eq!(changed["entry"]["value"], json!({"step": 3}));
    assert!(changed.get("timed_out").is_none(), "{changed}");

    // The JSON API sees the same room.
    let api = hub.api(&secret);
    let read = api.ok("get_state", None, json!({"key": "plan"})).await;
    assert_eq!(read["entry"]["version"], 3);
    let overview = api.overview().await;
    assert_eq!(overview["room"], "team");
    assert!(names(&overview).is_superset(&BTreeSet::from(["alice".into(), "bob".into()])));

    alice.close().await;
    bob.close().await;
    carol.close().await;
}

// 5 -------------------------------------------------------------------------------------------

/// A token bound to a name acts only as it (MCP registration, MCP initialize, /v1/call "as",
/// /v1/hook), and mark_read cannot touch another's message; a room's token sees nothing of
/// another room (inbox, /v1/messages, /v1/overview, state, mark_read ids) and cannot ask
/// for that room at initialize.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_reach_only_their_room_and_name() {
    let db = TempDb::new("hub-scope");
    let room_a = token(&db.path(), "a", None);
    let bob_a = token(&db.path(), "a", Some("bob"));
    let room_b = token(&db.path(), "b", None);
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let a = hub.api(&room_a);
    let b = hub.api(&room_b);
    let bob_api = hub.api(&bob_a);

    // A bound token names its session itself.
    let bob = hub.mcp(&bob_a, &[]).await;
    let listed = bob.ok("list_sessions", json!({})).await;
    let me: Vec<_> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["is_self"] == true)
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(me, vec![json!("bob")], "{listed}");
    let again = hub.mcp(&bob_a, &[("x-c2c-name", "bob")]).await;
    again.ok("heartbeat", json!({})).await;
    again.close().await;
    // The first session was superseded by the second: take the name back.
    bob.ok("register_session", json!({"name": "bob"})).await;

    bob.err(
        "register_session",
        json!({"name": "mallory"}),
        &["acts only as", "bob", "mallory"],
    )
    .await;
    let refused = McpHttp::connect(&hub.url, &bob_a, &[("x-c2c-name", "mallory")]).await;
    let Err(why) = refused else {
        panic!("a session named mallory with bob's token")
    };
    assert!(why.contains("acts only as"), "{why}");
    let error = bob_api
        .call("inbox", Some("mallory"), json!({}))
        .await
        .expect_err("inbox as mallory with bob's token");
    assert!(error.contains("acts only as"), "{error}");
    let error = bob_api
        .call(
            "send_message",
            Some("mallory"),
            json!({"to": "x", "body": "hi"}),
        )
        .await
        .expect_err("send as mallory with bob's token");
    assert!(error.contains("acts only as"), "{error}");
    let reply = bob_api
        .post("/v1/hook", &json!({"name": "mallory", "wait": false}))
        .await;
    let error = reply.expect_error(403);
    assert!(error.contains("acts only as"), "{error}");
    // Its own name passes.
    let reply = bob_api
        .post("/v1/hook", &json!({"name": "bob", "wait": false}))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");

    // mark_read of a message to someone else (or of another room) marks nothing.
    let to_carol = a
        .ok(
            "send_message",
            Some("alice"),
            json!({"to": "carol", "body": "for carol only"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let in_b = b
        .ok(
            "send_message",
            Some("xavier"),
            json!({"to": "carol", "body": "room b secret"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let marked = bob
        .ok(
            "mark_read",
            json!({"message_ids": [to_carol, in_b, 987654]}),
        )
        .await;
    assert_eq!(marked["marked"], 0, "{marked}");
    assert_eq!(
        marked["not_marked"],
        json!([
            {"id": to_carol, "reason": "not_addressed_to_you"},
            {"id": in_b, "reason": "not_found"},
            {"id": 987654, "reason": "not_found"},
        ])
    );
    let unread: i64 = read_db(&db.path())
        .query_row(
            "SELECT count(*) FROM messages WHERE id IN (?1, ?2) AND read_at IS NULL",
            [to_carol, in_b],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unread, 2);
    let carols = a.ok("inbox", Some("carol"), json!({})).await;
    assert_eq!(common::ids(&carols), vec![to_carol], "{carols}");
    assert_eq!(common::messages(&carols)[0]["body"], "for carol only");

    // Room b's state is not room a's.
    b.ok(
        "set_state",
        Some("xavier"),
        json!({"key": "plan", "value": "b's plan"}),
    )
    .await;
    let read = a.ok("get_state", None, json!({"key": "plan"})).await;
    assert_eq!(read["entry"], Value::Null, "{read}");
    let read = bob.ok("get_state", json!({})).await;
    assert_eq!(read["entries"], json!([]), "{read}");
    let read = b.ok("get_state", None, json!({"key": "plan"})).await;
    assert_eq!(read["entry"]["value"], "b's plan");

    // /v1/messages: only room a's, for either token of room a.
    let mut in_room_a: Vec<i64> = {
        let conn = read_db(&db.path());
        let mut stmt = conn
            .prepare("SELECT id FROM messages WHERE room = 'a' ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert!(!in_room_a.is_empty());
    // A token bound to bob sees only what bob sends and receives (and broadcasts).
    let bobs: Vec<i64> = {
        let conn = read_db(&db.path());
        let mut stmt = conn
            .prepare(
                "SELECT id FROM messages WHERE room = 'a'
                   AND (from_name = 'bob' OR to_name = 'bob' OR to_name = '*') ORDER BY id",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert!(
        bobs.len() < in_room_a.len(),
        "the test needs a message in room a that is not bob's: {bobs:?} of {in_room_a:?}"
    );
    for (api, expected) in [(&a, &in_room_a), (&bob_api, &bobs)] {
        let reply = api.get("/v1/messages?after=0").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let got = reply.json();
        let ids: Vec<i64> = got["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        assert_eq!(&ids, expected, "{got}");
        assert!(!got.to_string().contains("room b secret"));
        assert!(got["last"].as_i64().unwrap() >= in_b, "{got}");
    }
    let reply = b.get("/v1/messages?after=0").await.json();
    assert_eq!(reply["messages"].as_array().unwrap().len(), 1, "{reply}");
    assert_eq!(reply["messages"][0]["id"], in_b);
    // A wait for room a's messages is not ended by room b's.
    let started = Instant::now();
    let last = reply["last"].as_i64().unwrap();
    let poll = format!("/v1/messages?after={last}&wait_ms=20000");
    let (polled, _) = tokio::join!(a.get(&poll), async {
        b.ok(
            "send_message",
            Some("xavier"),
            json!({"to": "carol", "body": "room b again"}),
        )
        .await;
        a.ok(
            "send_message",
            Some("alice"),
            json!({"to": "carol", "body": "room a again"}),
        )
        .await
    },);
    let polled = polled.json();
    assert!(started.elapsed() < Duration::from_secs(15));
    let bodies: Vec<_> = common::bodies(polled["messages"].as_array().unwrap());
    assert_eq!(bodies, vec!["room a again".to_string()], "{polled}");
    in_room_a.push(polled["messages"][0]["id"].as_i64().unwrap());

    // /v1/overview: room a's sessions and rooms only.
    let overview = a.overview().await;
    assert_eq!(overview["room"], "a");
    assert_eq!(overview["rooms"], json!(["a"]), "{overview}");
    let seen = names(&overview);
    assert!(seen.contains("bob") && seen.contains("alice"), "{overview}");
    assert!(!seen.contains("xavier"), "{overview}");
    let overview = b.overview().await;
    assert_eq!(overview["rooms"], json!(["b"]), "{overview}");
    assert_eq!(names(&overview), BTreeSet::from(["xavier".into()]));

    // The room header, where given, must be the token's room: on the API too.
    let asked = |room: &str| {
        a.http
            .get(format!("{}/v1/overview", hub.base))
            .bearer_auth(&room_a)
            .header("x-c2c-room", room)
    };
    let error = send(asked("b")).await.expect_error(403);
    assert!(error.contains("\"b\""), "{error}");
    let reply = send(asked("a")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["room"], "a");
    let refused = McpHttp::connect(
        &hub.url,
        &room_a,
        &[("x-c2c-name", "eve"), ("x-c2c-room", "b")],
    )
    .await;
    let Err(why) = refused else {
        panic!("room b's session with room a's token")
    };
    // rmcp quotes the hub's JSON answer in its error: unescape its quotes.
    let plain = why.replace("\\\"", "\"");
    assert!(plain.contains("\"a\"") && plain.contains("\"b\""), "{why}");
    let carol = hub
        .mcp(&room_a, &[("x-c2c-name", "carol"), ("x-c2c-room", "a")])
        .await;
    let inbox = carol
        .ok("inbox", json!({"unread_only": false, "limit": 500}))
        .await;
    let bodies = common::bodies(&common::messages(&inbox));
    assert_eq!(bodies, vec!["for carol only", "room a again"], "{inbox}");
    assert_eq!(carol.ok("list_sessions", json!({})).await["room"], "a");
    carol.close().await;
    bob.close().await;
}

// 6 -------------------------------------------------------------------------------------------

async fn still_serving(api: &Api, what: &str) {
    let reply = api.get("/v1/overview").await;
    assert_eq!(reply.status, 200, "after {what}: {reply:?}");
}

/// Oversized bodies (413), wrong media types (415, 406), an unknown MCP session (404), garbage
/// (400 on /mcp and /v1) and calls that are not calls (400, 404) are refused,
/// each without harming the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_http_input_is_refused_and_the_hub_carries_on() {
    let db = TempDb::new("hub-bad");
    let secret = token(&db.path(), "main", None);
    let hub = Hub::start(&db.path(), &["--max-body-bytes", "1024"], &[]).await;
    // A new connection for each request: what is checked is the hub, not a connection it
    // closed after a 413.
    let api = Api {
        http: common::hub::unpooled_client(),
        ..hub.api(&secret)
    };
    let http = &api.http;
    still_serving(&api, "start").await;

    // Over the HTTP limit, max(4 MiB, 4 * 1024 + 64 KiB) = 4 MiB.
    let huge = json!({"tool": "send_message", "as": "big", "arguments": {
        "to": "x", "body": "y".repeat(5 << 20)}})
    .to_string();
    let reply = send(mcp_post(http, &hub.url, huge.clone()).bearer_auth(&secret)).await;
    assert_eq!(reply.status, 413, "{reply:?}");
    still_serving(&api, "a 5 MiB body on /mcp").await;
    let reply = send(
        http.post(format!("{}/v1/call", hub.base))
            .bearer_auth(&secret)
            .header("content-type", "application/json")
            .body(huge),
    )
    .await;
    assert_eq!(reply.status, 413, "{reply:?}");
    still_serving(&api, "a 5 MiB body on /v1/call").await;
    // Under it but over --max-body-bytes: the tool refuses the body itself.
    let error = api
        .call(
            "send_message",
            Some("big"),
            json!({"to": "x", "body": "y".repeat(2000)}),
        )
        .await
        .expect_err("a 2000-byte body with --max-body-bytes 1024");
    assert!(error.contains("body"), "{error}");

    // rmcp's checks on /mcp: the media types.
    let reply = send(
        http.post(&hub.url)
            .bearer_auth(&secret)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "text/plain")
            .body(common::hub::initialize_body()),
    )
    .await;
    assert_eq!(reply.status, 415, "{reply:?}");
    still_serving(&api, "text/plain on /mcp").await;
    let reply = send(
        http.post(&hub.url)
            .bearer_auth(&secret)
            .header("accept", "text/html")
            .header("content-type", "application/json")
            .body(common::hub::initialize_body()),
    )
    .await;
    assert_eq!(reply.status, 406, "{reply:?}");

    // An MCP session the hub never made.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string();
    let reply = send(
        mcp_post(http, &hub.url, list)
            .bearer_auth(&secret)
            .header("mcp-session-id", "no-such-session")
            .header("mcp-protocol-version", "2025-06-18"),
    )
    .await;
    assert_eq!(reply.status, 404, "{reply:?}");
    still_serving(&api, "an unknown session id").await;

    // Garbage.
    for garbage in [
        "{\"jsonrpc\": \"2.0\", \"id\": 1, \"meth",
        "\u{0}\u{1}not json",
        "",
    ] {
        // The guard refuses a JSON body that is not JSON with 400 (rmcp 3.11 would say 415).
        let reply = send(mcp_post(http, &hub.url, garbage.to_string()).bearer_auth(&secret)).await;
        assert_eq!(reply.status, 400, "/mcp {garbage:?}: {reply:?}");
        assert!(reply.body.contains("not JSON"), "{reply:?}");
        still_serving(&api, "garbage on /mcp").await;
        for path in ["/v1/call", "/v1/hook"] {
            let reply = send(
                http.post(format!("{}{path}", hub.base))
                    .bearer_auth(&secret)
                    .header("content-type", "application/json")
                    .body(garbage.to_string()),
            )
            .await;
            reply.expect_error(400);
        }
        still_serving(&api, "garbage on /v1").await;
    }
    // Well-formed JSON that is not a call, and a tool that does not exist.
    for body in [json!({"tool": 5}), json!([1, 2]), json!({"arguments": {}})] {
        api.post("/v1/call", &body).await.expect_error(400);
    }
    let error = api
        .post(
            "/v1/call",
            &json!({"tool": "no_such_tool", "arguments": {}}),
        )
        .await
        .expect_error(404);
    assert!(error.contains("no_such_tool"), "{error}");
    still_serving(&api, "calls that are not calls").await;

    // An MCP session still works end to end.
    let session = hub.mcp(&secret, &[("x-c2c-name", "after")]).await;
    let listed = session.ok("list_sessions", json!({})).await;
    assert!(names(&listed).contains("after"));
    session.close().await;
}

/// Every refusal under /v1 is the hub's JSON error, including those of axum's extractors: a
/// body over the limit, a query that does not parse, a method the route does not take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_refusal_is_a_json_error() {
    let db = TempDb::new("hub-api-errors");
    let secret = token(&db.path(), "main", None);
    let hub = Hub::start(&db.path(), &["--max-body-bytes", "1024"], &[]).await;
    let api = hub.api(&secret);
    let huge = json!({"tool": "inbox", "as": "big", "arguments": {"tag": "y".repeat(5 << 20)}});
    for path in ["/v1/call", "/v1/hook"] {
        let error = api.post(path, &huge).await.expect_error(413);
        eprintln!("{path}: {error}");
    }
    api.get("/v1/messages?after=notanumber")
        .await
        .expect_error(400);
    api.get("/v1/messages?wait_ms=-1").await.expect_error(400);
    api.get("/v1/call").await.expect_error(405);
    api.post("/v1/overview", &json!({})).await.expect_error(405);
}

// 7 -------------------------------------------------------------------------------------------

/// A hundred MCP sessions of one room token, opened at once, each send 3 messages to the next
/// and wait for their own 3: every count is exact, in the replies and in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_http_sessions_exchange_exact_counts() {
    const N: usize = 100;
    const EACH: usize = 3;
    let db = TempDb::new("hub-crowd");
    let secret = token(&db.path(), "crowd", None);
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let started = Instant::now();

    let mut opening = tokio::task::JoinSet::new();
    for i in 0..N {
        let url = hub.url.clone();
        let secret = secret.clone();
        opening.spawn(async move {
            let name = format!("s{i}");
            let session = McpHttp::connect(&url, &secret, &[("x-c2c-name", &name)])
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (i, session)
        });
    }
    let mut sessions: Vec<Option<Arc<McpHttp>>> = (0..N).map(|_| None).collect();
    while let Some(opened) = opening.join_next().await {
        let (i, session) = opened.expect("a session opened");
        sessions[i] = Some(Arc::new(session));
    }
    let sessions: Vec<Arc<McpHttp>> = sessions.into_iter().map(Option::unwrap).collect();
    eprintln!("{N} sessions opened in {:?}", started.elapsed());
    let overview = hub.api(&secret).overview().await;
    assert_eq!(names(&overview).len(), N, "{overview}");

    let body = |from: usize, k: usize| format!("from s{from} to s{} #{k}", (from + 1) % N);
    let mut exchanging = tokio::task::JoinSet::new();
    for (i, session) in sessions.iter().enumerate() {
        let session = session.clone();
        exchanging.spawn(async move {
            let next = format!("s{}", (i + 1) % N);
            for k in 0..EACH {
                let sent = session
                    .ok("send_message", json!({"to": next, "body": body(i, k)}))
                    .await;
                assert!(sent.get("note").is_none(), "{sent}");
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut received: Vec<Value> = Vec::new();
            while received.len() < EACH {
                assert!(Instant::now() < deadline, "s{i} got only {received:?}");
                let waited = session
                    .ok("wait_for_message", json!({"timeout_seconds": 20}))
                    .await;
                let got = common::messages(&waited);
                let ids: Vec<i64> = got.iter().map(|m| m["id"].as_i64().unwrap()).collect();
                if !ids.is_empty() {
                    let marked = session.ok("mark_read", json!({"message_ids": ids})).await;
                    assert_eq!(marked["marked"], ids.len(), "s{i}: {marked}");
                }
                received.extend(got);
            }
            (i, received)
        });
    }
    let mut received: HashMap<usize, Vec<Value>> = HashMap::new();
    while let Some(done) = exchanging.join_next().await {
        let (i, got) = done.expect("an exchange");
        received.insert(i, got);
    }
    eprintln!(
        "{} messages exchanged after {:?}",
        N * EACH,
        started.elapsed()
    );

    for (i, got) in &received {
        let from = (i + N - 1) % N;
        assert_eq!(got.len(), EACH, "s{i}: {got:?}");
        let bodies: BTreeSet<String> = common::bodies(got).into_iter().collect();
        let expected: BTreeSet<String> = (0..EACH).map(|k| body(from, k)).collect();
        assert_eq!(bodies, expected, "s{i}");
        assert!(got.iter().all(|m| m["from_name"] == format!("s{from}")));
        assert!(got.iter().all(|m| m["to_name"] == format!("s{i}")));
    }

    // The database: exactly N * EACH messages in the room, no two alike, each read.
    let conn = read_db(&db.path());
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM messages WHERE room = 'crowd'"),
        (N * EACH) as i64
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM (SELECT DISTINCT to_name, body FROM messages \
             WHERE room = 'crowd')"
        ),
        (N * EACH) as i64
    );
    assert_eq!(
        count("SELECT count(*) FROM messages WHERE room = 'crowd' AND read_at IS NULL"),
        0
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM (SELECT to_name FROM messages WHERE room = 'crowd' \
             GROUP BY to_name HAVING count(*) = 3)"
        ),
        N as i64
    );
    drop(conn);

    // Each inbox holds exactly its own 3.
    let mut checking = tokio::task::JoinSet::new();
    for (i, session) in sessions.iter().enumerate() {
        let session = session.clone();
        let ids: BTreeSet<i64> = received[&i]
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        checking.spawn(async move {
            let inbox = session
                .ok("inbox", json!({"unread_only": false, "limit": 500}))
                .await;
            let got = common::ids(&inbox);
            assert_eq!(got.len(), EACH, "s{i}: {inbox}");
            assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), ids, "s{i}");
        });
    }
    while let Some(done) = checking.join_next().await {
        done.expect("an inbox check");
    }
    eprintln!("checked after {:?}", started.elapsed());
    for session in sessions {
        if let Ok(session) = Arc::try_unwrap(session) {
            drop(session);
        }
    }
}

// 8 -------------------------------------------------------------------------------------------

struct TestCert {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    pem: String,
}

fn test_cert(db: &TempDb) -> TestCert {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("a certificate");
    let pem = made.cert.pem();
    let cert = db.dir().join("cert.pem");
    let key = db.dir().join("key.pem");
    std::fs::write(&cert, &pem).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    TestCert { cert, key, pem }
}

/// With --tls-cert and --tls-key the hub serves HTTPS: the JSON API and MCP (rmcp's client
/// over a reqwest client that trusts the test certificate) work, a client that does not trust
/// it and a plain-HTTP one do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_serves_https_with_the_given_certificate() {
    let db = TempDb::new("hub-tls");
    let secret = token(&db.path(), "secure", None);
    let tls = test_cert(&db);
    let hub = Hub::start(
        &db.path(),
        &[],
        &[
            "--tls-cert",
            tls.cert.to_str().unwrap(),
            "--tls-key",
            tls.key.to_str().unwrap(),
        ],
    )
    .await;
    assert!(hub.url.starts_with("https://127.0.0.1:"), "{}", hub.url);
    let stderr = hub.wait_stderr("hub serving").await;
    assert!(!stderr.contains("warning"), "{stderr}");

    let https = common::hub::https_client(&tls.pem);
    let api = Api {
        http: https.clone(),
        base: hub.base.clone(),
        secret: secret.clone(),
    };
    let overview = api.overview().await;
    assert_eq!(overview["room"], "secure");
    // The door is the same over TLS.
    let reply = send(https.get(format!("{}/v1/overview", hub.base))).await;
    reply.expect_error(401);

    // rmcp's client over HTTPS.
    let session =
        McpHttp::connect_with(https.clone(), &hub.url, &secret, &[("x-c2c-name", "tls-a")])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    let sent = session
        .ok("send_message", json!({"to": "tls-b", "body": "over TLS"}))
        .await;
    let inbox = api.ok("inbox", Some("tls-b"), json!({})).await;
    assert_eq!(common::ids(&inbox), vec![sent["id"].as_i64().unwrap()]);
    assert!(names(&api.overview().await).contains("tls-a"));
    session.close().await;

    // Not trusted, or not TLS: no answer.
    let untrusting = common::hub::http_client();
    let refused = untrusting
        .get(format!("{}/v1/overview", hub.base))
        .bearer_auth(&secret)
        .send()
        .await;
    assert!(
        refused.is_err(),
        "an unknown certificate was accepted: {refused:?}"
    );
    let plain = untrusting
        .get(format!("http://127.0.0.1:{}/v1/overview", hub.port))
        .bearer_auth(&secret)
        .send()
        .await;
    assert!(
        plain.as_ref().map_or(true, |r| r.status() != 200),
        "plain HTTP was served: {plain:?}"
    );
    still_serving(&api, "a plain-HTTP request").await;
}

/// A key file that is not a key, or a certificate that does not exist, stops `serve` with a
/// message naming the files.
#[test]
fn unusable_tls_files_stop_the_hub_with_their_names() {
    let db = TempDb::new("hub-badtls");
    let tls = test_cert(&db);
    let bad_key = db.dir().join("not-a-key.pem");
    std::fs::write(
        &bad_key,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let missing = db.dir().join("missing-cert.pem");
    for (cert, key) in [(&tls.cert, &bad_key), (&missing, &tls.key)] {
        let mut child = common::std_command()
            .arg("--db")
            .arg(db.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = common::wait_exit(
            &mut child,
            Duration::from_secs(30),
            "serve with bad TLS files",
        );
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(!status.success(), "serve ran with {cert:?} and {key:?}");
        assert!(
            err.contains(cert.to_str().unwrap()) && err.contains(key.to_str().unwrap()),
            "{err}"
        );
    }
}

/// The address goes to stdout once the hub serves (scripts started with `--listen
/// 127.0.0.1:0` read the port from it): a hub that cannot use its TLS files prints none, and
/// does not say on stderr that it is serving.
#[test]
fn a_hub_that_cannot_serve_prints_no_address() {
    let db = TempDb::new("hub-noaddr");
    let tls = test_cert(&db);
    let bad_key = db.dir().join("not-a-key.pem");
    std::fs::write(&bad_key, "not a key\n").unwrap();
    let mut child = common::std_command()
        .arg("--db")
        .arg(db.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&tls.cert)
        .arg("--tls-key")
        .arg(&bad_key)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = common::wait_exit(&mut child, Duration::from_secs(30), "serve with a bad key");
    let out = child.wait_with_output().unwrap();
    assert!(!status.success());
    assert_eq!(stdout(&out), "", "an address for a hub that never served");
    assert!(!stderr(&out).contains("hub serving"), "{}", stderr(&out));
}

/// Listening on all interfaces without TLS warns on stderr; loopback, or TLS, does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_beyond_loopback_is_warned_about() {
    let db = TempDb::new("hub-warn");
    let secret = token(&db.path(), "main", None);
    let open = Hub::start_on(&db.path(), "0.0.0.0:0", &[], &[]).await;
    let said = open.wait_stderr("hub serving").await;
    assert!(
        said.contains("warning") && said.contains("without TLS"),
        "{said}"
    );
    // It serves, on loopback too.
    let api = Api {
        base: format!("http://127.0.0.1:{}", open.port),
        ..open.api(&secret)
    };
    still_serving(&api, "start on 0.0.0.0").await;

    let local = Hub::start(&db.path(), &[], &[]).await;
    let said = local.wait_stderr("hub serving").await;
    assert!(!said.contains("warning"), "{said}");

    let tls = test_cert(&db);
    let secure = Hub::start_on(
        &db.path(),
        "0.0.0.0:0",
        &[],
        &[
            "--tls-cert",
            tls.cert.to_str().unwrap(),
            "--tls-key",
            tls.key.to_str().unwrap(),
        ],
    )
    .await;
    let said = secure.wait_stderr("hub serving").await;
    assert!(!said.contains("warning"), "{said}");
}

// 9 -------------------------------------------------------------------------------------------

/// Writes an HTTP/1.1 request for `/v1/call` with `body` to the hub, or only its first
/// `cut` bytes of body, then hangs up without reading the answer.
async fn hang_up_after(hub: &Hub, secret: &str, body: &str, cut: Option<usize>) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", hub.port))
        .await
        .unwrap();
    let head = format!(
        "POST /v1/call HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {secret}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        hub.port,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let bytes = &body.as_bytes()[..cut.unwrap_or(body.len())];
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
    drop(stream);
}

/// Clients that hang up in the middle of a call (a long wait abandoned after 200 ms, over the
/// API and over MCP; a large send cut off in its body, or hung up on as soon as it is written)
/// leave the hub serving and the database whole: a message is there with its exact body, or
/// not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_hang_up_mid_call_leave_the_hub_whole() {
    let db = TempDb::new("hub-hangup");
    let secret = token(&db.path(), "main", None);
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let api = hub.api(&secret);

    // A wait over the API, abandoned.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(200),
        api.http
            .post(format!("{}/v1/call", hub.base))
            .bearer_auth(&secret)
            .header("content-type", "application/json")
            .body(
                json!({"tool": "wait_for_message", "as": "sleeper",
                       "arguments": {"timeout_seconds": 30}})
                .to_string(),
            )
            .send(),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "the wait answered at once: {abandoned:?}"
    );
    let started = Instant::now();
    still_serving(&api, "an abandoned wait").await;
    // The sleeper's messages are still its own to take.
    let sent = api
        .ok(
            "send_message",
            Some("waker"),
            json!({"to": "sleeper", "body": "wake up"}),
        )
        .await;
    let waited = api
        .ok(
            "wait_for_message",
            Some("sleeper"),
            json!({"timeout_seconds": 10}),
        )
        .await;
    assert_eq!(common::ids(&waited), vec![sent["id"].as_i64().unwrap()]);
    assert!(started.elapsed() < Duration::from_secs(8));

    // A wait over MCP, whose client goes away.
    let leaving = Arc::new(hub.mcp(&secret, &[("x-c2c-name", "leaver")]).await);
    let waiting = {
        let leaving = leaving.clone();
        tokio::spawn(async move {
            leaving
                .raw_call("wait_for_message", json!({"timeout_seconds": 30}))
                .await
        })
    };
    let early = tokio::time::timeout(Duration::from_millis(200), async {
        while !waiting.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(early.is_err(), "the MCP wait answered at once");
    waiting.abort();
    let _ = waiting.await;
    Arc::try_unwrap(leaving)
        .ok()
        .expect("one owner")
        .close()
        .await;
    still_serving(&api, "an MCP client that left mid-wait").await;
    let back = hub.mcp(&secret, &[("x-c2c-name", "leaver")]).await;
    let sent = api
        .ok(
            "send_message",
            Some("waker"),
            json!({"to": "leaver", "body": "welcome back"}),
        )
        .await;
    let waited = back
        .ok("wait_for_message", json!({"timeout_seconds": 10}))
        .await;
    assert_eq!(common::ids(&waited), vec![sent["id"].as_i64().unwrap()]);

    // Large sends: cut off in the body, and hung up on once written whole. Bodies of
    // multi-byte text, to tell any truncation.
    let text = |seed: &str| -> String {
        let unit = format!("{seed} é 漢字 🚀 ");
        unit.repeat(900_000 / unit.len())
    };
    let cut_body = text("cut");
    let whole_body = text("whole");
    let call = |tag: &str, body: &str| {
        json!({"tool": "send_message", "as": "bulk",
               "arguments": {"to": "sink", "tag": tag, "body": body}})
        .to_string()
    };
    let cut_call = call("cut", &cut_body);
    hang_up_after(&hub, &secret, &cut_call, Some(cut_call.len() / 2)).await;
    still_serving(&api, "a send cut off in its body").await;
    let whole_call = call("whole", &whole_body);
    hang_up_after(&hub, &secret, &whole_call, None).await;
    still_serving(&api, "a send hung up on").await;
    // The whole one was received whole: it is stored, or (had the hub given up on it) not.
    let waited = api
        .ok(
            "wait_for_message",
            Some("sink"),
            json!({"tag": "whole", "timeout_seconds": 3}),
        )
        .await;
    for m in common::messages(&waited) {
        assert!(
            m["body"] == whole_body.as_str(),
            "a changed body of {} bytes",
            m["body"].as_str().unwrap().len()
        );
    }
    eprintln!(
        "the send hung up on was {}",
        if common::messages(&waited).is_empty() {
            "dropped"
        } else {
            "stored"
        }
    );
    // A normal send of the same size after all that.
    let normal = api
        .ok(
            "send_message",
            Some("bulk"),
            json!({"to": "sink", "tag": "normal", "body": text("normal")}),
        )
        .await;

    // A new MCP session works, and the database holds only whole messages.
    let session = hub.mcp(&secret, &[("x-c2c-name", "after")]).await;
    session.ok("list_sessions", json!({})).await;
    session.close().await;
    let conn = read_db(&db.path());
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut stmt = conn
        .prepare("SELECT id, tag, body FROM messages WHERE to_name = 'sink' ORDER BY id")
        .unwrap();
    let stored: Vec<(i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        stored.iter().all(|(_, tag, _)| tag != "cut"),
        "a cut-off send was stored"
    );
    for (id, tag, body) in &stored {
        let expected = match tag.as_str() {
            "whole" => whole_body.clone(),
            "normal" => text("normal"),
            other => panic!("message {id} with tag {other}"),
        };
        assert_eq!(body.len(), expected.len(), "message {id} ({tag})");
        assert!(*body == expected, "message {id} ({tag}) changed");
    }
    assert!(
        stored
            .iter()
            .any(|(id, ..)| Some(*id) == normal["id"].as_i64())
    );
    assert!(stored.len() <= 2, "{} messages to sink", stored.len());
}

/// How many descriptors process `pid` holds on a database's WAL file: one per open connection
/// to it (unlike the database file itself, whose descriptors SQLite keeps for reuse after a
/// connection closes while others hold locks on it).
#[cfg(target_os = "linux")]
fn open_wal_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the hub's descriptors")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().ends_with(".db-wal"))
        .count()
}

/// A /v1/call whose client hung up stops: the database connection it waited on is closed.
/// (Seen from outside: each waiting call holds a connection, and so the WAL file, open; K
/// abandoned waits that went on would hold K more than before them.)
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_api_wait_stops() {
    const K: usize = 10;
    let db = TempDb::new("hub-abandon");
    let secret = token(&db.path(), "main", None);
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let http = common::hub::unpooled_client();
    let call = |name: String, timeout: u64| {
        let request = json!({"tool": "wait_for_message", "as": name,
                             "arguments": {"timeout_seconds": timeout}});
        http.post(format!("{}/v1/call", hub.base))
            .bearer_auth(&secret)
            .body(request.to_string())
            .send()
    };
    // Every name registered once, and the hub's own connections open, before the count.
    for i in 0..K {
        call(format!("gone{i}"), 0).await.unwrap();
    }
    let before = open_wal_files(hub.pid());
    let mut waiting = Vec::new();
    for i in 0..K {
        waiting.push(tokio::spawn(call(format!("gone{i}"), 600)));
    }
    // While they wait, they hold their connections (which shows the count can see them).
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_wal_files(hub.pid()) < before + K && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held = open_wal_files(hub.pid());
    assert!(
        held >= before + K,
        "{before} connections before, {held} while {K} calls wait"
    );
    for task in waiting {
        task.abort();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = open_wal_files(hub.pid());
    while after > before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = open_wal_files(hub.pid());
    }
    assert!(
        after <= before,
        "{before} connections before {K} abandoned waits, {held} while they waited, {after} 10 s \
         after they hung up: the abandoned waits still hold theirs"
    );
}

/// An MCP session belongs to the token that opened it: another token, even a good one, that
/// names its id (for the push stream, its end, or a call) is told there is no such session,
/// and the owner's session carries on. Revoking a token ends its open sessions at once: their
/// push streams stop, and their next request is refused. A token bound to a name may not
/// prune the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_belong_to_their_token_and_end_with_it() {
    let db = TempDb::new("hub-owners");
    let alice_secret = token(&db.path(), "ra", Some("alice"));
    let mallory_secret = token(&db.path(), "rb", None);
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let http = common::hub::http_client();

    // A raw session of alice's, whose id mallory learns.
    let opened =
        send(mcp_post(&http, &hub.url, initialize_body()).bearer_auth(&alice_secret)).await;
    assert_eq!(opened.status, 200, "{opened:?}");
    let id = opened
        .header("mcp-session-id")
        .expect("a session id")
        .to_string();
    let stream = send(
        http.get(&hub.url)
            .bearer_auth(&mallory_secret)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &id),
    )
    .await;
    assert_eq!(
        stream.status, 404,
        "mallory opened alice's push stream: {stream:?}"
    );
    let ended = send(
        http.delete(&hub.url)
            .bearer_auth(&mallory_secret)
            .header("mcp-session-id", &id),
    )
    .await;
    assert_eq!(
        ended.status, 404,
        "mallory ended alice's session: {ended:?}"
    );
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}).to_string();
    let call = send(
        mcp_post(&http, &hub.url, ping.clone())
            .bearer_auth(&mallory_secret)
            .header("mcp-session-id", &id)
            .header("mcp-protocol-version", "2025-06-18"),
    )
    .await;
    assert_eq!(call.status, 404, "{call:?}");
    // Alice's session is untouched, and she may end it herself.
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    let ok = send(
        mcp_post(&http, &hub.url, initialized)
            .bearer_auth(&alice_secret)
            .header("mcp-session-id", &id)
            .header("mcp-protocol-version", "2025-06-18"),
    )
    .await;
    assert!(ok.status < 300, "{ok:?}");
    let ended = send(
        http.delete(&hub.url)
            .bearer_auth(&alice_secret)
            .header("mcp-session-id", &id),
    )
    .await;
    assert!(ended.status == 200 || ended.status == 204, "{ended:?}");

    // A channel session of alice's, then her token is revoked: the session ends at once.
    let alice = hub.mcp(&alice_secret, &[("x-c2c-channel", "1")]).await;
    let before = alice.ok("list_sessions", json!({})).await;
    assert_eq!(before["sessions"][0]["name"], "alice", "{before}");
    let refused = alice
        .err(
            "prune",
            json!({"older_than_days": 0}),
            &["acts on the whole room", "alice"],
        )
        .await;
    assert!(refused.contains("prune"), "{refused}");
    let listed = cli(&db.path(), &["token", "list", "--json"]);
    let tokens: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let alice_id = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "alice")
        .unwrap()["id"]
        .to_string();
    let revoked = cli(&db.path(), &["token", "revoke", &alice_id]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    // The revoke is a write: the hub notices it and ends the session; nothing more is pushed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let gone = loop {
        match alice.raw_call("list_sessions", json!({})).await {
            Err(e) => break e.to_string(),
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(v) => panic!("a revoked token's session still answers: {v:?}"),
        }
    };
    eprintln!("after the revoke: {gone}");
    let room_secret = token(&db.path(), "ra", None);
    hub.api(&room_secret)
        .ok(
            "send_message",
            Some("bob"),
            json!({"to": "alice", "body": "after revoke"}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        alice
            .notifications(CHANNEL)
            .iter()
            .all(|n| !n.to_string().contains("after revoke")),
        "a push reached a revoked token's session"
    );
}

/// A session that ended leaves its name free: the next session to start with that name
/// takes it at once (and gets its pushes without calling a tool first), as a local server
/// does after its predecessor's process has exited; while the first is open, it keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_leaves_its_name_to_the_next() {
    let db = TempDb::new("hub-handover");
    let secret = token(&db.path(), "r", None);
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let first = hub.mcp(&secret, &[("x-c2c-name", "dave")]).await;
    let mine = first.ok("list_sessions", json!({})).await;
    assert_eq!(mine["sessions"][0]["is_self"], true, "{mine}");
    // While the first is open, a second does not take the name at its start.
    let early = hub
        .mcp(&secret, &[("x-c2c-name", "dave"), ("x-c2c-channel", "1")])
        .await;
    let api = hub.api(&secret);
    api.ok(
        "send_message",
        Some("erin"),
        json!({"to": "dave", "body": "to the first"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        early.notifications(CHANNEL).is_empty(),
        "a second session took a name its open holder still had"
    );
    early.close().await;
    first.close().await;
    // The holder has ended: a new session named dave holds the name from its start, so a
    // message sent now is pushed to it before it calls anything.
    let next = hub
        .mcp(&secret, &[("x-c2c-name", "dave"), ("x-c2c-channel", "1")])
        .await;
    api.ok(
        "send_message",
        Some("erin"),
        json!({"to": "dave", "body": "to the next"}),
    )
    .await;
    // Both are pushed to it: the first message went to no one (the first session took no
    // pushes, and the early one never held the name), so it is still new.
    let pushed = next.wait_for_notifications(CHANNEL, 2).await;
    assert!(
        pushed.iter().any(|n| n.to_string().contains("to the next")),
        "{pushed:?}"
    );
}
