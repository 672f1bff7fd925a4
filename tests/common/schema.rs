//! Every tool result a test receives is checked against the tool's own outputSchema with a
//! real JSON Schema validator (draft 2020-12), as the official SDKs and the clients built on
//! them do: a result that its schema does not describe is a failure the model would see as an
//! error, so a schema and the data it describes can never drift apart unnoticed.

use std::collections::HashMap;
use std::sync::OnceLock;

use c2c_server::registry::ToolSet;
use c2c_server::tools::Tools;
use serde_json::Value;

fn validators() -> &'static HashMap<&'static str, jsonschema::Validator> {
    static VALIDATORS: OnceLock<HashMap<&'static str, jsonschema::Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        <Tools as ToolSet>::TOOLS
            .iter()
            .map(|tool| {
                let schema = Value::Object((tool.output_schema)());
                let validator = jsonschema::draft202012::new(&schema).unwrap_or_else(|e| {
                    panic!(
                        "{}: the output schema is not valid JSON Schema: {e}",
                        tool.name
                    )
                });
                (tool.name, validator)
            })
            .collect()
    })
}

/// Whether `name` is a tool's name (rather than, say, a command-line-only subcommand).
pub fn is_tool(name: &str) -> bool {
    validators().contains_key(name)
}

/// The ways `result` breaks `tool`'s output schema (empty when it conforms).
pub fn violations(tool: &str, result: &Value) -> Vec<String> {
    let validator = validators()
        .get(tool)
        .unwrap_or_else(|| panic!("no tool named {tool}"));
    validator
        .iter_errors(result)
        .map(|e| format!("{} at `{}`", e, e.instance_path()))
        .collect()
}

/// Fails the test when `result` does not match `tool`'s output schema.
pub fn check(tool: &str, result: &Value) {
    let found = violations(tool, result);
    assert!(
        found.is_empty(),
        "{tool}: the result does not match its outputSchema: {found:?}\nresult: {result}"
    );
}
