//! `claude-c2c token create|list|revoke`: the hub's access tokens, kept in the database the
//! hub serves. `create` prints the secret once (only its hash is stored); a token reaches one
//! room (`--room`), and with `--name` acts only as that name in it.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::store::tokens;

/// The hub's access tokens.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for the room given by --room (and only the name given by --name) and print
    /// its secret, once: clients send it as `Authorization: Bearer SECRET` (C2C_TOKEN).
    Create(CreateArgs),
    /// List the tokens (never their secrets).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: requests carrying it are refused from now on.
    Revoke {
        /// The token's id, as `token list` shows it.
        id: i64,
    },
}

/// The options of `token create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Bind the token to this name: it may act only as this session (default: any name in
    /// its room).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// A note for `token list`, e.g. the machine it is for.
    #[arg(long, value_name = "TEXT")]
    label: Option<String>,
    /// Print JSON (with the secret in `token`) instead of the bare secret.
    #[arg(long)]
    json: bool,
}

/// Runs `command` on `db`, for `room`; returns what goes to stdout.
pub fn run(
    db: &rusqlite::Connection,
    room: &str,
    command: &TokenCommand,
    color: bool,
) -> Result<String, String> {
    let fail = |e: rusqlite::Error| format!("the token table failed: {e}");
    match command {
        TokenCommand::Create(args) => {
            if let Some(name) = &args.name {
                crate::tools::check_name("--name", name, false).map_err(|e| e.to_string())?;
            }
            let secret = tokens::new_secret()
                .map_err(|e| format!("the system gave no random bytes for a secret: {e}"))?;
            let token = tokens::create(
                db,
                room,
                args.name.as_deref(),
                args.label.as_deref(),
                &secret,
            )
            .map_err(fail)?;
            let scope = match &token.name {
                Some(name) => format!("room \"{room}\", only as \"{name}\""),
                None => format!("room \"{room}\", any name"),
            };
            eprintln!(
                "claude-c2c: token {} ({scope}). This is the only time the secret is shown: give \
                 it to the client now (C2C_TOKEN, or Authorization: Bearer SECRET).",
                token.id
            );
            if args.json {
                let mut value = serde_json::to_value(&token).expect("tokens serialise");
                value["token"] = Value::String(secret);
                Ok(format!("{value}\n"))
            } else {
                Ok(format!("{secret}\n"))
            }
        }
        TokenCommand::List { json } => {
            let list = tokens::list(db).map_err(fail)?;
            if *json {
                return Ok(format!("{}\n", json!({ "tokens": list })));
            }
            if list.is_empty() {
                return Ok(
                    "(no tokens: make one with claude-c2c token create --room ROOM)\n".into(),
                );
            }
            let rows: Vec<Value> = list
                .iter()
                .map(|t| {
                    json!({
                        "id": t.id,
                        "room": t.room,
                        "name": t.name.as_deref().unwrap_or("(any)"),
                        "label": t.label.as_deref().unwrap_or(""),
                        "created_at": t.created_at,
                        "revoked_at": t.revoked_at.as_deref().unwrap_or("-"),
                    })
                })
                .collect();
            Ok(super::render::table(&rows, color))
        }
        TokenCommand::Revoke { id } => match tokens::revoke(db, *id).map_err(fail)? {
            Some(true) => Ok(format!("revoked token {id}\n")),
            Some(false) => Ok(format!("token {id} was revoked already\n")),
            None => Err(format!(
                "there is no token {id}: `claude-c2c token list` shows them"
            )),
        },
    }
}
