//! The context of one tool call, handed to the generated wrapper by the dispatcher: the open
//! transaction, the calling client and its session. The `FromCall` impls here are what a tool
//! body may take by reference: `&Connection`, `&Session` (only after `register_session`) and
//! `&Client`.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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
    /// The room the name is held in.
    pub room: String,
}

/// The client process behind a call: its configuration, its session if it has one, and the
/// slot through which `register_session` binds a new one.
#[derive(Debug)]
pub struct Client {
    config: Arc<Config>,
    session: Option<Session>,
    superseded: bool,
    bound: RefCell<Option<Session>>,
    wait: Cell<Option<(Duration, &'static str)>>,
    wake_at: Cell<Option<SystemTime>>,
}

impl Client {
    /// A client with `config`, currently registered as `session` (if any); `superseded` says
    /// that another registration has taken that session's name since.
    pub fn new(config: Arc<Config>, session: Option<Session>, superseded: bool) -> Self {
        Client {
            config,
            session,
            superseded,
            bound: RefCell::new(None),
            wait: Cell::new(None),
            wake_at: Cell::new(None),
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

    /// Whether the caller is a server for an agent (rather than the command line, acting for
    /// a person or a script).
    pub fn is_server(&self) -> bool {
        self.config.process.is_some()
    }

    /// The client's session if it still holds its name.
    pub fn live_session(&self) -> Option<&Session> {
        self.session.as_ref().filter(|_| !self.superseded)
    }

    /// Makes `session` this client's session once the call's transaction commits.
    pub fn bind(&self, session: Session) {
        *self.bound.borrow_mut() = Some(session);
    }

    /// The session bound during the call, for the dispatcher to keep after commit.
    pub fn take_bound(&self) -> Option<Session> {
        self.bound.borrow_mut().take()
    }

    /// Asks for the call to be run again whenever the database changes, for up to `timeout`
    /// from its first run, instead of answering now; the last run's result is the answer when
    /// the time is up. A tool that waits for something calls this when it found nothing yet;
    /// `what` ("a message") is what progress reports say it waits for.
    pub fn retry_on_change(&self, timeout: Duration, what: &'static str) {
        self.wait.set(Some((timeout, what)));
    }

    /// Asks, besides [`Client::retry_on_change`], for the call to be run again at `at` even if
    /// nothing changes by then: for what time alone changes, such as an entry's expiry.
    pub fn retry_at(&self, at: SystemTime) {
        let at = match self.wake_at.get() {
            Some(earlier) => earlier.min(at),
            None => at,
        };
        self.wake_at.set(Some(at));
    }

    /// The wait asked for by [`Client::retry_on_change`], if any, and what it waits for.
    pub fn retry_requested(&self) -> Option<(Duration, &'static str)> {
        self.wait.get()
    }

    /// The time asked for by [`Client::retry_at`], if any.
    pub fn retry_time(&self) -> Option<SystemTime> {
        self.wake_at.get()
    }
}

/// Everything one call runs with; built and torn down by the dispatcher.
pub struct Call<'c> {
    db: &'c Connection,
    client: Client,
}

impl<'c> Call<'c> {
    /// A call by `client` inside the transaction `db`.
    pub fn new(db: &'c Connection, client: Client) -> Self {
        Call { db, client }
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
        match (call.client.session(), call.client.live_session()) {
            (None, _) => Err(ToolError::NotRegistered),
            (Some(s), None) => Err(ToolError::Superseded {
                name: s.name.clone(),
            }),
            (_, Some(s)) => Ok(s),
        }
    }
}
