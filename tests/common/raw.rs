//! A JSON-RPC client over a server process's raw stdio pipes, for the tests that go where an
//! MCP client library will not: writing bytes that are not valid requests, or killing the
//! server in the middle of a call. Lines the server writes are read on a thread of their own,
//! so every wait for a reply is bounded and a dead server reads as `None`, never a hang.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The longest a reply is waited for.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A server process and the two ends of its pipes.
pub struct Raw {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: i64,
}

impl Raw {
    /// Spawns `cmd` (a `claude-c2c` command; its stderr is discarded) without a handshake.
    pub fn spawn(mut cmd: Command) -> Raw {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let reader = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Raw {
            stdin: child.stdin.take(),
            child,
            lines,
            next_id: 1,
        }
    }

    /// Spawns `cmd` and completes the MCP handshake.
    pub fn start(cmd: Command) -> Raw {
        let mut raw = Raw::spawn(cmd);
        raw.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}),
        )
        .expect("initialize");
        raw.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .expect("initialized");
        raw
    }

    /// The process.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Writes `bytes` and a newline; `None` if the server has closed its input.
    pub fn send(&mut self, bytes: &[u8]) -> Option<()> {
        let stdin = self.stdin.as_mut()?;
        stdin.write_all(bytes).ok()?;
        stdin.write_all(b"\n").ok()?;
        stdin.flush().ok()
    }

    /// Closes the server's input and waits for it to exit.
    pub fn finish(mut self) -> ExitStatus {
        drop(self.stdin.take());
        self.child.wait().unwrap()
    }

    /// The next line the server writes, as JSON (failing the test if it is not JSON); `None`
    /// if the server ended or wrote nothing for `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<Value> {
        let line = self.lines.recv_timeout(timeout).ok()?;
        Some(
            serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!("the server wrote a line that is not JSON ({e}): {line}")
            }),
        )
    }

    /// Sends a request and waits for its reply (skipping other lines); `None` if the server
    /// died or did not answer within [`REPLY_TIMEOUT`].
    pub fn request(&mut self, method: &str, params: Value) -> Option<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(line.to_string().as_bytes())?;
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            let reply = self.next(deadline.saturating_duration_since(Instant::now()))?;
            if reply["id"] == id {
                return Some(reply);
            }
        }
    }

    /// Calls a tool: `Some(Ok(structuredContent))` (checked against the tool's outputSchema),
    /// `Some(Err(text))` for a tool error or, saying so, a JSON-RPC error; `None` if the server
    /// died or did not answer.
    pub fn call(&mut self, tool: &str, args: Value) -> Option<Result<Value, String>> {
        let reply = self.request("tools/call", json!({"name": tool, "arguments": args}))?;
        if let Some(error) = reply.get("error") {
            return Some(Err(format!("JSON-RPC error, not a tool result: {error}")));
        }
        let result = &reply["result"];
        if result["isError"] == true {
            return Some(Err(result["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string()));
        }
        let structured = result["structuredContent"].clone();
        assert!(
            structured.is_object(),
            "{tool}: a success without a structuredContent object: {reply}"
        );
        super::schema::check(tool, &structured);
        Some(Ok(structured))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
