//! The official MCP SDKs as clients: `tests/sdk/python_client.py` (PyPI `mcp`) and
//! `tests/sdk/ts_client.mjs` (npm `@modelcontextprotocol/sdk`) each start two servers of the
//! built binary on one database, as alpha and beta, and call every tool between them. Both SDKs
//! check every result's structuredContent against the tool's outputSchema, so a result our
//! schema does not describe fails here even when our own tests accept it.
//!
//! MCP Inspector's command line lints the tool list in `--strict` mode for what clients that
//! read schemas narrowly trip on; it must find nothing.
//!
//! The SDKs live in project-local places that `.ci/run` fills, at pinned versions:
//! `target/sdk-venv` (a Python venv with `mcp`) and `target/sdk-node` (`npm install --prefix`).
//! Without them a test fails under `CI=true`, saying what to install, and otherwise prints why
//! it skipped (on stderr and in the skip list that `.ci/run` prints) and passes.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, SERVER_ENV, TempDb};

/// The versions `.ci/run` installs; keep them in step with it.
const PY_SDK: &str = "mcp==2.3.0";
const TS_SDK: &str = "@modelcontextprotocol/sdk@1.32.2";
const INSPECTOR: &str = "@modelcontextprotocol/inspector@2.12.0";

/// The longest one script may run before it is killed and the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(240);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Whether `program args` runs and exits 0.
fn runs(program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The venv's Python with the SDK importable, or why not.
fn python() -> Result<PathBuf, String> {
    let venv = workspace().join("target/sdk-venv");
    let python = venv.join(if cfg!(windows) {
        "Scripts/python.exe"
    } else {
        "bin/python"
    });
    if python.is_file() && runs(&python, &["-c", "import mcp"]) {
        Ok(python)
    } else {
        Err(format!(
            "no Python MCP SDK in {}: run .ci/run, or python3 -m venv {0} && {0}/bin/pip install '{PY_SDK}'",
            venv.display()
        ))
    }
}

/// `node` from PATH and the node_modules holding the SDK, or why not.
fn node() -> Result<(PathBuf, PathBuf), String> {
    let prefix = workspace().join("target/sdk-node");
    let modules = prefix.join("node_modules");
    let node = PathBuf::from("node");
    if !runs(&node, &["--version"]) {
        return Err("node not found on PATH: install Node.js 18 or newer".to_string());
    }
    if !modules
        .join("@modelcontextprotocol/sdk/package.json")
        .is_file()
    {
        return Err(format!(
            "no TypeScript MCP SDK in {}: run .ci/run, or npm install --prefix {} {TS_SDK}",
            modules.display(),
            prefix.display()
        ));
    }
    Ok((node, modules))
}

/// Runs `cmd` (a client script given the binary and a fresh database) to the end, or kills it
/// after [`RUN_LIMIT`]; fails with its whole output unless it exits 0.
fn run_client(name: &str, mut cmd: Command) {
    let db = TempDb::new(name);
    for var in SERVER_ENV
        .iter()
        .copied()
        .chain(["C2C_CHANNEL", "C2C_BIN", "C2C_DB"])
    {
        cmd.env_remove(var);
    }
    cmd.arg(BIN)
        .arg(db.path())
        .current_dir(db.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: cannot start: {e}"));
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        out.join().unwrap(),
        err.join().unwrap()
    );
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("{name} exited with {status}:\n{output}"),
        None => panic!("{name} still running after {RUN_LIMIT:?}, killed:\n{output}"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

#[test]
fn python_sdk_calls_every_tool() {
    let Some(python) = common::skip::required("python_sdk_calls_every_tool", python()) else {
        return;
    };
    let mut cmd = Command::new(python);
    cmd.arg(workspace().join("tests/sdk/python_client.py"));
    run_client("python-sdk", cmd);
}

#[test]
fn typescript_sdk_calls_every_tool() {
    let Some((node, modules)) = common::skip::required("typescript_sdk_calls_every_tool", node())
    else {
        return;
    };
    let mut cmd = Command::new(node);
    cmd.arg(workspace().join("tests/sdk/ts_client.mjs"))
        .env("NODE_PATH", modules);
    run_client("ts-sdk", cmd);
}

/// MCP Inspector's command-line entry point, or why not.
fn inspector() -> Result<PathBuf, String> {
    let prefix = workspace().join("target/sdk-node");
    let bin = prefix.join("node_modules/.bin/mcp-inspector");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "no MCP Inspector in {}: run .ci/run, or npm install --prefix {} {INSPECTOR}",
            bin.display(),
            prefix.display()
        ))
    }
}

#[test]
fn inspector_strict_finds_no_schema_portability_problems() {
    let test = "inspector_strict_finds_no_schema_portability_problems";
    let Some(inspector) = common::skip::required(test, inspector()) else {
        return;
    };
    let db = TempDb::new("inspector");
    let mut cmd = Command::new(inspector);
    for var in SERVER_ENV {
        cmd.env_remove(var);
    }
    let out = cmd
        .args(["--cli", "--strict", "--method", "tools/list", BIN, "--db"])
        .arg(db.path())
        .args(["--name", "lint"])
        .current_dir(db.dir())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{test}: cannot start the inspector: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("Warning") && !stderr.contains("Error"),
        "{test}: {}\n--- stderr ---\n{stderr}",
        out.status
    );
    let listed: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{test}: stdout is not the tool list ({e}): {stdout}"));
    assert_eq!(
        listed["tools"].as_array().map(Vec::len),
        Some(<c2c_server::tools::Tools as c2c_server::registry::ToolSet>::TOOLS.len()),
        "{stdout}"
    );
}
