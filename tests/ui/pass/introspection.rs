// A block of tools of every supported shape, and the registry it produces.

use c2c_server::call::{Client, Session};
use c2c_server::error::ToolError;
use c2c_server::registry::{ArgKind, ToolSet};
use rusqlite::Connection;
use serde_json::{Map, Value, json};

pub struct Demo;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Count {
    n: u64,
}

#[c2c_macros::tools]
impl Demo {
    /// Counts things.
    ///
    /// Second paragraph.
    #[tool(read_only, idempotent)]
    pub fn count(
        _db: &Connection,
        #[arg(default = 20, desc = "How many.")] limit: u32,
        #[arg(default = "all", desc = "Which.")] kind: String,
        tag: Option<String>,
        ids: Vec<i64>,
        _value: Value,
        _meta: Option<Map<String, Value>>,
        _flag: bool,
        _ratio: f64,
        #[arg(default = true, negate = "all")] _unread_only: bool,
    ) -> Result<Count, ToolError> {
        let _ = (kind, tag);
        Ok(Count { n: u64::from(limit) + ids.len() as u64 })
    }

    /// Needs a name.
    #[tool(name = "needs-session", destructive, no_heartbeat)]
    pub fn needs_session(_me: &Session, _client: &Client) -> Result<Count, ToolError> {
        Ok(Count { n: 0 })
    }
}

fn main() {
    let tools = <Demo as ToolSet>::TOOLS;
    assert_eq!(tools.len(), 2);

    let count = &tools[0];
    assert_eq!(count.name, "count");
    assert_eq!(count.description, "Counts things.\n\nSecond paragraph.");
    assert!(count.read_only && count.idempotent && !count.destructive && count.heartbeat);
    assert!(!count.needs_session);
    let names: Vec<&str> = count.args.iter().map(|a| a.name).collect();
    assert_eq!(names, ["limit", "kind", "tag", "ids", "_value", "_meta", "_flag", "_ratio", "_unread_only"]);
    let required: Vec<bool> = count.args.iter().map(|a| a.required()).collect();
    assert_eq!(required, [false, false, false, true, true, false, true, true, false]);
    assert_eq!(count.args[8].negate, Some("all"));
    assert_eq!(count.args[0].negate, None);
    assert_eq!((count.args[0].default.unwrap())(), json!(20));
    assert_eq!((count.args[1].default.unwrap())(), json!("all"));
    assert_eq!(count.args[0].description, "How many.");
    assert_eq!((count.args[3].kind)(), ArgKind::Array(Box::new(ArgKind::Integer)));
    assert_eq!((count.args[5].kind)(), ArgKind::Object);
    assert_eq!((count.args[5].kind)().to_string(), "object");

    let schema = Value::Object(count.input_schema());
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["properties"]["limit"]["default"], 20);
    assert_eq!(schema["properties"]["limit"]["description"], "How many.");
    assert_eq!(schema["properties"]["kind"]["default"], "all");
    assert_eq!(schema["required"], json!(["ids", "_value", "_flag", "_ratio"]));
    let output = Value::Object((count.output_schema)());
    assert_eq!(output["type"], "object");
    assert_eq!(output["properties"]["n"]["type"], "integer");

    let tool = count.to_mcp();
    assert_eq!(tool.name, "count");
    let annotations = tool.annotations.unwrap();
    assert_eq!(annotations.read_only_hint, Some(true));

    let session = &tools[1];
    assert_eq!(session.name, "needs-session");
    assert!(session.needs_session && session.destructive && !session.heartbeat);
    assert!(session.args.is_empty());
    assert_eq!(Value::Object(session.input_schema())["properties"], Value::Null);
}
