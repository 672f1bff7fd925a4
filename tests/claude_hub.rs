//! The real Claude Code CLI connected straight to the hub over HTTP, as README's "Across
//! machines" says to: `claude mcp add --transport http c2c URL --header "Authorization: Bearer
//! ${C2C_TOKEN}"`. `claude mcp list` shows it connected with the token and reports a wrong one
//! as a refused token (no OAuth flow, no hang), and a `claude -p` run against the stand-in
//! model sends a message through the hub under the token's name.

#![cfg(unix)]

#[path = "common/claude.rs"]
mod claude;
mod common;
#[path = "common/standin.rs"]
mod standin;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use claude::{Rig, cli_or_skip};
use serde_json::json;
use standin::Step;

/// A hub on loopback, on the rig's database; killed when dropped.
struct Hub {
    child: Child,
    url: String,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_hub(db: &Path) -> Hub {
    let mut child = common::std_command()
        .arg("--db")
        .arg(db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"),
        "{url:?}"
    );
    Hub { child, url }
}

/// A token for `name` in the default room.
fn token_for(db: &Path, name: &str) -> String {
    let out = common::cli(db, &["token", "create", "--name", name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn claude_code_reaches_the_hub_over_http() {
    let Some(cli) = cli_or_skip("claude_code_reaches_the_hub_over_http") else {
        return;
    };
    let body = "claude_code_reaches_the_hub_over_http: hello beta";
    let rig = Rig::bare(
        cli,
        "claude-hub",
        vec![
            Step::tool(
                "mcp__c2c__send_message",
                json!({ "to": "beta", "body": body }),
            ),
            Step::text("sent over the hub"),
        ],
    );
    let db = rig.dir.path();
    let hub = start_hub(&db);
    let secret = token_for(&db, "alpha");
    let token = [("C2C_TOKEN", Path::new(&secret))];
    // As README says, the token stays in the environment: the configuration holds `${C2C_TOKEN}`.
    rig.claude(
        &[
            "mcp",
            "add",
            "--transport",
            "http",
            "c2c",
            &hub.url,
            "--header",
            "Authorization: Bearer ${C2C_TOKEN}",
        ],
        &[],
    );
    let config = std::fs::read_to_string(rig.file("home/.claude.json")).unwrap();
    assert!(
        !config.contains(&secret),
        "the secret was written into Claude Code's config"
    );

    let list = rig.claude(&["mcp", "list"], &token);
    let said = format!("{}{}", list.stdout, list.stderr);
    assert!(
        said.contains(&hub.url) && said.contains("Connected") && !said.contains("Failed"),
        "claude mcp list: {said}"
    );

    let wrong = [("C2C_TOKEN", Path::new("c2c_not_a_token"))];
    let list = rig.claude(&["mcp", "list"], &wrong);
    let said = format!("{}{}", list.stdout, list.stderr);
    assert!(
        said.contains("401")
            && said.contains("unknown or revoked token")
            && !said.contains("✔ Connected"),
        "claude mcp list with a wrong token: {said}"
    );

    let run = rig.run("tell beta hello", &[], &token);
    assert!(
        run.stdout.contains("sent over the hub"),
        "stdout: {}",
        run.stdout
    );
    assert_eq!(rig.standin.steps_left(), 0, "the script did not run out");
    // The model saw our JSON result, and beta's inbox holds the message from alpha.
    let results: Vec<String> = rig
        .standin
        .main_requests()
        .iter()
        .flat_map(|r| r.tool_results())
        .flat_map(|b| standin::result_texts(&b))
        .collect();
    assert!(
        results.iter().any(|t| t.contains("\"to\":\"beta\"")),
        "the tool result did not reach the model: {results:?}"
    );
    let inbox = common::cli_json(&db, &["inbox", "--as", "beta"]);
    let messages = inbox["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{inbox}");
    assert_eq!(messages[0]["from_name"], "alpha");
    assert_eq!(messages[0]["body"], body);
}
