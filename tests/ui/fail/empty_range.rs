use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// Bounds that refuse every value.
    pub fn f(
        #[arg(range = 10..=1)] reversed: i64,
        #[arg(default = 0, range = 1..=500)] limit: i64,
        #[arg(max_chars = 0)] name: String,
        #[arg(max_items = 0)] ids: Vec<i64>,
    ) -> Result<Out, ToolError> {
        let _ = (reversed, limit, name, ids);
        Ok(Out {})
    }
}
fn main() {}
