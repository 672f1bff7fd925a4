use c2c_server::error::ToolError;
use rusqlite::Connection;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// Wants to change the connection.
    pub fn f(db: &mut Connection) -> Result<Out, ToolError> {
        let _ = db;
        Ok(Out {})
    }
}
fn main() {}
