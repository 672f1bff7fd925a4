//! The clients of a hub (`--hub URL`, `C2C_HUB`, the token in `C2C_TOKEN`) end to end: the
//! stdio server as a relay to the hub (driven by rmcp's child-process client) and the command
//! line over the hub's JSON API (every tool subcommand, `sessions`, `rooms`, `tail`, the hooks).
//! Two network namespaces joined to the hub by veth pairs talk through it where the machine
//! allows namespaces (the test says why it skipped elsewhere); the rest runs on loopback: what
//! a hub refuses and the command line's usage errors, waits and a send that ride out a hub
//! killed and started again on the same port and database, a connection that breaks after a
//! request went out (reads are made again, writes are not), `--hub-ca` for a hub with a
//! certificate of its own, and `init --hub`, which writes the hub's URL but never the token.

mod common;

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::hub::{Hub, read_db, token};
use common::{BIN, SERVER_ENV, Server, TempDb, alive, schema, skip};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const CHANNEL: &str = "notifications/claude/channel";

/// The longest a command-line client may run before the test fails instead of hanging (a
/// client tries an unreachable hub again for up to two minutes).
const RUN_LIMIT: Duration = Duration::from_secs(40);

/// What a finished client process left.
#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// The clients of one hub: its URL, a token's secret, and where they run (here, or inside a
/// network namespace).
#[derive(Clone)]
struct Remote {
    url: String,
    secret: Option<String>,
    netns: Option<String>,
}

impl Remote {
    fn new(url: &str, secret: &str) -> Self {
        Remote {
            url: url.to_string(),
            secret: Some(secret.to_string()),
            netns: None,
        }
    }

    /// The same clients inside the network namespace `ns`.
    fn inside(&self, ns: &str) -> Self {
        Remote {
            netns: Some(ns.to_string()),
            ..self.clone()
        }
    }

    /// The same clients with another secret, or none.
    fn with_secret(&self, secret: Option<&str>) -> Self {
        Remote {
            secret: secret.map(String::from),
            ..self.clone()
        }
    }

    /// `claude-c2c ARGS` (nothing added), in a clean environment with the token, if any.
    fn bare(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = match &self.netns {
            None => tokio::process::Command::new(BIN),
            Some(ns) => {
                let mut cmd = tokio::process::Command::new("ip");
                cmd.args(["netns", "exec", ns, BIN]);
                cmd
            }
        };
        for var in SERVER_ENV {
            cmd.env_remove(var);
        }
        if let Some(secret) = &self.secret {
            cmd.env("C2C_TOKEN", secret);
        }
        cmd.args(args).env("NO_COLOR", "1").kill_on_drop(true);
        cmd
    }

    /// `claude-c2c --hub URL ARGS`.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = self.bare(&["--hub", &self.url]);
        cmd.args(args);
        cmd
    }

    /// Runs `cmd` to its end with `stdin` as its input.
    async fn finish(mut cmd: tokio::process::Command, stdin: &str) -> Out {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a client");
        let mut input = child.stdin.take().unwrap();
        // A command may exit without reading its input.
        let _ = input.write_all(stdin.as_bytes()).await;
        drop(input);
        let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{cmd:?}: still running after {RUN_LIMIT:?}"))
            .expect("wait for a client");
        let out = Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if !out.stderr.is_empty() {
            let args: Vec<_> = cmd
                .as_std()
                .get_args()
                .map(|a| a.to_string_lossy())
                .collect();
            eprint!("[client {}]\n{}", args.join(" "), out.stderr);
        }
        out
    }

    /// Runs `claude-c2c --hub URL ARGS` with the environment `envs` added and `stdin` as input.
    async fn run_with(&self, args: &[&str], envs: &[(&str, &str)], stdin: &str) -> Out {
        let mut cmd = self.command(args);
        cmd.envs(envs.iter().copied());
        Remote::finish(cmd, stdin).await
    }

    async fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, &[], "").await
    }

    /// Runs a command that must succeed, with `--json`; its output, checked against the tool's
    /// outputSchema when it is a tool's subcommand.
    async fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        if !args.contains(&"--json") {
            args.push("--json");
        }
        let out = self.run(&args).await;
        assert_eq!(out.code, Some(0), "{args:?}: {out:?}");
        let value = out.json();
        let sub = args
            .iter()
            .find(|a| !a.starts_with("--"))
            .expect("a subcommand")
            .replace('-', "_");
        if schema::is_tool(&sub) {
            schema::check(&sub, &value);
        }
        value
    }

    /// Sends `body` to `to` as `from` over the hub from the command line; the new message's id.
    async fn send(&self, from: &str, to: &str, body: &str) -> i64 {
        self.json(&["send-message", "--as", from, "--to", to, "--body", body])
            .await["id"]
            .as_i64()
            .expect("the new message's id")
    }

    /// Runs a command that must fail with exit status `code` and say every one of `needles` on
    /// stderr; returns its stderr.
    async fn fails(&self, args: &[&str], code: i32, needles: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(out.code, Some(code), "{args:?}: {out:?}");
        for needle in needles {
            assert!(
                out.stderr.contains(needle),
                "{args:?}: no {needle:?} in {out:?}"
            );
        }
        out.stderr
    }

    /// Starts `claude-c2c --hub URL ARGS` and leaves it running.
    fn start(&self, args: &[&str], envs: &[(&str, &str)]) -> Running {
        let mut cmd = self.command(args);
        cmd.envs(envs.iter().copied());
        Running::spawn(cmd)
    }

    /// A relay (`claude-c2c --hub URL ARGS`, e.g. `--name beta`) with an MCP client attached.
    async fn relay(&self, args: &[&str]) -> Server {
        Server::spawn(self.command(args)).await
    }
}

/// A client process left running (tail, a waiting hook or tool): its stdout read line by line,
/// its stderr collected.
struct Running {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Running {
    fn spawn(mut cmd: tokio::process::Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a client");
        let stderr = Arc::new(Mutex::new(String::new()));
        let into = stderr.clone();
        let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                eprintln!("[client] {line}");
                let mut text = into.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Running {
            child,
            lines,
            stderr,
            reader,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The next line of stdout, within `limit`.
    async fn line(&mut self, limit: Duration) -> String {
        match tokio::time::timeout(limit, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            other => panic!(
                "no line on stdout within {limit:?} ({other:?}); stderr: {}",
                self.stderr()
            ),
        }
    }

    /// Waits (up to `limit`) for the process to exit: its exit status, the rest of its
    /// stdout, and all of its stderr.
    async fn exit(mut self, limit: Duration) -> Out {
        let status = match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.expect("wait for a client"),
            Err(_) => panic!(
                "still running after {limit:?}; stderr: {}",
                self.stderr.lock().unwrap()
            ),
        };
        let mut stdout = String::new();
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_secs(5), self.lines.next_line()).await
        {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.reader).await;
        Out {
            code: status.code(),
            stdout,
            stderr: self.stderr(),
        }
    }

    /// Whether it has not exited yet.
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Calls `tool` through `server` and gives its answer a short `limit` (rather than
/// `common::CALL_TIMEOUT`): the text of an error result, or the structured content of a success.
async fn call_within(
    server: &Server,
    tool: &str,
    args: Value,
    limit: Duration,
) -> Result<Value, String> {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let params = CallToolRequestParams::new(tool.to_string()).with_arguments(args);
    let result = tokio::time::timeout(limit, server.client().call_tool(params))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{tool}: no answer within {limit:?}; the relay's stderr: {}",
                server.stderr()
            )
        });
    match result {
        Ok(result) if result.is_error == Some(true) => Err(result.content[0]
            .as_text()
            .map(|t| t.text.clone())
            .unwrap_or_default()),
        Ok(result) => Ok(result.structured_content.unwrap_or(Value::Null)),
        // A relay may also refuse at the protocol level.
        Err(e) => Err(e.to_string()),
    }
}

/// The messages of an inbox or wait_for_message result, as `(id, from, body)`.
fn summary(result: &Value) -> Vec<(i64, String, String)> {
    result["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages in {result}"))
        .iter()
        .map(|m| {
            (
                m["id"].as_i64().unwrap(),
                m["from_name"].as_str().unwrap().to_string(),
                m["body"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Polls `check` every 20 ms until it gives a value, for up to `limit`.
async fn eventually<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Network namespaces

/// Runs `ip ARGS`; what it said on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// One network namespace joined to this one by a veth pair with a /30 of its own.
struct Space {
    /// The namespace's name.
    name: String,
    /// This side's interface.
    outer: String,
    /// This side's address (the namespace's gateway).
    gateway: Ipv4Addr,
}

/// Network namespaces made for one test; each is deleted (and its veth pair with it) when
/// dropped, a panic included.
struct Spaces(Vec<Space>);

impl Spaces {
    /// `count` namespaces named from this process's id, each with a veth pair to this
    /// namespace, its own /30 in 198.18.0.0/15 (set aside for benchmarks, so on no real
    /// network), and a default route through it; the reason when this machine does not allow it.
    fn make(count: u32) -> Result<Spaces, String> {
        let pid = std::process::id();
        let block = u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (pid % 8192) * 16;
        let mut spaces = Spaces(Vec::new());
        for i in 0..count {
            let name = format!("c2c{pid}n{i}");
            let outer = format!("c2c{pid}h{i}");
            let inner = format!("c2c{pid}p{i}");
            // Left over by an earlier run of a process with the same id that was killed.
            let _ = ip(&["netns", "del", &name]);
            let _ = ip(&["link", "del", &outer]);
            ip(&["netns", "add", &name])?;
            let gateway = Ipv4Addr::from(block + 4 * i + 1);
            let address = Ipv4Addr::from(block + 4 * i + 2);
            spaces.0.push(Space {
                name: name.clone(),
                outer: outer.clone(),
                gateway,
            });
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &name,
            ])?;
            ip(&["addr", "add", &format!("{gateway}/30"), "dev", &outer])?;
            ip(&["link", "set", &outer, "up"])?;
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{address}/30"),
                "dev",
                &inner,
            ])?;
            ip(&["-n", &name, "link", "set", &inner, "up"])?;
            ip(&[
                "-n",
                &name,
                "route",
                "add",
                "default",
                "via",
                &gateway.to_string(),
            ])?;
        }
        Ok(spaces)
    }
}

impl Drop for Spaces {
    fn drop(&mut self) {
        for space in &self.0 {
            let _ = ip(&["netns", "del", &space.name]);
            let _ = ip(&["link", "del", &space.outer]);
        }
    }
}

/// Whether `ns` can open a TCP connection to `addr:port` (asked of bash's /dev/tcp); `None`
/// when there is no bash to ask.
fn reaches(ns: &str, addr: &str, port: u16) -> Option<bool> {
    let script = format!("exec 3<>/dev/tcp/{addr}/{port}");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "bash", "-c", &script])
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No such file") || stderr.contains("not found") {
        return None;
    }
    Some(out.status.success())
}

/// Two sessions in two network namespaces meet at a hub that listens on this namespace's end
/// of the first veth pair: `alpha` uses the command line in one, `beta` a relay in the other;
/// messages go both ways, and state with compare-and-set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_network_namespaces_talk_through_the_hub() {
    const TEST: &str = "two_network_namespaces_talk_through_the_hub";
    let spaces = match Spaces::make(2) {
        Ok(spaces) => spaces,
        Err(why) => {
            skip::skipped(TEST, &format!("no network namespaces here: {why}"));
            return;
        }
    };
    let (a, b) = (&spaces.0[0], &spaces.0[1]);
    let db = TempDb::new("remote-netns");
    let hub = Hub::start_on(&db.path(), &format!("{}:0", a.gateway), &[], &[]).await;
    assert!(
        hub.url.starts_with(&format!("http://{}:", a.gateway)),
        "{}",
        hub.url
    );
    let secret = token(&db.path(), "lab", None);
    let remote = Remote::new(&hub.url, &secret);
    let (in_a, in_b) = (remote.inside(&a.name), remote.inside(&b.name));

    // The namespaces really are apart: the hub is reached through the veth, not loopback.
    match reaches(&a.name, "127.0.0.1", hub.port) {
        Some(reached) => assert!(
            !reached,
            "namespace {} reaches 127.0.0.1:{}",
            a.name, hub.port
        ),
        None => eprintln!("{TEST}: no bash to check that loopback is apart"),
    }
    if let Some(reached) = reaches(&b.name, &a.gateway.to_string(), hub.port) {
        assert!(
            reached,
            "namespace {} cannot reach the hub at {}",
            b.name, hub.url
        );
    }

    let beta = Server::spawn(in_b.command(&["--name", "beta"])).await;
    // beta waits while alpha sends.
    let (got, sent) = tokio::join!(
        beta.ok("wait_for_message", json!({ "timeout_seconds": 20 })),
        in_a.json(&[
            "send-message",
            "--as",
            "alpha",
            "--to",
            "beta",
            "--body",
            "from a"
        ]),
    );
    let first = sent["id"].as_i64().unwrap();
    assert_eq!(got["timed_out"], false);
    assert_eq!(summary(&got), [(first, "alpha".into(), "from a".into())]);
    beta.ok("mark_read", json!({ "message_ids": [first] }))
        .await;
    assert_eq!(
        beta.listed().await,
        [("alpha".to_string(), false), ("beta".to_string(), true)]
    );

    // alpha waits for beta's reply.
    let first_id = first.to_string();
    let wait = [
        "wait-for-message",
        "--as",
        "alpha",
        "--reply-to",
        &first_id,
        "--timeout-seconds",
        "20",
    ];
    let (got, reply) = tokio::join!(
        in_a.json(&wait),
        beta.ok(
            "send_message",
            json!({ "to": "alpha", "body": "from b", "reply_to": first }),
        ),
    );
    let second = reply["id"].as_i64().unwrap();
    assert_eq!(got["timed_out"], false);
    assert_eq!(summary(&got), [(second, "beta".into(), "from b".into())]);

    // State, with compare-and-set from both sides.
    let set = in_a
        .json(&[
            "set-state",
            "--as",
            "alpha",
            "--key",
            "build",
            "--value",
            r#"{"step":1}"#,
            "--if-version",
            "0",
        ])
        .await;
    assert_eq!(set["version"], 1);
    let read = beta.ok("get_state", json!({ "key": "build" })).await;
    assert_eq!(read["entry"]["value"], json!({ "step": 1 }));
    assert_eq!(read["entry"]["updated_by"], "alpha");
    let set = beta
        .ok(
            "set_state",
            json!({ "key": "build", "value": { "step": 2 }, "if_version": 1 }),
        )
        .await;
    assert_eq!(set["version"], 2);
    beta.err(
        "set_state",
        json!({ "key": "build", "value": { "step": 3 }, "if_version": 1 }),
        &["version 2", "nothing was changed"],
    )
    .await;
    in_a.fails(
        &[
            "set-state",
            "--as",
            "alpha",
            "--key",
            "build",
            "--value",
            "4",
            "--if-version",
            "1",
        ],
        1,
        &["version 2", "nothing was changed"],
    )
    .await;
    let read = in_a.json(&["get-state", "--key", "build"]).await;
    assert_eq!(read["entry"]["value"], json!({ "step": 2 }));
    assert_eq!(read["entry"]["updated_by"], "beta");
    assert_eq!(read["entry"]["version"], 2);
    drop(beta);
}

// ---------------------------------------------------------------------------------------------
// Relays

/// Relays on loopback: the same tools as a local server, a send/wait round trip between two
/// relays through one room token, channel events passed on with `--channel`, a name-bound
/// token's relay acting as its name, and a relay that exits by itself when its client leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_list_the_local_tools_and_pass_messages_and_channel_events() {
    let db = TempDb::new("remote-relay");
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let secret = token(&db.path(), "lab", None);
    let remote = Remote::new(&hub.url, &secret);

    let alpha = remote.relay(&["--name", "alpha"]).await;
    let beta = remote.relay(&["--name", "beta", "--channel"]).await;

    // tools/list is the local server's, to the byte.
    let local_db = TempDb::new("remote-local");
    let local = Server::start(&local_db).await;
    let tools = |list: Vec<rmcp::model::Tool>| serde_json::to_value(list).unwrap();
    let expected = tools(local.client().list_all_tools().await.unwrap());
    assert!(expected.as_array().unwrap().len() > 5, "{expected}");
    assert_eq!(
        tools(alpha.client().list_all_tools().await.unwrap()),
        expected
    );
    local.stop().await;

    // The relay presents itself as claude-c2c, registered under its --name; only the relay
    // given --channel offers channel events.
    let info = alpha.client().peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("claude-c2c")
    );
    let instructions = info.instructions.clone().unwrap_or_default();
    assert!(instructions.contains("\"alpha\""), "{instructions}");
    let channel_capability = |server: &Server| {
        let info = server.client().peer_info().expect("server info");
        info.capabilities
            .experimental
            .as_ref()
            .is_some_and(|e| e.contains_key("claude/channel"))
    };
    assert!(channel_capability(&beta));
    assert!(!channel_capability(&alpha));
    assert_eq!(
        alpha.listed().await,
        [("alpha".to_string(), true), ("beta".to_string(), false)]
    );

    // alpha -> beta: a channel event at beta's client with the body as its content, and the
    // message still unread for wait_for_message (a push is no read receipt).
    let ping = alpha.send("beta", "ping over the hub").await;
    let events = beta.wait_for_notifications(CHANNEL, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["content"], "ping over the hub");
    assert_eq!(events[0]["meta"]["from"], "alpha");
    assert_eq!(events[0]["meta"]["message_id"], ping.to_string());
    let got = beta
        .ok("wait_for_message", json!({ "timeout_seconds": 10 }))
        .await;
    assert_eq!(
        summary(&got),
        [(ping, "alpha".into(), "ping over the hub".into())]
    );
    beta.ok("mark_read", json!({ "message_ids": [ping] })).await;

    // beta -> alpha, a reply that alpha waits for.
    let waiting = {
        let alpha_waits = alpha.ok(
            "wait_for_message",
            json!({ "reply_to": ping, "timeout_seconds": 20 }),
        );
        let beta_answers = async {
            beta.ok(
                "send_message",
                json!({ "to": "alpha", "body": "pong", "reply_to": ping }),
            )
            .await["id"]
                .as_i64()
                .unwrap()
        };
        tokio::join!(alpha_waits, beta_answers)
    };
    let (got, pong) = waiting;
    assert_eq!(got["timed_out"], false);
    assert_eq!(summary(&got), [(pong, "beta".into(), "pong".into())]);
    assert!(alpha.notifications(CHANNEL).is_empty());
    assert_eq!(beta.notifications(CHANNEL).len(), 1);
    alpha
        .ok("mark_read", json!({ "message_ids": [pong] }))
        .await;

    // A token bound to a name: its relay (`serve`, no --listen, is the relay too) acts as that
    // name, with --name or without.
    let gamma_secret = token(&db.path(), "lab", Some("gamma"));
    let gamma = remote
        .with_secret(Some(&gamma_secret))
        .relay(&["serve", "--name", "gamma"])
        .await;
    let sent = gamma
        .ok(
            "send_message",
            json!({ "to": "alpha", "body": "from gamma" }),
        )
        .await;
    let got = alpha.unread().await;
    assert_eq!(
        summary(&json!({ "messages": got })),
        [(
            sent["id"].as_i64().unwrap(),
            "gamma".into(),
            "from gamma".into()
        )]
    );
    gamma.stop().await;
    // Naming the token's own room is fine.
    let unnamed = remote
        .with_secret(Some(&gamma_secret))
        .relay(&["--room", "lab"])
        .await;
    let me = unnamed.ok("list_sessions", json!({})).await;
    let own: Vec<&Value> = me["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["is_self"] == true)
        .collect();
    assert_eq!(own.len(), 1, "{me}");
    assert_eq!(own[0]["name"], "gamma");

    // A relay ends by itself once its client has gone, and the hub forgets its session.
    alpha.stop().await;
    unnamed.stop().await;
    beta.stop().await;
}

/// What the hub refuses is said at once: a name-bound token's relay started with another
/// --name does not act as that name (its tools say why), and a relay whose --room is not its
/// token's, or whose token is unknown, fails its start with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_the_hub_refuses_says_why_at_once() {
    let db = TempDb::new("remote-refused");
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let room_secret = token(&db.path(), "lab", None);
    let gamma_secret = token(&db.path(), "lab", Some("gamma"));
    let remote = Remote::new(&hub.url, &room_secret);
    let limit = Duration::from_secs(10);

    let impostor = remote
        .with_secret(Some(&gamma_secret))
        .relay(&["--name", "delta"])
        .await;
    let error = call_within(
        &impostor,
        "send_message",
        json!({ "to": "x", "body": "b" }),
        limit,
    )
    .await
    .expect_err("a name-bound token acting as another name");
    assert!(error.contains("gamma"), "{error}");
    // Nothing was sent, under either name.
    let conn = read_db(&db.path());
    let sent: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sent, 0);
    let delta: i64 = conn
        .query_row(
            "SELECT count(*) FROM sessions WHERE name = 'delta'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(delta, 0);

    // A token the hub refuses outright makes the relay fail its start, with the reason, so a
    // client's health check (`claude mcp list`) shows it.
    let elsewhere = Server::try_spawn(remote.command(&["--room", "other", "--name", "beta"]))
        .await
        .err()
        .expect("a relay for another room starts");
    assert!(
        elsewhere.contains("this token reaches room \"lab\""),
        "{elsewhere}"
    );

    let stranger = Server::try_spawn(
        remote
            .with_secret(Some(&format!("c2c_{}", "0".repeat(64))))
            .command(&["--name", "beta"]),
    )
    .await
    .err()
    .expect("a relay with an unknown token starts");
    assert!(stranger.contains("401"), "{stranger}");
}

// ---------------------------------------------------------------------------------------------
// The command line over the hub

/// Every tool subcommand goes to the hub (`--json` answers match the tools' outputSchemas;
/// text answers are rendered), with `--hub` or `C2C_HUB`, the URL with or without `/mcp`;
/// `sessions` and `rooms` show the token's room, as text and as JSON; `doctor` checks the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_subcommands_sessions_and_rooms_go_to_the_hub() {
    let db = TempDb::new("remote-cli");
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let secret = token(&db.path(), "lab", None);
    let remote = Remote::new(&hub.url, &secret);

    let sent = remote
        .json(&[
            "send-message",
            "--as",
            "ci",
            "--to",
            "local",
            "--body",
            "deploy done",
            "--tag",
            "status",
        ])
        .await;
    let id = sent["id"].as_i64().unwrap();
    assert_eq!(sent["to"], "local");
    let inbox = remote.json(&["inbox", "--as", "local"]).await;
    assert_eq!(summary(&inbox), [(id, "ci".into(), "deploy done".into())]);
    assert_eq!(inbox["messages"][0]["tag"], "status");
    // It is the hub's database that holds it, in the token's room.
    let room: String = read_db(&db.path())
        .query_row("SELECT room FROM messages WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(room, "lab");

    // Rendered as text without --json; the environment's C2C_HUB, given without /mcp.
    let mut inbox = remote.bare(&["inbox", "--as", "local"]);
    inbox.env("C2C_HUB", &hub.base);
    let out = Remote::finish(inbox, "").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("deploy done"), "{out:?}");
    assert!(
        serde_json::from_str::<Value>(&out.stdout).is_err(),
        "{out:?}"
    );

    let outbox = remote.json(&["outbox", "--as", "ci"]).await;
    assert_eq!(outbox["messages"][0]["id"], id);
    let marked = remote
        .json(&[
            "mark-read",
            "--as",
            "local",
            "--message-ids",
            &id.to_string(),
        ])
        .await;
    assert_eq!(marked["marked"], 1, "{marked}");
    let inbox = remote.json(&["inbox", "--as", "local"]).await;
    assert_eq!(summary(&inbox), []);
    let waited = remote
        .json(&[
            "wait-for-message",
            "--as",
            "local",
            "--timeout-seconds",
            "0",
        ])
        .await;
    assert_eq!(waited["timed_out"], true);

    let set = remote
        .json(&[
            "set-state",
            "--as",
            "ci",
            "--key",
            "release",
            "--value",
            "\"1.2.3\"",
        ])
        .await;
    assert_eq!(set["version"], 1);
    assert_eq!(set["updated_by"], "ci");
    let got = remote.json(&["get-state", "--key", "release"]).await;
    assert_eq!(got["entry"]["value"], "1.2.3");
    let listed = remote.json(&["list-sessions"]).await;
    let mut names: Vec<&str> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ci", "local"]);

    // A tool's own failure: exit 1, its message on stderr.
    remote
        .fails(
            &[
                "delete-state",
                "--as",
                "ci",
                "--key",
                "release",
                "--if-version",
                "7",
            ],
            1,
            &["delete-state", "version 1"],
        )
        .await;

    // sessions and rooms: the token's room only.
    let other = token(&db.path(), "elsewhere", None);
    Remote::new(&hub.url, &other)
        .send("x", "y", "not in lab")
        .await;
    let sessions = remote.json(&["sessions"]).await;
    assert_eq!(sessions["room"], "lab");
    let mut names: Vec<&str> = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ci", "local"], "{sessions}");
    let text = remote.run(&["sessions"]).await;
    assert_eq!(text.code, Some(0), "{text:?}");
    for word in ["ROOM", "NAME", "lab", "ci", "local"] {
        assert!(text.stdout.contains(word), "{word}: {text:?}");
    }
    assert!(!text.stdout.contains("elsewhere"), "{text:?}");
    let rooms = remote.json(&["rooms"]).await;
    let rooms = rooms["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 1, "{rooms:?}");
    assert_eq!(rooms[0]["room"], "lab");
    let text = remote.run(&["rooms"]).await;
    assert_eq!(text.code, Some(0), "{text:?}");
    assert!(text.stdout.contains("lab"), "{text:?}");
    assert!(!text.stdout.contains("elsewhere"), "{text:?}");

    // doctor checks the hub and the token with one request.
    let home = TempDb::new("remote-doctor-home");
    let mut doctor = remote.command(&["doctor"]);
    doctor.env("HOME", home.dir()).current_dir(home.dir());
    let out = Remote::finish(doctor, "").await;
    let hub_line = out
        .stdout
        .lines()
        .find(|l| l.contains(&hub.url))
        .unwrap_or_else(|| panic!("no hub line: {out:?}"));
    assert!(hub_line.starts_with("ok"), "{hub_line}");
    assert!(hub_line.contains("room \"lab\""), "{hub_line}");
}

/// `tail` over the hub prints what is already there from `--since`, then follows a message
/// sent after it started, as JSON lines and as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follows_the_hub() {
    let db = TempDb::new("remote-tail");
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let secret = token(&db.path(), "lab", None);
    let remote = Remote::new(&hub.url, &secret);
    let before = remote.send("ci", "local", "before").await;
    // Another room's message is not shown.
    let other = token(&db.path(), "elsewhere", None);

    let since = before.to_string();
    let mut json_tail = remote.start(&["tail", "--json", "--since", &since], &[]);
    let mut text_tail = remote.start(&["tail", "--since", &since], &[]);
    let limit = Duration::from_secs(15);
    let first: Value = serde_json::from_str(&json_tail.line(limit).await).unwrap();
    assert_eq!(first["id"], before);
    assert_eq!(first["body"], "before");
    assert_eq!(first["room"], "lab");
    let line = text_tail.line(limit).await;
    assert!(
        line.starts_with(&format!("#{before} "))
            && line.contains("ci -> local")
            && line.ends_with("before"),
        "{line}"
    );

    Remote::new(&hub.url, &other)
        .send("x", "y", "not in lab")
        .await;
    let after = remote
        .json(&[
            "send-message",
            "--as",
            "local",
            "--to",
            "ci",
            "--body",
            "after",
            "--tag",
            "status",
        ])
        .await["id"]
        .as_i64()
        .unwrap();
    let next: Value = serde_json::from_str(&json_tail.line(limit).await).unwrap();
    assert_eq!(next["id"], after);
    assert_eq!(next["body"], "after");
    assert_eq!(next["from_name"], "local");
    let line = text_tail.line(limit).await;
    assert!(
        line.starts_with(&format!("#{after} "))
            && line.contains("[status]")
            && line.ends_with("after"),
        "{line}"
    );
    assert!(json_tail.running() && text_tail.running());
    // Killed (dropped) here; `tail` runs until interrupted.
}

/// The hooks over the hub find their session by name: `hook prompt` hands the unread messages
/// to Claude Code as additionalContext; `hook wait` exits 2 with a new message on stderr, 0 at
/// its timeout, and 0 at once under `claude -p`; a hook that cannot do its work never blocks
/// Claude Code (exit 0, saying why).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_go_to_the_hub() {
    let db = TempDb::new("remote-hooks");
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let secret = token(&db.path(), "lab", None);
    let remote = Remote::new(&hub.url, &secret);
    // The session the hooks serve: a relay, as Claude Code would run it.
    let local = remote.relay(&["--name", "local"]).await;

    // Nothing unread: the prompt hook says nothing.
    let input = json!({ "session_id": "s-1", "hook_event_name": "UserPromptSubmit", "cwd": "/" })
        .to_string();
    let out = remote
        .run_with(&["hook", "prompt", "--name", "local"], &[], &input)
        .await;
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), ""), "{out:?}");

    let id = remote.send("ci", "local", "review PR 7").await;
    let out = remote
        .run_with(&["hook", "prompt", "--name", "local"], &[], &input)
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let printed: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let specific = &printed["hookSpecificOutput"];
    assert_eq!(specific["hookEventName"], "UserPromptSubmit");
    let context = specific["additionalContext"].as_str().unwrap();
    assert!(context.contains("review PR 7"), "{context}");
    assert!(context.contains(&id.to_string()), "{context}");
    // A hook does not mark anything read.
    assert_eq!(local.unread_ids().await, [id]);
    local.ok("mark_read", json!({ "message_ids": [id] })).await;

    // hook wait: at its timeout, exit 0 and nothing said.
    let started = Instant::now();
    let out = remote
        .run(&["hook", "wait", "--name", "local", "--timeout-seconds", "1"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.is_empty() && out.stdout.is_empty(), "{out:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    // hook wait: a new message wakes it with exit 2, the message on stderr.
    let waiting = remote.start(
        &["hook", "wait", "--name", "local", "--timeout-seconds", "20"],
        &[],
    );
    let id = remote.send("ci", "local", "wake up").await;
    let out = waiting.exit(Duration::from_secs(15)).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("wake up"), "{out:?}");
    assert!(out.stderr.contains(&id.to_string()), "{out:?}");

    // Under `claude -p` a waiting hook would hold the run open: it exits 0 at once.
    let started = Instant::now();
    let out = remote
        .run_with(
            &["hook", "wait", "--name", "local", "--timeout-seconds", "20"],
            &[("CLAUDE_CODE_ENTRYPOINT", "sdk-cli")],
            "",
        )
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // No live session of that name, no name, no token, a wrong token: exit 0, saying why.
    for (args, secret, needle) in [
        (
            &["hook", "prompt", "--name", "nobody"][..],
            Some(secret.as_str()),
            "nobody",
        ),
        (&["hook", "prompt"][..], Some(secret.as_str()), "--name"),
        (
            &["hook", "prompt", "--name", "local"][..],
            None,
            "C2C_TOKEN",
        ),
        (
            &["hook", "prompt", "--name", "local"][..],
            Some("c2c_0000000000000000000000000000000000000000000000000000000000000000"),
            "401",
        ),
    ] {
        let out = remote.with_secret(secret).run_with(args, &[], &input).await;
        assert_eq!(out.code, Some(0), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("continuing without messages") && out.stderr.contains(needle),
            "{args:?}: {out:?}"
        );
    }
    local.stop().await;
}

/// What the command line cannot do with a hub is a usage error (exit 2) that says why, before
/// anything is sent; a token the hub does not know is exit 1 with the hub's 401, one for
/// another room the hub's 403, and a name-bound token cannot act as another name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_and_refusals_over_the_hub() {
    let db = TempDb::new("remote-usage");
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let secret = token(&db.path(), "lab", None);
    let remote = Remote::new(&hub.url, &secret);
    let other_db = TempDb::new("remote-usage-other");
    let other_db = other_db.path().display().to_string();

    for (args, needle) in [
        (
            &["--db", &other_db, "inbox", "--as", "a"][..],
            "--db and --hub",
        ),
        (&["sessions", "--all-rooms"][..], "--all-rooms"),
        (&["tail", "--all-rooms"][..], "--all-rooms"),
        (&["token", "list"][..], "token create"),
        (&["token", "create", "--room", "lab"][..], "token create"),
        (&["gen-spec"][..], "without --hub"),
        (&["serve", "--listen", "127.0.0.1:0"][..], "--listen"),
        (&["send-message", "--as", "a", "--to", "b"][..], "--body"),
    ] {
        remote.fails(args, 2, &[needle]).await;
    }
    // Not an http(s) URL.
    let out = Remote::finish(
        remote.bare(&["--hub", "ftp://hub", "inbox", "--as", "a"]),
        "",
    )
    .await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("http://"), "{out:?}");
    // No token, for a tool and for sessions.
    let tokenless = remote.with_secret(None);
    tokenless
        .fails(&["inbox", "--as", "a"], 2, &["C2C_TOKEN"])
        .await;
    tokenless.fails(&["sessions"], 2, &["C2C_TOKEN"]).await;
    // The usage errors sent nothing: no session, no message on the hub.
    let conn = read_db(&db.path());
    let rows: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM messages)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0);

    // A token the hub does not know.
    let stranger = remote.with_secret(Some(
        "c2c_0000000000000000000000000000000000000000000000000000000000000000",
    ));
    stranger.fails(&["inbox", "--as", "a"], 1, &["401"]).await;
    stranger.fails(&["sessions"], 1, &["401"]).await;
    // Another room than the token's.
    remote
        .fails(
            &["--room", "other", "inbox", "--as", "a"],
            1,
            &["this token reaches room \"lab\""],
        )
        .await;
    remote
        .fails(
            &["--room", "other", "rooms"],
            1,
            &["this token reaches room \"lab\""],
        )
        .await;
    // The token's own room, named, is fine.
    remote.json(&["--room", "lab", "inbox", "--as", "a"]).await;
    // A name-bound token acts only as its name.
    let bound = token(&db.path(), "lab", Some("gamma"));
    let bound = remote.with_secret(Some(&bound));
    bound
        .fails(
            &["send-message", "--as", "delta", "--to", "a", "--body", "b"],
            1,
            &["gamma"],
        )
        .await;
    let sent = bound.send("gamma", "a", "b").await;
    let from: String = conn
        .query_row(
            "SELECT from_name FROM messages WHERE id = ?1",
            [sent],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(from, "gamma");
    let messages: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(messages, 1);
}

// ---------------------------------------------------------------------------------------------
// A hub that restarts

/// A port on 127.0.0.1 that was free a moment ago (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Kills the hub (SIGKILL: no goodbye to its clients) and waits until it is gone.
async fn kill(hub: Hub) {
    let pid = hub.pid();
    drop(hub);
    eventually("the killed hub to go", Duration::from_secs(10), || {
        (!alive(pid)).then_some(())
    })
    .await;
}

/// The number of messages in the database at `db` with `body`.
fn count_body(db: &TempDb, body: &str) -> i64 {
    read_db(&db.path())
        .query_row(
            "SELECT count(*) FROM messages WHERE body = ?1",
            [body],
            |r| r.get(0),
        )
        .unwrap()
}

/// A command-line `wait-for-message` is waiting for `beta` when the hub is killed; a new hub on
/// the same port and database comes up a second later and a message for `beta` is sent through
/// it: the wait ends with exactly that message, which the inbox then shows once, unread; the
/// command line said that it was trying again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_line_wait_rides_out_a_hub_restart() {
    restart_mid_wait(false).await;
}

/// The same with a relay's `wait_for_message` for `beta` waiting too: both end with exactly
/// that message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_wait_rides_out_a_hub_restart() {
    restart_mid_wait(true).await;
}

async fn restart_mid_wait(with_relay: bool) {
    let db = TempDb::new("remote-restart");
    let listen = format!("127.0.0.1:{}", free_port());
    let hub = Hub::start_on(&db.path(), &listen, &[], &[]).await;
    let secret = token(&db.path(), "lab", None);
    let remote = Remote::new(&hub.url, &secret);
    let relay = if with_relay {
        let beta = Arc::new(remote.relay(&["--name", "beta"]).await);
        assert_eq!(beta.listed().await, [("beta".to_string(), true)]);
        let waiting = beta.clone();
        let wait = tokio::spawn(async move {
            waiting
                .call("wait_for_message", json!({ "timeout_seconds": 30 }))
                .await
        });
        Some((beta, wait))
    } else {
        None
    };
    let mut cli_wait = remote.start(
        &[
            "wait-for-message",
            "--as",
            "beta",
            "--timeout-seconds",
            "30",
            "--json",
        ],
        &[],
    );
    // The requests reach the hub and wait there (nothing says when: give them a moment).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(cli_wait.running(), "{}", cli_wait.stderr());
    if let Some((_, wait)) = &relay {
        assert!(!wait.is_finished());
    }

    kill(hub).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let hub = Hub::start_on(&db.path(), &listen, &[], &[]).await;
    assert_eq!(hub.url, remote.url);
    let body = "sent after the restart";
    let id = remote
        .json(&["send-message", "--as", "ci", "--to", "beta", "--body", body])
        .await["id"]
        .as_i64()
        .unwrap();
    let expected = [(id, "ci".to_string(), body.to_string())];

    let cli = cli_wait.exit(Duration::from_secs(40)).await;
    assert_eq!(cli.code, Some(0), "{cli:?}");
    let cli_got = cli.json();
    schema::check("wait_for_message", &cli_got);
    assert_eq!(cli_got["timed_out"], false);
    assert_eq!(summary(&cli_got), expected);
    // Its request was at the hub when the hub died: the first failure was a broken
    // connection, not a refused one, and the wait (which only reads) was made again.
    let first = cli
        .stderr
        .lines()
        .find(|l| l.contains("trying again"))
        .unwrap_or_else(|| panic!("the command line never said it was trying again: {cli:?}"));
    assert!(!first.contains("(Connect)"), "{first}");

    if let Some((beta, wait)) = relay {
        let got = tokio::time::timeout(Duration::from_secs(40), wait)
            .await
            .expect("the relay's wait ends")
            .expect("the relay's wait task")
            .unwrap_or_else(|e| panic!("the relay's wait failed: {e}; stderr: {}", beta.stderr()));
        assert_eq!(got["timed_out"], false);
        assert_eq!(summary(&got), expected);
        // The relay's call was at the hub when it died, and was made again.
        let said = beta.stderr();
        assert!(said.contains("wait_for_message at the hub"), "{said}");
        assert_eq!(beta.unread_ids().await, [id]);
    }

    // Once, unread; nothing else was sent.
    let inbox = remote.json(&["inbox", "--as", "beta"]).await;
    assert_eq!(summary(&inbox), expected);
    assert!(inbox["messages"][0].get("read_at").is_none(), "{inbox}");
    let all: i64 = read_db(&db.path())
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(all, 1);
}

/// A send through the command line while the hub is down, which comes back a few seconds
/// later, is made once: the request never reached the hub, so trying it again is safe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_while_the_hub_is_down_is_made_once() {
    let db = TempDb::new("remote-down");
    let listen = format!("127.0.0.1:{}", free_port());
    let hub = Hub::start_on(&db.path(), &listen, &[], &[]).await;
    let secret = token(&db.path(), "lab", None);
    let remote = Remote::new(&hub.url, &secret);
    let beta = remote.relay(&["--name", "beta"]).await;
    kill(hub).await;

    let body = "sent while the hub was down";
    let sending = remote.start(
        &[
            "send-message",
            "--as",
            "ci",
            "--to",
            "beta",
            "--body",
            body,
            "--json",
        ],
        &[],
    );
    eventually(
        "the client says it tries again",
        Duration::from_secs(15),
        || sending.stderr().contains("trying again").then_some(()),
    )
    .await;
    // The relay's own send while the hub is down: it may not be repeated once the connection
    // broke, but it is never made twice.
    let relay_send = {
        let relay_body = "relayed while the hub was down";
        let call = beta.call("send_message", json!({ "to": "ci", "body": relay_body }));
        let restart = async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Hub::start_on(&db.path(), &listen, &[], &[]).await
        };
        let (answer, hub) = tokio::join!(call, restart);
        (answer, hub, relay_body)
    };
    let (answer, _hub, relay_body) = relay_send;

    let out = sending.exit(Duration::from_secs(30)).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let sent = out.json();
    schema::check("send_message", &sent);
    assert!(out.stderr.contains("trying again"), "{out:?}");
    assert_eq!(count_body(&db, body), 1);
    let id: i64 = read_db(&db.path())
        .query_row("SELECT id FROM messages WHERE body = ?1", [body], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(sent["id"], id);

    match answer {
        Ok(sent) => assert_eq!(count_body(&db, relay_body), 1, "{sent}"),
        Err(e) => {
            assert!(e.contains("may have done it already"), "{e}");
            assert!(count_body(&db, relay_body) <= 1, "{e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// init --hub

/// The places in `text` that look like a token's secret: `c2c_` and 64 hex digits.
fn secrets_in(text: &str) -> Vec<String> {
    text.match_indices("c2c_")
        .map(|(at, _)| text[at..].chars().take(68).collect::<String>())
        .filter(|s| s.len() == 68 && s[4..].bytes().all(|b| b.is_ascii_hexdigit()))
        .collect()
}

/// Every file under `dir`, with its text.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                found.push((path, text));
            }
        }
    }
    found
}

/// Runs `init --name local` with `--hub url` in `project` (with its own HOME), the token set.
async fn init(url: &str, secret: &str, project: &TempDb, home: &TempDb) -> Out {
    let mut cmd = Remote::new(url, secret).command(&["init", "--name", "local"]);
    cmd.current_dir(project.dir()).env("HOME", home.dir());
    let out = Remote::finish(cmd, "").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    out
}

fn read_json(path: std::path::PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()))
}

/// `init --hub URL` wires the project for the hub: the server in `.mcp.json` is the relay
/// (`--hub URL` in its args) and the hooks in `.claude/settings.json` carry ` --hub URL`; the
/// token, though set in the environment, is written nowhere. What it writes works: the server
/// entry started as written is a relay registered as the name, and the prompt hook, run as
/// Claude Code runs it, hands over a message sent through the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_with_a_hub_writes_the_url_but_never_the_token() {
    let url = "https://hub.example:7420";
    let fake = format!("c2c_{}", "ab".repeat(32));
    let (project, home) = (TempDb::new("remote-init"), TempDb::new("remote-init-home"));
    let out = init(url, &fake, &project, &home).await;
    assert!(out.stdout.contains(url), "{out:?}");

    let mcp = read_json(project.dir().join(".mcp.json"));
    let server = &mcp["mcpServers"]["c2c"];
    let args: Vec<&str> = server["args"]
        .as_array()
        .unwrap_or_else(|| panic!("no args: {mcp}"))
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let at = args
        .iter()
        .position(|a| *a == "--hub")
        .unwrap_or_else(|| panic!("{args:?}"));
    assert_eq!(args.get(at + 1), Some(&url), "{args:?}");
    assert!(
        args.windows(2).any(|w| w == ["--name", "local"]),
        "{args:?}"
    );
    assert!(!args.contains(&"--db"), "{args:?}");

    let settings = read_json(project.dir().join(".claude/settings.json"));
    for event in ["SessionStart", "UserPromptSubmit", "Stop"] {
        let command = settings["hooks"][event][0]["hooks"][0]["command"]
            .as_str()
            .unwrap_or_else(|| panic!("no {event} hook: {settings}"));
        assert!(command.contains(" --hub "), "{event}: {command}");
        assert!(command.contains(url), "{event}: {command}");
        assert!(command.contains("--name local"), "{event}: {command}");
    }
    for dir in [&project, &home] {
        for (path, text) in files_under(dir.dir()) {
            assert!(!text.contains(&fake), "{} holds the token", path.display());
            assert_eq!(
                secrets_in(&text),
                Vec::<String>::new(),
                "{}",
                path.display()
            );
        }
    }

    // The same wiring against a live hub.
    let db = TempDb::new("remote-init-hub");
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let secret = token(&db.path(), "lab", None);
    let (project, home) = (
        TempDb::new("remote-init-live"),
        TempDb::new("remote-init-live-home"),
    );
    init(&hub.url, &secret, &project, &home).await;
    let mcp = read_json(project.dir().join(".mcp.json"));
    let server = &mcp["mcpServers"]["c2c"];
    assert_eq!(server["command"], "claude-c2c");
    let args: Vec<&str> = server["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let remote = Remote::new(&hub.url, &secret);
    let local = Server::spawn(remote.bare(&args)).await;
    assert_eq!(local.listed().await, [("local".to_string(), true)]);
    let id = remote.send("ci", "local", "wired right").await;

    let settings = read_json(project.dir().join(".claude/settings.json"));
    let command = settings["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap();
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut hook = tokio::process::Command::new("sh");
    hook.args(["-c", command]);
    for var in SERVER_ENV {
        hook.env_remove(var);
    }
    hook.env("PATH", path)
        .env("C2C_TOKEN", &secret)
        .current_dir(project.dir())
        .kill_on_drop(true);
    let input = json!({ "session_id": "s-1", "hook_event_name": "UserPromptSubmit" }).to_string();
    let out = Remote::finish(hook, &input).await;
    assert_eq!(out.code, Some(0), "{command}: {out:?}");
    let printed: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{command}: {e}: {out:?}"));
    let context = printed["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap_or_else(|| panic!("{printed}"));
    assert!(
        context.contains("wired right") && context.contains(&id.to_string()),
        "{context}"
    );
    local.stop().await;
}

// ---------------------------------------------------------------------------------------------
// A connection that breaks, and TLS

/// A TCP proxy on 127.0.0.1 in front of a hub that breaks its first connections: it reads the
/// request whole and closes without answering, so the hub never sees it and the client cannot
/// tell whether it was done. Later connections go through to the hub.
struct Breaker {
    port: u16,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Breaker {
    async fn start(hub_port: u16, breaks: usize) -> Breaker {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if n < breaks {
                        read_request(&mut inbound).await;
                    } else if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", hub_port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Breaker {
            port,
            connections,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Breaker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP request (its head, and a body of its Content-Length) from `stream`.
async fn read_request(stream: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
        }
        let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if seen.len() >= end + 4 + length {
            return;
        }
    }
}

/// When the connection breaks after the request went out, the command line makes a call that
/// only reads (or is idempotent) again, saying so, but not one that writes: that fails with a
/// message saying the hub may have done it already.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broken_connection_reads_are_repeated_and_writes_are_not() {
    let db = TempDb::new("remote-broken");
    let hub = Hub::start(&db.path(), &[], &[]).await;
    let secret = token(&db.path(), "lab", None);
    let direct = Remote::new(&hub.url, &secret);
    direct.send("ci", "local", "first").await;

    for write in [
        &[
            "send-message",
            "--as",
            "ci",
            "--to",
            "local",
            "--body",
            "lost",
        ][..],
        &["set-state", "--as", "ci", "--key", "k", "--value", "1"][..],
    ] {
        let proxy = Breaker::start(hub.port, 1).await;
        let stderr = Remote::new(&proxy.url(), &secret)
            .fails(write, 1, &["may have done it already"])
            .await;
        assert!(!stderr.contains("trying again"), "{write:?}: {stderr}");
        assert_eq!(proxy.connections(), 1, "{write:?}: made again");
    }
    assert_eq!(count_body(&db, "lost"), 0);
    assert_eq!(
        direct.json(&["get-state", "--key", "k"]).await["entry"],
        Value::Null
    );

    for read in [
        &["inbox", "--as", "local"][..],
        &["get-state", "--key", "k"][..],
        &["mark-read", "--as", "local", "--message-ids", "1"][..],
    ] {
        let proxy = Breaker::start(hub.port, 1).await;
        let via = Remote::new(&proxy.url(), &secret);
        let mut args = read.to_vec();
        args.push("--json");
        let out = via.run(&args).await;
        assert_eq!(out.code, Some(0), "{read:?}: {out:?}");
        assert!(out.stderr.contains("trying again"), "{read:?}: {out:?}");
        assert_eq!(proxy.connections(), 2, "{read:?}");
        let sub = read[0].replace('-', "_");
        schema::check(&sub, &out.json());
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, written into `dir`: (cert, key).
fn test_cert(dir: &TempDb) -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("a certificate");
    let cert = dir.dir().join("cert.pem");
    let key = dir.dir().join("key.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert.display().to_string(), key.display().to_string())
}

/// A hub that serves HTTPS with a certificate of its own: the command line and the relay
/// trust it with `--hub-ca` (or `C2C_HUB_CA`); a --hub-ca that cannot be read is a usage error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_ca_trusts_a_self_signed_hub() {
    let db = TempDb::new("remote-tls");
    let (cert, key) = test_cert(&db);
    let hub = Hub::start(&db.path(), &[], &["--tls-cert", &cert, "--tls-key", &key]).await;
    assert!(hub.url.starts_with("https://127.0.0.1:"), "{}", hub.url);
    let secret = token(&db.path(), "lab", None);
    let remote = Remote::new(&hub.url, &secret);

    let sent = remote
        .json(&[
            "--hub-ca",
            &cert,
            "send-message",
            "--as",
            "ci",
            "--to",
            "beta",
            "--body",
            "over TLS",
        ])
        .await;
    let mut inbox = remote.command(&["inbox", "--as", "beta", "--json"]);
    inbox.env("C2C_HUB_CA", &cert);
    let out = Remote::finish(inbox, "").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        summary(&out.json()),
        [(sent["id"].as_i64().unwrap(), "ci".into(), "over TLS".into())]
    );

    let beta = remote.relay(&["--hub-ca", &cert, "--name", "beta"]).await;
    assert_eq!(beta.unread().await.len(), 1);
    beta.stop().await;

    let missing = db.dir().join("missing.pem").display().to_string();
    remote
        .fails(
            &["--hub-ca", &missing, "inbox", "--as", "beta"],
            2,
            &["--hub-ca", "missing.pem"],
        )
        .await;
}

/// A hub whose certificate the client does not trust is reported at once (trying again cannot
/// make it trusted), saying how to trust it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_hub_certificate_fails_at_once() {
    let db = TempDb::new("remote-untrusted");
    let (cert, key) = test_cert(&db);
    let hub = Hub::start(&db.path(), &[], &["--tls-cert", &cert, "--tls-key", &key]).await;
    let secret = token(&db.path(), "lab", None);
    let remote = Remote::new(&hub.url, &secret);
    let out = remote
        .start(&["inbox", "--as", "beta"], &[])
        .exit(Duration::from_secs(10))
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("certificate"), "{out:?}");
    assert!(out.stderr.contains("--hub-ca"), "{out:?}");
}
