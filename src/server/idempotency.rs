//! One request at a time per `Idempotency-Key` (SPEC §1.1). Two concurrent requests with the
//! same token and key would otherwise both miss the stored response, both be charged the
//! token and receiver limits, and only the commit would notice the second. The holder of a
//! key's lock decides (replay or accept) and commits before the next request with that key
//! looks, so the second one finds the stored response and is charged nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

type KeyLock = Arc<tokio::sync::Mutex<()>>;

#[derive(Default)]
pub struct KeyLocks {
    held: Mutex<HashMap<(String, String), KeyLock>>,
}

/// Held while a request with a key is decided and committed.
pub struct KeyGuard {
    _guard: OwnedMutexGuard<()>,
}

impl KeyLocks {
    pub async fn lock(&self, token_id: &str, key: &str) -> KeyGuard {
        let lock = {
            let mut held = self.held.lock().expect("idempotency locks poisoned");
            // Forget locks nobody holds or waits for: the map stays as small as the keys in flight.
            held.retain(|_, lock| Arc::strong_count(lock) > 1);
            held.entry((token_id.to_owned(), key.to_owned()))
                .or_default()
                .clone()
        };
        KeyGuard {
            _guard: lock.lock_owned().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_held_by_one_request_at_a_time() {
        let locks = KeyLocks::default();
        let first = locks.lock("tok", "k").await;
        // Another key, or the same key of another token, is free.
        let _other = locks.lock("tok", "k2").await;
        let _other_token = locks.lock("tok2", "k").await;
        let second = locks.lock("tok", "k");
        tokio::pin!(second);
        assert!(futures_util::poll!(second.as_mut()).is_pending());
        drop(first);
        let _second = second.await;
    }
}
