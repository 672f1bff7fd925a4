//! The shapes `init` writes into a project and `doctor` reads back: the MCP server entry, the
//! three hooks, how a hook command of ours is recognised and taken apart, and the small file
//! and PATH helpers both need. Keeping them here lets the two commands agree by construction.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// The program name Claude Code runs, for the server and the hooks alike.
pub const PROGRAM: &str = "claude-c2c";

/// The default key of the server in `mcpServers`.
pub const DEFAULT_SERVER_KEY: &str = "c2c";

/// The hook events `init` wires, in the order it reports them.
pub const HOOK_EVENTS: [&str; 3] = ["SessionStart", "UserPromptSubmit", "Stop"];

/// How long the Stop hook waits for a message, just under its own hook timeout.
const STOP_WAIT_SECONDS: u64 = 3540;

/// The Stop hook's timeout in Claude Code, in seconds.
const STOP_TIMEOUT_SECONDS: u64 = 3600;

/// The prompt hooks' timeout in Claude Code, in seconds.
const PROMPT_TIMEOUT_SECONDS: u64 = 10;

/// What a project is wired to: the session's name, its room (the default room if `None`) and
/// the database (the default one if `None`).
#[derive(Debug, Clone, Copy)]
pub struct Wiring<'a> {
    /// The name the project's sessions register under.
    pub name: &'a str,
    /// The room, if not the default one.
    pub room: Option<&'a str>,
    /// The database, if not the default one.
    pub db: Option<&'a Path>,
    /// The hub the project talks to instead of a database (`--hub`), if any.
    pub hub: Option<&'a str>,
    /// The certificate to trust for the hub (`--hub-ca`), if any.
    pub hub_ca: Option<&'a Path>,
}

/// The server's command-line arguments for `w`.
pub fn server_args(w: &Wiring<'_>) -> Vec<String> {
    let mut args = vec!["--name".to_string(), w.name.to_string()];
    if let Some(room) = w.room {
        args.push("--room".into());
        args.push(room.to_string());
    }
    if let Some(db) = w.db {
        args.push("--db".into());
        args.push(db.display().to_string());
    }
    if let Some(hub) = w.hub {
        args.push("--hub".into());
        args.push(hub.to_string());
    }
    if let Some(ca) = w.hub_ca {
        args.push("--hub-ca".into());
        args.push(ca.display().to_string());
    }
    args
}

/// The MCP server entry for `.mcp.json`.
pub fn mcp_entry(w: &Wiring<'_>) -> Value {
    json!({ "command": PROGRAM, "args": server_args(w) })
}

/// The hook `init` puts into `event` (one of [`HOOK_EVENTS`]).
pub fn hook_for(event: &str, w: &Wiring<'_>) -> Value {
    let room_arg = w
        .room
        .map(|r| format!(" --room {}", quote_if_needed(r)))
        .unwrap_or_default();
    let db_arg =
        w.db.map(|p| format!(" --db {}", shell_quote(&p.display().to_string())))
            .unwrap_or_default();
    let hub_arg = w
        .hub
        .map(|h| format!(" --hub {}", shell_quote(h)))
        .unwrap_or_default();
    let db_arg = format!("{room_arg}{db_arg}{hub_arg}");
    let name = quote_if_needed(w.name);
    if event == "Stop" {
        json!({
            "type": "command",
            "command": format!(
                "{PROGRAM} hook wait --name {name} --timeout-seconds {STOP_WAIT_SECONDS}{db_arg}"
            ),
            "asyncRewake": true,
            "timeout": STOP_TIMEOUT_SECONDS,
        })
    } else {
        json!({
            "type": "command",
            "command": format!("{PROGRAM} hook prompt --name {name}{db_arg}"),
            "timeout": PROMPT_TIMEOUT_SECONDS,
        })
    }
}

/// `word` in single quotes, as a POSIX shell reads it back unchanged.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// `word` as is when a shell would read it back unchanged, else [`shell_quote`]d.
pub fn quote_if_needed(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.,/:@%+=".contains(c));
    if plain {
        word.to_string()
    } else {
        shell_quote(word)
    }
}

/// A command line for display, each word quoted when needed.
pub fn command_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote_if_needed(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `program` (a word of a command line) names a claude-c2c binary, by name or path.
pub fn is_our_program(program: &str) -> bool {
    Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == PROGRAM || n == "claude-c2c.exe")
}

/// A hook command of ours, taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct HookCommand {
    /// The program as written (`claude-c2c`, or a path to it).
    pub program: String,
    /// The hook subcommand: `prompt` or `wait`.
    pub sub: String,
    /// The `--name` it binds to, if any.
    pub name: Option<String>,
    /// The `--room` it binds in, or `C2C_ROOM=...` set in front of it, if any.
    pub room: Option<String>,
    /// The database it reads: its `--db`, or `CLAUDE_C2C_DB=...` set in front of it.
    pub db: Option<PathBuf>,
}

/// Takes apart `command` when it runs `claude-c2c hook ...` (possibly by path, possibly after
/// `VAR=value` assignments); `None` for anyone else's command.
pub fn parse_hook_command(command: &str) -> Option<HookCommand> {
    let words = split_words(command);
    let (mut env_db, mut env_room) = (None, None);
    let mut rest = words.iter().skip_while(|w| {
        let assignment = w.split_once('=').filter(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        match assignment {
            Some(("CLAUDE_C2C_DB", v)) => env_db = Some(PathBuf::from(v)),
            Some(("C2C_ROOM", v)) => {
                env_room = Some(v.to_string()).filter(|r| !r.trim().is_empty())
            }
            _ => {}
        }
        assignment.is_some()
    });
    let program = rest.next()?;
    if !is_our_program(program) {
        return None;
    }
    let args: Vec<String> = rest.cloned().collect();
    let hook = args.iter().position(|w| w == "hook")?;
    let sub = args.get(hook + 1).cloned().unwrap_or_default();
    Some(HookCommand {
        program: program.clone(),
        sub,
        name: option_value(&args, "--name"),
        room: option_value(&args, "--room").or(env_room),
        db: option_value(&args, "--db").map(PathBuf::from).or(env_db),
    })
}

/// The value of `--opt VALUE` or `--opt=VALUE` in `args` (the last one given).
pub fn option_value(args: &[String], opt: &str) -> Option<String> {
    let mut found = None;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        if word == opt {
            found = words.next().cloned();
        } else if let Some(value) = word.strip_prefix(opt).and_then(|v| v.strip_prefix('=')) {
            found = Some(value.to_string());
        }
    }
    found
}

/// Splits a shell command into words the way a POSIX shell would for simple commands: blanks
/// separate, single quotes are literal, double quotes and backslashes escape. Anything fancier
/// (pipes, substitutions) is left in the words as text, which is enough to recognise ours.
pub fn split_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                word.push(e);
                            }
                        }
                        q => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    word.push(e);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Reads the JSON file at `path`: `Ok(None)` when it does not exist, an error naming the file
/// and the line and column when it does not parse.
pub fn read_json(path: &Path) -> Result<Option<Value>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(Some(Value::Object(Map::new())));
    }
    serde_json::from_str(&text).map(Some).map_err(|e| {
        format!(
            "{}:{}:{}: not valid JSON ({e})",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

/// The first `program` on the PATH, as the shell would find it.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    // Windows runs `claude-c2c` as `claude-c2c.exe` and `claude` as `claude.cmd`: try the
    // extensions PATHEXT lists, as its shells do.
    let extensions: Vec<String> = if cfg!(windows) {
        let listed = std::env::var("PATHEXT").unwrap_or_else(|_| ".COM;.EXE;.BAT;.CMD".into());
        std::iter::once(String::new())
            .chain(
                listed
                    .split(';')
                    .filter(|e| !e.is_empty())
                    .map(str::to_lowercase),
            )
            .collect()
    } else {
        vec![String::new()]
    };
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .flat_map(|dir| {
            extensions
                .iter()
                .map(move |ext| dir.join(format!("{program}{ext}")))
        })
        .find(|candidate| is_executable(candidate))
}

/// Whether `program` as a command would start something: an existing executable path, or a
/// name found on the PATH.
pub fn resolves(program: &str) -> bool {
    if program.contains('/') || (cfg!(windows) && program.contains('\\')) {
        is_executable(Path::new(program))
    } else {
        find_on_path(program).is_some()
    }
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// The user's home directory, where Claude Code keeps `.claude` (HOME on Unix, the profile
/// folder on Windows: the store's rule).
pub fn home() -> Option<PathBuf> {
    std::env::home_dir().filter(|h| !h.as_os_str().is_empty())
}

/// `path` made absolute with symlinks resolved, in the spelling Claude Code uses for a project
/// (on Windows without the `\\?\` prefix that canonicalize adds).
pub fn canonical(path: &Path) -> std::io::Result<PathBuf> {
    let full = path.canonicalize()?;
    #[cfg(windows)]
    {
        let text = full.to_string_lossy();
        if let Some(plain) = text.strip_prefix(r"\\?\")
            && !plain.starts_with("UNC\\")
        {
            return Ok(PathBuf::from(plain));
        }
    }
    Ok(full)
}

/// Where Claude Code keeps its own configuration, including the `local` and `user` scope MCP
/// servers: `~/.claude.json`.
pub fn claude_json_path() -> Option<PathBuf> {
    home().map(|h| h.join(".claude.json"))
}

/// The MCP servers Claude Code's `~/.claude.json` holds for `scope` (`user`, or `local` to
/// `project`); empty when the file or the section is absent.
pub fn claude_json_servers(config: &Value, scope: &str, project: &Path) -> Map<String, Value> {
    let servers = if scope == "user" {
        config.get("mcpServers")
    } else {
        config
            .get("projects")
            .and_then(|p| p.get(project.to_string_lossy().as_ref()))
            .and_then(|p| p.get("mcpServers"))
    };
    servers
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The command line an MCP server entry runs, for display; `None` when it has no command.
pub fn entry_command_line(entry: &Value) -> Option<String> {
    let command = entry.get("command")?.as_str()?;
    let mut words = vec![command.to_string()];
    words.extend(entry_args(entry));
    Some(command_line(&words))
}

/// An MCP server entry's `args`, as strings.
pub fn entry_args(entry: &Value) -> Vec<String> {
    entry
        .get("args")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Makes `path` absolute against the current directory (without resolving links).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_commands_of_ours_are_recognised_and_taken_apart() {
        let wiring = Wiring {
            name: "my name",
            room: None,
            db: Some(Path::new("/tmp/it's/c2c.db")),
            hub: None,
            hub_ca: None,
        };
        let hook = hook_for("Stop", &wiring);
        let command = hook["command"].as_str().unwrap();
        let parsed = parse_hook_command(command).unwrap();
        assert_eq!(parsed.sub, "wait");
        assert_eq!(parsed.name.as_deref(), Some("my name"));
        assert_eq!(parsed.db, Some(PathBuf::from("/tmp/it's/c2c.db")));

        let by_path = parse_hook_command("/home/u/.cargo/bin/claude-c2c hook prompt").unwrap();
        assert_eq!(by_path.sub, "prompt");
        assert_eq!(by_path.name, None);
        let with_env = parse_hook_command("CLAUDE_C2C_DB=/x/y.db claude-c2c hook prompt").unwrap();
        assert_eq!(with_env.db, Some(PathBuf::from("/x/y.db")));

        assert_eq!(parse_hook_command("echo claude-c2c hook prompt"), None);
        assert_eq!(parse_hook_command("claude-c2cx hook prompt"), None);
        assert_eq!(parse_hook_command("claude-c2c send-message"), None);
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"a 'b c' "d \" e" f\ g"#),
            vec!["a", "b c", "d \" e", "f g"]
        );
        assert_eq!(split_words("  "), Vec::<String>::new());
        assert_eq!(split_words("x ''"), vec!["x", ""]);
    }

    #[test]
    fn options_are_found_in_both_spellings() {
        let args: Vec<String> = ["--name", "a", "--db=/p", "--", "--name", "z"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(option_value(&args, "--name").as_deref(), Some("a"));
        assert_eq!(option_value(&args, "--db").as_deref(), Some("/p"));
        assert_eq!(option_value(&args, "--tag"), None);
    }
}
