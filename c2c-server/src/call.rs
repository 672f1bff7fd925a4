//! The context of one tool call, handed to the generated wrapper by the dispatcher: the open
//! transaction, the calling client and its session. The `FromCall` impls here are what a tool
//! body may take by reference: `&Connection`, `&Session` (only after `register_session`) and
//! `&Client`.

use std::cell::RefCell;
use std::sync::Arc;

use rusqlite::Connection;

use crate::config::Config;
use crate::error::ToolError;
use crate::registry::FromCall;

/// A registered session: the name this client answers to and the row that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The unique id of this registration.
    pub session_id: String,
    /// The name messages are routed by.
    pub name: String,
}

/// The client process behind a call: its configuration, its session if it has one, and the
/// slot through which `register_session` binds a new one.
#[derive(Debug)]
pub struct Client {
    config: Arc<Config>,
    session: Option<Session>,
    bound: RefCell<Option<Session>>,
}

impl Client {
    /// A client with `config`, currently registered as `session` (if any).
    pub fn new(config: Arc<Config>, session: Option<Session>) -> Self {
        Client {
            config,
            session,
            bound: RefCell::new(None),
        }
    }

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The session this client was registered as when the call began.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Makes `session` this client's session once the call's transaction commits.
    pub fn bind(&self, session: Session) {
        *self.bound.borrow_mut() = Some(session);
    }

    /// The session bound during the call, for the dispatcher to keep after commit.
    pub fn take_bound(&self) -> Option<Session> {
        self.bound.borrow_mut().take()
    }
}

/// Everything one call runs with; built and torn down by the dispatcher.
pub struct Call<'c> {
    db: &'c Connection,
    client: Client,
    superseded: bool,
}

impl<'c> Call<'c> {
    /// A call inside the transaction `db`; `superseded` says that the client's session has
    /// been taken over by another registration of its name.
    pub fn new(db: &'c Connection, client: Client, superseded: bool) -> Self {
        Call {
            db,
            client,
            superseded,
        }
    }

    /// The client behind the call.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl FromCall for Connection {
    const NEEDS_SESSION: bool = false;
    fn from_call<'a>(call: &'a Call<'_>) -> Result<&'a Self, ToolError> {
        Ok(call.db)
    }
}

impl FromCall for Client {
    const NEEDS_SESSION: bool = false;
    fn from_call<'a>(call: &'a Call<'_>) -> Result<&'a Self, ToolError> {
        Ok(&call.client)
    }
}

impl FromCall for Session {
    const NEEDS_SESSION: bool = true;
    fn from_call<'a>(call: &'a Call<'_>) -> Result<&'a Self, ToolError> {
        match call.client.session() {
            None => Err(ToolError::NotRegistered),
            Some(s) if call.superseded => Err(ToolError::Superseded {
                name: s.name.clone(),
            }),
            Some(s) => Ok(s),
        }
    }
}
