//! The MCP face of the server, on rmcp: `initialize` answers with our name, version, pinned
//! protocol versions and the instructions for the model; `tools/list` comes from the registry;
//! `tools/call` runs the dispatcher in place (the runtime moves its other tasks aside) and
//! turns its outcome into one JSON result (structuredContent plus the same JSON as text) or
//! one plain-text `isError` result.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig,
    Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::dispatch::{DispatchError, Dispatcher};

/// The version reported in `serverInfo` and by `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The newest protocol version offered: Claude Code does not register channels on later ones.
pub const MAX_PROTOCOL: ProtocolVersion = ProtocolVersion::V_2025_11_25;

/// The MCP server handler: one per client connection. Serve it on a multi-thread tokio
/// runtime: tool calls run in `block_in_place`.
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

/// The instructions sent at `initialize`, which Claude Code puts in the model's system prompt.
pub fn instructions(name: Option<&str>) -> String {
    let register = match name {
        Some(name) => format!("You are registered as \"{name}\"; register_session only to change name."),
        None => "First call register_session(name=...) with the name your user gave this session (e.g. \"local\")."
            .to_string(),
    };
    format!(
        "claude-c2c connects you with other agent sessions on this machine; sessions address \
         each other by name.\n\
         - {register}\n\
         - At the start of every turn call inbox() and act on new messages before other work; \
         then mark_read the ids you handled (inbox never marks anything read).\n\
         - Messages are for asks and handoffs: send_message(to, body, tag), tags like handoff, \
         question, status, error; to=\"*\" reaches everyone.\n\
         - Shared state is for facts others should see: set_state(key, value) / get_state(key).\n\
         - Results are JSON; an error says what to fix."
    )
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        let name = self.dispatcher.session().map(|s| s.name);
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("claude-c2c", VERSION))
            .with_instructions(instructions(name.as_deref()))
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
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let dispatcher = self.dispatcher.clone();
        let name = request.name.to_string();
        let args = request.arguments.unwrap_or_default();
        // The calls are short and synchronous: run them on this worker, telling the runtime to
        // move its other tasks elsewhere meanwhile, rather than paying a hop to the blocking pool.
        let outcome = tokio::task::block_in_place(move || dispatcher.call(&name, args));
        match outcome {
            Ok(Ok(value)) => Ok(CallToolResult::structured(value).into()),
            Ok(Err(error)) => {
                tracing::debug!(tool = %request.name, %error, "tool error");
                Ok(CallToolResult::error(vec![ContentBlock::text(error.to_string())]).into())
            }
            Err(DispatchError::UnknownTool(name)) => Err(ErrorData::invalid_params(
                format!("unknown tool `{name}`: tools/list shows the tools this server has"),
                None,
            )),
        }
    }
}
