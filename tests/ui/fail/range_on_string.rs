use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// A range on a string.
    pub fn f(#[arg(range = 1..=64)] name: String) -> Result<Out, ToolError> {
        let _ = name;
        Ok(Out {})
    }
}
fn main() {}
