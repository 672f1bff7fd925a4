use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// A length on an integer, a count of items on a string.
    pub fn f(
        #[arg(max_chars = 64)] n: Option<i64>,
        #[arg(max_items = 10)] text: String,
    ) -> Result<Out, ToolError> {
        let _ = (n, text);
        Ok(Out {})
    }
}
fn main() {}
