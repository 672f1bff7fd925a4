//! A database written by the original Python claude-c2c (its exact schema, rows as it wrote
//! them) is opened by the binary and migrated in place, with nothing lost.

mod common;

use common::{Server, TempDb, ids};
use rusqlite::{Connection, params};
use serde_json::json;

/// The original server's schema, verbatim.
const PYTHON_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS sessions (
        session_id   TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        cwd          TEXT,
        started_at   TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        metadata     TEXT
    );
    CREATE TABLE IF NOT EXISTS messages (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        from_session TEXT NOT NULL,
        from_name    TEXT NOT NULL,
        to_name      TEXT NOT NULL,
        body         TEXT NOT NULL,
        tag          TEXT,
        created_at   TEXT NOT NULL,
        read_at      TEXT,
        read_by      TEXT
    );
    CREATE INDEX IF NOT EXISTS idx_inbox
        ON messages(to_name, read_at, created_at);
    CREATE TABLE IF NOT EXISTS state (
        key         TEXT PRIMARY KEY,
        value       TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        updated_by  TEXT NOT NULL
    );";

const T0: &str = "2026-11-01T10:00:00.000001+00:00";
const T1: &str = "2026-11-01T11:00:00+00:00";

/// Writes what a few days of the Python server would have left behind.
fn python_database(path: &std::path::Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL;").unwrap();
    conn.execute_batch(PYTHON_SCHEMA).unwrap();
    // Seen just now, so that list_sessions' window holds them whenever the test runs.
    let seen = c2c_server::clock::now();
    let session = |id: &str, name: &str, meta: &str| {
        conn.execute(
            "INSERT INTO sessions VALUES (?1, ?2, '/repo', ?3, ?4, ?5)",
            params![id, name, T0, seen, meta],
        )
        .unwrap();
    };
    // Two takeovers of "online", renamed the Python way (with and without microseconds).
    session(
        "s-online-1",
        "online-stale-2026-11-01T10:30:00.123456+00:00",
        "{}",
    );
    session("s-online-2", "online-stale-2026-11-01T10:45:00+00:00", "{}");
    session("s-online-3", "online", r#"{"repo": "deploy"}"#);
    session("s-local", "local", "{}");
    session("s-ci", "ci", "{}");
    let message = |from: &str,
                   from_name: &str,
                   to: &str,
                   body: &str,
                   read: Option<(&str, &str)>| {
        conn.execute(
            "INSERT INTO messages (from_session, from_name, to_name, body, tag, created_at, read_at, read_by)
             VALUES (?1, ?2, ?3, ?4, 'status', ?5, ?6, ?7)",
            params![from, from_name, to, body, T0, read.map(|r| r.0), read.map(|r| r.1)],
        )
        .unwrap();
    };
    message(
        "s-local",
        "local",
        "online",
        "read by online",
        Some((T1, "online")),
    );
    message("s-local", "local", "online", "unread for online", None);
    // The original marked a broadcast read for everybody when "local" acknowledged it.
    message(
        "s-ci",
        "ci",
        "*",
        "broadcast read by local",
        Some((T1, "local")),
    );
    message("s-online-3", "online", "local", "unread for local", None);
    conn.execute(
        "INSERT INTO state VALUES ('last_run_id', ?1, ?2, 'local'), ('deploy/cfg', ?3, ?2, 'online')",
        params![json!("abc123").to_string(), T1, json!({"replicas": 3}).to_string()],
    )
    .unwrap();
}

#[tokio::test]
async fn a_python_database_is_migrated_with_nothing_lost() {
    let db = TempDb::new("python-db");
    python_database(&db.path());

    // A plain start migrates; the sessions then read through the tools.
    let local = Server::start(&db).await;
    let state = local.ok("get_state", json!({})).await;
    assert_eq!(
        state["entries"],
        json!([
            {"key": "deploy/cfg", "value": {"replicas": 3}, "updated_at": T1, "updated_by": "online"},
            {"key": "last_run_id", "value": "abc123", "updated_at": T1, "updated_by": "local"}
        ])
    );
    let listed = local.ok("list_sessions", json!({})).await;
    let mut names: Vec<&str> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["ci", "local", "online"],
        "superseded holders are not listed, live ones are"
    );
    let online_row = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "online")
        .unwrap();
    assert_eq!(online_row["session_id"], "s-online-3");
    assert_eq!(online_row["metadata"], json!({"repo": "deploy"}));

    local.ok("register_session", json!({"name": "local"})).await;
    let online = Server::named(&db, "online").await;
    let ci = Server::named(&db, "ci").await;

    let online_unread = online.ok("inbox", json!({})).await;
    let bodies: Vec<&str> = online_unread["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["unread for online", "broadcast read by local"],
        "the broadcast is unread for online"
    );
    let online_all = online.ok("inbox", json!({"unread_only": false})).await;
    let read = &online_all["messages"][0];
    assert_eq!(
        (read["body"].as_str(), read["read_at"].as_str()),
        (Some("read by online"), Some(T1))
    );

    let local_unread = local.ok("inbox", json!({})).await;
    let bodies: Vec<&str> = local_unread["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["unread for local"],
        "local's read of the broadcast is kept"
    );
    let local_all = local.ok("inbox", json!({"unread_only": false})).await;
    let broadcast = local_all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["to_name"] == "*")
        .unwrap();
    assert_eq!(broadcast["read_at"], T1);
    assert!(
        ids(&ci.ok("inbox", json!({})).await).is_empty(),
        "ci does not get its own broadcast"
    );
    for s in [local, online, ci] {
        s.stop().await;
    }

    // The file is consistent, at the current schema version, and the old holders are marked.
    let conn = Connection::open(db.path()).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, c2c_server::store::migrate::MIGRATIONS.len() as i64);
    let superseded: Vec<(String, String, Option<String>)> = conn
        .prepare("SELECT session_id, name, superseded_at FROM sessions WHERE session_id LIKE 's-online-%' ORDER BY session_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        superseded,
        [
            (
                "s-online-1".into(),
                "online".into(),
                Some("2026-11-01T10:30:00.123456+00:00".into())
            ),
            (
                "s-online-2".into(),
                "online".into(),
                Some("2026-11-01T10:45:00+00:00".into())
            ),
            // The Python-era holder was superseded by the registration above.
            (
                "s-online-3".into(),
                "online".into(),
                superseded_at(&conn, "s-online-3")
            ),
        ]
    );
    assert!(superseded_at(&conn, "s-online-3").is_some());
    let messages: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(messages, 4);
    drop(conn);

    // A second start on the migrated file changes nothing and works.
    let before = dump(&db.path());
    let again = Server::start(&db).await;
    assert_eq!(
        again.ok("get_state", json!({"key": "last_run_id"})).await["entry"]["value"],
        "abc123"
    );
    again.stop().await;
    assert_eq!(dump(&db.path()), before);
}

fn superseded_at(conn: &Connection, id: &str) -> Option<String> {
    conn.query_row(
        "SELECT superseded_at FROM sessions WHERE session_id = ?1",
        [id],
        |r| r.get(0),
    )
    .unwrap()
}

/// Every message and state row, and the schema version, as text.
fn dump(path: &std::path::Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT json_array(id, from_session, to_name, body, read_at, read_by) FROM messages ORDER BY id",
        "SELECT json_array(message_id, reader, read_at) FROM broadcast_reads ORDER BY 1",
        "SELECT json_array(key, value, updated_by) FROM state ORDER BY key",
        "SELECT json_array(user_version) FROM pragma_user_version",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}
