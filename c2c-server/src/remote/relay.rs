//! `claude-c2c --hub URL`: the stdio server as a relay to a hub. Claude Code (or any MCP
//! client) starts it as usual; it answers `initialize` and `tools/list` itself (the same
//! registry as the hub's), forwards each `tools/call` to the hub's MCP endpoint as a session
//! of its own (named by `--name`, in the token's room), and passes the hub's channel events on
//! (`--channel`), so that everything local keeps working with no database on this machine.
//! When the hub goes away it connects again, with growing pauses said on stderr; a call that
//! only reads is then made again, and one that writes fails with a message saying it may have
//! been done, rather than being done twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientConfig, ContentBlock,
    CustomNotification, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ProtocolVersion, ServerConfig, ServerNotification, Tool,
};
use rmcp::service::{NotificationContext, Peer, RequestContext, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt};
use tokio::sync::mpsc;

use super::HubTarget;
use super::client::HubClient;
use super::retry::{Backoff, Failure};
use crate::hub::{CHANNEL_HEADER, CWD_HEADER, NAME_HEADER};
use crate::registry::{ToolDef, ToolSet};
use crate::server::PROGRESS_EVERY;
use crate::tools::Tools;

/// What the relay is for: the hub, and the session it is there.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// The hub.
    pub target: HubTarget,
    /// The name to register at the hub at start (`--name`).
    pub name: Option<String>,
    /// Pass the hub's pushes on as Claude Code channel events (`--channel`).
    pub channel: bool,
}

type Connection = RunningService<RoleClient, Pushes>;

/// How often the relay looks whether its hub session has closed, to open another.
const KEEP_CONNECTED_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The relay: an MCP server on stdio whose tools run on the hub.
pub struct Relay {
    settings: RelaySettings,
    http: reqwest::Client,
    api: HubClient,
    tools: Vec<Tool>,
    hub: tokio::sync::Mutex<Option<Connection>>,
    pushes: mpsc::UnboundedSender<CustomNotification>,
    pending: Mutex<Option<mpsc::UnboundedReceiver<CustomNotification>>>,
}

/// The relay's side of its hub session: channel events from the hub go into a queue that is
/// passed on to the client once it has initialised.
pub struct Pushes {
    queue: mpsc::UnboundedSender<CustomNotification>,
}

impl ClientHandler for Pushes {
    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        _context: NotificationContext<RoleClient>,
    ) {
        if notification.method == crate::channel::METHOD {
            let _ = self.queue.send(notification);
        }
    }

    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.client_info.name = "claude-c2c relay".into();
        info.client_info.version = crate::server::VERSION.into();
        info
    }
}

impl Relay {
    /// A relay to `settings.target`, not connected yet.
    pub fn new(settings: RelaySettings) -> Result<Self, String> {
        let http = settings.target.http_client()?;
        let api = HubClient::new(settings.target.clone())?;
        let (pushes, pending) = mpsc::unbounded_channel();
        Ok(Relay {
            tools: <Tools as ToolSet>::TOOLS
                .iter()
                .map(|t| t.to_mcp())
                .collect(),
            settings,
            http,
            api,
            hub: tokio::sync::Mutex::new(None),
            pushes,
            pending: Mutex::new(Some(pending)),
        })
    }

    // A new session at the hub. The token is checked through the API first, whose errors say
    // whether trying again can help (rmcp's initialize error would not); a hub that answers
    // and then refuses the session (a name the token may not take) will refuse it again.
    async fn open(&self) -> Result<Connection, Failure> {
        self.api.check().await?;
        let mut headers = HashMap::new();
        let mut header = |name: &'static str, value: &str| {
            if let Ok(value) = value.parse() {
                headers.insert(reqwest::header::HeaderName::from_static(name), value);
            }
        };
        if let Some(name) = &self.settings.name {
            header(NAME_HEADER, name);
        }
        if self.settings.channel {
            header(CHANNEL_HEADER, "1");
        }
        // Shown by list_sessions, as a local server's is (a path that is not ASCII is left out:
        // a header cannot carry it as it is).
        if let Some(cwd) = crate::config::working_dir() {
            header(CWD_HEADER, &cwd);
        }
        let mut config =
            StreamableHttpClientTransportConfig::with_uri(self.settings.target.mcp_url())
                .auth_header(self.settings.target.token.clone())
                .custom_headers(headers);
        // The hub keeps no event log to resume a broken stream from, and rmcp's default
        // would try to resume it forever, leaving a call in flight when the hub restarted
        // unanswered: fail it instead, and let `forward` decide whether to make it again.
        config.retry_config =
            Arc::new(rmcp::transport::common::client_side_sse::NeverRetry::default());
        let transport = StreamableHttpClientTransport::with_client(self.http.clone(), config);
        Pushes {
            queue: self.pushes.clone(),
        }
        .serve(transport)
        .await
        .map_err(|e| Failure::Refused(format!("the hub refused the session: {e}")))
    }

    /// Connects to the hub now, trying again while it cannot be reached (the session's name is
    /// then registered there at start, as a local server's is).
    pub async fn connect(&self) -> Result<Peer<RoleClient>, String> {
        let mut hub = self.hub.lock().await;
        if let Some(connection) = hub.as_ref()
            && !connection.is_closed()
        {
            return Ok(connection.peer().clone());
        }
        let mut backoff = Backoff::new(format!("connecting to the hub at {}", self.api.base()));
        loop {
            match self.open().await {
                Ok(connection) => {
                    let peer = connection.peer().clone();
                    *hub = Some(connection);
                    return Ok(peer);
                }
                Err(Failure::Refused(e)) => return Err(e),
                Err(Failure::NotSent(e) | Failure::Lost(e)) => {
                    if !backoff.pause(&e).await {
                        return Err(e);
                    }
                }
            }
        }
    }

    // Keeps a session at the hub while the relay runs, so that the hub's pushes (and the
    // session's name) come back by themselves after the hub restarts, not only at the next
    // tool call.
    async fn keep_connected(&self) {
        loop {
            tokio::time::sleep(KEEP_CONNECTED_EVERY).await;
            let closed = self
                .hub
                .lock()
                .await
                .as_ref()
                .is_none_or(|connection| connection.is_closed());
            if closed && let Err(e) = self.connect().await {
                eprintln!("claude-c2c: {e}");
            }
        }
    }

    // Forgets the hub session `peer` belongs to, after it failed.
    async fn disconnect(&self) {
        if let Some(connection) = self.hub.lock().await.take() {
            let _ = connection.cancel().await;
        }
    }

    /// Ends the hub session (the hub forgets it at once).
    pub async fn close(&self) {
        self.disconnect().await;
    }

    async fn forward(
        &self,
        tool: &ToolDef,
        request: CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let repeatable = tool.read_only || tool.idempotent || tool.mostly_reads;
        let started = Instant::now();
        let progress = context.meta.get_progress_token();
        let mut next_progress = started + PROGRESS_EVERY;
        let mut backoff = Backoff::new(format!("{} at the hub {}", tool.name, self.api.base()));
        loop {
            let peer = match self.connect().await {
                Ok(peer) => peer,
                Err(e) => return Ok(failed(format!("the hub cannot take the call: {e}"))),
            };
            let call = peer.call_tool(request.clone());
            tokio::pin!(call);
            let outcome = loop {
                tokio::select! {
                    outcome = &mut call => break outcome,
                    _ = context.ct.cancelled() => {
                        return Ok(failed(crate::error::ToolError::Cancelled.to_string()));
                    }
                    _ = tokio::time::sleep_until(next_progress.into()), if progress.is_some() => {
                        next_progress += PROGRESS_EVERY;
                        if let Some(token) = &progress {
                            let param = ProgressNotificationParam::new(token.clone(), started.elapsed().as_secs_f64())
                                .with_message(format!("waiting for the hub to answer {}", tool.name));
                            let _ = context.peer.notify_progress(param).await;
                        }
                    }
                }
            };
            match outcome {
                Ok(result) => return Ok(result.into()),
                Err(ServiceError::McpError(e)) => return Err(e),
                Err(e) => {
                    self.disconnect().await;
                    if !repeatable && !never_sent(&e) {
                        return Ok(failed(format!(
                            "the connection to the hub broke during {} ({}): the hub may have \
                             done it already, so it was not repeated; check (inbox, outbox, \
                             get_state) before doing it again",
                            tool.name,
                            describe(&e)
                        )));
                    }
                    let e = describe(&e);
                    if !backoff.pause(&e).await {
                        return Ok(failed(format!("gave up on the hub: {e}")));
                    }
                }
            }
        }
    }
}

// Whether `e` says the request never reached the hub (no connection could be made), so that
// sending it again cannot do anything twice.
fn never_sent(e: &ServiceError) -> bool {
    use rmcp::transport::streamable_http_client::StreamableHttpError;
    let ServiceError::TransportSend(sending) = e else {
        return false;
    };
    matches!(
        sending.error.downcast_ref::<StreamableHttpError<reqwest::Error>>(),
        Some(StreamableHttpError::Client(client)) if client.is_connect()
    )
}

// What went wrong, without rmcp's type names: the transport's own error and its causes.
fn describe(e: &ServiceError) -> String {
    use rmcp::transport::streamable_http_client::StreamableHttpError;
    let ServiceError::TransportSend(sending) = e else {
        return e.to_string();
    };
    match sending
        .error
        .downcast_ref::<StreamableHttpError<reqwest::Error>>()
    {
        Some(StreamableHttpError::Client(client)) => super::retry::describe(client),
        _ => sending.error.to_string(),
    }
}

fn failed(message: String) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(message)]).into()
}

/// The relay as an rmcp handler.
#[derive(Clone)]
pub struct RelayHandler(pub Arc<Relay>);

impl ServerHandler for RelayHandler {
    fn get_info(&self) -> ServerConfig {
        let relay = &self.0;
        crate::server::server_config(relay.settings.name.as_deref(), relay.settings.channel)
    }

    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        std::borrow::Cow::Borrowed(ProtocolVersion::known_up_to(&crate::server::MAX_PROTOCOL))
    }

    async fn initialize(
        &self,
        request: rmcp::model::InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::InitializeResult, ErrorData> {
        // A token the hub refuses makes the server fail to start, so that `claude mcp list`
        // and other clients' health checks show it; a hub that cannot be reached now may be
        // back by the first call.
        if let Err(Failure::Refused(why)) = self.0.api.check().await {
            return Err(ErrorData::invalid_request(why, None));
        }
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let Some(mut pending) = self
            .0
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        let peer = context.peer;
        tokio::spawn(async move {
            while let Some(event) = pending.recv().await {
                let notification = ServerNotification::CustomNotification(event);
                if peer.send_notification(notification).await.is_err() {
                    return;
                }
            }
        });
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.0.tools.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(tool) = <Tools as ToolSet>::TOOLS
            .iter()
            .find(|t| t.name == request.name)
        else {
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool `{}`: tools/list shows the tools this server has",
                    request.name
                ),
                None,
            ));
        };
        self.0.forward(tool, request, &context).await
    }
}

/// Serves MCP on stdin/stdout as a relay to the hub until the client leaves or a signal comes.
pub fn run(settings: RelaySettings) -> Result<(), String> {
    let relay = Arc::new(Relay::new(settings)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let outcome = runtime.block_on(async move {
        // Meet the hub at once, so that the session's name is registered there while the
        // client starts; tool calls wait for this.
        let early = relay.clone();
        tokio::spawn(async move {
            if let Err(e) = early.connect().await {
                eprintln!("claude-c2c: {e}");
            }
            early.keep_connected().await;
        });
        let (transport, closed) = crate::transport::stdio();
        let running = RelayHandler(relay.clone())
            .serve(transport)
            .await
            .map_err(|e| format!("MCP initialisation failed: {e}"))?;
        let outcome = tokio::select! {
            done = running.waiting() => done.map(|_| ()).map_err(|e| format!("relay stopped: {e}")),
            _ = crate::cli::serve::shutdown_signal() => Ok(()),
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), closed).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), relay.close()).await;
        outcome
    });
    runtime.shutdown_background();
    outcome
}
