//! `reflecto admin pair --qr` (SPEC §2.4): the code, the link a phone opens and the link as a
//! QR code in the terminal. The link needs the address people reach the relay at.

use super::admin::StoreArgs;
use crate::api::{ApiError, ErrorCode};
use crate::relay::config::PartialConfig;
use crate::store::Database;
use std::io::IsTerminal;

/// The relay's public URL for a local store: `--public-url` / `REFLECTO_PUBLIC_URL`, else the
/// config file's `public_url`, else the address the relay running on the data dir recorded in
/// its lock file. Checked before a code is created, so a refusal spends none.
pub fn public_url(flag: Option<&str>, store: &StoreArgs) -> Result<String, ApiError> {
    let usage = |why: String| ApiError::new(ErrorCode::UsageError, why);
    if let Some(url) = flag {
        return crate::qr::check_public_url(url).map_err(usage);
    }
    if let Some(path) = &store.config {
        let file =
            PartialConfig::from_file(path).map_err(|e| ApiError::new(ErrorCode::IoError, e))?;
        if let Some(url) = file.public_url {
            return crate::qr::check_public_url(&url).map_err(usage);
        }
    }
    if let Database::Sqlite(dir) = store.locate()?
        && let Some((_, addr)) = crate::relay::lock::recorded(&dir)
    {
        return Ok(format!("http://{}", super::setup::reachable(addr)));
    }
    Err(usage(
        "--qr needs the address phones reach the relay at: pass --public-url URL (or set REFLECTO_PUBLIC_URL, or public_url in the relay's config file); no relay running on this data dir recorded one".to_owned(),
    ))
}

/// Prints the code (stdout's first line, as without `--qr`), the link, then its QR code: black
/// on white when stdout is a terminal, so it scans on dark and light themes alike.
pub fn print_pairing(user: &str, code: &str, link: Option<&str>) {
    eprintln!("pairing code for {user}, valid 10 minutes:");
    println!("{code}");
    if let Some(link) = link {
        eprintln!("or open this link on the phone, or scan it:");
        println!("{link}");
        print!(
            "{}",
            crate::qr::pairing_qr_terminal(link, std::io::stdout().is_terminal())
        );
    }
}
