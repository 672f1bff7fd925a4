//! Several server processes on one database, all sending to each other at once: every message
//! whose send returned an id arrives exactly once, and no call fails (no busy or locked error
//! reaches a client).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{Server, TempDb, ids};
use serde_json::json;

const SERVERS: usize = 4;
const MESSAGES_EACH: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_lose_and_duplicate_nothing() {
    let db = TempDb::new("concurrency");
    let names: Vec<String> = (0..SERVERS).map(|i| format!("s{i}")).collect();
    let mut servers = Vec::new();
    for name in &names {
        servers.push(Arc::new(Server::named(&db, name).await));
    }

    // Every server sends to the others round-robin, and reads its inbox now and then, all at once.
    let mut tasks = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let server = server.clone();
        let names = names.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for n in 0..MESSAGES_EACH {
                let to = &names[(i + 1 + n % (SERVERS - 1)) % SERVERS];
                let body = format!("{i}->{to} #{n}");
                let result = server
                    .call("send_message", json!({"to": to, "body": body}))
                    .await
                    .unwrap_or_else(|e| panic!("send failed under load: {e}"));
                sent.push((result["id"].as_i64().unwrap(), to.clone(), body));
                if n % 10 == 0 {
                    server
                        .call("inbox", json!({"limit": 5}))
                        .await
                        .expect("inbox under load");
                }
            }
            sent
        }));
    }
    let mut expected: BTreeMap<String, BTreeMap<i64, String>> = BTreeMap::new();
    for task in tasks {
        for (id, to, body) in task.await.unwrap() {
            assert!(
                expected.entry(to).or_default().insert(id, body).is_none(),
                "id {id} returned twice"
            );
        }
    }

    // Each recipient drains its inbox, acknowledging as it goes; every message comes once.
    for (server, name) in servers.iter().zip(&names) {
        let mut received: BTreeMap<i64, String> = BTreeMap::new();
        loop {
            let inbox = server.ok("inbox", json!({"limit": 50})).await;
            let batch = ids(&inbox);
            if batch.is_empty() {
                break;
            }
            for m in inbox["messages"].as_array().unwrap() {
                assert_eq!(m["to_name"], name.as_str());
                let previous = received.insert(
                    m["id"].as_i64().unwrap(),
                    m["body"].as_str().unwrap().to_string(),
                );
                assert!(previous.is_none(), "message {} delivered twice", m["id"]);
            }
            let marked = server.ok("mark_read", json!({"message_ids": batch})).await;
            assert_eq!(marked["marked"].as_u64().unwrap() as usize, batch.len());
        }
        assert_eq!(
            &received,
            expected.get(name).unwrap(),
            "{name} did not get exactly what was sent to it"
        );
    }
    let total: usize = expected.values().map(BTreeMap::len).sum();
    assert_eq!(total, SERVERS * MESSAGES_EACH);
    let all_ids: BTreeSet<i64> = expected.values().flat_map(|m| m.keys().copied()).collect();
    assert_eq!(all_ids.len(), total, "ids are unique across senders");
}
