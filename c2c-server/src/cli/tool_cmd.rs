//! One subcommand per tool, built at run time from the registry (`ToolDef`): its name with
//! hyphens, its doc comment as help, one `--option` per argument typed by the argument's JSON
//! kind, `--as NAME` for tools that act as a session, `--json` for the exact result. Nothing
//! here names a particular tool: a new annotated function is a new subcommand.

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::{Map, Value};

use crate::registry::{ArgDef, ArgKind, JsonObject, ToolDef};

/// The id of the `--as` option.
pub const AS: &str = "as";
/// The id of the `--json` option.
pub const JSON: &str = "json";

/// The subcommand name of a tool: `send_message` -> `send-message`.
pub fn command_name(tool: &ToolDef) -> String {
    tool.name.replace('_', "-")
}

fn long(arg: &ArgDef) -> String {
    arg.name.replace('_', "-")
}

fn negate_id(arg: &ArgDef) -> String {
    format!("{}--negated", arg.name)
}

/// The first sentence of `text`: up to a full stop followed by a space and a capital letter
/// (so that "e.g. \"local\"" does not end it).
fn first_sentence(text: &str) -> &str {
    text.match_indices(". ")
        .find(|(at, _)| text[at + 2..].starts_with(|c: char| c.is_uppercase()))
        .map_or(text, |(at, _)| &text[..at])
}

/// The clap subcommand for `tool`.
pub fn command(tool: &'static ToolDef) -> Command {
    let summary = first_sentence(tool.description);
    let mut cmd = Command::new(command_name(tool))
        .about(summary.trim_end_matches('.').to_string())
        .long_about(tool.description)
        .arg(
            Arg::new(AS)
                .long("as")
                .value_name("NAME")
                .required(tool.needs_session)
                .help(if tool.needs_session {
                    "Act as this session (registered if no live session has the name; a live one is not taken over)"
                } else {
                    "Act as this session (optional for this tool)"
                }),
        )
        .arg(
            Arg::new(JSON)
                .long("json")
                .action(ArgAction::SetTrue)
                .help("Print the tool's exact JSON result"),
        );
    for arg in tool.args {
        cmd = cmd.arg(option(arg));
        if let (Some(flag), ArgKind::Boolean) = (arg.negate, (arg.kind)()) {
            cmd = cmd.arg(
                Arg::new(negate_id(arg))
                    .long(flag)
                    .action(ArgAction::SetTrue)
                    .conflicts_with(arg.name)
                    .help(format!("Same as --{}=false", long(arg))),
            );
        }
    }
    cmd
}

fn option(arg: &'static ArgDef) -> Arg {
    let kind = (arg.kind)();
    let mut help = arg.description.to_string();
    if let Some(limits) = arg.limits() {
        help.push_str(&format!(" [{limits}]"));
    }
    if let Some(default) = arg.default {
        help.push_str(&format!(" [default: {}]", default()));
    }
    let mut option = Arg::new(arg.name).long(long(arg)).required(arg.required());
    option = match &kind {
        ArgKind::Boolean => option
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
            .value_parser(clap::value_parser!(bool))
            .value_name("BOOL"),
        ArgKind::Array(inner) => {
            help.push_str(" (repeat the option, separate with commas, or give a JSON array)");
            option
                .action(ArgAction::Append)
                .value_delimiter(',')
                .value_name(inner.to_string().to_uppercase())
        }
        ArgKind::Object => {
            help.push_str(" (JSON object)");
            option.value_name("JSON")
        }
        ArgKind::Any => {
            help.push_str(" (JSON; text that is not JSON is taken as a string)");
            option.value_name("JSON")
        }
        other => option.value_name(other.to_string().to_uppercase()),
    };
    option.help(help)
}

/// The tool arguments given on the command line, as the JSON object the tool takes; `Err`
/// is a usage message.
pub fn arguments(tool: &ToolDef, matches: &ArgMatches) -> Result<JsonObject, String> {
    let mut args = Map::new();
    for arg in tool.args {
        let kind = (arg.kind)();
        if arg.negate.is_some() && kind == ArgKind::Boolean && matches.get_flag(&negate_id(arg)) {
            args.insert(arg.name.to_string(), Value::Bool(false));
            continue;
        }
        let value = match &kind {
            ArgKind::Boolean => matches.get_one::<bool>(arg.name).map(|b| Value::Bool(*b)),
            ArgKind::Array(inner) => match matches.get_many::<String>(arg.name) {
                None => None,
                Some(values) => Some(array(arg, inner, values.map(String::as_str).collect())?),
            },
            _ => match matches.get_one::<String>(arg.name) {
                None => None,
                Some(text) => Some(scalar(arg, &kind, text)?),
            },
        };
        if let Some(value) = value {
            args.insert(arg.name.to_string(), value);
        }
    }
    Ok(args)
}

fn scalar(arg: &ArgDef, kind: &ArgKind, text: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("--{} expects {what}, got {text:?}", long(arg));
    match kind {
        ArgKind::String => Ok(Value::String(text.to_string())),
        ArgKind::Integer => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| bad("an integer")),
        ArgKind::Number => text
            .trim()
            .parse::<f64>()
            .map(Value::from)
            .map_err(|_| bad("a number")),
        ArgKind::Boolean => text
            .trim()
            .parse::<bool>()
            .map(Value::Bool)
            .map_err(|_| bad("true or false")),
        ArgKind::Object => match serde_json::from_str::<Value>(text) {
            Ok(value @ Value::Object(_)) => Ok(value),
            _ => Err(bad("a JSON object such as '{\"key\": \"value\"}'")),
        },
        ArgKind::Any => {
            Ok(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string())))
        }
        ArgKind::Array(inner) => array(arg, inner, vec![text]),
    }
}

fn array(arg: &ArgDef, inner: &ArgKind, values: Vec<&str>) -> Result<Value, String> {
    // clap has already split on commas, so a JSON array arrives in pieces: rejoin it.
    let joined = values.join(",");
    if joined.trim_start().starts_with('[') {
        return serde_json::from_str(&joined)
            .map_err(|e| format!("--{} is not a valid JSON array: {e}", long(arg)));
    }
    values
        .into_iter()
        .filter(|v| !v.trim().is_empty())
        .map(|v| scalar(arg, inner, v.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}
