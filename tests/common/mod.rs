//! The harness the end-to-end tests share: a private temporary database per test, and a
//! server process of the built binary driven through rmcp's client over stdio.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_claude-c2c");

/// A temporary directory holding a test's database; removed when dropped.
pub struct TempDb {
    dir: PathBuf,
}

impl TempDb {
    /// A fresh, empty directory named after the test.
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "c2c-test-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDb { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database file inside it.
    pub fn path(&self) -> PathBuf {
        self.dir.join("c2c.db")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running server process with an MCP client attached.
pub struct Server {
    client: RunningService<RoleClient, ()>,
}

impl Server {
    /// Starts the binary on `db` with extra command-line `args` and environment `envs`.
    pub async fn start_with(db: &TempDb, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.arg("--db").arg(db.path()).args(args);
        cmd.env_remove("C2C_NAME").env_remove("CLAUDE_C2C_DB");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let transport = TokioChildProcess::new(cmd).expect("spawn claude-c2c");
        let client = ().serve(transport).await.expect("MCP handshake");
        Server { client }
    }

    /// Starts the binary on `db` with no extra options.
    pub async fn start(db: &TempDb) -> Server {
        Server::start_with(db, &[], &[]).await
    }

    /// Starts the binary on `db` and registers it as `name`.
    pub async fn named(db: &TempDb, name: &str) -> Server {
        let server = Server::start(db).await;
        server
            .ok("register_session", serde_json::json!({ "name": name }))
            .await;
        server
    }

    /// The client, for protocol-level checks.
    pub fn client(&self) -> &RunningService<RoleClient, ()> {
        &self.client
    }

    /// Calls `tool` with `args` (a JSON object): the structured result, or the error text.
    /// Checks the result's shape on the way: a success carries structuredContent and one
    /// text block holding the same JSON; an error carries only text.
    pub async fn call(&self, tool: &str, args: Value) -> Result<Value, String> {
        let args = match args {
            Value::Object(map) => map,
            other => panic!("arguments must be an object, got {other}"),
        };
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(args);
        let result = self
            .client
            .call_tool(params)
            .await
            .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"));
        assert_eq!(
            result.content.len(),
            1,
            "{tool}: one content block expected"
        );
        let text = result.content[0]
            .as_text()
            .unwrap_or_else(|| panic!("{tool}: the content block is not text"))
            .text
            .clone();
        if result.is_error == Some(true) {
            assert!(
                result.structured_content.is_none(),
                "{tool}: error with structured content"
            );
            return Err(text);
        }
        let structured = result
            .structured_content
            .unwrap_or_else(|| panic!("{tool}: success without structuredContent"));
        assert!(
            structured.is_object(),
            "{tool}: result is not one JSON object: {structured}"
        );
        let parsed: Value = serde_json::from_str(&text).expect("text block is JSON");
        assert_eq!(
            parsed, structured,
            "{tool}: text and structuredContent differ"
        );
        assert!(!text.contains('\n'), "{tool}: text JSON is not compact");
        Ok(structured)
    }

    /// Calls `tool` and expects success.
    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        self.call(tool, args)
            .await
            .unwrap_or_else(|e| panic!("{tool} failed: {e}"))
    }

    /// Calls `tool` and expects an error whose text contains every one of `needles`.
    pub async fn err(&self, tool: &str, args: Value, needles: &[&str]) -> String {
        match self.call(tool, args.clone()).await {
            Ok(v) => panic!("{tool}({args}) succeeded with {v}, expected an error"),
            Err(text) => {
                for needle in needles {
                    assert!(
                        text.contains(needle),
                        "{tool}({args}): error {text:?} lacks {needle:?}"
                    );
                }
                text
            }
        }
    }

    /// The ids of the caller's unread messages.
    pub async fn unread_ids(&self) -> Vec<i64> {
        ids(&self.ok("inbox", serde_json::json!({ "limit": 500 })).await)
    }

    /// Ends the client and the server process.
    pub async fn stop(self) {
        let _ = self.client.cancel().await;
    }
}

/// The `id`s of an inbox result's messages.
pub fn ids(inbox: &Value) -> Vec<i64> {
    inbox["messages"]
        .as_array()
        .expect("messages array")
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}
