use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// Takes a set.
    pub fn f(ids: std::collections::HashSet<u8>) -> Result<Out, ToolError> {
        let _ = ids;
        Ok(Out {})
    }
}
fn main() {}
