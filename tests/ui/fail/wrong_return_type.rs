use rusqlite::Connection;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// Returns the output itself, not a Result.
    pub fn f(_db: &Connection) -> Out {
        Out {}
    }
}
fn main() {}
