//! The harness of the page tests (`tests/web.rs`): the `claude-c2c ui` process, whose address
//! (with its key) is read from the first line it prints; a plain HTTP visitor of a page's
//! address; and a headless Chromium driven through chromedriver with fantoccini.
//! chromedriver is started on a free port of its own, in a process group of its own, and
//! killed with every browser it started when the test ends, passed or not.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use tokio::io::BufReader;

use super::command;
use super::hub::{Announcing, Reply, http_client, install_provider, send};

/// The longest a test waits for the page to show something.
pub const WAIT: Duration = Duration::from_secs(20);

/// Polls `probe` until it returns `Ok`, for up to [`WAIT`]; then fails the test, saying what
/// was awaited and what the last probe saw.
pub async fn until<T>(what: &str, mut probe: impl AsyncFnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match probe().await {
            Ok(found) => return found,
            Err(seen) if start.elapsed() > WAIT => {
                panic!("waited {WAIT:?} for {what}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A running `claude-c2c ui`; killed when dropped.
pub struct Ui {
    child: tokio::process::Child,
    // Kept open: the server must never write to a closed pipe.
    _stdout: BufReader<tokio::process::ChildStdout>,
    /// The address it printed, with its key: `http://127.0.0.1:PORT/view/SECRET/`.
    pub url: String,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The key.
    pub key: String,
    stderr: Arc<Mutex<String>>,
}

impl Ui {
    /// Starts `claude-c2c --db DB GLOBAL.. ui EXTRA..` and reads the address it prints first,
    /// which must have the promised form.
    pub async fn start(db: &Path, global: &[&str], extra: &[&str]) -> Ui {
        let mut cmd = command();
        cmd.arg("--db").arg(db).args(global).arg("ui").args(extra);
        let Announcing {
            mut child,
            stdout,
            first,
            stderr: log,
        } = Announcing::start(cmd, "ui").await;
        let Some((base, key)) = parse_address(&first) else {
            let status = child.try_wait();
            panic!(
                "ui printed no address of the form http://127.0.0.1:PORT/view/<64 hex>/ \
                 ({first:?}, exit {status:?}); stderr: {}",
                log.lock().unwrap()
            );
        };
        Ui {
            child,
            _stdout: stdout,
            url: first,
            base,
            key,
            stderr: log,
        }
    }

    /// What the server has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Waits up to `limit` for the process to exit; its status, or `None` if it still runs.
    pub async fn exited(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .ok()
            .map(|s| s.expect("wait for ui"))
    }

    /// A visitor of this server that knows no page's address.
    pub fn visitor(&self) -> Visitor {
        Visitor::new(&self.base)
    }

    /// A visitor of the printed address.
    pub fn signed_in(&self) -> Visitor {
        let mut visitor = self.visitor();
        visitor.home = Some(format!("/view/{}/", self.key));
        visitor
    }
}

/// `(http://127.0.0.1:PORT, SECRET)` of a printed address, if it has the promised form.
fn parse_address(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("http://127.0.0.1:")?;
    let (port, key) = rest.split_once("/view/")?;
    let key = key.strip_suffix('/')?;
    port.parse::<u16>().ok()?;
    (key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (format!("http://127.0.0.1:{port}"), key.to_string()))
}

/// A plain HTTP client of the page that follows no redirect. A path that starts with `/` is
/// the server's; any other is relative to the visitor's own page (`/view/ID/`), once it has
/// one: `""` is the page, `"send"` its form's address, `"?room=R"` room R.
pub struct Visitor {
    /// The client.
    pub http: reqwest::Client,
    /// `http://HOST:PORT` of the page's server.
    pub base: String,
    /// The path of its own page, `/view/ID/`, once let in.
    pub home: Option<String>,
}

impl Visitor {
    /// A visitor of the server at `base`, without a page yet.
    pub fn new(base: &str) -> Visitor {
        install_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a reqwest client");
        Visitor {
            http,
            base: base.to_string(),
            home: None,
        }
    }

    /// The full address of `path` (see [`Visitor`]).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            return format!("{}{path}", self.base);
        }
        let home = self
            .home
            .as_deref()
            .unwrap_or_else(|| panic!("{path:?} is relative to a page this visitor lacks"));
        format!("{}{home}{path}", self.base)
    }

    /// Takes the page `reply` (a sign-in) sends the visitor to as its own; no cookie may come
    /// with it (browsers would send one to every port of the host).
    pub fn follow_home(&mut self, reply: &Reply) {
        assert_eq!(reply.status, 303, "{reply:?}");
        assert!(reply.header("set-cookie").is_none(), "a cookie: {reply:?}");
        let to = reply
            .header("location")
            .unwrap_or_else(|| panic!("no page to go to: {reply:?}"));
        let id = to
            .strip_prefix("/view/")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("not a page's address: {to:?}"));
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "the page's id is not 32 random bytes: {to:?}"
        );
        self.home = Some(to.to_string());
    }

    /// `GET path` with the extra `headers`.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.http.get(self.url(path));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        send(request).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[]).await
    }

    /// The page at `path`, which must answer 200 with HTML and set no cookie.
    pub async fn page(&self, path: &str) -> String {
        let reply = self.get(path).await;
        assert_eq!(reply.status, 200, "GET {path}: {reply:?}");
        assert!(is_html(&reply), "GET {path} is not HTML: {reply:?}");
        assert!(reply.header("set-cookie").is_none(), "a cookie: {reply:?}");
        reply.body
    }

    /// `POST path` of the form `fields` (as a browser encodes it), with `Origin: origin` if
    /// given.
    pub async fn post_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Reply {
        let mut request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(fields));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        send(request).await
    }
}

/// Whether `reply` says it is HTML.
pub fn is_html(reply: &Reply) -> bool {
    reply
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html"))
}

/// `fields` as `application/x-www-form-urlencoded`.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    fn encode(text: &str) -> String {
        let mut out = String::new();
        for b in text.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `value` of the `<input>` named `name` in `html`, the HTML entities it may hold decoded.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    html.split("<input").skip(1).find_map(|tag| {
        let tag = &tag[..tag.find('>')?];
        let attrs = attributes(tag);
        let named = attrs.iter().any(|(k, v)| k == "name" && v == name);
        named
            .then(|| attrs.into_iter().find(|(k, _)| k == "value"))
            .flatten()
            .map(|(_, v)| v)
    })
}

/// Whether `html` has an `<input>` named `name`.
pub fn has_input(html: &str, name: &str) -> bool {
    html.split("<input").skip(1).any(|tag| {
        tag.find('>').is_some_and(|end| {
            attributes(&tag[..end])
                .iter()
                .any(|(k, v)| k == "name" && v == name)
        })
    })
}

/// Whether some tag in `html` has the attribute `name` with the value `value` (quoted either
/// way or not at all).
pub fn has_attribute(html: &str, name: &str, value: &str) -> bool {
    html.split('<')
        .skip(1)
        .filter_map(|tag| tag.find('>').map(|end| &tag[..end]))
        .any(|tag| attributes(tag).iter().any(|(k, v)| k == name && v == value))
}

/// The attributes of a tag (the text after `<` up to `>`), names lowercased, values with
/// `&amp;`, `&quot;`, `&#39;`, `&lt;` and `&gt;` decoded.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = tag.trim_start_matches(|c: char| !c.is_whitespace());
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if rest.is_empty() {
            return out;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..end].to_ascii_lowercase();
        rest = rest[end..].trim_start();
        let value = if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (value, tail) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let inner = &after[1..];
                    let close = inner.find(q).unwrap_or(inner.len());
                    (&inner[..close], inner.get(close + 1..).unwrap_or(""))
                }
                _ => {
                    let close = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..close], &after[close..])
                }
            };
            rest = tail;
            decode_entities(value)
        } else {
            String::new()
        };
        out.push((name, value));
    }
}

fn decode_entities(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// chromedriver and the browser it starts, or why they cannot be used here.
pub fn browser_programs() -> Result<(PathBuf, PathBuf), String> {
    let driver = on_path(&["chromedriver"]).ok_or(
        "chromedriver not found on PATH: run .ci/run as root (it installs Debian's \
         chromium and chromium-driver), or install them",
    )?;
    let browser = on_path(&[
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ])
    .ok_or("chromium not found on PATH: run .ci/run as root, or install chromium")?;
    Ok((driver, browser))
}

/// The first of `names` found as a file in a folder of `PATH`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
            .find(|file| file.is_file())
    })
}

/// A chromedriver process, killed (with every browser it started) when dropped.
struct Driver {
    child: std::process::Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver's browsers stay in its process group: end them all at once, and wait
        // (briefly) until the last is gone, so that none outlives the test.
        #[cfg(unix)]
        {
            let group = -(self.child.id() as libc::pid_t);
            unsafe { libc::kill(group, libc::SIGKILL) };
            let _ = self.child.wait();
            let start = Instant::now();
            while unsafe { libc::kill(group, 0) } == 0 && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium driven through a chromedriver of its own; both end when it is dropped.
pub struct Browser {
    client: Option<Client>,
    _driver: Driver,
}

impl std::ops::Deref for Browser {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.client.as_ref().expect("an open browser")
    }
}

impl Browser {
    /// Starts chromedriver (`driver`) on a free port, waits until it answers, and opens a
    /// session of the headless `browser` whose profile lives in `profile`.
    pub async fn start(driver: &Path, browser: &Path, profile: &Path) -> Browser {
        let mut last = String::new();
        // A port found free can be taken before chromedriver binds it: try another then.
        for _ in 0..3 {
            let port = free_port();
            let mut cmd = std::process::Command::new(driver);
            cmd.arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            #[cfg(unix)]
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
            let mut driver_process = Driver { child };
            let url = format!("http://127.0.0.1:{port}");
            match wait_ready(&url, &mut driver_process).await {
                Ok(()) => {
                    let client = connect(&url, browser, profile).await;
                    return Browser {
                        client: Some(client),
                        _driver: driver_process,
                    };
                }
                Err(why) => last = why,
            }
        }
        panic!("chromedriver did not start: {last}");
    }

    /// Ends the browser session (chromedriver closes the browser), then chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        }
    }

    /// Runs `script` (a function body; its arguments are `arguments[0]`..) in the page and
    /// returns what it returns.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Saves a PNG of the whole page at `path`: the window is made as tall as the page first.
    pub async fn screenshot_page(&self, path: &Path) {
        let size = self
            .js(
                "return [document.documentElement.scrollWidth, \
                 document.documentElement.scrollHeight, \
                 window.outerHeight - window.innerHeight];",
                vec![],
            )
            .await;
        let (width, height, frame) = (
            size[0].as_u64().unwrap_or(1200).max(1200),
            size[1].as_u64().unwrap_or(900),
            size[2].as_u64().unwrap_or(0),
        );
        self.set_window_size(width as u32, (height + frame).clamp(900, 8000) as u32)
            .await
            .expect("resize the window");
        let png = self.screenshot().await.expect("a screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ok();
        }
        std::fs::write(path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("screenshot saved to {}", path.display());
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until chromedriver at `url` says it is ready; fails early if it exited.
async fn wait_ready(url: &str, driver: &mut Driver) -> Result<(), String> {
    let http = http_client();
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = driver.child.try_wait() {
            return Err(format!("chromedriver exited with {status}"));
        }
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            http.get(format!("{url}/status")).send(),
        )
        .await;
        if let Ok(Ok(response)) = answer
            && let Ok(status) = response.json::<Value>().await
            && status["value"]["ready"] == true
        {
            return Ok(());
        }
        if start.elapsed() > WAIT {
            return Err(format!("no ready answer at {url}/status within {WAIT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A WebDriver session of headless `browser` at chromedriver's `url`.
async fn connect(url: &str, browser: &Path, profile: &Path) -> Client {
    let options = json!({
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1200,900",
            "--no-first-run",
            format!("--user-data-dir={}", profile.display()),
        ],
        "binary": browser,
    });
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut builder = ClientBuilder::new(connector);
    builder.capabilities(capabilities);
    let session = builder.connect(url);
    // Starting a browser on a loaded machine takes a while.
    match tokio::time::timeout(Duration::from_secs(60), session).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => panic!("no browser session from chromedriver: {e}"),
        Err(_) => panic!("no browser session from chromedriver within 60 s"),
    }
}
