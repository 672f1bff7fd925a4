//! A database written by the original Python claude-c2c (its exact schema, rows as it wrote
//! them) is opened by the binary and migrated in place, with nothing lost; a second start on
//! the migrated file changes nothing, and several first starts at once migrate it once. A
//! database from before rooms (schema version 5) is migrated into the default room, its reads,
//! receipts, broadcast cursors and state (at version 1) kept.

mod common;

use std::collections::BTreeMap;

use common::{Server, TempDb, bodies, cli_json, ids};
use rusqlite::{Connection, params};
use serde_json::{Value, json};

/// The original server's schema (`SCHEMA_SQL` in claude_c2c/server.py), verbatim.
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
    );
";

// `datetime.now(timezone.utc).isoformat()`: microseconds when non-zero, none when zero.
const T0: &str = "2026-11-01T10:00:00.000001+00:00";
const T1: &str = "2026-11-01T11:00:00+00:00";
const T2: &str = "2026-11-01T11:30:00.250000+00:00";
const STALE_MICROS: &str = "2026-11-01T10:30:00.123456+00:00";
const STALE_WHOLE: &str = "2026-11-01T10:45:00+00:00";
const STALE_X: &str = "2026-11-01T10:50:00.000100+00:00";

/// Message ids in the Python database, as AUTOINCREMENT assigned them.
const M_READ_BY_ONLINE: i64 = 1;
const M_UNREAD_FOR_ONLINE: i64 = 2;
const M_BCAST_READ_BY_LOCAL: i64 = 3;
const M_UNREAD_FOR_LOCAL: i64 = 4;
const M_BCAST_UNREAD: i64 = 5;
const M_BCAST_FROM_LOCAL_READ_BY_ONLINE: i64 = 6;
const M_BCAST_READ_BY_LOCAL_LATER: i64 = 7;
const M_TO_STALE_NAMED: i64 = 8;

/// Writes what a few days of the Python server would have left behind, the way it wrote it,
/// and returns the (still open) connection, as a Python server process still running would
/// hold it: in WAL mode, with its last writes not yet checkpointed.
fn python_database(path: &std::path::Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    // main(): executescript(SCHEMA_SQL); then every _db() sets these.
    conn.execute_batch(PYTHON_SCHEMA).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0;")
        .unwrap();
    // Recently seen, in Python's format, so that list_sessions' 10-minute window holds them.
    let seen = c2c_server::clock::now();
    let session = |id: &str, name: &str, started: &str, last_seen: &str, meta: &str| {
        conn.execute(
            "INSERT INTO sessions (session_id, name, cwd, started_at, last_seen_at, metadata)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, name, "/home/u/repo", started, last_seen, meta],
        )
        .unwrap();
    };
    // "online" was taken over twice; register_session renamed each holder
    // `name || '-stale-' || now` (now with and without microseconds).
    session(
        "11111111-1111-4111-8111-111111111111",
        &format!("online-stale-{STALE_MICROS}"),
        T0,
        STALE_MICROS,
        "{}",
    );
    session(
        "22222222-2222-4222-8222-222222222222",
        &format!("online-stale-{STALE_WHOLE}"),
        STALE_MICROS,
        &seen,
        "{}",
    );
    session(
        "33333333-3333-4333-8333-333333333333",
        "online",
        STALE_WHOLE,
        &seen,
        r#"{"repo": "deploy", "pid": 4242}"#,
    );
    session(
        "44444444-4444-4444-8444-444444444444",
        "local",
        T0,
        &seen,
        "{}",
    );
    session(
        "55555555-5555-4555-8555-555555555555",
        "ci",
        T0,
        &seen,
        "{}",
    );
    // A name that merely contains "-stale-" (hidden by the original's list), and its own
    // taken-over holder.
    session(
        "66666666-6666-4666-8666-666666666666",
        &format!("x-stale-y-stale-{STALE_X}"),
        T0,
        STALE_X,
        "{}",
    );
    session(
        "77777777-7777-4777-8777-777777777777",
        "x-stale-y",
        STALE_X,
        &seen,
        "{}",
    );
    // Live but not seen for two hours.
    let idle_seen = c2c_server::clock::ago(std::time::Duration::from_secs(2 * 3600));
    session(
        "88888888-8888-4888-8888-888888888888",
        "idle",
        T0,
        &idle_seen,
        "{}",
    );

    let message = |from: &str,
                   from_name: &str,
                   to: &str,
                   body: &str,
                   tag: Option<&str>,
                   read: Option<(&str, &str)>| {
        conn.execute(
            "INSERT INTO messages (from_session, from_name, to_name, body, tag, created_at, read_at, read_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![from, from_name, to, body, tag, T0, read.map(|r| r.0), read.map(|r| r.1)],
        )
        .unwrap();
    };
    let local = "44444444-4444-4444-8444-444444444444";
    let online = "33333333-3333-4333-8333-333333333333";
    let ci = "55555555-5555-4555-8555-555555555555";
    message(
        local,
        "local",
        "online",
        "read by online",
        Some("status"),
        Some((T1, "online")),
    );
    message(
        local,
        "local",
        "online",
        "unread for online",
        Some("handoff"),
        None,
    );
    // The original marked a broadcast read for everybody when one session acknowledged it.
    message(
        ci,
        "ci",
        "*",
        "broadcast read by local",
        None,
        Some((T1, "local")),
    );
    message(
        online,
        "online",
        "local",
        "unread for local",
        Some("question"),
        None,
    );
    message(online, "online", "*", "broadcast nobody read", None, None);
    message(
        local,
        "local",
        "*",
        "broadcast from local, read by online",
        None,
        Some((T2, "online")),
    );
    message(
        ci,
        "ci",
        "*",
        "broadcast read by local later",
        Some("status"),
        Some((T2, "local")),
    );
    message(ci, "ci", "x-stale-y", "for x-stale-y", None, None);

    // set_state stores json.dumps(value) (ASCII-escaped, ", " and ": " separators).
    for (key, value, at, by) in [
        ("last_run_id", r#""abc123""#, T1, "local"),
        (
            "deploy/cfg",
            r#"{"replicas": 3, "regions": ["eu", "us"]}"#,
            T2,
            "online",
        ),
        ("greeting", r#""caf\u00e9 \ud83e\udd80""#, T1, "ci"),
        ("flag", "true", T0, "ci"),
        ("nothing", "null", T0, "ci"),
        ("ratio", "0.25", T0, "local"),
    ] {
        conn.execute(
            "INSERT INTO state (key, value, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4)",
            params![key, value, at, by],
        )
        .unwrap();
    }
    conn
}

/// The state entries as the tools must show them after migration: each at version 1, with no
/// expiry.
fn expected_state() -> Value {
    json!([
        {"key": "deploy/cfg", "value": {"replicas": 3, "regions": ["eu", "us"]}, "version": 1, "updated_at": T2, "updated_by": "online"},
        {"key": "flag", "value": true, "version": 1, "updated_at": T0, "updated_by": "ci"},
        {"key": "greeting", "value": "café 🦀", "version": 1, "updated_at": T1, "updated_by": "ci"},
        {"key": "last_run_id", "value": "abc123", "version": 1, "updated_at": T1, "updated_by": "local"},
        {"key": "nothing", "value": null, "version": 1, "updated_at": T0, "updated_by": "ci"},
        {"key": "ratio", "value": 0.25, "version": 1, "updated_at": T0, "updated_by": "local"}
    ])
}

/// The distinct rooms of `table`'s rows, in order.
fn rooms_of(conn: &Connection, table: &str) -> Vec<String> {
    conn.prepare(&format!("SELECT DISTINCT room FROM {table} ORDER BY room"))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn id_read(messages: &[Value]) -> Vec<(i64, Option<String>)> {
    messages
        .iter()
        .map(|m| {
            (
                m["id"].as_i64().unwrap(),
                m["read_at"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_database_is_migrated_with_nothing_lost() {
    let db = TempDb::new("python-db");
    let python = python_database(&db.path());
    assert!(
        db.dir().join("c2c.db-wal").exists(),
        "the Python-era writes are still in the WAL"
    );

    // A plain start migrates; shared state reads back exactly.
    let viewer = Server::start(&db).await;
    drop(python);
    let state = viewer.ok("get_state", json!({})).await;
    assert_eq!(state["entries"], expected_state());
    assert_eq!(
        viewer.ok("get_state", json!({"key": "last_run_id"})).await,
        json!({"entry": {"key": "last_run_id", "value": "abc123", "version": 1, "updated_at": T1, "updated_by": "local"}})
    );
    assert_eq!(
        viewer.ok("get_state", json!({"prefix": "deploy/"})).await["entries"],
        json!([expected_state()[0]])
    );

    // The superseded holders are not listed; the live ones are, with their rows intact, in the
    // default room.
    let listed = viewer.ok("list_sessions", json!({})).await;
    assert_eq!(listed["room"], "default", "{listed}");
    let by_name: BTreeMap<String, Value> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s.clone()))
        .collect();
    assert_eq!(
        by_name.keys().collect::<Vec<_>>(),
        ["ci", "local", "online", "x-stale-y"],
        "{listed}"
    );
    let online_row = &by_name["online"];
    assert_eq!(
        online_row["session_id"],
        "33333333-3333-4333-8333-333333333333"
    );
    assert_eq!(
        online_row["metadata"],
        json!({"repo": "deploy", "pid": 4242})
    );
    assert_eq!(online_row["cwd"], "/home/u/repo");
    assert_eq!(online_row["started_at"], STALE_WHOLE);
    assert!(by_name.values().all(|s| s["is_self"] == false));
    // The idle one is live, just not recent.
    let wide = viewer
        .ok("list_sessions", json!({"active_within_min": 1440}))
        .await;
    let wide_names: Vec<&str> = wide["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(wide_names.len(), 5, "{wide}");
    assert!(wide_names.contains(&"idle"));
    assert!(
        !wide_names.iter().any(|n| n.contains("-stale-2026")),
        "{wide}"
    );

    // Each recipient sees its messages, with Python-era reads kept per reader.
    let [local, online, ci, x] = Server::several(&db, ["local", "online", "ci", "x-stale-y"]).await;

    let local_unread = local.unread().await;
    assert_eq!(
        bodies(&local_unread),
        ["unread for local", "broadcast nobody read"]
    );
    assert_eq!(local_unread[0]["id"], M_UNREAD_FOR_LOCAL);
    assert_eq!(local_unread[0]["tag"], "question");
    assert_eq!(local_unread[0]["from_name"], "online");
    assert_eq!(
        local_unread[0]["from_session"],
        "33333333-3333-4333-8333-333333333333"
    );
    assert_eq!(local_unread[0]["created_at"], T0);
    assert_eq!(
        id_read(&local.all_messages().await),
        [
            (M_BCAST_READ_BY_LOCAL, Some(T1.to_string())),
            (M_UNREAD_FOR_LOCAL, None),
            (M_BCAST_UNREAD, None),
            (M_BCAST_READ_BY_LOCAL_LATER, Some(T2.to_string())),
        ],
        "local's reads of broadcasts are kept, its own broadcast is not shown"
    );

    assert_eq!(
        bodies(&online.unread().await),
        [
            "unread for online",
            "broadcast read by local",
            "broadcast read by local later"
        ],
        "local's reads of broadcasts are local's only"
    );
    assert_eq!(
        id_read(&online.all_messages().await),
        [
            (M_READ_BY_ONLINE, Some(T1.to_string())),
            (M_UNREAD_FOR_ONLINE, None),
            (M_BCAST_READ_BY_LOCAL, None),
            (M_BCAST_FROM_LOCAL_READ_BY_ONLINE, Some(T2.to_string())),
            (M_BCAST_READ_BY_LOCAL_LATER, None),
        ]
    );

    assert_eq!(
        bodies(&ci.unread().await),
        [
            "broadcast nobody read",
            "broadcast from local, read by online"
        ],
        "ci does not get its own broadcasts"
    );
    // A name containing "-stale-" keeps its mail; direct and broadcast interleave by id.
    assert_eq!(
        x.unread_ids().await,
        [
            M_BCAST_READ_BY_LOCAL,
            M_BCAST_UNREAD,
            M_BCAST_FROM_LOCAL_READ_BY_ONLINE,
            M_BCAST_READ_BY_LOCAL_LATER,
            M_TO_STALE_NAMED
        ]
    );

    // A name never seen before gets every broadcast unread.
    let late = Server::named(&db, "late").await;
    assert_eq!(
        late.unread_ids().await,
        [
            M_BCAST_READ_BY_LOCAL,
            M_BCAST_UNREAD,
            M_BCAST_FROM_LOCAL_READ_BY_ONLINE,
            M_BCAST_READ_BY_LOCAL_LATER
        ]
    );

    // Acknowledging works on migrated rows, and keeps Python-era reads as reads.
    assert_eq!(
        local
            .ok(
                "mark_read",
                json!({"message_ids": [M_BCAST_READ_BY_LOCAL, M_BCAST_UNREAD, M_UNREAD_FOR_LOCAL, M_READ_BY_ONLINE]}),
            )
            .await,
        json!({"marked": 2, "not_marked": [
            {"id": M_BCAST_READ_BY_LOCAL, "reason": "already_read"},
            {"id": M_READ_BY_ONLINE, "reason": "not_addressed_to_you"}
        ]})
    );
    assert!(local.unread_ids().await.is_empty());
    assert_eq!(
        online
            .ok("mark_read", json!({"message_ids": [M_READ_BY_ONLINE]}))
            .await["not_marked"][0]["reason"],
        "already_read"
    );
    // New messages get ids after the Python ones.
    let new_id = local.send("online", "after the migration").await;
    assert!(new_id > M_TO_STALE_NAMED);
    assert_eq!(
        online.unread_ids().await,
        [
            M_UNREAD_FOR_ONLINE,
            M_BCAST_READ_BY_LOCAL,
            M_BCAST_READ_BY_LOCAL_LATER,
            new_id
        ]
    );
    for s in [viewer, local, online, ci, x, late] {
        s.stop().await;
    }

    // The file is consistent, at the current schema version, and the taken-over holders got
    // their names back with the takeover recorded.
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
        .prepare(
            "SELECT session_id, name, superseded_at FROM sessions
              WHERE session_id IN ('11111111-1111-4111-8111-111111111111',
                                   '22222222-2222-4222-8222-222222222222',
                                   '66666666-6666-4666-8666-666666666666')
              ORDER BY session_id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        superseded,
        [
            (
                "11111111-1111-4111-8111-111111111111".to_string(),
                "online".to_string(),
                Some(STALE_MICROS.to_string())
            ),
            (
                "22222222-2222-4222-8222-222222222222".to_string(),
                "online".to_string(),
                Some(STALE_WHOLE.to_string())
            ),
            (
                "66666666-6666-4666-8666-666666666666".to_string(),
                "x-stale-y".to_string(),
                Some(STALE_X.to_string())
            ),
        ]
    );
    let messages: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(messages, 9);
    let state: i64 = conn
        .query_row("SELECT count(*) FROM state", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, 6);
    // Everything the original wrote is in the default room (and so is what was written since).
    for table in ["sessions", "messages", "state", "broadcast_cursors"] {
        assert_eq!(rooms_of(&conn, table), ["default"], "{table}");
    }
    drop(conn);

    // A second start on the migrated file works and changes nothing.
    let before = dump(&db.path());
    let again = Server::start(&db).await;
    assert_eq!(
        again.ok("get_state", json!({})).await["entries"],
        expected_state()
    );
    again.ok("list_sessions", json!({})).await;
    again.stop().await;
    assert_eq!(dump(&db.path()), before);

    // Another room sees none of it.
    let elsewhere = Server::start_with(&db, &["--room", "elsewhere"], &[]).await;
    assert_eq!(
        elsewhere.ok("get_state", json!({})).await,
        json!({"entries": []})
    );
    let listed = elsewhere
        .ok("list_sessions", json!({"active_within_min": 1440}))
        .await;
    assert_eq!(listed, json!({"room": "elsewhere", "sessions": []}));
    elsewhere.register("late").await;
    assert!(elsewhere.all_messages().await.is_empty());
    elsewhere.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_first_starts_migrate_once() {
    let db = TempDb::new("python-db-race");
    drop(python_database(&db.path()));
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let path = db.path();
            tokio::spawn(async move { Server::start_at(&path, &[], &[]).await })
        })
        .collect();
    let mut servers = Vec::new();
    for s in starts {
        servers.push(s.await.expect("a simultaneous start failed"));
    }
    for s in &servers {
        assert_eq!(
            s.ok("get_state", json!({})).await["entries"],
            expected_state()
        );
    }
    for s in servers {
        s.stop().await;
    }
    let conn = Connection::open(db.path()).unwrap();
    let reads: i64 = conn
        .query_row("SELECT count(*) FROM broadcast_reads", [], |r| r.get(0))
        .unwrap();
    assert_eq!(reads, 3, "the Python-era broadcast reads, each once");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, c2c_server::store::migrate::MIGRATIONS.len() as i64);
}

/// Every row of every table, the schema and its version, as text.
fn dump(path: &std::path::Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut out = Vec::new();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.len() >= 4, "{tables:?}");
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let mut row = format!("{table}:");
                for i in 0..columns {
                    let v: rusqlite::types::Value = r.get(i)?;
                    row.push_str(&format!(" {v:?}"));
                }
                Ok(row)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.sort();
        out.extend(rows);
    }
    out.push(c2c_server::store::migrate::schema_sql(&conn).unwrap());
    out
}

#[tokio::test]
async fn odd_rows_an_original_database_may_hold_are_read_sensibly() {
    let db = TempDb::new("migrate-odd");
    {
        let conn = Connection::open(db.path()).unwrap();
        conn.execute_batch(PYTHON_SCHEMA).unwrap();
        let seen = c2c_server::clock::now();
        let session = |id: &str, name: &str, started: &str, meta: Option<&str>| {
            conn.execute(
                "INSERT INTO sessions (session_id, name, cwd, started_at, last_seen_at, metadata)
                 VALUES (?1, ?2, '/r', ?3, ?4, ?5)",
                params![id, name, started, seen, meta],
            )
            .unwrap();
        };
        // Two live rows of one name (a race the original allowed): the later start keeps it.
        session("older-dup", "dup", T0, Some("{}"));
        session("newer-dup", "dup", T1, Some(r#"{"which": "newer"}"#));
        // Metadata the original did not check: NULL, not JSON, JSON but not an object.
        session("null-meta", "nullmeta", T0, None);
        session("text-meta", "textmeta", T0, Some("repo=etl"));
        session("list-meta", "listmeta", T0, Some("[1, 2]"));
        // A state value some other writer left that is not JSON.
        conn.execute(
            "INSERT INTO state (key, value, updated_at, updated_by) VALUES ('raw', 'not json', ?1, 'x')",
            [T0],
        )
        .unwrap();
    }
    let server = Server::named(&db, "reader").await;
    let listed = server.ok("list_sessions", json!({})).await;
    let sessions = listed["sessions"].as_array().unwrap();
    let by_name =
        |name: &str| -> Vec<&Value> { sessions.iter().filter(|s| s["name"] == name).collect() };
    let dup = by_name("dup");
    assert_eq!(dup.len(), 1, "{listed}");
    assert_eq!(dup[0]["session_id"], "newer-dup");
    assert_eq!(dup[0]["metadata"], json!({"which": "newer"}));
    assert_eq!(by_name("nullmeta")[0]["metadata"], json!({}));
    assert_eq!(
        by_name("textmeta")[0]["metadata"],
        json!({"value": "repo=etl"})
    );
    assert_eq!(by_name("listmeta")[0]["metadata"], json!({"value": [1, 2]}));
    let raw = server.ok("get_state", json!({"key": "raw"})).await;
    assert_eq!(raw["entry"]["value"], "not json", "{raw}");
    // Messages to the name reach its one holder.
    server.send("dup", "for the newer one").await;
    let conn = Connection::open(db.path()).unwrap();
    let live: Vec<String> = conn
        .prepare("SELECT session_id FROM sessions WHERE name = 'dup' AND superseded_at IS NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(live, ["newer-dup"]);
    server.stop().await;
}

/// A database as the last release before rooms left it: schema version 5, written the way that
/// release wrote it.
mod before_rooms {
    use super::*;

    pub const LOCAL: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    pub const ONLINE: &str = "aaaaaaaa-0000-4000-8000-000000000002";
    pub const ONLINE_BEFORE: &str = "aaaaaaaa-0000-4000-8000-000000000003";
    pub const CI: &str = "aaaaaaaa-0000-4000-8000-000000000004";

    pub const T_OLD: &str = "2026-10-01T09:00:00.000000+00:00";
    pub const T_READ: &str = "2026-10-01T09:05:00.500000+00:00";
    pub const T_STATE: &str = "2026-10-01T09:10:00.000001+00:00";

    /// A direct message local sent online, read by online.
    pub const M_ASK: i64 = 1;
    /// A broadcast from ci that local read (a `broadcast_reads` row).
    pub const M_BCAST_READ: i64 = 2;
    /// A broadcast from ci below local's cursor with no read row: read as far as the cursor
    /// says. Shown unread to local only if the cursor were lost.
    pub const M_BCAST_BELOW_CURSOR: i64 = 3;
    /// online's reply to M_ASK, unread by local, delivered to it by a hook.
    pub const M_REPLY: i64 = 4;
    /// A broadcast from ci nobody read.
    pub const M_BCAST_UNREAD: i64 = 5;

    /// Writes the file at `path`: migrations 1 to 5 applied, then rows.
    pub fn create(path: &std::path::Path) {
        let conn = Connection::open(path).unwrap();
        for script in &c2c_server::store::migrate::MIGRATIONS[..5] {
            conn.execute_batch(script).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        let seen = c2c_server::clock::now();
        let session = |id: &str, name: &str, superseded: Option<&str>, waiter: Option<&str>| {
            conn.execute(
                "INSERT INTO sessions (session_id, name, cwd, started_at, last_seen_at, metadata,
                                       superseded_at, superseded_by, claude_session_id,
                                       hook_waiter, pid, client_pid, host)
                 VALUES (?1, ?2, '/repo', ?3, ?4, '{\"k\": 1}', ?5, ?6, ?7, ?8, NULL, NULL, NULL)",
                params![
                    id,
                    name,
                    T_OLD,
                    if superseded.is_some() { T_OLD } else { &seen },
                    superseded,
                    superseded.map(|_| ONLINE),
                    format!("cc-{name}"),
                    waiter
                ],
            )
            .unwrap();
        };
        session(LOCAL, "local", None, Some("waiter-1"));
        session(ONLINE, "online", None, None);
        session(ONLINE_BEFORE, "online", Some(T_OLD), None);
        session(CI, "ci", None, None);

        let message = |from: &str, from_name: &str, to: &str, body: &str, reply_to: Option<i64>| {
            conn.execute(
                "INSERT INTO messages (from_session, from_name, to_name, body, tag, created_at,
                                       reply_to)
                 VALUES (?1, ?2, ?3, ?4, 'status', ?5, ?6)",
                params![from, from_name, to, body, T_OLD, reply_to],
            )
            .unwrap();
            conn.last_insert_rowid()
        };
        assert_eq!(message(LOCAL, "local", "online", "ask", None), M_ASK);
        assert_eq!(message(CI, "ci", "*", "bcast read", None), M_BCAST_READ);
        assert_eq!(
            message(CI, "ci", "*", "bcast below cursor", None),
            M_BCAST_BELOW_CURSOR
        );
        assert_eq!(
            message(ONLINE, "online", "local", "reply", Some(M_ASK)),
            M_REPLY
        );
        assert_eq!(message(CI, "ci", "*", "bcast unread", None), M_BCAST_UNREAD);
        conn.execute(
            "UPDATE messages SET read_at = ?1, read_by = 'online' WHERE id = ?2",
            params![T_READ, M_ASK],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO broadcast_reads (message_id, reader, read_at) VALUES (?1, 'local', ?2)",
            params![M_BCAST_READ, T_READ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO broadcast_cursors (reader, below) VALUES ('local', ?1)",
            [M_REPLY],
        )
        .unwrap();
        for (id, to, via) in [
            (M_ASK, "online", "inbox"),
            (M_REPLY, "local", "hook"),
            (M_BCAST_UNREAD, "online", "channel"),
        ] {
            conn.execute(
                "INSERT INTO deliveries (message_id, recipient, delivered_at, via)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, to, T_READ, via],
            )
            .unwrap();
        }
        for (key, value, by) in [
            ("plan", r#"{"step":2,"done":["a","b"]}"#, "local"),
            ("owner", r#""online""#, "online"),
            ("n", "7", "ci"),
        ] {
            conn.execute(
                "INSERT INTO state (key, value, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4)",
                params![key, value, T_STATE, by],
            )
            .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_before_rooms_moves_into_the_default_room() {
    use before_rooms::*;
    let db = TempDb::new("v5-db");
    before_rooms::create(&db.path());

    // The first opener migrates: every row is in the default room, the cursor kept as it was,
    // the state at version 1 with no expiry.
    let viewer = Server::start(&db).await;
    let conn = Connection::open(db.path()).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, c2c_server::store::migrate::MIGRATIONS.len() as i64);
    for table in ["sessions", "messages", "state", "broadcast_cursors"] {
        assert_eq!(rooms_of(&conn, table), ["default"], "{table}");
    }
    let cursor: (String, String, i64) = conn
        .query_row(
            "SELECT room, reader, below FROM broadcast_cursors",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        cursor,
        ("default".to_string(), "local".to_string(), M_REPLY)
    );
    let state: Vec<(String, i64, Option<String>)> = conn
        .prepare("SELECT key, version, expires_at FROM state ORDER BY key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        state,
        [
            ("n".to_string(), 1, None),
            ("owner".to_string(), 1, None),
            ("plan".to_string(), 1, None)
        ]
    );
    drop(conn);

    // State reads back with its values, writers and times.
    assert_eq!(
        viewer.ok("get_state", json!({})).await,
        json!({"entries": [
            {"key": "n", "value": 7, "version": 1, "updated_at": T_STATE, "updated_by": "ci"},
            {"key": "owner", "value": "online", "version": 1, "updated_at": T_STATE, "updated_by": "online"},
            {"key": "plan", "value": {"step": 2, "done": ["a", "b"]}, "version": 1, "updated_at": T_STATE, "updated_by": "local"}
        ]})
    );
    // The names are the default room's: listed there, live holders only, rows intact.
    let listed = viewer.ok("list_sessions", json!({})).await;
    assert_eq!(listed["room"], "default");
    let sessions: Vec<(String, String)> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["cwd"], "/repo", "{s}");
            assert_eq!(s["metadata"], json!({"k": 1}), "{s}");
            (
                s["name"].as_str().unwrap().to_string(),
                s["session_id"].as_str().unwrap().to_string(),
            )
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        sessions,
        [
            ("ci".to_string(), CI.to_string()),
            ("local".to_string(), LOCAL.to_string()),
            ("online".to_string(), ONLINE.to_string())
        ]
    );
    viewer.stop().await;

    // The unread counts, as `sessions` and `rooms` show them: local has the reply and the
    // unread broadcast (the one below its cursor and the one it read are not counted); online
    // has the three broadcasts; ci, which sent them, nothing.
    let listed = cli_json(&db.path(), &["sessions", "--json"]);
    let unread: BTreeMap<String, (String, i64)> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                (
                    s["room"].as_str().unwrap().to_string(),
                    s["unread"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    let default = |n| ("default".to_string(), n);
    assert_eq!(
        unread,
        BTreeMap::from([
            ("ci".to_string(), default(0)),
            ("local".to_string(), default(2)),
            ("online".to_string(), default(3)),
        ]),
        "{listed}"
    );
    let rooms = cli_json(&db.path(), &["rooms", "--json"]);
    assert_eq!(rooms["rooms"].as_array().unwrap().len(), 1, "{rooms}");
    assert_eq!(rooms["rooms"][0]["room"], "default");
    assert_eq!(rooms["rooms"][0]["unread"], 5);

    // The sessions see their mail as before: reads, the cursor, replies and receipts kept.
    let local = Server::named(&db, "local").await;
    assert_eq!(local.unread_ids().await, [M_REPLY, M_BCAST_UNREAD]);
    let all = local.all_messages().await;
    assert_eq!(
        ids(&json!({"messages": all})),
        [M_BCAST_READ, M_BCAST_BELOW_CURSOR, M_REPLY, M_BCAST_UNREAD]
    );
    assert_eq!(id_read(&all)[0], (M_BCAST_READ, Some(T_READ.to_string())));
    let replies = local
        .ok(
            "wait_for_message",
            json!({"reply_to": M_ASK, "timeout_seconds": 0}),
        )
        .await;
    assert_eq!(ids(&replies), [M_REPLY]);
    let sent = local.ok("outbox", json!({})).await;
    assert_eq!(sent["messages"][0]["id"], M_ASK);
    assert_eq!(
        sent["messages"][0]["recipients"],
        json!([{"name": "online", "status": "read", "delivered_at": T_READ, "via": "inbox",
                "read_at": T_READ}]),
        "{sent}"
    );
    // A reply to a message from before the migration is accepted (it is in the room).
    let answer = local
        .ok(
            "send_message",
            json!({"to": "online", "body": "thanks", "reply_to": M_REPLY}),
        )
        .await;
    assert!(answer["id"].as_i64().unwrap() > M_BCAST_UNREAD);
    assert_eq!(
        local
            .ok(
                "mark_read",
                json!({"message_ids": [M_REPLY, M_BCAST_UNREAD]})
            )
            .await,
        json!({"marked": 2})
    );
    assert!(local.unread_ids().await.is_empty());

    // Versions go on from 1; a write that expects the entry absent finds it there.
    local
        .err(
            "set_state",
            json!({"key": "plan", "value": 3, "if_version": 0}),
            &["version 1", "\"local\"", T_STATE],
        )
        .await;
    let stored = local
        .ok(
            "set_state",
            json!({"key": "plan", "value": 3, "if_version": 1}),
        )
        .await;
    assert_eq!(stored["version"], 2);

    // online's name is held in the default room: a session there supersedes it, one in
    // another room does not.
    let online_b = Server::start_with(&db, &["--room", "b"], &[]).await;
    online_b.register("online").await;
    let conn = Connection::open(db.path()).unwrap();
    let live_online: Vec<(String, String)> = conn
        .prepare(
            "SELECT room, session_id FROM sessions
              WHERE name = 'online' AND superseded_at IS NULL ORDER BY room",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let rooms: Vec<&str> = live_online.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(rooms, ["b", "default"], "{live_online:?}");
    assert_eq!(live_online[1].1, ONLINE);
    drop(conn);
    assert!(online_b.unread_ids().await.is_empty());
    let online = Server::named(&db, "online").await;
    assert_eq!(
        online.unread_ids().await,
        [
            M_BCAST_READ,
            M_BCAST_BELOW_CURSOR,
            M_BCAST_UNREAD,
            answer["id"].as_i64().unwrap()
        ]
    );
    // The reply's receipt: delivered by a hook before the migration, read since.
    let sent = online.ok("outbox", json!({})).await;
    assert_eq!(
        receipt(&sent, M_REPLY),
        json!([{"name": "local", "status": "read", "delivered_at": T_READ, "via": "hook",
                "read_at": local_read_at(&db)}])
    );
    for s in [local, online_b, online] {
        s.stop().await;
    }
    let conn = Connection::open(db.path()).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// The recipients of message `id` in an outbox result.
fn receipt(outbox: &Value, id: i64) -> Value {
    outbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no message {id} in {outbox}"))["recipients"]
        .clone()
}

/// When local read the reply in the database of `db` from before rooms.
fn local_read_at(db: &TempDb) -> String {
    let conn = Connection::open(db.path()).unwrap();
    conn.query_row(
        "SELECT read_at FROM messages WHERE id = ?1",
        [before_rooms::M_REPLY],
        |r| r.get(0),
    )
    .unwrap()
}
