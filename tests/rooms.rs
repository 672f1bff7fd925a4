//! Rooms: two pairs of sessions with the same names on one database, one pair in the default
//! room and one in room "b", never see each other's names, messages, broadcasts, pushes or
//! state. The command line, `sessions`, `rooms`, `tail` and the hooks act in the room
//! `--room` / `C2C_ROOM` selects, and a room that is not a valid name is refused.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    Server, TempDb, bodies, cli_json, cli_json_with, cli_with, ids, send_in, std_command,
};
use serde_json::{Value, json};

const CHANNEL: &str = "notifications/claude/channel";

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// The names in a `sessions` or `list_sessions` result, each with its room (or, for
/// list_sessions, the result's room) and its unread count (0 where not shown).
fn by_name(listed: &Value) -> BTreeMap<(String, String), i64> {
    listed["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("no sessions in {listed}"))
        .iter()
        .map(|s| {
            let room = s.get("room").unwrap_or(&listed["room"]);
            (
                (
                    room.as_str().unwrap().to_string(),
                    s["name"].as_str().unwrap().to_string(),
                ),
                s["unread"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// `((room, name), unread)` pairs, for comparing with [`by_name`].
fn expect(rows: &[(&str, &str, i64)]) -> BTreeMap<(String, String), i64> {
    rows.iter()
        .map(|&(room, name, unread)| ((room.to_string(), name.to_string()), unread))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pairs_with_the_same_names_share_a_database_in_two_rooms() {
    let db = TempDb::new("rooms-pairs");
    // The default room's pair: one by --name, one by the tool.
    let local = Server::start_with(&db, &["--name", "local"], &[]).await;
    let online = Server::start(&db).await;
    online.register("online").await;
    // Room b's pair: one by --room and --name, one by C2C_ROOM and the tool; that one also
    // takes channel pushes.
    let local_b = Server::start_with(&db, &["--room", "b", "--name", "local"], &[]).await;
    let online_b = Server::start_with(&db, &["--channel"], &[("C2C_ROOM", "b")]).await;
    online_b.register("online").await;

    // Nobody superseded anybody: every one of the four still holds its name.
    for s in [&local, &online, &local_b, &online_b] {
        s.ok("heartbeat", json!({})).await;
    }
    let conn = rusqlite::Connection::open(db.path()).unwrap();
    let live: Vec<(String, String)> = conn
        .prepare("SELECT room, name FROM sessions WHERE superseded_at IS NULL ORDER BY room, name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let live: Vec<(&str, &str)> = live.iter().map(|(r, n)| (r.as_str(), n.as_str())).collect();
    assert_eq!(
        live,
        [
            ("b", "local"),
            ("b", "online"),
            ("default", "local"),
            ("default", "online")
        ]
    );
    drop(conn);

    // list_sessions shows the room and only its sessions.
    let mut seen_ids = Vec::new();
    for (s, room, me) in [
        (&local, "default", "local"),
        (&online, "default", "online"),
        (&local_b, "b", "local"),
        (&online_b, "b", "online"),
    ] {
        let listed = s.ok("list_sessions", json!({})).await;
        assert_eq!(listed["room"], room, "{listed}");
        let names: Vec<(String, bool)> = s.listed().await;
        assert_eq!(
            names,
            [
                ("local".to_string(), me == "local"),
                ("online".to_string(), me == "online")
            ],
            "{listed}"
        );
        let own = listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["is_self"] == true)
            .unwrap()["session_id"]
            .clone();
        seen_ids.push(own);
    }
    seen_ids.sort_by_key(|v| v.to_string());
    seen_ids.dedup();
    assert_eq!(seen_ids.len(), 4, "four sessions: {seen_ids:?}");

    // Direct messages stay in their room, and so does waiting for them: a wait in room b is
    // not answered by a message to its name in the default room sent first.
    let waiting = online_b.ok("wait_for_message", json!({"timeout_seconds": 30}));
    let sending = async {
        // A head start for the wait, so that it is likely waiting when the messages come; the
        // check below holds whichever runs first.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let d = local.send("online", "to online, default room").await;
        let b = local_b.send("online", "to online, room b").await;
        (d, b)
    };
    let (woken, (d_direct, b_direct)) = tokio::join!(waiting, sending);
    assert_eq!(ids(&woken), [b_direct], "{woken}");
    assert_eq!(online.unread_ids().await, [d_direct]);
    assert_eq!(online_b.unread_ids().await, [b_direct]);
    assert!(local.unread_ids().await.is_empty());
    assert!(local_b.unread_ids().await.is_empty());

    // Broadcasts too.
    let d_all = online.send("*", "everyone, default room").await;
    let b_all = local_b.send("*", "everyone, room b").await;
    assert_eq!(local.unread_ids().await, [d_all]);
    assert_eq!(online.unread_ids().await, [d_direct]);
    assert_eq!(online_b.unread_ids().await, [b_direct, b_all]);
    assert!(local_b.unread_ids().await.is_empty());
    assert_eq!(
        bodies(&online_b.all_messages().await),
        ["to online, room b", "everyone, room b"]
    );

    // Ids from another room are not there: not found to mark, not visible to reply to.
    assert_eq!(
        online_b
            .ok(
                "mark_read",
                json!({"message_ids": [d_direct, d_all, b_direct]})
            )
            .await,
        json!({"marked": 1, "not_marked": [
            {"id": d_direct, "reason": "not_found"},
            {"id": d_all, "reason": "not_found"}
        ]})
    );
    assert_eq!(online.unread_ids().await, [d_direct], "still unread there");
    online_b
        .err(
            "send_message",
            json!({"to": "local", "body": "re", "reply_to": d_direct}),
            &[
                "reply_to",
                &format!("no message {d_direct} that you can see"),
            ],
        )
        .await;
    let reply = online_b
        .ok(
            "send_message",
            json!({"to": "local", "body": "re", "reply_to": b_direct}),
        )
        .await;
    let got = local_b.unread().await;
    assert_eq!(
        (&got[0]["id"], &got[0]["reply_to"]),
        (&reply["id"], &json!(b_direct)),
        "{got:?}"
    );
    // A name held only in the default room is unknown in room b.
    let reviewer = Server::named(&db, "reviewer").await;
    let sent = local_b
        .ok("send_message", json!({"to": "reviewer", "body": "from b?"}))
        .await;
    assert!(
        sent["note"]
            .as_str()
            .is_some_and(|n| n.contains("no session has ever registered as \"reviewer\"")),
        "{sent}"
    );
    let sent = local
        .ok(
            "send_message",
            json!({"to": "reviewer", "body": "from default?"}),
        )
        .await;
    assert!(sent.get("note").is_none(), "{sent}");
    assert_eq!(
        bodies(&reviewer.unread().await),
        ["everyone, default room", "from default?"]
    );
    reviewer.stop().await;

    // State keys of the same name are the rooms' own, each with its own versions.
    let v = local
        .ok("set_state", json!({"key": "plan", "value": "default plan"}))
        .await;
    assert_eq!(v["version"], 1);
    let v = local_b
        .ok("set_state", json!({"key": "plan", "value": "plan b"}))
        .await;
    assert_eq!(v["version"], 1, "a first write in room b: {v}");
    online
        .ok("set_state", json!({"key": "only/default", "value": 1}))
        .await;
    // Absent in room b, whatever the default room holds.
    online_b
        .ok(
            "set_state",
            json!({"key": "only/b", "value": 2, "if_version": 0}),
        )
        .await;
    online_b
        .ok(
            "set_state",
            json!({"key": "only/default", "value": "b's own", "if_version": 0}),
        )
        .await;
    let entry = |r: Value| {
        (
            r["entry"]["value"].clone(),
            r["entry"]["updated_by"].clone(),
        )
    };
    assert_eq!(
        entry(online.ok("get_state", json!({"key": "plan"})).await),
        (json!("default plan"), json!("local"))
    );
    assert_eq!(
        entry(online_b.ok("get_state", json!({"key": "plan"})).await),
        (json!("plan b"), json!("local"))
    );
    let keys = |r: Value| -> Vec<(String, Value)> {
        r["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["key"].as_str().unwrap().to_string(), e["value"].clone()))
            .collect()
    };
    assert_eq!(
        keys(online.ok("get_state", json!({})).await),
        [
            ("only/default".to_string(), json!(1)),
            ("plan".to_string(), json!("default plan"))
        ]
    );
    assert_eq!(
        keys(local_b.ok("get_state", json!({"prefix": "only/"})).await),
        [
            ("only/b".to_string(), json!(2)),
            ("only/default".to_string(), json!("b's own"))
        ]
    );
    // A delete in room b leaves the default room's entry.
    let deleted = local_b
        .ok("delete_state", json!({"key": "plan", "if_version": 1}))
        .await;
    assert_eq!(deleted["deleted"], true);
    assert_eq!(
        local_b.ok("get_state", json!({"key": "plan"})).await["entry"],
        Value::Null
    );
    assert_eq!(
        entry(local.ok("get_state", json!({"key": "plan"})).await).0,
        "default plan"
    );

    // Channel pushes come from the room only. A message to "online" in the default room is
    // committed before room b's, so a push of it would come first (neither is read by an
    // inbox call before, which would count as its delivery and stop the push).
    let d_probe = local.send("online", "push probe, default room").await;
    let b_probe = local_b.send("online", "push probe, room b").await;
    let started = Instant::now();
    let pushed = loop {
        let pushed: Vec<String> = online_b
            .notifications(CHANNEL)
            .iter()
            .map(|p| p["content"].as_str().unwrap().to_string())
            .collect();
        if pushed.iter().any(|c| c == "push probe, room b") {
            break pushed;
        }
        assert!(
            started.elapsed() < common::CALL_TIMEOUT,
            "room b's probe was not pushed: {pushed:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for content in &pushed {
        assert!(
            [
                "to online, room b",
                "everyone, room b",
                "push probe, room b"
            ]
            .contains(&content.as_str()),
            "pushed from another room: {pushed:?}"
        );
    }

    // Prune works on its own room: room b's read message, its deleted entry and its other
    // session go; the default room's read message, entry and sessions stay.
    online
        .ok("mark_read", json!({"message_ids": [d_direct]}))
        .await;
    let pruned = online_b.ok("prune", json!({"older_than_days": 0})).await;
    assert_eq!(
        pruned,
        json!({"messages_deleted": 1, "sessions_deleted": 1, "entries_deleted": 1})
    );
    let everything = json!({"unread_only": false, "limit": 500});
    assert_eq!(
        ids(&online.ok("inbox", everything.clone()).await),
        [d_direct, d_probe]
    );
    assert_eq!(
        ids(&online_b.ok("inbox", everything).await),
        [b_all, b_probe]
    );
    assert_eq!(
        entry(local.ok("get_state", json!({"key": "plan"})).await).0,
        "default plan"
    );
    assert_eq!(
        online.listed().await,
        [
            ("local".to_string(), false),
            ("online".to_string(), true),
            ("reviewer".to_string(), false)
        ]
    );
    assert_eq!(online_b.listed().await, [("online".to_string(), true)]);

    for s in [local, online, local_b, online_b] {
        s.stop().await;
    }
}

#[test]
fn a_room_that_is_not_a_valid_name_is_refused_before_anything_is_opened() {
    let db = TempDb::new("rooms-invalid");
    let path = db.path();
    let long = "r".repeat(65);
    for (args, envs, needles) in [
        (
            vec!["--room", "", "sessions"],
            vec![],
            vec!["--room", "is empty"],
        ),
        (
            vec!["sessions", "--room", "*"],
            vec![],
            vec!["--room", "is \"*\", which means every session"],
        ),
        (
            vec![
                "--room",
                " b",
                "send-message",
                "--as",
                "x",
                "--to",
                "y",
                "--body",
                "hi",
            ],
            vec![],
            vec!["--room", "leading or trailing spaces"],
        ),
        (
            vec!["--room", long.as_str(), "rooms"],
            vec![],
            vec!["--room", "at most 64"],
        ),
        (
            vec!["tail"],
            vec![("C2C_ROOM", "a\u{7}b")],
            vec!["C2C_ROOM", "control characters"],
        ),
        // The command line wins over the environment, and is checked.
        (
            vec!["--room", "*", "inbox", "--as", "y"],
            vec![("C2C_ROOM", "b")],
            vec!["--room"],
        ),
    ] {
        let out = cli_with(&path, &args, &envs, "");
        assert_eq!(out.status.code(), Some(2), "{args:?} {envs:?}: {out:?}");
        let err = stderr(&out);
        for needle in needles.iter().chain(&["a room is named like a session"]) {
            assert!(
                err.contains(needle),
                "{args:?} {envs:?}: {err:?} lacks {needle:?}"
            );
        }
        assert!(out.stdout.is_empty(), "{out:?}");
    }
    // A C2C_ROOM that is not text is refused too, not taken for the default room.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let out = std_command()
            .arg("--db")
            .arg(&path)
            .arg("sessions")
            .env("C2C_ROOM", std::ffi::OsStr::from_bytes(b"b\xff"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(
            stderr(&out).contains("C2C_ROOM is not valid UTF-8"),
            "{out:?}"
        );
    }
    assert!(!path.exists(), "no database was created");
    // An empty or blank C2C_ROOM is no room: the default one.
    for blank in ["", "  "] {
        let listed = cli_json_with(&path, &["list-sessions"], &[("C2C_ROOM", blank)]);
        assert_eq!(listed["room"], "default");
    }
}

#[test]
fn the_command_line_acts_in_the_room_it_is_given() {
    let db = TempDb::new("rooms-cli");
    let path = db.path();
    assert_eq!(
        stdout(&cli_with(&path, &["rooms"], &[], "")),
        "(no rooms: nothing has been written yet)\n"
    );
    let b = [("C2C_ROOM", "b")];

    // Tool subcommands: --room before or after the subcommand, or C2C_ROOM.
    cli_json(
        &path,
        &[
            "send-message",
            "--as",
            "x",
            "--room",
            "b",
            "--to",
            "y",
            "--body",
            "b one",
        ],
    );
    cli_json(
        &path,
        &[
            "--room",
            "b",
            "send-message",
            "--as",
            "x",
            "--to",
            "y",
            "--body",
            "b two",
        ],
    );
    let third = cli_json_with(
        &path,
        &["send-message", "--as", "x", "--to", "*", "--body", "b all"],
        &b,
    )["id"]
        .as_i64()
        .unwrap();
    let direct = cli_json(
        &path,
        &[
            "send-message",
            "--as",
            "x",
            "--to",
            "y",
            "--body",
            "default one",
        ],
    )["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        bodies(
            &cli_json_with(&path, &["inbox", "--as", "y"], &b)["messages"]
                .as_array()
                .unwrap()
                .clone()
        ),
        ["b one", "b two", "b all"]
    );
    assert_eq!(
        bodies(
            &cli_json(&path, &["--room", "b", "inbox", "--as", "y"])["messages"]
                .as_array()
                .unwrap()
                .clone()
        ),
        ["b one", "b two", "b all"]
    );
    assert_eq!(
        ids(&cli_json(&path, &["inbox", "--as", "y"])),
        [direct],
        "the default room has only its own"
    );
    // Marking: another room's id is not found there.
    let marked = cli_json(
        &path,
        &[
            "mark-read",
            "--as",
            "y",
            "--room",
            "b",
            "--message-ids",
            &direct.to_string(),
            "--message-ids",
            &third.to_string(),
        ],
    );
    assert_eq!(
        marked,
        json!({"marked": 1, "not_marked": [{"id": direct, "reason": "not_found"}]})
    );
    // State.
    cli_json(
        &path,
        &[
            "set-state",
            "--as",
            "x",
            "--room",
            "b",
            "--key",
            "k",
            "--value",
            "\"in b\"",
        ],
    );
    assert_eq!(
        cli_json(&path, &["get-state", "--room", "b", "--key", "k"])["entry"]["value"],
        "in b"
    );
    assert_eq!(
        cli_json(&path, &["get-state", "--key", "k"])["entry"],
        Value::Null
    );
    // A room of its own for one visitor, so that `rooms` has three.
    cli_json(
        &path,
        &[
            "send-message",
            "--as",
            "loner",
            "--room",
            "quiet room",
            "--to",
            "x",
            "--body",
            "anyone?",
        ],
    );

    // list-sessions names the room.
    let listed = cli_json(&path, &["list-sessions", "--room", "b"]);
    assert_eq!(listed["room"], "b");
    assert_eq!(by_name(&listed), expect(&[("b", "x", 0), ("b", "y", 0)]));

    // sessions: the selected room only, with the room on each row; --all-rooms shows all.
    // y has the two direct messages in room b unread (the broadcast is read), x nothing;
    // in the default room y has one.
    let default = cli_json(&path, &["sessions"]);
    assert_eq!(default["room"], "default");
    assert_eq!(
        by_name(&default),
        expect(&[("default", "x", 0), ("default", "y", 1)])
    );
    let in_b = cli_json_with(&path, &["sessions"], &b);
    assert_eq!(in_b["room"], "b");
    assert_eq!(by_name(&in_b), expect(&[("b", "x", 0), ("b", "y", 2)]));
    let all = cli_json(&path, &["sessions", "--all-rooms"]);
    assert_eq!(all["room"], Value::Null);
    assert_eq!(
        by_name(&all),
        expect(&[
            ("b", "x", 0),
            ("b", "y", 2),
            ("default", "x", 0),
            ("default", "y", 1),
            ("quiet room", "loner", 0),
        ])
    );
    let table = stdout(&cli_with(&path, &["sessions", "--room", "b"], &[], ""));
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("ROOM") && header.contains("NAME"),
        "{table}"
    );
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows.iter().all(|r| r.split_whitespace().any(|w| w == "b")),
        "{table}"
    );
    let table = stdout(&cli_with(&path, &["sessions", "--all-rooms"], &[], ""));
    assert_eq!(table.lines().count(), 1 + 5, "{table}");
    assert!(
        table.contains("quiet room") && table.contains("default"),
        "{table}"
    );
    assert_eq!(
        stdout(&cli_with(&path, &["sessions", "--room", "empty"], &[], "")),
        "(no sessions in room empty)\n"
    );

    // rooms: every room, by name, with its live sessions and their unread counts.
    let rooms = cli_json(&path, &["rooms"]);
    let summary: Vec<(String, BTreeMap<String, i64>, i64)> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let sessions = r["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    assert!(s["last_seen_at"].is_string(), "{s}");
                    (
                        s["name"].as_str().unwrap().to_string(),
                        s["unread"].as_i64().unwrap(),
                    )
                })
                .collect();
            (
                r["room"].as_str().unwrap().to_string(),
                sessions,
                r["unread"].as_i64().unwrap(),
            )
        })
        .collect();
    let map = |rows: &[(&str, i64)]| -> BTreeMap<String, i64> {
        rows.iter().map(|&(n, u)| (n.to_string(), u)).collect()
    };
    assert_eq!(
        summary,
        [
            ("b".to_string(), map(&[("x", 0), ("y", 2)]), 2),
            ("default".to_string(), map(&[("x", 0), ("y", 1)]), 1),
            ("quiet room".to_string(), map(&[("loner", 0)]), 0),
        ],
        "{rooms}"
    );
    let table = stdout(&cli_with(&path, &["rooms"], &[], ""));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    for column in ["ROOM", "LIVE", "SESSIONS", "UNREAD"] {
        assert!(lines[0].contains(column), "{table}");
    }
    assert!(
        lines[1].starts_with("b ") && lines[1].contains("y (2 unread)"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("default ") && lines[2].contains("y (1 unread)"),
        "{table}"
    );
    assert!(
        lines[3].starts_with("quiet room ") && lines[3].contains("loner"),
        "{table}"
    );
    // --room does not narrow `rooms`.
    assert_eq!(cli_json(&path, &["rooms", "--room", "b"]), rooms);
}

/// Reads lines from a child's stdout on a thread, so a test can wait with a timeout.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let reader = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs `tail` with `args` and `envs`, replaying from `since`; once it has printed the line
/// holding `first`, sends what `then` sends (its last message must be one the tail shows) and
/// returns every line up to the one holding `last`.
fn tail_lines(
    db: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    since: i64,
    first: &str,
    then: impl FnOnce() -> String,
) -> Vec<String> {
    let mut cmd = std_command();
    cmd.arg("--db")
        .arg(db)
        .args(["tail", "--since", &since.to_string()])
        .args(args)
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut tail = cmd.spawn().unwrap();
    let lines = lines_of(&mut tail);
    let next = |lines: &mpsc::Receiver<String>, got: &[String]| {
        lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("tail {args:?} {envs:?} stopped printing after {got:?}"))
    };
    let mut got = Vec::new();
    loop {
        let line = next(&lines, &got);
        let done = shows(&line, first);
        got.push(line);
        if done {
            break;
        }
    }
    let last = then();
    loop {
        let line = next(&lines, &got);
        let done = shows(&line, &last);
        got.push(line);
        if done {
            break;
        }
    }
    tail.kill().unwrap();
    tail.wait().unwrap();
    got
}

/// Whether a line of `tail` (text or JSON) is of the message with `body`.
fn shows(line: &str, body: &str) -> bool {
    line.ends_with(&format!("  {body}")) || line.contains(&format!("\"body\":\"{body}\""))
}

/// The (room, body) of each JSON line.
fn room_bodies(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| {
            let m: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (
                m["room"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no room in {l}"))
                    .to_string(),
                m["body"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|&(r, b)| (r.to_string(), b.to_string()))
        .collect()
}

#[test]
fn tail_follows_its_own_room_unless_asked_for_all() {
    let db = TempDb::new("rooms-tail");
    let path = db.path();
    let since = send_in(&path, "default", "a", "b", "msg-d1");
    send_in(&path, "b", "x", "y", "msg-b1");
    send_in(&path, "default", "a", "b", "msg-d2");
    send_in(&path, "b", "x", "y", "msg-b2");

    // Room b only, replayed and then followed: a default-room message sent while it follows
    // comes before the room's next one, and is not shown.
    let path2 = path.clone();
    let got = tail_lines(
        &path,
        &["--json", "--room", "b"],
        &[],
        since,
        "msg-b2",
        move || {
            send_in(&path2, "default", "a", "b", "msg-d3");
            send_in(&path2, "b", "x", "y", "msg-b3");
            "msg-b3".to_string()
        },
    );
    assert_eq!(
        room_bodies(&got),
        pairs(&[("b", "msg-b1"), ("b", "msg-b2"), ("b", "msg-b3")])
    );

    // The same room from C2C_ROOM, as text: each line shows the room.
    let path2 = path.clone();
    let got = tail_lines(
        &path,
        &[],
        &[("C2C_ROOM", "b")],
        since,
        "msg-b3",
        move || {
            send_in(&path2, "default", "a", "b", "msg-d4");
            send_in(&path2, "b", "x", "y", "msg-b4");
            "msg-b4".to_string()
        },
    );
    assert_eq!(got.len(), 4, "{got:?}");
    for (line, body) in got.iter().zip(["msg-b1", "msg-b2", "msg-b3", "msg-b4"]) {
        assert!(
            line.contains("  b  x -> y  ") && line.ends_with(body),
            "{line}"
        );
    }

    // The default room when none is given.
    let path2 = path.clone();
    let got = tail_lines(&path, &["--json"], &[], since, "msg-d4", move || {
        send_in(&path2, "b", "x", "y", "msg-b5");
        send_in(&path2, "default", "a", "b", "msg-d5");
        "msg-d5".to_string()
    });
    assert_eq!(
        room_bodies(&got),
        pairs(&[
            ("default", "msg-d1"),
            ("default", "msg-d2"),
            ("default", "msg-d3"),
            ("default", "msg-d4"),
            ("default", "msg-d5")
        ])
    );

    // --all-rooms: everything, in order, each with its room, text and JSON.
    let path2 = path.clone();
    let got = tail_lines(
        &path,
        &["--json", "--all-rooms", "--room", "b"],
        &[],
        since,
        "msg-d5",
        move || {
            send_in(&path2, "elsewhere", "p", "q", "msg-e1");
            "msg-e1".to_string()
        },
    );
    assert_eq!(
        room_bodies(&got),
        pairs(&[
            ("default", "msg-d1"),
            ("b", "msg-b1"),
            ("default", "msg-d2"),
            ("b", "msg-b2"),
            ("default", "msg-d3"),
            ("b", "msg-b3"),
            ("default", "msg-d4"),
            ("b", "msg-b4"),
            ("b", "msg-b5"),
            ("default", "msg-d5"),
            ("elsewhere", "msg-e1")
        ])
    );
    let path2 = path.clone();
    let got = tail_lines(&path, &["--all-rooms"], &[], since, "msg-e1", move || {
        send_in(&path2, "b", "x", "y", "msg-b6");
        "msg-b6".to_string()
    });
    assert_eq!(got.len(), 12, "{got:?}");
    assert!(got[0].contains("  default  a -> b  "), "{got:?}");
    assert!(got[10].contains("  elsewhere  p -> q  "), "{got:?}");
    assert!(got[11].contains("  b  x -> y  "), "{got:?}");
}

fn hook_input(session: &str, cwd: &str) -> String {
    json!({ "session_id": session, "cwd": cwd, "hook_event_name": "UserPromptSubmit" }).to_string()
}

/// What a prompt hook run with `args` and `envs` hands to the model (empty if nothing).
fn prompt_context(db: &Path, args: &[&str], envs: &[(&str, &str)], input: &str) -> String {
    let mut all = vec!["hook", "prompt"];
    all.extend_from_slice(args);
    let out = cli_with(db, &all, envs, input);
    assert!(out.status.success(), "{out:?}");
    if out.stdout.is_empty() {
        return String::new();
    }
    let printed: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    printed["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_hand_over_the_messages_of_their_own_room() {
    let db = TempDb::new("rooms-hooks");
    let path = db.path();
    let project = db.dir().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let project = project.to_string_lossy().into_owned();
    let in_project = [("CLAUDE_PROJECT_DIR", project.as_str())];
    // Started apart from this test, so the hooks it runs find them by name or project only;
    // room b's first, so the default room's is the project's latest server.
    let local_b = Server::start_apart(&db, &["--name", "local", "--room", "b"], &in_project).await;
    local_b.ok("heartbeat", json!({})).await;
    let local = Server::start_apart(&db, &["--name", "local"], &in_project).await;
    local.ok("heartbeat", json!({})).await;
    send_in(
        &path,
        "default",
        "beta",
        "local",
        "for the default room's local",
    );
    let b_id = send_in(&path, "b", "beta", "local", "for room b's local");
    let input = hook_input("cc-unknown", "/nowhere");

    // By name: in the hook's room, the default one if none is given.
    let context = prompt_context(&path, &["--name", "local", "--room", "b"], &[], &input);
    assert!(
        context.contains("for room b's local")
            && context.contains(&format!("[id {b_id}]"))
            && !context.contains("default room's"),
        "{context}"
    );
    let context = prompt_context(&path, &["--name", "local"], &[("C2C_ROOM", "b")], &input);
    assert!(
        context.contains("for room b's local") && !context.contains("default room's"),
        "{context}"
    );
    let context = prompt_context(&path, &["--name", "local"], &[], &input);
    assert!(
        context.contains("for the default room's local") && !context.contains("room b's"),
        "{context}"
    );
    // By project: without a room, the latest server started there, whatever its room; with
    // one, that room's server, even when it is not the latest.
    let in_dir = hook_input("cc-unknown", &project);
    let context = prompt_context(&path, &[], &[], &in_dir);
    assert!(
        context.contains("for the default room's local") && !context.contains("room b's"),
        "{context}"
    );
    let context = prompt_context(&path, &["--room", "b"], &[], &in_dir);
    assert!(
        context.contains("for room b's local") && !context.contains("default room's"),
        "{context}"
    );
    let context = prompt_context(&path, &[], &[("C2C_ROOM", "default")], &in_dir);
    assert!(
        context.contains("for the default room's local") && !context.contains("room b's"),
        "{context}"
    );
    // A room with no server in the project: nobody to hand messages to.
    let out = cli_with(&path, &["hook", "prompt", "--room", "c"], &[], &in_dir);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    assert!(
        stderr(&out).contains("no session to hand messages to"),
        "{out:?}"
    );
    // Delivered in its room by the hook, still unread (a call that makes room b's server the
    // project's latest, so it comes after the checks by project).
    assert_eq!(local_b.unread_ids().await, [b_id]);
    // A name held only in another room is not found, and the note says in which room it
    // looked.
    let out = cli_with(
        &path,
        &["hook", "prompt", "--name", "local", "--room", "c"],
        &[],
        &input,
    );
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    let note = stderr(&out);
    assert!(
        note.contains("\"local\"") && note.contains("room c"),
        "{note}"
    );

    // A room that is not a name never blocks the prompt: nothing, and a note.
    let out = cli_with(
        &path,
        &["hook", "prompt", "--name", "local", "--room", "*"],
        &[],
        &input,
    );
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    assert!(
        stderr(&out).contains("continuing without messages"),
        "{out:?}"
    );

    // The Stop hook of room b wakes for room b's next message only: one for the default
    // room's local is already waiting when it starts.
    send_in(
        &path,
        "default",
        "beta",
        "local",
        "default room, while b waits",
    );
    let waiter_path = path.clone();
    let waiting = std::thread::spawn(move || {
        cli_with(
            &waiter_path,
            &[
                "hook",
                "wait",
                "--name",
                "local",
                "--room",
                "b",
                "--timeout-seconds",
                "30",
            ],
            &[],
            &hook_input("cc-unknown", "/nowhere"),
        )
    });
    // Send once the waiter has recorded itself on room b's local.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while conn
        .query_row(
            "SELECT hook_waiter FROM sessions
              WHERE room = 'b' AND name = 'local' AND superseded_at IS NULL",
            [],
            |r| r.get::<_, Option<String>>(0),
        )
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "the waiter never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let woken_by = send_in(&path, "b", "beta", "local", "room b, wake up");
    let out = waiting.join().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = stderr(&out);
    assert!(
        text.contains("room b, wake up")
            && text.contains(&format!("[id {woken_by}]"))
            && !text.contains("default room"),
        "{text}"
    );
    local.stop().await;
    local_b.stop().await;
}
