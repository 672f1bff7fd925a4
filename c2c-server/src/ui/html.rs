//! The page as HTML, made on the server. Every piece of text from the database (names, bodies,
//! keys, values) passes through [`esc`], so a body that holds markup shows as that text. The
//! parts that change are rendered as [`fragments`], each the content of the element with its
//! id: the page embeds them, and the live stream sends a fragment again when it changes.

use std::fmt::Write;
use std::time::SystemTime;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::access::Viewer;
use super::board::{BODY_CHARS, Board, RoomLine, SHOWN_MESSAGES, Thread};
use crate::clock;
use crate::store::messages::{BROADCAST, Status};
use crate::store::sessions::Overview;
use crate::store::state::StateEntry;

/// How much of a state value the page shows, in characters.
const VALUE_CHARS: usize = 300;

/// `text` with the characters that mean something in HTML replaced by their references.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The ids of the page's elements that change, with their content for `board`.
pub fn fragments(board: &Board, now: SystemTime) -> Vec<(&'static str, String)> {
    vec![
        ("rooms", rooms(&board.rooms, &board.room)),
        ("sessions", sessions(&board.sessions, now)),
        ("to", recipients(&board.sessions)),
        ("threads", threads(board)),
        ("state", state(&board.state)),
    ]
}

/// The whole page of `board` for `viewer`.
pub fn page(board: &Board, viewer: &Viewer) -> String {
    let parts: std::collections::HashMap<&str, String> =
        fragments(board, SystemTime::now()).into_iter().collect();
    let part = |id: &str| parts.get(id).map(String::as_str).unwrap_or("");
    let room = esc(&board.room);
    let csrf = esc(&viewer.csrf);
    let (from, locked) = match &viewer.name {
        Some(name) => (esc(name), " readonly"),
        None => (super::DEFAULT_SENDER.to_string(), ""),
    };
    let base = esc(&viewer.base());
    // Whose room this is: the token's label (or number), and the one name it sends as.
    let signed_in_as = match (viewer.token, &viewer.label, &viewer.name) {
        (None, _, _) => String::new(),
        (Some(id), label, name) => {
            let token = label
                .as_deref()
                .map(esc)
                .unwrap_or_else(|| format!("#{id}"));
            let name = name
                .as_deref()
                .map(|n| format!(" as <strong>{}</strong>", esc(n)))
                .unwrap_or_default();
            format!(" · token {token}{name}")
        }
    };
    let sign_out = if viewer.signed_in() {
        format!(
            r#"<form class="signout" method="post" action="{base}signout"><input type="hidden" name="csrf" value="{csrf}"><button type="submit">Sign out</button></form>"#
        )
    } else {
        String::new()
    };
    format!(
        r##"{head}<script src="/ui/page.js" defer></script>
</head>
<body data-room="{room}" data-base="{base}">
<a class="skip" href="#body">Skip to the message box</a>
<header class="top">
<h1>claude-c2c</h1>
<p class="where">room <strong>{room}</strong>{signed_in_as}</p>
<p id="status" data-state="connecting" role="status">connecting…</p>
{sign_out}
</header>
<main>
<section class="talk" aria-labelledby="h-talk">
<h2 id="h-talk">Conversation</h2>
<form id="send" method="post" action="{base}send">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="room" value="{room}">
<input type="hidden" id="reply_to" name="reply_to" value="">
<div class="fields">
<label for="from">From</label>
<input id="from" name="from" value="{from}" maxlength="64" required autocomplete="off" spellcheck="false"{locked}>
<label for="to">To</label>
<select id="to" name="to">{to}</select>
</div>
<label for="body" class="hidden-label">Message</label>
<textarea id="body" name="body" rows="3" required placeholder="Write a message (Ctrl+Enter sends)"></textarea>
<p id="replying" hidden>Replying to <a id="replying-link" href="#threads">#<span id="replying-id"></span></a> <button type="button" id="cancel-reply">Cancel reply</button></p>
<div class="actions">
<button id="send-button" type="submit">Send</button>
<span id="send-result" role="status" aria-live="polite"></span>
</div>
</form>
<div id="threads">{threads}</div>
</section>
<aside>
<section aria-labelledby="h-sessions">
<h2 id="h-sessions">Sessions</h2>
<div id="sessions">{sessions}</div>
</section>
<section aria-labelledby="h-state">
<h2 id="h-state">Shared state</h2>
<div id="state">{state}</div>
</section>
<section aria-labelledby="h-rooms">
<h2 id="h-rooms">Rooms</h2>
<nav id="rooms" aria-labelledby="h-rooms">{rooms}</nav>
</section>
</aside>
</main>
</body>
</html>
"##,
        head = head(&board.room),
        signed_in_as = signed_in_as,
        to = part("to"),
        threads = part("threads"),
        sessions = part("sessions"),
        state = part("state"),
        rooms = part("rooms"),
    )
}

fn rooms(rooms: &[RoomLine], current: &str) -> String {
    let mut out = String::from("<ul>");
    for r in rooms {
        let name = esc(&r.name);
        let here = if r.name == current {
            r#" aria-current="page""#
        } else {
            ""
        };
        let unread = match r.unread {
            0 => String::new(),
            n => format!(", {n} unread"),
        };
        let _ = write!(
            out,
            r#"<li><a href="?room={href}" data-room="{name}"{here}>{name}</a> <span class="count">{count} {noun}{unread}</span></li>"#,
            href = esc(&super::access::url_encode(&r.name)),
            count = r.sessions,
            noun = if r.sessions == 1 {
                "session"
            } else {
                "sessions"
            },
        );
    }
    out.push_str("</ul>");
    out
}

fn sessions(list: &[Overview], now: SystemTime) -> String {
    if list.is_empty() {
        return r#"<p class="empty">No sessions in this room yet.</p>"#.into();
    }
    let mut out = String::from(
        r#"<div class="scroll"><table><thead><tr><th scope="col">Name</th><th scope="col">Process</th><th scope="col">Seen</th><th scope="col">Unread</th></tr></thead><tbody>"#,
    );
    for s in list {
        let seen = clock::parse(&s.last_seen_at)
            .and_then(|t| now.duration_since(t).ok())
            .map(|d| clock::age(d.as_secs()))
            .unwrap_or_else(|| "?".into());
        let (live, class) = if s.running {
            ("live", "live yes")
        } else {
            ("gone", "live no")
        };
        let _ = write!(
            out,
            r#"<tr data-name="{name}"><th scope="row" class="name" title="{cwd}">{name}</th><td class="{class}">{live}</td><td class="seen"><time datetime="{at}" title="{at}">{seen}</time></td><td class="unread">{unread}</td></tr>"#,
            name = esc(&s.name),
            cwd = esc(s.cwd.as_deref().unwrap_or("")),
            at = esc(&s.last_seen_at),
            unread = s.unread,
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

fn recipients(list: &[Overview]) -> String {
    let mut names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut out = String::from(r#"<option value="*">everyone</option>"#);
    for name in names {
        let name = esc(name);
        let _ = write!(out, r#"<option value="{name}">{name}</option>"#);
    }
    out
}

fn threads(board: &Board) -> String {
    if board.threads.is_empty() {
        return r#"<p class="empty">No messages in this room yet. Send one above, or from a session.</p>"#.into();
    }
    let mut out = String::new();
    if board.older {
        let _ = write!(
            out,
            r#"<p class="older">The latest {SHOWN_MESSAGES} messages; older ones are in the sessions' inboxes and <code>claude-c2c tail</code>.</p>"#
        );
    }
    for thread in &board.threads {
        message(&mut out, thread, true);
    }
    out
}

fn message(out: &mut String, thread: &Thread, root: bool) {
    let shown = &thread.message;
    let m = &shown.message;
    let broadcast = m.to_name == BROADCAST;
    let to = if broadcast {
        "everyone".to_string()
    } else {
        esc(&m.to_name)
    };
    let class = if broadcast {
        "message broadcast"
    } else {
        "message"
    };
    let _ = write!(
        out,
        r##"<article class="{class}" data-id="{id}" id="m-{id}" tabindex="-1"><header><span class="from">{from}</span> <span class="arrow" aria-label="to">→</span> <span class="to">{to}</span> <a class="id" href="#m-{id}">#{id}</a>"##,
        id = m.id,
        from = esc(&m.from_name),
    );
    if let Some(tag) = &m.tag {
        let _ = write!(out, r#" <span class="tag">{}</span>"#, esc(tag));
    }
    if root && let Some(original) = m.reply_to {
        let _ = write!(out, r#" <span class="answers">re #{original}</span>"#);
    }
    let _ = write!(
        out,
        r#" <time datetime="{at}" title="{at}">{short}</time></header><div class="body">{body}</div>"#,
        at = esc(&m.created_at),
        short = esc(m.created_at.get(11..19).unwrap_or(&m.created_at)),
        body = esc(&m.body),
    );
    if shown.body_chars > BODY_CHARS {
        let _ = write!(
            out,
            r#"<p class="cut">… the first {BODY_CHARS} of {} characters; the recipient's inbox has it all</p>"#,
            shown.body_chars
        );
    }
    out.push_str(r#"<footer><ul class="receipts" aria-label="receipts">"#);
    if shown.receipts.is_empty() {
        out.push_str(r#"<li class="none">not delivered to anyone yet</li>"#);
    }
    for r in &shown.receipts {
        let (status, word) = match r.status {
            Status::Queued => ("queued", "queued".to_string()),
            Status::Delivered => (
                "delivered",
                format!("delivered by {}", r.via.as_deref().unwrap_or("?")),
            ),
            Status::Read => ("read", "read".to_string()),
        };
        let when = r
            .read_at
            .as_deref()
            .or(r.delivered_at.as_deref())
            .unwrap_or("");
        let _ = write!(
            out,
            r#"<li data-name="{name}" data-status="{status}" title="{when}">{name}: {word}</li>"#,
            name = esc(&r.name),
            when = esc(when),
        );
    }
    let _ = write!(
        out,
        r#"</ul><button type="button" class="reply" data-reply="{id}" data-to="{from}">Reply</button></footer>"#,
        id = m.id,
        from = esc(&m.from_name),
    );
    if !thread.replies.is_empty() {
        out.push_str(r#"<div class="replies">"#);
        for reply in &thread.replies {
            message(out, reply, false);
        }
        out.push_str("</div>");
    }
    out.push_str("</article>");
}

fn state(entries: &[StateEntry]) -> String {
    if entries.is_empty() {
        return r#"<p class="empty">No shared state in this room.</p>"#.into();
    }
    let mut out = String::from(
        r#"<div class="scroll"><table><thead><tr><th scope="col">Key</th><th scope="col">Value</th><th scope="col">Version</th><th scope="col">Lease</th></tr></thead><tbody>"#,
    );
    for e in entries {
        let mut value = e.value.to_string();
        if let Some((at, _)) = value.char_indices().nth(VALUE_CHARS) {
            value.truncate(at);
            value.push('…');
        }
        let (lease_class, lease) = match &e.expires_at {
            Some(until) => (
                "lease",
                format!(
                    r#"held by {by} until <time datetime="{at}" title="{at}">{short}</time>"#,
                    by = esc(&e.updated_by),
                    at = esc(until),
                    short = esc(until.get(11..19).unwrap_or(until)),
                ),
            ),
            None => ("lease none", "—".to_string()),
        };
        let _ = write!(
            out,
            r#"<tr data-key="{key}"><th scope="row" class="key">{key}</th><td class="value"><code>{value}</code><span class="by">by {by}</span></td><td class="version">{version}</td><td class="{lease_class}">{lease}</td></tr>"#,
            key = esc(&e.key),
            value = esc(&value),
            by = esc(&e.updated_by),
            version = e.version,
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

// The start of a page titled `title`, up to the end of the head (left open).
fn head(title: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · claude-c2c</title>
<link rel="stylesheet" href="/ui/page.css">
"#,
        esc(title)
    )
}

/// `html` as a response, a page that may not be stored.
pub fn page_response(html: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

// A page of its own, for sign-in and for messages.
fn small_page(status: StatusCode, title: &str, content: &str) -> Response {
    let html = format!(
        r#"{head}</head>
<body>
<main class="small">
<h1>{title}</h1>
{content}
</main>
</body>
</html>
"#,
        head = head(title),
        title = esc(title),
    );
    (status, page_response(html)).into_response()
}

/// A page that says `text` under `title`, with `status`.
pub fn message_page(status: StatusCode, title: &str, text: &str) -> Response {
    message_page_back_to(status, title, text, "/")
}

/// The same, its link back leading to `back`.
pub fn message_page_back_to(status: StatusCode, title: &str, text: &str, back: &str) -> Response {
    small_page(
        status,
        title,
        &format!(
            r#"<p class="message-text">{}</p><p><a href="{}">Back to the page</a></p>"#,
            esc(text),
            esc(back)
        ),
    )
}

/// The hub's sign-in page, saying `error` when the last try failed.
pub fn sign_in_page(status: StatusCode, error: Option<&str>) -> Response {
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, esc(e)))
        .unwrap_or_default();
    small_page(
        status,
        "Sign in to the hub",
        &format!(
            r#"{error}<form id="signin" method="post" action="/ui/signin">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="off" required autofocus spellcheck="false">
<button type="submit">Sign in</button>
</form>
<p class="hint">A token of this hub lets you see its room. Make one on the hub's machine with <code>claude-c2c token create --room ROOM --label browser</code> (add <code>--name NAME</code> to send only as that name).</p>"#
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::messages::{Message, Receipt, Shown};

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            esc(r#"<a href="x" onclick='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_hostile_message_renders_as_text_everywhere() {
        let hostile = r#"<script>alert(1)</script><img src=x onerror="alert(2)">"#;
        let shown = Shown {
            message: Message {
                id: 7,
                from_session: "s".into(),
                from_name: hostile.into(),
                to_name: hostile.into(),
                body: hostile.into(),
                tag: Some(hostile.into()),
                reply_to: None,
                created_at: hostile.into(),
                read_at: None,
                delivered: false,
            },
            body_chars: hostile.chars().count(),
            receipts: vec![Receipt::queued(hostile.into())],
        };
        let board = Board {
            room: hostile.into(),
            rooms: vec![RoomLine {
                name: hostile.into(),
                sessions: 1,
                unread: 1,
            }],
            sessions: vec![Overview {
                room: hostile.into(),
                name: hostile.into(),
                last_seen_at: hostile.into(),
                cwd: Some(hostile.into()),
                unread: 1,
                running: false,
            }],
            threads: vec![Thread {
                message: shown,
                replies: Vec::new(),
            }],
            older: false,
            state: vec![StateEntry {
                key: hostile.into(),
                value: hostile.into(),
                version: 1,
                updated_at: hostile.into(),
                updated_by: hostile.into(),
                expires_at: Some(hostile.into()),
            }],
        };
        let viewer = Viewer {
            id: "id".into(),
            room: None,
            name: Some(hostile.into()),
            token: Some(1),
            label: Some(hostile.into()),
            csrf: "c".into(),
        };
        let page = page(&board, &viewer);
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        for (id, html) in fragments(&board, SystemTime::now()) {
            assert!(
                !html.contains("<script") && !html.contains("<img"),
                "{id}: {html}"
            );
        }
    }
}
