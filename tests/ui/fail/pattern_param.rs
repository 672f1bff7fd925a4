use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// A tuple pattern instead of a name.
    pub fn f((a, b): (u32, u32)) -> Result<Out, ToolError> {
        let _ = (a, b);
        Ok(Out {})
    }

    /// A binding by reference.
    pub fn g(ref limit: u32) -> Result<Out, ToolError> {
        let _ = limit;
        Ok(Out {})
    }
}
fn main() {}
