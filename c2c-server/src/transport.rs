//! stdio with a guard in front of rmcp: each line from the client is checked before rmcp sees
//! it, so that input rmcp would drop in silence (bytes that are not UTF-8, text that is not
//! JSON) or misreport (a `tools/call` whose params have the wrong shape) gets a JSON-RPC error
//! that says what was wrong. Good lines pass through untouched. One writer task owns stdout,
//! so these replies and rmcp's never interleave within a line.

use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The longest line read whole; longer ones are answered with an error and skipped.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// The pipe ends rmcp serves on, and the task that writes to stdout (await it after the
/// service ends, so that the last responses are flushed).
pub struct Guarded {
    /// What rmcp reads client messages from.
    pub reader: DuplexStream,
    /// What rmcp writes its messages to.
    pub writer: DuplexStream,
    /// Copies rmcp's output and the guard's replies to stdout.
    pub output: JoinHandle<()>,
}

/// Guards the process's stdin and stdout.
pub fn stdio() -> Guarded {
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
pub fn guard<I, O>(input: I, output: O) -> Guarded
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin + Send + 'static,
{
    let (to_rmcp, reader) = tokio::io::duplex(1 << 16);
    let (writer, from_rmcp) = tokio::io::duplex(1 << 16);
    let (replies, replies_rx) = mpsc::unbounded_channel();
    tokio::spawn(read_input(input, to_rmcp, replies));
    let output = tokio::spawn(write_output(from_rmcp, replies_rx, output));
    Guarded {
        reader,
        writer,
        output,
    }
}

async fn read_input<I: AsyncRead + Unpin>(
    input: I,
    mut to_rmcp: DuplexStream,
    replies: mpsc::UnboundedSender<String>,
) {
    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    let mut lifecycle = Lifecycle::default();
    loop {
        line.clear();
        let read = (&mut input)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.len() > MAX_LINE_BYTES && !line.ends_with(b"\n") {
            let _ = replies.send(error(
                Value::Null,
                -32700,
                format!("Parse error: a message longer than {MAX_LINE_BYTES} bytes was skipped"),
            ));
            // Skip the rest of the line.
            let mut rest = Vec::new();
            if input.read_until(b'\n', &mut rest).await.is_err() {
                break;
            }
            continue;
        }
        match check(&line, &mut lifecycle) {
            Verdict::Skip => {}
            Verdict::Forward => {
                if to_rmcp.write_all(&line).await.is_err() {
                    break;
                }
                if !line.ends_with(b"\n") && to_rmcp.write_all(b"\n").await.is_err() {
                    break;
                }
            }
            Verdict::Reply(reply) => {
                let _ = replies.send(reply);
            }
        }
    }
    let _ = to_rmcp.shutdown().await;
}

async fn write_output<O: AsyncWrite + Unpin>(
    from_rmcp: DuplexStream,
    mut replies: mpsc::UnboundedReceiver<String>,
    mut output: O,
) {
    let mut from_rmcp = BufReader::new(from_rmcp);
    let mut line = Vec::new();
    let mut replies_open = true;
    loop {
        line.clear();
        tokio::select! {
            read = from_rmcp.read_until(b'\n', &mut line) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                        return;
                    }
                }
            },
            reply = replies.recv(), if replies_open => match reply {
                Some(reply) => {
                    let text = reply + "\n";
                    if output.write_all(text.as_bytes()).await.is_err() || output.flush().await.is_err() {
                        return;
                    }
                }
                None => replies_open = false,
            },
        }
    }
    // rmcp has finished: pass on any replies still queued.
    while let Ok(reply) = replies.try_recv() {
        let _ = output.write_all((reply + "\n").as_bytes()).await;
    }
    let _ = output.flush().await;
}

/// What to do with one line from the client.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Pass it to rmcp.
    Forward,
    /// Ignore it (a blank line).
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
    Verdict::Forward
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

    #[test]
    fn forwards_good_lines_and_skips_blank_ones() {
        assert_eq!(
            checked(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Verdict::Forward
        );
        assert_eq!(
            checked(b"{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":1}\n"),
            Verdict::Forward
        );
        assert_eq!(checked(b"  \n"), Verdict::Skip);
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
            assert_eq!(check(line, &mut fresh), Verdict::Forward);
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
