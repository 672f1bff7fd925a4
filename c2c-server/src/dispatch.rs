//! Running one tool call: find the tool, check registration, open the right transaction,
//! refresh the caller's heartbeat, run the generated wrapper, commit or roll back, and keep a
//! session that `register_session` bound; for a tool that asked to wait, run it again on each
//! change of the database (and at any time it named, such as an expiry) until it answers or
//! its time is up. Synchronous; the server runs
//! each step in place on the task serving the call ([`in_place`]) and waits between steps
//! itself.
//!
//! [`in_place`]: crate::server::in_place

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::Connection;
use serde_json::Value;

use crate::call::{Call, Client, Session};
use crate::clock;
use crate::config::Config;
use crate::error::ToolError;
use crate::registry::{JsonObject, ToolDef, ToolSet};
use crate::store;
use crate::store::messages::{self, Filter, Message, Via};
use crate::store::sessions::{self, Standing};
use crate::tools::Tools;
use crate::wake::{Waiter, Wake};

/// Why a call could not run at all (as opposed to a tool's own failure).
#[derive(Debug)]
pub enum DispatchError {
    /// No tool has this name.
    UnknownTool(String),
}

/// How often the automatic heartbeat writes `last_seen_at`: more often would add a written
/// page to every call for a timestamp that is read in minutes.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// How often a waiting call runs again even when no change was noticed: it refreshes the
/// caller's heartbeat during long waits, and bounds the cost of a change the watcher missed.
pub const RECHECK_EVERY: Duration = Duration::from_secs(60);

/// One client's connection to the store and its current session.
pub struct Dispatcher {
    conn: Mutex<Connection>,
    config: Arc<Config>,
    session: Mutex<Option<Session>>,
    visitor: bool,
    last_beat: Mutex<Option<Instant>>,
    tools: &'static [ToolDef],
    wake: OnceLock<Wake>,
    // Wake this process's waiters after each committed write (the hub's dispatchers share one
    // watcher, and mostly wait for each other).
    wake_own_writes: bool,
    recheck_every: Duration,
}

/// The outcome of running a tool once.
#[derive(Debug)]
pub struct Step {
    /// What the tool answered.
    pub result: Result<Value, ToolError>,
    /// The tool asked to be run again on changes, for up to this long from its first run
    /// (`result` is the answer once that time is up), waiting for what the text says.
    pub retry: Option<(Duration, &'static str)>,
    /// The tool asked to be run again at this time at the latest, change or not.
    pub retry_at: Option<SystemTime>,
}

impl Step {
    fn answer(result: Result<Value, ToolError>) -> Self {
        Step {
            result,
            retry: None,
            retry_at: None,
        }
    }
}

/// A call that asked to wait: until when at most, and when to run it again at the latest if
/// nothing changes before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// When its wait is over: the step after this answers whatever it finds.
    pub deadline: Instant,
    /// When to step it again even if no change was noticed: the deadline, the time the tool
    /// asked for, or [`Dispatcher::recheck_every`] from now, whichever comes first.
    pub next_step: Instant,
    /// What it waits for, for progress reports ("a message").
    pub what: &'static str,
}

/// A call that may wait: [`Dispatcher::step`] it, and while it asks to, wait for a change
/// (or its deadline) and step it again.
#[derive(Debug)]
pub struct Pending {
    tool: &'static ToolDef,
    args: JsonObject,
    deadline: Option<Instant>,
}

impl Pending {
    /// A call of `tool` with `args`, not run yet.
    pub fn new(tool: &'static ToolDef, args: JsonObject) -> Self {
        Pending {
            tool,
            args,
            deadline: None,
        }
    }
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
            wake: OnceLock::new(),
            wake_own_writes: false,
            recheck_every: RECHECK_EVERY,
        }
    }

    /// The same, watching the database through `wake` (shared with other dispatchers of this
    /// process), whose waiters it wakes itself after each write it commits.
    pub fn with_wake(mut self, wake: Wake) -> Self {
        self.wake = OnceLock::from(wake);
        self.wake_own_writes = true;
        self
    }

    /// The same, with waiting calls run again at least every `every` instead of
    /// [`RECHECK_EVERY`] (tests use a short one).
    pub fn with_recheck_every(mut self, every: Duration) -> Self {
        self.recheck_every = every;
        self
    }

    /// How often a waiting call runs again when nothing changed.
    pub fn recheck_every(&self) -> Duration {
        self.recheck_every
    }

    /// Acts as `name` for a person or script. A name an MCP server registered is borrowed:
    /// its session is neither superseded nor kept alive by the visit, which records no
    /// deliveries; the answer is that server's process id. A name the command line holds is
    /// acted as fully (so that using it keeps it seen), and a free name is registered.
    pub fn visit(&mut self, name: &str) -> Result<Option<i64>, ToolError> {
        self.may_act_as(name)?;
        let holder = sessions::holder(&lock(&self.conn), &self.config.room, name)?;
        match holder {
            Some(holder) => {
                self.visitor = holder.pid.is_some();
                *lock(&self.session) = Some(holder.session);
                Ok(holder.pid)
            }
            None => {
                self.visitor = false;
                self.register(name).map(|()| None)
            }
        }
    }

    /// Acts as `name` (see [`visit`](Dispatcher::visit)) for a call of `tool`; refuses, with
    /// what to do instead, a tool that would refresh the heartbeat of a name an MCP server
    /// holds, which only that server may do.
    pub fn visit_for(&mut self, name: &str, tool: &ToolDef) -> Result<(), String> {
        let server = self
            .visit(name)
            .map_err(|e| format!("cannot act as {name:?}: {e}"))?;
        // A tool that keeps the heartbeat itself (`no_heartbeat`) would write the borrowed
        // session's.
        match server {
            Some(pid) if tool.needs_session && !tool.heartbeat => Err(format!(
                "{name:?} is held by an MCP server (process {pid}), which keeps its own \
                 heartbeat; the command line refreshes only names it holds itself"
            )),
            _ => Ok(()),
        }
    }

    // Refuses a name other than the one this client's token is bound to.
    fn may_act_as(&self, name: &str) -> Result<(), ToolError> {
        match &self.config.only_name {
            Some(allowed) if allowed != name => Err(ToolError::NameNotAllowed {
                name: name.to_string(),
                allowed: allowed.clone(),
            }),
            _ => Ok(()),
        }
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

    /// Calls the tool `name` with `args`, blocking while it waits.
    pub fn call(
        &self,
        name: &str,
        args: JsonObject,
    ) -> Result<Result<Value, ToolError>, DispatchError> {
        Ok(self.call_tool(self.prepare(name, args)?))
    }

    /// Runs `pending` to its answer, blocking while it waits.
    pub fn call_tool(&self, mut pending: Pending) -> Result<Value, ToolError> {
        let mut waiter = None;
        loop {
            match self.step(&mut pending) {
                Ok(result) => return result,
                Err(waiting) => match &mut waiter {
                    // Subscribed only now: step again at once, so nothing committed between
                    // the first step and the subscription goes unseen.
                    None => waiter = Some(self.subscribe()?),
                    Some(w) => {
                        w.wait_until(waiting.next_step);
                    }
                },
            }
        }
    }

    /// A call of the tool `name` with `args`, ready to [`step`](Dispatcher::step).
    pub fn prepare(&self, name: &str, args: JsonObject) -> Result<Pending, DispatchError> {
        let tool = self
            .find(name)
            .ok_or_else(|| DispatchError::UnknownTool(name.to_string()))?;
        Ok(Pending::new(tool, args))
    }

    /// Runs `pending` once: its answer, or how it waits when it asked to be run again on a
    /// change of the database.
    pub fn step(&self, pending: &mut Pending) -> Result<Result<Value, ToolError>, Waiting> {
        let step = self.run_step(pending.tool, &pending.args);
        match (step.result, step.retry) {
            (Ok(value), Some((timeout, what))) => {
                let now = Instant::now();
                let deadline = *pending.deadline.get_or_insert_with(|| now + timeout);
                if now >= deadline {
                    return Ok(Ok(value));
                }
                // A millisecond late, so that a time compared to the microsecond has passed.
                let asked = step.retry_at.map(|at| {
                    now + at.duration_since(SystemTime::now()).unwrap_or_default()
                        + Duration::from_millis(1)
                });
                let next_step = [Some(deadline), asked, Some(now + self.recheck_every)]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(deadline);
                Err(Waiting {
                    deadline,
                    next_step,
                    what,
                })
            }
            (result, _) => Ok(result),
        }
    }

    /// Starts watching the database for changes by any process.
    pub fn subscribe(&self) -> Result<Waiter, ToolError> {
        self.wake
            .get_or_init(|| Wake::new(&self.config.db_path))
            .subscribe()
            .map_err(|source| self.placed(ToolError::Store(source)))
    }

    /// Registers the server's name (`--name`) now if it is free or its holder's process has
    /// exited, and says whether it did; otherwise the name is left for the first tool call, so
    /// that a health check (start, list the tools, exit) never takes a running session's name.
    pub fn claim_at_start(&self) -> Result<bool, ToolError> {
        let Some(name) = self.config.name.as_deref() else {
            return Ok(false);
        };
        let taken = self.take_unless_running(name).map_err(|e| self.placed(e))?;
        if !taken {
            tracing::info!(%name, "held by a running session: registering at the first tool call");
        }
        Ok(taken)
    }

    // Registers as `name` unless a process that may still run holds it; says whether it did.
    fn take_unless_running(&self, name: &str) -> Result<bool, ToolError> {
        let holder = sessions::holder(&lock(&self.conn), &self.config.room, name)?;
        if holder.as_ref().is_some_and(|h| h.may_be_running()) {
            return Ok(false);
        }
        self.register(name)?;
        Ok(true)
    }

    // Registers this client as `name` (superseding any holder).
    fn register(&self, name: &str) -> Result<(), ToolError> {
        let mut args = JsonObject::new();
        args.insert("name".into(), Value::String(name.to_string()));
        self.call("register_session", args)
            .unwrap_or_else(|_| unreachable!("register_session is in the registry"))
            .map(|_| ())
    }

    /// Runs `tool` with `args` once, in one transaction; a database failure names the file.
    /// A server with a name to claim (`--name`) registers it first, on its first call (real use:
    /// the last session to use a name holds it), and takes it back when it lost it to a process
    /// that has exited since.
    pub fn run_step(&self, tool: &ToolDef, args: &JsonObject) -> Step {
        // register_session is how the claim itself is made: it takes no part in it.
        let claim = self
            .config
            .name
            .as_deref()
            .filter(|_| tool.name != "register_session");
        if let Some(name) = claim
            && lock(&self.session).is_none()
            && let Err(e) = self.register(name)
        {
            return Step::answer(Err(e));
        }
        if tool.name == "register_session"
            && let Some(Value::String(name)) = args.get("name")
            && let Err(e) = self.may_act_as(name)
        {
            return Step::answer(Err(e));
        }
        let (mut step, superseded) = self.run_in_transaction(tool, args);
        // The heartbeat tool checks its own standing, and says so by its error.
        let superseded = superseded || matches!(step.result, Err(ToolError::Superseded { .. }));
        if let Some(name) = claim
            && superseded
            && lock(&self.session).as_ref().is_some_and(|s| s.name == name)
        {
            match self.take_unless_running(name) {
                Ok(true) => {
                    tracing::info!(%name, "the name's holder has exited: took it back");
                    step = self.run_in_transaction(tool, args).0;
                }
                Ok(false) => {}
                Err(e) => step.result = Err(e),
            }
        }
        Step {
            result: step.result.map_err(|e| self.placed(e)),
            ..step
        }
    }

    /// Runs `tool` with `args` once; a database failure names the file.
    pub fn run(&self, tool: &ToolDef, args: JsonObject) -> Result<Value, ToolError> {
        self.run_step(tool, &args).result
    }

    /// Unread messages for this client's session that no path has delivered yet, oldest
    /// first (none while it is unregistered, superseded or a visitor), for channel pushes.
    pub fn undelivered(&self, limit: u32) -> Result<Vec<Message>, ToolError> {
        let Some(session) = self.session().filter(|_| !self.visitor) else {
            return Ok(Vec::new());
        };
        let conn = lock(&self.conn);
        let read = || -> rusqlite::Result<Vec<Message>> {
            if sessions::standing(&conn, &session.session_id)? == Standing::Superseded {
                return Ok(Vec::new());
            }
            let filter = Filter {
                undelivered: true,
                ..Filter::default()
            };
            messages::inbox(&conn, &session, true, limit, &filter)
        };
        read().map_err(|e| self.placed(e.into()))
    }

    /// Records that `pushed` reached this client's session by a channel event.
    pub fn record_delivery(&self, pushed: &[Message]) -> Result<(), ToolError> {
        let Some(session) = self.session() else {
            return Ok(());
        };
        messages::deliver(&lock(&self.conn), &session.name, pushed, Via::Channel)
            .map_err(|e| self.placed(e.into()))
    }

    // A store error names the database file it happened in.
    fn placed(&self, e: ToolError) -> ToolError {
        match e {
            ToolError::Store(source) => ToolError::Database {
                path: self.config.db_path.clone(),
                source,
            },
            other => other,
        }
    }

    // Runs the tool once; also says whether the caller's session had lost its name. A tool
    // that mostly reads runs in a read transaction; should its write find that another process
    // wrote since the read began (SQLITE_BUSY, which no waiting can cure), it runs again with
    // the write lock taken up front.
    fn run_in_transaction(&self, tool: &ToolDef, args: &JsonObject) -> (Step, bool) {
        let (step, superseded, deferred) = self.run_once(tool, args, false);
        match &step.result {
            // Only a read transaction's write can meet that; a write lock held from the start
            // that still timed out has waited its busy timeout already.
            Err(ToolError::Store(e)) if deferred && store::is_busy(e) => {
                let (step, superseded, _) = self.run_once(tool, args, true);
                (step, superseded)
            }
            _ => (step, superseded),
        }
    }

    // Runs the tool once: its step, whether the caller's session had lost its name, and
    // whether it ran in a read transaction.
    fn run_once(&self, tool: &ToolDef, args: &JsonObject, write_first: bool) -> (Step, bool, bool) {
        let failed = |e: ToolError| (Step::answer(Err(e)), false, false);
        let conn = lock(&self.conn);
        let session = self.session();
        if tool.needs_session && session.is_none() {
            return failed(ToolError::NotRegistered);
        }
        // A visitor borrows a session's name; the session's own heartbeat is not its to give.
        let acting = tool.heartbeat && !self.visitor;
        let session_id = session
            .as_ref()
            .filter(|_| acting)
            .map(|s| s.session_id.clone());
        let beat_due = session_id.is_some()
            && lock(&self.last_beat).is_none_or(|at| at.elapsed() >= HEARTBEAT_EVERY);
        let deferred = !(beat_due || write_first || !(tool.read_only || tool.mostly_reads));
        let tx = match store::Transaction::begin(&conn, !deferred) {
            Ok(tx) => tx,
            Err(e) => return failed(e.into()),
        };
        let standing = match &session_id {
            Some(id) if beat_due => sessions::heartbeat(&tx, id, &clock::now()),
            Some(id) => sessions::standing(&tx, id),
            None => Ok(Standing::Live),
        };
        let standing = match standing {
            Ok(standing) => standing,
            Err(e) => return failed(e.into()),
        };
        let superseded = standing == Standing::Superseded;
        let call = Call::new(&tx, Client::new(self.config.clone(), session, superseded));
        // The wrapper takes the arguments apart, so each run gets its own copy.
        let result = (tool.call)(&call, args.clone());
        let bound = call.client().take_bound();
        let retry = call.client().retry_requested();
        let retry_at = call.client().retry_time();
        drop(call);
        match result {
            Ok(value) => {
                if let Err(e) = tx.commit() {
                    return failed(e.into());
                }
                if beat_due {
                    *lock(&self.last_beat) = Some(Instant::now());
                }
                if self.wake_own_writes
                    && !deferred
                    && let Some(wake) = self.wake.get()
                {
                    wake.notify_own_write();
                }
                if let Some(session) = bound {
                    // A new registration was stamped just now.
                    *lock(&self.session) = Some(session);
                    *lock(&self.last_beat) = Some(Instant::now());
                }
                (
                    Step {
                        result: Ok(value),
                        retry,
                        retry_at,
                    },
                    superseded,
                    deferred,
                )
            }
            // Dropping the transaction rolls it back: a failed call changes nothing.
            Err(e) => (Step::answer(Err(e)), superseded, deferred),
        }
    }
}

// A poisoned lock only means another call panicked; the data it guards is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::Dispatcher;
    use crate::config::Config;

    // A waiting call with nothing to wake it still runs again every `recheck_every`: here its
    // runs refresh the caller's heartbeat well before the wait ends (its last run, at the
    // deadline, would refresh it too, so the change must be seen early).
    #[test]
    fn a_waiting_call_runs_again_without_a_change() {
        let dir = std::env::temp_dir().join(format!("c2c-recheck-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c2c.db");
        let conn = crate::store::open(&path).unwrap();
        let dispatcher = Dispatcher::new(conn, Config::new(path.clone()))
            .with_recheck_every(Duration::from_millis(200));
        let args = |v: serde_json::Value| v.as_object().unwrap().clone();
        dispatcher
            .call("register_session", args(json!({"name": "alpha"})))
            .unwrap()
            .unwrap();
        let seen = || -> String {
            rusqlite::Connection::open(&path)
                .unwrap()
                .query_row(
                    "SELECT last_seen_at FROM sessions WHERE name = 'alpha'",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        };
        let before = seen();
        let started = Instant::now();
        std::thread::scope(|s| {
            let wait = s.spawn(|| {
                dispatcher
                    .call("wait_for_message", args(json!({"timeout_seconds": 5})))
                    .unwrap()
                    .unwrap()
            });
            let refreshed = loop {
                if seen() != before {
                    break Some(started.elapsed());
                }
                if wait.is_finished() {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            assert_eq!(wait.join().unwrap()["timed_out"], true);
            let refreshed = refreshed.expect("the heartbeat moved only when the wait ended");
            assert!(
                refreshed < Duration::from_secs(4),
                "the heartbeat moved only after {refreshed:?} of a 5 s wait"
            );
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
