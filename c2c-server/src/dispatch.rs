//! Running one tool call: find the tool, check registration, open the right transaction,
//! refresh the caller's heartbeat, run the generated wrapper, commit or roll back, and keep a
//! session that `register_session` bound. Synchronous; the server runs it in `block_in_place`,
//! out of the async runtime's way.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use serde_json::Value;

use crate::call::{Call, Client, Session};
use crate::clock;
use crate::config::Config;
use crate::error::ToolError;
use crate::registry::{JsonObject, ToolDef, ToolSet};
use crate::store::sessions::{self, Standing};
use crate::tools::Tools;

/// Why a call could not run at all (as opposed to a tool's own failure).
#[derive(Debug)]
pub enum DispatchError {
    /// No tool has this name.
    UnknownTool(String),
}

/// How often the automatic heartbeat writes `last_seen_at`: more often would add a written
/// page to every call for a timestamp that is read in minutes.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// One client's connection to the store and its current session.
pub struct Dispatcher {
    conn: Mutex<Connection>,
    config: Arc<Config>,
    session: Mutex<Option<Session>>,
    visitor: bool,
    last_beat: Mutex<Option<Instant>>,
    tools: &'static [ToolDef],
}

impl Dispatcher {
    /// A dispatcher over the open database `conn`, serving every tool of the registry.
    pub fn new(conn: Connection, config: Config) -> Self {
        Dispatcher {
            conn: Mutex::new(conn),
            config: Arc::new(config),
            session: Mutex::new(None),
            visitor: false,
            last_beat: Mutex::new(None),
            tools: <Tools as ToolSet>::TOOLS,
        }
    }

    /// Acts as `name` for a person or script: as the live session of that name if there is
    /// one, without superseding it or touching its heartbeat, else as a new registration.
    pub fn visit(&mut self, name: &str) -> Result<(), ToolError> {
        self.visitor = true;
        let live = sessions::live(&lock(&self.conn), name)?;
        match live {
            Some(session) => *lock(&self.session) = Some(session),
            None => {
                let mut args = JsonObject::new();
                args.insert("name".into(), Value::String(name.to_string()));
                self.call("register_session", args)
                    .unwrap_or_else(|_| unreachable!("register_session is in the registry"))?;
            }
        }
        Ok(())
    }

    /// Runs `f` with the connection, outside any tool (for read-only views of the bus).
    pub fn with_db<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> T) -> T {
        f(&lock(&self.conn))
    }

    /// Every tool, in registry order.
    pub fn tools(&self) -> &'static [ToolDef] {
        self.tools
    }

    /// The tool called `name`.
    pub fn find(&self, name: &str) -> Option<&'static ToolDef> {
        self.tools.iter().find(|t| t.name == name)
    }

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The session this client is registered as.
    pub fn session(&self) -> Option<Session> {
        lock(&self.session).clone()
    }

    /// Calls the tool `name` with `args`.
    pub fn call(
        &self,
        name: &str,
        args: JsonObject,
    ) -> Result<Result<Value, ToolError>, DispatchError> {
        let tool = self
            .find(name)
            .ok_or_else(|| DispatchError::UnknownTool(name.to_string()))?;
        Ok(self.run(tool, args))
    }

    /// Runs `tool` with `args` in one transaction; a database failure names the file.
    pub fn run(&self, tool: &ToolDef, args: JsonObject) -> Result<Value, ToolError> {
        self.run_in_transaction(tool, args).map_err(|e| match e {
            ToolError::Store(source) => ToolError::Database {
                path: self.config.db_path.clone(),
                source,
            },
            other => other,
        })
    }

    fn run_in_transaction(&self, tool: &ToolDef, args: JsonObject) -> Result<Value, ToolError> {
        let mut conn = lock(&self.conn);
        let session = self.session();
        if tool.needs_session && session.is_none() {
            return Err(ToolError::NotRegistered);
        }
        // A visitor borrows a session's name; the session's own heartbeat is not its to give.
        let acting = tool.heartbeat && !self.visitor;
        let session_id = session
            .as_ref()
            .filter(|_| acting)
            .map(|s| s.session_id.clone());
        let beat_due = session_id.is_some()
            && lock(&self.last_beat).is_none_or(|at| at.elapsed() >= HEARTBEAT_EVERY);
        let behavior = if beat_due || !tool.read_only {
            TransactionBehavior::Immediate
        } else {
            TransactionBehavior::Deferred
        };
        let tx = conn.transaction_with_behavior(behavior)?;
        let standing = match &session_id {
            Some(id) if beat_due => sessions::heartbeat(&tx, id, &clock::now())?,
            Some(id) => sessions::standing(&tx, id)?,
            None => Standing::Live,
        };
        let superseded = standing == Standing::Superseded;
        let call = Call::new(&tx, Client::new(self.config.clone(), session, superseded));
        let result = (tool.call)(&call, args);
        let bound = call.client().take_bound();
        drop(call);
        match result {
            Ok(value) => {
                tx.commit()?;
                if beat_due {
                    *lock(&self.last_beat) = Some(Instant::now());
                }
                if let Some(session) = bound {
                    // A new registration was stamped just now.
                    *lock(&self.session) = Some(session);
                    *lock(&self.last_beat) = Some(Instant::now());
                }
                Ok(value)
            }
            // Dropping the transaction rolls it back: a failed call changes nothing.
            Err(e) => Err(e),
        }
    }
}

// A poisoned lock only means another call panicked; the data it guards is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
