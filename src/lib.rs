//! reflecto: push notifications from a terminal, a cron job or a CI step.
//!
//! One crate, two halves sharing one contract:
//! * the **client** (`reflecto send`, `login`, …) in [`cli`], [`client`] and [`credentials`];
//! * the **relay** (`reflecto serve`, `reflecto admin`) in [`relay`] (configuration, start-up,
//!   maintenance), [`server`] (the HTTP API), [`store`] and [`delivery`].
//!
//! Both speak the wire types of [`api`] and run requests through the one engine in
//! [`validate`]. See ARCHITECTURE.md for the map.

pub mod api;
pub mod backoff;
pub mod cli;
pub mod client;
pub mod credentials;
pub mod delivery;
pub mod hooks;
#[cfg(unix)]
#[doc(hidden)]
pub mod pg_cluster;
pub mod qr;
pub mod relay;
pub mod server;
pub mod store;
pub mod validate;

use api::ApiError;

/// Runs one parsed command line. The error carries its code, which decides the exit status.
pub fn run(cli: cli::Cli) -> Result<(), ApiError> {
    cli::dispatch(cli)
}
