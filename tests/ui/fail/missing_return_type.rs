
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {}

pub struct T;

#[c2c_macros::tools]
impl T {
    /// Returns nothing.
    pub fn f(_db: &Connection) {}
}
fn main() {}
