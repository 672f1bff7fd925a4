//! `#[tools]`: write each MCP tool of claude-c2c once, as a plain function with a doc comment
//! inside one annotated `impl` block, and get its metadata, argument struct, input and output
//! schemas, wrapper and run-time registry entry generated from it.
//!
//! ```ignore
//! #[c2c_macros::tools]
//! impl Tools {
//!     /// Read messages addressed to this session.
//!     #[tool(read_only)]
//!     pub fn inbox(
//!         db: &Connection,                 // context: taken by reference
//!         me: &Session,                    // context that requires register_session
//!         #[arg(default = 20, range = 1..=500, desc = "Most messages to return.")] limit: u32,
//!         tag: Option<String>,             // an argument: taken by value
//!     ) -> Result<Inbox, ToolError> { .. }
//! }
//! ```
//!
//! Keys of `#[tool(..)]`: `read_only`, `destructive`, `idempotent`, `no_heartbeat`,
//! `mostly_reads`, `name = "..."`. Keys of `#[arg(..)]`: `default = <expr>`, `desc = "..."`,
//! `negate = "..."` (a command-line flag that sets a boolean argument to false), and the
//! bounds the generated wrapper checks and the input schema states: `range = 1..=500` or
//! `range = 0..` (integers: `minimum`, `maximum`), `max_chars = 64` (strings: `maxLength`),
//! `max_items = 1000` (arrays: `maxItems`).
//! The flow is parse ([`ast`], [`attr`]) -> validate ([`valid`]) -> expand ([`expand`]), with
//! every error collected ([`ctxt`]) so one build shows them all.

#![warn(missing_docs)]

mod ast;
mod attr;
mod ctxt;
mod expand;
mod symbol;
mod valid;

use proc_macro::TokenStream;

/// Turns an `impl` block of tool functions into the tool registry; see the crate docs.
#[proc_macro_attribute]
pub fn tools(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::tools(args.into(), input.into()).into()
}
