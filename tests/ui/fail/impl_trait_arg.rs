use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// Takes anything printable.
    pub fn f(text: impl std::fmt::Display) -> Result<Out, ToolError> {
        let _ = text.to_string();
        Ok(Out {})
    }
}
fn main() {}
