//! The page for humans: `claude-c2c ui` on the local database and the hub's `/`. In a headless
//! Chromium (through chromedriver, with fantoccini): a message sent on the command line shows up
//! on the open page without a reload, one sent from the page's form reaches its recipient,
//! hostile text stays text, the hub's page signs in with a token and follows its room live, and
//! a realistic scene renders (saved as a screenshot when `C2C_UI_SCREENSHOT` names a PNG file).
//! Over plain HTTP: only the printed address (with its per-run key) lets in, and no cookie is
//! set, a foreign `Host` is refused, a send needs the page's `csrf` value and its own origin
//! (not another port's), the served HTML escapes what it shows, and the hub's page admits a
//! token's holder to its room only, as its name only, until the token is revoked or the holder
//! signs out (which ends the page's open stream too).
//!
//! The browser tests need `chromedriver` and `chromium` on `PATH` (`.ci/run` installs Debian's
//! `chromium-driver` and `chromium`): without them they skip, listed in the skip list, and under
//! `CI=true` they fail.

mod common;

use std::path::Path;

use common::hub::{Hub, Reply, token, token_with_id};
use common::web::{
    Browser, Ui, Visitor, browser_programs, has_attribute, has_input, input_value, is_html, until,
};
use common::{Server, TempDb, cli, cli_json, send_in, skip};
use fantoccini::Locator;
use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::key::Key;
use serde_json::{Value, json};

/// Markup that would run script or make elements if the page put it in as HTML.
const HOSTILE: &str =
    r#"<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"><b id=bold>x</b>"#;

/// A name that would make an element if the page put it in as HTML.
const HOSTILE_NAME: &str = "<i id=evil>eve</i>";

/// A browser for `test`, or `None` (the test skips) where chromedriver or chromium is missing;
/// under `CI=true` that fails the test instead.
async fn browser(test: &str, db: &TempDb) -> Option<Browser> {
    let (driver, chromium) = skip::required(test, browser_programs())?;
    Some(Browser::start(&driver, &chromium, &db.dir().join("chromium")).await)
}

/// Sends `body` from `from` to `to` in the room `default` on the command line; the new
/// message's id.
fn say(db: &Path, from: &str, to: &str, body: &str) -> i64 {
    send_in(db, "default", from, to, body)
}

/// Registers `name` in `room` on the command line.
fn register_in(db: &Path, room: &str, name: &str) {
    cli_json(db, &["--room", room, "register-session", "--name", name]);
}

/// The latest messages to `name` in `room`, read or not, as the command line lists them.
fn inbox_in(db: &Path, room: &str, name: &str) -> Vec<Value> {
    let inbox = cli_json(
        db,
        &[
            "--room", room, "inbox", "--as", name, "--all", "--limit", "500",
        ],
    );
    common::messages(&inbox)
}

/// The message with `body` among `messages`, if any.
fn with_body<'a>(messages: &'a [Value], body: &str) -> Option<&'a Value> {
    messages.iter().find(|m| m["body"] == body)
}

/// Whether an answer let the request through: a success or a redirect.
fn passed(reply: &Reply) -> bool {
    (200..400).contains(&reply.status)
}

/// Signs in to the hub's page at `hub` with `secret` through the form's POST, as a browser on
/// the page's own origin would; the visitor goes to the page it is sent to.
async fn hub_visitor(hub: &Hub, secret: &str) -> Visitor {
    let mut visitor = Visitor::new(&hub.base);
    let reply = visitor
        .post_form("/ui/signin", &[("token", secret)], Some(&hub.base))
        .await;
    visitor.follow_home(&reply);
    visitor
}

/// `base` (`http://HOST:PORT`) with another port.
fn another_port(base: &str) -> String {
    let (host, port) = base.rsplit_once(':').expect("a port");
    let port: u16 = port.parse().expect("a port");
    format!(
        "{host}:{}",
        if port == u16::MAX { port - 1 } else { port + 1 }
    )
}

/// The form fields of a send from the page.
fn send_fields<'a>(
    from: &'a str,
    to: &'a str,
    body: &'a str,
    csrf: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("from", from),
        ("to", to),
        ("body", body),
        ("reply_to", ""),
        ("csrf", csrf),
    ]
}

/// Reads message `id` as the page shows it: `{from, to, body, receipts: [[name, status]..],
/// parent: id of the message whose `.replies` holds it, or null}`, or null if it is not there.
const MESSAGE_JS: &str = r#"
const a = document.querySelector('#threads article.message[data-id="' + arguments[0] + '"]');
if (!a) return null;
const own = sel => [...a.querySelectorAll(sel)].filter(e => e.closest('article.message') === a);
const text = sel => { const e = own(sel)[0]; return e ? e.textContent : null; };
const replies = a.parentElement ? a.parentElement.closest('.replies') : null;
const parent = replies ? replies.closest('article.message') : null;
return {
  from: text('.from'),
  to: text('.to'),
  body: text('.body'),
  body_elements: own('.body').map(b => b.querySelectorAll('*').length).reduce((x, y) => x + y, 0),
  receipts: own('.receipts li').map(li => [li.getAttribute('data-name'), li.getAttribute('data-status')]),
  parent: parent ? parent.getAttribute('data-id') : null,
  reply_buttons: own('button.reply').map(b => b.getAttribute('data-reply')),
};
"#;

/// Waits until message `id` is on the page and `ready` holds for what it shows; returns that.
async fn wait_message(page: &Browser, id: i64, ready: impl Fn(&Value) -> bool) -> Value {
    until(&format!("message #{id} on the page"), async || {
        let shown = page.js(MESSAGE_JS, vec![json!(id)]).await;
        if !shown.is_null() && ready(&shown) {
            Ok(shown)
        } else {
            Err(shown.to_string())
        }
    })
    .await
}

/// `{live, seen, unread}` texts of session `name`'s row, or null.
const SESSION_JS: &str = r#"
const r = document.querySelector('#sessions tr[data-name="' + CSS.escape(arguments[0]) + '"]');
if (!r) return null;
const t = sel => { const e = r.querySelector(sel); return e ? e.textContent.trim() : null; };
return { live: t('.live'), seen: t('.seen'), unread: t('.unread') };
"#;

/// `{value, version, lease}` texts of state key `key`'s row, or null.
const STATE_JS: &str = r#"
const r = document.querySelector('#state tr[data-key="' + CSS.escape(arguments[0]) + '"]');
if (!r) return null;
const t = sel => { const e = r.querySelector(sel); return e ? e.textContent.trim() : null; };
return { value: t('.value'), version: t('.version'), lease: t('.lease') };
"#;

/// Waits until `script` (with `arg`) returns something for which `ready` holds; returns it.
async fn wait_row(
    page: &Browser,
    what: &str,
    script: &str,
    arg: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    until(what, async || {
        let shown = page.js(script, vec![json!(arg)]).await;
        if !shown.is_null() && ready(&shown) {
            Ok(shown)
        } else {
            Err(shown.to_string())
        }
    })
    .await
}

/// Waits until the page's live stream is open (`#status` says `live`).
async fn wait_live(page: &Browser) {
    until("#status[data-state=live]", async || {
        let seen = page
            .js(
                "const s = document.querySelector('#status'); \
                 return [s ? s.getAttribute('data-state') : null, location.href, \
                 document.body ? document.body.innerText.slice(0, 300) : ''];",
                vec![],
            )
            .await;
        if seen[0] == "live" {
            Ok(())
        } else {
            Err(format!(
                "data-state {} at {}, showing {}",
                seen[0], seen[1], seen[2]
            ))
        }
    })
    .await
}

/// Opens the page by the address `ui` printed, which it stays at, and waits until it is live.
async fn open(page: &Browser, ui: &Ui) {
    page.goto(&ui.url).await.expect("open the printed address");
    let url = page.current_url().await.expect("the page's address");
    assert_eq!(url.as_str(), ui.url, "{url}");
    wait_live(page).await;
}

/// The value of the form field `css`.
async fn field(page: &Browser, css: &str) -> String {
    page.js(
        "const e = document.querySelector(arguments[0]); return e ? e.value : null;",
        vec![json!(css)],
    )
    .await
    .as_str()
    .unwrap_or_else(|| panic!("no form field {css}"))
    .to_string()
}

/// Finds `css` afresh and does `act` to it, until that succeeds: the live stream replaces the
/// page's fragments whole, so an element found a moment ago may be gone by the next command.
async fn with_element(
    page: &Browser,
    css: &str,
    act: impl AsyncFn(Element) -> Result<(), CmdError>,
) {
    until(&format!("{css} to take the action"), async || {
        let element = page
            .find(Locator::Css(css))
            .await
            .map_err(|e| e.to_string())?;
        act(element).await.map_err(|e| e.to_string())
    })
    .await
}

/// Clicks `css`.
async fn click(page: &Browser, css: &str) {
    with_element(page, css, async |e| e.click().await).await
}

/// Types `text` into `css`.
async fn type_into(page: &Browser, css: &str, text: &str) {
    with_element(page, css, async |e| e.send_keys(text).await).await
}

/// Sets `#from` to `from`, like a person typing over it.
async fn type_from(page: &Browser, from: &str) {
    with_element(page, "#from", async |e| {
        e.clear().await?;
        e.send_keys(from).await
    })
    .await
}

/// Chooses `to` in `#to`, once the page offers it.
async fn choose_to(page: &Browser, to: &str) {
    until(&format!("#to offers {to:?}"), async || {
        let offered = page
            .js(
                "return [...document.querySelectorAll('#to option')].map(o => o.value);",
                vec![],
            )
            .await;
        let values: Vec<&str> = offered
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if values.contains(&to) {
            Ok(())
        } else {
            Err(offered.to_string())
        }
    })
    .await;
    with_element(page, "#to", async |e| e.select_by_value(to).await).await;
}

/// Waits until the page says it sent a message (`#send-result`: `sent #ID`) and the textarea is
/// empty again; returns the id, which must differ from `previous`.
async fn wait_sent(page: &Browser, previous: Option<i64>) -> i64 {
    until("the page to say `sent #ID` and empty #body", async || {
        let state = page
            .js(
                "const r = document.querySelector('#send-result'); \
                 return [r ? r.textContent : null, document.querySelector('#body').value];",
                vec![],
            )
            .await;
        let said = state[0].as_str().unwrap_or("");
        let id = said
            .split_once("sent #")
            .and_then(|(_, rest)| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<i64>().ok()
            })
            .filter(|id| Some(*id) != previous);
        match id {
            Some(id) if state[1] == "" => Ok(id),
            _ => Err(state.to_string()),
        }
    })
    .await
}

/// The page's text, for checks that something is absent.
async fn page_text(page: &Browser) -> String {
    page.js("return document.body.textContent;", vec![])
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// In the browser

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_on_the_command_line_appears_on_the_open_page_without_a_reload() {
    let test = "a_message_sent_on_the_command_line_appears_on_the_open_page_without_a_reload";
    let db = TempDb::new("web-live");
    register_in(&db.path(), "default", "bob");
    let ui = Ui::start(&db.path(), &[], &[]).await;
    let Some(page) = browser(test, &db).await else {
        return;
    };
    open(&page, &ui).await;
    page.js("window.__marker = 1;", vec![]).await;

    let body = "the build is green, merging now";
    let id = say(&db.path(), "alice", "bob", body);
    let shown = wait_message(&page, id, |m| m["body"] == body).await;
    assert_eq!(
        shown["from"].as_str().map(str::trim),
        Some("alice"),
        "{shown}"
    );
    assert_eq!(shown["to"].as_str().map(str::trim), Some("bob"), "{shown}");
    assert_eq!(shown["parent"], Value::Null, "{shown}");
    assert!(
        shown["receipts"]
            .as_array()
            .is_some_and(|r| r.contains(&json!(["bob", "queued"]))),
        "bob's receipt should be queued: {shown}"
    );

    // A receipt changes on the open page too.
    cli_json(
        &db.path(),
        &["mark-read", "--as", "bob", "--message-ids", &id.to_string()],
    );
    wait_message(&page, id, |m| {
        m["receipts"]
            .as_array()
            .is_some_and(|r| r.contains(&json!(["bob", "read"])))
    })
    .await;

    assert_eq!(
        page.js("return window.__marker;", vec![]).await,
        json!(1),
        "the page was reloaded instead of updated"
    );
    page.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_from_the_page_reaches_its_recipient() {
    let test = "a_message_sent_from_the_page_reaches_its_recipient";
    let db = TempDb::new("web-send");
    let path = db.path();
    register_in(&path, "default", "bob");
    let asked = say(
        &path,
        "alice",
        "ops",
        "can someone look at the flaky deploy?",
    );
    let ui = Ui::start(&path, &[], &[]).await;
    let Some(page) = browser(test, &db).await else {
        return;
    };
    open(&page, &ui).await;
    assert_eq!(field(&page, "#from").await, "human", "#from's default");

    // Typed and sent with the button.
    let first = "please rebase on main before merging";
    type_from(&page, "ops").await;
    choose_to(&page, "bob").await;
    type_into(&page, "#body", first).await;
    click(&page, "#send-button").await;
    let first_id = wait_sent(&page, None).await;
    let got = inbox_in(&path, "default", "bob");
    let stored = with_body(&got, first).unwrap_or_else(|| panic!("bob did not get it: {got:?}"));
    assert_eq!(stored["from_name"], "ops", "{stored}");
    assert_eq!(stored["id"], first_id, "#send-result's id: {stored}");
    wait_message(&page, first_id, |m| m["body"] == first).await;

    // Sent with Ctrl+Enter in the textarea.
    let second = "and ping me when it is green";
    if field(&page, "#from").await != "ops" {
        type_from(&page, "ops").await;
    }
    choose_to(&page, "bob").await;
    let keys = format!(
        "{second}{}{}",
        char::from(Key::Control),
        char::from(Key::Enter)
    );
    type_into(&page, "#body", &keys).await;
    let second_id = wait_sent(&page, Some(first_id)).await;
    let got = inbox_in(&path, "default", "bob");
    let stored = with_body(&got, second)
        .unwrap_or_else(|| panic!("Ctrl+Enter did not send {second:?} to bob: {got:?}"));
    assert_eq!(stored["from_name"], "ops", "{stored}");
    assert_eq!(stored["id"], second_id, "{stored}");

    // A reply: the message's reply button fills in its sender and id.
    let question = wait_message(&page, asked, |_| true).await;
    assert_eq!(
        question["reply_buttons"],
        json!([asked.to_string()]),
        "{question}"
    );
    click(&page, &format!("button.reply[data-reply=\"{asked}\"]")).await;
    assert_eq!(field(&page, "#to").await, "alice", "reply fills #to");
    assert_eq!(
        field(&page, "#reply_to").await,
        asked.to_string(),
        "reply fills #reply_to"
    );
    if field(&page, "#from").await != "ops" {
        type_from(&page, "ops").await;
    }
    let answer = "on it";
    type_into(&page, "#body", answer).await;
    click(&page, "#send-button").await;
    let answer_id = wait_sent(&page, Some(second_id)).await;
    let got = inbox_in(&path, "default", "alice");
    let stored = with_body(&got, answer).unwrap_or_else(|| panic!("alice did not get it: {got:?}"));
    assert_eq!(stored["reply_to"], asked, "{stored}");
    assert_eq!(stored["from_name"], "ops", "{stored}");
    let shown = wait_message(&page, answer_id, |m| m["body"] == answer).await;
    assert_eq!(
        shown["parent"],
        json!(asked.to_string()),
        "the reply sits in its parent's .replies: {shown}"
    );
    page.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_renders_as_text_on_the_page() {
    let test = "hostile_text_renders_as_text_on_the_page";
    let db = TempDb::new("web-xss");
    let path = db.path();
    register_in(&path, "default", "bob");
    register_in(&path, "default", HOSTILE_NAME);
    // Served with the page, and (below) arriving live.
    let served = say(&path, "alice", "bob", HOSTILE);
    let ui = Ui::start(&path, &[], &[]).await;
    let Some(page) = browser(test, &db).await else {
        return;
    };
    open(&page, &ui).await;
    let live = say(&path, "alice", "bob", HOSTILE);
    let from_hostile = say(&path, HOSTILE_NAME, "bob", "hello from a strange name");
    cli_json(
        &path,
        &[
            "set-state",
            "--as",
            "alice",
            "--key",
            HOSTILE_NAME,
            "--value",
            &json!(HOSTILE).to_string(),
        ],
    );

    for id in [served, live] {
        let shown = wait_message(&page, id, |m| m["body"] == HOSTILE).await;
        assert_eq!(shown["body_elements"], 0, "markup in .body: {shown}");
    }
    let shown = wait_message(&page, from_hostile, |_| true).await;
    assert_eq!(
        shown["from"].as_str().map(str::trim),
        Some(HOSTILE_NAME),
        "{shown}"
    );
    wait_row(
        &page,
        "the hostile name's session row",
        SESSION_JS,
        HOSTILE_NAME,
        |_| true,
    )
    .await;
    let state = wait_row(
        &page,
        "the hostile key's state row",
        STATE_JS,
        HOSTILE_NAME,
        |_| true,
    )
    .await;
    // Shown as JSON text.
    assert!(
        state["value"]
            .as_str()
            .is_some_and(|v| v.contains(&json!(HOSTILE).to_string())),
        "the value as text: {state}"
    );
    choose_to(&page, HOSTILE_NAME).await;

    // Give an injected image's error handler a moment to have run, then look for any trace.
    page.js(
        "return await new Promise(r => setTimeout(() => r(1), 300));",
        vec![],
    )
    .await;
    let traces = page
        .js(
            "return { pwned: typeof window.__pwned, bold: !!document.getElementById('bold'), \
             evil: !!document.getElementById('evil'), \
             injected: document.querySelectorAll('#threads img, #threads script, #sessions i, \
             #state img, #state b, #to i').length };",
            vec![],
        )
        .await;
    assert_eq!(
        traces,
        json!({"pwned": "undefined", "bold": false, "evil": false, "injected": 0}),
        "hostile text became markup"
    );
    page.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_page_signs_in_with_a_token_and_follows_its_room_live() {
    let test = "the_hub_page_signs_in_with_a_token_and_follows_its_room_live";
    let db = TempDb::new("web-hub");
    let path = db.path();
    register_in(&path, "team", "alice");
    let before = send_in(&path, "team", "bob", "alice", "standup moved to 10:30");
    send_in(&path, "other", "mallory", "eve", "other room secret");
    let secret = token(&path, "team", None);
    let hub = Hub::start(&path, &[], &[]).await;
    let Some(page) = browser(test, &db).await else {
        return;
    };
    page.goto(&format!("{}/", hub.base))
        .await
        .expect("open the hub's page");
    let input = page
        .wait()
        .at_most(common::web::WAIT)
        .for_element(Locator::Css("form#signin input[name=token]"))
        .await
        .expect("the sign-in form");
    input.send_keys(&secret).await.expect("type the token");
    click(&page, "form#signin button, form#signin input[type=submit]").await;
    wait_live(&page).await;

    wait_message(&page, before, |m| m["body"] == "standup moved to 10:30").await;
    let rooms = page
        .js(
            "return [...document.querySelectorAll('#rooms a[data-room]')]\
             .map(a => a.getAttribute('data-room'));",
            vec![],
        )
        .await;
    assert_eq!(rooms, json!(["team"]), "only the token's room");
    assert!(
        !page_text(&page).await.contains("other room secret"),
        "another room's message is shown"
    );

    // Sent through the hub's API by a client of the room: it appears without a reload.
    page.js("window.__marker = 1;", vec![]).await;
    let sent = hub
        .api(&secret)
        .ok(
            "send_message",
            Some("carol"),
            json!({"to": "alice", "body": "sent through the hub"}),
        )
        .await;
    let id = sent["id"].as_i64().expect("id");
    let shown = wait_message(&page, id, |m| m["body"] == "sent through the hub").await;
    assert_eq!(
        shown["from"].as_str().map(str::trim),
        Some("carol"),
        "{shown}"
    );
    assert_eq!(page.js("return window.__marker;", vec![]).await, json!(1));

    // Signing out is a plain form post too (as signing in was): it must reach the server from
    // the page's own origin, and lead back to the sign-in form.
    click(&page, "form.signout button").await;
    page.wait()
        .at_most(common::web::WAIT)
        .for_element(Locator::Css("form#signin input[name=token]"))
        .await
        .expect("the sign-in form again after signing out");
    page.goto(&format!("{}/", hub.base))
        .await
        .expect("open the hub's page again");
    page.wait()
        .at_most(common::web::WAIT)
        .for_element(Locator::Css("form#signin"))
        .await
        .expect("still signed out");
    page.close().await;
}

/// A small realistic scene, built while the page is open: three live sessions, a thread with a
/// reply chain, a broadcast, a read receipt, shared state with a lease, and a message from a
/// human sent through the form. It must all arrive live and look the same after a reload; with
/// `C2C_UI_SCREENSHOT=/path.png` the whole page is saved there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_realistic_scene_renders_live_and_after_a_reload() {
    let test = "a_realistic_scene_renders_live_and_after_a_reload";
    let db = TempDb::new("web-scene");
    let ui = Ui::start(&db.path(), &[], &[]).await;
    let Some(page) = browser(test, &db).await else {
        return;
    };
    open(&page, &ui).await;

    let [planner, backend, frontend] =
        Server::several(&db, ["planner", "backend", "frontend"]).await;
    let ask = planner
        .send(
            "backend",
            "Can you add a /health endpoint that reports the schema version? The deploy check \
             needs it before Friday.",
        )
        .await;
    let answer = backend
        .ok(
            "send_message",
            json!({
                "to": "planner",
                "body": "Yes: GET /health -> {\"ok\": true, \"schema\": 14}. Migration 14 lands first; \
                         I hold the migrations lease.",
                "reply_to": ask,
            }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let follow = planner
        .ok(
            "send_message",
            json!({
                "to": "frontend",
                "body": "frontend: once /health is up, show the schema version in the status bar.",
                "reply_to": answer,
            }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let broadcast = planner
        .send(
            "*",
            "Freezing main at 15:00 for the 0.3 release: finish or park your branches.",
        )
        .await;
    backend.ok("mark_read", json!({"message_ids": [ask]})).await;
    planner
        .ok(
            "set_state",
            json!({"key": "release/version", "value": "0.3.0"}),
        )
        .await;
    backend
        .ok(
            "set_state",
            json!({
                "key": "lease/migrations",
                "value": {"holder": "backend", "task": "migration 14: schema_version"},
                "if_version": 0,
                "ttl_seconds": 900,
            }),
        )
        .await;
    assert_eq!(field(&page, "#from").await, "human");
    choose_to(&page, "frontend").await;
    let human = "Keep the status bar text short please, it wraps on small screens.";
    type_into(&page, "#body", human).await;
    click(&page, "#send-button").await;
    let from_human = wait_sent(&page, None).await;

    for round in ["live", "after a reload"] {
        if round != "live" {
            page.refresh().await.expect("reload");
            wait_live(&page).await;
        }
        for name in ["planner", "backend", "frontend"] {
            wait_row(
                &page,
                &format!("{name}'s session row, live ({round})"),
                SESSION_JS,
                name,
                |s| {
                    s["live"] == "live"
                        && s["unread"]
                            .as_str()
                            .is_some_and(|u| u.parse::<u64>().is_ok())
                },
            )
            .await;
        }
        wait_message(&page, ask, |m| {
            m["receipts"]
                .as_array()
                .is_some_and(|r| r.contains(&json!(["backend", "read"])))
        })
        .await;
        wait_message(&page, answer, |m| m["parent"] == json!(ask.to_string())).await;
        wait_message(&page, follow, |m| m["parent"] == json!(answer.to_string())).await;
        let shown = wait_message(&page, broadcast, |m| m["parent"].is_null()).await;
        assert_eq!(
            shown["to"].as_str().map(str::trim),
            Some("everyone"),
            "{shown}"
        );
        let shown = wait_message(&page, from_human, |m| m["body"] == human).await;
        assert_eq!(
            shown["from"].as_str().map(str::trim),
            Some("human"),
            "{shown}"
        );
        let version = wait_row(
            &page,
            &format!("release/version's state row ({round})"),
            STATE_JS,
            "release/version",
            |s| s["value"].as_str().is_some_and(|v| v.contains("0.3.0")),
        )
        .await;
        let lease = wait_row(
            &page,
            &format!("lease/migrations's state row ({round})"),
            STATE_JS,
            "lease/migrations",
            |s| {
                s["value"]
                    .as_str()
                    .is_some_and(|v| v.contains("migration 14"))
            },
        )
        .await;
        assert_eq!(version["version"], "1", "{version}");
        assert!(
            lease["lease"].as_str().is_some_and(|l| !l.is_empty())
                && lease["lease"] != version["lease"],
            "a lease taken with a TTL shows as one: {lease} vs {version}"
        );
    }

    if let Some(path) = std::env::var_os("C2C_UI_SCREENSHOT") {
        page.screenshot_page(Path::new(&path)).await;
    }
    page.close().await;
    for server in [planner, backend, frontend] {
        server.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Over plain HTTP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_printed_address_lets_in() {
    let db = TempDb::new("web-key");
    let ui = Ui::start(&db.path(), &[], &[]).await;
    let port = ui.base.rsplit(':').next().unwrap().to_string();
    let anonymous = ui.visitor();

    let reply = anonymous.get("/").await;
    assert_eq!(reply.status, 401, "no key: {reply:?}");
    assert!(is_html(&reply), "the refusal is a page: {reply:?}");
    let wrong = if ui.key.starts_with('0') { "1" } else { "0" }.repeat(64);
    for path in [
        format!("/view/{wrong}/"),
        format!("/view/{wrong}/events"),
        format!("/view/{}/", &ui.key[..63]),
        "/view//".to_string(),
    ] {
        let reply = anonymous.get(&path).await;
        assert_eq!(reply.status, 401, "{path}: {reply:?}");
    }

    let visitor = ui.signed_in();
    let html = visitor.page("").await;
    for id in ["status", "rooms", "sessions", "threads", "state", "send"] {
        assert!(has_attribute(&html, "id", id), "no #{id} on the page");
    }
    assert!(
        input_value(&html, "csrf").is_some_and(|c| !c.is_empty()),
        "no csrf field"
    );
    visitor.page("?room=default").await;
    // Without its slash, the address leads to the page (whose links are relative to it).
    let reply = anonymous.get(&format!("/view/{}", ui.key)).await;
    assert!((300..400).contains(&reply.status), "{reply:?}");
    assert_eq!(
        reply.header("location"),
        Some(format!("/view/{}/", ui.key).as_str())
    );
    // Another loopback name for the same server is fine.
    let reply = visitor
        .get_with("", &[("host", &format!("localhost:{port}"))])
        .await;
    assert_eq!(reply.status, 200, "Host localhost: {reply:?}");

    // A page reached by another name (DNS rebinding) is refused, whatever it carries.
    for host in ["evil.example", &format!("evil.example:{port}")] {
        let reply = visitor.get_with("", &[("host", host)]).await;
        assert_eq!(reply.status, 403, "Host {host} with the key: {reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_without_the_page_csrf_value_or_from_another_origin_is_refused() {
    let db = TempDb::new("web-csrf");
    let path = db.path();
    register_in(&path, "default", "bob");
    let ui = Ui::start(&path, &[], &[]).await;
    let visitor = ui.signed_in();
    let csrf = input_value(&visitor.page("").await, "csrf").expect("the page's csrf field");
    let wrong = if csrf.starts_with('0') { "1" } else { "0" }.repeat(csrf.len().max(1));
    let origin = ui.base.clone();
    // The same host on another port is another site's server.
    let other_port = another_port(&ui.base);

    let refused = [
        (
            "no csrf field",
            vec![
                ("from", "ops"),
                ("to", "bob"),
                ("body", "attempt without csrf"),
                ("reply_to", ""),
            ],
            Some(origin.as_str()),
        ),
        (
            "a wrong csrf",
            send_fields("ops", "bob", "attempt with a wrong csrf", &wrong),
            Some(origin.as_str()),
        ),
        (
            "a foreign Origin",
            send_fields("ops", "bob", "attempt from another origin", &csrf),
            Some("http://evil.example"),
        ),
        (
            "an Origin on another port",
            send_fields("ops", "bob", "attempt from another port", &csrf),
            Some(other_port.as_str()),
        ),
    ];
    for (what, fields, origin) in &refused {
        let reply = visitor.post_form("send", fields, *origin).await;
        assert_eq!(reply.status, 403, "{what}: {reply:?}");
    }
    let wrong_key = if ui.key.starts_with('0') { "1" } else { "0" }.repeat(64);
    let reply = ui
        .visitor()
        .post_form(
            &format!("/view/{wrong_key}/send"),
            &send_fields("ops", "bob", "attempt at another address", &csrf),
            Some(&origin),
        )
        .await;
    assert_eq!(
        reply.status, 401,
        "at an address with a wrong key: {reply:?}"
    );
    // A room that cannot be one.
    let mut fields = send_fields("ops", "bob", "attempt in room *", &csrf);
    fields.push(("room", "*"));
    let reply = visitor.post_form("send", &fields, Some(&origin)).await;
    assert_eq!(reply.status, 400, "room *: {reply:?}");
    let got = inbox_in(&path, "default", "bob");
    assert!(
        got.iter()
            .all(|m| !m["body"].as_str().unwrap_or("").starts_with("attempt")),
        "a refused send was stored: {got:?}"
    );

    let body = "sent with the page's csrf";
    let reply = visitor
        .post_form(
            "send",
            &send_fields("ops", "bob", body, &csrf),
            Some(&origin),
        )
        .await;
    assert!(passed(&reply), "the page's own send: {reply:?}");
    let got = inbox_in(&path, "default", "bob");
    let stored = with_body(&got, body).unwrap_or_else(|| panic!("not stored: {got:?}"));
    assert_eq!(stored["from_name"], "ops", "{stored}");
    // A body as large as a message may be (under the 1 MiB default), each character two bytes
    // and percent-encoded to six: the form takes what send_message takes.
    let large = "é".repeat(450_000);
    let reply = visitor
        .post_form(
            "send",
            &send_fields("ops", "bob", &large, &csrf),
            Some(&origin),
        )
        .await;
    assert!(passed(&reply), "a 900 KB body: {}", reply.status);
    let got = inbox_in(&path, "default", "bob");
    assert!(
        with_body(&got, &large).is_some(),
        "the large body was not stored whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_html_escapes_hostile_text() {
    let db = TempDb::new("web-escape");
    let path = db.path();
    register_in(&path, "default", "bob");
    say(&path, "alice", "bob", HOSTILE);
    say(&path, HOSTILE_NAME, "bob", "hello from a strange name");
    cli_json(
        &path,
        &[
            "set-state",
            "--as",
            "alice",
            "--key",
            "note",
            "--value",
            &json!(HOSTILE).to_string(),
        ],
    );
    let ui = Ui::start(&path, &[], &[]).await;
    let html = ui.signed_in().page("").await;
    assert!(
        html.contains("&lt;script&gt;window.__pwned=1&lt;/script&gt;"),
        "the body is not shown escaped"
    );
    for raw in [
        "<script>window.__pwned",
        "<img src=x",
        "<b id=bold>",
        "<i id=evil>",
    ] {
        assert!(
            !html.contains(raw),
            "{raw:?} is in the served HTML as markup"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_listens_on_the_port_given() {
    let db = TempDb::new("web-port");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ui = Ui::start(&db.path(), &[], &["--port", &port.to_string()]).await;
    assert_eq!(ui.base, format!("http://127.0.0.1:{port}"), "{}", ui.url);
    ui.signed_in().page("").await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_stops_when_terminated() {
    let db = TempDb::new("web-term");
    let mut ui = Ui::start(&db.path(), &[], &[]).await;
    ui.signed_in().page("").await;
    unsafe {
        libc::kill(ui.pid() as libc::pid_t, libc::SIGTERM);
    }
    let status = ui.exited(std::time::Duration::from_secs(10)).await;
    assert!(
        status.is_some(),
        "still running 10 s after SIGTERM; stderr: {}",
        ui.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_page_admits_a_token_to_its_room_only() {
    let db = TempDb::new("web-hub-signin");
    let path = db.path();
    register_in(&path, "team", "alice");
    send_in(&path, "team", "bob", "alice", "team room message");
    send_in(&path, "other", "mallory", "eve", "other room secret");
    let secret = token(&path, "team", None);
    let hub = Hub::start(&path, &[], &[]).await;

    let anonymous = Visitor::new(&hub.base);
    let reply = anonymous.get("/").await;
    assert!(is_html(&reply), "{reply:?}");
    assert!(
        has_attribute(&reply.body, "id", "signin") && has_input(&reply.body, "token"),
        "no sign-in form: {reply:?}"
    );
    assert!(!reply.body.contains("team room message"), "{reply:?}");

    let wrong = format!("c2c_{}", "0".repeat(64));
    let reply = anonymous
        .post_form("/ui/signin", &[("token", &wrong)], Some(&hub.base))
        .await;
    assert_eq!(reply.status, 401, "a wrong token: {reply:?}");
    assert!(reply.header("location").is_none(), "{reply:?}");
    assert!(
        has_attribute(&reply.body, "id", "signin"),
        "the sign-in page again: {reply:?}"
    );
    // A sign-in posted by a page on another port of the hub's host (a login forgery).
    let reply = anonymous
        .post_form(
            "/ui/signin",
            &[("token", &secret)],
            Some(&another_port(&hub.base)),
        )
        .await;
    assert_eq!(reply.status, 403, "a sign-in from another port: {reply:?}");
    assert!(reply.header("location").is_none(), "{reply:?}");

    let visitor = hub_visitor(&hub, &secret).await;
    let html = visitor.page("").await;
    assert!(html.contains("team room message"), "the room's messages");
    assert!(has_attribute(&html, "data-room", "team"));
    assert!(
        !has_attribute(&html, "data-room", "other"),
        "another room listed"
    );
    assert!(
        !html.contains("other room secret"),
        "another room's message"
    );
    let reply = visitor.get("?room=other").await;
    assert!(
        !reply.body.contains("other room secret"),
        "?room=other shows another room: {reply:?}"
    );
    let reply = visitor.get_with("", &[("host", "evil.example")]).await;
    assert_eq!(reply.status, 403, "Host evil.example: {reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_signs_its_page_out() {
    let db = TempDb::new("web-hub-revoke");
    let path = db.path();
    register_in(&path, "team", "bob");
    let (id, secret) = token_with_id(&path, "team", None);
    let hub = Hub::start(&path, &[], &[]).await;
    let visitor = hub_visitor(&hub, &secret).await;
    let csrf = input_value(&visitor.page("").await, "csrf").expect("the page's csrf field");

    let out = cli(&path, &["token", "revoke", &id.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply = visitor.get("").await;
    assert!(
        !has_attribute(&reply.body, "id", "threads"),
        "the page is still shown: {reply:?}"
    );
    assert!(
        (300..400).contains(&reply.status) || has_attribute(&reply.body, "id", "signin"),
        "not sent to sign in: {reply:?}"
    );
    let reply = visitor
        .post_form(
            "send",
            &send_fields("ops", "bob", "sent after the revoke", &csrf),
            Some(&hub.base),
        )
        .await;
    assert!(!passed(&reply), "a send after the revoke: {reply:?}");
    let got = inbox_in(&path, "team", "bob");
    assert!(
        with_body(&got, "sent after the revoke").is_none(),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_page_and_its_open_stream() {
    let db = TempDb::new("web-hub-signout");
    let path = db.path();
    register_in(&path, "team", "bob");
    let secret = token(&path, "team", None);
    let hub = Hub::start(&path, &[], &[]).await;
    let visitor = hub_visitor(&hub, &secret).await;
    let csrf = input_value(&visitor.page("").await, "csrf").expect("the page's csrf field");

    let mut stream = visitor
        .http
        .get(visitor.url("events?room=team"))
        .send()
        .await
        .expect("open the page's stream");
    assert_eq!(stream.status(), 200);
    let mut seen = String::new();
    let mut read_until = async |what: &str, seen: &mut String| {
        let deadline = tokio::time::Instant::now() + common::web::WAIT;
        while !seen.contains(what) {
            match tokio::time::timeout_at(deadline, stream.chunk()).await {
                Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                other => panic!("no {what:?} on the stream ({other:?}); seen: {seen}"),
            }
        }
    };
    read_until("event: board", &mut seen).await;

    let reply = visitor
        .post_form("signout", &[("csrf", &csrf)], Some(&hub.base))
        .await;
    assert_eq!(reply.status, 303, "{reply:?}");
    assert_eq!(reply.header("location"), Some("/"), "{reply:?}");
    // The open stream learns of it at once, with nothing else changing, and ends.
    read_until("event: signed-out", &mut seen).await;
    send_in(&path, "team", "alice", "bob", "after the sign-out");
    let rest = tokio::time::timeout(common::web::WAIT, stream.chunk()).await;
    assert!(
        matches!(rest, Ok(Ok(None))),
        "the stream went on after the sign-out: {rest:?}"
    );
    let reply = visitor.get("").await;
    assert_eq!(
        reply.status, 401,
        "the page's address after the sign-out: {reply:?}"
    );
    assert!(has_attribute(&reply.body, "id", "signin"), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_bound_to_a_name_sends_from_the_page_only_as_that_name() {
    let db = TempDb::new("web-hub-name");
    let path = db.path();
    register_in(&path, "team", "bob");
    let secret = token(&path, "team", Some("carol"));
    let hub = Hub::start(&path, &[], &[]).await;
    let visitor = hub_visitor(&hub, &secret).await;
    let csrf = input_value(&visitor.page("").await, "csrf").expect("the page's csrf field");

    let reply = visitor
        .post_form(
            "send",
            &send_fields("mallory", "bob", "sent as someone else", &csrf),
            Some(&hub.base),
        )
        .await;
    assert!(
        (400..500).contains(&reply.status),
        "a send as another name: {reply:?}"
    );
    let reply = visitor
        .post_form(
            "send",
            &send_fields("carol", "bob", "sent as carol", &csrf),
            Some(&hub.base),
        )
        .await;
    assert!(passed(&reply), "a send as the token's name: {reply:?}");
    let got = inbox_in(&path, "team", "bob");
    assert!(with_body(&got, "sent as someone else").is_none(), "{got:?}");
    let stored = with_body(&got, "sent as carol").unwrap_or_else(|| panic!("{got:?}"));
    assert_eq!(stored["from_name"], "carol", "{stored}");
}
