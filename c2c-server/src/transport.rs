//! stdio with a guard in front of rmcp, as the rmcp transport the server runs on: each line
//! from the client is checked before rmcp sees it, so that input rmcp would drop in silence
//! (bytes that are not UTF-8, text that is not JSON) or misreport (a `tools/call` whose params
//! have the wrong shape) gets a JSON-RPC error that says what was wrong. A good line is parsed
//! once, into the message rmcp handles. Every line out, rmcp's messages and the guard's
//! replies, is queued whole and written in order, so none interleave within a line.

use std::future::Future;
use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::model::{CallToolRequest, ClientRequest, ErrorData, JsonRpcMessage, JsonRpcRequest};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

/// The longest line read whole; longer ones are answered with an error and skipped.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// The guarded stdio transport rmcp serves on (see [`stdio`] and [`guard`]).
pub struct Guarded<I> {
    input: BufReader<I>,
    // The line being read; it survives a `receive` that rmcp drops half-way, and is cleared
    // once handled.
    line: Vec<u8>,
    // Skipping the rest of a line that was too long.
    skipping: bool,
    lifecycle: Lifecycle,
    output: Arc<Output>,
    _closed: oneshot::Sender<()>,
}

/// Resolves once the transport is gone, its last lines written (or given up on): await it
/// after the service ends, so that the last responses reach the client.
pub type Closed = oneshot::Receiver<()>;

/// Guards the process's stdin and stdout.
pub fn stdio() -> (Guarded<impl AsyncRead + Unpin + Send>, Closed) {
    guard(input(), output())
}

// tokio's `stdin()` and `stdout()` run every read and write on a thread of the blocking pool,
// a hand-off there and back per message. On Unix a pipe (which is how an MCP client starts
// its servers) is read and written on the runtime's own reactor instead, made non-blocking;
// anything else (a terminal, a file, a socket) takes the blocking pool. The two ends are
// chosen apart, so that one end's fallback never meets a descriptor the other made
// non-blocking: the duplicate shares the file's flags with fd 0 or 1.
#[cfg(unix)]
fn input() -> Box<dyn AsyncRead + Unpin + Send> {
    use std::os::fd::AsFd;
    let pipe = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(tokio::net::unix::pipe::Receiver::from_owned_fd);
    match pipe {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdin()),
    }
}

#[cfg(unix)]
fn output() -> Box<dyn AsyncWrite + Unpin + Send> {
    use std::os::fd::AsFd;
    let pipe = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(tokio::net::unix::pipe::Sender::from_owned_fd);
    match pipe {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdout()),
    }
}

// Windows: an anonymous pipe cannot be waited on by the reactor (IOCP needs one opened for
// overlapped I/O), so the blocking pool reads and writes.
#[cfg(not(unix))]
fn input() -> tokio::io::Stdin {
    tokio::io::stdin()
}

#[cfg(not(unix))]
fn output() -> tokio::io::Stdout {
    tokio::io::stdout()
}

/// Guards any input and output stream (for tests).
pub fn guard<I, O>(input: I, output: O) -> (Guarded<I>, Closed)
where
    I: AsyncRead + Unpin + Send,
    O: AsyncWrite + Unpin + Send + 'static,
{
    let (closed_tx, closed) = oneshot::channel();
    let output = Arc::new(Output {
        queue: Mutex::new(Vec::new()),
        writer: tokio::sync::Mutex::new(Writer {
            sink: Box::new(output),
            pending: Vec::new(),
        }),
    });
    let guarded = Guarded {
        input: BufReader::new(input),
        line: Vec::new(),
        skipping: false,
        lifecycle: Lifecycle::default(),
        output,
        _closed: closed_tx,
    };
    (guarded, closed)
}

/// Where lines out wait to be written: each is queued whole, at once, when it is sent, so
/// the order of sending is the order on the wire; whoever flushes writes all that waits.
struct Output {
    queue: Mutex<Vec<u8>>,
    writer: tokio::sync::Mutex<Writer>,
}

struct Writer {
    sink: Box<dyn AsyncWrite + Unpin + Send>,
    // Taken from the queue and not yet written: a flush that is dropped half-way leaves the
    // rest here for the next one.
    pending: Vec<u8>,
}

impl Output {
    fn queue(&self, line: &[u8]) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.extend_from_slice(line);
        queue.push(b'\n');
    }

    async fn flush(&self) -> std::io::Result<()> {
        let mut writer = self.writer.lock().await;
        let Writer { sink, pending } = &mut *writer;
        loop {
            if pending.is_empty() {
                let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                if queue.is_empty() {
                    break;
                }
                std::mem::swap(pending, &mut *queue);
            }
            let written = sink.write(pending).await?;
            if written == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            pending.drain(..written);
        }
        sink.flush().await
    }

    // Writes `line` from a task of its own, so that nothing waits for it.
    fn reply(self: &Arc<Self>, line: &str) {
        self.queue(line.as_bytes());
        let output = self.clone();
        tokio::spawn(async move {
            let _ = output.flush().await;
        });
    }
}

impl<I: AsyncRead + Unpin + Send> Transport<RoleServer> for Guarded<I> {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let queued = serde_json::to_vec(&item).map(|line| self.output.queue(&line));
        let output = self.output.clone();
        async move {
            queued?;
            output.flush().await
        }
    }

    // Cancel-safe, as rmcp needs (it polls this in a `select!` and may drop it): a line read
    // in part stays in `self.line`, and nothing is awaited between taking a line and
    // answering it.
    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            if self.skipping {
                let available = self.input.fill_buf().await.ok()?;
                if available.is_empty() {
                    return None;
                }
                let (used, done) = match available.iter().position(|&b| b == b'\n') {
                    Some(at) => (at + 1, true),
                    None => (available.len(), false),
                };
                self.input.consume(used);
                self.skipping = !done;
                continue;
            }
            let room = (MAX_LINE_BYTES + 1).saturating_sub(self.line.len()) as u64;
            let read = (&mut self.input)
                .take(room)
                .read_until(b'\n', &mut self.line)
                .await;
            match read {
                Ok(0) if self.line.is_empty() => return None,
                Err(_) => return None,
                Ok(_) => {}
            }
            if self.line.len() > MAX_LINE_BYTES && !self.line.ends_with(b"\n") {
                self.line.clear();
                self.skipping = true;
                self.output.reply(&error(
                    Value::Null,
                    -32700,
                    format!(
                        "Parse error: a message longer than {MAX_LINE_BYTES} bytes was skipped"
                    ),
                ));
                continue;
            }
            let verdict = check(&self.line, &mut self.lifecycle);
            self.line.clear();
            match verdict {
                Verdict::Forward(message) => return Some(*message),
                Verdict::Skip => {}
                Verdict::Reply(reply) => self.output.reply(&reply),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.output.flush().await
    }
}

/// What to do with one line from the client.
#[derive(Debug)]
enum Verdict {
    /// Pass this message, parsed from it, to rmcp.
    Forward(Box<RxJsonRpcMessage<RoleServer>>),
    /// Ignore it (a blank line, or a line rmcp ignores).
    Skip,
    /// Answer it with this JSON-RPC error instead.
    Reply(String),
}

fn error(id: Value, code: i64, message: String) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

/// What the guard has seen of the MCP lifecycle on this connection.
#[derive(Debug, Default)]
struct Lifecycle {
    /// An `initialize` request has come.
    initialize_seen: bool,
}

// The per-request metadata by which a client of a session-less protocol (2026 and later)
// stands in for `initialize`; rmcp answers such requests itself.
const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

fn check(line: &[u8], lifecycle: &mut Lifecycle) -> Verdict {
    let Ok(text) = std::str::from_utf8(line) else {
        return Verdict::Reply(error(
            Value::Null,
            -32700,
            "Parse error: the message is not valid UTF-8".into(),
        ));
    };
    if text.trim().is_empty() {
        return Verdict::Skip;
    }
    // The usual line, once the handshake is done, is parsed once: straight into rmcp's
    // message. Any line that parses so would also pass every check below, except a
    // `tools/call` that rmcp could only take as a request of some unknown kind (its params
    // have the wrong shape): that one, and every line that does not parse, is checked in full.
    if lifecycle.initialize_seen {
        if let Some(message) = tool_call(text) {
            return Verdict::Forward(Box::new(message));
        }
        if let Ok(message) = serde_json::from_str::<RxJsonRpcMessage<RoleServer>>(text)
            && !is_misshapen_call(&message)
        {
            return Verdict::Forward(Box::new(message));
        }
    }
    let message: Value = match serde_json::from_str(text) {
        Ok(message) => message,
        Err(e) => {
            return Verdict::Reply(error(Value::Null, -32700, format!("Parse error: {e}")));
        }
    };
    if message["method"] == "initialize" {
        lifecycle.initialize_seen = true;
    } else if !lifecycle.initialize_seen
        && message.get("id").is_some()
        && message["method"].is_string()
        && message["method"] != "ping"
        && message["params"]["_meta"][PROTOCOL_VERSION_META].is_null()
    {
        // rmcp would answer with the internals of the session-less protocol ("request _meta
        // is missing ..."); the usual cause is a client that skipped the handshake.
        return Verdict::Reply(error(
            message["id"].clone(),
            -32600,
            format!(
                "Invalid Request: `{}` came before `initialize`: an MCP client must first send \
                 initialize (then notifications/initialized), and only then other requests",
                message["method"].as_str().unwrap_or_default()
            ),
        ));
    }
    // rmcp reports a tools/call with malformed params as "method not found": say what is wrong.
    if message["method"] == "tools/call" && message.get("id").is_some() {
        let params = &message["params"];
        let problem = if !params.is_object() {
            Some("params must be an object: {\"name\": <tool>, \"arguments\": {..}}")
        } else if !params["name"].is_string() {
            Some("params.name must be the tool's name, a string")
        } else if !(params["arguments"].is_object() || params["arguments"].is_null()) {
            Some("params.arguments must be an object of the tool's arguments")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Verdict::Reply(error(
                message["id"].clone(),
                -32602,
                format!("Invalid params: {problem}"),
            ));
        }
    }
    parse(text)
}

// A `tools/call` request, parsed as rmcp parses it but taken as one at once: rmcp tries each
// kind of request it knows in turn, and the thirteen it tries before `tools/call` each build an
// error message to throw away, a third of the cost of a small call. A line that parses so and
// has no member named `result` or `error` (which would make it no request to rmcp) is the same
// message to rmcp; any other line, and one with `\u` escapes (which could spell those names),
// takes the usual path.
fn tool_call(text: &str) -> Option<RxJsonRpcMessage<RoleServer>> {
    if !text.contains("\"tools/call\"")
        || text.contains("\"result\"")
        || text.contains("\"error\"")
        || text.contains("\\u")
    {
        return None;
    }
    let call: JsonRpcRequest<CallToolRequest> = serde_json::from_str(text).ok()?;
    Some(JsonRpcMessage::request(
        ClientRequest::CallToolRequest(call.request),
        call.id,
    ))
}

// A `tools/call` request that rmcp parsed as a request of unknown kind.
fn is_misshapen_call(message: &RxJsonRpcMessage<RoleServer>) -> bool {
    matches!(message, JsonRpcMessage::Request(r)
        if matches!(&r.request, ClientRequest::CustomRequest(c) if c.method == "tools/call"))
}

// What rmcp's own stdio transport makes of a line: its message; nothing for a notification it
// ignores (one outside MCP) or for text that is not JSON; for JSON of another shape, an
// "Invalid request" error without an id. Its own decoder decides, so that the rules stay rmcp's.
fn parse(text: &str) -> Verdict {
    use tokio_util::codec::Decoder;
    let mut codec =
        rmcp::transport::async_rw::JsonRpcMessageCodec::<RxJsonRpcMessage<RoleServer>>::default();
    let mut buffer = tokio_util::bytes::BytesMut::from(text.trim_end_matches('\n'));
    buffer.extend_from_slice(b"\n");
    match codec.decode(&mut buffer) {
        Ok(Some(message)) => Verdict::Forward(Box::new(message)),
        Ok(None) => Verdict::Skip,
        Err(rmcp::transport::async_rw::JsonRpcMessageCodecError::Serde(e))
            if matches!(
                e.classify(),
                serde_json::error::Category::Data | serde_json::error::Category::Io
            ) =>
        {
            tracing::debug!("protocol error on incoming message: {e}");
            let invalid = TxJsonRpcMessage::<RoleServer>::error(
                ErrorData::invalid_request("Invalid request", None),
                None,
            );
            match serde_json::to_string(&invalid) {
                Ok(reply) => Verdict::Reply(reply),
                Err(_) => Verdict::Skip,
            }
        }
        Err(e) => {
            tracing::debug!("ignoring unparsable incoming message: {e}");
            Verdict::Skip
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Checks `line` on a connection that has been initialized.
    fn checked(line: &[u8]) -> Verdict {
        check(
            line,
            &mut Lifecycle {
                initialize_seen: true,
            },
        )
    }

    fn reply(line: &[u8]) -> Value {
        match checked(line) {
            Verdict::Reply(text) => serde_json::from_str(&text).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    fn forwarded(verdict: Verdict) -> bool {
        matches!(verdict, Verdict::Forward(_))
    }

    #[test]
    fn forwards_good_lines_and_skips_blank_ones() {
        assert!(forwarded(checked(
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#
        )));
        assert!(forwarded(checked(
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"inbox","arguments":{}}}"#
        )));
        assert!(matches!(checked(b"  \n"), Verdict::Skip));
    }

    // A tools/call request taken at once is the message rmcp's own parse makes of it; a line
    // that is not one, or only looks like one, is left to that parse.
    #[test]
    fn a_tool_call_taken_at_once_is_what_rmcp_makes_of_it() {
        let calls = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"inbox","arguments":{}}}"#,
            r#"{"id":"x-2","params":{"arguments":{"to":"b","body":"a \"b\" é"},"name":"send_message"},"method":"tools/call","jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"inbox","_meta":{"progressToken":"p"}}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"inbox","arguments":null},"extra":[1]}"#,
        ];
        for text in calls {
            let fast = tool_call(text).unwrap_or_else(|| panic!("not taken at once: {text}"));
            let full: RxJsonRpcMessage<RoleServer> = serde_json::from_str(text).unwrap();
            assert_eq!(
                serde_json::to_string(&fast).unwrap(),
                serde_json::to_string(&full).unwrap()
            );
            assert_eq!(format!("{fast:?}"), format!("{full:?}"));
        }
        for text in [
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"inbox"},"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"inbox"},"\u0065rror":{}}"#,
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":["inbox",{}]}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"inbox"}}"#,
            r#"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#,
        ] {
            assert!(tool_call(text).is_none(), "taken at once: {text}");
        }
    }

    // A line that passes the guard but that rmcp cannot take gets what rmcp's own transport
    // gave it: an "Invalid request" error for JSON of another shape, silence for a
    // notification outside MCP.
    #[test]
    fn lines_rmcp_cannot_take_are_treated_as_rmcp_treats_them() {
        for line in [
            &b"[1,2,3]"[..],
            // A notification has no id, so the guard lets malformed params pass.
            b"{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":1}\n",
        ] {
            let Verdict::Reply(text) = checked(line) else {
                panic!("{} was not answered", String::from_utf8_lossy(line));
            };
            let r: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                (r["id"].is_null(), r["error"]["code"].as_i64()),
                (true, Some(-32600))
            );
        }
        assert!(matches!(
            checked(br#"{"jsonrpc":"2.0","method":"$/progress","params":[1]}"#),
            Verdict::Skip
        ));
    }

    #[test]
    fn requests_before_initialize_are_told_to_initialize() {
        let mut fresh = Lifecycle::default();
        let Verdict::Reply(text) = check(
            br#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#,
            &mut fresh,
        ) else {
            panic!("tools/list before initialize was forwarded");
        };
        let r: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (r["id"].as_i64(), r["error"]["code"].as_i64()),
            (Some(4), Some(-32600))
        );
        let message = r["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("`tools/list` came before `initialize`"),
            "{message}"
        );
        // Pings, notifications and session-less requests carrying their protocol version
        // pass, and so does everything once initialize has come.
        for line in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#[..],
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
            br#"{"jsonrpc":"2.0","id":3,"method":"initialize","params":{}}"#,
            br#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#,
        ] {
            assert!(forwarded(check(line, &mut fresh)), "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn answers_what_rmcp_would_drop_or_misreport() {
        let r = reply(b"\xff\xfe{}");
        assert_eq!(
            (r["error"]["code"].as_i64(), r["id"].is_null()),
            (Some(-32700), true)
        );
        let r = reply(b"{not json");
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Parse error: ")
        );
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(reply(deep.as_bytes())["error"]["code"], -32700);
        let r = reply(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"inbox","arguments":"x"}}"#);
        assert_eq!(
            (r["id"].as_i64(), r["error"]["code"].as_i64()),
            (Some(7), Some(-32602))
        );
        let r = reply(br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{}}"#);
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("params.name")
        );
    }
}
