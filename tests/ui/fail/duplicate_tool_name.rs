use c2c_server::error::ToolError;
use rusqlite::Connection;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// The first.
    pub fn inbox(_db: &Connection) -> Result<Out, ToolError> {
        Ok(Out {})
    }

    /// The second, renamed onto the first.
    #[tool(name = "inbox")]
    pub fn inbox2(_db: &Connection) -> Result<Out, ToolError> {
        Ok(Out {})
    }
}
fn main() {}
