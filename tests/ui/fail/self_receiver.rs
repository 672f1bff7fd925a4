use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// A method.
    pub fn f(&self) -> Result<Out, ToolError> {
        Ok(Out {})
    }
}
fn main() {}
