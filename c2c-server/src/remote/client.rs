//! The command line's and the hooks' client of the hub's JSON API (`/v1`): run a tool, read
//! the room's sessions and messages, hand a session's messages to a hook. Each request is tried
//! again while the hub cannot be reached, and after a broken connection only when repeating it
//! is harmless (a tool that only reads, or is idempotent).

use std::future::Future;

use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::HubTarget;
use super::retry::{Backoff, Failure, classify};
use crate::hub::api::{CallRequest, HookAnswer, HookRequest, MessagesAnswer, OverviewAnswer};
use crate::registry::{JsonObject, ToolDef};

/// A client of one hub.
pub struct HubClient {
    target: HubTarget,
    http: reqwest::Client,
}

impl HubClient {
    /// A client of `target`.
    pub fn new(target: HubTarget) -> Result<Self, String> {
        let http = target.http_client()?;
        Ok(HubClient { target, http })
    }

    /// The hub's base URL.
    pub fn base(&self) -> &str {
        &self.target.base
    }

    // One request: its answer's body parsed, or how it failed.
    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, Failure> {
        let response = request
            .bearer_auth(&self.target.token)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| classify(&e))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                Failure::Refused(format!(
                    "the hub's answer is not what this claude-c2c expects ({e}): are the hub and \
                     this machine on the same version?"
                ))
            });
        }
        let said = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        let message = format!("the hub at {} answered {status}: {said}", self.target.base);
        Err(match status {
            // The hub's own 503 comes before it runs anything (it cannot open its file yet).
            StatusCode::SERVICE_UNAVAILABLE => Failure::NotSent(message),
            // A proxy's 502 or 504 may come after it passed the request on to a hub that
            // then died: the hub may have acted on it.
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => Failure::Lost(message),
            _ => Failure::Refused(message),
        })
    }

    // Runs `attempt` until it succeeds, trying again while the hub cannot be reached, and after
    // a broken connection only when `repeatable`.
    async fn with_retry<T, F, Fut>(
        &self,
        what: &str,
        repeatable: bool,
        attempt: F,
    ) -> Result<T, String>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut backoff = Backoff::new(format!("{what} at {}", self.target.base));
        loop {
            let failure = match attempt().await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            match failure {
                Failure::NotSent(m) => {
                    if !backoff.pause(&m).await {
                        return Err(format!("gave up on {what}: {m}"));
                    }
                }
                Failure::Lost(m) if repeatable => {
                    if !backoff.pause(&m).await {
                        return Err(format!("gave up on {what}: {m}"));
                    }
                }
                Failure::Lost(m) => {
                    return Err(format!(
                        "the connection to the hub broke during {what} ({m}): the hub may have \
                         done it already, so it was not repeated; check (e.g. with outbox or \
                         get-state) before doing it again"
                    ));
                }
                Failure::Refused(m) => return Err(m),
            }
        }
    }

    fn post(&self, path: &str, body: &impl Serialize) -> reqwest::RequestBuilder {
        let body = serde_json::to_vec(body).expect("requests serialise");
        self.http
            .post(format!("{}{path}", self.target.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
    }

    /// Runs `tool` with `args` on the hub, acting as `act_as`: the tool's answer (its result or
    /// its error text), or why the hub could not run it.
    pub async fn call(
        &self,
        tool: &ToolDef,
        act_as: Option<&str>,
        args: JsonObject,
    ) -> Result<Result<Value, String>, String> {
        let request = CallRequest {
            tool: tool.name.to_string(),
            act_as: act_as.map(String::from),
            arguments: args,
        };
        let repeatable = tool.read_only || tool.idempotent || tool.mostly_reads;
        let answer: Value = self
            .with_retry(tool.name, repeatable, || {
                self.send(self.post("/v1/call", &request))
            })
            .await?;
        match (answer.get("result"), answer.get("error")) {
            (Some(result), _) => Ok(Ok(result.clone())),
            (None, Some(Value::String(error))) => Ok(Err(error.clone())),
            _ => Err(format!(
                "the hub's answer to {} is neither a result nor an error: {answer}",
                tool.name
            )),
        }
    }

    /// The room's live sessions, and the rooms the token reaches that hold anything.
    pub async fn overview(&self) -> Result<OverviewAnswer, String> {
        let url = format!("{}/v1/overview", self.target.base);
        self.with_retry("reading the sessions", true, || {
            self.send(self.http.get(&url))
        })
        .await
    }

    /// The same as [`overview`](HubClient::overview), tried once: for a check that should say
    /// what is wrong now rather than wait for it to pass.
    pub async fn probe(&self) -> Result<OverviewAnswer, String> {
        self.check().await.map_err(|f| f.message().to_string())
    }

    /// Asks the hub once whether it lets this client in (reachable, token good for the room).
    pub async fn check(&self) -> Result<OverviewAnswer, Failure> {
        let url = format!("{}/v1/overview", self.target.base);
        self.send(self.http.get(&url)).await
    }

    /// The room's messages after `after` (from now on if `None`), waiting up to `wait_ms` for one.
    pub async fn messages(
        &self,
        after: Option<i64>,
        wait_ms: u64,
    ) -> Result<MessagesAnswer, String> {
        let url = format!("{}/v1/messages", self.target.base);
        // `url` and numbers only: nothing to escape.
        self.with_retry("reading messages", true, || {
            let query = match after {
                Some(after) => format!("{url}?wait_ms={wait_ms}&after={after}"),
                None => format!("{url}?wait_ms={wait_ms}"),
            };
            self.send(self.http.get(query))
        })
        .await
    }

    /// Hands a session's messages to a hook (see [`HookRequest`]).
    pub async fn hook(&self, request: &HookRequest) -> Result<HookAnswer, String> {
        // Repeating is harmless: messages whose answer was lost stay unread, and the next
        // prompt hook (which takes every unread message) hands them over.
        self.with_retry("handing messages to the hook", true, || {
            self.send(self.post("/v1/hook", request))
        })
        .await
    }
}

/// Runs `future` to its end on a runtime of its own (for the command line, which is not async).
pub fn block_on<T>(future: impl Future<Output = T>) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok(runtime.block_on(future))
}
