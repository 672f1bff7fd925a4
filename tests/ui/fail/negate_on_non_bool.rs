use c2c_server::error::ToolError;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// `negate` on a number: the flag could only set it to false.
    pub fn f(#[arg(default = 5, negate = "none")] limit: u32) -> Result<Out, ToolError> {
        let _ = limit;
        Ok(Out {})
    }

    /// `negate` behind an alias is still not a bool.
    pub fn g(#[arg(negate = "off")] flag: Flag) -> Result<Out, ToolError> {
        let _ = flag;
        Ok(Out {})
    }
}

type Flag = String;
fn main() {}
