//! A fake Google for the dispatch tests: an OAuth token endpoint that verifies the RS256 JWT
//! against the test key, and FCM HTTP v1 `messages:send` that records every request and answers
//! from a per-registration-token script (errors with Retry-After, delays, dropped connections), plus an optional delay on every answer
//! and a gate that holds every answer until the test opens it. [`FakeFcm::worker`] is a relay's
//! real FCM worker sending to it.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reflecto::delivery::fcm::{FcmChannel, FcmClient};
use reflecto::delivery::{Channels, Worker, WorkerSettings};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::EncodePrivateKey;
use rsa::signature::Verifier;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const PROJECT: &str = "test-proj";
pub const CLIENT_EMAIL: &str = "relay@test-proj.iam.gserviceaccount.com";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// How the fake answers one `messages:send`.
#[derive(Debug, Clone)]
pub enum Reply {
    Ok,
    /// An FCM error with its FcmError `errorCode` (or none), and an optional Retry-After.
    Error {
        status: u16,
        code: Option<&'static str>,
        retry_after: Option<&'static str>,
    },
    /// A payload error (google.rpc.BadRequest), not an FcmError.
    BadPayload,
    /// The access token is refused with a bare 401 (no FcmError), as when it expired.
    ExpireToken,
    /// Answers OK after a pause.
    Delay(Duration),
    /// Closes the connection without answering.
    Drop,
}

fn key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("test RSA key"))
}

#[derive(Default)]
struct Inner {
    scripts: HashMap<String, VecDeque<Reply>>,
    default_delay: Option<Duration>,
    valid_tokens: HashSet<String>,
    sends: Vec<(Instant, Value)>,
    /// Sends being answered now, and the most ever at once.
    in_flight: usize,
    max_in_flight: usize,
}

pub struct FakeFcm {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    token_requests: Arc<AtomicUsize>,
    held: Arc<tokio::sync::watch::Sender<bool>>,
    _task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    token_requests: Arc<AtomicUsize>,
    /// While true, every send (recorded on arrival) waits before it is answered.
    held: Arc<tokio::sync::watch::Sender<bool>>,
    token_uri: String,
    public: RsaPublicKey,
}

impl FakeFcm {
    pub async fn start() -> FakeFcm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let inner = Arc::new(Mutex::new(Inner::default()));
        let token_requests = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(tokio::sync::watch::Sender::new(false));
        let shared = Shared {
            inner: inner.clone(),
            token_requests: token_requests.clone(),
            held: held.clone(),
            token_uri: format!("{url}/token"),
            public: key().to_public_key(),
        };
        let app = Router::new()
            .route("/token", post(token))
            .route("/v1/projects/{project}/{send}", post(send))
            .with_state(shared);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeFcm {
            url,
            inner,
            token_requests,
            held,
            _task: task,
        }
    }

    /// A service-account key file whose `token_uri` points at this fake.
    pub fn key_file(&self) -> tempfile::NamedTempFile {
        let pem = key().to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let json = json!({
            "type": "service_account", "project_id": PROJECT, "private_key_id": "k1",
            "private_key": pem.as_str(), "client_email": CLIENT_EMAIL, "client_id": "1",
            "token_uri": format!("{}/token", self.url),
        });
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), json.to_string()).unwrap();
        file
    }

    /// The FCM worker of `relay` (a running relay's context) sending here through the real
    /// client: 4 sends at once, 30 s leases, 3 attempts.
    pub fn worker(&self, relay: Arc<reflecto::relay::Relay>) -> Worker {
        self.worker_with(
            relay,
            WorkerSettings {
                concurrency: 4,
                lease_ms: 30_000,
                max_attempts: 3,
                ..WorkerSettings::default()
            },
        )
    }

    /// The same with `settings`.
    pub fn worker_with(
        &self,
        relay: Arc<reflecto::relay::Relay>,
        settings: WorkerSettings,
    ) -> Worker {
        // The client reads the key when it is made, so the file may go at once.
        let key = self.key_file();
        let client = FcmClient::from_key_file(key.path(), &self.url).unwrap();
        Worker::new(relay, Channels::fcm(FcmChannel::new(client)), settings)
    }

    /// Queues answers for requests to this registration token (then OK).
    pub fn script(&self, registration: &str, replies: Vec<Reply>) {
        self.inner
            .lock()
            .unwrap()
            .scripts
            .entry(registration.to_owned())
            .or_default()
            .extend(replies);
    }

    pub fn delay_every_send(&self, delay: Duration) {
        self.inner.lock().unwrap().default_delay = Some(delay);
    }

    /// From now on every send is recorded on arrival but not answered until [`Self::release`]:
    /// the relay that sent it holds its job's lease meanwhile.
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Answers the held sends and stops holding.
    pub fn release(&self) {
        self.held.send_replace(false);
    }

    /// Sends received and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.inner.lock().unwrap().in_flight
    }

    /// How many times each message id was received.
    pub fn count_by_id(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (_, m) in &self.inner.lock().unwrap().sends {
            let id = m["message"]["data"]["id"].as_str().unwrap_or_default();
            *counts.entry(id.to_owned()).or_default() += 1;
        }
        counts
    }

    /// Every `messages:send` body received, in order.
    pub fn sends(&self) -> Vec<Value> {
        self.inner
            .lock()
            .unwrap()
            .sends
            .iter()
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// When each message id first arrived (for latency measurement).
    #[allow(dead_code)] // used by benches/delivery.rs, which includes this file
    pub fn first_arrivals(&self) -> HashMap<String, Instant> {
        let mut first = HashMap::new();
        for (at, m) in &self.inner.lock().unwrap().sends {
            first
                .entry(
                    m["message"]["data"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
                .or_insert(*at);
        }
        first
    }

    /// The most `messages:send` requests the fake was answering at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.inner.lock().unwrap().max_in_flight
    }

    pub fn token_requests(&self) -> usize {
        self.token_requests.load(Ordering::SeqCst)
    }
}

/// JWT segments are base64url; gcp_auth pads them, as Google accepts.
fn b64(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()
}

fn b64_json(part: &str) -> Option<Value> {
    serde_json::from_slice(&b64(part)?).ok()
}

/// OAuth: verify the JWT bearer assertion, then issue a fresh access token.
async fn token(State(s): State<Shared>, body: String) -> Response {
    s.token_requests.fetch_add(1, Ordering::SeqCst);
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let refuse = |why: &str| {
        eprintln!("fake OAuth refused the assertion: {why}");
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return refuse("grant_type");
    }
    let Some(jwt) = form.get("assertion") else {
        return refuse("no assertion");
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return refuse("not a JWT");
    }
    let (Some(header), Some(claims)) = (b64_json(parts[0]), b64_json(parts[1])) else {
        return refuse("undecodable");
    };
    let Some(sig) = b64(parts[2]) else {
        return refuse("signature encoding");
    };
    let verifier = VerifyingKey::<sha2::Sha256>::new(s.public.clone());
    let signed = format!("{}.{}", parts[0], parts[1]);
    let valid = Signature::try_from(sig.as_slice())
        .is_ok_and(|sig| verifier.verify(signed.as_bytes(), &sig).is_ok());
    if header["alg"] != "RS256" || !valid {
        return refuse("bad signature");
    }
    let now = chrono::Utc::now().timestamp();
    let ok_claims = claims["iss"] == CLIENT_EMAIL
        && claims["scope"] == SCOPE
        && claims["aud"] == s.token_uri.as_str()
        && claims["exp"]
            .as_i64()
            .is_some_and(|exp| exp > now && exp <= claims["iat"].as_i64().unwrap_or(0) + 3600);
    if !ok_claims {
        return refuse("bad claims");
    }
    let access = format!("ya29.fake-{}", s.token_requests.load(Ordering::SeqCst));
    s.inner.lock().unwrap().valid_tokens.insert(access.clone());
    axum::Json(json!({"access_token": access, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

fn fcm_error(status: u16, code: Option<&str>) -> Value {
    let name = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    let details: Vec<Value> = code.map(|c| json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": c})).into_iter().collect();
    json!({"error": {"code": status, "message": "fake", "status": name, "details": details}})
}

/// Why FCM (or our contract) would refuse this message's `data`, if it would.
fn data_refusal(message: &Value) -> Option<String> {
    let data = message["message"]["data"].as_object()?;
    if let Some((key, _)) = data.iter().find(|(_, v)| !v.is_string()) {
        return Some(format!("data.{key} must be a string"));
    }
    if data.get("type").and_then(Value::as_str) != Some("clear") {
        return None;
    }
    let id = data.get("id").and_then(Value::as_str).unwrap_or_default();
    let well_formed = id.len() == 36
        && id.starts_with("msg_")
        && id[4..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if data.len() != 2 || !well_formed {
        return Some(format!("a clear's data is exactly {{type, id}}: {data:?}"));
    }
    if message["message"]["android"].get("collapse_key").is_some() {
        return Some("a clear must not carry a collapse_key".into());
    }
    None
}

/// Counts a send as answered when its handler ends, however it ends.
struct InFlight(Arc<Mutex<Inner>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.0.lock() {
            inner.in_flight -= 1;
        }
    }
}

async fn send(
    State(s): State<Shared>,
    Path((project, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    assert_eq!(
        (project.as_str(), action.as_str()),
        (PROJECT, "messages:send")
    );
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let message: Value = serde_json::from_str(&body).expect("FCM body is JSON");
    let registration = message["message"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (reply, delay) = {
        let mut inner = s.inner.lock().unwrap();
        if !inner.valid_tokens.contains(&bearer) {
            return (StatusCode::UNAUTHORIZED, axum::Json(fcm_error(401, None))).into_response();
        }
        let reply = inner
            .scripts
            .get_mut(&registration)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Reply::Ok);
        if let Reply::ExpireToken = reply {
            inner.valid_tokens.remove(&bearer);
            return (StatusCode::UNAUTHORIZED, axum::Json(fcm_error(401, None))).into_response();
        }
        // SPEC §1.15: a collapse key, when given, is a non-empty string, as FCM insists.
        if let Some(collapse) = message["message"]["android"].get("collapse_key")
            && collapse.as_str().is_none_or(|k| k.is_empty())
        {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
                    "message": "android.collapse_key must be a non-empty string"}})),
            )
                .into_response();
        }
        // FCM's data values are all strings; a clear (SPEC §1.15) is exactly {type, id} and
        // never collapses (it would replace a newer message of the key held for the device).
        if let Some(refusal) = data_refusal(&message) {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
                    "message": refusal}})),
            )
                .into_response();
        }
        inner.sends.push((Instant::now(), message));
        inner.in_flight += 1;
        inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
        (reply, inner.default_delay)
    };
    let _answering = InFlight(s.inner.clone());
    let _ = s.held.subscribe().wait_for(|held| !held).await;
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    match reply {
        Reply::Ok | Reply::ExpireToken => axum::Json(json!({"name": format!("projects/{PROJECT}/messages/1")})).into_response(),
        Reply::Delay(pause) => {
            tokio::time::sleep(pause).await;
            axum::Json(json!({"name": format!("projects/{PROJECT}/messages/2")})).into_response()
        }
        Reply::Error { status, code, retry_after } => {
            let mut response = (StatusCode::from_u16(status).unwrap(), axum::Json(fcm_error(status, code))).into_response();
            if let Some(ra) = retry_after {
                response.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            response
        }
        Reply::BadPayload => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "bad data",
                "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": "message.data"}]}]}})),
        )
            .into_response(),
        // Ends this connection's task without an answer: the client sees the connection close.
        Reply::Drop => std::panic::resume_unwind(Box::new("fake FCM drops the connection")),
    }
}
