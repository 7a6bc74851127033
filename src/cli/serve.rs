//! `reflecto serve`: resolve the configuration, start logging, run the relay until SIGTERM or
//! SIGINT, then drain.

use super::internal;
use crate::api::ApiError;
use crate::relay::config::{
    LimitsPreset, LogFormat, PartialConfig, PartialConnections, PartialLimits,
};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
#[command(after_help = LOGGING_HELP)]
pub struct ServeArgs {
    /// TOML configuration file (flags and REFLECTO_* variables override it)
    #[arg(long, env = "REFLECTO_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "REFLECTO_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where the SQLite store lives [default: the platform data dir, e.g. ~/.local/share/reflecto]
    #[arg(long, env = "REFLECTO_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Share a PostgreSQL database with other relays (postgres://user:password@host/db) instead of SQLite in the data dir
    #[arg(
        long,
        env = "REFLECTO_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// Seconds a delivery attempt holds its job before another relay may take it over [default: 30]
    #[arg(long, env = "REFLECTO_LEASE_SECS", value_name = "SECS")]
    pub lease_secs: Option<u64>,
    /// Firebase service-account JSON; without it android deliveries wait
    #[arg(long, env = "REFLECTO_FCM_CREDENTIALS", value_name = "FILE")]
    pub fcm_credentials: Option<PathBuf>,
    /// FCM base URL [default: https://fcm.googleapis.com]
    #[arg(long, env = "REFLECTO_FCM_ENDPOINT", value_name = "URL")]
    pub fcm_endpoint: Option<String>,
    /// Take the client IP from X-Forwarded-For (only behind a proxy you run)
    #[arg(long, env = "REFLECTO_TRUST_PROXY", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub trust_proxy: Option<bool>,
    /// Accept Web Push endpoints that are plain http or resolve to loopback, private or
    /// link-local addresses (a UnifiedPush distributor on the LAN, tests); off, pairing refuses
    /// them so the relay cannot be made to post into its own network
    #[arg(long, env = "REFLECTO_WEBPUSH_ALLOW_LOCAL", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub webpush_allow_local: Option<bool>,
    /// Accept `callback` URLs (SPEC §1.17) that are plain http or resolve to loopback, private
    /// or link-local addresses (tests, a receiver on the LAN); off, only public https
    #[arg(long, env = "REFLECTO_CALLBACK_ALLOW_LOCAL", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub callback_allow_local: Option<bool>,
    /// Contact sent to Web Push services in the VAPID token (mailto: or https:). Set it to an
    /// address you read: push services use it to reach the operator [default: mailto:admin@<hostname>]
    #[arg(long, env = "REFLECTO_VAPID_SUBJECT", value_name = "URI")]
    pub vapid_subject: Option<String>,
    /// The address people reach the relay at (https://relay.example), used in pairing links
    /// and their QR codes [default: each request's own origin]
    #[arg(long, env = "REFLECTO_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Log format (which lines: REFLECTO_LOG or RUST_LOG, see below)
    #[arg(long, env = "REFLECTO_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// How long a finished message is kept, e.g. 90s, 12h, 7d (0 keeps forever) [default: 7d]
    #[arg(long, env = "REFLECTO_RETENTION", value_name = "DURATION")]
    pub retention: Option<crate::relay::retention::Retention>,
    /// Rate-limit preset: self-hosted (the default) or hosted (the hosted free tier: 60, 500,
    /// 1000, 20, 200); a layer set by its own flag, variable or in the file overrides it
    #[arg(long, env = "REFLECTO_LIMITS", value_enum, value_name = "PRESET")]
    pub limits: Option<LimitsPreset>,
    /// Sends per token per rolling minute (0 disables) [default: 60]
    #[arg(long, env = "REFLECTO_LIMIT_TOKEN_BURST", value_name = "N")]
    pub limit_token_burst: Option<u64>,
    /// Sends per token per calendar month, UTC (0 disables) [default: 0; hosted: 500]
    #[arg(long, env = "REFLECTO_LIMIT_TOKEN_MONTHLY", value_name = "N")]
    pub limit_token_monthly: Option<u64>,
    /// Sends per receiving user per rolling 24 h (0 disables) [default: 10000; hosted: 1000]
    #[arg(long, env = "REFLECTO_LIMIT_RECEIVER_DAILY", value_name = "N")]
    pub limit_receiver_daily: Option<u64>,
    /// API requests per client IP per rolling minute (0 disables) [default: 300; hosted: 20]
    #[arg(long, env = "REFLECTO_LIMIT_IP_MINUTE", value_name = "N")]
    pub limit_ip_minute: Option<u64>,
    /// API requests per client IP per rolling hour (0 disables) [default: 3000; hosted: 200]
    #[arg(long, env = "REFLECTO_LIMIT_IP_HOUR", value_name = "N")]
    pub limit_ip_hour: Option<u64>,
    /// Seconds a client may take to send a request's headers, from its first byte [default: 10]
    #[arg(long, env = "REFLECTO_HEADER_TIMEOUT", value_name = "SECS")]
    pub header_timeout: Option<u64>,
    /// Seconds a client may take to send a request body after its headers [default: 30]
    #[arg(long, env = "REFLECTO_BODY_TIMEOUT", value_name = "SECS")]
    pub body_timeout: Option<u64>,
    /// Seconds a connection may sit idle between requests; desktop streams are never idle [default: 60]
    #[arg(long, env = "REFLECTO_IDLE_TIMEOUT", value_name = "SECS")]
    pub idle_timeout: Option<u64>,
    /// Connections served at once; more wait until one closes [default: 4096]
    #[arg(long, env = "REFLECTO_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Largest request line plus headers, in bytes; larger requests get 431 [default: 16384]
    #[arg(long, env = "REFLECTO_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub max_header_bytes: Option<usize>,
    /// Print the resolved configuration as TOML and exit
    #[arg(long)]
    pub print_config: bool,
}

impl ServeArgs {
    fn overrides(&self) -> PartialConfig {
        PartialConfig {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            database: self.database.clone(),
            fcm_credentials: self.fcm_credentials.clone(),
            fcm_endpoint: self.fcm_endpoint.clone(),
            trust_proxy: self.trust_proxy,
            webpush_allow_local: self.webpush_allow_local,
            callback_allow_local: self.callback_allow_local,
            vapid_subject: self.vapid_subject.clone(),
            public_url: self.public_url.clone(),
            log_format: self.log_format,
            lease_secs: self.lease_secs,
            retention: self.retention,
            limits: PartialLimits {
                preset: self.limits,
                token_burst: self.limit_token_burst,
                token_monthly: self.limit_token_monthly,
                receiver_daily: self.limit_receiver_daily,
                ip_minute: self.limit_ip_minute,
                ip_hour: self.limit_ip_hour,
            },
            connections: PartialConnections {
                header_timeout_secs: self.header_timeout,
                body_timeout_secs: self.body_timeout,
                idle_timeout_secs: self.idle_timeout,
                max_connections: self.max_connections,
                max_header_bytes: self.max_header_bytes,
            },
            // Hook templates come from the config file only.
            hooks: Default::default(),
        }
    }
}

/// Flags and env over the optional file.
pub fn resolve(args: &ServeArgs) -> Result<crate::relay::ServeConfig, ApiError> {
    let file = match &args.config {
        Some(path) => PartialConfig::from_file(path)
            .map_err(|e| ApiError::new(crate::api::ErrorCode::InvalidBody, e))?,
        None => PartialConfig::default(),
    };
    Ok(args.overrides().over(file).resolve())
}

pub fn run(args: ServeArgs) -> Result<(), ApiError> {
    let mut config = resolve(&args)?;
    // Refused before anything listens, like any other bad flag; parsed once, here.
    let vapid_subject = config.vapid_subject()?;
    config.public_url()?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    init_logging(config.log_format);
    if let Some(open_files) = crate::server::listener::raise_open_files_limit() {
        config.connections.max_connections =
            connections_within(config.connections.max_connections, open_files);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| internal("starting the runtime", e))?;
    let served = runtime.block_on(async move {
        let relay = crate::relay::start(&config).await?;
        tracing::info!(addr = %relay.addr, data_dir = %config.data_dir.display(), "reflecto relay listening");
        let mut dispatch = relay.start_delivery(&config, vapid_subject)?;
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests and deliveries");
        let _ = relay.shutdown.send(());
        let draining = async {
            let _ = relay.task.await;
        };
        // The HTTP drain is bounded by itself; this bounds a dispatcher stuck on a slow FCM
        // answer too. A job cut off here keeps its lease and is retried after a restart.
        if tokio::time::timeout(STOP_WITHIN, async { tokio::join!(draining, dispatch.stop()) })
            .await
            .is_err()
        {
            tracing::warn!("stopping took too long; exiting with deliveries in flight");
        }
        Ok(())
    });
    // Whatever is still running (a connection task, a blocking store read) must not hold the
    // process past SPEC §2.0's 10 s.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served
}

/// SIGTERM to exit stays under SPEC §2.0's 10 s: this, plus a second for the runtime.
const STOP_WITHIN: Duration = Duration::from_secs(8);

/// File descriptors kept for the store, the listener, the FCM client and the runtime.
const RESERVED_FILES: u64 = 64;

/// The connection cap, lowered to fit the open-files limit: past it `accept` fails with EMFILE
/// for everyone (and the store cannot open files), while at the cap new connections merely
/// wait in the backlog until one closes.
fn connections_within(max_connections: usize, open_files: u64) -> usize {
    let fit = open_files.saturating_sub(RESERVED_FILES).max(1);
    if max_connections as u64 <= fit {
        return max_connections;
    }
    tracing::warn!(
        max_connections,
        open_files,
        serving = fit,
        "--max-connections is above what the open-files limit allows; serving fewer at once"
    );
    usize::try_from(fit).unwrap_or(max_connections)
}

const LOGGING_HELP: &str = "\
Logging:
  REFLECTO_LOG  which log lines to write, e.g. `warn` or `info,reflecto=debug` [default: info]
  RUST_LOG      the same, read when REFLECTO_LOG is unset";

/// REFLECTO_LOG, else RUST_LOG (what every tracing program reads), else `info`; whatever it
/// says, `tokio_postgres` logs at most `info`: at `debug` it writes every statement with its
/// parameters, which hold message text and token hashes (found by tests/it/admin_api.rs).
fn log_filter() -> tracing_subscriber::EnvFilter {
    ["REFLECTO_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|var| tracing_subscriber::EnvFilter::try_from_env(var).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"))
        .add_directive(QUIET_POSTGRES.parse().expect("a valid directive"))
}

/// The directive that keeps query parameters out of the log.
const QUIET_POSTGRES: &str = "tokio_postgres=info";

fn init_logging(format: LogFormat) {
    let filter = log_filter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests {
    use super::connections_within;

    /// The bug: `REFLECTO_LOG=debug` on PostgreSQL logged every statement's parameters,
    /// message text among them.
    #[test]
    fn debug_logging_never_logs_postgres_query_parameters() {
        let filter = super::log_filter().to_string();
        assert!(filter.contains(super::QUIET_POSTGRES), "{filter}");
    }

    #[test]
    fn the_connection_cap_fits_the_open_files_limit() {
        assert_eq!(connections_within(4096, 1_048_576), 4096);
        assert_eq!(connections_within(4096, 1024), 960);
        assert_eq!(connections_within(100, 1024), 100);
        assert_eq!(connections_within(4096, 10), 1);
    }
}
