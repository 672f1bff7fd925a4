//! The harness of the hub tests: a hub process (`serve --listen 127.0.0.1:0`) on a test's
//! database, whose address is read from the first line it prints; tokens made through the
//! command line; the JSON API over reqwest; and rmcp's streamable HTTP client, each tool result
//! of which is checked as [`super::Session::call`] checks those over stdio (one JSON object,
//! sent both as structuredContent and as one text block, matching the tool's outputSchema).

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{CALL_TIMEOUT, Collector, cli, command, schema};

/// Installs ring as rustls's crypto provider for this process, as the binary does: reqwest is
/// built without a default one.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A plain HTTP client (no proxy from the environment).
pub fn http_client() -> reqwest::Client {
    install_provider();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client")
}

/// A plain HTTP client that opens a new connection for every request: after a refusal that
/// left the request's body unread (413), the hub closes the connection without saying so in
/// the answer, and a pooled connection would fail the next request.
pub fn unpooled_client() -> reqwest::Client {
    install_provider();
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a reqwest client")
}

/// An HTTPS client that trusts only the certificate `cert_pem`.
pub fn https_client(cert_pem: &str) -> reqwest::Client {
    install_provider();
    let cert = reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("a PEM certificate");
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([cert])
        .build()
        .expect("a reqwest client")
}

/// Makes a token for `room` (bound to `name` if given) on `db`; returns its secret, checking
/// its form.
pub fn token(db: &Path, room: &str, name: Option<&str>) -> String {
    let stdout = String::from_utf8(token_create(db, room, name, false).stdout).unwrap();
    let secret = stdout.trim_end_matches('\n');
    assert!(is_secret(secret), "not a secret: {stdout:?}");
    secret.to_string()
}

/// The same through `token create --json`: the token's id and secret.
pub fn token_with_id(db: &Path, room: &str, name: Option<&str>) -> (i64, String) {
    let out = token_create(db, room, name, true);
    let made: Value = serde_json::from_slice(&out.stdout).expect("token create --json");
    let secret = made["token"].as_str().expect("token").to_string();
    assert!(is_secret(&secret), "not a secret: {made}");
    (made["id"].as_i64().expect("id"), secret)
}

// Runs `token create` and checks that it succeeded.
fn token_create(db: &Path, room: &str, name: Option<&str>, json: bool) -> std::process::Output {
    let mut args = vec!["token", "create", "--room", room];
    if let Some(name) = name {
        args.extend(["--name", name]);
    }
    if json {
        args.push("--json");
    }
    let out = cli(db, &args);
    assert!(
        out.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether `text` has the form of a token's secret: `c2c_` and 64 lowercase hex digits.
pub fn is_secret(text: &str) -> bool {
    text.strip_prefix("c2c_").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A long-running claude-c2c process that prints its address first on stdout: its stderr is
/// echoed (each line prefixed by its tag) and kept, and its first line of stdout read.
pub struct Announcing {
    /// The process.
    pub child: tokio::process::Child,
    /// Its stdout, kept open: the process must never write to a closed pipe.
    pub stdout: BufReader<tokio::process::ChildStdout>,
    /// The first line it printed, without the line end; empty if none came in time.
    pub first: String,
    /// Its stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Announcing {
    /// Starts `cmd` with piped stdout and stderr and reads its first line (for up to
    /// [`CALL_TIMEOUT`]).
    pub async fn start(mut cmd: tokio::process::Command, tag: &'static str) -> Announcing {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn the {tag}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let into = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[{tag}] {line}");
                let mut log = into.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        let _ = tokio::time::timeout(CALL_TIMEOUT, stdout.read_line(&mut first)).await;
        let first = first.trim_end_matches(['\n', '\r']).to_string();
        Announcing {
            child,
            stdout,
            first,
            stderr: log,
        }
    }
}

/// A running hub process; killed when dropped.
pub struct Hub {
    child: tokio::process::Child,
    // Kept open: the hub must never write to a closed pipe.
    _stdout: BufReader<tokio::process::ChildStdout>,
    /// The MCP endpoint, as the hub printed it (`http://127.0.0.1:PORT/mcp`).
    pub url: String,
    /// The same without `/mcp`.
    pub base: String,
    /// The port listened on.
    pub port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Hub {
    /// Starts a hub on `db` on `127.0.0.1:0`, with the global options `global` (before `serve`)
    /// and the extra options `extra` (after it).
    pub async fn start(db: &Path, global: &[&str], extra: &[&str]) -> Hub {
        Hub::start_on(db, "127.0.0.1:0", global, extra).await
    }

    /// The same, listening on `listen`.
    pub async fn start_on(db: &Path, listen: &str, global: &[&str], extra: &[&str]) -> Hub {
        let mut cmd = command();
        cmd.arg("--db")
            .arg(db)
            .args(global)
            .args(["serve", "--listen", listen])
            .args(extra);
        let Announcing {
            mut child,
            stdout,
            first,
            stderr: log,
        } = Announcing::start(cmd, "hub").await;
        let url = first.trim().to_string();
        if !url.ends_with("/mcp") {
            let status = child.try_wait();
            panic!(
                "the hub printed no address ({url:?}, exit {status:?}); stderr: {}",
                log.lock().unwrap()
            );
        }
        let base = url.trim_end_matches("/mcp").to_string();
        let port = base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url}"));
        Hub {
            child,
            _stdout: stdout,
            url,
            base,
            port,
            stderr: log,
        }
    }

    /// What the hub has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (up to [`CALL_TIMEOUT`]) until the hub's stderr contains `needle`; returns it all.
    pub async fn wait_stderr(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let text = self.stderr();
            if text.contains(needle) {
                return text;
            }
            assert!(
                start.elapsed() < CALL_TIMEOUT,
                "the hub never wrote {needle:?}; stderr: {text}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The hub's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The JSON API of this hub with `secret`.
    pub fn api(&self, secret: &str) -> Api {
        Api {
            http: http_client(),
            base: self.base.clone(),
            secret: secret.to_string(),
        }
    }

    /// An MCP session of this hub with `secret`, sending the headers `headers` (e.g.
    /// `x-c2c-name`); fails the test if it cannot be opened.
    pub async fn mcp(&self, secret: &str, headers: &[(&str, &str)]) -> McpHttp {
        McpHttp::connect(&self.url, secret, headers)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Its status code.
    pub status: u16,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body, as text.
    pub body: String,
}

impl Reply {
    /// Reads `response` whole.
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// The body as JSON, or a failure saying what it was.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {:?}", self.status, self.body))
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Fails the test unless this is `status` with a JSON body `{"error": "..."}`; returns the
    /// error's text.
    pub fn expect_error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{self:?}");
        assert!(
            self.header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "not JSON: {self:?}"
        );
        let error = self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error text: {self:?}"))
            .to_string();
        assert!(!error.is_empty(), "{self:?}");
        error
    }
}

/// Sends `request` (up to [`CALL_TIMEOUT`]) and reads the answer whole; a failure to get one
/// fails the test.
pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = tokio::time::timeout(CALL_TIMEOUT, request.send())
        .await
        .unwrap_or_else(|_| panic!("no answer within {CALL_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("no answer: {e:?}"));
    Reply::read(response).await
}

/// The `initialize` request an MCP client sends first.
pub fn initialize_body() -> String {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "hub-test", "version": "0"}
        }
    })
    .to_string()
}

/// A request builder for `POST /mcp` with the headers an MCP client sends (`Accept` both
/// JSON and SSE, JSON content).
pub fn mcp_post(
    http: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    http.post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body)
}

/// The JSON API of a hub, with one token.
#[derive(Clone)]
pub struct Api {
    /// The client.
    pub http: reqwest::Client,
    /// The hub's base URL.
    pub base: String,
    /// The token's secret.
    pub secret: String,
}

impl Api {
    /// `GET path`, with the token.
    pub async fn get(&self, path: &str) -> Reply {
        send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.secret),
        )
        .await
    }

    /// `POST path` with the JSON `body`, with the token.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.secret)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    /// `GET /v1/overview`, which must answer 200.
    pub async fn overview(&self) -> Value {
        let reply = self.get("/v1/overview").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.json()
    }

    /// `POST /v1/call` of `tool` with `args`, acting as `act_as` if given: the result of a
    /// success (checked against the tool's outputSchema) or the text of a tool's failure; any
    /// status but 200 fails the test.
    pub async fn call(
        &self,
        tool: &str,
        act_as: Option<&str>,
        args: Value,
    ) -> Result<Value, String> {
        let mut request = json!({ "tool": tool, "arguments": args });
        if let Some(name) = act_as {
            request["as"] = json!(name);
        }
        let reply = self.post("/v1/call", &request).await;
        assert_eq!(reply.status, 200, "{tool}: {reply:?}");
        let answer = reply.json();
        let object = answer.as_object().expect("an object");
        assert_eq!(object.len(), 1, "{tool}: one of result or error: {answer}");
        if let Some(error) = answer.get("error") {
            let text = error.as_str().expect("error text").to_string();
            assert!(!text.is_empty(), "{tool}: empty error");
            return Err(text);
        }
        let result = answer
            .get("result")
            .unwrap_or_else(|| panic!("{tool}: neither result nor error: {answer}"))
            .clone();
        schema::check(tool, &result);
        Ok(result)
    }

    /// The same, expecting success.
    pub async fn ok(&self, tool: &str, act_as: Option<&str>, args: Value) -> Value {
        let shown = args.to_string();
        self.call(tool, act_as, args)
            .await
            .unwrap_or_else(|e| panic!("{tool}({shown}) as {act_as:?} failed: {e}"))
    }
}

/// An MCP session over streamable HTTP (rmcp's client).
pub type McpHttp = super::Session;

impl McpHttp {
    /// Opens a session at `url` with `secret` and the extra `headers`, with rmcp's own HTTP
    /// client; the error says why it could not.
    pub async fn connect(
        url: &str,
        secret: &str,
        headers: &[(&str, &str)],
    ) -> Result<McpHttp, String> {
        install_provider();
        let transport = StreamableHttpClientTransport::from_config(config(url, secret, headers));
        McpHttp::serve(transport).await
    }

    /// The same over `http`, a client of the test's own (e.g. one that trusts a test CA).
    pub async fn connect_with(
        http: reqwest::Client,
        url: &str,
        secret: &str,
        headers: &[(&str, &str)],
    ) -> Result<McpHttp, String> {
        let transport =
            StreamableHttpClientTransport::with_client(http, config(url, secret, headers));
        McpHttp::serve(transport).await
    }

    async fn serve(
        transport: StreamableHttpClientTransport<reqwest::Client>,
    ) -> Result<McpHttp, String> {
        let collector = Collector::default();
        match tokio::time::timeout(CALL_TIMEOUT, collector.clone().serve(transport)).await {
            Ok(Ok(client)) => Ok(McpHttp { client, collector }),
            Ok(Err(e)) => Err(format!("MCP initialisation failed: {e}")),
            Err(_) => Err(format!(
                "MCP initialisation timed out after {CALL_TIMEOUT:?}"
            )),
        }
    }

    /// Ends the session (rmcp sends DELETE for it).
    pub async fn close(self) {
        let _ = tokio::time::timeout(CALL_TIMEOUT, self.client.cancel()).await;
    }
}

fn config(
    url: &str,
    secret: &str,
    headers: &[(&str, &str)],
) -> StreamableHttpClientTransportConfig {
    let headers: HashMap<HeaderName, HeaderValue> = headers
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect();
    StreamableHttpClientTransportConfig::with_uri(url.to_string())
        .auth_header(secret.to_string())
        .custom_headers(headers)
}

/// Opens the database at `path` read-only, for checks of what the hub stored.
pub fn read_db(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the database")
}
