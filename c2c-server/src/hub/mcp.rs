//! One MCP session of the hub. rmcp makes the handler before the client says who it is, so it
//! starts unbound; `initialize` binds it to the token's room and name (and the name and channel
//! the client asks for in its headers) with a dispatcher of its own on the shared watcher, and
//! from then on it is the stdio server's [`Server`] behind a check that each request carries
//! the same token (rmcp does not tie a session id to a token).

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use axum::http::request::Parts;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, InitializeRequestParams, InitializeResult,
    ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerConfig,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::guard::Identity;
use super::{CHANNEL_HEADER, CWD_HEADER, Hub, NAME_HEADER};
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::server::Server;
use crate::store::sessions;

/// The handler of one MCP session of the hub.
pub struct HubSession {
    hub: Arc<Hub>,
    bound: OnceLock<Bound>,
}

struct Bound {
    token_id: i64,
    dispatcher: Arc<Dispatcher>,
    server: Server,
}

impl Drop for HubSession {
    // The MCP session has ended (closed by its client, idle too long, its token revoked, or the
    // hub stopping): its registration no longer counts as held by a running process, so the
    // next session to start with the name takes it at once, as after a local server exits.
    fn drop(&mut self) {
        let Some(bound) = self.bound.get() else {
            return;
        };
        if let Some(session) = bound.dispatcher.session() {
            let released = bound
                .dispatcher
                .with_db(|db| sessions::release_process(db, &session.session_id));
            if let Err(e) = released {
                tracing::debug!(error = %e, "could not mark an ended hub session's name free");
            }
        }
    }
}

impl HubSession {
    /// An unbound session of `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        HubSession {
            hub,
            bound: OnceLock::new(),
        }
    }

    // The session's server, once the request is known to carry the session's token.
    fn server(&self, extensions: &rmcp::model::Extensions) -> Result<&Server, ErrorData> {
        let bound = self
            .bound
            .get()
            .ok_or_else(|| ErrorData::invalid_request("initialize this session first", None))?;
        match identity(extensions) {
            Some(id) if id.token_id == bound.token_id => Ok(&bound.server),
            _ => Err(ErrorData::invalid_request(
                "this MCP session was opened with another token: initialize a session of your own",
                None,
            )),
        }
    }

    // A dispatcher for `id`'s room, as the client's headers ask.
    fn bind(&self, id: &Identity, parts: &Parts) -> Result<Bound, ErrorData> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let refuse = |m: String| ErrorData::invalid_request(m, None);
        let name = header(NAME_HEADER).map(String::from).or(id.name.clone());
        if let (Some(name), Some(allowed)) = (&name, &id.name)
            && name != allowed
        {
            return Err(refuse(format!(
                "this token acts only as \"{allowed}\", not \"{name}\""
            )));
        }
        if let Some(name) = &name
            && let Err(e) = crate::tools::check_name(NAME_HEADER, name, false)
        {
            return Err(refuse(e.to_string()));
        }
        let conn = crate::server::in_place(|| self.hub.connect())
            .map_err(|e| ErrorData::internal_error(e, None))?;
        // The hub's own directory and Claude Code session say nothing about a remote client;
        // a relay says where it runs. The hub's process holds the session's name while it
        // lasts.
        let mut config = Config::for_remote(
            self.hub.db_path.clone(),
            self.hub.max_body_bytes,
            id.room.clone(),
            id.name.clone(),
        );
        config.name = name.clone();
        config.channel = header(CHANNEL_HEADER).is_some_and(|v| v != "0" && v != "false");
        config.cwd = header(CWD_HEADER).map(String::from);
        config.process = Some(crate::process::ProcessInfo::current());
        let dispatcher = Arc::new(Dispatcher::new(conn, config).with_wake(self.hub.wake.clone()));
        if let Some(name) = &name {
            crate::server::in_place(|| dispatcher.claim_at_start())
                .map_err(|e| refuse(format!("cannot register as \"{name}\": {e}")))?;
        }
        Ok(Bound {
            token_id: id.token_id,
            server: Server::new(dispatcher.clone()),
            dispatcher,
        })
    }
}

/// The identity the guard found for the HTTP request behind an MCP message.
pub fn identity(extensions: &rmcp::model::Extensions) -> Option<&Identity> {
    extensions.get::<Parts>()?.extensions.get::<Identity>()
}

impl ServerHandler for HubSession {
    fn get_info(&self) -> ServerConfig {
        match self.bound.get() {
            Some(bound) => bound.server.get_info(),
            None => ServerConfig::default(),
        }
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&crate::server::MAX_PROTOCOL))
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        let parts = context.extensions.get::<Parts>();
        let id = parts.and_then(|p| p.extensions.get::<Identity>());
        let (Some(parts), Some(id)) = (parts, id) else {
            return Err(ErrorData::invalid_request("no token", None));
        };
        if self.bound.get().is_none() {
            let bound = self.bind(id, parts)?;
            let _ = self.bound.set(bound);
        }
        let server = self.server(&context.extensions)?;
        server.initialize(request, context).await
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if let Ok(server) = self.server(&context.extensions) {
            server.on_initialized(context).await;
        }
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let server = self.server(&context.extensions)?;
        server.list_tools(request, context).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let server = self.server(&context.extensions)?;
        server.call_tool(request, context).await
    }
}
