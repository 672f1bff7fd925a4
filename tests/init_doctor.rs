//! `claude-c2c init` and `claude-c2c doctor`, run from the built binary in temporary project
//! folders with a private HOME and a PATH that holds only a link to the binary (and, where a
//! test needs one, a stand-in `claude`). Unix only: the stand-ins are shell scripts and
//! symlinks, and the database checks are about file modes; the commands themselves build for
//! every platform.

#![cfg(unix)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{BIN, SERVER_ENV, TempDb};
use serde_json::{Value, json};

/// A project folder, a HOME and a bin folder on PATH, all inside one temporary directory.
struct Setup {
    tmp: TempDb,
    project: PathBuf,
    home: PathBuf,
    bin: PathBuf,
}

impl Setup {
    fn new(label: &str) -> Self {
        let tmp = TempDb::new(label);
        let root = tmp.dir().canonicalize().unwrap();
        let (project, home, bin) = (root.join("project"), root.join("home"), root.join("bin"));
        for dir in [&project, &home, &bin] {
            fs::create_dir_all(dir).unwrap();
        }
        std::os::unix::fs::symlink(BIN, bin.join("claude-c2c")).unwrap();
        Setup {
            tmp,
            project,
            home,
            bin,
        }
    }

    /// Runs `claude-c2c args` in the project folder.
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        for var in SERVER_ENV {
            cmd.env_remove(var);
        }
        cmd.args(args)
            .current_dir(&self.project)
            .env("HOME", &self.home)
            .env("PATH", &self.bin)
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed and returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    fn file(&self, relative: &str) -> PathBuf {
        self.project.join(relative)
    }

    fn json(&self, relative: &str) -> Value {
        serde_json::from_slice(&fs::read(self.file(relative)).unwrap()).unwrap()
    }

    fn db(&self) -> PathBuf {
        self.tmp.dir().join("data").join("c2c.db")
    }

    /// Puts a stand-in `claude` on PATH that logs its arguments to `claude.log`.
    fn fake_claude(&self) -> PathBuf {
        let log = self.tmp.dir().join("claude.log");
        let script = self.bin.join("claude");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\n[ \"$1\" = --version ] && echo '9.9.9 (Claude Code)'\nexit 0\n",
                log.display()
            ),
        )
        .unwrap();
        set_mode(&script, 0o755);
        log
    }

    /// Runs `doctor --json` and returns its exit success and JSON.
    fn doctor(&self, extra: &[&str]) -> (bool, Value) {
        let mut args = vec!["doctor", "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let report: Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
        assert_eq!(report["ok"], out.status.success(), "{report}");
        (out.status.success(), report)
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The commands of every hook in `event` of a settings file.
fn commands(settings: &Value, event: &str) -> Vec<String> {
    settings["hooks"][event]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["hooks"].as_array().unwrap().iter())
        .map(|h| h["command"].as_str().unwrap().to_string())
        .collect()
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {report}"))
}

#[test]
fn a_fresh_project_is_wired_and_a_second_run_changes_nothing() {
    let s = Setup::new("init-fresh");
    let out = s.ok(&["init", "--name", "local"]);
    assert!(out.contains("added MCP server \"c2c\""), "{out}");
    assert!(out.contains("claude-c2c doctor"), "{out}");

    assert_eq!(
        s.json(".mcp.json"),
        json!({ "mcpServers": { "c2c": { "command": "claude-c2c", "args": ["--name", "local"] } } })
    );
    let settings = s.json(".claude/settings.json");
    assert_eq!(
        settings["hooks"]["SessionStart"],
        json!([{ "hooks": [{ "type": "command", "command": "claude-c2c hook prompt --name local", "timeout": 10 }] }])
    );
    assert_eq!(
        settings["hooks"]["UserPromptSubmit"],
        settings["hooks"]["SessionStart"]
    );
    assert_eq!(
        settings["hooks"]["Stop"],
        json!([{ "hooks": [{
            "type": "command",
            "command": "claude-c2c hook wait --name local --timeout-seconds 3540",
            "asyncRewake": true,
            "timeout": 3600
        }] }])
    );

    let before = (
        fs::read(s.file(".mcp.json")).unwrap(),
        fs::read(s.file(".claude/settings.json")).unwrap(),
        fs::metadata(s.file(".claude/settings.json"))
            .unwrap()
            .modified()
            .unwrap(),
    );
    let again = s.ok(&["init", "--name", "local"]);
    assert!(again.contains("already set up"), "{again}");
    let after = (
        fs::read(s.file(".mcp.json")).unwrap(),
        fs::read(s.file(".claude/settings.json")).unwrap(),
        fs::metadata(s.file(".claude/settings.json"))
            .unwrap()
            .modified()
            .unwrap(),
    );
    assert_eq!(before, after, "a second run writes nothing");
}

#[test]
fn dry_run_writes_nothing_and_says_what_would_change() {
    let s = Setup::new("init-dry");
    let out = s.ok(&["init", "--name", "local", "--dry-run"]);
    assert!(out.contains("would add MCP server \"c2c\""), "{out}");
    assert!(out.contains("would add Stop hook"), "{out}");
    assert!(!s.file(".mcp.json").exists());
    assert!(!s.file(".claude").exists());

    s.ok(&["init", "--name", "local"]);
    let before = fs::read(s.file(".claude/settings.json")).unwrap();
    let out = s.ok(&["init", "--name", "online", "--dry-run"]);
    assert!(
        out.contains(
            "would update MCP server \"c2c\": claude-c2c --name local -> claude-c2c --name online"
        ),
        "{out}"
    );
    assert!(out.contains("would replace Stop hook"), "{out}");
    assert_eq!(fs::read(s.file(".claude/settings.json")).unwrap(), before);
    assert_eq!(s.json(".mcp.json")["mcpServers"]["c2c"]["args"][1], "local");
}

#[test]
fn no_hooks_leaves_the_settings_alone() {
    let s = Setup::new("init-nohooks");
    let out = s.ok(&["init", "--name", "local", "--no-hooks"]);
    assert!(out.contains("--no-hooks"), "{out}");
    assert!(s.file(".mcp.json").exists());
    assert!(!s.file(".claude").exists());
}

#[test]
fn other_hooks_keys_and_servers_are_kept_and_ours_replaced_not_duplicated() {
    let s = Setup::new("init-merge");
    fs::create_dir_all(s.file(".claude")).unwrap();
    let original = json!({
        "model": "opus",
        "permissions": { "allow": ["Bash(ls:*)"] },
        "hooks": {
            "UserPromptSubmit": [
                { "hooks": [{ "type": "command", "command": "echo remember the tests" }] }
            ],
            "Stop": [
                { "matcher": "", "hooks": [
                    { "type": "command", "command": "notify-send done" },
                    { "type": "command", "command": "/opt/old/claude-c2c hook wait" }
                ] }
            ],
            "PreToolUse": [
                { "matcher": "Bash", "hooks": [{ "type": "command", "command": "guard.sh" }] }
            ]
        }
    });
    fs::write(
        s.file(".claude/settings.json"),
        serde_json::to_string_pretty(&original).unwrap(),
    )
    .unwrap();
    fs::write(
        s.file(".mcp.json"),
        r#"{"mcpServers": {"github": {"command": "gh-mcp", "args": []}}, "other": 1}"#,
    )
    .unwrap();

    s.ok(&["init", "--name", "local"]);
    let settings = s.json(".claude/settings.json");
    assert_eq!(settings["model"], "opus");
    assert_eq!(settings["permissions"], original["permissions"]);
    assert_eq!(
        settings["hooks"]["PreToolUse"],
        original["hooks"]["PreToolUse"]
    );
    assert_eq!(
        commands(&settings, "UserPromptSubmit"),
        [
            "echo remember the tests",
            "claude-c2c hook prompt --name local"
        ]
    );
    assert_eq!(
        commands(&settings, "Stop"),
        [
            "notify-send done",
            "claude-c2c hook wait --name local --timeout-seconds 3540"
        ],
        "the old hook of ours is replaced in place"
    );
    assert_eq!(
        commands(&settings, "SessionStart"),
        ["claude-c2c hook prompt --name local"]
    );
    let mcp = s.json(".mcp.json");
    assert_eq!(mcp["mcpServers"]["github"]["command"], "gh-mcp");
    assert_eq!(mcp["other"], 1);
    let keys: Vec<&String> = mcp["mcpServers"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["github", "c2c"], "key order is kept");

    // Another name: ours replaced, nothing duplicated, the rest untouched.
    let out = s.ok(&["init", "--name", "online"]);
    assert!(out.contains("replaced UserPromptSubmit hook"), "{out}");
    let settings = s.json(".claude/settings.json");
    assert_eq!(
        commands(&settings, "UserPromptSubmit"),
        [
            "echo remember the tests",
            "claude-c2c hook prompt --name online"
        ]
    );
    assert_eq!(
        commands(&settings, "Stop"),
        [
            "notify-send done",
            "claude-c2c hook wait --name online --timeout-seconds 3540"
        ]
    );
    assert_eq!(
        commands(&settings, "SessionStart"),
        ["claude-c2c hook prompt --name online"]
    );
    assert_eq!(
        settings["hooks"]["PreToolUse"],
        original["hooks"]["PreToolUse"]
    );
    assert_eq!(
        s.json(".mcp.json")["mcpServers"]["c2c"]["args"],
        json!(["--name", "online"])
    );
}

#[test]
fn invalid_json_is_refused_and_nothing_is_written() {
    let s = Setup::new("init-invalid");
    fs::create_dir_all(s.file(".claude")).unwrap();
    let broken = "{\n  \"hooks\": {\n    \"Stop\": [,]\n  }\n}\n";
    fs::write(s.file(".claude/settings.json"), broken).unwrap();
    let out = s.run(&["init", "--name", "local"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains(".claude/settings.json:3:"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(
        fs::read_to_string(s.file(".claude/settings.json")).unwrap(),
        broken
    );
    assert!(
        !s.file(".mcp.json").exists(),
        "the valid file is not written either"
    );

    // The same for .mcp.json, with a valid settings.json left untouched.
    fs::remove_file(s.file(".claude/settings.json")).unwrap();
    fs::write(s.file(".mcp.json"), "{\"mcpServers\": ").unwrap();
    let out = s.run(&["init", "--name", "local"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(".mcp.json:1:"), "{}", stderr(&out));
    assert!(!s.file(".claude/settings.json").exists());
}

#[test]
fn a_database_given_to_init_reaches_the_server_and_the_hooks() {
    let s = Setup::new("init-db");
    let out = s.run(&["init", "--name", "local", "--db", "../data/my c2c.db"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = s.project.join("../data/my c2c.db");
    let db = std::path::absolute(db).unwrap();
    let db = db.display().to_string();
    assert_eq!(
        s.json(".mcp.json")["mcpServers"]["c2c"]["args"],
        json!(["--name", "local", "--db", db])
    );
    let settings = s.json(".claude/settings.json");
    assert_eq!(
        commands(&settings, "Stop"),
        [format!(
            "claude-c2c hook wait --name local --timeout-seconds 3540 --db '{db}'"
        )]
    );
}

#[test]
fn local_scope_goes_through_claude_mcp_add() {
    let s = Setup::new("init-scope");
    // Without `claude` on PATH: refused, with the command to run.
    let out = s.run(&["init", "--name", "local", "--scope", "local"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("claude mcp add --scope local c2c -- claude-c2c --name local"),
        "{err}"
    );
    assert!(!s.file(".claude").exists(), "nothing written");

    let log = s.fake_claude();
    let out = s.ok(&["init", "--name", "local", "--scope", "local"]);
    assert!(out.contains("ran: claude mcp add"), "{out}");
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "mcp add --scope local c2c -- claude-c2c --name local\n"
    );
    assert!(!s.file(".mcp.json").exists());
    assert!(s.file(".claude/settings.json").exists());

    // Claude Code now has the entry (as `claude mcp add` would have written it): nothing to do.
    let project = s.project.display().to_string();
    let config = json!({ "projects": { project: { "mcpServers": { "c2c": {
        "type": "stdio", "command": "claude-c2c", "args": ["--name", "local"], "env": {}
    } } } } });
    fs::write(s.home.join(".claude.json"), config.to_string()).unwrap();
    let out = s.ok(&["init", "--name", "local", "--scope", "local"]);
    assert!(out.contains("already set up"), "{out}");
    // Another name: the old entry is removed first.
    s.ok(&["init", "--name", "online", "--scope", "local"]);
    let calls = fs::read_to_string(&log).unwrap();
    assert!(
        calls.ends_with(
            "mcp remove --scope local c2c\nmcp add --scope local c2c -- claude-c2c --name online\n"
        ),
        "{calls}"
    );
}

#[test]
fn doctor_passes_a_healthy_setup() {
    let s = Setup::new("doctor-ok");
    let db = s.db().display().to_string();
    s.ok(&["init", "--name", "local", "--db", &db]);
    s.ok(&[
        "--db",
        &db,
        "send-message",
        "--as",
        "a",
        "--to",
        "b",
        "--body",
        "hi",
    ]);
    let log = s.fake_claude();

    let (ok, report) = s.doctor(&[]);
    assert!(ok, "{report}");
    for name in [
        "claude-c2c",
        "claude code",
        "mcp server",
        "hooks",
        "hook binary",
        "hook database",
        "database",
        "permissions",
        "schema",
        "integrity",
        "sessions",
        "write notices",
    ] {
        let c = check(&report, name);
        assert_eq!(c["status"], "ok", "{c}");
    }
    assert!(
        check(&report, "claude-c2c")["detail"]
            .as_str()
            .unwrap()
            .contains("this binary")
    );
    assert!(
        check(&report, "claude code")["detail"]
            .as_str()
            .unwrap()
            .contains("9.9.9")
    );
    assert!(
        check(&report, "database")["detail"]
            .as_str()
            .unwrap()
            .contains(&db)
    );
    assert!(
        check(&report, "sessions")["detail"]
            .as_str()
            .unwrap()
            .contains("a (")
    );
    // Only `claude --version` ran: nothing that would start the server.
    assert_eq!(fs::read_to_string(&log).unwrap(), "--version\n");

    let out = s.run(&["doctor"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("ok    schema"), "{text}");
    assert!(text.contains("All checks passed."), "{text}");
}

#[test]
fn doctor_fails_an_unset_project_and_a_missing_binary() {
    let s = Setup::new("doctor-unset");
    fs::remove_file(s.bin.join("claude-c2c")).unwrap();
    let (ok, report) = s.doctor(&[]);
    assert!(!ok);
    let c = check(&report, "claude-c2c");
    assert_eq!(c["status"], "fail");
    assert!(c["fix"].as_str().unwrap().contains("cargo install"), "{c}");
    let c = check(&report, "mcp server");
    assert_eq!(c["status"], "fail");
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains("claude-c2c init --name"),
        "{c}"
    );
    assert_eq!(check(&report, "hooks")["status"], "warn");
    assert_eq!(check(&report, "claude code")["status"], "warn");

    let out = s.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("FAIL  mcp server"), "{text}");
    assert!(
        text.contains("fix: run `claude-c2c init --name NAME`"),
        "{text}"
    );
}

#[test]
fn doctor_finds_hooks_on_another_database() {
    let s = Setup::new("doctor-hookdb");
    s.ok(&["init", "--name", "local"]);
    let db = s.db().display().to_string();
    s.ok(&["init", "--name", "local", "--db", &db, "--no-hooks"]);
    let (ok, report) = s.doctor(&[]);
    assert!(!ok);
    let c = check(&report, "hook database");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["detail"].as_str().unwrap().contains(&db), "{c}");
    assert!(c["fix"].as_str().unwrap().contains("--db"), "{c}");
}

#[test]
fn doctor_fails_a_broken_database_naming_the_fix() {
    let s = Setup::new("doctor-db");
    let db = s.db();
    let shown = db.display().to_string();
    s.ok(&["init", "--name", "local", "--db", &shown]);

    // Not SQLite at all.
    fs::create_dir_all(db.parent().unwrap()).unwrap();
    set_mode(db.parent().unwrap(), 0o700);
    fs::write(
        &db,
        "this is not a database, just text that is long enough to matter\n".repeat(20),
    )
    .unwrap();
    set_mode(&db, 0o600);
    let (ok, report) = s.doctor(&[]);
    assert!(!ok);
    let c = check(&report, "schema");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["fix"].as_str().unwrap().contains("mv "), "{c}");

    // Written by a newer claude-c2c.
    fs::remove_file(&db).unwrap();
    s.ok(&[
        "--db",
        &shown,
        "send-message",
        "--as",
        "a",
        "--to",
        "b",
        "--body",
        "hi",
    ]);
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let (ok, report) = s.doctor(&[]);
    assert!(!ok);
    let c = check(&report, "schema");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["detail"].as_str().unwrap().contains("version 99"), "{c}");
    assert!(
        c["fix"].as_str().unwrap().contains("newer claude-c2c"),
        "{c}"
    );

    // Readable by everyone.
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(
            None,
            "user_version",
            c2c_server::store::migrate::MIGRATIONS.len() as i64,
        )
        .unwrap();
    set_mode(&db, 0o644);
    let (ok, report) = s.doctor(&[]);
    assert!(!ok);
    let c = check(&report, "permissions");
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["fix"], format!("`chmod 600 {shown}`"));
    assert_eq!(check(&report, "schema")["status"], "ok");
    let out = s.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAIL  permissions"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn init_wires_a_room_into_the_server_and_every_hook_and_doctor_checks_they_agree() {
    let s = Setup::new("init-room");
    let db = s.db().display().to_string();
    let quoted = format!("'{db}'");
    let out = s.ok(&["init", "--name", "local", "--room", "b", "--db", &db]);
    assert!(out.contains("as \"local\" in room \"b\""), "{out}");
    let wired = |room: Option<&str>| {
        let room_args: Vec<&str> = room.map_or(vec![], |r| vec!["--room", r]);
        let room_words = room.map_or(String::new(), |r| format!(" --room {r}"));
        let mut args = vec!["--name", "local"];
        args.extend(room_args);
        args.extend(["--db", db.as_str()]);
        assert_eq!(
            s.json(".mcp.json")["mcpServers"]["c2c"]["args"],
            json!(args),
            "room {room:?}"
        );
        let settings = s.json(".claude/settings.json");
        let prompt = format!("claude-c2c hook prompt --name local{room_words} --db {quoted}");
        for event in ["SessionStart", "UserPromptSubmit"] {
            assert_eq!(commands(&settings, event), [prompt.as_str()], "{event}");
        }
        assert_eq!(
            commands(&settings, "Stop"),
            [format!(
                "claude-c2c hook wait --name local --timeout-seconds 3540{room_words} --db {quoted}"
            )]
        );
    };
    wired(Some("b"));

    // A second run changes nothing; so does the room given by C2C_ROOM instead.
    let before = (
        fs::read(s.file(".mcp.json")).unwrap(),
        fs::read(s.file(".claude/settings.json")).unwrap(),
    );
    let again = s.ok(&["init", "--name", "local", "--room", "b", "--db", &db]);
    assert!(again.contains("already set up"), "{again}");
    let mut cmd = Command::new(BIN);
    for var in SERVER_ENV {
        cmd.env_remove(var);
    }
    let out = cmd
        .args(["init", "--name", "local", "--db", &db])
        .current_dir(&s.project)
        .env("HOME", &s.home)
        .env("PATH", &s.bin)
        .env("C2C_ROOM", "b")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("already set up"), "{}", stdout(&out));
    let after = (
        fs::read(s.file(".mcp.json")).unwrap(),
        fs::read(s.file(".claude/settings.json")).unwrap(),
    );
    assert_eq!(before, after, "a second run writes nothing");

    // Doctor: the hooks and the server agree, and the sessions shown are room b's.
    let (ok, report) = s.doctor(&[]);
    assert!(ok, "{report}");
    assert_eq!(check(&report, "hook database")["status"], "ok");
    let send = |room: &str, from: &str| {
        s.ok(&[
            "--db",
            &db,
            "--room",
            room,
            "send-message",
            "--as",
            from,
            "--to",
            "local",
            "--body",
            "hi",
        ]);
    };
    send("elsewhere", "in-elsewhere");
    let (ok, report) = s.doctor(&[]);
    assert!(ok, "{report}");
    assert_eq!(
        check(&report, "sessions")["detail"],
        "none yet in room b",
        "{report}"
    );
    send("b", "in-b");
    send("default", "in-default");
    let (ok, report) = s.doctor(&[]);
    assert!(ok, "{report}");
    let detail = check(&report, "sessions")["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("1 in room b: in-b (") && !detail.contains("in-default"),
        "{detail}"
    );

    // Another room replaces the one written, in the server and in each hook (one of each).
    let out = s.ok(&["init", "--name", "local", "--room", "c", "--db", &db]);
    assert!(out.contains("updated MCP server \"c2c\""), "{out}");
    wired(Some("c"));
    // The default room writes no option: what was wired before rooms.
    s.ok(&["init", "--name", "local", "--db", &db]);
    wired(None);
    s.ok(&["init", "--name", "local", "--room", "default", "--db", &db]);
    wired(None);
    let (ok, report) = s.doctor(&[]);
    assert!(ok, "{report}");
    assert!(
        check(&report, "sessions")["detail"]
            .as_str()
            .unwrap()
            .starts_with("1 in room default: in-default ("),
        "{report}"
    );

    // The server moved to room b without its hooks: doctor fails, and its fix works.
    s.ok(&[
        "init",
        "--name",
        "local",
        "--room",
        "b",
        "--db",
        &db,
        "--no-hooks",
    ]);
    let (ok, report) = s.doctor(&[]);
    assert!(!ok, "{report}");
    let c = check(&report, "hook database");
    assert_eq!(c["status"], "fail", "{c}");
    let detail = c["detail"].as_str().unwrap();
    for event in ["SessionStart", "UserPromptSubmit", "Stop"] {
        assert!(
            detail.contains(&format!(
                "the {event} hook in .claude/settings.json is in room \"default\" but the server"
            )),
            "{detail}"
        );
    }
    assert!(detail.contains("is in \"b\""), "{detail}");
    let fix = c["fix"].as_str().unwrap();
    let command = fix
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in {fix:?}"));
    assert_eq!(
        command,
        format!("claude-c2c init --name local --room b --db {db}")
    );
    let words: Vec<&str> = command.split(' ').skip(1).collect();
    s.ok(&words);
    wired(Some("b"));
    let (ok, report) = s.doctor(&[]);
    assert!(ok, "{report}");

    // A room set in the server's environment, and in front of a hook command, counts too.
    let mut mcp = s.json(".mcp.json");
    mcp["mcpServers"]["c2c"]["args"] = json!(["--name", "local", "--db", db]);
    mcp["mcpServers"]["c2c"]["env"] = json!({"C2C_ROOM": "b"});
    fs::write(s.file(".mcp.json"), mcp.to_string()).unwrap();
    let (ok, report) = s.doctor(&[]);
    assert!(ok, "{report}");
    let mut settings = s.json(".claude/settings.json");
    settings["hooks"]["Stop"][0]["hooks"][0]["command"] = json!(format!(
        "C2C_ROOM=b claude-c2c hook wait --name local --timeout-seconds 3540 --db {quoted}"
    ));
    fs::write(s.file(".claude/settings.json"), settings.to_string()).unwrap();
    let (ok, report) = s.doctor(&[]);
    assert!(ok, "{report}");
    settings["hooks"]["Stop"][0]["hooks"][0]["command"] = json!(format!(
        "C2C_ROOM=c claude-c2c hook wait --name local --timeout-seconds 3540 --db {quoted}"
    ));
    fs::write(s.file(".claude/settings.json"), settings.to_string()).unwrap();
    let (ok, report) = s.doctor(&[]);
    assert!(!ok, "{report}");
    let detail = check(&report, "hook database")["detail"].as_str().unwrap();
    assert!(
        detail.contains("the Stop hook in .claude/settings.json is in room \"c\"")
            && !detail.contains("SessionStart"),
        "{detail}"
    );
}

#[test]
fn a_room_reaches_claude_mcp_add_for_the_local_scope() {
    let s = Setup::new("init-room-scope");
    let log = s.fake_claude();
    s.ok(&["init", "--name", "local", "--room", "b", "--scope", "local"]);
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "mcp add --scope local c2c -- claude-c2c --name local --room b\n"
    );
    assert_eq!(
        commands(&s.json(".claude/settings.json"), "Stop"),
        ["claude-c2c hook wait --name local --timeout-seconds 3540 --room b"]
    );
    // Claude Code has that entry now: nothing to do; in another room, it is replaced.
    let project = s.project.display().to_string();
    let config = json!({ "projects": { project: { "mcpServers": { "c2c": {
        "type": "stdio", "command": "claude-c2c", "args": ["--name", "local", "--room", "b"],
        "env": {}
    } } } } });
    fs::write(s.home.join(".claude.json"), config.to_string()).unwrap();
    let out = s.ok(&["init", "--name", "local", "--room", "b", "--scope", "local"]);
    assert!(out.contains("already set up"), "{out}");
    let (ok, report) = s.doctor(&[]);
    assert!(ok, "{report}");
    s.ok(&["init", "--name", "local", "--scope", "local"]);
    let calls = fs::read_to_string(&log).unwrap();
    assert!(
        calls.ends_with(
            "mcp remove --scope local c2c\nmcp add --scope local c2c -- claude-c2c --name local\n"
        ),
        "{calls}"
    );
}
