//! What the relay keeps, as both backends hand it over: users, tokens, devices, sends, jobs and
//! their states. Records only; the SQL that reads and writes them lives in `sqlite/` and
//! `postgres/`.

use super::limits::{LayerStatus, Refusal};
use crate::api::status::DeliveryState;
use crate::api::token::Secret;
use crate::api::{DeviceType, Priority};
use serde::Serialize;

/// The life of one delivery job. `Queued`/`Leased` jobs are worked by a delivery worker (FCM,
/// Web Push); `Pending` jobs wait for an extension device to acknowledge them on its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Leased,
    Pending,
    Delivered,
    Failed,
    Expired,
    /// A later send with the same key replaced the message before this job ended (SPEC
    /// §1.15); final, never delivered or retried.
    Superseded,
    /// The sender cleared the message before this job ended (SPEC §1.15); final.
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 8] = [
        JobState::Queued,
        JobState::Leased,
        JobState::Pending,
        JobState::Delivered,
        JobState::Failed,
        JobState::Expired,
        JobState::Superseded,
        JobState::Cancelled,
    ];

    /// The stored name (`jobs.state`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Leased => "leased",
            JobState::Pending => "pending",
            JobState::Delivered => "delivered",
            JobState::Failed => "failed",
            JobState::Expired => "expired",
            JobState::Superseded => "superseded",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// What the sender sees of a job in this state: waiting in any form is `queued`.
    pub fn shown(self) -> DeliveryState {
        match self {
            JobState::Queued | JobState::Leased | JobState::Pending => DeliveryState::Queued,
            JobState::Delivered => DeliveryState::Delivered,
            JobState::Failed => DeliveryState::Failed,
            JobState::Expired => DeliveryState::Expired,
            JobState::Superseded => DeliveryState::Superseded,
            JobState::Cancelled => DeliveryState::Cancelled,
        }
    }

    /// Where a new job of this device type starts.
    pub fn initial(device_type: DeviceType) -> JobState {
        match device_type {
            DeviceType::Android | DeviceType::Webpush => JobState::Queued,
            DeviceType::Extension => JobState::Pending,
        }
    }
}

/// One desktop stream event an ack made delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct AckedEvent {
    pub message_id: String,
    pub kind: JobKind,
    /// When its message was accepted (for the dispatch latency metric).
    pub accepted_at: i64,
}

/// What a job delivers: the message itself, or a `clear` that removes it from the screen of a
/// device that received it (SPEC §1.15). Clears ride the same queue, leases, retries and
/// wake-ups as messages. Stored as `jobs.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum JobKind {
    #[default]
    Message,
    Clear,
    /// An urgent message delivered again (SPEC §1.17): the message's own payload, scheduled
    /// by the maintenance beat every `retry` until it is acknowledged, cleared or expires. Not
    /// shown in the status (which counts them as `repeat.repeats`).
    Repeat,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Message => "message",
            JobKind::Clear => "clear",
            JobKind::Repeat => "repeat",
        }
    }

    /// Whether the job carries the message itself (a first delivery or a repeat).
    pub fn is_message(self) -> bool {
        self != JobKind::Clear
    }

    pub fn parse(s: &str) -> Option<JobKind> {
        [JobKind::Message, JobKind::Clear, JobKind::Repeat]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// What a job's own payload bytes are. Stored as `jobs.payload_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// A libsodium sealed box of `{"id","envelope"}` to the device's public key (SPEC §1.12).
    Sealed,
    /// The RFC 8291 aes128gcm body of `{"id","envelope"}` for a Web Push subscription (§1.13).
    WebPush,
}

impl PayloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadKind::Sealed => "sealed",
            PayloadKind::WebPush => "webpush",
        }
    }
}

/// The closed set of channels a delivery worker sends through; a job's channel follows from
/// its device type (`jobs.device_type`). Desktop (extension) jobs have none: the relay's own
/// stream delivers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Fcm,
    WebPush,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Fcm, Channel::WebPush];

    /// The channel that delivers to this kind of device; none for desktops (they stream).
    pub fn of(device_type: DeviceType) -> Option<Channel> {
        match device_type {
            DeviceType::Android => Some(Channel::Fcm),
            DeviceType::Webpush => Some(Channel::WebPush),
            DeviceType::Extension => None,
        }
    }

    /// The `jobs.device_type` this channel works.
    pub fn device_type(self) -> &'static str {
        match self {
            Channel::Fcm => "android",
            Channel::WebPush => "webpush",
        }
    }

    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Fcm => "fcm",
            Channel::WebPush => "webpush",
        }
    }

    pub fn of_device_type(kind: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.device_type() == kind)
    }
}

/// Where a claimed job goes, read from its device at claim time.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryTarget {
    /// An FCM registration token.
    Fcm(String),
    /// A Web Push subscription.
    WebPush(WebPushAddress),
}

/// Bytes prepared at accept time for one device alone: the job delivers exactly these.
#[derive(Clone, PartialEq)]
pub struct JobPayload {
    pub kind: PayloadKind,
    pub bytes: Vec<u8>,
}

// Ciphertext is not secret, but a Debug dump of bytes helps nobody and bloats logs.
impl std::fmt::Debug for JobPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "JobPayload({}, {} bytes)",
            self.kind.as_str(),
            self.bytes.len()
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    pub job_id: i64,
    /// Which claim of this job this is: an outcome or a renewal lands only under the lease it
    /// was claimed with ([`ClaimedJob::lease`]).
    pub lease_token: i64,
    pub message_id: String,
    pub device_id: String,
    pub channel: Channel,
    /// `None` when the device was removed (or lost its address) after the job was queued.
    pub target: Option<DeliveryTarget>,
    /// The plaintext envelope; `None` when the message keeps none (every target sealed).
    pub envelope: Option<String>,
    /// This job's own payload (a sealed box), delivered instead of the envelope.
    pub payload: Option<JobPayload>,
    /// The send's priority; `None` for jobs accepted before it was recorded on the job.
    pub priority: Option<Priority>,
    /// Attempts including this one.
    pub attempts: i64,
    pub created_at: i64,
    pub expires_at: i64,
    /// The send's key (SPEC §1.15): FCM's collapse key, Web Push's `Topic`.
    pub key: Option<String>,
    /// A clear job delivers only the message id (no envelope, no payload, no collapse key).
    pub kind: JobKind,
}

impl ClaimedJob {
    /// The lease this claim holds, to renew it or record the attempt's outcome.
    pub fn lease(&self) -> Lease {
        Lease {
            job_id: self.job_id,
            token: self.lease_token,
        }
    }
}

/// One claim of a job: the job and a token that changes at every claim. A relay that stalled
/// past its lease holds a token the job no longer has, so its late outcome or renewal cannot
/// land on the lease another relay took since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub job_id: i64,
    pub token: i64,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    Delivered,
    RetryAt {
        at_ms: i64,
        error: String,
    },
    DeadLetter {
        reason: String,
    },
    Expired,
    /// The device can no longer be reached: it is marked so and all its open jobs fail.
    DeviceUnreachable {
        error: String,
    },
}

/// Where a new job for a device goes on its stream (the job's `seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamPlace {
    /// A desktop's next sequence number.
    Next(i64),
    /// A channel device (FCM, Web Push): it has no stream.
    NoStream,
    /// A desktop device removed since its targets were read: its stream is gone, and it gets
    /// no job.
    Gone,
}

impl StreamPlace {
    /// The job's `seq` column: its number on a desktop's stream, else NULL.
    pub fn column(self) -> Option<i64> {
        match self {
            StreamPlace::Next(seq) => Some(seq),
            StreamPlace::NoStream | StreamPlace::Gone => None,
        }
    }
}

/// One event on an extension device's stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    pub seq: i64,
    pub message_id: String,
    /// The plaintext envelope; `None` when the message keeps none.
    pub envelope: Option<String>,
    /// The job's own payload (a sealed box), sent instead of the envelope.
    pub payload: Option<JobPayload>,
    /// `event: notification`, or `event: clear` with only the id.
    pub kind: JobKind,
}

/// Everything one accepted send writes.
#[derive(Debug, Clone)]
pub struct NewSend {
    pub message_id: String,
    pub user_id: i64,
    pub token_id: String,
    /// The plaintext envelope, kept only while some target needs it in clear (SPEC §1.12).
    pub envelope: Option<String>,
    pub targets: Vec<Target>,
    /// What a channel needs without the plaintext (android priority, later Web Push urgency).
    pub priority: Priority,
    pub created_at: i64,
    pub expires_at: i64,
    /// Calendar month (`YYYY-MM`, UTC) the send counts against.
    pub month: String,
    pub idempotency: Option<(String, StoredResponse)>,
    /// Set at most about once a minute per token, to keep the hot path lean.
    pub touch_token: bool,
    /// The send's `key` (SPEC §1.15): the owner's earlier messages with it are superseded in
    /// the same commit.
    pub key: Option<String>,
    /// The responses its actions offer (SPEC §1.16): what an acknowledgement may say.
    pub responses: Vec<String>,
    /// Repeats, a callback or a Pushover receipt (SPEC §1.17), written in the same commit.
    pub urgency: Option<Urgency>,
}

/// What a send asks beyond its first delivery (SPEC §1.17). Stored as one `urgent` row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Urgency {
    /// Deliver again every `retry_ms` until `expire_ms` after the send.
    pub repeat: Option<RepeatPlan>,
    /// Where to POST the signed `acknowledged`/`expired` event.
    pub callback: Option<String>,
    /// The Pushover receipt (30 characters of `[A-Za-z0-9]`), for priority 2 only.
    pub receipt: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepeatPlan {
    pub retry_ms: i64,
    pub expire_ms: i64,
}

/// `repeat` of the status (SPEC §1.17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatStatus {
    pub retry_ms: i64,
    pub expire_ms: i64,
    pub expires_at: i64,
    /// Rounds of repeats scheduled after the first delivery.
    pub repeats: i64,
}

/// `callback` of the status (SPEC §1.17): `pending` until it is due and delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackStatus {
    pub state: CallbackState,
    /// When it was delivered or given up; `None` while pending.
    pub at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackState {
    Pending,
    Delivered,
    Failed,
}

impl CallbackState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackState::Pending => "pending",
            CallbackState::Delivered => "delivered",
            CallbackState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<CallbackState> {
        [
            CallbackState::Pending,
            CallbackState::Delivered,
            CallbackState::Failed,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A Pushover receipt as `GET /1/receipts/{receipt}.json` shows it (SPEC §1.17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRecord {
    pub message_id: String,
    /// The owner: any of their tokens may read it.
    pub user_id: i64,
    /// The owner's name (`acknowledged_by`).
    pub user: String,
    pub acknowledged_at: Option<i64>,
    /// The label of the device that acknowledged first (`None`: removed since, or nobody).
    pub acknowledged_by_device: Option<String>,
    /// When a delivery of it (the first or a repeat) last ended delivered.
    pub last_delivered_at: Option<i64>,
    pub expires_at: i64,
    /// When a callback was delivered, if one was.
    pub called_back_at: Option<i64>,
}

/// A callback due to be sent (SPEC §1.17), claimed by one relay under a lease.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackJob {
    pub message_id: String,
    pub url: String,
    /// `acknowledged` or `expired`.
    pub kind: String,
    /// The SHA-256 of the sending token: the signing key.
    pub key: Vec<u8>,
    pub acknowledged: Option<Acknowledgement>,
    /// Attempts including this one.
    pub attempts: i64,
    /// After this, a failed attempt is final.
    pub give_up_at: i64,
}

// The key signs callbacks: never in debug output.
impl std::fmt::Debug for CallbackJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackJob")
            .field("message_id", &self.message_id)
            .field("kind", &self.kind)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// What became of one callback attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    Delivered,
    RetryAt(i64),
    Failed,
}

impl CallbackOutcome {
    /// `(callback_state, callback_run_at, callback_at)` this outcome writes (`None` state or
    /// time: unchanged).
    pub fn columns(self, now: i64) -> (Option<&'static str>, Option<i64>, Option<i64>) {
        match self {
            CallbackOutcome::Delivered => {
                (Some(CallbackState::Delivered.as_str()), None, Some(now))
            }
            CallbackOutcome::Failed => (Some(CallbackState::Failed.as_str()), None, Some(now)),
            CallbackOutcome::RetryAt(at) => (None, Some(at), None),
        }
    }
}

/// Callbacks are retried with back-off for this long (SPEC §1.17).
pub const CALLBACK_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// What the maintenance beat's repeat round did: the devices that got a repeat (whom to wake).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RepeatRound {
    pub targets: Vec<Target>,
    /// Messages whose `expire` ran out in this round (their repeats stopped).
    pub expired: usize,
}

/// One target device of a send, with the payload prepared for it alone, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub device_id: String,
    pub device_type: DeviceType,
    /// `None`: the job is delivered from the message's plaintext envelope.
    pub payload: Option<JobPayload>,
}

impl Target {
    /// A target delivered in clear.
    pub fn clear(device_id: String, device_type: DeviceType) -> Target {
        Target {
            device_id,
            device_type,
            payload: None,
        }
    }
}

/// A response kept for `Idempotency-Key` replays.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// What became of a send the store was asked to accept.
#[derive(Debug, Clone, PartialEq)]
pub enum AcceptOutcome {
    /// Committed and charged: the token and receiver layers after the charge.
    Accepted(Vec<LayerStatus>),
    /// The key was used by a request that committed first (on any relay): answer with its
    /// response; nothing was charged.
    Replayed(StoredResponse),
    /// A token or receiver layer is exhausted: nothing was written or charged.
    Refused(Refusal),
}

/// One device's delivery of a message, as `GET /v1/messages/{id}` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub device_id: String,
    /// The device's label, so a sender recognises it (`None` once the device is removed).
    pub label: Option<String>,
    pub device_type: DeviceType,
    pub state: DeliveryState,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<i64>,
    /// When this device first acknowledged the message (SPEC §1.16).
    pub acknowledged_at: Option<i64>,
}

impl Delivery {
    /// The same delivery, acknowledged by its device at `at` (if it was).
    pub fn acknowledged(self, at: Option<i64>) -> Delivery {
        Delivery {
            acknowledged_at: at,
            ..self
        }
    }

    /// One job as its sender sees it: waiting in any form shows as `queued`, and only a job
    /// waiting in the queue has a next attempt time (`run_at`).
    pub fn of_job(
        device_id: String,
        label: Option<String>,
        device_type: DeviceType,
        state: JobState,
        attempts: i64,
        last_error: Option<String>,
        run_at: i64,
    ) -> Delivery {
        Delivery {
            device_id,
            label,
            device_type,
            state: state.shown(),
            attempts,
            last_error,
            next_attempt_at: (state == JobState::Queued).then_some(run_at),
            acknowledged_at: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageStatus {
    pub id: String,
    pub created_at: i64,
    /// The send's `key`, if it had one (SPEC §1.15).
    pub key: Option<String>,
    /// When the sender cleared it (SPEC §1.15).
    pub cleared_at: Option<i64>,
    /// Its first acknowledgement (SPEC §1.16).
    pub acknowledged: Option<Acknowledgement>,
    pub deliveries: Vec<Delivery>,
    /// Its repeats, if it asked for them (SPEC §1.17).
    pub repeat: Option<RepeatStatus>,
    /// Its callback, if it named one (SPEC §1.17).
    pub callback: Option<CallbackStatus>,
}

/// A person dealt with a message on a device (SPEC §1.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    pub at: i64,
    pub device_id: String,
    pub response: Option<String>,
}

/// Which message a clear names: by id, or the owner's newest with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageRef {
    Id(String),
    Key(String),
}

/// What a clear did (SPEC §1.15): jobs that had not ended became `cancelled`, and a `clear`
/// job was queued for each device that had received the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Cleared {
    pub message_id: String,
    pub cancelled: u64,
    pub cleared: u64,
    /// The devices that got a clear job: whom to wake.
    pub targets: Vec<Target>,
}

/// What became of an acknowledgement (SPEC §1.16).
#[derive(Debug, Clone, PartialEq)]
pub enum AckOutcome {
    /// No such message, or this device was not one of its targets.
    NotFound,
    /// The response is not one of the message's responses.
    InvalidResponse,
    /// Recorded. `first` is the message's first acknowledgement (this one, or an earlier
    /// one); `cleared` is set when this one was first and cleared the message elsewhere.
    Acknowledged {
        first: Acknowledgement,
        cleared: Option<Cleared>,
    },
}

/// A clear job waits this long for its device (the longest ttl a message may have): a device
/// offline longer still shows nothing newer than its last notification.
pub const CLEAR_TTL_MS: i64 = crate::api::MAX_TTL_SECONDS as i64 * 1000;

/// `messages.responses`: the responses space-separated (a response holds no space), `None`
/// when the message offers none.
pub fn responses_column(responses: &[String]) -> Option<String> {
    (!responses.is_empty()).then(|| responses.join(" "))
}

/// Whether `messages.responses` offers `response`.
pub fn offers(column: Option<&str>, response: &str) -> bool {
    column.is_some_and(|c| c.split(' ').any(|r| r == response))
}

/// Idempotency keys are honoured this long.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Receiver sends are kept this long: the `receiver_daily` window.
pub const RECEIVER_WINDOW_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceRecord {
    pub id: String,
    pub user_id: i64,
    pub user: String,
    pub label: String,
    #[serde(rename = "type")]
    pub device_type: DeviceType,
    #[serde(skip)]
    pub fcm_token: Option<String>,
    /// Where a webpush device is reached.
    #[serde(skip)]
    pub webpush: Option<WebPushAddress>,
    /// X25519 public key (base64url, no padding): deliveries to this device are sealed to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    pub reachable: bool,
    pub created_at: i64,
    /// When the device last showed it is there (its stream connected or it acked, a push or
    /// FCM send to it was accepted); `None`: never.
    pub last_seen_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewDevice {
    pub label: String,
    pub device_type: DeviceType,
    pub fcm_token: Option<String>,
    /// Base64url X25519 public key; validated here and stored without padding.
    pub public_key: Option<String>,
    /// Required for a webpush device, already checked by the caller (keys and endpoint).
    pub webpush: Option<WebPushAddress>,
}

/// A Web Push subscription as stored: the endpoint and the browser's keys (base64url).
#[derive(Clone, PartialEq)]
pub struct WebPushAddress {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

// The endpoint is a capability URL and `auth` a secret: neither belongs in debug output.
impl std::fmt::Debug for WebPushAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebPushAddress").finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub user_id: i64,
    pub user: String,
    pub label: String,
    pub priority_cap: Option<Priority>,
    pub scope_devices: Option<String>,
    pub test: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub user: String,
    pub label: String,
    pub priority_cap: Option<Priority>,
    pub scope_devices: Option<String>,
    pub test: bool,
}

impl NewToken {
    /// A live token of `user` with no priority cap, for every device.
    pub fn plain(user: impl Into<String>, label: impl Into<String>) -> NewToken {
        NewToken {
            user: user.into(),
            label: label.into(),
            priority_cap: None,
            scope_devices: None,
            test: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserRecord {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
}

/// What pairing hands back: the device and its credential (every type since SPEC §1.16).
#[derive(Debug)]
pub struct PairOutcome {
    pub device: DeviceRecord,
    /// The `rfd_live_…` credential, shown once: an extension reads its stream with it, and
    /// every device acknowledges with it.
    pub credential: Secret,
}

/// Who is sending: the live token and its owner's reachable devices (oldest first), read in
/// one go, since every send needs both.
#[derive(Debug, Clone)]
pub struct Sender {
    pub token: TokenRecord,
    pub devices: Vec<DeviceRecord>,
}

/// An admin token (SPEC §1.19): no user, hashed like a sender token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdminTokenRecord {
    pub id: String,
    pub label: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked: bool,
}

/// One change to record in the audit log (SPEC §1.19): never a secret, code or message text.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    pub at: i64,
    /// `cli`, `admin:<token label>` or `device:<id>`.
    pub actor: String,
    /// One of [`crate::api::admin::AUDIT_ACTIONS`].
    pub action: &'static str,
    /// The user name, token id or device id it concerns.
    pub target: String,
    pub ip: Option<String>,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ip: Option<String>,
}

/// Which messages the operator lists: newest first, optionally one user's and only those with
/// a delivery in `state`, after the page that ended with `before`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MessageQuery {
    pub user: Option<String>,
    pub state: Option<JobState>,
    pub before: Option<String>,
    pub limit: usize,
}

/// A message as the operator sees it: metadata and per-device states, never its text.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminMessageRecord {
    pub id: String,
    pub user: String,
    pub token_id: Option<String>,
    pub key: Option<String>,
    pub created_at: i64,
    pub cleared_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    /// (device id, state, when the state last changed), message jobs only.
    pub deliveries: Vec<(String, JobState, i64)>,
}

/// The numbers `GET /v1/admin/status` shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdminCountsRecord {
    pub users: i64,
    pub devices: i64,
    pub tokens: i64,
    pub messages_24h: i64,
    pub delivered_24h: i64,
    pub failed_24h: i64,
    pub expired_24h: i64,
    pub queued: i64,
    pub leased: i64,
    pub pending: i64,
}

/// What the embedded store's WAL checkpoint has done since the store opened (`/metrics`):
/// passes of its thread and those that failed, checkpoints the writer took after a pass
/// (`tails`) and at the log's cap, restarts of the log, and its size after the last commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckpointCounts {
    pub passes: u64,
    pub failed_passes: u64,
    pub tails: u64,
    pub at_cap: u64,
    pub restarts: u64,
    pub log_frames: i64,
}
