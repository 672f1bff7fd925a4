//! The MCP face of the server, on rmcp: `initialize` answers with our name, version, pinned
//! protocol versions and the instructions for the model; `tools/list` comes from the registry;
//! `tools/call` runs the dispatcher in place on the task serving it ([`in_place`]) and
//! turns its outcome into one JSON result (structuredContent plus the same JSON as text) or
//! one plain-text `isError` result. A tool that waits is stepped again on each change of the
//! database until its deadline, a cancellation stops it, and a progress token gets progress
//! notifications meanwhile. With `--channel`, `initialized` starts the [`channel`] push.
//!
//! [`channel`]: crate::channel

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    ExperimentalCapabilities, Implementation, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, ProtocolVersion, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;

use crate::dispatch::{DispatchError, Dispatcher};
use crate::error::ToolError;

/// How often a waiting call with a progress token reports progress.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The version reported in `serverInfo` and by `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The newest protocol version offered: Claude Code does not register channels on later ones.
pub const MAX_PROTOCOL: ProtocolVersion = ProtocolVersion::V_2025_11_25;

/// The MCP server handler: one per client connection. Tool calls run in place on the task
/// that serves them (see [`in_place`]), on either kind of tokio runtime.
#[derive(Clone)]
pub struct Server {
    dispatcher: Arc<Dispatcher>,
    tools: Arc<Vec<Tool>>,
}

impl Server {
    /// A handler serving `dispatcher`'s tools.
    pub fn new(dispatcher: Arc<Dispatcher>) -> Self {
        let tools = dispatcher.tools().iter().map(|t| t.to_mcp()).collect();
        Server {
            dispatcher,
            tools: Arc::new(tools),
        }
    }
}

/// The instructions sent at `initialize`, which Claude Code puts in the model's system prompt;
/// with `channel`, they also say what a `<channel>` event is.
pub fn instructions(name: Option<&str>, channel: bool) -> String {
    let register = match name {
        Some(name) => format!("You are registered as \"{name}\"; register_session only to change name."),
        None => "First call register_session(name=...) with the name your user gave this session (e.g. \"local\")."
            .to_string(),
    };
    let channel = if channel {
        "- A <channel source=\"c2c\" message_id=.. from=..> block in your context is a new message \
         from that session: act on it like an inbox message, then mark_read its message_id.\n"
    } else {
        ""
    };
    format!(
        "claude-c2c connects you with other agent sessions; sessions address each other by \
         name.\n\
         - {register}\n\
         - At the start of every turn call inbox() and act on new messages before other work; \
         then mark_read the ids you handled (inbox never marks anything read).\n{channel}\
         - To ask and wait for the answer: send_message, then wait_for_message(reply_to=its id); \
         answer with send_message(reply_to=the id). outbox() shows what others received and read.\n\
         - Messages are for asks and handoffs: send_message(to, body, tag), tags like handoff, \
         question, status, error; to=\"*\" reaches everyone.\n\
         - Shared state is for facts others should see: set_state(key, value) / get_state(key).\n\
         - To claim shared work without racing, take a lease: set_state(key, value, if_version=0, \
         ttl_seconds=N); renew it with its version and ttl_seconds, release it with delete_state. \
         If another holds it, get_state(key, wait_while_version=its version) waits until it \
         changes: renewed (wait again), or released or expired (take it).\n\
         - Results are JSON; an error says what to fix."
    )
}

/// What `initialize` answers for a session named `name` (if it has a name yet), with the
/// channel capability when `channel`: our name and version, the tools capability and the
/// instructions.
pub fn server_config(name: Option<&str>, channel: bool) -> ServerConfig {
    let mut experimental = ExperimentalCapabilities::new();
    if channel {
        experimental.insert(crate::channel::CAPABILITY.into(), Default::default());
    }
    let capabilities = ServerCapabilities::builder()
        .enable_experimental_with(experimental)
        .enable_tools()
        .build();
    ServerConfig::new(capabilities)
        .with_server_info(Implementation::new("claude-c2c", VERSION))
        .with_instructions(instructions(name, channel))
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        let name = self.dispatcher.session().map(|s| s.name);
        server_config(name.as_deref(), self.dispatcher.config().channel)
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if self.dispatcher.config().channel {
            tokio::spawn(crate::channel::push(self.dispatcher.clone(), context.peer));
        }
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&MAX_PROTOCOL))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let outcome = match self.dispatcher.prepare(&request.name, args) {
            Ok(pending) => self.run(pending, &context).await?,
            Err(DispatchError::UnknownTool(name)) => {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool `{name}`: tools/list shows the tools this server has"),
                    None,
                ));
            }
        };
        match outcome {
            Ok(value) => Ok(structured(value).into()),
            Err(error) => {
                tracing::debug!(tool = %request.name, %error, "tool error");
                Ok(CallToolResult::error(vec![ContentBlock::text(error.to_string())]).into())
            }
        }
    }
}

/// The result `CallToolResult::structured(value)` makes: `value` as structuredContent and as
/// one text block. rmcp writes that text through `Display`, whose formatter adapter costs a
/// third more than writing the bytes directly, as `to_string` does; the text is the same.
fn structured(value: Value) -> CallToolResult {
    let text = serde_json::to_string(&value).unwrap_or_else(|_| value.to_string());
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}

/// Runs `f`, a short synchronous step of a tool, on the current thread rather than hopping to
/// the blocking pool and back. On a multi-thread runtime the runtime first hands this worker's
/// other tasks to another thread (`block_in_place`); on a current-thread runtime (the stdio
/// server's: one client, one call at a time as a rule) they simply wait the few hundred
/// microseconds, which costs less than any hand-off.
pub fn in_place<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Steps `pending` on `dispatcher` until it answers, waiting between steps for a change of
/// the database or the time it names, on the task that awaits it: dropping the future (a
/// client that hung up) stops the call. For callers without progress reports or cancellation
/// tokens (the hub's JSON API).
pub async fn run_to_answer(
    dispatcher: &Dispatcher,
    mut pending: crate::dispatch::Pending,
) -> Result<Value, ToolError> {
    let mut waiter = None;
    loop {
        let waiting = match in_place(|| dispatcher.step(&mut pending)) {
            Ok(result) => return result,
            Err(waiting) => waiting,
        };
        let Some(w) = &mut waiter else {
            // Subscribed only now: step again at once (see `Server::run`).
            waiter = Some(in_place(|| dispatcher.subscribe())?);
            continue;
        };
        tokio::select! {
            _ = w.changed() => {}
            _ = tokio::time::sleep_until(waiting.next_step.into()) => {}
        }
    }
}

impl Server {
    // Steps the call until it answers; between steps it waits for a change of the database,
    // its deadline or its cancellation, reporting progress when the client asked for it.
    async fn run(
        &self,
        mut pending: crate::dispatch::Pending,
        context: &RequestContext<RoleServer>,
    ) -> Result<Result<Value, ToolError>, ErrorData> {
        let dispatcher = &self.dispatcher;
        let started = Instant::now();
        let progress = context.meta.get_progress_token();
        let mut next_progress = started + PROGRESS_EVERY;
        let mut waiter = None;
        loop {
            let waiting = match in_place(|| dispatcher.step(&mut pending)) {
                Ok(result) => return Ok(result),
                Err(waiting) => waiting,
            };
            let Some(w) = &mut waiter else {
                // Subscribed only now: step again at once, so nothing committed between the
                // first step and the subscription goes unseen.
                match in_place(|| dispatcher.subscribe()) {
                    Ok(w) => waiter = Some(w),
                    Err(e) => return Ok(Err(e)),
                }
                continue;
            };
            tokio::select! {
                _ = w.changed() => {}
                _ = tokio::time::sleep_until(waiting.next_step.into()) => {}
                _ = context.ct.cancelled() => {
                    // Cancelling is routine (a user interrupts, a client times out), and rmcp
                    // sends nothing for a cancelled request; answered as a tool error, it does
                    // not log it as a failed response either.
                    return Ok(Err(ToolError::Cancelled));
                }
                _ = tokio::time::sleep_until(next_progress.into()), if progress.is_some() => {
                    next_progress += PROGRESS_EVERY;
                    if let Some(token) = &progress {
                        // In whole seconds: the timeout asked for, not the microseconds of the first step.
                        let total = waiting.deadline.duration_since(started).as_secs_f64().round();
                        let param = ProgressNotificationParam::new(token.clone(), started.elapsed().as_secs_f64())
                            .with_total(total)
                            .with_message(format!("waiting for {}", waiting.what));
                        let _ = context.peer.notify_progress(param).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{instructions, structured};

    #[test]
    fn a_result_is_what_rmcp_makes_of_it() {
        let value = json!({"messages": [{"id": 1, "body": "a \"quoted\" line\n", "tag": null}],
                           "note": "é ✓"});
        assert_eq!(
            structured(value.clone()),
            rmcp::model::CallToolResult::structured(value)
        );
    }

    #[test]
    fn instructions_fit_what_claude_code_keeps_and_mention_channels_only_with_them() {
        let longest = "n".repeat(crate::tools::MAX_NAME_CHARS);
        for name in [None, Some(longest.as_str())] {
            let with = instructions(name, true);
            assert!(
                with.chars().count() < 2048,
                "{} chars",
                with.chars().count()
            );
            assert!(with.contains("<channel") && with.contains("wait_for_message"));
            assert!(!instructions(name, false).contains("<channel"));
        }
    }
}
