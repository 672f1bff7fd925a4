//! Unit tests of the store on an in-memory database: the queries behind each tool.

use serde_json::{Map, json};

use super::messages::{self, Filter, NotMarked, NotMarkedReason};
use super::sessions::{self, Origin, Standing};
use super::state;
use crate::call::Session;
use crate::clock;

fn db() -> rusqlite::Connection {
    super::open_in_memory().unwrap()
}

fn register(db: &rusqlite::Connection, name: &str) -> Session {
    sessions::register(
        db,
        name,
        Origin {
            cwd: Some("/repo"),
            claude_session: None,
            process: None,
        },
        &Map::new(),
        None,
    )
    .unwrap()
}

fn ids(list: &[messages::Message]) -> Vec<i64> {
    list.iter().map(|m| m.id).collect()
}

#[test]
fn the_default_path_is_the_variable_else_under_the_home_directory() {
    use std::path::PathBuf;
    let home = || Some(PathBuf::from("home").join("user"));
    let under_home = PathBuf::from("home")
        .join("user")
        .join(".claude")
        .join("c2c.db");
    let chosen = PathBuf::from("elsewhere").join("bus.db");
    assert_eq!(
        super::path_from(Some(chosen.clone().into()), home()).unwrap(),
        chosen
    );
    assert_eq!(
        super::path_from(Some("".into()), home()).unwrap(),
        under_home
    );
    assert_eq!(super::path_from(None, home()).unwrap(), under_home);
    for no_home in [None, Some(PathBuf::new())] {
        let err = super::path_from(None, no_home).unwrap_err();
        assert!(matches!(err, crate::error::StoreError::NoHome), "{err}");
        assert!(err.to_string().contains("--db or CLAUDE_C2C_DB"), "{err}");
    }
}

#[test]
fn session_ids_are_unique_v4_uuids() {
    let db = db();
    let a = super::new_id(&db).unwrap();
    let b = super::new_id(&db).unwrap();
    assert_ne!(a, b);
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "4");
}

#[test]
fn registering_a_taken_name_supersedes_the_holder() {
    let db = db();
    let old = register(&db, "local");
    let new = register(&db, "local");
    let now = clock::now();
    assert_eq!(
        sessions::heartbeat(&db, &old.session_id, &now).unwrap(),
        Standing::Superseded
    );
    assert_eq!(
        sessions::heartbeat(&db, &new.session_id, &now).unwrap(),
        Standing::Live
    );
    let listed = sessions::list(&db, "", Some(&new.session_id)).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].session_id, new.session_id);
    assert!(listed[0].is_self);
    // The superseded row keeps its name (no -stale- renaming) for its history.
    let name: String = db
        .query_row(
            "SELECT name FROM sessions WHERE session_id = ?1",
            [&old.session_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(name, "local");
}

#[test]
fn re_registering_under_a_new_name_retires_the_previous_registration() {
    let db = db();
    let first = register(&db, "a");
    let second = sessions::register(
        &db,
        "b",
        Origin::default(),
        &Map::new(),
        Some(&first.session_id),
    )
    .unwrap();
    let names: Vec<String> = sessions::list(&db, "", None)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["b"]);
    assert_eq!(second.name, "b");
}

#[test]
fn names_containing_stale_are_ordinary() {
    let db = db();
    register(&db, "x-stale-y");
    let listed = sessions::list(&db, "", None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "x-stale-y");
}

#[test]
fn list_sessions_honours_the_cutoff_and_metadata() {
    let db = db();
    let mut meta = Map::new();
    meta.insert("repo".into(), json!("etl"));
    sessions::register(&db, "local", Origin::default(), &meta, None).unwrap();
    assert_eq!(sessions::list(&db, "", None).unwrap()[0].metadata, meta);
    assert!(sessions::list(&db, "9999", None).unwrap().is_empty());
}

#[test]
fn metadata_an_older_writer_left_is_shown_as_an_object() {
    let db = db();
    let id = sessions::register(&db, "local", Origin::default(), &Map::new(), None)
        .unwrap()
        .session_id;
    for (stored, shown) in [
        (None, json!({})),
        (Some(""), json!({})),
        (Some("null"), json!({})),
        (Some("[1, 2]"), json!({"value": [1, 2]})),
        (Some("not json"), json!({"value": "not json"})),
        (Some("{\"a\": 1}"), json!({"a": 1})),
    ] {
        db.execute(
            "UPDATE sessions SET metadata = ?1 WHERE session_id = ?2",
            rusqlite::params![stored, id],
        )
        .unwrap();
        let listed = sessions::list(&db, "", None).unwrap();
        assert_eq!(json!(listed[0].metadata), shown, "stored {stored:?}");
    }
}

#[test]
fn direct_messages_reach_only_their_recipient_in_order() {
    let db = db();
    let a = register(&db, "a");
    register(&db, "b");
    let m1 = messages::send(&db, &a, "b", "one", Some("status"), None).unwrap();
    let m2 = messages::send(&db, &a, "b", "two", None, None).unwrap();
    messages::send(&db, &a, "c", "not for b", None, None).unwrap();
    let inbox = messages::inbox(&db, "b", true, 20, &Filter::default()).unwrap();
    assert_eq!(ids(&inbox), vec![m1, m2]);
    assert_eq!(inbox[0].from_name, "a");
    assert_eq!(inbox[0].from_session, a.session_id);
    assert_eq!(inbox[0].tag.as_deref(), Some("status"));
    assert_eq!(inbox[0].read_at, None);
    assert_eq!(
        ids(&messages::inbox(
            &db,
            "b",
            true,
            20,
            &Filter {
                tag: Some("status"),
                ..Filter::default()
            }
        )
        .unwrap()),
        vec![m1]
    );
    assert_eq!(
        ids(&messages::inbox(&db, "b", true, 1, &Filter::default()).unwrap()),
        vec![m1]
    );
    assert!(
        messages::inbox(&db, "a", true, 20, &Filter::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn mark_read_acknowledges_only_what_is_addressed_to_the_caller() {
    let db = db();
    let a = register(&db, "a");
    let mine = messages::send(&db, &a, "b", "for b", None, None).unwrap();
    let theirs = messages::send(&db, &a, "c", "for c", None, None).unwrap();
    let (marked, not_marked) = messages::mark_read(&db, "b", &[mine, theirs, 999]).unwrap();
    assert_eq!(marked, 1);
    assert_eq!(
        not_marked,
        vec![
            NotMarked {
                id: theirs,
                reason: NotMarkedReason::NotAddressedToYou
            },
            NotMarked {
                id: 999,
                reason: NotMarkedReason::NotFound
            },
        ]
    );
    let (marked, not_marked) = messages::mark_read(&db, "b", &[mine]).unwrap();
    assert_eq!(
        (marked, not_marked[0].reason),
        (0, NotMarkedReason::AlreadyRead)
    );
    assert_eq!(
        ids(&messages::inbox(&db, "c", true, 20, &Filter::default()).unwrap()),
        vec![theirs]
    );
    let all = messages::inbox(&db, "b", false, 20, &Filter::default()).unwrap();
    assert_eq!(ids(&all), vec![mine]);
    assert!(all[0].read_at.is_some());
}

#[test]
fn broadcasts_keep_read_state_per_recipient() {
    let db = db();
    let a = register(&db, "a");
    register(&db, "b");
    register(&db, "c");
    let id = messages::send(&db, &a, "*", "hello all", None, None).unwrap();
    assert!(
        messages::inbox(&db, "a", true, 20, &Filter::default())
            .unwrap()
            .is_empty(),
        "own broadcast"
    );
    assert_eq!(
        messages::mark_read(&db, "a", &[id]).unwrap().1[0].reason,
        NotMarkedReason::NotAddressedToYou
    );
    assert_eq!(messages::mark_read(&db, "b", &[id]).unwrap().0, 1);
    assert!(
        messages::inbox(&db, "b", true, 20, &Filter::default())
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(&messages::inbox(&db, "c", true, 20, &Filter::default()).unwrap()),
        vec![id]
    );
    // A session that registers later still sees it.
    register(&db, "late");
    assert_eq!(
        ids(&messages::inbox(&db, "late", true, 20, &Filter::default()).unwrap()),
        vec![id]
    );
    let b_all = messages::inbox(&db, "b", false, 20, &Filter::default()).unwrap();
    assert!(b_all[0].read_at.is_some());
    assert_eq!(
        messages::inbox(&db, "c", false, 20, &Filter::default()).unwrap()[0].read_at,
        None
    );
}

#[test]
fn inbox_of_everything_shows_the_latest_oldest_first() {
    let db = db();
    let a = register(&db, "a");
    let sent: Vec<i64> = (0..5)
        .map(|i| messages::send(&db, &a, "b", &format!("m{i}"), None, None).unwrap())
        .collect();
    messages::mark_read(&db, "b", &sent).unwrap();
    assert_eq!(
        ids(&messages::inbox(&db, "b", false, 2, &Filter::default()).unwrap()),
        sent[3..].to_vec()
    );
}

// How many rows of `table` belong to message `id`.
fn rows_of(db: &rusqlite::Connection, table: &str, id: i64) -> i64 {
    db.query_row(
        &format!("SELECT count(*) FROM {table} WHERE message_id = ?1"),
        [id],
        |r| r.get(0),
    )
    .unwrap()
}

// When message `id` was sent.
fn created_at(db: &rusqlite::Connection, id: i64) -> String {
    db.query_row("SELECT created_at FROM messages WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .unwrap()
}

fn exists(db: &rusqlite::Connection, id: i64) -> bool {
    db.query_row("SELECT count(*) FROM messages WHERE id = ?1", [id], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap()
        == 1
}

#[test]
fn prune_removes_read_and_fully_read_messages_only() {
    let db = db();
    let a = register(&db, "a");
    register(&db, "b");
    register(&db, "c");
    let read = messages::send(&db, &a, "b", "read", None, None).unwrap();
    let unread = messages::send(&db, &a, "b", "unread", None, None).unwrap();
    let broadcast = messages::send(&db, &a, "*", "all", None, None).unwrap();
    let inbox = messages::inbox(&db, "b", true, 20, &Filter::default()).unwrap();
    messages::deliver(&db, "b", &inbox, messages::Via::Inbox).unwrap();
    messages::mark_read(&db, "b", &[read, broadcast]).unwrap();
    messages::mark_read(&db, "c", &[broadcast]).unwrap();
    assert_eq!(rows_of(&db, "deliveries", read), 1);
    assert_eq!(rows_of(&db, "broadcast_reads", broadcast), 2);
    assert_eq!(rows_of(&db, "deliveries", broadcast), 1);

    // Sent on three days in a row, so that the cut-offs fall between them.
    for (id, day) in [(read, 1), (unread, 2), (broadcast, 3)] {
        db.execute(
            "UPDATE messages SET created_at = ?2 WHERE id = ?1",
            rusqlite::params![id, format!("2000-01-0{day}T00:00:00.000000+00:00")],
        )
        .unwrap();
    }
    // Both are done with, but a cut-off at (not after) the moment they were sent keeps them.
    assert_eq!(messages::prune(&db, &created_at(&db, read)).unwrap(), 0);
    assert!(exists(&db, read));
    let last = created_at(&db, broadcast);
    assert_eq!(
        messages::prune(&db, &last).unwrap(),
        1,
        "only `read` is older"
    );
    assert!(!exists(&db, read) && exists(&db, unread) && exists(&db, broadcast));
    // Its receipts went with it.
    assert_eq!(rows_of(&db, "deliveries", read), 0);

    // A cut-off after both: the broadcast goes with its read rows; the unread message stays.
    let future = "9999-01-01T00:00:00.000000+00:00";
    assert_eq!(messages::prune(&db, future).unwrap(), 1);
    assert!(!exists(&db, broadcast) && exists(&db, unread));
    assert_eq!(rows_of(&db, "broadcast_reads", broadcast), 0);
    assert_eq!(rows_of(&db, "deliveries", broadcast), 0);
    assert_eq!(messages::prune(&db, future).unwrap(), 0);
    assert_eq!(
        ids(&messages::inbox(&db, "b", true, 20, &Filter::default()).unwrap()),
        vec![unread]
    );
    // Every registration not seen since the cut-off goes, live or superseded, but the one
    // kept (the caller's); the unread message to b stays for whoever takes the name next.
    assert_eq!(
        sessions::prune(&db, future, Some(&a.session_id)).unwrap(),
        2
    );
    assert_eq!(
        sessions::standing(&db, &a.session_id).unwrap(),
        Standing::Live
    );
    assert_eq!(
        ids(&messages::inbox(&db, "b", true, 20, &Filter::default()).unwrap()),
        vec![unread]
    );
}

#[test]
fn prune_keeps_a_broadcast_until_every_live_session_has_read_it() {
    let db = db();
    let a = register(&db, "a");
    register(&db, "b");
    let old_c = register(&db, "c");
    register(&db, "c"); // supersedes `old_c`, which never reads anything
    let broadcast = messages::send(&db, &a, "*", "all", None, None).unwrap();
    let future = "9999-01-01T00:00:00.000000+00:00";
    messages::mark_read(&db, "b", &[broadcast]).unwrap();
    // The live c has not read it: it stays, though b has.
    assert_eq!(messages::prune(&db, future).unwrap(), 0);
    messages::mark_read(&db, "c", &[broadcast]).unwrap();
    assert_eq!(messages::prune(&db, future).unwrap(), 1);
    assert!(!exists(&db, broadcast));
    // The registrations go too, all being last seen before the cut-off, but the caller's.
    assert_eq!(
        sessions::prune(&db, future, Some(&a.session_id)).unwrap(),
        3
    );
    assert_eq!(
        sessions::heartbeat(&db, &old_c.session_id, future).unwrap(),
        Standing::Superseded
    );
}

#[test]
fn prune_keeps_sessions_seen_after_the_cut_off() {
    let db = db();
    let old = register(&db, "c");
    let live = register(&db, "c");
    let seen: String = db
        .query_row(
            "SELECT last_seen_at FROM sessions WHERE session_id = ?1",
            [&old.session_id],
            |r| r.get(0),
        )
        .unwrap();
    // Seen at (not before) the cut-off: it stays, and so does the later live registration.
    assert_eq!(sessions::prune(&db, &seen, None).unwrap(), 0);
    assert_eq!(
        sessions::prune(&db, "1970-01-01T00:00:00.000000+00:00", None).unwrap(),
        0
    );
    let count = |db: &rusqlite::Connection| -> i64 {
        db.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(&db), 2);
    assert_eq!(
        sessions::prune(
            &db,
            "9999-01-01T00:00:00.000000+00:00",
            Some(&live.session_id)
        )
        .unwrap(),
        1
    );
    assert_eq!(count(&db), 1);
}

#[test]
fn a_broadcast_nobody_could_read_yet_survives_prune_for_a_late_joiner() {
    let db = db();
    let a = register(&db, "a");
    // Nobody but the sender is registered: the broadcast has no reader yet.
    let broadcast = messages::send(&db, &a, "*", "lonely", None, None).unwrap();
    let future = "9999-01-01T00:00:00.000000+00:00";
    assert_eq!(messages::prune(&db, future).unwrap(), 0);
    register(&db, "late");
    assert_eq!(
        ids(&messages::inbox(&db, "late", true, 20, &Filter::default()).unwrap()),
        vec![broadcast]
    );
}

#[test]
fn state_is_last_writer_wins_with_its_writer() {
    let db = db();
    state::set(&db, "run/last", &json!({"id": "abc"}).to_string(), "a").unwrap();
    state::set(&db, "run/last", &json!("def").to_string(), "b").unwrap();
    state::set(&db, "other", "1", "a").unwrap();
    state::set(&db, "run%", "2", "a").unwrap();
    let entry = state::get(&db, "run/last").unwrap().unwrap();
    assert_eq!(
        (entry.value, entry.updated_by.as_str()),
        (json!("def"), "b")
    );
    assert!(state::get(&db, "missing").unwrap().is_none());
    let keys = |p| {
        state::list(&db, p)
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(Some("run")), vec!["run%", "run/last"]);
    // LIKE wildcards in a prefix are plain characters.
    assert_eq!(keys(Some("run%")), vec!["run%"]);
    assert_eq!(keys(None), vec!["other", "run%", "run/last"]);
}

#[test]
fn the_broadcast_cursor_skips_read_history_but_never_an_unread_broadcast() {
    let db = db();
    let a = register(&db, "a");
    let b = register(&db, "b");
    let send = |from: &Session| messages::send(&db, from, "*", "x", None, None).unwrap();
    let (m1, m2, own, m3) = (send(&a), send(&a), send(&b), send(&a));
    // Read out of order: 1 and 3, not 2.
    messages::mark_read(&db, "b", &[m1, m3]).unwrap();
    let cursor = |reader: &str| -> i64 {
        db.query_row(
            "SELECT below FROM broadcast_cursors WHERE reader = ?1",
            [reader],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(cursor("b"), m2);
    assert_eq!(
        ids(&messages::inbox(&db, "b", true, 20, &Filter::default()).unwrap()),
        vec![m2]
    );
    // Reading 2 moves the cursor past 3 and past b's own broadcast.
    messages::mark_read(&db, "b", &[m2]).unwrap();
    assert!(cursor("b") > m3 && cursor("b") > own);
    assert!(
        messages::inbox(&db, "b", true, 20, &Filter::default())
            .unwrap()
            .is_empty()
    );
    // A later broadcast is above the cursor and shows.
    let m4 = send(&a);
    assert_eq!(
        ids(&messages::inbox(&db, "b", true, 20, &Filter::default()).unwrap()),
        vec![m4]
    );
    // Another reader's cursor is its own.
    register(&db, "c");
    assert_eq!(
        ids(&messages::inbox(&db, "c", true, 20, &Filter::default()).unwrap()),
        vec![m1, m2, own, m3, m4]
    );
    let overview = sessions::overview(&db).unwrap();
    let unread = |name: &str| overview.iter().find(|s| s.name == name).unwrap().unread;
    assert_eq!((unread("b"), unread("c")), (1, 5));
}

#[test]
fn delivering_what_was_delivered_before_writes_nothing() {
    let db = db();
    let from = register(&db, "a");
    register(&db, "b");
    messages::send(&db, &from, "b", "one", None, None).unwrap();
    let unread = messages::inbox(&db, "b", true, 20, &Filter::default()).unwrap();
    messages::deliver(&db, "b", &unread, messages::Via::Inbox).unwrap();
    // Once more, on a connection that may not write: nothing new, so no write is tried.
    db.pragma_update(None, "query_only", true).unwrap();
    messages::deliver(&db, "b", &unread, messages::Via::Wait).unwrap();
    // A new message does need a write, which query_only refuses: the check above was real.
    db.pragma_update(None, "query_only", false).unwrap();
    messages::send(&db, &from, "b", "two", None, None).unwrap();
    let unread = messages::inbox(&db, "b", true, 20, &Filter::default()).unwrap();
    db.pragma_update(None, "query_only", true).unwrap();
    assert!(messages::deliver(&db, "b", &unread, messages::Via::Wait).is_err());
}
