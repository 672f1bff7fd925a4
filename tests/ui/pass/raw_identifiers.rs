// Raw identifiers: a tool and arguments named after keywords keep the plain names in the
// registry, the input schema and the arguments the call decodes.

use std::sync::Arc;

use c2c_server::call::{Call, Client};
use c2c_server::config::Config;
use c2c_server::error::ToolError;
use c2c_server::registry::ToolSet;
use serde_json::{Value, json};

pub struct Keywords;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {
    r#type: String,
    r#in: u32,
}

#[c2c_macros::tools]
impl Keywords {
    /// A tool called `type`.
    pub fn r#type(
        #[arg(desc = "The kind.")] r#type: String,
        #[arg(default = 1)] r#in: u32,
        #[arg(negate = "no-move")] r#move: Option<bool>,
    ) -> Result<Out, ToolError> {
        let _ = r#move;
        Ok(Out { r#type, r#in })
    }
}

fn main() {
    let tool = &<Keywords as ToolSet>::TOOLS[0];
    assert_eq!(tool.name, "type");
    let names: Vec<&str> = tool.args.iter().map(|a| a.name).collect();
    assert_eq!(names, ["type", "in", "move"]);
    let schema = (tool.raw_input_schema)();
    let properties: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(properties.len(), 3, "{schema:?}");
    for name in ["type", "in", "move"] {
        assert!(schema["properties"].get(name).is_some(), "{name} in {schema:?}");
    }

    let db = c2c_server::store::open_in_memory().unwrap();
    let call = Call::new(&db, Client::new(Arc::new(Config::new("unused.db".into())), None, false));
    let Value::Object(args) = json!({"type": "t", "in": 3}) else { unreachable!() };
    assert_eq!((tool.call)(&call, args).unwrap(), json!({"type": "t", "in": 3}));
}
