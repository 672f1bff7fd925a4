use c2c_server::error::ToolError;
use rusqlite::Connection;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// const.
    pub const fn a(_db: &Connection) -> Result<Out, ToolError> {
        Ok(Out {})
    }

    /// unsafe.
    pub unsafe fn b(_db: &Connection) -> Result<Out, ToolError> {
        Ok(Out {})
    }

    /// An ABI.
    pub extern "C" fn c(_db: &Connection) -> Result<Out, ToolError> {
        Ok(Out {})
    }

    /// Generic.
    pub fn d<X: Default>(_db: &Connection) -> Result<Out, ToolError> {
        let _ = X::default();
        Ok(Out {})
    }
}
fn main() {}
