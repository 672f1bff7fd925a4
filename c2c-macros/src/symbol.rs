//! The attribute names and keys the macro understands, in one place.

/// The attribute on a tool function: `#[tool(..)]`.
pub const TOOL: &str = "tool";
/// The attribute on a tool argument: `#[arg(..)]`.
pub const ARG: &str = "arg";
/// `#[tool(read_only)]`
pub const READ_ONLY: &str = "read_only";
/// `#[tool(destructive)]`
pub const DESTRUCTIVE: &str = "destructive";
/// `#[tool(idempotent)]`
pub const IDEMPOTENT: &str = "idempotent";
/// `#[tool(no_heartbeat)]`
pub const NO_HEARTBEAT: &str = "no_heartbeat";
/// `#[tool(mostly_reads)]`: the tool writes only now and then, so it runs in a read
/// transaction that takes the write lock only when it does write.
pub const MOSTLY_READS: &str = "mostly_reads";
/// `#[tool(name = "..")]`
pub const NAME: &str = "name";
/// `#[arg(default = ..)]`
pub const DEFAULT: &str = "default";
/// `#[arg(desc = "..")]`
pub const DESC: &str = "desc";
/// `#[arg(negate = "all")]`: a command-line flag that sets a boolean argument to false.
pub const NEGATE: &str = "negate";
/// `#[arg(range = 1..=500)]` or `#[arg(range = 0..)]`: the values an integer argument takes.
pub const RANGE: &str = "range";
/// `#[arg(max_chars = 64)]`: the longest a string argument may be, in characters.
pub const MAX_CHARS: &str = "max_chars";
/// `#[arg(max_items = 1000)]`: the most elements an array argument may hold.
pub const MAX_ITEMS: &str = "max_items";

/// The keys `#[tool(..)]` accepts, for error messages.
pub const TOOL_KEYS: &[&str] = &[
    READ_ONLY,
    DESTRUCTIVE,
    IDEMPOTENT,
    NO_HEARTBEAT,
    MOSTLY_READS,
    NAME,
];
/// The keys `#[arg(..)]` accepts, for error messages.
pub const ARG_KEYS: &[&str] = &[DEFAULT, DESC, NEGATE, RANGE, MAX_CHARS, MAX_ITEMS];

/// `a`, `b` and `c`, for listing keys in a message.
pub fn list(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}
