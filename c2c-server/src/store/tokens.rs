//! The `tokens` table: who may use the hub. A token reaches one room, and may be bound to one
//! name in it. Its secret is shown once, when it is made, and only a SHA-256 of it is kept, so
//! a copy of the database lets no one in; a secret is 32 random bytes, too many to guess, so
//! a plain hash (no slow key derivation) is enough. Revoking keeps the row, for `token list`.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::clock;

/// What every secret starts with, so that one found in a log or a file is recognised.
pub const PREFIX: &str = "c2c_";

/// One token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Token {
    /// Its number, for `token revoke`.
    pub id: i64,
    /// The room it reaches.
    pub room: String,
    /// The one name it may act as; `None`: any name in its room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What its maker called it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// When it was revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// The SHA-256 of `secret`, as stored.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A new secret: [`PREFIX`] and 32 random bytes in hex.
pub fn new_secret() -> Result<String, getrandom::Error> {
    Ok(format!("{PREFIX}{}", random_hex()?))
}

/// 32 random bytes in hex: a secret, or a value no one else can guess.
pub fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Stores a token for `room` (and `name`, if given) whose secret is `secret`.
pub fn create(
    db: &Connection,
    room: &str,
    name: Option<&str>,
    label: Option<&str>,
    secret: &str,
) -> rusqlite::Result<Token> {
    let created_at = clock::now();
    db.execute(
        "INSERT INTO tokens (room, name, label, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![room, name, label, &hash(secret)[..], created_at],
    )?;
    Ok(Token {
        id: db.last_insert_rowid(),
        room: room.to_string(),
        name: name.map(String::from),
        label: label.map(String::from),
        created_at,
        revoked_at: None,
    })
}

const COLUMNS: &str = "id, room, name, label, created_at, revoked_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Token> {
    Ok(Token {
        id: r.get(0)?,
        room: r.get(1)?,
        name: r.get(2)?,
        label: r.get(3)?,
        created_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

/// Every token, revoked ones included, oldest first.
pub fn list(db: &Connection) -> rusqlite::Result<Vec<Token>> {
    let mut stmt = db.prepare_cached(&format!("SELECT {COLUMNS} FROM tokens ORDER BY id"))?;
    stmt.query_map([], row)?.collect()
}

/// The token whose secret is `secret`, unless it is unknown or revoked.
pub fn find(db: &Connection, secret: &str) -> rusqlite::Result<Option<Token>> {
    let mut stmt = db.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tokens WHERE secret_hash = ?1 AND revoked_at IS NULL"
    ))?;
    stmt.query_row([&hash(secret)[..]], row).optional()
}

/// Whether the token `id` is still good (exists and is not revoked).
pub fn is_live(db: &Connection, id: i64) -> rusqlite::Result<bool> {
    let mut stmt =
        db.prepare_cached("SELECT 1 FROM tokens WHERE id = ?1 AND revoked_at IS NULL")?;
    stmt.exists([id])
}

/// Revokes the token `id`; `None` when there is no such token, else whether it was live.
pub fn revoke(db: &Connection, id: i64) -> rusqlite::Result<Option<bool>> {
    let changed = db.execute(
        "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, clock::now()],
    )?;
    if changed == 1 {
        return Ok(Some(true));
    }
    let exists = db
        .query_row("SELECT 1 FROM tokens WHERE id = ?1", [id], |_| Ok(()))
        .optional()?;
    Ok(exists.map(|()| false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_found_by_its_hash_until_revoked() {
        let db = crate::store::open_in_memory().unwrap();
        let secret = new_secret().unwrap();
        assert!(secret.starts_with(PREFIX) && secret.len() == PREFIX.len() + 64);
        assert_ne!(secret, new_secret().unwrap());
        let token = create(&db, "shop", Some("local"), Some("laptop"), &secret).unwrap();
        assert_eq!(find(&db, &secret).unwrap(), Some(token.clone()));
        assert_eq!(find(&db, &format!("{secret}x")).unwrap(), None);
        let stored: Vec<u8> = db
            .query_row("SELECT secret_hash FROM tokens", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, hash(&secret));
        let dump: String = db
            .query_row(
                "SELECT group_concat(quote(secret_hash)) FROM tokens",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!dump.contains(&secret[PREFIX.len()..]));
        assert!(is_live(&db, token.id).unwrap());
        assert_eq!(revoke(&db, token.id).unwrap(), Some(true));
        assert_eq!(revoke(&db, token.id).unwrap(), Some(false));
        assert_eq!(revoke(&db, 99).unwrap(), None);
        assert_eq!(find(&db, &secret).unwrap(), None);
        assert!(!is_live(&db, token.id).unwrap());
        assert!(list(&db).unwrap()[0].revoked_at.is_some());
    }
}
