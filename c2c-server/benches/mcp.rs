//! The benchmark: drives stdio MCP servers that speak the claude-c2c tools, each the same way
//! over pipes, and prints one markdown table side by side: start-up, call latency, memory,
//! throughput with several processes on one database (checking nothing was lost or
//! duplicated), inbox latency as the database grows, and for servers that have
//! `wait_for_message`, how soon a waiter learns of another process's message and the CPU a
//! waiting or channel-pushing server burns while nothing happens. The floor for a call is
//! this bench binary re-run as a responder that answers each line with a canned result
//! (`--floor-responder`); the ratio rows divide a call's p50 by the floor's.
//!
//! For this build it also measures the hub (`serve --listen`): MCP round trips over HTTP on one
//! kept-alive connection, throughput of 16 MCP sessions at once, and the hub's memory with 100
//! idle sessions; the other servers have no HTTP, and their cells say n/a.
//!
//! `cargo bench -p claude-c2c --bench mcp -- [--server LABEL=COMMAND]... [--quick] [--only-hub]`
//! It always measures this build's `claude-c2c` (as `cargo install` makes it), then each
//! `--server` given. `bench/run` also installs the original Python server and passes it in.
//! `--only-hub` measures the hub rows and, of the
//! stdio rows, only this build's call latencies to set beside them (ping, send_message,
//! set_state, get_state, with their floor blocks); other servers are then left out. Figures,
//! not pass/fail: nothing here asserts a time.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A server under test: a label and the command that starts it (the database comes from
/// `CLAUDE_C2C_DB`, which both servers honour).
#[derive(Clone)]
struct Target {
    label: String,
    command: Vec<String>,
}

/// One server process and a JSON-RPC client over its pipes.
struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: i64,
}

/// The JSON result of `tool`'s answer `reply` (structured, or parsed from the text block);
/// a failed call stops the benchmark.
fn tool_result(tool: &str, reply: &Value) -> Value {
    let result = &reply["result"];
    assert!(result["isError"] != true, "{tool} failed: {reply}");
    if let Some(structured) = result.get("structuredContent") {
        return structured.clone();
    }
    let text = result["content"][0]["text"].as_str().unwrap_or("null");
    serde_json::from_str(text).unwrap_or(Value::Null)
}

impl Proc {
    fn spawn(target: &Target, db: &Path) -> Proc {
        let mut child = Command::new(&target.command[0])
            .args(&target.command[1..])
            .env("CLAUDE_C2C_DB", db)
            .env_remove("C2C_NAME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", target.command.join(" ")));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Proc {
            child,
            stdin,
            stdout,
            next_id: 1,
        }
    }

    fn start(target: &Target, db: &Path) -> Proc {
        let mut p = Proc::spawn(target, db);
        p.initialize();
        p
    }

    fn initialize(&mut self) {
        self.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}),
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    }

    /// Writes `message` as one line in one write, as MCP clients do. (`writeln!` on the
    /// unbuffered pipe would write each JSON token on its own, dozens of writes that wake the
    /// server again and again for one request.)
    fn send(&mut self, message: &Value) {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.start_request(method, params);
        self.reply(id)
    }

    /// Writes a request without waiting for its reply; returns its id.
    fn start_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Reads until the reply to request `id` (skipping notifications and other replies).
    fn reply(&mut self, id: i64) -> Value {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "the server closed its output"
            );
            let reply: Value = serde_json::from_str(&line).unwrap();
            if reply["id"] == id {
                return reply;
            }
        }
    }

    /// Calls a tool and returns its JSON result (see [`tool_result`]).
    fn call(&mut self, tool: &str, args: Value) -> Value {
        let reply = self.request("tools/call", json!({"name": tool, "arguments": args}));
        tool_result(tool, &reply)
    }

    fn register(&mut self, name: &str) {
        self.call("register_session", json!({"name": name}));
    }

    fn has_tool(&mut self, name: &str) -> bool {
        let tools = self.request("tools/list", json!({}));
        tools["result"]["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == name))
    }

    /// CPU time (user + system) used so far by the process, threads that ended included
    /// (from /proc/PID/stat, in clock ticks of 10 ms).
    #[cfg(target_os = "linux")]
    fn cpu_time(&self) -> Option<Duration> {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|t| t.parse::<u64>().ok()))
            .sum();
        Some(Duration::from_millis(ticks * 10))
    }

    /// The resident memory of the process in KiB (VmRSS in /proc/PID/status).
    fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.child.id())
    }

    // Elsewhere these need platform calls (proc_pidinfo on macOS, GetProcessTimes and
    // GetProcessMemoryInfo on Windows), not worth a dependency here: those rows say so.
    #[cfg(not(target_os = "linux"))]
    fn cpu_time(&self) -> Option<Duration> {
        None
    }
}

/// The resident memory of process `pid` in KiB (VmRSS in /proc/PID/status).
#[cfg(target_os = "linux")]
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Some(rss)
}

// Elsewhere not measured, as the CPU time above.
#[cfg(not(target_os = "linux"))]
fn rss_kib(_pid: u32) -> Option<u64> {
    None
}

/// What a row shows for a figure this platform does not measure.
const NOT_MEASURED: &str = "not measured on this platform";

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hub of this build (`serve --listen 127.0.0.1:0`) on its own database, with one token for
/// room `bench` (any name in it).
struct Hub {
    child: Child,
    // Held open so the hub's later output never meets a closed pipe.
    _stdout: BufReader<ChildStdout>,
    /// `127.0.0.1:PORT`, as the hub printed it.
    authority: String,
    secret: String,
    /// Its stderr, shown if it stopped by itself.
    log: PathBuf,
}

impl Hub {
    fn start(db: &Path) -> Hub {
        let created = hub_command(db)
            .args(["token", "create", "--room", "bench"])
            .stderr(Stdio::null())
            .output()
            .expect("claude-c2c token create");
        assert!(created.status.success(), "token create failed");
        let secret = String::from_utf8(created.stdout)
            .unwrap()
            .trim()
            .to_string();
        let log = db.with_extension("log");
        let mut child = hub_command(db)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("the hub's log file"))
            .spawn()
            .expect("claude-c2c serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut url = String::new();
        stdout.read_line(&mut url).unwrap();
        let authority = url
            .trim()
            .strip_prefix("http://")
            .and_then(|u| u.strip_suffix("/mcp"))
            .unwrap_or_else(|| panic!("the hub printed {url:?}, not its URL"))
            .to_string();
        Hub {
            child,
            _stdout: stdout,
            authority,
            secret,
            log,
        }
    }

    fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.child.id())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            eprintln!(
                "[hub] THE HUB HAD STOPPED ({status}); its stderr:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `claude-c2c` that `cargo install` makes of this tree: built here by `cargo build
/// --release` on first use. (The bench's own copy, `CARGO_BIN_EXE_claude-c2c`, is built with
/// the dev-dependencies' features switched on in shared crates, which changes every symbol's
/// hash, so the exact names of c2c-server/link/hot.ld would not match it: its code would be
/// laid out less well than what users run.)
fn this_build() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            eprintln!("[bench] cargo build --release -p claude-c2c (what cargo install makes)");
            let output = Command::new(env!("CARGO"))
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .args([
                    "build",
                    "--release",
                    "--locked",
                    "-p",
                    "claude-c2c",
                    "--bin",
                ])
                .args(["claude-c2c", "--message-format=json-render-diagnostics"])
                .stderr(Stdio::inherit())
                .output()
                .expect("cannot run cargo build");
            assert!(output.status.success(), "cargo build --release failed");
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find_map(|m| m["executable"].as_str().map(PathBuf::from))
                .expect("cargo build named no executable")
        })
        .clone()
}

/// `claude-c2c --db DB`, with none of the environment that would point it elsewhere.
fn hub_command(db: &Path) -> Command {
    let mut command = Command::new(this_build());
    command.arg("--db").arg(db);
    for var in [
        "CLAUDE_C2C_DB",
        "C2C_HUB",
        "C2C_HUB_CA",
        "C2C_TOKEN",
        "C2C_NAME",
        "C2C_ROOM",
        "C2C_CHANNEL",
    ] {
        command.env_remove(var);
    }
    command
}

/// One HTTP/1.1 response as the bench reads it.
struct Reply {
    status: u16,
    session: Option<String>,
    body: Vec<u8>,
    /// When the chunk holding the first non-empty SSE `data:` arrived (the JSON-RPC reply;
    /// the stream then still has to end before the connection can carry the next request).
    data_at: Option<Instant>,
}

/// A client of the hub on one kept-alive TCP connection: plain HTTP/1.1 written by hand, one
/// write a request, reading `Content-Length` and chunked bodies, and for MCP the `data:` lines
/// of rmcp's SSE answer. (No HTTP library: like the stdio client, it should cost the server's
/// figures as little as it can.) Like any HTTP client it opens a new connection when the hub
/// has closed the idle one (hyper does after 30 s without a request).
struct Http {
    /// `127.0.0.1:PORT`.
    authority: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// The headers every request carries: Host, the token, what MCP asks of a client.
    head: String,
    session: Option<String>,
    next_id: i64,
    data_at: Option<Instant>,
    /// Ask the kernel to acknowledge the reply's segments at once (TCP_QUICKACK, Linux) rather
    /// than delay the ACK, which a server that leaves Nagle's algorithm on waits for between
    /// the writes of one response.
    quickack: bool,
}

impl Http {
    fn connect(hub: &Hub) -> Http {
        let (reader, writer) = Http::open(&hub.authority);
        Http {
            authority: hub.authority.clone(),
            reader,
            writer,
            head: format!(
                "Host: {}\r\nAuthorization: Bearer {}\r\nAccept: application/json, \
                 text/event-stream\r\nContent-Type: application/json\r\n",
                hub.authority, hub.secret
            ),
            session: None,
            next_id: 1,
            data_at: None,
            quickack: false,
        }
    }

    fn open(authority: &str) -> (BufReader<TcpStream>, TcpStream) {
        let stream = TcpStream::connect(authority).expect("connect to the hub");
        stream.set_nodelay(true).unwrap();
        (BufReader::new(stream.try_clone().unwrap()), stream)
    }

    /// Writes `request` and reads its reply; on a connection the hub closed before answering,
    /// once more on a new one.
    fn exchange(&mut self, request: &str) -> Reply {
        for _ in 0..2 {
            let written = self.writer.write_all(request.as_bytes());
            if self.quickack {
                quickack(&self.writer);
            }
            if let Err(e) = &written
                && !matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                )
            {
                panic!("writing to the hub: {e}");
            }
            if written.is_ok()
                && let Some(reply) = self.read_reply()
            {
                return reply;
            }
            eprintln!("[hub] the hub had closed an idle connection: connecting again");
            (self.reader, self.writer) = Http::open(&self.authority);
        }
        panic!("the hub closed a new connection without answering");
    }

    /// An MCP session of the hub registered as `name` (`x-c2c-name`), initialised.
    fn mcp(hub: &Hub, name: &str) -> Http {
        let mut http = Http::connect(hub);
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params":
            {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
        let reply = http.post(
            "/mcp",
            &format!("x-c2c-name: {name}\r\n"),
            &init.to_string(),
        );
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        assert_eq!(reply.status, 200, "initialize as {name}: {text}");
        assert!(
            sse_reply(&text, 0).is_some_and(|r| r.get("result").is_some()),
            "initialize as {name}: {text}"
        );
        http.session = Some(reply.session.expect("an Mcp-Session-Id"));
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let reply = http.post("/mcp", "", &note.to_string());
        assert!(
            reply.status == 202 || reply.status == 200,
            "notifications/initialized: {}",
            reply.status
        );
        http
    }

    fn post(&mut self, path: &str, extra_headers: &str, body: &str) -> Reply {
        let mut request = format!("POST {path} HTTP/1.1\r\n{}{extra_headers}", self.head);
        if let Some(session) = &self.session {
            request.push_str(&format!("Mcp-Session-Id: {session}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        self.exchange(&request)
    }

    fn get(&mut self, path: &str) -> Reply {
        let request = format!("GET {path} HTTP/1.1\r\n{}\r\n", self.head);
        self.exchange(&request)
    }

    /// The reply to the request just written; `None` if the hub closed the connection first.
    fn read_reply(&mut self) -> Option<Reply> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => return None,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Ok(_) => {}
            Err(e) => panic!("reading from the hub: {e}"),
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP status line: {line:?}"));
        let (mut length, mut chunked, mut session) = (None, false, None);
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "mcp-session-id" => session = Some(value.to_string()),
                _ => {}
            }
        }
        let mut body = Vec::new();
        let mut data_at = None;
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line).unwrap();
                let size = line.trim_end().split(';').next().unwrap_or_default();
                let size = usize::from_str_radix(size, 16)
                    .unwrap_or_else(|_| panic!("not a chunk size: {line:?}"));
                if size == 0 {
                    // Trailers, then the empty line that ends the body.
                    loop {
                        line.clear();
                        self.reader.read_line(&mut line).unwrap();
                        if line.trim_end().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.reader.read_exact(&mut body[start..]).unwrap();
                let mut crlf = [0u8; 2];
                self.reader.read_exact(&mut crlf).unwrap();
                if data_at.is_none() && body[start..].windows(7).any(|w| w == b"data: {") {
                    data_at = Some(Instant::now());
                }
            }
        } else if let Some(length) = length {
            body.resize(length, 0);
            self.reader.read_exact(&mut body).unwrap();
        }
        Some(Reply {
            status,
            session,
            body,
            data_at,
        })
    }

    /// A JSON-RPC request in the MCP session; its reply, from the SSE stream.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let reply = self.post("/mcp", "", &message.to_string());
        self.data_at = reply.data_at;
        let text = String::from_utf8_lossy(&reply.body);
        assert_eq!(reply.status, 200, "{method}: {text}");
        sse_reply(&text, id).unwrap_or_else(|| panic!("{method}: no reply in {text:?}"))
    }

    /// A tool call in the MCP session; its JSON result (see [`tool_result`]).
    fn call(&mut self, tool: &str, args: Value) -> Value {
        let reply = self.request("tools/call", json!({"name": tool, "arguments": args}));
        tool_result(tool, &reply)
    }

    /// A tool call through the JSON API (`POST /v1/call`); its result.
    fn api_call(&mut self, tool: &str, args: Value) -> Value {
        let request = json!({"tool": tool, "arguments": args});
        let reply = self.post("/v1/call", "", &request.to_string());
        let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        assert!(
            reply.status == 200 && answer.get("result").is_some(),
            "/v1/call {tool}: {} {answer}",
            reply.status
        );
        answer["result"].clone()
    }
}

/// Leaves the kernel's delayed-ACK ("pingpong") mode on `stream`, so the segments that come
/// next are acknowledged at once; sending data re-enters it, hence once after each request.
#[cfg(target_os = "linux")]
fn quickack(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and a c_int option of the size given.
    let done = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(done, 0, "TCP_QUICKACK");
}

#[cfg(not(target_os = "linux"))]
fn quickack(_stream: &TcpStream) {}

/// Whether [`quickack`] does anything here.
const QUICKACK: bool = cfg!(target_os = "linux");

/// The JSON-RPC message with id `id` among the `data:` lines of an SSE body.
fn sse_reply(text: &str, id: i64) -> Option<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|m| m["id"] == id)
}

/// The ids of an inbox result: ours is `{"messages": [..]}`, the original's `{"result": [..]}`.
fn message_ids(inbox: &Value) -> Vec<i64> {
    let list = inbox
        .get("messages")
        .or_else(|| inbox.get("result"))
        .unwrap_or(inbox);
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_i64())
        .collect()
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("c2c-bench-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn db(&self, name: &str) -> PathBuf {
        self.0.join(format!("{name}.db"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One column of the report: the figures measured for one server.
type Column = BTreeMap<&'static str, String>;

/// With `only_hub`, only the call latencies (without inbox) that the hub rows are set beside.
fn measure(target: &Target, quick: bool, only_hub: bool) -> Column {
    let scratch = Scratch::new(
        &target
            .label
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
    );
    let mut out = Column::new();
    let calls = if quick { 200 } else { 2000 };

    if !only_hub {
        eprintln!("[{}] start-up", target.label);
        let mut starts = Vec::new();
        for _ in 0..if quick { 5 } else { 15 } {
            let t = Instant::now();
            let mut p = Proc::spawn(target, &scratch.db("start"));
            p.initialize();
            starts.push(t.elapsed());
        }
        out.insert(
            "a start-up (median)",
            format!("{:.1} ms", percentile(&mut starts, 0.5).as_secs_f64() * 1e3),
        );
    }

    eprintln!("[{}] latency", target.label);
    let db = scratch.db("latency");
    let mut a = Proc::start(target, &db);
    a.register("a");
    let mut b = Proc::start(target, &db);
    b.register("b");
    for i in 0..400 {
        a.call(
            "send_message",
            json!({"to": "b", "body": format!("status update {i}: the etl ran fine")}),
        );
    }
    let time = |p: &mut Proc, method: &str, tool: Option<(&str, Value)>| {
        let mut samples = Vec::new();
        for _ in 0..calls {
            let t = Instant::now();
            match &tool {
                Some((name, args)) => {
                    p.call(name, args.clone());
                }
                None => {
                    p.request(method, json!({}));
                }
            }
            samples.push(t.elapsed());
        }
        (
            percentile(&mut samples, 0.5),
            percentile(&mut samples, 0.99),
        )
    };
    // (row, JSON-RPC method for a bare request, on the sender's process, tool call)
    type Row<'a> = (&'static str, &'static str, bool, Option<(&'a str, Value)>);
    let rows: [Row; 5] = [
        ("b ping (server does nothing)", "ping", true, None),
        (
            "c send_message",
            "",
            true,
            Some((
                "send_message",
                json!({"to": "c", "body": "deploy finished, last_run_id=abc123"}),
            )),
        ),
        (
            "d inbox (20 of 400 unread)",
            "",
            false,
            Some(("inbox", json!({}))),
        ),
        (
            "e set_state",
            "",
            true,
            Some((
                "set_state",
                json!({"key": "last_run_id", "value": {"id": "abc123"}}),
            )),
        ),
        (
            "f get_state",
            "",
            false,
            Some(("get_state", json!({"key": "last_run_id"}))),
        ),
    ];
    // The floor is timed in a block of its own just before each row, so that a row and the
    // floor it is divided by share the machine's load of that moment. A tool's row has a
    // second floor: a responder answering the server's own answer to that call, timed right
    // after the row by the same client code, so the client's writing and parsing (an inbox
    // answer is 8 KB) weighs the same in both.
    let mut floor = Proc::start(&floor_target(None), &db);
    for (row, method, on_a, tool) in rows {
        if only_hub && row.starts_with("d ") {
            continue;
        }
        let (floor_p50, floor_p99) = time(&mut floor, "ping", None);
        if row.starts_with("b ") {
            out.insert(
                "b floor (canned responder: pipes only)",
                format!("{} / {}", micros(floor_p50), micros(floor_p99)),
            );
        }
        let p = if on_a { &mut a } else { &mut b };
        let (p50, p99) = time(p, method, tool.clone());
        out.insert(row, format!("{} / {}", micros(p50), micros(p99)));
        let ratio_row = match &row[2..] {
            "ping (server does nothing)" => "p ping p50 / floor p50",
            "send_message" => "q send_message p50 / floor p50",
            "inbox (20 of 400 unread)" => "r inbox (20 unread, none new) p50 / floor p50",
            "get_state" => "s get_state p50 / floor p50",
            _ => continue,
        };
        let mut cell = format!(
            "{:.2}x (floor {})",
            p50.as_secs_f64() / floor_p50.as_secs_f64(),
            micros(floor_p50)
        );
        if let Some((name, args)) = &tool {
            let answer = p.request("tools/call", json!({"name": name, "arguments": args}));
            let canned = scratch.0.join(format!("{name}.json"));
            std::fs::write(&canned, answer["result"].to_string()).unwrap();
            let mut same = Proc::start(&floor_target(Some(&canned)), &db);
            // A new process: its first calls fault in its pages.
            for _ in 0..20 {
                same.call(name, args.clone());
            }
            let (same_p50, _) = time(&mut same, method, tool);
            cell.push_str(&format!(
                "; {:.2}x the floor answering this reply ({})",
                p50.as_secs_f64() / same_p50.as_secs_f64(),
                micros(same_p50)
            ));
        }
        out.insert(ratio_row, cell);
    }
    drop(floor);
    if only_hub {
        return out;
    }
    out.insert(
        "g memory after the calls above (RSS)",
        a.rss_kib().map_or(NOT_MEASURED.into(), |kib| {
            format!("{:.1} MB", kib as f64 / 1024.0)
        }),
    );
    drop((a, b));

    for procs in [4usize, 8] {
        eprintln!("[{}] throughput with {procs} processes", target.label);
        let per = if quick { 50 } else { 300 };
        let db = scratch.db(&format!("throughput{procs}"));
        let mut servers: Vec<Proc> = (0..procs)
            .map(|i| {
                let mut p = Proc::start(target, &db);
                p.register(&format!("w{i}"));
                p
            })
            .collect();
        let cell = send_all(&mut servers, "w", per, &db);
        out.insert(
            if procs == 4 {
                "h throughput, 4 processes"
            } else {
                "i throughput, 8 processes"
            },
            cell,
        );
    }

    for (row, size) in [
        ("j inbox, 1 thousand stored", 1_000usize),
        ("k inbox, 1 million stored", 1_000_000),
    ] {
        if quick && size > 1_000 {
            continue;
        }
        eprintln!("[{}] inbox with {size} messages stored", target.label);
        let db = scratch.db(&format!("history{size}"));
        populate(&db, size);
        let mut reader = Proc::start(target, &db);
        reader.register("reader");
        let first = reader.call("inbox", json!({}));
        assert_eq!(message_ids(&first).len(), 20, "the reader has 20+ unread");
        let mut samples = Vec::new();
        for _ in 0..if quick { 20 } else { 200 } {
            let t = Instant::now();
            reader.call("inbox", json!({}));
            samples.push(t.elapsed());
        }
        let p50 = percentile(&mut samples, 0.5);
        let p99 = percentile(&mut samples, 0.99);
        out.insert(row, format!("{} / {}", micros(p50), micros(p99)));
    }
    if Proc::start(target, &scratch.db("probe")).has_tool("wait_for_message") {
        measure_wait(target, &scratch, quick, &mut out);
    }
    out
}

/// The `wait_for_message` rows: wake-up latency across processes, and idle CPU.
fn measure_wait(target: &Target, scratch: &Scratch, quick: bool, out: &mut Column) {
    eprintln!("[{}] wait_for_message wake-up", target.label);
    let db = scratch.db("wait");
    let mut waiter = Proc::start(target, &db);
    waiter.register("waiter");
    let mut sender = Proc::start(target, &db);
    sender.register("sender");
    let mut samples = Vec::new();
    for i in 0..if quick { 40 } else { 300 } {
        let id = waiter.start_request(
            "tools/call",
            json!({"name": "wait_for_message", "arguments": {"timeout_seconds": 30}}),
        );
        // Let the waiter settle into waiting, at a varying phase of its change checks.
        std::thread::sleep(Duration::from_micros(20_000 + (i * 7_919) % 10_000));
        // From the moment the send is written: an upper bound of commit-to-return.
        let t = Instant::now();
        let sent = sender.call("send_message", json!({"to": "waiter", "body": "wake"}));
        let reply = waiter.reply(id);
        samples.push(t.elapsed());
        let got = message_ids(&reply["result"]["structuredContent"]);
        assert_eq!(
            got,
            [sent["id"].as_i64().unwrap()],
            "the waiter got the message"
        );
        waiter.call("mark_read", json!({"message_ids": got}));
    }
    out.insert(
        "l wait_for_message wake-up, send by another process",
        format!(
            "{} / {}",
            micros(percentile(&mut samples, 0.5)),
            micros(percentile(&mut samples, 0.99))
        ),
    );

    let span = Duration::from_secs(if quick { 3 } else { 20 });
    eprintln!("[{}] idle CPU over {span:?} each", target.label);
    let idle_row = |p: &Proc| {
        let Some(before) = p.cpu_time() else {
            return NOT_MEASURED.to_string();
        };
        std::thread::sleep(span);
        let used = p.cpu_time().unwrap_or(before).saturating_sub(before);
        format!(
            "{:.2}% of a core ({} ms in {} s)",
            used.as_secs_f64() / span.as_secs_f64() * 100.0,
            used.as_millis(),
            span.as_secs()
        )
    };
    let idle = Proc::start(target, &db);
    out.insert("m idle CPU, server doing nothing", idle_row(&idle));
    let mut blocked = Proc::start(target, &db);
    blocked.register("blocked");
    blocked.start_request(
        "tools/call",
        json!({"name": "wait_for_message", "arguments": {"timeout_seconds": 600}}),
    );
    std::thread::sleep(Duration::from_millis(100));
    out.insert("n idle CPU, server in wait_for_message", idle_row(&blocked));
    let mut channel_target = target.clone();
    channel_target
        .command
        .extend(["--name".into(), "pushed".into(), "--channel".into()]);
    let pushing = Proc::start(&channel_target, &db);
    std::thread::sleep(Duration::from_millis(100));
    out.insert("o idle CPU, server with --channel", idle_row(&pushing));
}

/// The hub's rows (this build only): round trips over HTTP on one kept-alive connection,
/// throughput of 16 MCP sessions at once, and the hub's memory with 100 idle sessions. Each
/// part has a hub and database of its own.
fn measure_hub(quick: bool, out: &mut Column) {
    let scratch = Scratch::new("hub");
    let calls = if quick { 200 } else { 2000 };

    eprintln!("[hub] memory with 100 idle sessions");
    let hub = Hub::start(&scratch.db("memory"));
    std::thread::sleep(Duration::from_secs(1));
    let before = hub.rss_kib();
    let idle: Vec<Http> = (0..100)
        .map(|i| Http::mcp(&hub, &format!("idle{i}")))
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let after = hub.rss_kib();
    let overview = Http::connect(&hub).get("/v1/overview");
    let overview: Value = serde_json::from_slice(&overview.body).unwrap_or(Value::Null);
    let registered = overview["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("idle")))
        .count();
    let shortfall = if registered == idle.len() {
        String::new()
    } else {
        format!("; ONLY {registered} OF {} REGISTERED", idle.len())
    };
    out.insert(
        "z hub memory, 100 idle sessions (RSS)",
        match (before, after) {
            (Some(before), Some(after)) => format!(
                "{:.1} MB ({:.1} MB before any session: {:.0} KB a session{shortfall})",
                after as f64 / 1024.0,
                before as f64 / 1024.0,
                (after as f64 - before as f64) / idle.len() as f64
            ),
            _ => format!("{NOT_MEASURED}{shortfall}"),
        },
    );
    drop(idle);
    drop(hub);

    eprintln!("[hub] HTTP round trips");
    let hub = Hub::start(&scratch.db("latency"));
    let mut a = Http::mcp(&hub, "a");
    let mut b = Http::mcp(&hub, "b");
    a.call(
        "set_state",
        json!({"key": "last_run_id", "value": {"id": "abc123"}}),
    );
    let mut plain = Http::connect(&hub);
    out.insert(
        "t HTTP floor: the hub's 404 (no token, no MCP)",
        time_http("404", calls, || {
            assert_eq!(plain.get("/nothing").status, 404);
            None
        }),
    );
    // Each MCP row twice: as a client whose kernel delays its ACKs (every client by default),
    // then acknowledging at once, which shows what the hub's own work costs.
    let mcp_row = |what: &str, session: &mut Http, call: &dyn Fn(&mut Http)| {
        let mut cell = time_http(what, calls, || {
            call(session);
            session.data_at
        });
        if QUICKACK {
            session.quickack = true;
            let acked = time_http(&format!("{what}, acking at once"), calls, || {
                call(session);
                session.data_at
            });
            session.quickack = false;
            cell.push_str(&format!("; client acking at once: {acked}"));
        }
        cell
    };
    out.insert(
        "u HTTP round trip (hub): ping",
        mcp_row("ping", &mut a, &|p| {
            p.request("ping", json!({}));
        }),
    );
    out.insert(
        "v HTTP round trip (hub): get_state",
        mcp_row("get_state", &mut b, &|p| {
            p.call("get_state", json!({"key": "last_run_id"}));
        }),
    );
    out.insert(
        "w HTTP round trip (hub): send_message",
        mcp_row("send_message", &mut a, &|p| {
            p.call(
                "send_message",
                json!({"to": "c", "body": "deploy finished, last_run_id=abc123"}),
            );
        }),
    );
    out.insert(
        "x HTTP round trip (JSON API POST /v1/call): get_state",
        time_http("/v1/call get_state", calls, || {
            plain.api_call("get_state", json!({"key": "last_run_id"}));
            None
        }),
    );
    drop((a, b, plain, hub));

    let mut cell = hub_throughput(&scratch.db("throughput"), quick, false);
    if QUICKACK {
        let acked = hub_throughput(&scratch.db("throughput-quickack"), quick, true);
        cell.push_str(&format!("; clients acking at once: {acked}"));
    }
    out.insert("y throughput, 16 HTTP clients", cell);
}

/// 16 MCP sessions of a new hub on `db`, each sending 300 messages to the others as fast as
/// its replies come, all at once; msg/s, and whether every acknowledged id is unique and
/// stored.
fn hub_throughput(db: &Path, quick: bool, quickack: bool) -> String {
    let clients = 16;
    eprintln!("[hub] throughput with {clients} HTTP clients (acking at once: {quickack})");
    let per = if quick { 50 } else { 300 };
    let hub = Hub::start(db);
    let mut sessions: Vec<Http> = (0..clients)
        .map(|i| {
            let mut session = Http::mcp(&hub, &format!("h{i}"));
            session.quickack = quickack;
            session
        })
        .collect();
    send_all(&mut sessions, "h", per, db)
}

/// A client that runs one tool call at a time: a stdio server ([`Proc`]) or an MCP session of
/// the hub ([`Http`]).
trait Caller: Send {
    /// Calls `tool` with `args`; its JSON result.
    fn call(&mut self, tool: &str, args: Value) -> Value;
}

impl Caller for Proc {
    fn call(&mut self, tool: &str, args: Value) -> Value {
        Proc::call(self, tool, args)
    }
}

impl Caller for Http {
    fn call(&mut self, tool: &str, args: Value) -> Value {
        Http::call(self, tool, args)
    }
}

/// Every client of `clients` (registered as `{prefix}0`, `{prefix}1`, ...) sends `per`
/// messages to the others in turn, all at once, each as fast as its replies come; the
/// throughput in msg/s, flagged when an acknowledged id is not unique or not stored in `db`.
fn send_all<C: Caller>(clients: &mut [C], prefix: &str, per: usize, db: &Path) -> String {
    let count = clients.len();
    let t = Instant::now();
    let acked: Vec<Vec<(i64, String)>> = std::thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter_mut()
            .enumerate()
            .map(|(i, p)| {
                s.spawn(move || {
                    (0..per)
                        .map(|n| {
                            let to = format!("{prefix}{}", (i + 1 + n % (count - 1)) % count);
                            let sent = p.call(
                                "send_message",
                                json!({"to": to, "body": format!("{i}:{n}")}),
                            );
                            (sent["id"].as_i64().unwrap(), to)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = t.elapsed();
    let acked: Vec<(i64, String)> = acked.into_iter().flatten().collect();
    let ids: BTreeSet<i64> = acked.iter().map(|(id, _)| *id).collect();
    let conn = rusqlite::Connection::open(db).unwrap();
    let stored: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    let intact = ids.len() == acked.len() && stored as usize == acked.len();
    format!(
        "{:.0} msg/s{}",
        acked.len() as f64 / elapsed.as_secs_f64(),
        if intact { "" } else { " (LOST OR DUPLICATED)" }
    )
}

/// `p50 / p99` of `calls` runs of `call`; where `call` says when the reply's SSE event
/// arrived, also that time's p50. The slowest call goes to stderr.
fn time_http(what: &str, calls: usize, mut call: impl FnMut() -> Option<Instant>) -> String {
    let mut samples = Vec::new();
    let mut to_event = Vec::new();
    for _ in 0..calls {
        let t = Instant::now();
        let event_at = call();
        samples.push(t.elapsed());
        if let Some(at) = event_at {
            to_event.push(at - t);
        }
    }
    let slowest = samples.iter().max().copied().unwrap_or_default();
    eprintln!("[hub] {what}: slowest of {calls} {}", micros(slowest));
    let p50 = percentile(&mut samples, 0.5);
    let p99 = percentile(&mut samples, 0.99);
    let mut cell = format!("{} / {}", micros(p50), micros(p99));
    if !to_event.is_empty() {
        cell.push_str(&format!(
            " (reply event at {})",
            micros(percentile(&mut to_event, 0.5))
        ));
    }
    cell
}

/// Writes `size` messages in the original's schema (which both servers open): a history the
/// reader has read, one broadcast in ten among it, then 50 unread messages for the reader.
fn populate(db: &Path, size: usize) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE sessions (session_id TEXT PRIMARY KEY, name TEXT NOT NULL, cwd TEXT,
             started_at TEXT NOT NULL, last_seen_at TEXT NOT NULL, metadata TEXT);
         CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, from_session TEXT NOT NULL,
             from_name TEXT NOT NULL, to_name TEXT NOT NULL, body TEXT NOT NULL, tag TEXT,
             created_at TEXT NOT NULL, read_at TEXT, read_by TEXT);
         CREATE INDEX idx_inbox ON messages(to_name, read_at, created_at);
         CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL,
             updated_by TEXT NOT NULL);
         BEGIN;",
    )
    .unwrap();
    {
        let mut insert = conn
            .prepare(
                "INSERT INTO messages (from_session, from_name, to_name, body, tag, created_at, read_at, read_by)
                 VALUES ('s', ?1, ?2, ?3, 'status', ?4, ?5, ?6)",
            )
            .unwrap();
        let names = ["reader", "local", "online", "ci"];
        for i in 0..size {
            let created = format!("2026-01-01T00:00:00.{:06}+00:00", i % 1_000_000);
            let unread_tail = i + 50 >= size;
            let (from, to) = if unread_tail {
                ("local", "reader")
            } else if i % 10 == 0 {
                ("ci", "*")
            } else {
                (names[(i / 10) % 4], names[(i + 1) % 4])
            };
            let read = if unread_tail {
                None
            } else {
                Some(created.as_str())
            };
            let reader = read.map(|_| if to == "*" { "reader" } else { to });
            insert
                .execute(rusqlite::params![
                    from,
                    to,
                    format!("message {i} with a body of ordinary length"),
                    created,
                    read,
                    reader
                ])
                .unwrap();
        }
    }
    conn.execute_batch("COMMIT;").unwrap();
}

/// The argument by which the bench re-runs itself as the floor responder.
const FLOOR_MODE: &str = "--floor-responder";

/// The floor: answers each line that carries an `"id":` with a canned result under that id,
/// parsing nothing else (a notification gets no answer). The result is `{}`, or with `canned`
/// the JSON in that file (a real server's answer to the call being measured, so that the
/// client reads and parses the same bytes from both). Its round trip is the pipes, the client
/// and two process wake-ups, which every server pays; a call's p50 over this p50 is the
/// server's own per-call overhead.
fn floor_responder(canned: Option<&str>) {
    let result = canned.map_or_else(
        || b"{}".to_vec(),
        |path| std::fs::read(path).expect("the floor's canned result"),
    );
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut output = std::io::stdout().lock();
    let mut line = Vec::new();
    let mut reply = Vec::with_capacity(result.len() + 64);
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let Some(at) = line.windows(5).position(|w| w == b"\"id\":") else {
            continue;
        };
        let rest = &line[at + 5..];
        let end = rest
            .iter()
            .position(|&b| b == b',' || b == b'}')
            .unwrap_or(rest.len());
        reply.clear();
        reply.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        reply.extend_from_slice(&rest[..end]);
        reply.extend_from_slice(b",\"result\":");
        reply.extend_from_slice(&result);
        reply.extend_from_slice(b"}\n");
        if output
            .write_all(&reply)
            .and_then(|()| output.flush())
            .is_err()
        {
            return;
        }
    }
}

/// This bench binary run as the floor responder, answering `{}` or, with `canned`, the
/// result in that file.
fn floor_target(canned: Option<&Path>) -> Target {
    let mut command = vec![
        std::env::current_exe()
            .expect("the bench's own path")
            .to_string_lossy()
            .into_owned(),
        FLOOR_MODE.into(),
    ];
    command.extend(canned.map(|p| p.to_string_lossy().into_owned()));
    Target {
        label: "floor".into(),
        command,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == FLOOR_MODE) {
        return floor_responder(args.get(1).map(String::as_str));
    }
    let quick = args.iter().any(|a| a == "--quick");
    let only_hub = args.iter().any(|a| a == "--only-hub");
    // This build first, then any others given.
    let mut targets = vec![Target {
        label: format!("claude-c2c {} (this build)", env!("CARGO_PKG_VERSION")),
        command: vec![this_build().to_string_lossy().into_owned()],
    }];
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--server" {
            let spec = it.next().expect("--server LABEL=COMMAND");
            let (label, command) = spec.split_once('=').expect("--server LABEL=COMMAND");
            targets.push(Target {
                label: label.to_string(),
                command: command.split_whitespace().map(str::to_string).collect(),
            });
        }
    }
    if only_hub {
        // The hub rows are this build's only; the others would be columns of n/a.
        targets.truncate(1);
    }
    let columns: Vec<Column> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut column = measure(t, quick, only_hub);
            if i == 0 {
                measure_hub(quick, &mut column);
            }
            column
        })
        .collect();
    let mut table = format!(
        "| measure (p50 / p99 for calls) | {} |\n|---|",
        targets
            .iter()
            .map(|t| t.label.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    table.push_str(&"---|".repeat(targets.len()));
    table.push('\n');
    let rows: BTreeSet<&str> = columns.iter().flat_map(|c| c.keys().copied()).collect();
    for row in rows {
        let cells: Vec<&str> = columns
            .iter()
            .map(|c| c.get(row).map_or("n/a", String::as_str))
            .collect();
        table.push_str(&format!("| {} | {} |\n", &row[2..], cells.join(" | ")));
    }
    print!("{table}");
}
