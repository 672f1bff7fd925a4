//! The command line as people and scripts use it: every tool as a subcommand, `--as`,
//! readable and `--json` output, exit statuses, `tail` and `sessions`, all by running the
//! built binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use c2c_server::registry::ToolSet;
use common::{BIN, Server, TempDb};
use serde_json::{Value, json};

fn run(db: &TempDb, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--db")
        .arg(db.path())
        .args(args)
        .env_remove("CLAUDE_C2C_DB")
        .env_remove("C2C_NAME")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Runs a command that must succeed with `--json` and returns its JSON; a tool's output is
/// checked against the tool's outputSchema.
fn json(db: &TempDb, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = run(db, &args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    let value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&out)));
    let tool = args[0].replace('-', "_");
    if common::schema::is_tool(&tool) {
        common::schema::check(&tool, &value);
    }
    value
}

/// Runs `args` with no `--db`, as Claude Code runs the server, with `home` as the home
/// directory (HOME on Unix, USERPROFILE on Windows) and `CLAUDE_C2C_DB` as given.
fn run_at_home(home: &std::path::Path, db_var: Option<&std::path::Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("HOME", home)
        .env("USERPROFILE", home)
        .env_remove("CLAUDE_C2C_DB")
        .env_remove("C2C_NAME")
        .stdin(Stdio::null());
    if let Some(db) = db_var {
        cmd.env("CLAUDE_C2C_DB", db);
    }
    cmd.output().unwrap()
}

#[test]
fn the_default_database_is_in_the_claude_folder_of_the_home_directory() {
    let home = TempDb::new("home");
    let set = ["set-state", "--as", "a", "--key", "k", "--value", "1"];
    let out = run_at_home(home.dir(), None, &set);
    assert!(out.status.success(), "{}", stderr(&out));
    let default = home.dir().join(".claude").join("c2c.db");
    assert!(default.is_file(), "no database at {}", default.display());

    // CLAUDE_C2C_DB wins over the home directory.
    let chosen = home.dir().join("elsewhere").join("bus.db");
    let out = run_at_home(home.dir(), Some(&chosen), &["get-state", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(chosen.is_file(), "no database at {}", chosen.display());
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        value["entries"],
        json!([]),
        "a new, empty database: {value}"
    );
}

#[test]
fn a_script_sends_and_a_person_reads() {
    let db = TempDb::new("cli-roundtrip");
    let sent = json(
        &db,
        &[
            "send-message",
            "--as",
            "ci",
            "--to",
            "local",
            "--body",
            "deploy done",
            "--tag",
            "status",
        ],
    );
    assert_eq!(sent["to"], "local");
    let id = sent["id"].as_i64().unwrap();

    let inbox = json(&db, &["inbox", "--as", "local"]);
    assert_eq!(inbox["messages"][0]["id"], id);
    assert_eq!(inbox["messages"][0]["from_name"], "ci");
    assert_eq!(inbox["messages"][0]["body"], "deploy done");

    // The readable form is aligned text without colour (stdout is not a terminal here).
    let out = run(&db, &["inbox", "--as", "local"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.starts_with("ID "), "{text}");
    assert!(
        text.contains("deploy done") && text.contains("status"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "colour on a pipe");

    assert_eq!(
        json(
            &db,
            &[
                "mark-read",
                "--as",
                "local",
                "--message-ids",
                &id.to_string()
            ]
        ),
        json!({"marked": 1})
    );
    assert_eq!(
        json(&db, &["inbox", "--as", "local"]),
        json!({"messages": []})
    );
    let all = json(&db, &["inbox", "--as", "local", "--all"]);
    assert_eq!(all["messages"][0]["id"], id);
    assert!(all["messages"][0]["read_at"].is_string());
    assert_eq!(
        stdout(&run(&db, &["inbox", "--as", "local"])),
        "(no messages)\n"
    );
}

#[test]
fn json_valued_and_list_arguments_take_json() {
    let db = TempDb::new("cli-json-args");
    json(
        &db,
        &[
            "set-state",
            "--as",
            "ci",
            "--key",
            "cfg",
            "--value",
            r#"{"replicas": 3}"#,
        ],
    );
    json(
        &db,
        &[
            "set-state",
            "--as",
            "ci",
            "--key",
            "plain",
            "--value",
            "abc123",
        ],
    );
    assert_eq!(
        json(&db, &["get-state", "--key", "cfg"])["entry"]["value"],
        json!({"replicas": 3})
    );
    assert_eq!(
        json(&db, &["get-state", "--key", "plain"])["entry"]["value"],
        "abc123"
    );
    let keys: Vec<String> = json(&db, &["get-state", "--prefix", "c"])["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["cfg"]);
    let text = stdout(&run(&db, &["get-state", "--key", "cfg"]));
    assert!(text.contains("value       {\"replicas\":3}"), "{text}");

    let sent: Vec<i64> = ["1", "2", "3"]
        .iter()
        .map(|body| {
            json(
                &db,
                &["send-message", "--as", "ci", "--to", "x", "--body", body],
            )["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let (a, b, c) = (sent[0], sent[1], sent[2]);
    assert_eq!(
        json(
            &db,
            &["mark-read", "--as", "x", "--message-ids", &format!("[{a}]")]
        )["marked"],
        1
    );
    let marked = json(
        &db,
        &[
            "mark-read",
            "--as",
            "x",
            "--message-ids",
            &b.to_string(),
            "--message-ids",
            &c.to_string(),
        ],
    );
    assert_eq!(marked["marked"], 2);
    json(
        &db,
        &[
            "register-session",
            "--name",
            "meta",
            "--metadata",
            r#"{"repo": "etl"}"#,
        ],
    );
}

#[test]
fn bad_usage_exits_2_and_failed_tools_exit_1() {
    let db = TempDb::new("cli-exit");
    // Usage: missing required options, a value of the wrong shape, an unknown option.
    for args in [
        vec!["send-message", "--as", "ci", "--to", "x"],
        vec!["inbox", "--as", "x", "--limit", "ten"],
        vec!["register-session", "--name", "x", "--metadata", "[1]"],
        vec!["inbox", "--as", "x", "--bogus"],
        vec!["inbox"],
        vec!["no-such-command"],
    ] {
        let out = run(&db, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
        assert!(!stderr(&out).is_empty());
    }
    // A tool that refuses: status 1, the tool's message on stderr.
    let out = run(&db, &["inbox", "--as", "x", "--limit", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`limit`") && stderr(&out).contains("1 to 500"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    let out = run(
        &db,
        &["send-message", "--as", "*", "--to", "x", "--body", "b"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot act as \"*\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_tool_is_a_documented_subcommand() {
    for tool in <c2c_server::tools::Tools as ToolSet>::TOOLS {
        let name = tool.name.replace('_', "-");
        let out = Command::new(BIN).args([&name, "--help"]).output().unwrap();
        assert!(out.status.success(), "{name} --help");
        let help = stdout(&out);
        assert!(
            help.contains(tool.description),
            "{name} --help lacks the description"
        );
        for arg in tool.args {
            let flag = format!("--{}", arg.name.replace('_', "-"));
            assert!(help.contains(&flag), "{name} --help lacks {flag}");
            assert!(
                help.contains(arg.description),
                "{name} --help lacks {}'s description",
                arg.name
            );
        }
        assert!(help.contains("--json") && help.contains("--as"));
    }
    let help = stdout(&Command::new(BIN).arg("--help").output().unwrap());
    for sub in ["send-message", "inbox", "tail", "sessions", "gen-spec"] {
        assert!(help.contains(sub), "--help lacks {sub}");
    }
}

#[tokio::test]
async fn a_visitor_does_not_take_over_a_live_session() {
    let db = TempDb::new("cli-visitor");
    let agent = Server::start_with(&db, &["--name", "local"], &[]).await;
    let id = agent
        .ok(
            "send_message",
            json!({"to": "local", "body": "note to self"}),
        )
        .await["id"]
        .clone();
    let seen_before =
        agent.ok("list_sessions", json!({})).await["sessions"][0]["last_seen_at"].clone();

    let peek = json(&db, &["inbox", "--as", "local"]);
    assert_eq!(peek["messages"][0]["id"], id);
    json(
        &db,
        &[
            "send-message",
            "--as",
            "local",
            "--to",
            "online",
            "--body",
            "from the terminal",
        ],
    );
    let sessions = json(&db, &["sessions"]);
    let names: Vec<&str> = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["local"], "no second registration of local");
    assert_eq!(
        sessions["sessions"][0]["last_seen_at"], seen_before,
        "a visitor does not heartbeat"
    );

    // The agent still holds its name and still receives; its own heartbeat does write (so
    // the unchanged time above is the visitor's restraint, not a heartbeat that never writes).
    assert_eq!(agent.unread_ids().await.len(), 1);
    agent.ok("heartbeat", json!({})).await;
    let sessions = json(&db, &["sessions"]);
    assert_ne!(sessions["sessions"][0]["last_seen_at"], seen_before);
    agent.stop().await;
}

#[test]
fn sessions_shows_who_is_around_with_unread_counts() {
    let db = TempDb::new("cli-sessions");
    assert_eq!(stdout(&run(&db, &["sessions"])), "(no sessions)\n");
    json(
        &db,
        &["send-message", "--as", "a", "--to", "b", "--body", "1"],
    );
    json(
        &db,
        &["send-message", "--as", "a", "--to", "*", "--body", "all"],
    );
    json(&db, &["register-session", "--name", "b"]);
    let sessions = json(&db, &["sessions"]);
    let unread = |name: &str| {
        sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["unread"]
            .as_i64()
            .unwrap()
    };
    assert_eq!((unread("a"), unread("b")), (0, 2));
    let text = stdout(&run(&db, &["sessions"]));
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.contains("s ago"), "{text}");
}

/// Reads lines from a child's stdout on a thread, so a test can wait with a timeout.
fn lines_of(child: &mut std::process::Child) -> mpsc::Receiver<String> {
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

#[test]
fn tail_follows_messages_from_other_processes_and_marks_nothing() {
    let db = TempDb::new("cli-tail");
    let old = json(
        &db,
        &[
            "send-message",
            "--as",
            "a",
            "--to",
            "b",
            "--body",
            "before tail",
        ],
    )["id"]
        .as_i64()
        .unwrap();
    let mut tail = Command::new(BIN)
        .arg("--db")
        .arg(db.path())
        // No timed look for a minute: only a write notice can wake it in time.
        .args(["tail", "--json", "--poll-ms", "60000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut tail);
    // Only new messages. Rather than guess when tail has taken its starting point, send
    // probes (to someone else) until it prints one: from then on it is surely following.
    let probe = |n: usize| {
        json(
            &db,
            &[
                "send-message",
                "--as",
                "a",
                "--to",
                "c",
                "--body",
                &format!("probe {n}"),
            ],
        )["id"]
            .as_i64()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut probes = 0;
    let first = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "tail printed no probe"
        );
        probe(probes);
        probes += 1;
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            break line;
        }
    };
    let first: Value = serde_json::from_str(&first).unwrap();
    assert!(
        first["body"].as_str().unwrap().starts_with("probe "),
        "the message sent before tail started was printed: {first}"
    );
    let new = json(
        &db,
        &[
            "send-message",
            "--as",
            "a",
            "--to",
            "b",
            "--body",
            "live one",
            "--tag",
            "handoff",
        ],
    )["id"]
        .as_i64()
        .unwrap();
    // Skip the probes still on their way.
    let m = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .expect("tail printed the new message");
        let m: Value = serde_json::from_str(&line).unwrap();
        if !m["body"].as_str().unwrap().starts_with("probe ") {
            break m;
        }
    };
    assert_eq!(
        (m["id"].as_i64().unwrap(), m["body"].as_str().unwrap()),
        (new, "live one")
    );
    assert_eq!(m["from_name"], "a");
    tail.kill().unwrap();
    tail.wait().unwrap();
    // tail marked nothing read.
    assert_eq!(
        json(&db, &["inbox", "--as", "b"])["messages"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // --since replays from that id on, the message sent before tail started included.
    let replayed = |filters: &[&str], count: usize| {
        let mut replay = Command::new(BIN)
            .arg("--db")
            .arg(db.path())
            .args(["tail", "--since", &old.to_string()])
            .args(filters)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = lines_of(&mut replay);
        let got: Vec<String> = (0..count)
            .map(|_| {
                lines
                    .recv_timeout(Duration::from_secs(10))
                    .expect("replayed line")
            })
            .collect();
        // Anything more would have come with the replay, at once.
        let extra = lines.recv_timeout(Duration::from_millis(300)).ok();
        replay.kill().unwrap();
        replay.wait().unwrap();
        assert_eq!(extra, None, "{filters:?} replayed more than {got:?}");
        got
    };
    let all = replayed(&[], 1 + probes + 1);
    assert!(all[0].starts_with(&format!("#{old} ")), "{all:?}");
    assert!(all[0].contains("before tail"), "{all:?}");
    assert!(all[1].contains("probe 0"), "{all:?}");
    assert!(all[probes + 1].contains("live one"), "{all:?}");
    // Filters apply; the text form names sender, recipient and tag.
    let tagged = replayed(&["--tag", "handoff"], 1);
    let line = &tagged[0];
    assert!(line.starts_with(&format!("#{new} ")), "{line}");
    assert!(
        line.contains("a -> b") && line.contains("[handoff]") && line.contains("live one"),
        "{line}"
    );
    // --name: only messages from or to that name (b: the one before tail and the live one).
    let to_b = replayed(&["--name", "b"], 2);
    assert!(
        to_b[0].contains("before tail") && to_b[1].contains("live one"),
        "{to_b:?}"
    );
}
