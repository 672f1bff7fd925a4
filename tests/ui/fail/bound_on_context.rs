use c2c_server::error::ToolError;
use rusqlite::Connection;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// A bound on context.
    pub fn f(#[arg(max_chars = 64)] _db: &Connection) -> Result<Out, ToolError> {
        Ok(Out {})
    }
}
fn main() {}
