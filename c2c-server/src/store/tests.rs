//! Unit tests of the store on an in-memory database: the queries behind each tool.

use serde_json::{Map, json};

use super::messages::{self, Filter, NotMarked, NotMarkedReason};
use super::sessions::{self, Origin, Standing};
use super::state;
use crate::call::Session;
use crate::clock;
use crate::config::DEFAULT_ROOM as ROOM;

fn db() -> rusqlite::Connection {
    super::open_in_memory().unwrap()
}

fn register(db: &rusqlite::Connection, name: &str) -> Session {
    sessions::register(
        db,
        ROOM,
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

// A reader of the default room (the queries that take a session read only its name and room).
fn member(name: &str) -> Session {
    Session {
        session_id: String::new(),
        name: name.to_string(),
        room: ROOM.to_string(),
    }
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
    let listed = sessions::list(&db, ROOM, "", Some(&new.session_id)).unwrap();
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
        ROOM,
        "b",
        Origin::default(),
        &Map::new(),
        Some(&first.session_id),
    )
    .unwrap();
    let names: Vec<String> = sessions::list(&db, ROOM, "", None)
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
    let listed = sessions::list(&db, ROOM, "", None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "x-stale-y");
}

#[test]
fn list_sessions_honours_the_cutoff_and_metadata() {
    let db = db();
    let mut meta = Map::new();
    meta.insert("repo".into(), json!("etl"));
    sessions::register(&db, ROOM, "local", Origin::default(), &meta, None).unwrap();
    assert_eq!(
        sessions::list(&db, ROOM, "", None).unwrap()[0].metadata,
        meta
    );
    assert!(sessions::list(&db, ROOM, "9999", None).unwrap().is_empty());
}

#[test]
fn metadata_an_older_writer_left_is_shown_as_an_object() {
    let db = db();
    let id = sessions::register(&db, ROOM, "local", Origin::default(), &Map::new(), None)
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
        let listed = sessions::list(&db, ROOM, "", None).unwrap();
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
    let inbox = messages::inbox(&db, &member("b"), true, 20, &Filter::default()).unwrap();
    assert_eq!(ids(&inbox), vec![m1, m2]);
    assert_eq!(inbox[0].from_name, "a");
    assert_eq!(inbox[0].from_session, a.session_id);
    assert_eq!(inbox[0].tag.as_deref(), Some("status"));
    assert_eq!(inbox[0].read_at, None);
    assert_eq!(
        ids(&messages::inbox(
            &db,
            &member("b"),
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
        ids(&messages::inbox(&db, &member("b"), true, 1, &Filter::default()).unwrap()),
        vec![m1]
    );
    assert!(
        messages::inbox(&db, &member("a"), true, 20, &Filter::default())
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
    let (marked, not_marked) =
        messages::mark_read(&db, &member("b"), &[mine, theirs, 999]).unwrap();
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
    let (marked, not_marked) = messages::mark_read(&db, &member("b"), &[mine]).unwrap();
    assert_eq!(
        (marked, not_marked[0].reason),
        (0, NotMarkedReason::AlreadyRead)
    );
    assert_eq!(
        ids(&messages::inbox(&db, &member("c"), true, 20, &Filter::default()).unwrap()),
        vec![theirs]
    );
    let all = messages::inbox(&db, &member("b"), false, 20, &Filter::default()).unwrap();
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
        messages::inbox(&db, &member("a"), true, 20, &Filter::default())
            .unwrap()
            .is_empty(),
        "own broadcast"
    );
    assert_eq!(
        messages::mark_read(&db, &member("a"), &[id]).unwrap().1[0].reason,
        NotMarkedReason::NotAddressedToYou
    );
    assert_eq!(messages::mark_read(&db, &member("b"), &[id]).unwrap().0, 1);
    assert!(
        messages::inbox(&db, &member("b"), true, 20, &Filter::default())
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(&messages::inbox(&db, &member("c"), true, 20, &Filter::default()).unwrap()),
        vec![id]
    );
    // A session that registers later still sees it.
    register(&db, "late");
    assert_eq!(
        ids(&messages::inbox(&db, &member("late"), true, 20, &Filter::default()).unwrap()),
        vec![id]
    );
    let b_all = messages::inbox(&db, &member("b"), false, 20, &Filter::default()).unwrap();
    assert!(b_all[0].read_at.is_some());
    assert_eq!(
        messages::inbox(&db, &member("c"), false, 20, &Filter::default()).unwrap()[0].read_at,
        None
    );
}

// The inbox's cost must follow its limit: each branch walks its index in id order and the two
// are merged, with nothing copied aside to be sorted (a temporary b-tree per call).
#[test]
fn the_inbox_queries_sort_nothing() {
    let db = db();
    for unread_only in [true, false] {
        let sql = format!("EXPLAIN {}", messages::inbox_sql(unread_only));
        let mut stmt = db.prepare(&sql).unwrap();
        let ops: Vec<String> = stmt
            .query_map(
                rusqlite::params_from_iter([rusqlite::types::Null; 6]),
                |r| r.get(1),
            )
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let sorting: Vec<&String> = ops
            .iter()
            .filter(|op| {
                matches!(
                    op.as_str(),
                    "OpenEphemeral" | "SorterOpen" | "OpenAutoindex"
                )
            })
            .collect();
        assert!(sorting.is_empty(), "unread_only={unread_only}: {sorting:?}");
    }
}

#[test]
fn inbox_of_everything_shows_the_latest_oldest_first() {
    let db = db();
    let a = register(&db, "a");
    let sent: Vec<i64> = (0..5)
        .map(|i| messages::send(&db, &a, "b", &format!("m{i}"), None, None).unwrap())
        .collect();
    messages::mark_read(&db, &member("b"), &sent).unwrap();
    assert_eq!(
        ids(&messages::inbox(&db, &member("b"), false, 2, &Filter::default()).unwrap()),
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
    let inbox = messages::inbox(&db, &member("b"), true, 20, &Filter::default()).unwrap();
    messages::deliver(&db, "b", &inbox, messages::Via::Inbox).unwrap();
    messages::mark_read(&db, &member("b"), &[read, broadcast]).unwrap();
    messages::mark_read(&db, &member("c"), &[broadcast]).unwrap();
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
    assert_eq!(
        messages::prune(&db, ROOM, &created_at(&db, read)).unwrap(),
        0
    );
    assert!(exists(&db, read));
    let last = created_at(&db, broadcast);
    assert_eq!(
        messages::prune(&db, ROOM, &last).unwrap(),
        1,
        "only `read` is older"
    );
    assert!(!exists(&db, read) && exists(&db, unread) && exists(&db, broadcast));
    // Its receipts went with it.
    assert_eq!(rows_of(&db, "deliveries", read), 0);

    // A cut-off after both: the broadcast goes with its read rows; the unread message stays.
    let future = "9999-01-01T00:00:00.000000+00:00";
    assert_eq!(messages::prune(&db, ROOM, future).unwrap(), 1);
    assert!(!exists(&db, broadcast) && exists(&db, unread));
    assert_eq!(rows_of(&db, "broadcast_reads", broadcast), 0);
    assert_eq!(rows_of(&db, "deliveries", broadcast), 0);
    assert_eq!(messages::prune(&db, ROOM, future).unwrap(), 0);
    assert_eq!(
        ids(&messages::inbox(&db, &member("b"), true, 20, &Filter::default()).unwrap()),
        vec![unread]
    );
    // Every registration not seen since the cut-off goes, live or superseded, but the one
    // kept (the caller's); the unread message to b stays for whoever takes the name next.
    assert_eq!(
        sessions::prune(&db, ROOM, future, Some(&a.session_id)).unwrap(),
        2
    );
    assert_eq!(
        sessions::standing(&db, &a.session_id).unwrap(),
        Standing::Live
    );
    assert_eq!(
        ids(&messages::inbox(&db, &member("b"), true, 20, &Filter::default()).unwrap()),
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
    messages::mark_read(&db, &member("b"), &[broadcast]).unwrap();
    // The live c has not read it: it stays, though b has.
    assert_eq!(messages::prune(&db, ROOM, future).unwrap(), 0);
    messages::mark_read(&db, &member("c"), &[broadcast]).unwrap();
    assert_eq!(messages::prune(&db, ROOM, future).unwrap(), 1);
    assert!(!exists(&db, broadcast));
    // The registrations go too, all being last seen before the cut-off, but the caller's.
    assert_eq!(
        sessions::prune(&db, ROOM, future, Some(&a.session_id)).unwrap(),
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
    assert_eq!(sessions::prune(&db, ROOM, &seen, None).unwrap(), 0);
    assert_eq!(
        sessions::prune(&db, ROOM, "1970-01-01T00:00:00.000000+00:00", None).unwrap(),
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
            ROOM,
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
    assert_eq!(messages::prune(&db, ROOM, future).unwrap(), 0);
    register(&db, "late");
    assert_eq!(
        ids(&messages::inbox(&db, &member("late"), true, 20, &Filter::default()).unwrap()),
        vec![broadcast]
    );
}

// A plain write (last writer wins) of `value` at `key` in `room` by `by`.
fn put(db: &rusqlite::Connection, room: &str, key: &str, value: &str, by: &str) -> i64 {
    let write = state::Write {
        room,
        key,
        value,
        by,
        if_version: None,
        expires_at: None,
    };
    state::set(db, &write).unwrap().unwrap()
}

#[test]
fn state_is_last_writer_wins_with_its_writer() {
    let db = db();
    put(
        &db,
        ROOM,
        "run/last",
        &json!({"id": "abc"}).to_string(),
        "a",
    );
    put(&db, ROOM, "run/last", &json!("def").to_string(), "b");
    put(&db, ROOM, "other", "1", "a");
    put(&db, ROOM, "run%", "2", "a");
    let entry = state::get(&db, ROOM, "run/last").unwrap().unwrap();
    assert_eq!(
        (entry.value, entry.updated_by.as_str(), entry.version),
        (json!("def"), "b", 2)
    );
    assert!(state::get(&db, ROOM, "missing").unwrap().is_none());
    let keys = |p| {
        state::list(&db, ROOM, p)
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
fn a_conditional_write_happens_only_at_the_version_asked_for() {
    let db = db();
    let write = |if_version, value| {
        let w = state::Write {
            room: ROOM,
            key: "k",
            value,
            by: "a",
            if_version: Some(if_version),
            expires_at: None,
        };
        state::set(&db, &w)
            .unwrap()
            .map_err(|r| r.conflict().expect("a version conflict"))
    };
    let conflict = write(3, "1").unwrap_err();
    assert_eq!((conflict.expected, conflict.found()), (3, 0));
    assert!(conflict.current.is_none());
    assert_eq!(write(0, "1"), Ok(1));
    let conflict = write(0, "2").unwrap_err();
    assert_eq!(conflict.found(), 1);
    assert_eq!(conflict.current.unwrap().value, json!(1));
    assert_eq!(write(1, "2"), Ok(2));
    assert_eq!(write(1, "3").unwrap_err().found(), 2);
    // The losing writes changed nothing.
    let entry = state::get(&db, ROOM, "k").unwrap().unwrap();
    assert_eq!((entry.value, entry.version), (json!(2), 2));
}

#[test]
fn a_deleted_or_expired_entry_is_gone_but_its_versions_never_come_back() {
    let db = db();
    put(&db, ROOM, "k", "1", "a");
    assert_eq!(
        state::delete(&db, ROOM, "k", "b", Some(2))
            .unwrap()
            .unwrap_err()
            .found(),
        1
    );
    assert_eq!(
        state::delete(&db, ROOM, "k", "b", Some(1)).unwrap(),
        Ok(Some(1))
    );
    assert!(state::get(&db, ROOM, "k").unwrap().is_none());
    assert!(state::list(&db, ROOM, None).unwrap().is_empty());
    // Deleting what is not there deletes nothing; at version 0 it is "absent", as asked.
    assert_eq!(state::delete(&db, ROOM, "k", "b", None).unwrap(), Ok(None));
    assert_eq!(
        state::delete(&db, ROOM, "k", "b", Some(0)).unwrap(),
        Ok(None)
    );
    // Taken again, the key goes on counting: the delete was version 2.
    assert_eq!(put(&db, ROOM, "k", "2", "c"), 3);

    let past = clock::ago(std::time::Duration::from_secs(1));
    let lease = |if_version, by, expires_at| {
        let w = state::Write {
            room: ROOM,
            key: "lease",
            value: "\"mine\"",
            by,
            if_version: Some(if_version),
            expires_at,
        };
        state::set(&db, &w)
            .unwrap()
            .map_err(|r| r.conflict().expect("a version conflict"))
    };
    assert_eq!(lease(0, "a", Some(past.as_str())), Ok(1));
    // Expired at once: nobody holds it, and the next taker gets version 2, so the first
    // holder's renewal (at version 1) fails.
    assert!(state::get(&db, ROOM, "lease").unwrap().is_none());
    assert_eq!(lease(0, "b", None), Ok(2));
    assert_eq!(lease(1, "a", None).unwrap_err().found(), 2);
    // Pruning removes the expired rows only.
    assert_eq!(state::prune(&db, ROOM, &clock::now()).unwrap(), 0);
    let w = state::Write {
        room: ROOM,
        key: "gone",
        value: "1",
        by: "a",
        if_version: None,
        expires_at: Some(&past),
    };
    state::set(&db, &w).unwrap().unwrap();
    assert_eq!(
        state::prune(&db, ROOM, &clock::now()).unwrap(),
        1,
        "only gone: k was taken again"
    );
    assert!(state::get(&db, ROOM, "gone").unwrap().is_none());
    assert_eq!(state::get(&db, ROOM, "lease").unwrap().unwrap().version, 2);
    // Pruned, gone's version 1 never comes back: written anew, it starts above it, as does
    // any new key of the room; another room still starts at 1.
    assert_eq!(put(&db, ROOM, "gone", "2", "c"), 2);
    assert_eq!(put(&db, ROOM, "fresh", "1", "c"), 2);
    assert_eq!(put(&db, "other", "fresh", "1", "c"), 1);
}

#[test]
fn a_conditional_write_may_not_take_an_expiry_away() {
    let db = db();
    let later =
        clock::format_time(std::time::SystemTime::now() + std::time::Duration::from_secs(60));
    let write = |if_version, expires_at| {
        let w = state::Write {
            room: ROOM,
            key: "lease",
            value: "\"mine\"",
            by: "a",
            if_version: Some(if_version),
            expires_at,
        };
        state::set(&db, &w).unwrap()
    };
    assert_eq!(write(0, Some(later.as_str())), Ok(1));
    // A renewal without a time to live would make the lease a lock that never frees itself.
    assert_eq!(
        write(1, None),
        Err(state::Refused::WouldNotExpire {
            expires_at: later.clone()
        })
    );
    let entry = state::get(&db, ROOM, "lease").unwrap().unwrap();
    assert_eq!((entry.version, entry.expires_at), (1, Some(later.clone())));
    assert_eq!(write(1, Some(later.as_str())), Ok(2));
    // A plain write still replaces the entry, expiry and all.
    assert_eq!(put(&db, ROOM, "lease", "1", "b"), 3);
    assert_eq!(
        state::get(&db, ROOM, "lease").unwrap().unwrap().expires_at,
        None
    );
}

#[test]
fn rooms_keep_their_own_names_messages_and_state() {
    let db = db();
    let in_room = |room: &str, name: &str| {
        sessions::register(&db, room, name, Origin::default(), &Map::new(), None).unwrap()
    };
    let a1 = in_room(ROOM, "a");
    let a2 = in_room("two", "a");
    let b2 = in_room("two", "b");
    // The same name in two rooms: neither supersedes the other.
    assert_eq!(
        sessions::standing(&db, &a1.session_id).unwrap(),
        Standing::Live
    );
    assert_eq!(sessions::live(&db, "two", "a").unwrap(), Some(a2.clone()));
    let direct = messages::send(&db, &b2, "a", "for a in two", None, None).unwrap();
    let broadcast = messages::send(&db, &b2, "*", "all of two", None, None).unwrap();
    assert!(
        messages::inbox(&db, &a1, true, 20, &Filter::default())
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(&messages::inbox(&db, &a2, true, 20, &Filter::default()).unwrap()),
        vec![direct, broadcast]
    );
    // Ids of another room are not found there, not even to reply to.
    let (marked, not_marked) = messages::mark_read(&db, &a1, &[direct, broadcast]).unwrap();
    assert_eq!(marked, 0);
    assert!(
        not_marked
            .iter()
            .all(|n| n.reason == NotMarkedReason::NotFound)
    );
    assert!(!messages::visible(&db, &a1, direct).unwrap());
    assert!(messages::visible(&db, &a2, direct).unwrap());
    assert!(
        messages::outbox(&db, &in_room(ROOM, "b"), 10, None)
            .unwrap()
            .is_empty()
    );
    assert_eq!(messages::outbox(&db, &b2, 10, None).unwrap().len(), 2);
    // State.
    put(&db, ROOM, "k", "1", "a");
    put(&db, "two", "k", "2", "a");
    put(&db, "two", "k", "3", "a");
    assert_eq!(state::get(&db, ROOM, "k").unwrap().unwrap().version, 1);
    assert_eq!(
        state::get(&db, "two", "k").unwrap().unwrap().value,
        json!(3)
    );
    assert_eq!(state::list(&db, ROOM, None).unwrap().len(), 1);
    // Who is where.
    let rooms = sessions::rooms(&db).unwrap();
    assert_eq!(rooms, vec![ROOM.to_string(), "two".to_string()]);
    let two: Vec<(String, i64)> = sessions::overview(&db, Some("two"))
        .unwrap()
        .into_iter()
        .map(|o| (o.name, o.unread))
        .collect();
    assert!(two.contains(&("a".into(), 2)) && two.contains(&("b".into(), 0)));
    assert_eq!(sessions::overview(&db, None).unwrap().len(), 4);
    // Pruning one room leaves the other alone.
    messages::mark_read(&db, &a2, &[direct, broadcast]).unwrap();
    let future = "9999-01-01T00:00:00.000000+00:00";
    assert_eq!(messages::prune(&db, ROOM, future).unwrap(), 0);
    assert_eq!(messages::prune(&db, "two", future).unwrap(), 2);
}

#[test]
fn the_broadcast_cursor_skips_read_history_but_never_an_unread_broadcast() {
    let db = db();
    let a = register(&db, "a");
    let b = register(&db, "b");
    let send = |from: &Session| messages::send(&db, from, "*", "x", None, None).unwrap();
    let (m1, m2, own, m3) = (send(&a), send(&a), send(&b), send(&a));
    // Read out of order: 1 and 3, not 2.
    messages::mark_read(&db, &member("b"), &[m1, m3]).unwrap();
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
        ids(&messages::inbox(&db, &member("b"), true, 20, &Filter::default()).unwrap()),
        vec![m2]
    );
    // Reading 2 moves the cursor past 3 and past b's own broadcast.
    messages::mark_read(&db, &member("b"), &[m2]).unwrap();
    assert!(cursor("b") > m3 && cursor("b") > own);
    assert!(
        messages::inbox(&db, &member("b"), true, 20, &Filter::default())
            .unwrap()
            .is_empty()
    );
    // A later broadcast is above the cursor and shows.
    let m4 = send(&a);
    assert_eq!(
        ids(&messages::inbox(&db, &member("b"), true, 20, &Filter::default()).unwrap()),
        vec![m4]
    );
    // Another reader's cursor is its own.
    register(&db, "c");
    assert_eq!(
        ids(&messages::inbox(&db, &member("c"), true, 20, &Filter::default()).unwrap()),
        vec![m1, m2, own, m3, m4]
    );
    let overview = sessions::overview(&db, Some(ROOM)).unwrap();
    let unread = |name: &str| overview.iter().find(|s| s.name == name).unwrap().unread;
    assert_eq!((unread("b"), unread("c")), (1, 5));
}

#[test]
fn delivering_what_was_delivered_before_writes_nothing() {
    let db = db();
    let from = register(&db, "a");
    register(&db, "b");
    messages::send(&db, &from, "b", "one", None, None).unwrap();
    let unread = messages::inbox(&db, &member("b"), true, 20, &Filter::default()).unwrap();
    messages::deliver(&db, "b", &unread, messages::Via::Inbox).unwrap();
    // Once more, on a connection that may not write: nothing new, so no write is tried.
    db.pragma_update(None, "query_only", true).unwrap();
    messages::deliver(&db, "b", &unread, messages::Via::Wait).unwrap();
    // A new message does need a write, which query_only refuses: the check above was real.
    db.pragma_update(None, "query_only", false).unwrap();
    messages::send(&db, &from, "b", "two", None, None).unwrap();
    let unread = messages::inbox(&db, &member("b"), true, 20, &Filter::default()).unwrap();
    // The read says which it had delivered already, in either kind of inbox.
    let delivered =
        |list: &[messages::Message]| -> Vec<bool> { list.iter().map(|m| m.delivered).collect() };
    assert_eq!(delivered(&unread), [true, false]);
    let all = messages::inbox(&db, &member("b"), false, 20, &Filter::default()).unwrap();
    assert_eq!(delivered(&all), [true, false]);
    db.pragma_update(None, "query_only", true).unwrap();
    assert!(messages::deliver(&db, "b", &unread, messages::Via::Wait).is_err());
}

#[test]
fn the_latest_messages_come_oldest_first_cut_and_for_one_name_its_own() {
    let db = db();
    let (a, b, carol) = (
        register(&db, "a"),
        register(&db, "b"),
        register(&db, "carol"),
    );
    let to_carol = messages::send(&db, &a, "carol", "for carol", None, None).unwrap();
    let broadcast = messages::send(&db, &b, "*", "for everyone", None, None).unwrap();
    let from_carol = messages::send(&db, &carol, "a", "from carol", None, None).unwrap();
    let mut last = 0;
    for i in 0..30 {
        last = messages::send(&db, &a, "b", &format!("chatter {i} ✓"), None, None).unwrap();
    }
    let latest = messages::latest(&db, ROOM, None, 5, 8).unwrap();
    let shown: Vec<i64> = latest.iter().map(|s| s.message.id).collect();
    assert_eq!(shown, ((last - 4)..=last).collect::<Vec<_>>());
    // Cut by characters, not bytes; the whole length is kept.
    assert_eq!(latest[4].message.body, "chatter ");
    assert_eq!(latest[4].body_chars, "chatter 29 ✓".chars().count());
    assert_eq!(latest[4].receipts.len(), 1, "b's receipt, queued");
    // Carol's own and the broadcast, however much others said since.
    let hers = messages::latest(&db, ROOM, Some("carol"), 5, 100).unwrap();
    let shown: Vec<i64> = hers.iter().map(|s| s.message.id).collect();
    assert_eq!(shown, vec![to_carol, broadcast, from_carol]);
    assert!(
        messages::latest(&db, "other", None, 5, 100)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn every_room_with_a_message_a_session_or_state_is_listed_once() {
    let db = db();
    assert!(sessions::rooms(&db).unwrap().is_empty());
    let sender = |room: &str| Session {
        session_id: String::new(),
        name: "s".into(),
        room: room.into(),
    };
    // Rooms that hold only messages (their senders' rows pruned), in a mixed order.
    for room in ["m3", "m1", "m2", "m1", "m3"] {
        messages::send(&db, &sender(room), "x", "hi", None, None).unwrap();
    }
    sessions::register(&db, "s1", "a", Origin::default(), &Map::new(), None).unwrap();
    sessions::register(&db, "m2", "a", Origin::default(), &Map::new(), None).unwrap();
    put(&db, "t1", "k", "1", "a");
    assert_eq!(
        sessions::rooms(&db).unwrap(),
        ["m1", "m2", "m3", "s1", "t1"].map(String::from)
    );
}
