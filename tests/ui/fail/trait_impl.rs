use c2c_server::error::ToolError;
use rusqlite::Connection;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

pub trait Api {
    fn f(db: &Connection) -> Result<Out, ToolError>;
}

#[c2c_macros::tools]
impl Api for T {
    /// In a trait impl.
    fn f(_db: &Connection) -> Result<Out, ToolError> {
        Ok(Out {})
    }
}
fn main() {}
