//! `reflecto login`, `logout` and `auth status`: tokens into and out of the OS keyring (or the
//! 0600 fallback file), never echoed.

use super::internal;
use super::patience::said_when_slow;
use crate::api::token::{Secret, is_device_credential_format, is_token_format};
use crate::api::{ApiError, ErrorCode};
use crate::client::Client;
use crate::client::diagnose::human_duration;
use crate::credentials::{Credentials, DEFAULT_PROFILE, StoragePolicy};
use clap::{Args, Subcommand};
use std::io::{BufRead, IsTerminal};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Relay URL this profile sends to (the token is only ever sent there) [default: the
    /// profile's server; required for a new profile]
    #[arg(long, env = "REFLECTO_SERVER", value_name = "URL", value_hint = clap::ValueHint::Url)]
    pub server: Option<String>,
    /// Credential profile to store the token in
    #[arg(long, env = "REFLECTO_PROFILE", default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
    /// Store the token in a 0600 file even if a keyring is available
    #[arg(long, conflicts_with = "secure_storage_only")]
    pub insecure_storage: bool,
    /// Refuse to store the token anywhere but the OS keyring
    #[arg(long)]
    pub secure_storage_only: bool,
    /// Store the token without asking the relay whether it knows it (offline set-up)
    #[arg(long)]
    pub no_verify: bool,
    /// Store an admin token (rfa_live_…) for `reflecto admin --server`, beside the profile's
    /// sender token (checked with GET /v1/admin/status)
    #[arg(long)]
    pub admin: bool,
}

/// Where a profile's admin token is kept: its own entry beside the sender token's, so
/// neither replaces the other.
fn admin_profile(profile: &str) -> String {
    format!("{profile}.admin")
}

/// The admin token `reflecto login --admin` stored for `profile`, if it was stored for
/// `server` (a token only ever goes to the relay it was stored for).
pub fn stored_admin_token(profile: &str, server: &str) -> Result<Option<Secret>, ApiError> {
    let creds = Credentials::from_env();
    let name = admin_profile(profile);
    let Some(stored) = creds.profile(&name)? else {
        return Ok(None);
    };
    let wanted = crate::client::diagnose::check_server(server)?;
    if crate::client::diagnose::check_server(&stored.server)? != wanted {
        return Err(ApiError::new(
            ErrorCode::NoStoredToken,
            format!(
                "profile '{profile}' holds an admin token for {}, not for {wanted}; it is only sent to its own relay. Run `reflecto login --admin --server {wanted}` or set REFLECTO_ADMIN_TOKEN",
                stored.server
            ),
        ));
    }
    Ok(creds.stored_token(&name)?.map(|(token, _)| token))
}

/// `login --admin`'s check: the relay accepts the token on its operator API.
fn verify_admin(server: &str, token: &Secret) -> Result<(), ApiError> {
    let client = crate::client::admin::AdminClient::new(server, Secret::new(token.expose()))?;
    match runtime()?.block_on(client.status()) {
        Ok(status) => {
            eprintln!(
                "verified: an admin token of {server} (relay {})",
                status.version
            );
            Ok(())
        }
        Err(e) => Err(ApiError::new(
            e.code,
            format!(
                "verifying the admin token with {server}: {}; nothing was stored (--no-verify stores it unchecked)",
                e.message
            ),
        )),
    }
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Credential profile whose token is forgotten
    #[arg(long, env = "REFLECTO_PROFILE", default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Where each profile's token lives (masked), and where the config and credentials files are
    Status {
        /// One JSON object on stdout: the file paths, each profile, and the checks
        #[arg(long)]
        json: bool,
        /// Ask each profile's relay about its token (GET /v1/token): owner, scope, quota left
        #[arg(long)]
        check: bool,
    },
}

/// The token from stdin when piped, else from a hidden prompt.
/// `admin`: an admin token (`login --admin`) instead of a sender token.
fn read_token(admin: bool) -> Result<Secret, ApiError> {
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
    if admin {
        if !crate::api::token::is_admin_token_format(token) {
            return Err(ApiError::new(
                ErrorCode::InvalidToken,
                "that is not an admin token (expected rfa_live_… with 32 letters and digits, from `reflecto admin token create --admin`)",
            ));
        }
    } else {
        check_token_format(token)?;
    }
    Ok(Secret::new(token))
}

/// A sender token's shape, with a pointed message for a device credential.
pub(crate) fn check_token_format(token: &str) -> Result<(), ApiError> {
    if is_device_credential_format(token) {
        return Err(ApiError::new(
            ErrorCode::InvalidToken,
            "that is a device credential (rfd_live_…), which `reflecto listen` uses to receive; sending needs a sender token (rfk_live_…) from `reflecto admin token create`",
        ));
    }
    if !is_token_format(token) {
        return Err(ApiError::new(
            ErrorCode::InvalidToken,
            "that is not a reflecto token (expected rfk_live_… or rfk_test_… with 32 letters and digits)",
        ));
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, ApiError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| internal("starting the runtime", e))
}

/// Asks the relay about `token`: anything but the relay's yes (an unknown or revoked token, an
/// unreachable relay, a wrong path) is an error and nothing is stored; `--no-verify` skips this.
pub(crate) fn verify(server: &str, token: &Secret) -> Result<(), ApiError> {
    let client = Client::new(server)?;
    match runtime()?.block_on(said_when_slow(&client, client.token_info(token))) {
        Ok((info, _)) => {
            eprintln!(
                "verified: token {} '{}' of user '{}' on {server}",
                info.id, info.label, info.user
            );
            Ok(())
        }
        Err(e) if matches!(e.code, ErrorCode::InvalidToken | ErrorCode::MissingToken) => {
            Err(ApiError::new(
                ErrorCode::InvalidToken,
                format!(
                    "{server} does not know this token (unknown or revoked); nothing was stored. Check the token and --server"
                ),
            ))
        }
        Err(e) => Err(ApiError::new(
            e.code,
            format!(
                "verifying the token with {server}: {}; nothing was stored (--no-verify stores it unchecked)",
                e.message
            ),
        )),
    }
}

/// `--server`, else the server the profile already has: never an assumed relay, since the
/// token will only ever be sent to this one. Asked for before the token is read.
fn login_server(args: &LoginArgs, creds: &Credentials) -> Result<String, ApiError> {
    let server = match &args.server {
        Some(server) => server.clone(),
        None => match creds.profile(&args.profile)? {
            Some(profile) => profile.server,
            None => {
                return Err(ApiError::new(
                    ErrorCode::UsageError,
                    format!(
                        "which relay is this token for? Profile '{}' has none yet: pass --server URL (or set REFLECTO_SERVER), e.g. `reflecto login --server http://127.0.0.1:8080`",
                        args.profile
                    ),
                ));
            }
        },
    };
    crate::client::diagnose::check_server(&server)?;
    Ok(server)
}

pub fn login(args: LoginArgs) -> Result<(), ApiError> {
    let creds = Credentials::from_env();
    let server = login_server(&args, &creds)?;
    let token = read_token(args.admin)?;
    if !args.no_verify {
        if args.admin {
            verify_admin(&server, &token)?;
        } else {
            verify(&server, &token)?;
        }
    }
    let profile = if args.admin {
        admin_profile(&args.profile)
    } else {
        args.profile.clone()
    };
    let policy = match (args.insecure_storage, args.secure_storage_only) {
        (true, _) => StoragePolicy::InsecureFile,
        (_, true) => StoragePolicy::SecureOnly,
        _ => StoragePolicy::Auto,
    };
    let (storage, warning) = creds.login(&profile, &server, &token, policy)?;
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    eprintln!(
        "logged in: profile '{}' → {} ({}, token {})",
        profile,
        server,
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

/// `--check`: what each profile's relay says about its token.
fn check_profiles(
    creds: &Credentials,
    statuses: &[crate::credentials::ProfileStatus],
) -> Result<Vec<serde_json::Value>, ApiError> {
    let runtime = runtime()?;
    let mut out = Vec::new();
    for s in statuses {
        let result = creds.token(&s.profile).and_then(|(token, _)| {
            let client = Client::new(&s.server)?;
            runtime.block_on(client.token_info(&token))
        });
        out.push(match result {
            Ok((info, rate)) => {
                serde_json::json!({"profile": s.profile, "token": info, "rate": rate})
            }
            Err(e) => {
                serde_json::json!({"profile": s.profile, "error": e.to_nested_body()["error"]})
            }
        });
    }
    Ok(out)
}

pub fn status(json: bool, check: bool) -> Result<(), ApiError> {
    let creds = Credentials::from_env();
    let statuses = creds.status()?;
    let checks = if check {
        Some(check_profiles(&creds, &statuses)?)
    } else {
        None
    };
    if json {
        let value = serde_json::json!({
            "config": creds.profiles_path(),
            "credentials": creds.credentials_path(),
            "profiles": statuses,
            "checks": checks,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(|e| internal("rendering JSON", e))?
        );
        return Ok(());
    }
    println!("config: {}", creds.profiles_path().display());
    println!("credentials file: {}", creds.credentials_path().display());
    if statuses.is_empty() {
        println!("no profiles; run `reflecto login`");
    }
    for s in &statuses {
        let place = s.storage.map_or("no token stored", |st| st.describe());
        println!(
            "{}\t{}\t{}\t{}",
            s.profile,
            s.server,
            place,
            s.token.as_deref().unwrap_or("-")
        );
        if let Some(problem) = &s.problem {
            println!("  problem: {problem}");
        }
    }
    for c in checks.iter().flatten() {
        let profile = c["profile"].as_str().unwrap_or_default();
        if let Some(info) = c.get("token") {
            let mut line = format!(
                "check {profile}: ok, {} '{}' of user '{}'",
                info["id"].as_str().unwrap_or_default(),
                info["label"].as_str().unwrap_or_default(),
                info["user"].as_str().unwrap_or_default()
            );
            if let Some(rate) = c.get("rate").filter(|r| !r.is_null()) {
                let reset = rate["reset"].as_i64().unwrap_or_default();
                let wait = (reset - chrono::Utc::now().timestamp()).max(0) as u64;
                line.push_str(&format!(
                    "; {} {}/{} left, frees in {}",
                    rate["resource"].as_str().unwrap_or_default(),
                    rate["remaining"],
                    rate["limit"],
                    human_duration(wait)
                ));
            }
            println!("{line}");
        } else {
            println!(
                "check {profile}: error[{}]: {}",
                c["error"]["code"].as_str().unwrap_or_default(),
                c["error"]["message"].as_str().unwrap_or_default()
            );
        }
    }
    if std::env::var_os("REFLECTO_TOKEN").is_some() {
        println!("note: REFLECTO_TOKEN is set and overrides every profile's stored token");
    }
    Ok(())
}
