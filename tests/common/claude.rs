//! Driving the real Claude Code CLI for the tests that need it (`claude_code`, `claude_flows`):
//! where the binary is (pinned by `.ci/run`, or `C2C_TEST_CLAUDE`), a [`Rig`] per test (its own
//! HOME, working directory, temp dir and database, a cleared environment, a stand-in for the
//! model API), print-mode runs, and the interactive REPL on a pseudo-terminal ([`Repl`]).
//! Included by path, beside `standin.rs`, so that a test binary gets it only if it asks.

#![allow(dead_code)]

use std::cell::RefCell;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{self, BIN, TempDb};
use crate::standin::{Standin, Step};

/// The longest one Claude Code run may take before it is killed and the test fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The debug-log line in which Claude Code says our server is connected.
pub const CONNECTED: &str = "MCP server \"c2c\": Connection established";

/// The Claude Code version `.ci/run` installs.
pub const PINNED: &str = "2.1.332";

/// The Claude Code binary to test: `C2C_TEST_CLAUDE` if set, else the one `.ci/run` installs
/// under `target/claude-code`; the error says why there is none.
pub fn claude_cli() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("C2C_TEST_CLAUDE") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "C2C_TEST_CLAUDE names {}, which does not exist",
                path.display()
            ))
        };
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let path = workspace.join("target/claude-code/node_modules/.bin/claude");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "Claude Code CLI not found at {}: run .ci/run or npm install --prefix target/claude-code \
             @anthropic-ai/claude-code@{PINNED}",
            path.display()
        ))
    }
}

/// The Claude Code binary, or `None` after noting why `test` is skipped; under `CI=true`,
/// where `.ci/run` installs it, its absence fails the test.
pub fn cli_or_skip(test: &str) -> Option<PathBuf> {
    required(test, claude_cli())
}

pub use crate::common::skip::required;

/// `text` quoted for a POSIX shell.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// One test's world: a temp directory holding Claude Code's HOME, its working directory, its
/// temp dir, the database and the config files; the stand-in it talks to; the `claude` binary.
pub struct Rig {
    pub cli: PathBuf,
    pub dir: TempDb,
    pub standin: Standin,
}

/// How one Claude Code run ended.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Rig {
    /// A world for `label` whose model answers with `script`, and whose MCP server `c2c` is
    /// `claude-c2c --name alpha` followed by `server_args`, on the rig's database.
    pub fn new(cli: PathBuf, label: &str, script: Vec<Step>, server_args: &[&str]) -> Rig {
        let rig = Rig::bare(cli, label, script);
        let mut args = vec!["--name", "alpha"];
        args.extend_from_slice(server_args);
        rig.mcp_config(BIN, &args);
        rig
    }

    /// A world for `label` whose model answers with `script`, with no MCP server configured.
    pub fn bare(cli: PathBuf, label: &str, script: Vec<Step>) -> Rig {
        let dir = TempDb::new(label);
        for sub in ["home", "work", "tmp"] {
            std::fs::create_dir_all(dir.dir().join(sub)).unwrap();
        }
        Rig {
            cli,
            dir,
            standin: Standin::start(script),
        }
    }

    /// Writes the MCP config file that runs use alone (`--mcp-config`, `--strict-mcp-config`):
    /// server `c2c` is `command args`, on the rig's database.
    pub fn mcp_config(&self, command: &str, args: &[&str]) {
        let config = json!({ "mcpServers": { "c2c": {
            "type": "stdio",
            "command": command,
            "args": args,
            "env": { "CLAUDE_C2C_DB": self.dir.path() }
        }}});
        std::fs::write(self.file("mcp.json"), config.to_string()).unwrap();
    }

    /// Makes server `c2c` `claude-c2c --name alpha server_args` behind a shell pipe that also
    /// copies everything it says to Claude Code into the file `wire.jsonl`.
    pub fn tap_server(&self, server_args: &[&str]) {
        let tee = format!(
            "\"$0\" \"$@\" | tee {}",
            shell_quote(&self.file("wire.jsonl").display().to_string())
        );
        let mut args = vec!["-c", &tee, BIN, "--name", "alpha"];
        args.extend_from_slice(server_args);
        self.mcp_config("/bin/sh", &args);
    }

    /// The JSON-RPC messages the tapped server sent Claude Code so far (see [`Rig::tap_server`]).
    pub fn wire(&self) -> Vec<Value> {
        std::fs::read_to_string(self.file("wire.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// A file in the rig's directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.dir().join(name)
    }

    /// Claude Code's debug log so far (written by `--debug-file`).
    pub fn debug_log(&self) -> String {
        std::fs::read_to_string(self.file("debug.txt")).unwrap_or_default()
    }

    /// The debug log's lines about our server, for failure messages.
    pub fn server_lines(&self) -> String {
        self.debug_log()
            .lines()
            .filter(|l| l.contains("\"c2c\"") || l.contains("hook") || l.contains("ERROR"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A `claude` command in its own process group, in the rig's working directory, with a
    /// cleared environment (so the developer's Claude Code and claude-c2c settings, the
    /// server's variables included, never leak in) plus what an isolated, offline run needs.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.file("home"))
            .env("TMPDIR", self.file("tmp"))
            .env("DISABLE_TELEMETRY", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("ANTHROPIC_BASE_URL", self.standin.url())
            .env("ANTHROPIC_API_KEY", API_KEY)
            .current_dir(self.file("work"))
            .stdin(Stdio::null())
            .process_group(0);
        cmd
    }

    /// The arguments of a print-mode run of `prompt` with the rig's MCP config file alone (if
    /// it wrote one, see [`Rig::mcp_config`]; else Claude Code's own configuration), our tools
    /// allowed without asking, a debug log, and `extra`.
    pub fn print_args(&self, prompt: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec!["-p".into(), prompt.into()];
        args.extend(self.config_args());
        args.extend(
            ["--allowedTools", "mcp__c2c__*", "--debug-file"]
                .map(String::from)
                .into_iter()
                .chain([self.file("debug.txt").display().to_string()]),
        );
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    /// `--mcp-config FILE --strict-mcp-config` if the rig wrote its own MCP config file.
    fn config_args(&self) -> Vec<String> {
        let file = self.file("mcp.json");
        if !file.exists() {
            return Vec::new();
        }
        vec![
            "--mcp-config".into(),
            file.display().to_string(),
            "--strict-mcp-config".into(),
        ]
    }

    /// Runs `claude args` (a management command such as `mcp add` or `mcp list`) to the end,
    /// within [`RUN_LIMIT`], in the rig's environment with extra environment `envs`; fails the
    /// test if it fails.
    pub fn claude(&self, args: &[&str], envs: &[(&str, &Path)]) -> Run {
        let mut cmd = self.command(&self.cli);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.cli.display()));
        let run = self.finish(Spawned(Some(child)));
        eprintln!("claude {args:?}: {}", run.status);
        run
    }

    /// Starts `claude -p prompt` (see [`Rig::print_args`]) with extra environment `envs`.
    pub fn spawn(&self, prompt: &str, extra: &[&str], envs: &[(&str, &Path)]) -> Spawned {
        let mut cmd = self.command(&self.cli);
        cmd.args(self.print_args(prompt, extra))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Spawned(Some(cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start {}: {e}", self.cli.display())
        })))
    }

    /// Waits for a run started by [`Rig::spawn`] to end; past [`RUN_LIMIT`] kills its process
    /// group and fails with what it wrote. A failed run fails the test too.
    pub fn finish(&self, mut spawned: Spawned) -> Run {
        let child = spawned.0.as_mut().unwrap();
        let out = reader(child.stdout.take().unwrap());
        let err = reader(child.stderr.take().unwrap());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > RUN_LIMIT {
                kill_group(child);
                panic!(
                    "claude still running after {RUN_LIMIT:?}; stderr: {}\nstdout: {}\ndebug log:\n{}",
                    err.join().unwrap(),
                    out.join().unwrap(),
                    self.server_lines()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let run = Run {
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        };
        assert!(
            run.status.success(),
            "claude failed ({}): stderr: {}\nstdout: {}\ndebug log:\n{}",
            run.status,
            run.stderr,
            run.stdout,
            self.server_lines()
        );
        run
    }

    /// Runs `claude -p prompt` to the end (see [`Rig::spawn`] and [`Rig::finish`]).
    pub fn run(&self, prompt: &str, extra: &[&str], envs: &[(&str, &Path)]) -> Run {
        let started = Instant::now();
        let run = self.finish(self.spawn(prompt, extra, envs));
        eprintln!(
            "claude -p {prompt:?}: {} in {:?}, {} requests to the stand-in",
            run.status,
            started.elapsed(),
            self.standin.requests().len()
        );
        run
    }

    /// Runs `claude-c2c --db DB ARGS --json` as another process would; its JSON result.
    pub fn c2c(&self, args: &[&str]) -> Value {
        self.c2c_in(Path::new("."), args)
    }

    /// The same, run in directory `cwd` (which a registration records).
    pub fn c2c_in(&self, cwd: &Path, args: &[&str]) -> Value {
        let out = common::std_command()
            .current_dir(cwd)
            .arg("--db")
            .arg(self.dir.path())
            .args(args)
            .arg("--json")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "claude-c2c {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "claude-c2c {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// The receipt of `sender`'s message `id` for `recipient`, from `claude-c2c outbox`.
    pub fn receipt(&self, sender: &str, id: i64, recipient: &str) -> Value {
        let outbox = self.c2c(&["outbox", "--as", sender]);
        let message = outbox["messages"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["id"] == id))
            .unwrap_or_else(|| panic!("message {id} not in {sender}'s outbox: {outbox}"))
            .clone();
        message["recipients"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == recipient))
            .unwrap_or_else(|| panic!("no receipt for {recipient} in {message}"))
            .clone()
    }
}

/// A Claude Code run started by [`Rig::spawn`]; its process group is killed if it is dropped
/// before [`Rig::finish`] saw it end (say, when a test fails half-way).
pub struct Spawned(Option<Child>);

impl Spawned {
    /// The process id of the `claude` process.
    pub fn id(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut()
            && child.try_wait().ok().flatten().is_none()
        {
            kill_group(child);
        }
    }
}

/// The API key every run uses; the REPL asks about it unless approved in `~/.claude.json`.
pub const API_KEY: &str = "sk-ant-standin-0123456789abcdefghij";

/// The interactive Claude Code REPL of a rig, running on a pseudo-terminal under util-linux
/// `script`, which copies the screen to the rig's file `screen.txt`. Stopped when dropped.
pub struct Repl {
    child: RefCell<Child>,
    /// The terminal's input; held open, since at end of input `script` would end the session.
    input: ChildStdin,
    screen: PathBuf,
}

impl Rig {
    /// Starts the REPL with the rig's MCP config file alone (if it wrote one), a debug log, `extra` arguments and
    /// extra environment `envs`, with onboarding done, the working directory trusted and the
    /// API key approved, so that no dialog stands in the way. The error says why it could not
    /// start (no util-linux `script`).
    pub fn repl(&self, extra: &[&str], envs: &[(&str, &Path)]) -> Result<Repl, String> {
        let script = Path::new("/usr/bin/script");
        let usable = Command::new(script)
            .arg("--version")
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).contains("util-linux")
            });
        if !usable {
            return Err(format!(
                "{} (util-linux) is not available",
                script.display()
            ));
        }
        let work = self.file("work").display().to_string();
        let key = &API_KEY[API_KEY.len() - 20..];
        // Added to what Claude Code keeps there already (servers added with `claude mcp add`).
        let state_file = self.file("home/.claude.json");
        let mut state: Value = std::fs::read_to_string(&state_file)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_else(|| json!({}));
        state["hasCompletedOnboarding"] = json!(true);
        state["customApiKeyResponses"] = json!({ "approved": [key], "rejected": [] });
        if !state["projects"].is_object() {
            state["projects"] = json!({});
        }
        if !state["projects"][&work].is_object() {
            state["projects"][&work] = json!({});
        }
        state["projects"][&work]["hasTrustDialogAccepted"] = json!(true);
        std::fs::write(&state_file, state.to_string()).unwrap();
        let mut line = vec![self.cli.display().to_string()];
        line.extend(self.config_args());
        line.extend([
            "--debug-file".into(),
            self.file("debug.txt").display().to_string(),
        ]);
        line.extend(extra.iter().map(|a| a.to_string()));
        let line: Vec<String> = line.iter().map(|a| shell_quote(a)).collect();
        let screen = self.file("screen.txt");
        let mut cmd = self.command(script);
        cmd.arg("-qfec")
            .arg(line.join(" "))
            .arg(&screen)
            .env("TERM", "xterm-256color")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start script: {e}"))?;
        let input = child.stdin.take().unwrap();
        Ok(Repl {
            child: RefCell::new(child),
            input,
            screen,
        })
    }
}

impl Repl {
    /// What the REPL has drawn so far, escape sequences and all.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.screen).unwrap_or_default()).into_owned()
    }

    /// Polls `found` until it yields something, the REPL ends, or `limit` passes.
    pub fn wait_for<T>(&self, limit: Duration, mut found: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(it) = found() {
                return Some(it);
            }
            if Instant::now() > deadline || !self.running() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether `script` (and so the REPL) still runs.
    pub fn running(&self) -> bool {
        self.child.borrow_mut().try_wait().unwrap().is_none()
    }

    /// Types `text` at the prompt and, once the screen shows it (or after 10 s), presses
    /// Enter: typed apart, Enter is a key press, not part of a paste.
    pub fn submit(&mut self, text: &str) {
        use std::io::Write;
        self.input.write_all(text.as_bytes()).unwrap();
        self.input.flush().unwrap();
        let wanted = drawn(text);
        self.wait_for(Duration::from_secs(10), || {
            drawn(&self.screen()).contains(&wanted).then_some(())
        });
        self.input.write_all(b"\r").unwrap();
        self.input.flush().unwrap();
    }

    /// Ends the session: `script` ends on SIGTERM, and the REPL and our server with it when
    /// their terminal goes; whatever is left of `script`'s process group is killed.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Repl {
    fn drop(&mut self) {
        let child = self.child.get_mut();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let stopped = Instant::now();
        while child.try_wait().unwrap().is_none() && stopped.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        kill_group(child);
    }
}

/// The printable characters of terminal output `screen`, without escape sequences and
/// whitespace: the REPL moves the cursor over blanks rather than drawing them, so that is
/// what a check for drawn text can rely on.
pub fn drawn(screen: &str) -> String {
    let mut out = String::new();
    let mut chars = screen.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            if !c.is_whitespace() && !c.is_control() {
                out.push(c);
            }
            continue;
        }
        match chars.next() {
            // CSI: parameters up to a final byte in @..~.
            Some('[') => {
                chars.by_ref().find(|c| ('@'..='~').contains(c));
            }
            // OSC: up to BEL or ESC \.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' {
                        break;
                    }
                    if c == '\x1b' {
                        chars.next();
                        break;
                    }
                }
            }
            // A character set: one more character.
            Some('(' | ')') => {
                chars.next();
            }
            _ => {}
        }
    }
    out
}

/// Reads all of `pipe` on a thread (so that a chatty child never blocks on a full pipe).
pub fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Up to 200 characters of `text` either side of `needle`, if `text` contains it.
pub fn excerpt(text: &str, needle: &str) -> Option<String> {
    let at = text.find(needle)?;
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(199)
        .map_or(0, |(i, _)| i);
    let end = text[at..]
        .char_indices()
        .nth(needle.len() + 200)
        .map_or(text.len(), |(i, _)| at + i);
    Some(text[start..end].to_string())
}

/// Kills the process group that `child` leads (Claude Code, its MCP servers and hooks).
pub fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}
