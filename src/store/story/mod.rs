//! The store's conformance story: every store-level behaviour the relay relies on, written once
//! against the public async methods of [`Store`] and run on every backend (as atuin's
//! `db_story` does). A story never reaches into SQL or a backend's internals, so passing on
//! both backends means both behave the same.
//!
//! [`story!`] turns one `async fn name(store: &Store)` (or `async fn name(s: Story)`, for a
//! story that needs more than the store) into a module `name` with one test per
//! backend, `name::sqlite` and `name::postgres`. The SQLite arm runs on a real file in a temp
//! dir; the PostgreSQL arm gets a fresh, empty database from [`postgres_database`] and prints
//! "skipped" where there is none. Time is always an explicit `now` (the store takes it as an
//! argument): no sleeps, no timing assertions.

use super::limits::Limits;
use super::*;
use crate::api::status::DeliveryState;
use crate::api::token::Secret;
use crate::api::{DeviceType, Priority};

/// 2026-11-18T11:06:40Z: every story's clock starts here (month `2026-11`).
pub const T0: i64 = 1_795_000_000_000;
pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// The backends a story runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty PostgreSQL database for one story, or `None` where no server is available
/// (the story then prints "skipped").
/// Under `CI` a missing server fails the story instead (.ci/run installs PostgreSQL).
pub(crate) async fn postgres_database() -> Option<Database> {
    let created = tokio::task::spawn_blocking(|| {
        crate::pg_cluster::shared().and_then(|cluster| cluster.create_database())
    })
    .await
    .expect("creating a database");
    match created {
        Ok(url) => Some(Database::Postgres(url)),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is required under CI: {e}"
            );
            eprintln!("{e}");
            None
        }
    }
}

/// One story's database and the store opened on it with the relay's default limits.
pub struct Story {
    pub store: Store,
    pub db: Database,
    pub backend: Backend,
    // Keeps the SQLite temp dir alive for the story.
    _dir: Option<tempfile::TempDir>,
}

impl Story {
    /// Another store on the same database: a restart (drop the old one first), a second relay
    /// on a shared database, or `reflecto admin` beside the relay.
    pub async fn open(&self, limits: Limits, now: i64) -> Store {
        Store::open(&self.db, limits, now)
            .await
            .unwrap_or_else(|e| panic!("opening {:?} on {:?}: {e}", self.backend, self.db))
    }
}

/// What a story is: an `async fn` of its store alone, or of the whole [`Story`] where it
/// needs more (the backend, another store on the same database).
pub trait Telling<Takes> {
    fn tell(self, s: Story) -> impl Future<Output = ()>;
}

/// [`Telling`] by an `async fn(store: &Store)`.
pub struct TheStore;

/// [`Telling`] by an `async fn(s: Story)`.
pub struct TheStory;

impl<F: AsyncFnOnce(&Store)> Telling<TheStore> for F {
    async fn tell(self, s: Story) {
        self(&s.store).await
    }
}

impl<F, Fut> Telling<TheStory> for F
where
    F: FnOnce(Story) -> Fut,
    Fut: Future<Output = ()>,
{
    async fn tell(self, s: Story) {
        self(s).await
    }
}

/// Runs `story` on `backend`; a backend that is not available here is reported and skipped.
pub async fn run<Takes>(backend: Backend, story: impl Telling<Takes>) {
    let (db, dir) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            (Database::Sqlite(dir.path().to_path_buf()), Some(dir))
        }
        Backend::Postgres => match postgres_database().await {
            Some(db) => (db, None),
            None => {
                eprintln!("skipped: no PostgreSQL server for the store story");
                return;
            }
        },
    };
    let store = Store::open(&db, Limits::HOSTED, T0)
        .await
        .unwrap_or_else(|e| panic!("opening {backend:?} on {db:?}: {e}"));
    story
        .tell(Story {
            store,
            db,
            backend,
            _dir: dir,
        })
        .await;
}

/// One test per backend for the story `async fn $name` in the same file: `$name::sqlite`,
/// `$name::postgres`. Multi-threaded, so stories with concurrent callers really race.
macro_rules! story {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::store::story::run($crate::store::story::Backend::Sqlite, super::$name)
                        .await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::store::story::run($crate::store::story::Backend::Postgres, super::$name)
                        .await
                }
            }
        )*
    };
}

mod admin;
mod clears_acks;
mod devices_pairing;
mod heartbeats;
mod keys;
mod queue;
mod sends_limits;
mod streams;
mod upkeep;
mod urgent;
mod users_tokens;

// ---- what stories are made of ----

pub fn limits(
    token_burst: u64,
    token_monthly: u64,
    receiver_daily: u64,
    ip_minute: u64,
    ip_hour: u64,
) -> Limits {
    Limits {
        token_burst,
        token_monthly,
        receiver_daily,
        ip_minute,
        ip_hour,
    }
}

/// A user with one token; returns the user, the token and its secret.
pub async fn user_with_token(store: &Store, name: &str) -> (UserRecord, TokenRecord, Secret) {
    let user = store.add_user(name, T0).await.unwrap();
    let (token, secret) = token_of(store, name, "ci").await;
    (user, token, secret)
}

/// A user with one token and `devices` paired in this order: how most stories begin.
pub async fn user_with<const N: usize>(
    store: &Store,
    name: &str,
    devices: [NewDevice; N],
) -> (UserRecord, TokenRecord, [DeviceRecord; N]) {
    let (user, token, _) = user_with_token(store, name).await;
    let mut paired = Vec::with_capacity(N);
    for new in devices {
        paired.push(device(store, name, new).await);
    }
    let paired = paired
        .try_into()
        .unwrap_or_else(|_| unreachable!("one record per device"));
    (user, token, paired)
}

pub async fn token_of(store: &Store, user: &str, label: &str) -> (TokenRecord, Secret) {
    token_at(store, user, label, T0).await
}

/// A plain token of `user` labelled `label`, created at `now`.
pub async fn token_at(store: &Store, user: &str, label: &str, now: i64) -> (TokenRecord, Secret) {
    let new = NewToken::plain(user, label);
    store.create_token(new, now).await.unwrap()
}

pub fn android(label: &str) -> NewDevice {
    NewDevice {
        label: label.into(),
        device_type: DeviceType::Android,
        fcm_token: Some(format!("fcm-{label}")),
        public_key: None,
        webpush: None,
    }
}

pub fn extension(label: &str) -> NewDevice {
    NewDevice {
        label: label.into(),
        device_type: DeviceType::Extension,
        fcm_token: None,
        public_key: None,
        webpush: None,
    }
}

pub fn subscription(label: &str) -> WebPushAddress {
    WebPushAddress {
        endpoint: format!("https://push.example/{label}"),
        p256dh: format!("p256dh-{label}"),
        auth: format!("auth-{label}"),
    }
}

pub fn webpush(label: &str) -> NewDevice {
    NewDevice {
        label: label.into(),
        device_type: DeviceType::Webpush,
        fcm_token: None,
        public_key: None,
        webpush: Some(subscription(label)),
    }
}

/// Pairs a device directly (as `reflecto admin` does) and returns its record.
pub async fn device(store: &Store, user: &str, new: NewDevice) -> DeviceRecord {
    store.add_device(user, new, T0).await.unwrap().device
}

pub const ENVELOPE: &str = r#"{"type":"notification","payload":{"message":"m"},"source":"ci"}"#;

/// A send of `id` by `token` to `targets` in clear, accepted at `now`, live one minute.
pub fn send(token: &TokenRecord, id: &str, targets: &[&DeviceRecord], now: i64) -> NewSend {
    NewSend {
        message_id: id.into(),
        user_id: token.user_id,
        token_id: token.id.clone(),
        envelope: Some(ENVELOPE.into()),
        targets: targets
            .iter()
            .map(|d| Target::clear(d.id.clone(), d.device_type))
            .collect(),
        priority: Priority::Default,
        created_at: now,
        expires_at: now + MINUTE,
        month: limits::month_key(now),
        idempotency: None,
        touch_token: false,
        key: None,
        responses: Vec::new(),
        urgency: None,
    }
}

/// A send of `id` with `key`.
pub fn keyed(
    token: &TokenRecord,
    id: &str,
    key: &str,
    targets: &[&DeviceRecord],
    now: i64,
) -> NewSend {
    NewSend {
        key: Some(key.into()),
        ..send(token, id, targets, now)
    }
}

/// Accepts `send` and insists it was accepted.
pub async fn accept(store: &Store, send: NewSend) -> Vec<limits::LayerStatus> {
    let id = send.message_id.clone();
    match store.accept_send(send).await {
        Ok(AcceptOutcome::Accepted(statuses)) => statuses,
        other => panic!("{id} was not accepted: {other:?}"),
    }
}

/// The status of message `id`, which `user_id` must own.
pub async fn status_of(store: &Store, id: &str, user_id: i64) -> MessageStatus {
    store
        .message_status(id, user_id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{id} has no status"))
}

/// Clears `which` of `user`'s messages at `now`; the message must be there.
pub async fn clear(store: &Store, user: &UserRecord, which: MessageRef, now: i64) -> Cleared {
    store
        .clear_message(user.id, which, now)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{} has no message to clear", user.name))
}

/// The state of each delivery of a message, in target order.
pub async fn delivery_states(store: &Store, id: &str, user_id: i64) -> Vec<DeliveryState> {
    let status = status_of(store, id, user_id).await;
    status.deliveries.into_iter().map(|d| d.state).collect()
}

/// [`delivery_states`] as the words the API uses.
pub async fn states(store: &Store, id: &str, user_id: i64) -> Vec<String> {
    let states = delivery_states(store, id, user_id).await;
    states.iter().map(ToString::to_string).collect()
}

/// The status of `layer` among `statuses`.
pub fn layer(statuses: &[limits::LayerStatus], layer: limits::Layer) -> limits::LayerStatus {
    *statuses
        .iter()
        .find(|s| s.layer == layer)
        .unwrap_or_else(|| panic!("no {layer:?} in {statuses:?}"))
}

/// The jobs a worker of `channels` claims at `now`, up to `limit`, each leased for a minute.
pub(super) async fn claim(
    store: &Store,
    now: i64,
    limit: usize,
    channels: &[Channel],
) -> Vec<ClaimedJob> {
    store.claim_due(now, limit, MINUTE, channels).await.unwrap()
}

/// The lease of the job of message `id` among `claimed`.
pub(super) fn lease_of(claimed: &[ClaimedJob], id: &str) -> Lease {
    let job = claimed.iter().find(|j| j.message_id == id);
    job.unwrap_or_else(|| panic!("no job of {id} claimed"))
        .lease()
}

/// Lands one worker's outcome for the job it holds under `lease`.
pub(super) async fn complete(store: &Store, lease: Lease, outcome: JobOutcome, now: i64) {
    store
        .complete_jobs(vec![(lease, outcome)], now)
        .await
        .unwrap();
}

/// Delivers every due FCM and Web Push job, as a worker whose sends all succeed; returns
/// them.
pub(super) async fn deliver_due(store: &Store, now: i64) -> Vec<ClaimedJob> {
    let claimed = claim(store, now, 100, &Channel::ALL).await;
    let outcomes = claimed
        .iter()
        .map(|j| (j.lease(), JobOutcome::Delivered))
        .collect();
    store.complete_jobs(outcomes, now).await.unwrap();
    claimed
}

/// The events waiting on a desktop's stream (the first ten).
pub(super) async fn stream_of(store: &Store, device: &DeviceRecord) -> Vec<StreamEvent> {
    store.stream_events(&device.id, 0, 10).await.unwrap()
}

/// How many of `seqs` an ack on `device`'s stream took.
pub(super) async fn ack_count(
    store: &Store,
    device: &DeviceRecord,
    seqs: Vec<i64>,
    now: i64,
) -> usize {
    store
        .ack_stream_events(&device.id, seqs, now)
        .await
        .unwrap()
        .len()
}

/// Acks everything pending on a desktop's stream; returns the events.
pub(super) async fn ack_all(store: &Store, device: &DeviceRecord, now: i64) -> Vec<StreamEvent> {
    let events = store.stream_events(&device.id, 0, 100).await.unwrap();
    let seqs = events.iter().map(|e| e.seq).collect();
    store
        .ack_stream_events(&device.id, seqs, now)
        .await
        .unwrap();
    events
}
