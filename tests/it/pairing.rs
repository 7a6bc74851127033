//! SPEC §1.9 pairing: failed redemptions are limited across all addresses (the 100th within
//! ten minutes invalidates every outstanding code), counted in the store so a restart does not
//! reset them; codes are stored hashed.

use crate::harness::{Relay, code_of};
use reflecto::server::SystemClock;
use reflecto::server::limits::Limits;
use serde_json::{Value, json};
use std::sync::Arc;

/// A pairing of an extension "desk" with `code`.
fn desk(code: &str) -> Value {
    json!({"code": code, "type": "extension", "label": "desk"})
}

/// Redeems `code` for an extension "desk" from `ip`: (status code, body).
async fn redeem(relay: &Relay, code: &str, ip: &str) -> (u16, Value) {
    relay.api().pair_reply_from(&desk(code), Some(ip)).await
}

/// Well-formed codes other than `live`, from addresses that each stay under the IP limits.
async fn fail(relay: &Relay, live: &[&str], from: usize, n: usize) {
    for i in from..from + n {
        let guess = format!("{:06}", 100_000 + i);
        assert!(!live.contains(&guess.as_str()));
        let ip = format!("10.0.{}.{}", i / 2 / 250, i / 2 % 250 + 1);
        let (status, body) = redeem(relay, &guess, &ip).await;
        assert_eq!(
            (status, code_of(&body).as_str()),
            (400, "invalid_pairing_code")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pairing_locks_after_100_failures_from_many_addresses() {
    let limits = Limits::HOSTED;
    let mut relay =
        Relay::start_with(limits, Arc::new(SystemClock), |c| c.trust_proxy = true).await;
    relay.admin(&["user", "add", "alice"]);
    let first = relay.admin(&["pair", "--user", "alice"]);
    let second = relay.admin(&["pair", "--user", "alice"]);
    let live = [first.as_str(), second.as_str()];

    // 99 failures, with a restart in between: still below the limit, the first code pairs.
    fail(&relay, &live, 0, 60).await;
    let old = relay.running.take().unwrap();
    let _ = old.shutdown.send(());
    old.task.await.unwrap().unwrap();
    let dir = std::mem::replace(&mut relay.dir, tempfile::tempdir().unwrap());
    let relay = Relay::start_in(dir, limits, Arc::new(SystemClock), |c| c.trust_proxy = true).await;
    fail(&relay, &live, 60, 39).await;
    assert_eq!(redeem(&relay, &first, "10.9.0.1").await.0, 200);

    // The 100th failure within ten minutes invalidates every outstanding code.
    fail(&relay, &live, 99, 1).await;
    let (status, body) = redeem(&relay, &second, "10.9.0.2").await;
    assert_eq!(
        (status, code_of(&body).as_str()),
        (400, "invalid_pairing_code")
    );

    // The operator issues a new one, which pairs.
    let third = relay.admin(&["pair", "--user", "alice"]);
    assert_eq!(redeem(&relay, &third, "10.9.0.3").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn pairing_codes_are_stored_hashed() {
    let relay = Relay::start(crate::harness::no_limits()).await;
    relay.admin(&["user", "add", "alice"]);
    let code = relay.admin(&["pair", "--user", "alice"]);
    let hash = hex::encode_upper(reflecto::api::token::hash_secret(&code));
    assert_eq!(
        relay.count(&format!(
            "SELECT COUNT(*) FROM pairing_codes WHERE hex(code_hash) = '{hash}'"
        )),
        1
    );
    let conn = rusqlite::Connection::open(relay.dir.path().join("reflecto.db")).unwrap();
    let dump: String = conn
        .query_row(
            "SELECT group_concat(quote(code_hash) || user_id || expires_at) FROM pairing_codes",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!dump.contains(&code), "the plaintext code is stored");
}
