//! `reflecto pair CODE` (SPEC §2.1): this computer becomes an `extension` device. A fresh
//! X25519 key pair means the relay seals every delivery to it (§1.12); the stream credential
//! and the private key are Secrets, stored like tokens (keyring first, 0600 file fallback).

use super::patience::said_when_slow;
use super::runtime;
use crate::api::sealed::generate_key_pair;
use crate::api::stream::PairRequest;
use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode};
use crate::client::Client;
use crate::credentials::{Credentials, DEFAULT_PROFILE, DEFAULT_SERVER, Storage};
use clap::Args;

#[derive(Debug, Args)]
pub struct PairArgs {
    /// The 6-digit code from `reflecto admin pair --user NAME`
    pub code: String,
    /// Relay URL [default: the profile's server, else https://api.reflecto.dev]; saved in the profile
    #[arg(long, env = "REFLECTO_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Credential profile the pairing is stored under
    #[arg(long, env = "REFLECTO_PROFILE", default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
    /// How the device is listed [default: this computer's host name]
    #[arg(long, value_name = "L")]
    pub label: Option<String>,
}

/// The host name, as the default device label (and `setup`'s token label).
pub(crate) fn host_name() -> String {
    let from_file = |p: &str| std::fs::read_to_string(p).ok();
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "desktop".to_owned())
}

/// What pairing this computer made: the device, and where its secrets went.
pub(crate) struct Paired {
    pub device_id: String,
    pub label: String,
    pub storage: Storage,
}

/// Redeems `code` on `server` as this computer (an `extension` device with a fresh X25519 key
/// pair) and stores its credential and private key under `profile`: the one path by which
/// `pair` and `setup` make a desktop device.
pub(crate) fn pair_this_computer(
    creds: &Credentials,
    profile: &str,
    server: &str,
    code: &str,
    label: String,
) -> Result<Paired, ApiError> {
    let (private_key, public_key) = generate_key_pair();
    let request = PairRequest {
        code: code.to_owned(),
        device_type: "extension".to_owned(),
        label,
        fcm_token: None,
        public_key: Some(public_key),
        subscription: None,
    };
    let client = Client::new(server)?;
    let paired = runtime()?.block_on(said_when_slow(&client, client.pair(&request)))?;
    let credential = paired.credential.map(Secret::new).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnexpectedResponse,
            format!("{server} paired the device but sent no stream credential"),
        )
    })?;
    let (storage, warning) = creds.store_device(
        profile,
        server,
        &paired.device_id,
        &credential,
        &Secret::new(private_key),
    )?;
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    Ok(Paired {
        device_id: paired.device_id,
        label: paired.label,
        storage,
    })
}

pub fn run(args: PairArgs) -> Result<(), ApiError> {
    let code = args.code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::new(
            ErrorCode::InvalidPairingCode,
            format!("'{code}' is not a pairing code (6 digits from `reflecto admin pair`)"),
        ));
    }
    let creds = Credentials::from_env();
    let server = match args.server {
        Some(server) => server,
        None => creds
            .profile(&args.profile)?
            .map_or_else(|| DEFAULT_SERVER.to_owned(), |p| p.server),
    };
    url::Url::parse(&server)
        .map_err(|e| ApiError::new(ErrorCode::InvalidUrl, format!("--server '{server}': {e}")))?;
    let label = args.label.unwrap_or_else(host_name);
    let paired = pair_this_computer(&creds, &args.profile, &server, code, label)?;
    eprintln!(
        "paired as '{}' on {server} (profile '{}', secrets in the {}); run `reflecto listen`",
        paired.label,
        args.profile,
        paired.storage.describe()
    );
    println!("{}", paired.device_id);
    Ok(())
}
