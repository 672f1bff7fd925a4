//! Fuzzes argument decoding and dispatch: the first byte picks a tool of the registry (or an
//! unknown name), the rest is taken as the call's arguments (JSON when it parses as an
//! object, else wrapped as a string under a real argument name). Any panic is a finding; a
//! tool error is an expected answer.

#![no_main]

use std::sync::OnceLock;

use c2c_server::config::Config;
use c2c_server::dispatch::Dispatcher;
use c2c_server::registry::{JsonObject, ToolSet};
use c2c_server::tools::Tools;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn dispatcher() -> &'static Dispatcher {
    static DISPATCHER: OnceLock<Dispatcher> = OnceLock::new();
    DISPATCHER.get_or_init(|| {
        let conn = c2c_server::store::open_in_memory().expect("an in-memory database");
        let mut dispatcher = Dispatcher::new(conn, Config::new("fuzz.db".into()));
        dispatcher.visit("fuzzer").expect("registering the fuzzer");
        dispatcher
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let tools = <Tools as ToolSet>::TOOLS;
    let name = match tools.get(pick as usize % (tools.len() + 1)) {
        Some(tool) => tool.name,
        None => "no_such_tool",
    };
    let args: JsonObject = match serde_json::from_slice::<Value>(rest) {
        Ok(Value::Object(map)) => map,
        _ => {
            let mut map = JsonObject::new();
            let text = String::from_utf8_lossy(rest).into_owned();
            let key = tools
                .iter()
                .flat_map(|t| t.args)
                .nth(rest.first().copied().unwrap_or(0) as usize % 16)
                .map_or("name", |a| a.name);
            map.insert(key.to_string(), Value::String(text));
            map
        }
    };
    // One step: a waiting tool answers at once instead of blocking the fuzzer.
    if let Some(tool) = dispatcher().find(name) {
        let _ = dispatcher().run(tool, args);
    }
});
