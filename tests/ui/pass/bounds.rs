// Declared bounds: recorded in the ArgDefs, stated in the input schema, checked by the wrapper
// (for optional arguments only when given, and for defaults as well).

use std::sync::Arc;

use c2c_server::call::{Call, Client};
use c2c_server::config::Config;
use c2c_server::error::ToolError;
use c2c_server::registry::ToolSet;
use rusqlite::Connection;
use serde_json::{Value, json};

pub struct Bounded;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Out {
    ok: bool,
}

#[c2c_macros::tools]
impl Bounded {
    /// Takes bounded arguments.
    pub fn take(
        _db: &Connection,
        #[arg(default = 20, range = 1..=500, desc = "How many.")] limit: i64,
        #[arg(range = -5..=5)] offset: Option<i32>,
        #[arg(range = 0..)] age: Option<u64>,
        #[arg(max_chars = 4)] name: String,
        #[arg(max_chars = 3)] tag: Option<String>,
        #[arg(max_items = 2)] ids: Vec<i64>,
        #[arg(max_items = 1)] more: Option<Vec<String>>,
        plain: Option<u32>,
    ) -> Result<Out, ToolError> {
        let _ = (limit, offset, age, name, tag, ids, more, plain);
        Ok(Out { ok: true })
    }
}

fn run(args: Value) -> Result<Value, String> {
    let db = c2c_server::store::open_in_memory().unwrap();
    let config = Arc::new(Config::new("unused.db".into()));
    let call = Call::new(&db, Client::new(config, None, false));
    let Value::Object(args) = args else { panic!("object") };
    (<Bounded as ToolSet>::TOOLS[0].call)(&call, args).map_err(|e| e.to_string())
}

fn main() {
    let tool = &<Bounded as ToolSet>::TOOLS[0];
    let bounds: Vec<_> = tool
        .args
        .iter()
        .map(|a| (a.name, a.min, a.max, a.max_chars, a.max_items))
        .collect();
    assert_eq!(
        bounds,
        [
            ("limit", Some(1), Some(500), None, None),
            ("offset", Some(-5), Some(5), None, None),
            ("age", Some(0), None, None, None),
            ("name", None, None, Some(4), None),
            ("tag", None, None, Some(3), None),
            ("ids", None, None, None, Some(2)),
            ("more", None, None, None, Some(1)),
            ("plain", None, None, None, None),
        ]
    );
    let limits: Vec<Option<String>> = tool.args.iter().map(|a| a.limits()).collect();
    assert_eq!(
        limits,
        [
            Some("1 to 500".to_string()),
            Some("-5 to 5".to_string()),
            Some("0 or more".to_string()),
            Some("at most 4 characters".to_string()),
            Some("at most 3 characters".to_string()),
            Some("at most 2 items".to_string()),
            Some("at most 1 item".to_string()),
            None,
        ]
    );

    let schema = Value::Object(tool.input_schema());
    let p = &schema["properties"];
    assert_eq!(
        p["limit"],
        json!({"type": "integer", "description": "How many.", "minimum": 1, "maximum": 500, "default": 20})
    );
    assert_eq!(p["offset"]["minimum"], -5);
    assert_eq!(p["offset"]["maximum"], 5);
    assert_eq!(p["age"]["minimum"], 0);
    assert_eq!(p["age"].get("maximum"), None);
    assert_eq!(p["name"], json!({"type": "string", "maxLength": 4}));
    assert_eq!(p["tag"]["maxLength"], 3);
    assert_eq!(p["ids"]["maxItems"], 2);
    assert_eq!(p["more"]["maxItems"], 1);
    assert_eq!(p["plain"].get("maximum"), None);

    let ok = json!({"name": "abcd", "ids": [1, 2]});
    assert_eq!(run(ok.clone()).unwrap(), json!({"ok": true}));
    let with = |key: &str, value: Value| {
        let mut args = ok.clone();
        args[key] = value;
        run(args)
    };
    assert!(with("limit", json!(500)).is_ok());
    assert!(with("offset", json!(-5)).is_ok());
    assert!(with("age", json!(u64::MAX)).is_ok());
    assert!(with("name", json!("éééé")).is_ok(), "characters, not bytes");
    assert!(with("tag", Value::Null).is_ok());
    assert_eq!(
        with("limit", json!(0)).unwrap_err(),
        "invalid argument `limit`: 0 is out of range: give 1 to 500"
    );
    assert_eq!(
        with("offset", json!(6)).unwrap_err(),
        "invalid argument `offset`: 6 is out of range: give -5 to 5"
    );
    assert_eq!(
        with("name", json!("abcde")).unwrap_err(),
        "invalid argument `name`: is 5 characters long: use at most 4"
    );
    assert_eq!(
        with("tag", json!("abcd")).unwrap_err(),
        "invalid argument `tag`: is 4 characters long: use at most 3"
    );
    assert_eq!(
        with("ids", json!([1, 2, 3])).unwrap_err(),
        "invalid argument `ids`: has 3 items: give at most 2 per call"
    );
    assert_eq!(
        with("more", json!(["a", "b"])).unwrap_err(),
        "invalid argument `more`: has 2 items: give at most 1 per call"
    );
}
