//! Integration tests: one binary (faster to build) with a module per area. They drive a real
//! relay on port 0 over HTTP, with a real SQLite store in a temp dir, and the real `reflecto`
//! binary.

mod admin_copy;
mod batch;
mod cli;
mod cli_errors;
mod crash;
mod dispatch;
mod docs;
mod failover;
mod fake_fcm;
mod hardening;
mod harness;
mod keyring;
mod listen;
mod listen_desktop;
mod multi_relay;
mod openapi;
mod pairing;
mod relay;
mod relay_limits;
mod retention;
mod sealed;
mod spec_rows;
mod store_faults;
mod sync;
mod webapp;
mod webpush;
mod webpush_core;
