use c2c_server::error::ToolError;
use rusqlite::Connection;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// #[arg] on context taken by reference.
    pub fn f(#[arg(negate = "none")] _db: &Connection) -> Result<Out, ToolError> {
        Ok(Out {})
    }
}
fn main() {}
