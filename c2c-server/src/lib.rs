//! claude-c2c: a local MCP server through which coding-agent sessions hand work to each other
//! by name, with durable messages and shared key/value state in one SQLite file.
//!
//! The flow of a call: [`cli`] reads the command line and opens the [`store`]; [`server`]
//! speaks MCP over stdio (behind the [`transport`] guard) and hands each `tools/call` to the
//! [`dispatch`]er, which claims the server's name when it is free or its holder's [`process`]
//! has exited, opens a transaction, builds the [`call`] context and runs the tool's generated
//! wrapper from [`tools`] (the annotated functions; the [`registry`] types describe them).
//! Everything a call sees lies in the client's room (`--room`): names, messages and state. A
//! tool that waits (`wait_for_message`, `get_state` on a version) is run again on each change
//! that [`wake`] notices, and at any time it names (an expiry); the server also pushes new
//! messages as Claude Code [`channel`] events, and [`cli`]'s hooks hand them to Claude Code's
//! prompt, finding their session by the Claude Code process they share with its server.
//! [`spec`] renders the registry as the checked-in reference in `spec/`.
//!
//! Across machines, the [`hub`] (`serve --listen`) serves the same dispatcher over HTTP: MCP
//! sessions at `/mcp` and a JSON API for the command line and hooks under `/v1`, each request
//! let in by a token (kept in the [`store`]) that scopes it to a room and perhaps a name; on
//! the other machines the [`remote`] side turns the stdio server into a relay to the hub and
//! points the command line and hooks at it, riding out restarts. [`tls`] sets up rustls for both.
//!
//! For people, [`ui`] serves a live page of a room (threads with receipts, sessions, state)
//! with a form to send from: `claude-c2c ui` on 127.0.0.1 for the local database, and the
//! hub at its root; a person's message goes through the dispatcher like any other.

#![warn(missing_docs)]

// Lets the code that `#[c2c_macros::tools]` generates name `::c2c_server` inside this crate too.
extern crate self as c2c_server;

pub mod call;
pub mod channel;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod hub;
pub mod process;
pub mod registry;
pub mod remote;
pub mod server;
pub mod spec;
pub mod store;
pub mod tls;
pub mod tools;
pub mod transport;
pub mod ui;
pub mod wake;

/// Crates the generated code reaches through this one, so users of the macro need not depend
/// on them directly.
#[doc(hidden)]
pub mod __private {
    pub use schemars;
    pub use serde_json;
}
