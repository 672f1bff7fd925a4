use c2c_server::error::ToolError;
use rusqlite::Connection;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// Annotations are bare words.
    #[tool(read_only = true)]
    pub fn f(_db: &Connection) -> Result<Out, ToolError> {
        Ok(Out {})
    }
}
fn main() {}
