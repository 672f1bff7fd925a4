//! The harness the end-to-end tests share: a private temporary directory per test (removed at
//! the end), and server processes of the built binary driven through rmcp's client over stdio.
//! Every tool call goes through [`Server::call`], which checks the shape of each result on the
//! way: a success is one JSON object sent both as structuredContent and as exactly one text
//! block holding the same JSON, and matches the tool's outputSchema ([`schema`]); an error is
//! one text block and nothing else.

#![allow(dead_code)]

pub mod hub;
pub mod raw;
pub mod schema;
pub mod skip;
pub mod web;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CustomNotification, ProgressNotificationParam};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_claude-c2c");

/// The longest any single request may take before the test fails instead of hanging.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a server may take to exit after its client closed stdin: rmcp kills it then.
pub const STOP_LIMIT: Duration = Duration::from_secs(3);

/// Environment variables the server reads: cleared for every spawned process, so that the
/// developer's own settings never leak into a test.
pub const SERVER_ENV: &[&str] = &[
    "C2C_NAME",
    "C2C_ROOM",
    "CLAUDE_C2C_DB",
    "C2C_MAX_BODY_BYTES",
    "C2C_BUSY_TIMEOUT_MS",
    "CLAUDE_PROJECT_DIR",
    "CLAUDE_CODE_SESSION_ID",
    "CLAUDE_CODE_ENTRYPOINT",
    "C2C_HUB",
    "C2C_TOKEN",
    "C2C_HUB_CA",
    "C2C_CHANNEL",
];

/// A temporary directory for one test, holding its database; removed when dropped.
pub struct TempDb {
    dir: PathBuf,
}

impl TempDb {
    /// A fresh, empty directory under the system temp dir, unique to this process and call.
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "c2c-test-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDb { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database file inside it (not created until a server opens it).
    pub fn path(&self) -> PathBuf {
        self.dir.join("c2c.db")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `claude-c2c` command with a clean environment: none of the server's variables set.
pub fn command() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    for var in SERVER_ENV {
        cmd.env_remove(var);
    }
    cmd.kill_on_drop(true);
    cmd
}

/// A `claude-c2c` command serving the database at `path`, with extra command-line `args` and
/// environment `envs`.
pub fn server_command(
    path: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> tokio::process::Command {
    let mut cmd = command();
    cmd.arg("--db").arg(path).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// A `claude-c2c` command like [`server_command`] whose process is not a child of this test
/// but of a shell in between: like a server that another Claude Code process started, it
/// shares no parent with the hooks the test runs (which find their session by that parent).
pub fn server_command_apart(
    path: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> tokio::process::Command {
    // `; exit $?` keeps the shell from replacing itself with the server.
    let (shell, script) = if cfg!(windows) {
        ("cmd", "/C")
    } else {
        ("sh", "-c")
    };
    let mut cmd = tokio::process::Command::new(shell);
    if cfg!(windows) {
        cmd.arg(script).arg(BIN);
    } else {
        cmd.arg(script).arg("\"$0\" \"$@\"; exit $?").arg(BIN);
    }
    cmd.arg("--db").arg(path).args(args);
    for var in SERVER_ENV {
        cmd.env_remove(var);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.kill_on_drop(true);
    cmd
}

/// The same, for `std::process` (for runs that are not MCP sessions).
pub fn std_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    for var in SERVER_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs the command line on the database `db` with `args`, the environment `envs` added to a
/// clean one, and `stdin` as its input; waits for it to exit.
pub fn cli_with(
    db: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    stdin: &str,
) -> std::process::Output {
    use std::io::Write;
    let mut cmd = std_command();
    cmd.arg("--db").arg(db).args(args).env_remove("NO_COLOR");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command may exit without reading its input (a hook with nothing to do): a closed pipe
    // is its answer, not the test's failure.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    child.wait_with_output().unwrap()
}

/// Runs the command line on `db` with `args`, no extra environment and no input.
pub fn cli(db: &Path, args: &[&str]) -> std::process::Output {
    cli_with(db, args, &[], "")
}

/// Runs a command on `db` that must succeed, with `--json` added when it is a tool's
/// subcommand; its output as JSON, checked against the tool's output schema.
pub fn cli_json(db: &Path, args: &[&str]) -> Value {
    cli_json_with(db, args, &[])
}

/// Sends `body` to `to` as `from` in `room` from the command line; the new message's id.
pub fn send_in(db: &Path, room: &str, from: &str, to: &str, body: &str) -> i64 {
    cli_json(
        db,
        &[
            "--room",
            room,
            "send-message",
            "--as",
            from,
            "--to",
            to,
            "--body",
            body,
        ],
    )["id"]
        .as_i64()
        .expect("the new message's id")
}

/// The same, with the environment `envs` added to a clean one.
pub fn cli_json_with(db: &Path, args: &[&str], envs: &[(&str, &str)]) -> Value {
    let mut args = args.to_vec();
    if !args.contains(&"--json") {
        args.push("--json");
    }
    let out = cli_with(db, &args, envs, "");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    // The subcommand is the first argument that is not a global option or its value.
    let mut words = args.iter();
    let sub = loop {
        match words.next() {
            Some(&("--room" | "--db" | "--max-body-bytes" | "--busy-timeout-ms")) => {
                words.next();
            }
            Some(word) => break word.replace('-', "_"),
            None => unreachable!("a subcommand in {args:?}"),
        }
    };
    if schema::is_tool(&sub) {
        schema::check(&sub, &value);
    }
    value
}

/// The test client's handler: keeps every notification the server pushes (custom ones such as
/// channel events, and progress), as `(method, params)`, in arrival order.
#[derive(Clone, Default)]
pub struct Collector {
    events: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Collector {
    /// The notifications received so far with this method.
    pub fn with_method(&self, method: &str) -> Vec<Value> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

impl ClientHandler for Collector {
    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        _context: NotificationContext<RoleClient>,
    ) {
        let params = notification.params.unwrap_or(Value::Null);
        self.events
            .lock()
            .unwrap()
            .push((notification.method, params));
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let params = serde_json::to_value(params).unwrap();
        self.events
            .lock()
            .unwrap()
            .push(("notifications/progress".into(), params));
    }
}

/// A running server process with an MCP client attached.
/// An MCP client session (over a server's stdio or the hub's HTTP) that records the
/// notifications it receives, with calls whose every result is checked ([`checked`]).
pub struct Session {
    pub(crate) client: RunningService<RoleClient, Collector>,
    pub(crate) collector: Collector,
}

impl Session {
    /// The client, for protocol-level checks.
    pub fn client(&self) -> &RunningService<RoleClient, Collector> {
        &self.client
    }

    /// The notifications the server (or hub) pushed so far with `method`.
    pub fn notifications(&self, method: &str) -> Vec<Value> {
        self.collector.with_method(method)
    }

    /// Waits (up to [`CALL_TIMEOUT`]) until the server (or hub) pushed `count` notifications with
    /// `method`, and returns them.
    pub async fn wait_for_notifications(&self, method: &str, count: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let got = self.notifications(method);
            if got.len() >= count {
                return got;
            }
            assert!(
                start.elapsed() < CALL_TIMEOUT,
                "{count} {method} expected, got {}: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Calls `tool` with `args` (a JSON object): the structuredContent of a success, or the
    /// text of an `isError` result. A protocol-level error fails the test.
    pub async fn call(&self, tool: &str, args: Value) -> Result<Value, String> {
        let result = self
            .raw_call(tool, args)
            .await
            .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"));
        checked(tool, result)
    }

    /// Calls `tool` with `args`, returning rmcp's own answer (a protocol error included).
    pub async fn raw_call(
        &self,
        tool: &str,
        args: Value,
    ) -> Result<rmcp::model::CallToolResult, rmcp::ServiceError> {
        let args = match args {
            Value::Object(map) => map,
            other => panic!("arguments must be an object, got {other}"),
        };
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(args);
        tokio::time::timeout(CALL_TIMEOUT, self.client.call_tool(params))
            .await
            .unwrap_or_else(|_| panic!("{tool}: no answer within {CALL_TIMEOUT:?}"))
    }

    /// Calls `tool` and expects success.
    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        let shown = args.to_string();
        self.call(tool, args)
            .await
            .unwrap_or_else(|e| panic!("{tool}({}) failed: {e}", short(&shown)))
    }

    /// Calls `tool` and expects an error whose text contains every one of `needles`.
    pub async fn err(&self, tool: &str, args: Value, needles: &[&str]) -> String {
        let shown = args.to_string();
        match self.call(tool, args).await {
            Ok(v) => panic!(
                "{tool}({}) succeeded with {v}, expected an error",
                short(&shown)
            ),
            Err(text) => {
                for needle in needles {
                    assert!(
                        text.contains(needle),
                        "{tool}({}): error {text:?} lacks {needle:?}",
                        short(&shown)
                    );
                }
                text
            }
        }
    }
}

/// A `claude-c2c` server process and an MCP session over its stdio (whose calls it derefs to).
pub struct Server {
    session: Session,
    pid: u32,
    stderr: Arc<Mutex<String>>,
}

impl std::ops::Deref for Server {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

/// Copies the server's stderr into `log`, and on to the test's stderr.
async fn forward_stderr(stderr: tokio::process::ChildStderr, log: Arc<Mutex<String>>) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("[server] {line}");
        let mut log = log.lock().unwrap();
        log.push_str(&line);
        log.push('\n');
    }
}

impl Server {
    /// Spawns `cmd` (a `claude-c2c` command) and completes the MCP handshake; a failure says
    /// why, with what the server wrote to stderr.
    pub async fn try_spawn(cmd: tokio::process::Command) -> Result<Server, String> {
        let (transport, stderr) = TokioChildProcess::builder(cmd)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot spawn {BIN}: {e}"))?;
        let pid = transport.id().expect("child pid");
        let log = Arc::new(Mutex::new(String::new()));
        let forwarder = stderr.map(|e| tokio::spawn(forward_stderr(e, log.clone())));
        let collector = Collector::default();
        let failure =
            match tokio::time::timeout(CALL_TIMEOUT, collector.clone().serve(transport)).await {
                Ok(Ok(client)) => {
                    return Ok(Server {
                        session: Session { client, collector },
                        pid,
                        stderr: log,
                    });
                }
                Ok(Err(e)) => format!("MCP handshake failed: {e}"),
                Err(_) => format!("MCP handshake timed out after {CALL_TIMEOUT:?}"),
            };
        // Let the exiting server's last words arrive.
        if let Some(forwarder) = forwarder {
            let _ = tokio::time::timeout(Duration::from_secs(3), forwarder).await;
        }
        let stderr = log.lock().unwrap().clone();
        Err(format!("{failure}; server {pid} stderr: {stderr:?}"))
    }

    /// Spawns `cmd` and completes the MCP handshake, or fails the test saying why.
    pub async fn spawn(cmd: tokio::process::Command) -> Server {
        Server::try_spawn(cmd)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the binary on the database at `path` with extra command-line `args` and
    /// environment `envs`.
    pub async fn start_at(path: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::spawn(server_command(path, args, envs)).await
    }

    /// Starts the binary on `db` with extra command-line `args` and environment `envs`.
    pub async fn start_with(db: &TempDb, args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::start_at(&db.path(), args, envs).await
    }

    /// Starts the binary on `db` under a shell of its own ([`server_command_apart`]).
    pub async fn start_apart(db: &TempDb, args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::spawn(server_command_apart(&db.path(), args, envs)).await
    }

    /// Starts the binary on `db` with no extra options.
    pub async fn start(db: &TempDb) -> Server {
        Server::start_with(db, &[], &[]).await
    }

    /// Starts the binary on `db` and registers it as `name` through the tool.
    pub async fn named(db: &TempDb, name: &str) -> Server {
        let server = Server::start(db).await;
        server.register(name).await;
        server
    }

    /// Starts one server on `db` per name, each registered under its name, in order.
    pub async fn several<const N: usize>(db: &TempDb, names: [&str; N]) -> [Server; N] {
        let mut servers = Vec::with_capacity(N);
        for name in names {
            servers.push(Server::named(db, name).await);
        }
        servers
            .try_into()
            .unwrap_or_else(|_| unreachable!("one server per name"))
    }

    /// Registers as `name`; returns the new session id.
    pub async fn register(&self, name: &str) -> String {
        let r = self.ok("register_session", json!({ "name": name })).await;
        assert_eq!(r["name"], name);
        r["session_id"].as_str().expect("session_id").to_string()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What the server has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The caller's unread messages (up to 500).
    pub async fn unread(&self) -> Vec<Value> {
        messages(&self.ok("inbox", json!({ "limit": 500 })).await)
    }

    /// The ids of the caller's unread messages.
    pub async fn unread_ids(&self) -> Vec<i64> {
        ids(&self.ok("inbox", json!({ "limit": 500 })).await)
    }

    /// The caller's latest messages, read or not (up to 500).
    pub async fn all_messages(&self) -> Vec<Value> {
        messages(
            &self
                .ok("inbox", json!({ "unread_only": false, "limit": 500 }))
                .await,
        )
    }

    /// Sends `body` to `to`; returns the new message's id.
    pub async fn send(&self, to: &str, body: &str) -> i64 {
        let sent = self
            .ok("send_message", json!({ "to": to, "body": body }))
            .await;
        assert_eq!(sent["to"], to);
        sent["id"].as_i64().expect("id")
    }

    /// The names list_sessions shows (default window), sorted, each with its is_self flag.
    pub async fn listed(&self) -> Vec<(String, bool)> {
        let listed = self.ok("list_sessions", json!({})).await;
        let mut out: Vec<(String, bool)> = listed["sessions"]
            .as_array()
            .expect("sessions array")
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["is_self"].as_bool().unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Ends the client and waits for the server process to exit; it must exit by itself
    /// once its stdin is closed. The server gives its output up to 2 s to drain; rmcp sends
    /// SIGTERM at 3 s, so an exit before that is the server's own, within its budget and
    /// whatever a slow machine adds.
    pub async fn stop(self) {
        let pid = self.pid;
        let started = Instant::now();
        let _ = self.session.client.cancel().await;
        let took = started.elapsed();
        assert!(
            took < STOP_LIMIT,
            "server {pid} took {took:?} to exit after stdin closed"
        );
        assert!(
            !alive(pid),
            "server {pid} still running after the client closed"
        );
    }
}

/// Whether process `pid` exists and is not a zombie.
#[cfg(target_os = "linux")]
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
    }
}

/// Whether process `pid` exists and is not a zombie (`ps` prints its state, if any).
#[cfg(all(unix, not(target_os = "linux")))]
pub fn alive(pid: u32) -> bool {
    std::process::Command::new("ps")
        .args(["-o", "stat=", "-p", &pid.to_string()])
        .output()
        .is_ok_and(|o| {
            let state = String::from_utf8_lossy(&o.stdout);
            let state = state.trim();
            !state.is_empty() && !state.starts_with('Z')
        })
}

/// Whether process `pid` exists (`tasklist` lists it, or says that no task matches).
#[cfg(windows)]
pub fn alive(pid: u32) -> bool {
    std::process::Command::new("tasklist")
        .args(["/FI", &format!("PID eq {pid}"), "/FO", "CSV", "/NH"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("\"{pid}\"")))
}

/// Text cut to a readable length for failure messages.
fn short(text: &str) -> String {
    if text.chars().count() > 200 {
        format!("{}...", text.chars().take(200).collect::<String>())
    } else {
        text.to_string()
    }
}

/// An inbox result's messages.
pub fn messages(inbox: &Value) -> Vec<Value> {
    inbox["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages array in {inbox}"))
        .clone()
}

/// The `id`s of an inbox result's messages.
pub fn ids(inbox: &Value) -> Vec<i64> {
    messages(inbox)
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

/// The `body`s of a list of messages.
pub fn bodies(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

/// Waits up to `limit` for a plain child process to exit, polling; kills it and fails if not.
pub fn wait_exit(
    child: &mut std::process::Child,
    limit: Duration,
    what: &str,
) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Checks a tool's answer: one text block; an error is plain text without structured content;
/// a result is one JSON object sent both as structuredContent and as the text, and matches the
/// tool's outputSchema. The error's text, or the result.
pub fn checked(tool: &str, result: rmcp::model::CallToolResult) -> Result<Value, String> {
    assert_eq!(
        result.content.len(),
        1,
        "{tool}: exactly one content block expected, got {:?}",
        result.content
    );
    let text = result.content[0]
        .as_text()
        .unwrap_or_else(|| panic!("{tool}: the content block is not text"))
        .text
        .clone();
    if result.is_error == Some(true) {
        assert!(
            result.structured_content.is_none(),
            "{tool}: error with structured content"
        );
        assert!(!text.trim().is_empty(), "{tool}: error without a message");
        return Err(text);
    }
    let structured = result
        .structured_content
        .unwrap_or_else(|| panic!("{tool}: success without structuredContent"));
    assert!(
        structured.is_object(),
        "{tool}: result is not one JSON object: {structured}"
    );
    let parsed: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{tool}: text block is not JSON ({e}): {text}"));
    assert_eq!(
        parsed, structured,
        "{tool}: text and structuredContent differ"
    );
    schema::check(tool, &structured);
    Ok(structured)
}
