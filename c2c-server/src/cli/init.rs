//! `claude-c2c init --name NAME`: wires a project folder for Claude Code. It merges the MCP
//! server entry into `.mcp.json` (or, with `--scope local|user`, adds it with `claude mcp add`)
//! and our three hooks into `.claude/settings.json`, keeping every other key, server and hook,
//! and replacing an earlier hook of ours instead of adding a second one. Both files are read and
//! checked before either is written, a file whose content would not change is not written, and
//! `--dry-run` only says what would change.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, ValueEnum};
use serde_json::{Map, Value};

use super::setup::{self, HOOK_EVENTS, PROGRAM};

/// The options of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The name this project's sessions register under (e.g. local).
    #[arg(long, value_name = "NAME")]
    name: String,
    /// Where the MCP server entry goes: the project's .mcp.json, or Claude Code's own local
    /// (this project, private to you) or user (all projects) configuration via `claude mcp add`.
    #[arg(long, value_enum, default_value_t = Scope::Project)]
    scope: Scope,
    /// Print what would change and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Leave .claude/settings.json (the hooks) alone.
    #[arg(long)]
    no_hooks: bool,
    /// The project folder [default: the current directory].
    #[arg(long, value_name = "DIR")]
    project: Option<PathBuf>,
    /// The server's key in the MCP configuration.
    #[arg(long, value_name = "KEY", default_value = setup::DEFAULT_SERVER_KEY)]
    server_name: String,
}

/// Where the MCP server entry is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scope {
    /// The project's .mcp.json, shared with everyone who clones it.
    Project,
    /// Claude Code's configuration for this project, private to you.
    Local,
    /// Claude Code's configuration for all your projects.
    User,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Project => "project",
            Scope::Local => "local",
            Scope::User => "user",
        }
    }
}

/// One change to a file or to Claude Code's configuration.
struct Change {
    /// "add", "replace", "update" or "remove".
    verb: &'static str,
    what: String,
}

impl Change {
    fn new(verb: &'static str, what: String) -> Self {
        Change { verb, what }
    }

    fn describe(&self, dry_run: bool) -> String {
        let verb = if dry_run {
            format!("would {}", self.verb)
        } else {
            match self.verb {
                "add" => "added".into(),
                "replace" => "replaced".into(),
                "update" => "updated".into(),
                "remove" => "removed".into(),
                other => other.to_string(),
            }
        };
        format!("{verb} {}", self.what)
    }
}

/// A JSON file and what init would make of it.
struct FilePlan {
    path: PathBuf,
    /// The path as shown to the user (relative to the project).
    shown: String,
    before: Option<Value>,
    after: Value,
    changes: Vec<Change>,
}

impl FilePlan {
    fn changed(&self) -> bool {
        self.before.as_ref() != Some(&self.after)
    }

    fn write(&self) -> Result<(), String> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(&self.after)
            .map_err(|e| format!("cannot encode {}: {e}", self.shown))?
            + "\n";
        std::fs::write(&self.path, text)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

/// The `claude mcp` commands a local or user scope needs.
struct ClaudePlan {
    scope: Scope,
    /// The commands to run, in order (empty when the entry is already right).
    commands: Vec<Vec<String>>,
    changes: Vec<Change>,
}

/// Runs `init` for the room `room` (`--room` / `C2C_ROOM`) with the database `db` (`--db` /
/// `CLAUDE_C2C_DB`), each `None` for the default; returns the report for stdout.
pub fn run(
    args: &InitArgs,
    room: Option<&str>,
    db: Option<&Path>,
    hub: Option<(&str, Option<&Path>)>,
) -> Result<String, String> {
    crate::tools::check_name("--name", &args.name, false).map_err(|e| e.to_string())?;
    let project = match &args.project {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()
            .map_err(|e| format!("cannot tell the current directory: {e}"))?,
    };
    let project = setup::canonical(&project).map_err(|e| {
        format!(
            "the project folder {} cannot be used: {e}",
            project.display()
        )
    })?;
    if !project.is_dir() {
        return Err(format!("{} is not a folder", project.display()));
    }
    let db = db.map(setup::absolute);
    // Written as an absolute path: the hooks and the server run from other directories.
    let hub_ca = hub.and_then(|(_, ca)| ca).map(setup::absolute);
    let wiring = setup::Wiring {
        name: &args.name,
        // The default room needs no option: what is written stays as it was before rooms.
        room: room.filter(|r| *r != crate::config::DEFAULT_ROOM),
        db: db.as_deref(),
        hub: hub.map(|(url, _)| url),
        hub_ca: hub_ca.as_deref(),
    };

    // Read and check everything before writing anything.
    let mut problems = Vec::new();
    let mcp = if args.scope == Scope::Project {
        plan_file(&project, ".mcp.json", |v| {
            merge_server(v, &args.server_name, &wiring)
        })
        .map_err(|e| problems.push(e))
        .ok()
    } else {
        None
    };
    let hooks = if args.no_hooks {
        None
    } else {
        plan_file(&project, ".claude/settings.json", |v| {
            merge_hooks(v, &wiring)
        })
        .map_err(|e| problems.push(e))
        .ok()
    };
    let claude = if args.scope == Scope::Project {
        None
    } else {
        match plan_claude(args, &project, &wiring) {
            Ok(plan) => Some(plan),
            Err(e) => {
                problems.push(e);
                None
            }
        }
    };
    if !problems.is_empty() {
        return Err(format!(
            "{}\nnothing was written: repair (or move away) what is named above, then run init again",
            problems.join("\n")
        ));
    }

    let mut out = format!(
        "claude-c2c init: {} as \"{}\"{}{}\n",
        project.display(),
        args.name,
        wiring
            .room
            .map(|r| format!(" in room \"{r}\""))
            .unwrap_or_default(),
        if args.dry_run {
            " (dry run: nothing is written)"
        } else {
            ""
        }
    );
    let mut changed = false;
    let mut notes = Vec::new();
    if let Some(plan) = &claude {
        let claude_bin = setup::find_on_path("claude");
        if !plan.commands.is_empty() {
            changed = true;
            if args.dry_run {
                for command in &plan.commands {
                    out.push_str(&format!("  would run: {}\n", setup::command_line(command)));
                }
                if claude_bin.is_none() {
                    notes.push("`claude` is not on PATH: init would fail".to_string());
                }
            } else {
                let bin = claude_bin.ok_or_else(|| {
                    let commands: Vec<String> = plan
                        .commands
                        .iter()
                        .map(|c| setup::command_line(c))
                        .collect();
                    format!(
                        "`claude` (Claude Code) is not on PATH, so the server cannot be added to \
                         its {} configuration: install Claude Code, then run `{}` in {} (or run \
                         init without --scope to use .mcp.json); nothing was written",
                        plan.scope.as_str(),
                        commands.join(" && "),
                        project.display()
                    )
                })?;
                for command in &plan.commands {
                    run_claude(&bin, command, &project)?;
                    out.push_str(&format!("  ran: {}\n", setup::command_line(command)));
                }
            }
        }
        for change in &plan.changes {
            out.push_str(&format!(
                "  Claude Code {} config: {}\n",
                plan.scope.as_str(),
                change.describe(args.dry_run)
            ));
        }
    }
    for plan in [&mcp, &hooks].into_iter().flatten() {
        if !plan.changed() {
            continue;
        }
        changed = true;
        if !args.dry_run {
            plan.write()?;
        }
        for change in &plan.changes {
            out.push_str(&format!(
                "  {}: {}\n",
                plan.shown,
                change.describe(args.dry_run)
            ));
        }
    }
    if let Some(plan) = &mcp {
        notes.extend(other_servers(plan, &args.server_name));
    }
    if !changed {
        let mut what = Vec::new();
        if let Some(plan) = &mcp {
            what.push(plan.shown.clone());
        }
        if let Some(plan) = &claude {
            what.push(format!("Claude Code's {} config", plan.scope.as_str()));
        }
        if let Some(plan) = &hooks {
            what.push(plan.shown.clone());
        }
        out.push_str(&format!(
            "  already set up: nothing to change in {}\n",
            what.join(" or ")
        ));
    }
    if args.no_hooks {
        out.push_str("  hooks left alone (--no-hooks)\n");
    }
    for note in notes {
        out.push_str(&format!("  note: {note}\n"));
    }
    if args.dry_run {
        out.push_str("Dry run: nothing was written.\n");
    } else {
        let approve = if matches!(args.scope, Scope::Project) {
            " and approve the project's c2c server when it asks (once)"
        } else {
            ""
        };
        let token = if hub.is_some() {
            " with the hub's token in its environment (`export C2C_TOKEN=...`, from \
             `claude-c2c token create` on the hub; it is never written into these files)"
        } else {
            ""
        };
        out.push_str(&format!(
            "Next: start Claude Code in this folder (`claude`){token}{approve}; check the setup \
             with `claude-c2c doctor`.\n"
        ));
    }
    Ok(out)
}

/// Reads `relative` under `project` and merges into it with `merge`.
fn plan_file(
    project: &Path,
    relative: &str,
    merge: impl FnOnce(&mut Value) -> Result<Vec<Change>, String>,
) -> Result<FilePlan, String> {
    let path = project.join(relative);
    let before = setup::read_json(&path)?;
    let mut after = before.clone().unwrap_or_else(|| Value::Object(Map::new()));
    let changes = merge(&mut after).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(FilePlan {
        path,
        shown: relative.to_string(),
        before,
        after,
        changes,
    })
}

// The object at `key` of `parent`, created when absent.
fn object_at<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
    where_: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    parent
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| {
            format!("`{where_}` is not a JSON object; fix it by hand, then run init again")
        })
}

fn root(value: &mut Value) -> Result<&mut Map<String, Value>, String> {
    value
        .as_object_mut()
        .ok_or_else(|| "the file is not a JSON object; fix it by hand, then run init again".into())
}

/// Puts our server entry under `mcpServers.<key>`, keeping the entry's other keys (`env`, ...).
fn merge_server(
    file: &mut Value,
    key: &str,
    wiring: &setup::Wiring<'_>,
) -> Result<Vec<Change>, String> {
    let servers = object_at(root(file)?, "mcpServers", "mcpServers")?;
    let wanted = setup::mcp_entry(wiring);
    let shown = setup::entry_command_line(&wanted).unwrap_or_default();
    let Some(old) = servers.get_mut(key) else {
        servers.insert(key.to_string(), wanted);
        return Ok(vec![Change::new(
            "add",
            format!("MCP server \"{key}\": {shown}"),
        )]);
    };
    let Some(entry) = old.as_object_mut() else {
        let was = old.to_string();
        *old = wanted;
        return Ok(vec![Change::new(
            "replace",
            format!("MCP server \"{key}\" ({was}) with {shown}"),
        )]);
    };
    let before = setup::entry_command_line(&Value::Object(entry.clone()))
        .unwrap_or_else(|| "no command".into());
    let mut updated = entry.clone();
    // A `url` server turned into ours would keep a transport it no longer has.
    if updated
        .get("type")
        .is_some_and(|t| t.as_str() != Some("stdio"))
    {
        updated.remove("type");
        updated.remove("url");
        updated.remove("headers");
    }
    for (k, v) in wanted.as_object().into_iter().flatten() {
        updated.insert(k.clone(), v.clone());
    }
    if updated == *entry {
        return Ok(Vec::new());
    }
    *entry = updated;
    Ok(vec![Change::new(
        "update",
        format!("MCP server \"{key}\": {before} -> {shown}"),
    )])
}

/// Puts our hook into each of [`HOOK_EVENTS`]: in place of the first earlier hook of ours in
/// that event (dropping any further ones), else in a new matcher group at the end.
fn merge_hooks(file: &mut Value, wiring: &setup::Wiring<'_>) -> Result<Vec<Change>, String> {
    let hooks = object_at(root(file)?, "hooks", "hooks")?;
    let mut changes = Vec::new();
    for event in HOOK_EVENTS {
        let wanted = setup::hook_for(event, wiring);
        let wanted_command = wanted["command"].as_str().unwrap_or_default().to_string();
        let groups = hooks
            .entry(event)
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .ok_or_else(|| {
                format!("`hooks.{event}` is not a JSON array; fix it by hand, then run init again")
            })?;
        let mut placed = false;
        let mut removed = Vec::new();
        for group in groups.iter_mut() {
            let Some(list) = group.get_mut("hooks").and_then(Value::as_array_mut) else {
                continue;
            };
            let mut kept = Vec::with_capacity(list.len());
            for hook in list.drain(..) {
                let ours = hook
                    .get("command")
                    .and_then(Value::as_str)
                    .is_some_and(|c| setup::parse_hook_command(c).is_some());
                if !ours {
                    kept.push(hook);
                } else if !placed {
                    placed = true;
                    if hook != wanted {
                        let was = hook
                            .get("command")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        changes.push(Change::new(
                            "replace",
                            format!("{event} hook `{was}` with `{wanted_command}`"),
                        ));
                    }
                    kept.push(wanted.clone());
                } else {
                    removed.push(hook);
                }
            }
            *list = kept;
        }
        // A group that held only duplicates of ours goes with them.
        if !removed.is_empty() {
            groups.retain(|g| {
                g.get("hooks")
                    .and_then(Value::as_array)
                    .is_none_or(|l| !l.is_empty())
            });
            changes.push(Change::new(
                "remove",
                format!("{} duplicate {event} hook(s) of claude-c2c", removed.len()),
            ));
        }
        if !placed {
            groups.push(serde_json::json!({ "hooks": [wanted] }));
            changes.push(Change::new(
                "add",
                format!("{event} hook `{wanted_command}`"),
            ));
        }
    }
    Ok(changes)
}

/// Notes on other servers in `.mcp.json` that run claude-c2c under another key.
fn other_servers(plan: &FilePlan, key: &str) -> Vec<String> {
    plan.after
        .get("mcpServers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, v)| {
            k.as_str() != key
                && v.get("command")
                    .and_then(Value::as_str)
                    .is_some_and(setup::is_our_program)
        })
        .map(|(k, _)| {
            format!(
                "{} also has a claude-c2c server \"{k}\"; remove it if it is an older entry",
                plan.shown
            )
        })
        .collect()
}

/// What `claude mcp` must do for a local or user scope entry. The current entry is read from
/// `~/.claude.json` rather than with `claude mcp get`, which starts the server to check on it
/// and can wait for it for half a minute.
fn plan_claude(
    args: &InitArgs,
    project: &Path,
    wiring: &setup::Wiring<'_>,
) -> Result<ClaudePlan, String> {
    let scope = args.scope;
    let key = &args.server_name;
    let server_args = setup::server_args(wiring);
    let mut add = vec![
        "claude".to_string(),
        "mcp".into(),
        "add".into(),
        "--scope".into(),
        scope.as_str().into(),
        key.clone(),
        "--".into(),
        PROGRAM.into(),
    ];
    add.extend(server_args.iter().cloned());
    let remove: Vec<String> = ["claude", "mcp", "remove", "--scope", scope.as_str(), key]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let existing = match setup::claude_json_path() {
        None => None,
        Some(path) => match setup::read_json(&path) {
            Ok(config) => config.and_then(|c| {
                setup::claude_json_servers(&c, scope.as_str(), project)
                    .get(key)
                    .cloned()
            }),
            Err(e) => {
                return Err(format!(
                    "cannot tell whether Claude Code already has a \"{key}\" server: {e}\n\
                     to set it up by hand, run in {}: {} ; {}",
                    project.display(),
                    setup::command_line(&remove),
                    setup::command_line(&add)
                ));
            }
        },
    };
    let shown = setup::command_line(&add[7..]);
    let (commands, changes) = match existing {
        None => (
            vec![add],
            vec![Change::new("add", format!("MCP server \"{key}\": {shown}"))],
        ),
        Some(entry)
            if entry.get("command").and_then(Value::as_str) == Some(PROGRAM)
                && setup::entry_args(&entry) == server_args =>
        {
            (Vec::new(), Vec::new())
        }
        Some(entry) => {
            let before = setup::entry_command_line(&entry).unwrap_or_else(|| "no command".into());
            (
                vec![remove, add],
                vec![Change::new(
                    "update",
                    format!("MCP server \"{key}\": {before} -> {shown}"),
                )],
            )
        }
    };
    Ok(ClaudePlan {
        scope,
        commands,
        changes,
    })
}

fn run_claude(bin: &Path, command: &[String], project: &Path) -> Result<(), String> {
    let output = Command::new(bin)
        .args(&command[1..])
        .current_dir(project)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "`{}` failed ({}): {}",
        setup::command_line(command),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hooks_merge_beside_others_and_replace_our_earlier_ones() {
        let mut file = json!({
            "model": "x",
            "hooks": {
                "Stop": [
                    { "hooks": [{ "type": "command", "command": "notify-send done" }] },
                    { "hooks": [{ "type": "command", "command": "claude-c2c hook wait" }] },
                    { "hooks": [{ "type": "command", "command": "/bin/claude-c2c hook wait" }] }
                ],
                "PreToolUse": [{ "matcher": "Bash", "hooks": [] }]
            }
        });
        let local = setup::Wiring {
            name: "local",
            room: None,
            db: None,
            hub: None,
            hub_ca: None,
        };
        let changes = merge_hooks(&mut file, &local).unwrap();
        assert_eq!(changes.len(), 4, "replace + remove + two adds");
        let stop = file["hooks"]["Stop"].as_array().unwrap();
        assert_eq!(stop.len(), 2);
        assert_eq!(stop[0]["hooks"][0]["command"], "notify-send done");
        assert_eq!(
            stop[1]["hooks"][0]["command"],
            "claude-c2c hook wait --name local --timeout-seconds 3540"
        );
        assert_eq!(file["hooks"]["PreToolUse"][0]["matcher"], "Bash");
        assert_eq!(file["model"], "x");
        let again = file.clone();
        assert!(merge_hooks(&mut file, &local).unwrap().is_empty());
        assert_eq!(file, again);
        // A room goes into every hook, and replaces the hooks without one.
        let in_room = setup::Wiring {
            room: Some("proj b"),
            ..local
        };
        assert_eq!(merge_hooks(&mut file, &in_room).unwrap().len(), 3);
        assert_eq!(
            file["hooks"]["Stop"][1]["hooks"][0]["command"],
            "claude-c2c hook wait --name local --timeout-seconds 3540 --room 'proj b'"
        );
    }

    #[test]
    fn a_server_entry_keeps_its_other_keys() {
        let mut file = json!({ "mcpServers": { "c2c": {
            "command": "claude-c2c", "args": ["--name", "old"], "env": { "RUST_LOG": "debug" }
        }}});
        let wiring = setup::Wiring {
            name: "new",
            room: Some("b"),
            db: Some(Path::new("/d/c2c.db")),
            hub: None,
            hub_ca: None,
        };
        let changes = merge_server(&mut file, "c2c", &wiring).unwrap();
        assert_eq!(
            changes[0].describe(false),
            "updated MCP server \"c2c\": claude-c2c --name old -> \
             claude-c2c --name new --room b --db /d/c2c.db"
        );
        assert_eq!(file["mcpServers"]["c2c"]["env"]["RUST_LOG"], "debug");
        assert_eq!(
            file["mcpServers"]["c2c"]["args"],
            json!(["--name", "new", "--room", "b", "--db", "/d/c2c.db"])
        );
    }
}
