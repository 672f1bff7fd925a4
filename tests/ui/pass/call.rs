// The generated wrapper decodes arguments, applies defaults, checks them, and runs the body.

use std::sync::Arc;

use c2c_server::call::{Call, Client, Session};
use c2c_server::config::Config;
use c2c_server::error::ToolError;
use c2c_server::registry::ToolSet;
use rusqlite::Connection;
use serde_json::{Value, json};

pub struct Echo;

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Echoed {
    text: String,
    times: u32,
    by: Option<String>,
}

#[c2c_macros::tools]
impl Echo {
    /// Repeats text.
    pub fn echo(
        db: &Connection,
        client: &Client,
        text: String,
        #[arg(default = 2)] times: u32,
    ) -> Result<Echoed, ToolError> {
        let one: i64 = db.query_row("SELECT 1", [], |r| r.get(0))?;
        assert_eq!(one, 1);
        if times == 0 {
            return Err(ToolError::invalid("times", "must be positive"));
        }
        Ok(Echoed { text: text.repeat(times as usize), times, by: client.session().map(|s| s.name.clone()) })
    }

    /// Only for the registered.
    pub fn whoami(me: &Session) -> Result<Echoed, ToolError> {
        Ok(Echoed { text: me.name.clone(), times: 1, by: None })
    }
}

fn run(tool: usize, args: Value, session: Option<Session>) -> Result<Value, String> {
    let db = c2c_server::store::open_in_memory().unwrap();
    let config = Arc::new(Config::new("unused.db".into()));
    let call = Call::new(&db, Client::new(config, session, false));
    let Value::Object(args) = args else { panic!("object") };
    (<Echo as ToolSet>::TOOLS[tool].call)(&call, args).map_err(|e| e.to_string())
}

fn main() {
    assert_eq!(run(0, json!({"text": "ab"}), None).unwrap(), json!({"text": "abab", "times": 2, "by": null}));
    assert_eq!(run(0, json!({"text": "ab", "times": 3}), None).unwrap()["text"], "ababab");
    assert_eq!(run(0, json!({"text": "ab", "times": null}), None).unwrap()["times"], 2);
    assert_eq!(run(0, json!({}), None).unwrap_err(), "missing required argument `text`");
    assert_eq!(
        run(0, json!({"text": "a", "tmies": 1}), None).unwrap_err(),
        "unknown argument `tmies`; valid arguments: `text`, `times`"
    );
    assert_eq!(
        run(0, json!({"text": "a", "times": -1}), None).unwrap_err(),
        "invalid argument `times`: invalid value: integer `-1`, expected an integer"
    );
    assert_eq!(run(0, json!({"text": "a", "times": 0}), None).unwrap_err(), "invalid argument `times`: must be positive");

    assert!(run(1, json!({}), None).unwrap_err().contains("register_session"));
    let me = Session { session_id: "id".into(), name: "local".into(), room: "default".into() };
    assert_eq!(run(1, json!({}), Some(me.clone())).unwrap()["text"], "local");
    assert_eq!(run(0, json!({"text": "x"}), Some(me)).unwrap()["by"], "local");
    assert!(<Echo as ToolSet>::TOOLS[1].needs_session);
    assert!(!<Echo as ToolSet>::TOOLS[0].needs_session);
}
