//! Versioned shared state across server processes, end to end: compare-and-set under
//! contention (eight processes increment one counter without losing or repeating a version),
//! leases that expire and pass to another session, waiters woken by a release, by an expiry
//! or by their timeout, the same through the command line, and the bounds and pruning of it.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::raw::Raw;
use common::{Server, TempDb, cli, cli_json};
use serde_json::{Value, json};
use tokio::sync::Barrier;

/// What a waiting `get_state` reports as progress (every 5 s): seeing it proves the call has
/// read the entry at the version it waits on and is blocked, with no pause to guess at.
const WAITING: &str = "waiting for the entry to change";

/// Well before any wait's own timeout (30 s) and far after any prompt wake-up, even on a
/// loaded two-core machine: the bound that tells a wake from a timeout.
const PROMPT: Duration = Duration::from_secs(10);

/// The entry `get_state` returns for `key` (null when there is none).
async fn entry(server: &Server, key: &str) -> Value {
    let read = server.ok("get_state", json!({ "key": key })).await;
    assert_eq!(read.get("timed_out"), None, "a plain read never times out");
    read["entry"].clone()
}

/// The version and value of the counter at `key`: (0, 0) while there is none. Every write
/// of the counter goes through compare-and-set, so its value always equals its version.
async fn counter(server: &Server, key: &str) -> (i64, i64) {
    let entry = entry(server, key).await;
    if entry.is_null() {
        return (0, 0);
    }
    let (version, value) = (entry["version"].as_i64(), entry["value"].as_i64());
    let (Some(version), Some(value)) = (version, value) else {
        panic!("a counter entry without an integer version and value: {entry}");
    };
    assert_eq!(
        version, value,
        "the counter lost or repeated a write: {entry}"
    );
    (version, value)
}

/// Polls `key` until it has no live entry (its lease ran out), failing after 30 s.
async fn until_gone(server: &Server, key: &str) {
    let deadline = Instant::now() + common::CALL_TIMEOUT;
    while !entry(server, key).await.is_null() {
        assert!(Instant::now() < deadline, "{key} never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `server` has reported that one of its `get_state` calls is waiting.
async fn until_waiting(server: &Server, count: usize) {
    let progress = server
        .wait_for_notifications("notifications/progress", count)
        .await;
    assert!(
        progress.iter().all(|p| p["message"] == WAITING),
        "{progress:?}"
    );
}

/// A `get_state` of `key` waiting while it is at `version`, run on its own task; the task
/// answers with the result and how long the call took.
fn wait_on(
    server: &Arc<Server>,
    key: &str,
    version: i64,
    timeout_seconds: i64,
) -> tokio::task::JoinHandle<(Value, Duration)> {
    let server = server.clone();
    let args = json!({
        "key": key,
        "wait_while_version": version,
        "timeout_seconds": timeout_seconds,
    });
    tokio::spawn(async move {
        let started = Instant::now();
        let read = server.ok("get_state", args).await;
        (read, started.elapsed())
    })
}

/// An `expires_at` as a time.
fn time(expires_at: &Value) -> SystemTime {
    let text = expires_at
        .as_str()
        .unwrap_or_else(|| panic!("expires_at is not a string: {expires_at}"));
    c2c_server::clock::parse(text).unwrap_or_else(|| panic!("expires_at {text:?} is no time"))
}

const WORKERS: usize = 8;
const INCREMENTS: i64 = 200;

// The test: eight processes each increment one counter 200 times by compare-and-set
// (read the version, write at that version, read again on a conflict). Every successful write
// got its own version, so the versions handed out are exactly 1..=1600, and the final value is
// 1600. All eight first read the empty counter and only then write it with if_version=0: one
// of them wins and seven conflict, so contention is certain, not left to the scheduler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_increment_one_counter_by_compare_and_set() {
    let db = TempDb::new("state-counter");
    let mut servers = Vec::new();
    for i in 0..WORKERS {
        servers.push(Arc::new(Server::named(&db, &format!("w{i}")).await));
    }
    let started = Instant::now();
    let barrier = Arc::new(Barrier::new(WORKERS));
    let mut tasks = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let server = server.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("w{i}");
            let mut seen = counter(&server, "counter").await;
            assert_eq!(seen, (0, 0), "{name} read before anyone wrote");
            barrier.wait().await;
            let (mut versions, mut conflicts, mut first_won) = (Vec::new(), 0usize, None);
            while versions.len() < INCREMENTS as usize {
                let (version, value) = seen;
                let args = json!({"key": "counter", "value": value + 1, "if_version": version});
                match server.call("set_state", args).await {
                    Ok(stored) => {
                        assert_eq!(stored["version"], version + 1, "{name}: {stored}");
                        assert_eq!(stored["updated_by"], name.as_str());
                        assert_eq!(stored.get("expires_at"), None, "{stored}");
                        versions.push(version + 1);
                        first_won.get_or_insert(true);
                    }
                    Err(e) => {
                        // Only a lost race may fail, never the database (busy, locked).
                        assert!(
                            e.contains(&format!("not {version}: nothing was changed")),
                            "{name}: {e}"
                        );
                        conflicts += 1;
                        first_won.get_or_insert(false);
                    }
                }
                seen = counter(&server, "counter").await;
                // Won or lost, someone wrote at `version`: versions only grow.
                assert!(seen.0 > version, "{name}: {seen:?} after version {version}");
            }
            (versions, conflicts, first_won == Some(true))
        }));
    }
    let (mut versions, mut conflicts, mut first_winners) = (Vec::new(), 0, 0);
    for task in tasks {
        let (mine, lost, won) = task.await.expect("worker");
        versions.extend(mine);
        conflicts += lost;
        first_winners += usize::from(won);
    }
    eprintln!(
        "{WORKERS} processes, {} increments, {conflicts} conflicts, in {:?}",
        versions.len(),
        started.elapsed()
    );
    assert_eq!(
        first_winners, 1,
        "exactly one if_version=0 write of eight wins"
    );
    assert!(conflicts >= WORKERS - 1, "{conflicts} conflicts");
    versions.sort_unstable();
    let total = WORKERS as i64 * INCREMENTS;
    assert_eq!(
        versions,
        (1..=total).collect::<Vec<_>>(),
        "each version once"
    );

    let last = entry(&servers[0], "counter").await;
    assert_eq!(last["value"], total);
    assert_eq!(last["version"], total);
    let names: Vec<String> = (0..WORKERS).map(|i| format!("w{i}")).collect();
    assert!(
        names.iter().any(|n| last["updated_by"] == n.as_str()),
        "{last}"
    );
    for server in servers {
        Arc::into_inner(server)
            .expect("no task holds it")
            .stop()
            .await;
    }
}

// A lease: A takes it (if_version=0 with a time to live), B cannot while it lasts and is told
// who holds it at which version, A renews it at its version, it runs out with nothing
// written, A can no longer renew it, B takes it and the version goes on counting, and A,
// holding an old version, can neither renew nor release B's lease.
#[tokio::test]
async fn a_lease_expires_and_another_session_takes_it() {
    let db = TempDb::new("state-lease");
    let [a, b] = Server::several(&db, ["A", "B"]).await;
    let take = |value: &str, if_version: i64, ttl: i64| {
        json!({
            "key": "lease",
            "value": value,
            "if_version": if_version,
            "ttl_seconds": ttl,
        })
    };

    // A long first lease, so that nothing below races its expiry.
    let taken = a.ok("set_state", take("A", 0, 60)).await;
    assert_eq!(taken["key"], "lease");
    assert_eq!(taken["version"], 1);
    assert_eq!(taken["updated_by"], "A");
    let first_expiry = time(&taken["expires_at"]);
    let ahead = first_expiry.duration_since(SystemTime::now()).unwrap();
    assert!(
        ahead > Duration::from_secs(50) && ahead <= Duration::from_secs(60),
        "{ahead:?}"
    );
    let held = entry(&b, "lease").await;
    assert_eq!(held["value"], "A");
    assert_eq!(held["version"], 1);
    assert_eq!(held["updated_by"], "A");
    assert_eq!(held["expires_at"], taken["expires_at"]);

    let refused = b
        .err(
            "set_state",
            take("B", 0, 60),
            &[
                "\"lease\" is at version 1",
                "written by \"A\"",
                "expires at",
                "not 0: nothing was changed",
                "wait_while_version=1",
            ],
        )
        .await;
    assert!(
        refused.contains(taken["expires_at"].as_str().unwrap()),
        "{refused}"
    );
    assert_eq!(
        entry(&b, "lease").await,
        held,
        "the refused write changed nothing"
    );

    // Renewing without a time to live would make the lease a lock that never frees itself:
    // refused, and nothing changes. So is a delete "at version 0", which has nothing to delete.
    a.err(
        "set_state",
        json!({"key": "lease", "value": "A", "if_version": 1}),
        &[
            "ttl_seconds",
            "is a lease that expires at",
            "give ttl_seconds to renew it",
        ],
    )
    .await;
    a.err(
        "delete_state",
        json!({"key": "lease", "if_version": 0}),
        &["if_version", "nothing to delete"],
    )
    .await;
    assert_eq!(
        entry(&b, "lease").await,
        held,
        "the refused calls changed nothing"
    );

    // A renews at its version, for a shorter time.
    let renewed = a.ok("set_state", take("A", 1, 2)).await;
    assert_eq!(renewed["version"], 2);
    assert!(time(&renewed["expires_at"]) < first_expiry);

    until_gone(&b, "lease").await;
    assert!(SystemTime::now() >= time(&renewed["expires_at"]));
    // Expired: A's version is gone with it, and nobody's version 1 comes back.
    a.err(
        "set_state",
        take("A", 2, 60),
        &[
            "\"lease\" has no entry now (it expired or was deleted), not version 2",
            "nothing was changed",
            "a lease held at version 2 is lost: take it again with if_version=0",
        ],
    )
    .await;
    a.err(
        "set_state",
        take("A", 1, 60),
        &["has no entry now", "not version 1"],
    )
    .await;

    let mine = b.ok("set_state", take("B", 0, 60)).await;
    assert_eq!(
        mine["version"], 3,
        "the version goes on from the expired entry"
    );
    assert_eq!(mine["updated_by"], "B");

    a.err(
        "set_state",
        take("A", 2, 60),
        &["\"lease\" is at version 3", "written by \"B\"", "not 2"],
    )
    .await;
    a.err(
        "delete_state",
        json!({"key": "lease", "if_version": 2}),
        &[
            "\"lease\" is at version 3",
            "written by \"B\"",
            "not 2",
            "nothing was changed",
        ],
    )
    .await;
    let now_held = entry(&a, "lease").await;
    assert_eq!(now_held["value"], "B");
    assert_eq!(now_held["version"], 3);
    assert_eq!(now_held["updated_by"], "B");
    assert_eq!(now_held["expires_at"], mine["expires_at"]);
    let listed = a.ok("get_state", json!({"prefix": "lea"})).await;
    assert_eq!(listed["entries"], json!([now_held]));

    // B releases it at its version; the next taker goes on counting.
    let released = b
        .ok("delete_state", json!({"key": "lease", "if_version": 3}))
        .await;
    assert_eq!(released, json!({"key": "lease", "deleted": true}));
    assert_eq!(entry(&a, "lease").await, Value::Null);
    let again = a.ok("set_state", take("A", 0, 60)).await;
    assert_eq!(again["version"], 5, "the delete counted as a write");
}

// A waiter on a lock wakes when its holder releases it (B), and a waiter on an absent key
// when it is created (C); each is known to be blocked (it reported progress) before the
// write that wakes it, and the release of the lock does not end C's wait.
#[tokio::test]
async fn a_waiter_on_a_lock_wakes_when_it_is_released() {
    let db = TempDb::new("state-release");
    let a = Server::named(&db, "A").await;
    let b = Arc::new(Server::named(&db, "B").await);
    let c = Arc::new(Server::named(&db, "C").await);
    let held = a
        .ok(
            "set_state",
            json!({"key": "lock", "value": "A", "if_version": 0}),
        )
        .await;
    assert_eq!(held["version"], 1);

    let b_waits = wait_on(&b, "lock", 1, 30);
    let c_waits = wait_on(&c, "done", 0, 30);
    until_waiting(&b, 1).await;
    until_waiting(&c, 1).await;

    let released_at = Instant::now();
    let released = a
        .ok("delete_state", json!({"key": "lock", "if_version": 1}))
        .await;
    assert_eq!(released, json!({"key": "lock", "deleted": true}));
    let (read, _) = b_waits.await.expect("B's wait");
    let woke = released_at.elapsed();
    assert_eq!(read, json!({"entry": null}), "no timed_out: it was woken");
    assert!(woke < PROMPT, "B woke {woke:?} after the release");
    // A waiting call also runs again at each progress report (every 5 s): the release, not
    // the next report, ended this one.
    let reports = b.notifications("notifications/progress").len();
    assert_eq!(reports, 1, "B's wait ended only at a later progress report");
    assert!(
        !c_waits.is_finished(),
        "the lock's release woke C's wait on another key"
    );

    let done = a
        .ok("set_state", json!({"key": "done", "value": true}))
        .await;
    let (read, _) = c_waits.await.expect("C's wait");
    assert_eq!(read.get("timed_out"), None, "{read}");
    assert_eq!(read["entry"]["value"], true);
    assert_eq!(read["entry"]["version"], done["version"]);
    assert_eq!(read["entry"]["updated_by"], "A");
}

// Nothing is written when a lease runs out: the waiter wakes at its expiry all the same, long
// before its own timeout, and finds the entry gone. The clients here send no progress token:
// a server re-runs a waiting call at each progress report (every 5 s), which would end this
// wait soon enough even if nothing asked for a look at the expiry.
#[test]
fn a_waiter_wakes_when_the_lease_expires() {
    let db = TempDb::new("state-expiry");
    let raw = |name: &str| {
        let mut cmd = common::std_command();
        cmd.arg("--db").arg(db.path());
        let mut raw = Raw::start(cmd);
        let registered = raw.call("register_session", json!({ "name": name }));
        assert_eq!(registered.expect("an answer").unwrap()["name"], name);
        raw
    };
    let (mut a, mut b) = (raw("A"), raw("B"));
    let call = |raw: &mut Raw, tool: &str, args: Value| {
        raw.call(tool, args)
            .unwrap_or_else(|| panic!("{tool}: no answer"))
            .unwrap_or_else(|e| panic!("{tool}: {e}"))
    };
    let take = json!({"key": "lease", "value": "A", "if_version": 0, "ttl_seconds": 2});
    let taken = call(&mut a, "set_state", take);
    let started = Instant::now();
    let wait = json!({"key": "lease", "wait_while_version": 1, "timeout_seconds": 30});
    let read = call(&mut b, "get_state", wait);
    let waited = started.elapsed();
    eprintln!("woken by the expiry after {waited:?}");
    assert_eq!(
        read,
        json!({"entry": null}),
        "no timed_out: the expiry ended it"
    );
    assert!(SystemTime::now() >= time(&taken["expires_at"]));
    assert!(
        waited < PROMPT,
        "woke {waited:?} into a 30 s wait on a 2 s lease"
    );
    // Nobody wrote: the row is the one A wrote, version 1, now expired.
    let retaken = call(
        &mut b,
        "set_state",
        json!({"key": "lease", "value": "B", "if_version": 0}),
    );
    assert_eq!(retaken["version"], 2);
}

// A wait that nothing ends returns the unchanged entry (or null) with timed_out after its
// timeout; a wait on another version than the current one returns at once; the wait takes a
// key, not a prefix or everything.
#[tokio::test]
async fn a_wait_times_out_returns_at_once_when_already_changed_and_needs_a_key() {
    let db = TempDb::new("state-wait-timeout");
    let a = Arc::new(Server::named(&db, "A").await);
    a.ok("set_state", json!({"key": "k", "value": 1})).await;
    let current = entry(&a, "k").await;

    let (read, waited) = wait_on(&a, "k", 1, 1).await.unwrap();
    assert_eq!(read, json!({"entry": current, "timed_out": true}));
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    let (read, _) = wait_on(&a, "absent", 0, 1).await.unwrap();
    assert_eq!(read, json!({"entry": null, "timed_out": true}));
    // A zero timeout only reads.
    let (read, _) = wait_on(&a, "k", 1, 0).await.unwrap();
    assert_eq!(read, json!({"entry": current, "timed_out": true}));

    // Already at another version: no wait (a 30 s one would fail the call's own timeout).
    for version in [0, 2, 7] {
        let (read, waited) = wait_on(&a, "k", version, 30).await.unwrap();
        assert_eq!(
            read,
            json!({"entry": current}),
            "wait_while_version={version}"
        );
        assert!(waited < PROMPT, "{waited:?}");
    }
    let (read, _) = wait_on(&a, "absent", 1, 30).await.unwrap();
    assert_eq!(read, json!({"entry": null}));

    for args in [
        json!({"wait_while_version": 1}),
        json!({"prefix": "k", "wait_while_version": 1}),
    ] {
        a.err(
            "get_state",
            args,
            &[
                "`wait_while_version`",
                "waits on one entry: give its key too",
            ],
        )
        .await;
    }
    for (args, needles) in [
        (
            json!({"key": "k", "wait_while_version": -1}),
            ["`wait_while_version`", "-1 is out of range: give 0 or more"],
        ),
        (
            json!({"key": "k", "wait_while_version": 1, "timeout_seconds": 601}),
            ["`timeout_seconds`", "601 is out of range: give 0 to 600"],
        ),
        (
            json!({"key": "k", "wait_while_version": 1, "timeout_seconds": -1}),
            ["`timeout_seconds`", "give 0 to 600"],
        ),
    ] {
        a.err("get_state", args, &needles).await;
    }
}

// Compare-and-set without leases, and the bounds of the new arguments: a plain write still
// wins whatever the version and clears an expiry; if_version and ttl_seconds out of range are
// refused and write nothing; a delete at the wrong version changes nothing; deleting what is
// not there says so.
#[tokio::test]
async fn versions_count_every_write_and_bad_conditions_change_nothing() {
    let db = TempDb::new("state-versions");
    let [a, b] = Server::several(&db, ["A", "B"]).await;
    let a = &a;
    let set = |args: Value| async move { a.ok("set_state", args).await };
    assert_eq!(set(json!({"key": "k", "value": 1})).await["version"], 1);
    assert_eq!(set(json!({"key": "k", "value": 2})).await["version"], 2);
    let stored = b
        .ok(
            "set_state",
            json!({"key": "k", "value": 3, "ttl_seconds": 600}),
        )
        .await;
    assert_eq!(stored["version"], 3);
    assert_eq!(stored["updated_by"], "B");
    assert!(stored["expires_at"].is_string());
    // Last writer wins without if_version, and a write without ttl_seconds keeps it for good.
    let stored = set(json!({"key": "k", "value": 4})).await;
    assert_eq!(stored, json!({"key": "k", "version": 4, "updated_by": "A"}));
    let k = entry(&b, "k").await;
    assert_eq!(k.get("expires_at"), None, "{k}");
    assert_eq!(
        (k["value"].clone(), k["version"].clone()),
        (json!(4), json!(4))
    );

    a.err(
        "set_state",
        json!({"key": "k", "value": 5, "if_version": 0}),
        &[
            "\"k\" is at version 4",
            "written by \"A\"",
            "not 0",
            "wait_while_version=4",
        ],
    )
    .await;
    let stale = a
        .err(
            "set_state",
            json!({"key": "k", "value": 5, "if_version": 3}),
            &[
                "\"k\" is at version 4",
                "not 3",
                "read it with get_state and try again",
            ],
        )
        .await;
    assert!(!stale.contains("expires at"), "{stale}");
    a.err(
        "set_state",
        json!({"key": "new", "value": 1, "if_version": 2}),
        &["\"new\" has no entry now", "not version 2"],
    )
    .await;
    for (args, needles) in [
        (
            json!({"key": "k", "value": 5, "if_version": -1}),
            ["`if_version`", "-1 is out of range: give 0 or more"],
        ),
        (
            json!({"key": "k", "value": 5, "ttl_seconds": 0}),
            ["`ttl_seconds`", "0 is out of range: give 1 to 31536000"],
        ),
        (
            json!({"key": "k", "value": 5, "ttl_seconds": 31_536_001}),
            ["`ttl_seconds`", "give 1 to 31536000"],
        ),
        (
            json!({"key": "k", "value": 5, "if_version": "4"}),
            ["`if_version`", "integer"],
        ),
    ] {
        a.err("set_state", args, &needles).await;
    }
    a.err(
        "delete_state",
        json!({"key": "k", "if_version": -1}),
        &["`if_version`", "give 0 or more"],
    )
    .await;
    a.err(
        "delete_state",
        json!({"key": "k", "if_version": 3}),
        &[
            "\"k\" is at version 4",
            "not 3",
            "read it with get_state and try again",
        ],
    )
    .await;
    assert_eq!(entry(&b, "k").await, k, "refused calls wrote nothing");

    // A year is the longest lease.
    let year = a
        .ok(
            "set_state",
            json!({"key": "year", "value": 0, "ttl_seconds": 31_536_000}),
        )
        .await;
    let ahead = time(&year["expires_at"])
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(ahead > Duration::from_secs(31_535_000), "{ahead:?}");

    // Deleting: at the right version, then again (nothing there), then at a version gone.
    let deleted = b
        .ok("delete_state", json!({"key": "k", "if_version": 4}))
        .await;
    assert_eq!(deleted, json!({"key": "k", "deleted": true}));
    let again = b.ok("delete_state", json!({"key": "k"})).await;
    assert_eq!(again, json!({"key": "k", "deleted": false}));
    b.err(
        "delete_state",
        json!({"key": "k", "if_version": 5}),
        &[
            "\"k\" has no entry now",
            "not version 5",
            "nothing was deleted",
        ],
    )
    .await;
    let listed = a.ok("get_state", json!({})).await;
    let keys: Vec<&str> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["year"], "a deleted entry is not listed");
    // The delete was version 5; the key goes on at 6.
    assert_eq!(
        set(json!({"key": "k", "value": "back", "if_version": 0})).await["version"],
        6
    );
}

// Prune deletes the rows of expired and deleted entries (counted as entries_deleted) and
// keeps live ones; a pruned key written anew starts above every version pruned, so a holder
// of an old version can never match it.
#[tokio::test]
async fn prune_deletes_expired_and_deleted_entries() {
    let db = TempDb::new("state-prune");
    let a = Server::named(&db, "A").await;
    for (key, ttl) in [("kept", None), ("leased", Some(600)), ("short", Some(1))] {
        let mut args = json!({"key": key, "value": 1});
        if let Some(ttl) = ttl {
            args["ttl_seconds"] = json!(ttl);
        }
        a.ok("set_state", args).await;
    }
    a.ok("set_state", json!({"key": "gone", "value": 1})).await;
    a.ok("set_state", json!({"key": "gone", "value": 2})).await;
    a.ok("delete_state", json!({"key": "gone"})).await;
    until_gone(&a, "short").await;

    // A month's cut-off keeps what ended just now.
    let pruned = a.ok("prune", json!({})).await;
    assert_eq!(pruned["entries_deleted"], 0, "{pruned}");
    let pruned = a.ok("prune", json!({"older_than_days": 0})).await;
    assert_eq!(pruned["entries_deleted"], 2, "{pruned}");
    let rows: Vec<(String, i64)> = {
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        let mut stmt = conn
            .prepare("SELECT key, version FROM state ORDER BY key")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(rows, [("kept".to_string(), 1), ("leased".to_string(), 1)]);
    let again = a
        .ok(
            "set_state",
            json!({"key": "gone", "value": 3, "if_version": 0}),
        )
        .await;
    assert_eq!(again["version"], 4, "gone's delete was version 3: {again}");
    // A holder of gone's old version 1 or 2 cannot write it now.
    a.err(
        "set_state",
        json!({"key": "gone", "value": 9, "if_version": 1}),
        &["at version 4"],
    )
    .await;
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Runs a command that must fail with status 1, printing nothing on stdout; its stderr.
fn cli_fails(db: &Path, args: &[&str]) -> String {
    let out = cli(db, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?}: {}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    text(&out.stderr)
}

// The same from the command line: a refused compare-and-set exits 1 with the reason on
// stderr and writes nothing; get-state shows the version; delete-state takes a version; a
// get-state that waits on a lease returns when it expires.
#[test]
fn the_command_line_sets_with_conditions_deletes_and_waits() {
    let db = TempDb::new("state-cli");
    let db = db.path();
    let take = |name: &str, version: &str| {
        let value = format!("{name:?}");
        let args = [
            "set-state",
            "--as",
            name,
            "--key",
            "lock",
            "--value",
            &value,
            "--if-version",
            version,
            "--ttl-seconds",
            "600",
        ];
        cli(&db, &args)
    };
    let out = take("A", "0");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stored = cli_json(&db, &["get-state", "--key", "lock"])["entry"].clone();
    assert_eq!(stored["value"], "A");
    assert_eq!(stored["version"], 1);
    assert_eq!(stored["updated_by"], "A");
    assert!(stored["expires_at"].is_string());

    let out = take("B", "0");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let e = text(&out.stderr);
    for needle in [
        "\"lock\" is at version 1",
        "written by \"A\"",
        "expires at",
        "not 0",
    ] {
        assert!(e.contains(needle), "{e:?} lacks {needle:?}");
    }
    assert_eq!(
        cli_json(&db, &["get-state", "--key", "lock"])["entry"],
        stored,
        "the refused write changed nothing"
    );

    // The readable form shows the version and the expiry, each on its own line.
    let out = cli(&db, &["get-state", "--key", "lock"]);
    assert!(out.status.success());
    let shown = text(&out.stdout);
    let line = |key: &str| {
        shown
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} line in {shown}"))
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(line("version"), "1", "{shown}");
    assert_eq!(line("updated_by"), "A", "{shown}");
    let expires = stored["expires_at"].as_str().unwrap();
    assert_eq!(line("expires_at"), expires[..10], "{shown}");
    let listed = text(&cli(&db, &["get-state"]).stdout);
    assert!(
        listed.lines().next().unwrap().contains("VERSION"),
        "{listed}"
    );

    let e = cli_fails(
        &db,
        &[
            "delete-state",
            "--as",
            "B",
            "--key",
            "lock",
            "--if-version",
            "2",
        ],
    );
    assert!(
        e.contains("\"lock\" is at version 1") && e.contains("not 2"),
        "{e}"
    );
    let deleted = cli_json(
        &db,
        &[
            "delete-state",
            "--as",
            "B",
            "--key",
            "lock",
            "--if-version",
            "1",
        ],
    );
    assert_eq!(deleted, json!({"key": "lock", "deleted": true}));
    assert_eq!(
        cli_json(&db, &["get-state", "--key", "lock"]),
        json!({"entry": null})
    );
    let shown = text(&cli(&db, &["get-state", "--key", "lock"]).stdout);
    assert_eq!(shown, "(no entry)\n");
    let deleted = cli_json(&db, &["delete-state", "--as", "B", "--key", "lock"]);
    assert_eq!(deleted["deleted"], false);

    let out = take("B", "0");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stored = cli_json(&db, &["get-state", "--key", "lock"])["entry"].clone();
    assert_eq!(stored["version"], 3, "the delete counted as a write");
    // Another room's "lock" is another entry, with versions of its own.
    let elsewhere = [
        "set-state",
        "--as",
        "B",
        "--key",
        "lock",
        "--value",
        "1",
        "--if-version",
        "0",
        "--room",
        "other",
    ];
    assert_eq!(cli_json(&db, &elsewhere)["version"], 1);
    assert_eq!(
        cli_json(&db, &["get-state", "--key", "lock"])["entry"],
        stored
    );

    // A wait from the command line: at once when already changed, timed out when nothing
    // changes, and woken by an expiry that writes nothing.
    let waited = cli_json(
        &db,
        &["get-state", "--key", "lock", "--wait-while-version", "2"],
    );
    assert_eq!(waited, json!({"entry": stored}));
    let waited = cli_json(
        &db,
        &[
            "get-state",
            "--key",
            "lock",
            "--wait-while-version",
            "3",
            "--timeout-seconds",
            "1",
        ],
    );
    assert_eq!(waited, json!({"entry": stored, "timed_out": true}));
    let out = cli(
        &db,
        &[
            "set-state",
            "--as",
            "B",
            "--key",
            "lock",
            "--value",
            "\"B\"",
            "--if-version",
            "3",
            "--ttl-seconds",
            "2",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let started = Instant::now();
    let waited = cli_json(
        &db,
        &["get-state", "--key", "lock", "--wait-while-version", "4"],
    );
    let took = started.elapsed();
    assert_eq!(waited, json!({"entry": null}));
    assert!(
        took < PROMPT,
        "woke {took:?} into a 30 s wait on a 2 s lease"
    );

    let e = cli_fails(&db, &["get-state", "--wait-while-version", "1"]);
    assert!(e.contains("give its key too"), "{e}");
}
