//! `reflecto login`, `logout` and `auth status`: tokens into and out of the OS keyring (or the
//! 0600 fallback file), never echoed.

use super::internal;
use crate::api::token::{Secret, is_token_format};
use crate::api::{ApiError, ErrorCode};
use crate::credentials::{Credentials, DEFAULT_PROFILE, DEFAULT_SERVER, StoragePolicy};
use clap::{Args, Subcommand};
use std::io::{BufRead, IsTerminal};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Relay URL this profile sends to
    #[arg(long, env = "REFLECTO_SERVER", default_value = DEFAULT_SERVER, value_name = "URL")]
    pub server: String,
    #[arg(long, env = "REFLECTO_PROFILE", default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
    /// Store the token in a 0600 file even if a keyring is available
    #[arg(long, conflicts_with = "secure_storage_only")]
    pub insecure_storage: bool,
    /// Refuse to store the token anywhere but the OS keyring
    #[arg(long)]
    pub secure_storage_only: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[arg(long, env = "REFLECTO_PROFILE", default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Where each profile's token lives (masked)
    Status {
        #[arg(long)]
        json: bool,
    },
}

/// The token from stdin when piped, else from a hidden prompt.
fn read_token() -> Result<Secret, ApiError> {
    let token = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("reflecto token: ")
            .map_err(|e| internal("reading the token", e))?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| internal("reading the token from stdin", e))?;
        line
    };
    let token = token.trim();
    if !is_token_format(token) {
        return Err(ApiError::new(
            ErrorCode::InvalidToken,
            "that is not a reflecto token (expected rfk_live_… or rfk_test_… with 32 letters and digits)",
        ));
    }
    Ok(Secret::new(token))
}

pub fn login(args: LoginArgs) -> Result<(), ApiError> {
    url::Url::parse(&args.server).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidUrl,
            format!("--server '{}': {e}", args.server),
        )
    })?;
    let token = read_token()?;
    let policy = match (args.insecure_storage, args.secure_storage_only) {
        (true, _) => StoragePolicy::InsecureFile,
        (_, true) => StoragePolicy::SecureOnly,
        _ => StoragePolicy::Auto,
    };
    let (storage, warning) =
        Credentials::from_env().login(&args.profile, &args.server, &token, policy)?;
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    eprintln!(
        "logged in: profile '{}' → {} ({}, token {})",
        args.profile,
        args.server,
        storage.describe(),
        token.masked()
    );
    Ok(())
}

pub fn logout(args: LogoutArgs) -> Result<(), ApiError> {
    if Credentials::from_env().logout(&args.profile)? {
        eprintln!("logged out: profile '{}' removed", args.profile);
    } else {
        eprintln!("profile '{}' had nothing stored", args.profile);
    }
    Ok(())
}

pub fn status(json: bool) -> Result<(), ApiError> {
    let statuses = Credentials::from_env().status()?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&statuses).map_err(|e| internal("rendering JSON", e))?
        );
        return Ok(());
    }
    if statuses.is_empty() {
        println!("no profiles; run `reflecto login`");
    }
    for s in statuses {
        let place = s.storage.map_or("no token stored", |st| st.describe());
        println!(
            "{}\t{}\t{}\t{}",
            s.profile,
            s.server,
            place,
            s.token.as_deref().unwrap_or("-")
        );
    }
    if std::env::var_os("REFLECTO_TOKEN").is_some() {
        println!("note: REFLECTO_TOKEN is set and overrides every profile's stored token");
    }
    Ok(())
}
