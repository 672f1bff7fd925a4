use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// Takes a reference to something that is not context.
    pub fn f(_path: &std::path::Path) -> Result<Out, ToolError> {
        Ok(Out {})
    }
}
fn main() {}
