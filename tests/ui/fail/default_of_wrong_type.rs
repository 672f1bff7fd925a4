use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// A number defaulting to text.
    pub fn f(#[arg(default = "ten")] limit: u32) -> Result<Out, ToolError> {
        let _ = limit;
        Ok(Out {})
    }
}
fn main() {}
