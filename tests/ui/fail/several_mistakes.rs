use c2c_server::error::ToolError;
use rusqlite::Connection;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    pub fn undocumented(_db: &Connection) -> Result<Out, ToolError> {
        Ok(Out {})
    }

    /// Misspelt key.
    #[tool(idempotnet)]
    pub fn g(_db: &Connection) -> Result<Out, ToolError> {
        Ok(Out {})
    }

    /// Bad name.
    #[tool(name = "")]
    pub fn h(#[arg(dflt = 1)] n: u32) -> Result<Out, ToolError> {
        let _ = n;
        Ok(Out {})
    }
}
fn main() {}
