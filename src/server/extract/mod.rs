//! What handlers take from a request before their own work, as axum extractors: the client IP
//! (checked and charged, checked and charged only for a refused read, or only read), the presented token or device credential and who it
//! is, the `Idempotency-Key`, `Last-Event-ID`, the status long poll's `If-None-Match` and `Prefer`, and bodies under the 64 KiB cap. Each rejects
//! with the relay's [`Failure`](super::error::Failure), so a refusal reads the same whichever
//! handler met it. Axum runs the parts extractors in argument order and the body last, which
//! is SPEC §1.7's order: per-IP, then the token, then the body.

mod admin;
mod body;
mod credential;
mod headers;
mod ip;
mod poll;

pub use admin::AdminAuth;
pub use body::{CappedJson, HookBody, JsonShape, MessageBody, read_capped};
pub use credential::{
    DeviceAuth, PairedDevice, Presented, SenderAuth, TokenAuth, authenticate_sender, invalid,
};
pub use headers::{IdempotencyKey, LastEventId};
pub use ip::{ChargedIp, ClientIp, IpChecked, client_ip};
pub use poll::LongPoll;

#[cfg(test)]
pub(crate) mod testing;
