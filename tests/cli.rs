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
        .env_remove("C2C_ROOM")
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
        .env_remove("C2C_ROOM")
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
    let text = stdout(&run(&db, &["get-state", "--key", "plain"]));
    assert!(text.contains("value       \"abc123\""), "{text}");

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
            if let Some(limits) = arg.limits() {
                assert!(
                    help.contains(&format!("[{limits}]")),
                    "{name} --help lacks {}'s limits",
                    arg.name
                );
            }
        }
        assert!(help.contains("--json") && help.contains("--as"));
    }
    let help = stdout(&Command::new(BIN).arg("--help").output().unwrap());
    for sub in ["send-message", "inbox", "tail", "sessions", "serve"] {
        assert!(help.contains(sub), "--help lacks {sub}");
    }
    assert!(
        !help.contains("gen-spec"),
        "a developer's command in the user's help"
    );
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
    assert_eq!(
        stdout(&run(&db, &["sessions"])),
        "(no sessions in room default)\n"
    );
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
    assert!(text.starts_with("ROOM     NAME"), "{text}");
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

/// Runs `args` with `input` on stdin.
fn run_with_stdin(db: &TempDb, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("--db")
        .arg(db.path())
        .args(args)
        .env_remove("CLAUDE_C2C_DB")
        .env_remove("C2C_NAME")
        .env_remove("C2C_ROOM")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command refused before it reads its input (exit 2) closes the pipe: that is its
    // answer, for the caller to check, not the test's failure.
    match child.stdin.take().unwrap().write_all(input) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    child.wait_with_output().unwrap()
}

#[test]
fn long_text_comes_from_a_file_or_stdin() {
    let db = TempDb::new("cli-files");
    // Longer than a command line may be (128 KiB on Linux), under the 1 MiB cap.
    let body = "x".repeat(300 * 1024) + "\nend\n";
    let file = db.dir().join("body.txt");
    std::fs::write(&file, &body).unwrap();
    let path = file.to_str().unwrap();
    json(
        &db,
        &[
            "send-message",
            "--as",
            "ci",
            "--to",
            "b",
            "--body-file",
            path,
        ],
    );
    let out = run_with_stdin(
        &db,
        &[
            "send-message",
            "--as",
            "ci",
            "--to",
            "b",
            "--body-file",
            "-",
            "--json",
        ],
        b"from stdin\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let inbox = json(&db, &["inbox", "--as", "b"]);
    assert_eq!(
        inbox["messages"][0]["body"],
        body.as_str(),
        "stored exactly"
    );
    assert_eq!(inbox["messages"][1]["body"], "from stdin\n");

    // JSON from a file follows the rules of --value; so does --metadata.
    std::fs::write(db.dir().join("v.json"), "{\"n\": [1, 2]}\n").unwrap();
    let v = db.dir().join("v.json");
    json(
        &db,
        &[
            "set-state",
            "--as",
            "ci",
            "--key",
            "k",
            "--value-file",
            v.to_str().unwrap(),
        ],
    );
    assert_eq!(
        json(&db, &["get-state", "--key", "k"])["entry"]["value"],
        json!({"n": [1, 2]})
    );

    // Not both; not stdin twice; a missing file is bad usage.
    for (args, says) in [
        (
            vec![
                "send-message",
                "--as",
                "ci",
                "--to",
                "b",
                "--body",
                "x",
                "--body-file",
                path,
            ],
            "cannot be used with",
        ),
        (
            vec![
                "send-message",
                "--as",
                "ci",
                "--to-file",
                "-",
                "--body-file",
                "-",
            ],
            "standard input was already read",
        ),
        (
            vec![
                "send-message",
                "--as",
                "ci",
                "--to",
                "b",
                "--body-file",
                "/no/such/file",
            ],
            "/no/such/file",
        ),
    ] {
        let out = run_with_stdin(&db, &args, b"b");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    // `@file` is no special syntax: it is the text.
    json(
        &db,
        &[
            "send-message",
            "--as",
            "ci",
            "--to",
            "c",
            "--body",
            "@notes.txt",
        ],
    );
    assert_eq!(
        json(&db, &["inbox", "--as", "c"])["messages"][0]["body"],
        "@notes.txt"
    );
}

#[test]
fn text_that_looks_like_json_must_be_json() {
    let db = TempDb::new("cli-json-text");
    for (value, says) in [
        (r#"{"broken": "#, "line 1, column 11"),
        ("1e400", "number out of range"),
        ("1.2.3", "trailing characters"),
    ] {
        let out = run(
            &db,
            &["set-state", "--as", "ci", "--key", "k", "--value", value],
        );
        assert_eq!(out.status.code(), Some(2), "{value}: {}", stderr(&out));
        let e = stderr(&out);
        assert!(
            e.contains("not valid JSON") && e.contains(says),
            "{value}: {e}"
        );
        assert!(e.contains('^'), "points at the spot: {e}");
    }
    let out = run(
        &db,
        &["register-session", "--name", "m", "--metadata", "not json"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 1, column 2"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        json(&db, &["get-state"])["entries"],
        json!([]),
        "nothing was stored"
    );
    // Plain words stay strings; quoted JSON strings, numbers and negatives are JSON.
    for (value, stored) in [
        ("deploy done", json!("deploy done")),
        ("\"1.2.3\"", json!("1.2.3")),
        ("42", json!(42)),
        ("\"42\"", json!("42")),
        ("-5", json!(-5)),
        ("null", json!(null)),
    ] {
        json(
            &db,
            &["set-state", "--as", "ci", "--key", "k", "--value", value],
        );
        assert_eq!(
            json(&db, &["get-state", "--key", "k"])["entry"]["value"],
            stored,
            "{value}"
        );
    }
}

#[test]
fn negative_numbers_and_booleans_read_as_people_write_them() {
    let db = TempDb::new("cli-numbers");
    // A negative number reaches the tool, whose range check answers.
    let out = run(&db, &["inbox", "--as", "x", "--limit", "-1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("-1 is out of range"),
        "{}",
        stderr(&out)
    );
    let out = run(&db, &["prune", "--older-than-days", "-1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    json(
        &db,
        &["send-message", "--as", "a", "--to", "x", "--body", "1"],
    );
    let id = json(&db, &["inbox", "--as", "x"])["messages"][0]["id"].clone();
    json(
        &db,
        &["mark-read", "--as", "x", "--message-ids", &id.to_string()],
    );
    for args in [
        vec!["--unread-only", "false"],
        vec!["--unread-only=false"],
        vec!["--all"],
    ] {
        let mut all = vec!["inbox", "--as", "x"];
        all.extend(args.iter());
        assert_eq!(json(&db, &all)["messages"][0]["id"], id, "{args:?}");
    }
    for args in [vec!["--unread-only"], vec!["--unread-only", "true"]] {
        let mut unread = vec!["inbox", "--as", "x"];
        unread.extend(args.iter());
        assert_eq!(json(&db, &unread)["messages"], json!([]), "{args:?}");
    }
    // A bare flag before another option is still a flag.
    let out = run(
        &db,
        &["inbox", "--as", "x", "--unread-only", "--limit", "3"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_environment_variable_does_not_make_an_option_look_required() {
    let db = TempDb::new("cli-env-usage");
    let out = Command::new(BIN)
        .arg("inbox")
        .env("CLAUDE_C2C_DB", db.path())
        .env("C2C_MAX_BODY_BYTES", "2000")
        .env("C2C_BUSY_TIMEOUT_MS", "500")
        .env_remove("C2C_NAME")
        .env_remove("C2C_ROOM")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let usage = stderr(&out);
    let line = usage.lines().find(|l| l.starts_with("Usage:")).unwrap();
    assert_eq!(line, "Usage: claude-c2c inbox --as <NAME>", "{usage}");

    // The variables still apply: the cap from C2C_MAX_BODY_BYTES, the file from CLAUDE_C2C_DB.
    let out = Command::new(BIN)
        .args(["send-message", "--as", "a", "--to", "b", "--body"])
        .arg("x".repeat(3000))
        .env("CLAUDE_C2C_DB", db.path())
        .env("C2C_MAX_BODY_BYTES", "2000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("2000-byte cap"), "{}", stderr(&out));
    assert!(db.path().is_file());
    let out = Command::new(BIN)
        .arg("get-state")
        .env("CLAUDE_C2C_DB", db.path())
        .env("C2C_BUSY_TIMEOUT_MS", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("C2C_BUSY_TIMEOUT_MS"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn tables_show_what_a_person_needs() {
    let db = TempDb::new("cli-tables");
    json(&db, &["register-session", "--name", "online"]);
    json(
        &db,
        &["send-message", "--as", "ci", "--to", "*", "--body", "all"],
    );
    let id = json(
        &db,
        &[
            "send-message",
            "--as",
            "ci",
            "--to",
            "online",
            "--body",
            "hi",
        ],
    )["id"]
        .clone();
    json(
        &db,
        &[
            "mark-read",
            "--as",
            "online",
            "--message-ids",
            &id.to_string(),
        ],
    );

    let outbox = stdout(&run(&db, &["outbox", "--as", "ci"]));
    assert!(outbox.contains("online:read"), "{outbox}");
    assert!(!outbox.contains('{'), "no JSON in a table: {outbox}");

    let inbox = stdout(&run(&db, &["inbox", "--as", "online", "--all"]));
    let session_id =
        json(&db, &["inbox", "--as", "online", "--all"])["messages"][0]["from_session"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(!inbox.contains(&session_id), "{inbox}");
    assert!(inbox.starts_with("ID  FROM  TO"), "{inbox}");

    json(
        &db,
        &["set-state", "--as", "ci", "--key", "n", "--value", "42"],
    );
    json(
        &db,
        &["set-state", "--as", "ci", "--key", "s", "--value", "\"42\""],
    );
    json(
        &db,
        &["set-state", "--as", "ci", "--key", "z", "--value", "null"],
    );
    let state = stdout(&run(&db, &["get-state"]));
    let rows: Vec<Vec<&str>> = state
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(2).collect())
        .collect();
    assert_eq!(
        rows,
        [vec!["n", "42"], vec!["s", "\"42\""], vec!["z", "null"]],
        "{state}"
    );

    let marked = stdout(&run(
        &db,
        &["mark-read", "--as", "online", "--message-ids", "1"],
    ));
    assert_eq!(marked, "marked 1\n");
}

#[test]
fn serve_takes_the_server_options_and_gen_spec_writes_only_where_it_belongs() {
    let db = TempDb::new("cli-serve");
    // `serve --name` parses (stdin is closed, so the server stops at once, before any client).
    let out = run(&db, &["serve", "--name", "local", "--channel"]);
    assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("unexpected argument"),
        "{}",
        stderr(&out)
    );

    let here = db.dir().join("elsewhere");
    std::fs::create_dir(&here).unwrap();
    let out = Command::new(BIN)
        .arg("gen-spec")
        .current_dir(&here)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--out"), "{}", stderr(&out));
    assert!(
        std::fs::read_dir(&here).unwrap().next().is_none(),
        "wrote nothing"
    );
    let out_dir = here.join("spec-copy");
    let out = Command::new(BIN)
        .args(["gen-spec", "--out"])
        .arg(&out_dir)
        .current_dir(&here)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out_dir.join("tools.json").is_file());
}

#[test]
fn a_database_that_is_not_sqlite_is_said_once() {
    let db = TempDb::new("cli-not-sqlite");
    std::fs::write(db.path(), "hello, I am text").unwrap();
    let out = run(&db, &["get-state"]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert_eq!(
        e.matches("not a").count() + e.matches("not an").count(),
        2,
        "{e}"
    );
    assert!(e.contains("not an SQLite database"), "{e}");
}

#[tokio::test]
async fn prune_needs_no_name_and_clears_names_nobody_uses() {
    let db = TempDb::new("cli-prune");
    let agent = Server::start_with(&db, &["--name", "local"], &[]).await;
    agent.ok("heartbeat", json!({})).await;
    // A mistyped --as leaves a name behind, and mail for a typo waits under it.
    json(
        &db,
        &[
            "send-message",
            "--as",
            "lcoal",
            "--to",
            "local",
            "--body",
            "oops",
        ],
    );
    json(
        &db,
        &[
            "send-message",
            "--as",
            "ci",
            "--to",
            "lcoal",
            "--body",
            "waits",
        ],
    );
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&json(&db, &["sessions"])), ["ci", "lcoal", "local"]);

    // Recently seen names stay; with age 0 every name not seen since goes, the agent's too.
    assert_eq!(json(&db, &["prune"])["sessions_deleted"], 0);
    let pruned = json(&db, &["prune", "--older-than-days", "0"]);
    assert_eq!(pruned["sessions_deleted"], 3, "{pruned}");
    assert_eq!(names(&json(&db, &["sessions"])), Vec::<String>::new());

    // The agent (started with --name) registers again on its next call, its mail intact.
    assert_eq!(agent.unread_ids().await.len(), 1);
    assert_eq!(names(&json(&db, &["sessions"])), ["local"]);
    // Mail to the pruned name waits for whoever takes it.
    assert_eq!(
        json(&db, &["inbox", "--as", "lcoal"])["messages"][0]["body"],
        "waits"
    );

    // A visitor never refreshes a server's heartbeat; a name the command line holds, it may.
    let out = run(&db, &["heartbeat", "--as", "local"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("keeps its own heartbeat"),
        "{}",
        stderr(&out)
    );
    assert_eq!(json(&db, &["heartbeat", "--as", "ci"])["ok"], true);
    agent.stop().await;
}

// `script` (util-linux) gives the server a terminal for stdin; other systems spell it otherwise.
#[cfg(target_os = "linux")]
#[test]
fn a_person_who_starts_the_server_on_a_terminal_is_told_what_it_is() {
    let db = TempDb::new("cli-terminal");
    let line = format!("'{BIN}' --db '{}'", db.path().display());
    // script's own stdin ends at once, which ends the server's terminal and so the server.
    let Ok(out) = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("CLAUDE_C2C_DB")
        .env_remove("C2C_NAME")
        .env_remove("C2C_ROOM")
        .stdin(Stdio::null())
        .output()
    else {
        eprintln!("skipped: no `script` command");
        return;
    };
    let said = stdout(&out);
    assert!(
        said.contains("is an MCP server") && said.contains("claude-c2c --help"),
        "{said}"
    );
    // Through a pipe, as MCP clients start it, nothing is said.
    let out = run(&db, &[]);
    assert!(
        !stderr(&out).contains("is an MCP server"),
        "{}",
        stderr(&out)
    );
}
