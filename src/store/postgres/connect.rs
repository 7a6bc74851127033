//! From a `postgres://` URL to a connection pool and a listening connection: the connect
//! timeout, the TLS choice, and errors that say what went wrong without the password.

use crate::store::{Result, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

/// Connections per relay. Each send holds one for a few short statements.
const POOL_SIZE: usize = 16;
/// How long a connection attempt may take: an unreachable server fails the start well
/// within 15 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to connect and how.
#[derive(Clone)]
pub struct Target {
    config: Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target> {
        let mut config: Config = url.parse().map_err(|e: tokio_postgres::Error| {
            StoreError::Conflict(format!("not a usable PostgreSQL URL: {e}"))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("reflecto");
        }
        let tls = wants_tls(&config).then(rustls_connector).transpose()?;
        Ok(Target { config, tls })
    }

    pub fn pool(&self) -> Result<Pool> {
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &self.tls {
            Some(tls) => Manager::from_config(self.config.clone(), tls.clone(), manager_config),
            None => Manager::from_config(self.config.clone(), NoTls, manager_config),
        };
        Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Db(e.to_string()))
    }

    /// One connection outside the pool, and the messages (notifications) the server sends it.
    pub async fn connect_listening(
        &self,
    ) -> Result<(Client, tokio::sync::mpsc::UnboundedReceiver<AsyncMessage>)> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let client = match &self.tls {
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                tokio::spawn(forward(connection, tx));
                client
            }
            None => {
                let (client, connection) = self.config.connect(NoTls).await?;
                tokio::spawn(forward(connection, tx));
                client
            }
        };
        Ok((client, rx))
    }
}

/// Drives a connection, handing its asynchronous messages (notifications, notices) on; ends
/// when it closes.
async fn forward<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    tx: tokio::sync::mpsc::UnboundedSender<AsyncMessage>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    use futures_util::StreamExt;
    // Keeps driving the connection for as long as it lives, whether or not anyone still
    // listens: `admin copy` holds the client and lets the receiver go.
    while let Some(Ok(message)) = messages.next().await {
        let _ = tx.send(message);
    }
}

/// TLS unless `sslmode=disable`, or the default `prefer` towards this machine (a local
/// server's snake-oil certificate would otherwise fail verification for no gain).
/// `sslmode=require` verifies the server against the system's trusted roots (or
/// `SSL_CERT_FILE`): a managed database's CA must be one of them.
fn wants_tls(config: &Config) -> bool {
    let local = config.get_hosts().iter().all(|h| match h {
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    });
    match config.get_ssl_mode() {
        SslMode::Disable => false,
        SslMode::Prefer => !local,
        _ => true,
    }
}

fn rustls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        // A certificate the system ships that rustls cannot parse is skipped, not fatal.
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Db(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// A pool that could not hand out a connection: the server is down, refuses the login, or
/// every connection is busy for too long.
pub fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => match e.as_db_error() {
            Some(db) => StoreError::Unavailable(db.message().to_owned()),
            None => StoreError::Unavailable(with_cause(&e)),
        },
        PoolError::Timeout(_) => {
            StoreError::Unavailable("timed out waiting for a database connection".into())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// The driver's error with its cause ("error connecting to server: Connection refused").
pub fn with_cause(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}
