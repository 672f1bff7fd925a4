//! Turning a tool's JSON result into text for a person at a terminal: a list of objects
//! becomes an aligned table (long text columns last, uncut), other fields `key  value` lines,
//! timestamps shortened to the second. Colour (bold headers) only when asked for.

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

/// A result object as readable, aligned text.
pub fn render(value: &Value, color: bool) -> String {
    let Value::Object(fields) = value else {
        return cell(value);
    };
    let mut out = String::new();
    let width = fields.keys().map(String::len).max().unwrap_or(0);
    for (key, field) in fields {
        match field {
            Value::Array(items) if items.iter().all(Value::is_object) => {
                if items.is_empty() {
                    out.push_str(&format!("(no {key})\n"));
                } else {
                    out.push_str(&table(items, color));
                }
            }
            Value::Object(_) if fields.len() == 1 => out.push_str(&render(field, color)),
            Value::Null if fields.len() == 1 => out.push_str(&format!("(no {key})\n")),
            _ => {
                let pad = " ".repeat(width - key.len());
                out.push_str(&format!("{}{pad}  {}\n", bold(key, color), cell(field)));
            }
        }
    }
    out
}

/// Rows of objects as a table with a header.
pub fn table(items: &[Value], color: bool) -> String {
    let mut columns: Vec<String> = Vec::new();
    for item in items {
        for key in item.as_object().into_iter().flat_map(|o| o.keys()) {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    let cells: Vec<Vec<String>> = items
        .iter()
        .map(|item| columns.iter().map(|c| cell(&item[c])).collect())
        .collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([columns[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    // Long free-text columns go last, where they may run on without breaking the alignment.
    let mut order: Vec<usize> = (0..columns.len()).collect();
    order.sort_by_key(|&i| widths[i] > 40);
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
    let mut out = line(
        &columns.iter().map(|c| c.to_uppercase()).collect::<Vec<_>>(),
        true,
    );
    for row in &cells {
        out.push_str(&line(row, false));
    }
    out
}

/// One value as a short cell: strings bare, timestamps to the second, null as `-`.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(s) if crate::clock::parse(s).is_some() => s[..19].replace('T', " "),
        Value::String(s) => s.replace('\n', " ⏎ "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_lists_as_aligned_tables_with_long_text_last() {
        let text = render(
            &json!({"messages": [
                {"id": 1, "from_name": "local", "body": "x".repeat(50), "created_at": "2026-11-24T20:38:28.729772+00:00", "read_at": null},
                {"id": 12, "from_name": "ci", "body": "short", "created_at": "2026-11-24T20:38:29.000000+00:00", "read_at": null}
            ]}),
            false,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ID  FROM_NAME  CREATED_AT           READ_AT  BODY"
        );
        assert_eq!(
            lines[1],
            format!(
                "1   local      2026-11-24 20:38:28  -        {}",
                "x".repeat(50)
            )
        );
        assert_eq!(
            lines[2],
            "12  ci         2026-11-24 20:38:29  -        short"
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
        assert_eq!(
            render(&json!({"marked": 1, "ok": true}), false),
            "marked  1\nok      true\n"
        );
        assert_eq!(render(&json!({"messages": []}), false), "(no messages)\n");
        assert_eq!(render(&json!({"entry": null}), false), "(no entry)\n");
        assert_eq!(
            render(&json!({"entry": {"key": "k", "value": {"a": 1}}}), false),
            "key    k\nvalue  {\"a\":1}\n"
        );
        assert!(bold("x", true).contains("\x1b[1m"));
    }
}
