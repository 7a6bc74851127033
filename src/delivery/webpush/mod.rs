//! Web Push delivery (RFC 8030 + RFC 8291 + RFC 8292, SPEC §1.13): a browser's subscription
//! checked at pairing, the relay's VAPID identity, encryption at accept time, the request for
//! one delivery, its sending and the meaning of the answer. Each piece is usable on its own;
//! the worker, store and routes wire them together.

pub mod client;
pub mod encrypt;
pub mod message;
pub mod outcome;
pub mod subscription;
pub mod vapid;
