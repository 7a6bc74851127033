//! Steps 4–7 of SPEC §1.7 for an authenticated, validated send, one named function each:
//! [`prepare`] (priority cap, envelope, targets, their payloads), [`commit`] (the store's
//! limits and the one write) and [`answer`] (what the commit means for the client).

use super::{Accepted, stored_to_accepted};
use crate::api::sealed;
use crate::api::{
    DeliveredTo, DeviceType, ErrorCode, Priority, SendRequest, SendResponse, Warning,
    token::random_id,
};
use crate::server::AppState;
use crate::server::error::Failure;
use crate::server::limits::{LayerStatus, binding, month_key};
use crate::store::{
    AcceptOutcome, DeviceRecord, JobPayload, NewSend, PayloadKind, RepeatPlan, Sender,
    StoredResponse, Target, TokenRecord, Urgency, WebPushAddress,
};
use crate::validate::devices::{Selectable, select};
use crate::validate::{Validated, build_envelope};

/// Steps 4–7 of SPEC §1.7 for an authenticated, validated request.
pub async fn accept(
    state: &AppState,
    sender: Sender,
    validated: Validated,
    ip_statuses: Vec<LayerStatus>,
    key: Option<&str>,
    receipt: Option<String>,
    now: i64,
) -> Result<Accepted, Failure> {
    // SPEC §1.17: a callback is https to a public address (resolved now, and again when sent).
    if let Some(callback) = &validated.request.callback
        && let Err(reason) =
            crate::relay::callbacks::check_url(callback, state.callback_allow_local).await
    {
        return Err(Failure::new(ErrorCode::InvalidUrl, reason));
    }
    let (mut send, response_json) = prepare(state, &sender, validated, key, now)?;
    // A Pushover emergency's receipt (SPEC §1.17), kept with the urgent row.
    if let Some(receipt) = receipt {
        send.urgency.get_or_insert_with(Urgency::default).receipt = Some(receipt);
    }
    let accepted = Accepted {
        response_json,
        id: send.message_id.clone(),
        rate: None,
        token_id: send.token_id.clone(),
        devices: Some(send.targets.len()),
    };
    let event = crate::api::admin::AdminEvent::Send {
        id: send.message_id.clone(),
        user: sender.token.user.clone(),
        devices: send.targets.iter().map(|t| t.device_id.clone()).collect(),
    };
    let committed = commit(state, send).await?;
    if let AcceptOutcome::Accepted(_) = &committed {
        state.publish_admin(event);
    }
    answer(committed, accepted, ip_statuses, now)
}

/// Steps 4–6 before the store: the priority cap, the envelope and its size, the targets among
/// the owner's devices (read with the token) and their payloads; the send to commit and its
/// 200 body.
fn prepare(
    state: &AppState,
    Sender { token, devices }: &Sender,
    Validated {
        request,
        mut warnings,
    }: Validated,
    key: Option<&str>,
    now: i64,
) -> Result<(NewSend, String), Failure> {
    check_priority_cap(token, request.priority())?;
    let envelope = build_envelope(&request, &token.label)?;
    let scope = token.scope_devices.as_deref();
    let selector = request.device_selector();
    let targets = select(selector, devices, scope, &token.label, &mut warnings);
    let id = random_id("msg_", 32);
    let response_json = response_json(&id, &targets, &warnings)?;
    let sealed = sealed_send(
        id,
        token.user_id,
        &token.id,
        envelope,
        &targets,
        &request,
        now,
    )?;
    let send = NewSend {
        idempotency: key.map(|k| (k.to_owned(), stored_response(&response_json))),
        touch_token: state.should_touch(&token.id, now),
        responses: crate::validate::fields::responses_of(request.actions.as_deref()),
        urgency: urgency(&request),
        ..sealed
    };
    Ok((send, response_json))
}

/// What an urgent send asks beyond its first delivery (SPEC §1.17): repeats, a callback.
fn urgency(request: &crate::api::SendRequest) -> Option<Urgency> {
    let repeat = request
        .retry
        .zip(request.expire)
        .map(|(retry, expire)| RepeatPlan {
            retry_ms: retry as i64 * 1000,
            expire_ms: expire as i64 * 1000,
        });
    (repeat.is_some() || request.callback.is_some()).then(|| Urgency {
        repeat,
        callback: request.callback.clone(),
        receipt: None,
    })
}

/// A notification of the relay's own (a heartbeat's late, back or failed one, SPEC §1.18) to
/// every device of `user_id`, shown as from `source`: built and sealed as a send is, but with
/// no priority cap, scope or limit (the store commits it without charges), no idempotency
/// record, and no warnings to answer.
pub fn own_notification(
    user_id: i64,
    token_id: &str,
    source: &str,
    devices: &[DeviceRecord],
    request: SendRequest,
    now: i64,
) -> Result<NewSend, Failure> {
    let envelope = build_envelope(&request, source)?;
    let targets: Vec<&DeviceRecord> = devices.iter().collect();
    let id = random_id("msg_", 32);
    sealed_send(id, user_id, token_id, envelope, &targets, &request, now)
}

/// The send to commit for `selected`, each sealed for as it reads (SPEC §1.12), with nothing
/// of what only a client's send has: no idempotency record, token touch, responses or urgency.
fn sealed_send(
    id: String,
    user_id: i64,
    token_id: &str,
    envelope: String,
    selected: &[&DeviceRecord],
    request: &SendRequest,
    now: i64,
) -> Result<NewSend, Failure> {
    let targets = seal_for_targets(&id, &envelope, selected)?;
    Ok(NewSend {
        message_id: id,
        user_id,
        token_id: token_id.to_owned(),
        // SPEC §1.12: with no target reading it in clear, the plaintext is not stored at all.
        envelope: targets
            .iter()
            .any(|t| t.payload.is_none())
            .then_some(envelope),
        targets,
        priority: request.priority(),
        created_at: now,
        expires_at: now + request.ttl_seconds() as i64 * 1000,
        month: month_key(now),
        idempotency: None,
        touch_token: false,
        key: request.key.clone(),
        responses: Vec::new(),
        urgency: None,
    })
}

/// Step 4: the token's priority cap (403).
fn check_priority_cap(token: &TokenRecord, priority: Priority) -> Result<(), Failure> {
    match token.priority_cap {
        Some(cap) if priority > cap => Err(Failure::new(
            ErrorCode::PriorityCapped,
            format!("this token may send at most priority '{cap}' (requested '{priority}')"),
        )),
        _ => Ok(()),
    }
}

/// Selection reads the owner's device records themselves.
impl Selectable for DeviceRecord {
    fn id(&self) -> &str {
        &self.id
    }
    fn label(&self) -> &str {
        &self.label
    }
    fn device_type(&self) -> DeviceType {
        self.device_type
    }
}

/// The 200 body: the message id, the devices a delivery is enqueued for, the warnings.
fn response_json(
    id: &str,
    targets: &[&DeviceRecord],
    warnings: &[Warning],
) -> Result<String, Failure> {
    let response = SendResponse {
        id: id.to_owned(),
        delivered_to: targets
            .iter()
            .map(|d| DeliveredTo {
                device_id: d.id.clone(),
                device_type: d.device_type,
            })
            .collect(),
        warnings: warnings.iter().map(Warning::to_string).collect(),
    };
    serde_json::to_string(&response).map_err(|_| Failure::from(crate::api::ApiError::internal()))
}

fn stored_response(response_json: &str) -> StoredResponse {
    StoredResponse {
        status: 200,
        body: response_json.to_owned(),
    }
}

/// Steps 6–7 in the store: it checks and charges the token and receiver limits and commits
/// the message in one step (a refusal writes nothing). On its own task: a client that hangs
/// up mid-commit must not stop the metric from counting a send the store committed anyway.
async fn commit(state: &AppState, send: NewSend) -> Result<AcceptOutcome, Failure> {
    let relay = state.relay.clone();
    let committed = tokio::spawn(async move {
        let outcome = relay.store.accept_send(send).await;
        if let Ok(AcceptOutcome::Accepted(_)) = &outcome {
            relay.metrics.send_accepted();
        }
        outcome
    })
    .await
    .map_err(|_| Failure::from(crate::api::ApiError::internal()))?;
    Ok(committed?)
}

/// What the commit means for the client: accepted (with the binding layer over the per-IP
/// and send layers), a concurrent request's replay, or a 429.
/// `accepted` is what a commit of this send answers, its rate layer still to be bound.
fn answer(
    committed: AcceptOutcome,
    accepted: Accepted,
    ip_statuses: Vec<LayerStatus>,
    now: i64,
) -> Result<Accepted, Failure> {
    match committed {
        AcceptOutcome::Replayed(stored) => {
            Ok(stored_to_accepted(stored, &ip_statuses, &accepted.token_id))
        }
        AcceptOutcome::Refused(refusal) => Err(Failure::rate_limited(refusal, now)),
        AcceptOutcome::Accepted(send_statuses) => {
            let all: Vec<LayerStatus> = ip_statuses.into_iter().chain(send_statuses).collect();
            Ok(Accepted {
                rate: binding(&all),
                ..accepted
            })
        }
    }
}

/// One store target per selected device: webpush devices get the RFC 8291 encryption of
/// `{"id","envelope"}` for their subscription (SPEC §1.13), devices with a public key its sealed
/// box (§1.12), each as the job's own payload; the others read the envelope.
fn seal_for_targets(
    message_id: &str,
    envelope: &str,
    selected: &[&DeviceRecord],
) -> Result<Vec<Target>, Failure> {
    let plaintext = sealed::plaintext(message_id, envelope);
    selected
        .iter()
        .map(|device| {
            Ok(Target {
                device_id: device.id.clone(),
                device_type: device.device_type,
                payload: payload_for(device, plaintext.as_bytes())?,
            })
        })
        .collect()
}

/// The job's own payload for `device`, or `None` when it reads the envelope in clear.
fn payload_for(device: &DeviceRecord, plaintext: &[u8]) -> Result<Option<JobPayload>, Failure> {
    match (&device.webpush, device.public_key.as_deref()) {
        (Some(address), _) => Ok(Some(JobPayload {
            kind: PayloadKind::WebPush,
            bytes: encrypt_for(address, plaintext)?,
        })),
        (None, None) => Ok(None),
        (None, Some(key)) => {
            // Stored keys were validated when paired; a corrupt one must not fall back to
            // delivering in clear.
            let key = sealed::parse_public_key(key)
                .map_err(|_| Failure::from(crate::api::ApiError::internal()))?;
            Ok(Some(JobPayload {
                kind: PayloadKind::Sealed,
                bytes: sealed::seal(plaintext, &key),
            }))
        }
    }
}

/// The Web Push body for one subscription. Its keys were checked when it paired; one that no
/// longer parses must not fall back to delivering in clear.
fn encrypt_for(address: &WebPushAddress, plaintext: &[u8]) -> Result<Vec<u8>, Failure> {
    let subscription = crate::delivery::webpush::subscription_json(address)
        .parse()
        .map_err(|_| Failure::from(crate::api::ApiError::internal()))?;
    crate::delivery::webpush::encrypt::encrypt(plaintext, &subscription)
        .map_err(|_| Failure::from(crate::api::ApiError::internal()))
}
