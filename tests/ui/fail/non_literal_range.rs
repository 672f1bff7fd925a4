use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// Ranges the macro cannot read.
    pub fn f(
        #[arg(range = 1..=MAX)] a: i64,
        #[arg(range = 1..500)] b: i64,
        #[arg(range = ..=500)] c: i64,
        #[arg(range = 500)] d: i64,
        #[arg(max_chars = MAX_CHARS)] e: String,
    ) -> Result<Out, ToolError> {
        let _ = (a, b, c, d, e);
        Ok(Out {})
    }
}
const MAX: i64 = 500;
const MAX_CHARS: usize = 64;
fn main() {}
