//! Integration tests: one binary (faster to build) with a module per area. They drive a real
//! relay on port 0 over HTTP, with a real SQLite store in a temp dir, and the real `reflecto`
//! binary.

mod cli;
mod crash;
mod dispatch;
mod docs;
mod fake_fcm;
mod harness;
mod keyring;
mod listen;
mod listen_desktop;
mod relay;
mod relay_limits;
mod sync;
