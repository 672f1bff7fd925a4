//! A scripted stand-in for the Anthropic Messages API, so that the real Claude Code CLI can run
//! against loopback with no network and no model: a small HTTP/1.1 server on `127.0.0.1`, in a
//! background thread, that answers each main-loop request (one that offers tools) with the
//! next [`Step`] of a script, answers side requests (titles, summaries: no tools) with short
//! text, and records every request it gets so that a test can look at what Claude Code sent.
//! Answers are streamed as server-sent events when the request asks for `stream`, and plain
//! JSON messages otherwise; every response closes its connection.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The tool Claude Code offers for loading the schemas of deferred tools (MCP tools among them).
pub const TOOL_SEARCH: &str = "ToolSearch";

/// One scripted answer to a main-loop request.
#[derive(Debug, Clone)]
pub enum Step {
    /// The model says this text and ends its turn (`stop_reason` `end_turn`).
    Text(String),
    /// The model calls tool `name` with `input` (`stop_reason` `tool_use`). When the request
    /// does not offer `name` but offers [`TOOL_SEARCH`] (Claude Code defers MCP tools behind
    /// it), the stand-in first answers with `ToolSearch {"query": "select:NAME"}` and keeps this
    /// step for the next request.
    Tool {
        /// The tool's name as the request lists it, e.g. `mcp__c2c__send_message`.
        name: String,
        /// The arguments, a JSON object.
        input: Value,
    },
    /// Holds the answer to the next main-loop request back this long, or until the test calls
    /// [`Standin::release`], then answers it with the step after this one: keeps Claude Code
    /// waiting while a test acts from outside.
    Wait(Duration),
}

impl Step {
    /// A [`Step::Text`].
    pub fn text(text: &str) -> Step {
        Step::Text(text.to_string())
    }

    /// A [`Step::Tool`].
    pub fn tool(name: &str, input: Value) -> Step {
        Step::Tool {
            name: name.to_string(),
            input,
        }
    }
}

/// One request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The path with its query, e.g. `/v1/messages?beta=true`.
    pub path: String,
    /// The parsed JSON body (`null` when there was none or it was not JSON).
    pub body: Value,
    /// Whether it was a main-loop request (a Messages request offering tools).
    pub main: bool,
}

impl Request {
    /// The names of the tools the request offers.
    pub fn tool_names(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the system prompt or the messages contain `needle`, anywhere (as JSON text, so
    /// quotes and newlines in `needle` must be written as JSON escapes).
    pub fn mentions(&self, needle: &str) -> bool {
        self.body["system"].to_string().contains(needle)
            || self.body["messages"].to_string().contains(needle)
    }

    /// Every text the system prompt and the messages carry, with JSON escapes undone: text
    /// blocks, string contents and tool results, in order.
    pub fn texts(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_texts(&self.body["system"], &mut out);
        collect_texts(&self.body["messages"], &mut out);
        out
    }

    /// The `tool_use` blocks in the messages (the model's earlier calls), as JSON.
    pub fn tool_uses(&self) -> Vec<Value> {
        self.blocks("tool_use")
    }

    /// The `tool_result` blocks in the messages, as JSON.
    pub fn tool_results(&self) -> Vec<Value> {
        self.blocks("tool_result")
    }

    /// The content blocks of type `kind` in the messages.
    fn blocks(&self, kind: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for message in self.body["messages"].as_array().into_iter().flatten() {
            for block in message["content"].as_array().into_iter().flatten() {
                if block["type"] == kind {
                    out.push(block.clone());
                }
            }
        }
        out
    }
}

/// The texts of a `tool_result` block: its content when that is a string, else the text of
/// each of its text blocks.
pub fn result_texts(block: &Value) -> Vec<String> {
    match &block["content"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Pushes the strings found in `value`'s `text` and `content` fields (and plain strings) onto
/// `out`.
pub fn collect_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_texts(v, out)),
        Value::Object(map) => {
            for key in ["text", "content"] {
                if let Some(v) = map.get(key) {
                    collect_texts(v, out);
                }
            }
        }
        _ => {}
    }
}

/// What the server thread shares with the test.
struct Shared {
    script: VecDeque<Step>,
    requests: Vec<Request>,
    /// Set by [`Standin::release`]: held answers go out now.
    released: bool,
}

/// The running stand-in; stops accepting connections when dropped.
pub struct Standin {
    addr: SocketAddr,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    stop: Arc<AtomicBool>,
}

impl Standin {
    /// Starts a stand-in on a free loopback port that answers main-loop requests with
    /// `script`, in order, then with the text `done`.
    pub fn start(script: Vec<Step>) -> Standin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new((
            Mutex::new(Shared {
                script: script.into(),
                requests: Vec::new(),
                released: false,
            }),
            Condvar::new(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_shared, thread_stop) = (shared.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = thread_shared.clone();
                std::thread::spawn(move || {
                    if let Err(e) = serve(stream, &shared) {
                        eprintln!("[standin] connection failed: {e}");
                    }
                });
            }
        });
        Standin { addr, shared, stop }
    }

    /// The base URL for `ANTHROPIC_BASE_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.0.lock().unwrap().requests.clone()
    }

    /// The main-loop requests received so far.
    pub fn main_requests(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.main).collect()
    }

    /// The first request whose system prompt or messages contain `needle` (see
    /// [`Request::mentions`]).
    pub fn find(&self, needle: &str) -> Option<Request> {
        self.requests().into_iter().find(|r| r.mentions(needle))
    }

    /// Whether any request's system prompt or messages contain `needle`.
    pub fn mentioned(&self, needle: &str) -> bool {
        self.find(needle).is_some()
    }

    /// Waits until at least `n` main-loop requests have arrived; false if `limit` passed first.
    pub fn wait_for_main(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let (lock, arrived) = &*self.shared;
        let mut shared = lock.lock().unwrap();
        while shared.requests.iter().filter(|r| r.main).count() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            shared = arrived.wait_timeout(shared, left).unwrap().0;
        }
        true
    }

    /// One line per request so far (method, path, kind, offered tools, the end of the last
    /// message), for failure messages that stay readable.
    pub fn summary(&self) -> String {
        self.requests()
            .iter()
            .map(|r| {
                let last = r.body["messages"]
                    .as_array()
                    .and_then(|m| m.last())
                    .map(|m| m["content"].to_string())
                    .unwrap_or_default();
                let tail: String = last
                    .chars()
                    .rev()
                    .take(300)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                format!(
                    "{} {} {} tools={} last=...{tail}",
                    r.method,
                    r.path,
                    if r.main { "main" } else { "side" },
                    r.tool_names().len()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Lets the answers that [`Step::Wait`] holds back go out now, and any later ones at once.
    pub fn release(&self) {
        let (lock, changed) = &*self.shared;
        lock.lock().unwrap().released = true;
        changed.notify_all();
    }

    /// The steps not used yet.
    pub fn steps_left(&self) -> usize {
        self.shared.0.lock().unwrap().script.len()
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one request from `stream`, records it and answers it.
fn serve(stream: TcpStream, shared: &(Mutex<Shared>, Condvar)) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(()); // a connection opened and closed, e.g. the wake-up from drop
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = value.parse().unwrap_or(0);
            } else if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
    }
    let raw = if chunked {
        read_chunked(&mut reader)?
    } else {
        let mut raw = vec![0; length];
        reader.read_exact(&mut raw)?;
        raw
    };
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let bare = path.split('?').next().unwrap_or("");
    let mut out = stream;
    match (method.as_str(), bare) {
        ("POST", "/v1/messages") => messages(&mut out, shared, method, path, body),
        ("POST", "/v1/messages/count_tokens") => {
            record(shared, method, path, body, false);
            respond_json(&mut out, 200, &json!({ "input_tokens": 1000 }))
        }
        _ => {
            record(shared, method.clone(), path.clone(), body, false);
            let error = json!({
                "type": "error",
                "error": { "type": "not_found_error", "message": format!("{method} {path}: not here") }
            });
            respond_json(&mut out, 404, &error)
        }
    }
}

/// Reads a chunked request body.
fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let mut chunk = vec![0; size + 2]; // the data and its CRLF
        reader.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

/// Records a request and wakes whoever waits for requests.
fn record(
    shared: &(Mutex<Shared>, Condvar),
    method: String,
    path: String,
    body: Value,
    main: bool,
) {
    let (lock, arrived) = shared;
    lock.lock().unwrap().requests.push(Request {
        method,
        path,
        body,
        main,
    });
    arrived.notify_all();
}

/// Answers a Messages request: the next step for a main-loop request, short text otherwise.
fn messages(
    out: &mut TcpStream,
    shared: &(Mutex<Shared>, Condvar),
    method: String,
    path: String,
    body: Value,
) -> std::io::Result<()> {
    let request = Request {
        method,
        path,
        body,
        main: false,
    };
    let offered = request.tool_names();
    let main = !offered.is_empty();
    let (delay, step) = if main {
        next_step(&mut shared.0.lock().unwrap().script, &offered)
    } else {
        (Duration::ZERO, Step::text("ok"))
    };
    let stream = request.body["stream"] == true;
    let model = request.body["model"]
        .as_str()
        .unwrap_or("claude-standin")
        .to_string();
    eprintln!(
        "[standin] {} {}: {}",
        request.path,
        if main { "main" } else { "side" },
        describe(&step)
    );
    record(shared, request.method, request.path, request.body, main);
    hold(shared, delay);
    if stream {
        respond_events(out, &model, &step)
    } else {
        respond_json(out, 200, &message(&model, &step))
    }
}

/// Waits `delay`, or less if the test releases held answers.
fn hold(shared: &(Mutex<Shared>, Condvar), delay: Duration) {
    let deadline = Instant::now() + delay;
    let (lock, changed) = shared;
    let mut state = lock.lock().unwrap();
    while !state.released {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        state = changed.wait_timeout(state, left).unwrap().0;
    }
}

/// Takes the answer for a main-loop request offering `offered` tools off `script`: the delay
/// of any leading waits, and the step (a ToolSearch first when the step's tool is deferred).
fn next_step(script: &mut VecDeque<Step>, offered: &[String]) -> (Duration, Step) {
    let mut delay = Duration::ZERO;
    while let Some(Step::Wait(d)) = script.front() {
        delay += *d;
        script.pop_front();
    }
    let step = match script.front() {
        None => Step::text("done"),
        Some(Step::Tool { name, .. })
            if !offered.contains(name) && offered.iter().any(|t| t == TOOL_SEARCH) =>
        {
            Step::tool(TOOL_SEARCH, json!({ "query": format!("select:{name}") }))
        }
        Some(_) => script.pop_front().unwrap(),
    };
    (delay, step)
}

/// A one-line description of a step for the log.
fn describe(step: &Step) -> String {
    match step {
        Step::Text(text) => format!("text {text:?}"),
        Step::Tool { name, input } => format!("tool {name} {input}"),
        Step::Wait(d) => format!("wait {d:?}"),
    }
}

/// A fresh id for a message or a tool call.
fn next_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{prefix}_standin_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The content block and stop reason of a step.
fn block(step: &Step) -> (Value, &'static str) {
    match step {
        Step::Tool { name, input } => (
            json!({ "type": "tool_use", "id": next_id("toolu"), "name": name, "input": input }),
            "tool_use",
        ),
        Step::Text(text) => (json!({ "type": "text", "text": text }), "end_turn"),
        Step::Wait(_) => unreachable!("waits are taken off before answering"),
    }
}

/// The usage figures every answer reports.
fn usage() -> Value {
    json!({
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0
    })
}

/// A complete (non-streamed) message answering with `step`.
fn message(model: &str, step: &Step) -> Value {
    let (block, stop) = block(step);
    json!({
        "id": next_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block],
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": usage()
    })
}

/// The server-sent events of a streamed message answering with `step`.
fn events(model: &str, step: &Step) -> Vec<Value> {
    let (block, stop) = block(step);
    let (start, delta) = match step {
        Step::Tool { input, .. } => {
            let mut start = block.clone();
            start["input"] = json!({});
            let delta = json!({ "type": "input_json_delta", "partial_json": input.to_string() });
            (start, delta)
        }
        _ => (
            json!({ "type": "text", "text": "" }),
            json!({ "type": "text_delta", "text": block["text"] }),
        ),
    };
    vec![
        json!({
            "type": "message_start",
            "message": {
                "id": next_id("msg"), "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage()
            }
        }),
        json!({ "type": "content_block_start", "index": 0, "content_block": start }),
        json!({ "type": "content_block_delta", "index": 0, "delta": delta }),
        json!({ "type": "content_block_stop", "index": 0 }),
        json!({
            "type": "message_delta",
            "delta": { "stop_reason": stop, "stop_sequence": null },
            "usage": { "output_tokens": 5 }
        }),
        json!({ "type": "message_stop" }),
    ]
}

/// Writes a JSON response with its length, then closes.
fn respond_json(out: &mut TcpStream, status: u16, value: &Value) -> std::io::Result<()> {
    let body = value.to_string();
    let reason = if status == 200 { "OK" } else { "Not Found" };
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

/// Writes a streamed answer as server-sent events; closing the connection ends the body.
fn respond_events(out: &mut TcpStream, model: &str, step: &Step) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
         connection: close\r\n\r\n"
    )?;
    for event in events(model, step) {
        write!(
            out,
            "event: {}\ndata: {event}\n\n",
            event["type"].as_str().unwrap()
        )?;
        out.flush()?;
    }
    Ok(())
}
