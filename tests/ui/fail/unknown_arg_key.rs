use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// An argument with a misspelt key.
    pub fn f(#[arg(description = "How many.")] limit: u32) -> Result<Out, ToolError> {
        let _ = limit;
        Ok(Out {})
    }
}
fn main() {}
