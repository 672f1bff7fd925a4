use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// A key given twice.
    pub fn f(#[arg(range = 1..=5, range = 1..=9)] n: i64) -> Result<Out, ToolError> {
        let _ = n;
        Ok(Out {})
    }
}
fn main() {}
