//! Which relay `reflecto setup` sets this computer up with: `--server`, else the address the
//! relay running on the store's data dir recorded in its lock file (SPEC §2.5). Setup never
//! creates a store: no store, or no recorded address, means no relay to set up with.

use crate::api::{ApiError, ErrorCode};
use crate::client::diagnose::check_server;
use crate::relay::lock::{LOCK_FILE, recorded};
use crate::store::{DB_FILE, Database};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

/// The relay found, and how.
pub struct Found {
    /// Its base URL, canonical (as `check_server` writes it).
    pub server: String,
    /// How it was found, for the progress line.
    pub how: String,
    /// The data dir whose lock file named it, if that is how it was found: a relay that no
    /// longer answers there has stopped.
    pub data_dir: Option<PathBuf>,
}

fn no_relay(why: String) -> ApiError {
    ApiError::new(ErrorCode::UsageError, format!("no relay found: {why}"))
}

/// `--server`, else the lock file of the SQLite data dir. A store must exist either way.
pub fn find(database: &Database, server: Option<&str>) -> Result<Found, ApiError> {
    if let Database::Sqlite(dir) = database
        && !dir.join(DB_FILE).exists()
    {
        return Err(no_relay(format!(
            "there is no relay store in {}; start the relay with `reflecto serve --data-dir {}` (in another terminal or as a service), then run `reflecto setup` again (or name the relay's store with --data-dir, --config or --database)",
            dir.display(),
            dir.display()
        )));
    }
    if let Some(server) = server {
        return Ok(Found {
            server: check_server(server)?,
            how: "--server".to_owned(),
            data_dir: None,
        });
    }
    let dir = match database {
        Database::Sqlite(dir) => dir,
        Database::Postgres(_) => {
            return Err(ApiError::new(
                ErrorCode::UsageError,
                "relays on PostgreSQL record no address: name the relay with --server URL",
            ));
        }
    };
    let Some((pid, addr)) = recorded(dir) else {
        return Err(no_relay(format!(
            "no relay has recorded its address in {} (is one running on this data dir?); start it with `reflecto serve --data-dir {}`, or pass --server URL",
            dir.join(LOCK_FILE).display(),
            dir.display()
        )));
    };
    Ok(Found {
        server: check_server(&format!("http://{}", reachable(addr)))?,
        how: format!("recorded by pid {pid} in {}", dir.join(LOCK_FILE).display()),
        data_dir: Some(dir.clone()),
    })
}

/// A relay bound to every address (`0.0.0.0`, `::`) is reached on this machine's loopback.
pub(crate) fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// A relay that did not answer: when its lock file named it, it has stopped (a usage error
/// saying how to start it); through `--server`, the client's own error stands.
pub fn not_answering(found: &Found, error: ApiError) -> ApiError {
    match (&found.data_dir, error.code) {
        (Some(dir), ErrorCode::RelayUnreachable) => no_relay(format!(
            "the relay that last ran on {} ({}) does not answer at {}: it has stopped. Start it with `reflecto serve --data-dir {}`, then run `reflecto setup` again",
            dir.display(),
            found.how,
            found.server,
            dir.display()
        )),
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use super::reachable;

    #[test]
    fn a_relay_on_every_address_is_reached_on_loopback() {
        let at = |s: &str| reachable(s.parse().unwrap()).to_string();
        assert_eq!(at("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(at("[::]:8080"), "[::1]:8080");
        assert_eq!(at("192.0.2.7:80"), "192.0.2.7:80");
    }
}
