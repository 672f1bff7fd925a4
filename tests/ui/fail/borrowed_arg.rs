use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// Borrows its argument.
    pub fn f(name: &str) -> Result<Out, ToolError> {
        let _ = name;
        Ok(Out {})
    }
}
fn main() {}
