//! One subcommand per tool, built at run time from the registry (`ToolDef`): its name with
//! hyphens, its doc comment as help, one `--option` per argument typed by the argument's JSON
//! kind (and for text and JSON, `--option-file PATH`, `-` for standard input, for what is too
//! long for a command line), `--as NAME` for tools that act as a session, `--json` for the
//! exact result. Nothing here names a particular tool: a new annotated function is a new
//! subcommand.

use std::io::Read;

use clap::{Arg, ArgAction, ArgGroup, ArgMatches, Command};
use serde_json::{Map, Value};

use super::json_text;
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

fn file_id(arg: &ArgDef) -> String {
    format!("{}--file", arg.name)
}

/// Whether an argument of this kind also takes its value from a file (`--<arg>-file`): text
/// and JSON, which may be longer than a command line can carry.
fn from_file(kind: &ArgKind) -> bool {
    matches!(kind, ArgKind::String | ArgKind::Object | ArgKind::Any)
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
        if from_file(&(arg.kind)()) {
            let file = Arg::new(file_id(arg))
                .long(format!("{}-file", long(arg)))
                .value_name("PATH")
                .help(format!(
                    "Read --{} from this file, exactly as it is (- for standard input)",
                    long(arg)
                ));
            cmd = cmd.arg(file).group(
                ArgGroup::new(format!("{}--either", arg.name))
                    .args([arg.name.to_string(), file_id(arg)])
                    .required(arg.required()),
            );
        }
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
    // A required argument that can come from a file is required through its group instead.
    let required = arg.required() && !from_file(&kind);
    let mut option = Arg::new(arg.name).long(long(arg)).required(required);
    option = match &kind {
        // `--flag`, `--flag true`, `--flag=false`: clap takes the next word only when it is
        // not an option.
        ArgKind::Boolean => option
            .num_args(0..=1)
            .default_missing_value("true")
            .value_parser(clap::value_parser!(bool))
            .value_name("BOOL"),
        ArgKind::Array(inner) => {
            help.push_str(" (repeat the option, separate with commas, or give a JSON array)");
            option
                .action(ArgAction::Append)
                .value_delimiter(',')
                .allow_negative_numbers(numeric(inner))
                .value_name(inner.to_string().to_uppercase())
        }
        ArgKind::Object => {
            help.push_str(" (JSON object)");
            option.value_name("JSON")
        }
        ArgKind::Any => {
            help.push_str(
                " (JSON; text that starts like JSON must be JSON, e.g. '\"1.2.3\"' for that \
                 string; other text is taken as a string)",
            );
            // `--value -5` is the number, not an option.
            option.value_name("JSON").allow_negative_numbers(true)
        }
        // Negative numbers reach the tool, whose range check says what is allowed.
        other => option
            .value_name(other.to_string().to_uppercase())
            .allow_negative_numbers(numeric(other)),
    };
    option.help(help)
}

fn numeric(kind: &ArgKind) -> bool {
    matches!(kind, ArgKind::Integer | ArgKind::Number)
}

/// The tool arguments given on the command line, as the JSON object the tool takes; `Err`
/// is a usage message.
pub fn arguments(tool: &ToolDef, matches: &ArgMatches) -> Result<JsonObject, String> {
    let mut args = Map::new();
    let mut stdin_read = false;
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
            _ => match (
                matches.get_one::<String>(arg.name),
                matches.try_get_one::<String>(&file_id(arg)).ok().flatten(),
            ) {
                (Some(text), _) => Some(scalar(arg, &kind, text)?),
                (None, Some(path)) => {
                    let text = read_file(arg, path, &mut stdin_read)?;
                    Some(scalar(arg, &kind, &text)?)
                }
                (None, None) => None,
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
        ArgKind::Object => match json_text::parse(text) {
            Ok(value @ Value::Object(_)) => Ok(value),
            Ok(_) => Err(bad("a JSON object such as '{\"key\": \"value\"}'")),
            Err(e) => Err(format!(
                "--{} expects a JSON object such as '{{\"key\": \"value\"}}', and this is not \
                 JSON: {e}",
                long(arg)
            )),
        },
        ArgKind::Any if json_text::looks_like_json(text) => json_text::parse(text).map_err(|e| {
            format!(
                "--{} starts like JSON but is not valid JSON: {e}\nTo store it as text, give \
                 it as a JSON string (e.g. '\"1.2.3\"').",
                long(arg)
            )
        }),
        ArgKind::Any => Ok(Value::String(text.to_string())),
        ArgKind::Array(inner) => array(arg, inner, vec![text]),
    }
}

/// The text of the file at `path` for `arg`, or of standard input for `-` (which can be read
/// only once per command).
fn read_file(arg: &ArgDef, path: &str, stdin_read: &mut bool) -> Result<String, String> {
    let option = format!("--{}-file", long(arg));
    let mut bytes = Vec::new();
    if path == "-" {
        if std::mem::replace(stdin_read, true) {
            return Err(format!(
                "{option} -: standard input was already read for another option; give {option} \
                 a file"
            ));
        }
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{option}: cannot read standard input: {e}"))?;
    } else {
        bytes = std::fs::read(path).map_err(|e| format!("{option}: cannot read {path}: {e}"))?;
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{option}: {} is not UTF-8 text (invalid byte at offset {})",
            if path == "-" { "standard input" } else { path },
            e.utf8_error().valid_up_to()
        )
    })
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
