use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// Variadic.
    pub unsafe extern "C" fn v(_n: u32, _: ...) -> Result<Out, ToolError> {
        Ok(Out {})
    }
}
fn main() {}
