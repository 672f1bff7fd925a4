//! Turning a tool's JSON result into text for a person at a terminal: a list of objects
//! becomes an aligned table (free text last, uncut; registration ids left out), other fields
//! `key  value` lines, timestamps shortened to the second, JSON shown as JSON only where the
//! value is JSON. Colour (bold headers) only when asked for.

use serde_json::Value;

/// Whether to colour this process's output.
pub fn use_color() -> bool {
    use std::io::IsTerminal;
    color_wanted(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR"),
    )
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to anything but empty
/// (<https://no-color.org>).
pub fn color_wanted(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// `text` in bold when `color` is on.
pub fn bold(text: &str, color: bool) -> String {
    if color {
        format!("\x1b[1m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// A result object as readable, aligned text, the way `gh` prints: what a person needs, in
/// aligned columns, without JSON except for values that are JSON (`value`, `metadata`).
pub fn render(value: &Value, color: bool) -> String {
    let Value::Object(fields) = value else {
        return cell("", value) + "\n";
    };
    let is_table =
        |field: &Value| matches!(field, Value::Array(items) if items.iter().all(Value::is_object));
    // The fields shown as `key value` lines; an object or null (a get_state entry) is shown as
    // a block of its own.
    let is_block =
        |key: &str, field: &Value| key != "value" && (field.is_object() || field.is_null());
    let lines: Vec<(&String, &Value)> = fields
        .iter()
        .filter(|(key, field)| !(is_table(field) || is_block(key, field)))
        .collect();
    let width = lines.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    let mut out = String::new();
    // The `key value` lines first, then the blocks and tables they sum up.
    let (first, rest): (Vec<_>, Vec<_>) = fields
        .iter()
        .partition(|(key, field)| !(is_table(field) || is_block(key, field)));
    for (key, field) in first.into_iter().chain(rest) {
        match field {
            Value::Array(items) if is_table(field) => {
                // A table beside other fields says what it lists.
                if fields.len() > 1 {
                    out.push_str(&format!("\n{}\n", bold(&format!("{key}:"), color)));
                }
                if items.is_empty() {
                    out.push_str(&format!("(no {key})\n"));
                } else {
                    out.push_str(&table(items, color));
                }
            }
            Value::Object(_) | Value::Null if is_block(key, field) => {
                if fields.len() > 1 {
                    out.push_str(&format!("\n{}\n", bold(&format!("{key}:"), color)));
                }
                match field {
                    Value::Object(_) => out.push_str(&render(field, color)),
                    _ => out.push_str(&format!("(no {key})\n")),
                }
            }
            // A lone line needs no alignment.
            _ if lines.len() == 1 => {
                out.push_str(&format!("{} {}\n", bold(key, color), cell(key, field)));
            }
            _ => {
                let pad = " ".repeat(width - key.len());
                out.push_str(&format!(
                    "{}{pad}  {}\n",
                    bold(key, color),
                    cell(key, field)
                ));
            }
        }
    }
    out.trim_start_matches('\n').to_string()
}

/// Columns a table leaves out: registration ids, which the name next to them says better
/// (`--json` has them).
const HIDDEN_COLUMNS: &[&str] = &["session_id", "from_session"];

/// Columns of free text, which go last where they may run on without breaking the alignment.
const TEXT_COLUMNS: &[&str] = &["body", "preview"];

/// Rows of objects as a table with a header.
pub fn table(items: &[Value], color: bool) -> String {
    let mut columns: Vec<String> = Vec::new();
    for item in items {
        for key in item.as_object().into_iter().flat_map(|o| o.keys()) {
            if !columns.contains(key) && !HIDDEN_COLUMNS.contains(&key.as_str()) {
                columns.push(key.clone());
            }
        }
    }
    let cells: Vec<Vec<String>> = items
        .iter()
        .map(|item| columns.iter().map(|c| cell(c, &item[c])).collect())
        .collect();
    let headers: Vec<String> = columns.iter().map(|c| header(c)).collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([headers[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut order: Vec<usize> = (0..columns.len()).collect();
    order.sort_by_key(|&i| widths[i] > 40 || TEXT_COLUMNS.contains(&columns[i].as_str()));
    let line = |row: &[String], header: bool| {
        let mut text = String::new();
        for (n, &i) in order.iter().enumerate() {
            let last = n + 1 == order.len();
            let value = if header {
                bold(&row[i], color)
            } else {
                row[i].clone()
            };
            if last {
                text.push_str(&value);
            } else {
                let pad = widths[i] - row[i].chars().count();
                text.push_str(&value);
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(&headers, true);
    for row in &cells {
        out.push_str(&line(row, false));
    }
    out
}

/// A column's header: its key in capitals, without the `_name` or `_at` that the column's
/// values make plain (`from_name` is FROM, `created_at` CREATED), words apart.
fn header(key: &str) -> String {
    let key = key
        .strip_suffix("_name")
        .or_else(|| key.strip_suffix("_at"))
        .unwrap_or(key);
    key.replace('_', " ").to_uppercase()
}

/// One value as a short cell of the field `key`: a JSON value (`value`) as JSON, so that
/// `42` and `"42"` differ; otherwise strings bare, timestamps to the second, null as `-`, and
/// a list of receipts (objects with a `name` and a `status`) as `name:status, ...`.
pub fn cell(key: &str, value: &Value) -> String {
    match value {
        _ if key == "value" => value.to_string(),
        Value::Null => "-".to_string(),
        Value::String(s) if crate::clock::parse(s).is_some() => s[..19].replace('T', " "),
        Value::String(s) => s.replace('\n', " ⏎ "),
        Value::Array(items) if items.is_empty() => "-".to_string(),
        Value::Array(items) if items.iter().all(|i| i["name"].is_string()) => items
            .iter()
            .map(|i| match (&i["name"], &i["status"]) {
                (Value::String(name), Value::String(status)) => format!("{name}:{status}"),
                (name, _) => cell("", name),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(items) if !items.iter().any(|i| i.is_object() || i.is_array()) => items
            .iter()
            .map(|i| cell("", i))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_lists_as_aligned_tables_with_text_last_and_without_ids() {
        let text = render(
            &json!({"messages": [
                {"id": 1, "from_session": "2dda4895-f709-448b-9d38-0586f6c55dae", "from_name": "local", "body": "x".repeat(50), "created_at": "2026-11-24T20:38:28.729772+00:00", "tag": "t"},
                {"id": 12, "from_session": "3dda4895-f709-448b-9d38-0586f6c55dae", "from_name": "ci", "body": "short", "created_at": "2026-11-24T20:38:29.000000+00:00", "read_at": "2026-11-24T20:39:00.000000+00:00"}
            ]}),
            false,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ID  FROM   CREATED              TAG  READ                 BODY"
        );
        assert_eq!(
            lines[1],
            format!(
                "1   local  2026-11-24 20:38:28  t    -                    {}",
                "x".repeat(50)
            )
        );
        assert_eq!(
            lines[2],
            "12  ci     2026-11-24 20:38:29  -    2026-11-24 20:39:00  short"
        );
    }

    #[test]
    fn receipts_read_as_name_and_status() {
        let text = render(
            &json!({"messages": [
                {"id": 2, "to_name": "*", "preview": "hi", "recipients": [
                    {"name": "online", "status": "read", "read_at": "2026-11-24T20:39:00.000000+00:00"},
                    {"name": "ci", "status": "queued"}]},
                {"id": 1, "to_name": "x", "preview": "yo", "recipients": []}
            ]}),
            false,
        );
        assert_eq!(
            text,
            "ID  TO  RECIPIENTS              PREVIEW\n\
             2   *   online:read, ci:queued  hi\n\
             1   x   -                       yo\n"
        );
    }

    #[test]
    fn json_values_show_as_json() {
        let text = render(
            &json!({"entries": [
                {"key": "n", "value": 42, "updated_by": "a"},
                {"key": "s", "value": "42", "updated_by": "a"},
                {"key": "z", "value": null, "updated_by": "a"}
            ]}),
            false,
        );
        assert_eq!(
            text,
            "KEY  VALUE  UPDATED BY\nn    42     a\ns    \"42\"   a\nz    null   a\n"
        );
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(color_wanted(true, None));
        assert!(color_wanted(true, Some("".into())));
        assert!(!color_wanted(true, Some("1".into())));
        assert!(!color_wanted(false, None));
    }

    #[test]
    fn renders_fields_and_empty_results() {
        assert_eq!(render(&json!({"marked": 1}), false), "marked 1\n");
        assert_eq!(
            render(
                &json!({"ok": true, "at": "2026-11-24T20:38:28.729772+00:00"}),
                false
            ),
            "ok  true\nat  2026-11-24 20:38:28\n"
        );
        assert_eq!(
            render(
                &json!({"marked": 0, "not_marked": [{"id": 9, "reason": "not_found"}]}),
                false
            ),
            "marked 0\n\nnot_marked:\nID  REASON\n9   not_found\n"
        );
        assert_eq!(render(&json!({"messages": []}), false), "(no messages)\n");
        assert_eq!(render(&json!({"entry": null}), false), "(no entry)\n");
        assert_eq!(
            render(&json!({"entry": null, "timed_out": true}), false),
            "timed_out true\n\nentry:\n(no entry)\n"
        );
        assert_eq!(
            render(&json!({"entry": {"key": "k", "value": "v"}}), false),
            "key    k\nvalue  \"v\"\n"
        );
        // A value that is a JSON object or null stays one JSON cell.
        assert_eq!(
            render(&json!({"key": "k", "value": {"a": null}}), false),
            "key    k\nvalue  {\"a\":null}\n"
        );
        assert!(bold("x", true).contains("\x1b[1m"));
    }
}
