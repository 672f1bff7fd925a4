use c2c_server::error::ToolError;
use rusqlite::Connection;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

pub struct G<X>(X);

#[c2c_macros::tools]
impl<X> G<X> {
    /// In a generic impl.
    pub fn f(_db: &Connection) -> Result<Out, ToolError> {
        Ok(Out {})
    }
}
fn main() {}
