//! How the command line reads the text of a JSON-valued option (`--value`, `--metadata`):
//! text that starts the way JSON does must be JSON, and when it is not, the error shows where
//! it broke; other text, for options that take any value, is a plain string.

use serde_json::Value;

/// Whether `text` starts the way a JSON value does: `{`, `[`, `"`, a digit or `-`, or is one
/// of the words `true`, `false`, `null`. Anything else (a plain word or sentence) cannot be
/// meant as JSON.
pub fn looks_like_json(text: &str) -> bool {
    let trimmed = text.trim();
    trimmed.starts_with(|c: char| matches!(c, '{' | '[' | '"' | '-') || c.is_ascii_digit())
        || matches!(trimmed, "true" | "false" | "null")
}

/// Parses `text` as JSON; the error says what broke and shows where, with a caret under the
/// spot (a number too large for a double, such as `1e400`, is an error too).
pub fn parse(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| {
        let mut message = strip_position(&e.to_string());
        message.push_str(&format!(" (line {}, column {})", e.line(), e.column()));
        if let Some(line) = text.lines().nth(e.line().saturating_sub(1)) {
            message.push('\n');
            message.push_str(&excerpt(line, e.column()));
        }
        message
    })
}

// serde_json ends its messages with " at line L column C", which the excerpt shows better.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// `line` (at most about 60 characters of it, around `column`) indented, and a caret under
/// the 1-based `column`.
fn excerpt(line: &str, column: usize) -> String {
    const WIDTH: usize = 60;
    let chars: Vec<char> = line.chars().collect();
    let at = column.saturating_sub(1).min(chars.len());
    let start = at.saturating_sub(WIDTH / 2);
    let end = (start + WIDTH).min(chars.len());
    let shown: String = chars[start..end].iter().collect();
    let lead = if start > 0 { "…" } else { "" };
    let tail = if end < chars.len() { "…" } else { "" };
    let caret_at = lead.chars().count() + at - start;
    format!("    {lead}{shown}{tail}\n    {}^", " ".repeat(caret_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_starts_like_json_is_json() {
        for text in ["{", " [1]", "\"x", "42", "-1", "1.2.3", "true", " null "] {
            assert!(looks_like_json(text), "{text}");
        }
        for text in ["abc123", "deploy done", "", "truthy", "nullable", "+1"] {
            assert!(!looks_like_json(text), "{text}");
        }
    }

    #[test]
    fn a_parse_error_shows_where_it_broke() {
        let e = parse(r#"{"broken": "#).unwrap_err();
        assert!(
            e.starts_with("EOF while parsing a value (line 1, column 11)"),
            "{e}"
        );
        assert!(e.ends_with("    {\"broken\": \n              ^"), "{e}");
        let e = parse("1e400").unwrap_err();
        assert!(e.contains("number out of range"), "{e}");
        let e = parse("[1,\n 2 x]").unwrap_err();
        assert!(e.contains("line 2, column 4"), "{e}");
        assert!(e.ends_with("     2 x]\n       ^"), "{e}");
        assert_eq!(parse(" [1, 2] ").unwrap(), serde_json::json!([1, 2]));
    }

    #[test]
    fn a_long_line_is_cut_around_the_error() {
        let text = format!("[{}x{}]", "1,".repeat(100), ",1".repeat(100));
        let e = parse(&text).unwrap_err();
        let lines: Vec<&str> = e.lines().collect();
        assert!(
            lines[1].starts_with("    …") && lines[1].ends_with('…'),
            "{e}"
        );
        let caret = lines[2].find('^').unwrap();
        assert_eq!(lines[1].chars().nth(caret), Some('x'), "{e}");
    }
}
