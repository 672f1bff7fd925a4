//! Several server processes on one database, all at once: every message whose send returned an
//! id is received exactly once by its addressee while the recipients drain their inboxes
//! concurrently, no call fails (no busy or locked error reaches a client), simultaneous first
//! starts on a new file all succeed (waiting for each other's locks), and a name claimed by
//! several at once ends with one holder.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, TempDb, ids};
use serde_json::{Value, json};
use tokio::sync::Barrier;

const SERVERS: usize = 4;
/// Direct messages each server sends to each of the others.
const DIRECT_EACH: usize = 50;
/// Broadcasts each server sends.
const BROADCASTS_EACH: usize = 15;

/// Who sent a message and its sequence number in that sender's stream, parsed from its body.
fn parse_body(body: &str) -> (String, usize) {
    // "<stream> #<n>"
    let (stream, n) = body.rsplit_once(" #").expect("body format");
    (stream.to_string(), n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_and_readers_lose_and_duplicate_nothing() {
    let started = Instant::now();
    let db = TempDb::new("concurrency");
    let names: Vec<String> = (0..SERVERS).map(|i| format!("s{i}")).collect();
    let mut servers = Vec::new();
    for name in &names {
        servers.push(Arc::new(Server::named(&db, name).await));
    }

    // One sender task per (sender, recipient) pair and one per sender for broadcasts, plus one
    // draining reader per server; all start together.
    let senders = SERVERS * (SERVERS - 1) + SERVERS;
    let barrier = Arc::new(Barrier::new(senders + SERVERS));
    let sending = Arc::new(AtomicUsize::new(senders));
    let mut send_tasks = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let mut streams: Vec<(String, usize)> = names
            .iter()
            .filter(|n| **n != names[i])
            .map(|n| (n.clone(), DIRECT_EACH))
            .collect();
        streams.push(("*".to_string(), BROADCASTS_EACH));
        for (to, count) in streams {
            let server = server.clone();
            let barrier = barrier.clone();
            let sending = sending.clone();
            let stream = format!("{}->{to}", names[i]);
            send_tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let mut sent = Vec::new();
                for n in 0..count {
                    let body = format!("{stream} #{n}");
                    let result = server
                        .call("send_message", json!({"to": to, "body": body}))
                        .await
                        .unwrap_or_else(|e| panic!("{stream}: send #{n} failed under load: {e}"));
                    assert_eq!(result["to"], to.as_str());
                    sent.push((result["id"].as_i64().expect("id"), to.clone(), body));
                }
                sending.fetch_sub(1, Ordering::SeqCst);
                sent
            }));
        }
    }
    let mut read_tasks = Vec::new();
    for server in &servers {
        let server = server.clone();
        let barrier = barrier.clone();
        let sending = sending.clone();
        read_tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            // Every message in the order this reader received it.
            let mut received: Vec<Value> = Vec::new();
            loop {
                // Checked before reading: an empty inbox after every send returned is final.
                let done = sending.load(Ordering::SeqCst) == 0;
                let inbox = server
                    .call("inbox", json!({"limit": 100}))
                    .await
                    .unwrap_or_else(|e| panic!("inbox failed under load: {e}"));
                let batch = ids(&inbox);
                if batch.is_empty() {
                    if done {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                let marked = server
                    .call("mark_read", json!({"message_ids": batch}))
                    .await
                    .unwrap_or_else(|e| panic!("mark_read failed under load: {e}"));
                assert_eq!(
                    marked,
                    json!({"marked": batch.len()}),
                    "an unread message could not be marked"
                );
                received.extend(inbox["messages"].as_array().unwrap().iter().cloned());
            }
            received
        }));
    }

    // What was sent, by recipient ("*" for broadcasts).
    let mut sent_to: BTreeMap<String, BTreeMap<i64, String>> = BTreeMap::new();
    let mut all_ids = BTreeSet::new();
    for task in send_tasks {
        for (id, to, body) in task.await.expect("sender task") {
            assert!(all_ids.insert(id), "id {id} returned by two sends");
            sent_to.entry(to).or_default().insert(id, body);
        }
    }
    let direct_total = SERVERS * (SERVERS - 1) * DIRECT_EACH;
    let broadcast_total = SERVERS * BROADCASTS_EACH;
    assert_eq!(all_ids.len(), direct_total + broadcast_total);

    for (task, name) in read_tasks.into_iter().zip(&names) {
        let received = task.await.expect("reader task");
        let mut got: BTreeMap<i64, String> = BTreeMap::new();
        let mut last_in_stream: BTreeMap<String, usize> = BTreeMap::new();
        let mut last_id = 0;
        for m in &received {
            let id = m["id"].as_i64().unwrap();
            let body = m["body"].as_str().unwrap().to_string();
            assert!(
                m["to_name"] == name.as_str() || m["to_name"] == "*",
                "{name} got a message for {}",
                m["to_name"]
            );
            assert_ne!(m["from_name"], name.as_str(), "{name} got its own message");
            assert!(
                got.insert(id, body.clone()).is_none(),
                "{name} received message {id} twice"
            );
            // Each sender's stream arrives in the order it was sent, and ids only grow.
            assert!(id > last_id, "{name}: id {id} after {last_id}");
            last_id = id;
            let (stream, n) = parse_body(&body);
            if let Some(prev) = last_in_stream.insert(stream.clone(), n) {
                assert_eq!(n, prev + 1, "{name}: stream {stream} out of order");
            }
        }
        // Exactly the direct messages to this name and every other server's broadcasts.
        let mut expected = sent_to.get(name).cloned().unwrap_or_default();
        for (id, body) in &sent_to["*"] {
            if !body.starts_with(&format!("{name}->")) {
                expected.insert(*id, body.clone());
            }
        }
        assert_eq!(
            got.len(),
            (SERVERS - 1) * (DIRECT_EACH + BROADCASTS_EACH),
            "{name}: wrong count"
        );
        assert_eq!(
            got, expected,
            "{name} did not get exactly what was sent to it"
        );
    }

    // Nothing is left unread anywhere, and the store holds exactly what was sent.
    for server in &servers {
        assert!(server.unread_ids().await.is_empty());
    }
    let conn = rusqlite::Connection::open(db.path()).unwrap();
    let stored: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored as usize, direct_total + broadcast_total);
    let unread_direct: i64 = conn
        .query_row(
            "SELECT count(*) FROM messages WHERE to_name != '*' AND read_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unread_direct, 0);
    drop(conn);
    for server in servers {
        Arc::into_inner(server)
            .expect("no other owner")
            .stop()
            .await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "took {:?}",
        started.elapsed()
    );
}

/// Starts `count` servers on `path` at once, named `n0`, `n1`, ...: each one that comes up
/// sends a message to `n0`. Returns the servers that came up and the failures of the others.
async fn start_together(path: &Path, count: usize) -> (Vec<Server>, Vec<String>) {
    let starts: Vec<_> = (0..count)
        .map(|i| {
            let cmd = common::server_command(path, &["--name", &format!("n{i}")], &[]);
            tokio::spawn(async move {
                let server = Server::try_spawn(cmd).await?;
                server
                    .call(
                        "send_message",
                        json!({"to": "n0", "body": format!("from n{i}")}),
                    )
                    .await?;
                Ok::<_, String>(server)
            })
        })
        .collect();
    let mut servers = Vec::new();
    let mut failures = Vec::new();
    for s in starts {
        match s.await.expect("start task") {
            Ok(server) => servers.push(server),
            Err(e) => failures.push(e),
        }
    }
    (servers, failures)
}

/// Returns once `count` other processes have the file at `path` open (so that they are at
/// SQLite's set-up, waiting for a lock the caller holds) and a little more, or after 5 s,
/// well within their 10 s busy timeout. A fixed hold could end before slow servers start,
/// and the test would then prove nothing. Only Linux shows another process's open files
/// cheaply (`/proc`); elsewhere the hold is one second.
async fn hold_until_opened(path: &Path, count: usize) {
    #[cfg(target_os = "linux")]
    {
        let target = std::fs::canonicalize(path).unwrap();
        let me = std::process::id().to_string();
        let opened_by = || -> usize {
            let Ok(procs) = std::fs::read_dir("/proc") else {
                return 0;
            };
            procs
                .flatten()
                .filter(|p| p.file_name() != me.as_str())
                .filter(|p| {
                    std::fs::read_dir(p.path().join("fd")).is_ok_and(|fds| {
                        fds.flatten()
                            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == target))
                    })
                })
                .count()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while opened_by() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (path, count);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Checks that all of `servers` (n0 first) came up on one database at the current schema.
async fn check_all_up(path: &Path, servers: &[Server]) {
    let listed = servers[0].listed().await;
    assert_eq!(listed.len(), servers.len(), "{listed:?}");
    // Everyone, n0 included, wrote to n0: a direct message to one's own name is for oneself.
    assert_eq!(servers[0].unread_ids().await.len(), servers.len());
    let conn = rusqlite::Connection::open(path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, c2c_server::store::migrate::MIGRATIONS.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_first_starts_on_a_new_file_all_succeed() {
    const AT_ONCE: usize = 6;
    const ROUNDS: usize = 4;
    let db = TempDb::new("first-starts");

    // A new directory and file, created by whichever server gets there first.
    let path = db.dir().join("fresh").join("c2c.db");
    let (servers, failures) = start_together(&path, AT_ONCE).await;
    assert!(
        failures.is_empty(),
        "simultaneous first starts failed: {failures:#?}"
    );
    check_all_up(&path, &servers).await;
    for s in servers {
        s.stop().await;
    }

    // The same with the starts lined up: an empty database file (as the first process to
    // create it leaves it) is held by a reader while the servers start, so that they all
    // reach SQLite's set-up at the same moment when it lets go.
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let path = db.dir().join(format!("round-{round}.db"));
        std::fs::File::create(&path).unwrap();
        let reader = rusqlite::Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .unwrap();
        let started = tokio::spawn({
            let path = path.clone();
            async move { start_together(&path, AT_ONCE).await }
        });
        hold_until_opened(&path, AT_ONCE).await;
        reader.execute_batch("COMMIT").unwrap();
        drop(reader);
        let (servers, failed) = started.await.unwrap();
        failures.extend(failed.into_iter().map(|e| format!("round {round}: {e}")));
        if servers.len() == AT_ONCE {
            check_all_up(&path, &servers).await;
        }
        for s in servers {
            s.stop().await;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} simultaneous first starts failed: {failures:#?}",
        failures.len(),
        AT_ONCE * ROUNDS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_waits_while_another_holds_the_new_files_lock() {
    // While one server's first start switches a new, empty file to WAL, it holds the file's
    // write lock (here the test holds it, until the servers have the file open). Starts
    // meanwhile must wait for the lock, up to their busy timeout, and then come up; not give
    // up at once.
    let db = TempDb::new("first-start-lock");
    let path = db.dir().join("locked.db");
    std::fs::File::create(&path).unwrap();
    let writer = rusqlite::Connection::open(&path).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = tokio::spawn({
        let path = path.clone();
        async move { start_together(&path, 3).await }
    });
    hold_until_opened(&path, 3).await;
    writer.execute_batch("COMMIT").unwrap();
    drop(writer);
    let (servers, failures) = started.await.unwrap();
    let waited = failures.is_empty();
    if waited {
        check_all_up(&path, &servers).await;
    }
    for s in servers {
        s.stop().await;
    }
    assert!(
        waited,
        "starts on a new database whose write lock was held failed instead of waiting: \
         {failures:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_claimed_by_several_at_once_ends_with_one_holder() {
    let db = TempDb::new("contested");
    let mut servers = Vec::new();
    for _ in 0..4 {
        servers.push(Arc::new(Server::start(&db).await));
    }
    let barrier = Arc::new(Barrier::new(servers.len()));
    let claims: Vec<_> = servers
        .iter()
        .map(|s| {
            let s = s.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                s.call("register_session", json!({"name": "contested"}))
                    .await
                    .unwrap_or_else(|e| panic!("a simultaneous claim failed: {e}"))
            })
        })
        .collect();
    let mut session_ids = BTreeSet::new();
    for c in claims {
        let r = c.await.unwrap();
        assert_eq!(r["name"], "contested");
        assert!(session_ids.insert(r["session_id"].as_str().unwrap().to_string()));
    }

    // Exactly one of them holds the name; the others are told they were superseded.
    let mut holders = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        match s.call("inbox", json!({})).await {
            Ok(_) => holders.push(i),
            Err(e) => assert!(e.contains("\"contested\""), "{e}"),
        }
    }
    assert_eq!(holders.len(), 1, "holders: {holders:?}");
    let listed = servers[0].ok("list_sessions", json!({})).await;
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{listed}");
    assert!(session_ids.contains(sessions[0]["session_id"].as_str().unwrap()));
    for s in servers {
        Arc::into_inner(s).unwrap().stop().await;
    }
}
