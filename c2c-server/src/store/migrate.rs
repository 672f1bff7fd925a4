//! Schema migrations: an ordered list of SQL scripts, the count applied kept in
//! `PRAGMA user_version`, pending ones run in one transaction. A released migration is never
//! edited; changes come as a new entry. Migration 1 is the original Python server's schema
//! (with `IF NOT EXISTS`), so a database it wrote is picked up and migrated in place.

use rusqlite::Connection;

/// Every migration, oldest first. Append only.
pub const MIGRATIONS: &[&str] = &[
    // 1: the schema of the original Python claude-c2c.
    "CREATE TABLE IF NOT EXISTS sessions (
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
    CREATE INDEX IF NOT EXISTS idx_inbox ON messages(to_name, read_at, created_at);
    CREATE TABLE IF NOT EXISTS state (
        key         TEXT PRIMARY KEY,
        value       TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        updated_by  TEXT NOT NULL
    );",
    // 2: supersession in its own column, per-recipient broadcast reads, id-ordered indexes.
    "ALTER TABLE sessions ADD COLUMN superseded_at TEXT;
    ALTER TABLE sessions ADD COLUMN superseded_by TEXT;
    -- The original renamed a taken-over holder to `<name>-stale-<isoformat timestamp>`:
    -- give it back its name and record the takeover in the new column instead.
    UPDATE sessions
       SET superseded_at = substr(name, -32), name = substr(name, 1, length(name) - 39)
     WHERE name GLOB '*?-stale-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]+00:00';
    UPDATE sessions
       SET superseded_at = substr(name, -25), name = substr(name, 1, length(name) - 32)
     WHERE name GLOB '*?-stale-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]+00:00';
    -- Should two live rows share a name, the most recently started one keeps it.
    UPDATE sessions SET superseded_at = last_seen_at
     WHERE superseded_at IS NULL AND EXISTS (
        SELECT 1 FROM sessions AS newer
         WHERE newer.name = sessions.name AND newer.superseded_at IS NULL
           AND (newer.started_at > sessions.started_at
                OR (newer.started_at = sessions.started_at AND newer.rowid > sessions.rowid)));
    CREATE UNIQUE INDEX sessions_live_name ON sessions(name) WHERE superseded_at IS NULL;
    CREATE INDEX sessions_seen ON sessions(last_seen_at);

    CREATE TABLE broadcast_reads (
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        reader     TEXT NOT NULL,
        read_at    TEXT NOT NULL,
        PRIMARY KEY (message_id, reader)
    ) WITHOUT ROWID;
    -- The original marked a broadcast read for everyone: keep that read for its reader only.
    INSERT INTO broadcast_reads (message_id, reader, read_at)
        SELECT id, read_by, read_at FROM messages
         WHERE to_name = '*' AND read_at IS NOT NULL AND read_by IS NOT NULL;
    UPDATE messages SET read_at = NULL, read_by = NULL WHERE to_name = '*';

    DROP INDEX IF EXISTS idx_inbox;
    CREATE INDEX messages_to ON messages(to_name, id);
    CREATE INDEX messages_unread ON messages(to_name, id) WHERE read_at IS NULL;",
    // 3: per-reader broadcast cursors, so finding unread broadcasts skips the read history.
    "CREATE TABLE broadcast_cursors (
        reader TEXT PRIMARY KEY,
        -- Every broadcast with a smaller id is read by this reader or was sent under its name.
        below  INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO broadcast_cursors (reader, below)
        SELECT readers.name,
               coalesce((SELECT min(m.id) FROM messages AS m
                          WHERE m.to_name = '*' AND m.from_name != readers.name
                            AND NOT EXISTS (SELECT 1 FROM broadcast_reads AS r
                                             WHERE r.message_id = m.id AND r.reader = readers.name)),
                        (SELECT coalesce(max(id), 0) + 1 FROM messages))
          FROM (SELECT DISTINCT reader AS name FROM broadcast_reads) AS readers;",
    // 4: replies, delivery receipts, and the Claude Code session behind a registration.
    "ALTER TABLE messages ADD COLUMN reply_to INTEGER;
    CREATE INDEX messages_replies ON messages(reply_to, id) WHERE reply_to IS NOT NULL;
    CREATE INDEX messages_from ON messages(from_name, id);
    CREATE TABLE deliveries (
        message_id   INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        recipient    TEXT NOT NULL,
        delivered_at TEXT NOT NULL,
        -- How the text reached the recipient: inbox, wait, channel or hook.
        via          TEXT NOT NULL,
        PRIMARY KEY (message_id, recipient)
    ) WITHOUT ROWID;
    ALTER TABLE sessions ADD COLUMN claude_session_id TEXT;
    -- The one `hook wait` process that may wake this session; an older one gives way.
    ALTER TABLE sessions ADD COLUMN hook_waiter TEXT;
    CREATE INDEX sessions_claude ON sessions(claude_session_id)
        WHERE claude_session_id IS NOT NULL;",
    // 5: the process behind a registration: the server's own, the client that started it (a
    // hook of the same Claude Code process finds its session by it), and the machine.
    "ALTER TABLE sessions ADD COLUMN pid INTEGER;
    ALTER TABLE sessions ADD COLUMN client_pid INTEGER;
    ALTER TABLE sessions ADD COLUMN host TEXT;
    CREATE INDEX sessions_client ON sessions(client_pid)
        WHERE client_pid IS NOT NULL AND superseded_at IS NULL;",
    // 6: rooms, each a namespace of names, messages, broadcasts and state (what exists moves
    // into the default room), and state entries with a version and an expiry time.
    "ALTER TABLE sessions ADD COLUMN room TEXT NOT NULL DEFAULT 'default';
    DROP INDEX sessions_live_name;
    CREATE UNIQUE INDEX sessions_live_name ON sessions(room, name) WHERE superseded_at IS NULL;

    ALTER TABLE messages ADD COLUMN room TEXT NOT NULL DEFAULT 'default';
    DROP INDEX messages_to;
    DROP INDEX messages_unread;
    DROP INDEX messages_from;
    CREATE INDEX messages_to ON messages(room, to_name, id);
    CREATE INDEX messages_unread ON messages(room, to_name, id) WHERE read_at IS NULL;
    CREATE INDEX messages_from ON messages(room, from_name, id);

    CREATE TABLE state_by_room (
        room        TEXT NOT NULL,
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        updated_by  TEXT NOT NULL,
        -- 1 when the key is first written, +1 on every write or delete after that.
        version     INTEGER NOT NULL DEFAULT 1,
        -- Reads skip the entry from this time on; a delete sets it to the time of the delete,
        -- so the row keeps counting versions until it is pruned.
        expires_at  TEXT,
        PRIMARY KEY (room, key)
    ) WITHOUT ROWID;
    INSERT INTO state_by_room (room, key, value, updated_at, updated_by)
        SELECT 'default', key, value, updated_at, updated_by FROM state;
    DROP TABLE state;
    ALTER TABLE state_by_room RENAME TO state;
    CREATE TABLE state_floors (
        room  TEXT PRIMARY KEY,
        -- Above every version a pruned row of the room had: a key written anew starts here,
        -- so that no version is ever handed out twice for a key.
        next  INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE cursors_by_room (
        room   TEXT NOT NULL,
        reader TEXT NOT NULL,
        -- Every broadcast in the room with a smaller id is read by this reader or was sent
        -- under its name.
        below  INTEGER NOT NULL,
        PRIMARY KEY (room, reader)
    ) WITHOUT ROWID;
    INSERT INTO cursors_by_room (room, reader, below)
        SELECT 'default', reader, below FROM broadcast_cursors;
    DROP TABLE broadcast_cursors;
    ALTER TABLE cursors_by_room RENAME TO broadcast_cursors;",
    // 7: the hub's access tokens. Only a SHA-256 of each secret is kept.
    "CREATE TABLE tokens (
        id           INTEGER PRIMARY KEY,
        room         TEXT NOT NULL,
        -- The one name the token may act as; NULL: any name in its room.
        name         TEXT,
        label        TEXT,
        secret_hash  BLOB NOT NULL UNIQUE,
        created_at   TEXT NOT NULL,
        revoked_at   TEXT
    );",
    // 8: a room's latest messages, newest first, from the index (the page for people reads
    // them on every change; without it, every message of the room was sorted each time).
    "CREATE INDEX messages_room ON messages(room, id);",
];

/// Why migrating failed.
#[derive(Debug)]
pub enum MigrateError {
    /// SQLite failed; the transaction was rolled back.
    Sqlite(rusqlite::Error),
    /// The file has this schema version, newer than this build knows.
    TooNew(i64),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sqlite(e)
    }
}

/// Applies the pending migrations in one immediate transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let known = MIGRATIONS.len() as i64;
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current == known {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Another process may have migrated while this one waited for the lock.
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > known {
        return Err(MigrateError::TooNew(current));
    }
    for script in &MIGRATIONS[current as usize..] {
        tx.execute_batch(script)?;
    }
    tx.pragma_update(None, "user_version", known)?;
    Ok(tx.commit()?)
}

/// The schema after all migrations, as `CREATE` statements in a stable order.
pub fn schema_sql(conn: &Connection) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare(
        "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
          ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, tbl_name, name",
    )?;
    let statements: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut out = String::from(
        "-- The claude-c2c schema after all migrations.\n\
         -- Generated by `cargo run -p claude-c2c -- gen-spec`; do not edit.\n\n",
    );
    for sql in statements {
        out.push_str(&sql);
        out.push_str(";\n\n");
    }
    out.push_str(&format!("PRAGMA user_version = {version};\n"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let first = schema_sql(&conn).unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(first, schema_sql(&conn).unwrap());
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(migrate(&mut conn), Err(MigrateError::TooNew(99))));
    }
}
