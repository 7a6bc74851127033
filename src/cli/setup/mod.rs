//! `reflecto setup` (SPEC §2.5): this computer becomes a sender and a receiver of the relay
//! on this machine in one command, with no secret copied by hand. It works on the relay's
//! store as `admin` does (user, token, pairing codes) and talks to the relay over HTTP as
//! `login` and `pair` do, through their own functions. Run again, it reuses what the profile
//! already holds: the token and the device it made are the profile's.

mod account;
mod relay;
pub(crate) use relay::reachable;
mod service;

use super::admin::{StoreArgs, open_store, store_error};
use super::pair::host_name;
use super::{internal, runtime};
use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode, SendRequest};
use crate::client::{Client, RetryPolicy};
use crate::credentials::{Credentials, DEFAULT_PROFILE};
use crate::store::now_ms;
use account::Made;
use clap::Args;
use serde::Serialize;
use tokio::runtime::Runtime;

#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The relay's URL [default: the address the relay running on the data dir recorded]
    #[arg(long, env = "REFLECTO_SERVER", value_name = "URL", value_hint = clap::ValueHint::Url)]
    pub server: Option<String>,
    /// The user this computer sends as and receives for; created unless it exists [default:
    /// your login name]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Credential profile that keeps the token and this computer's device
    #[arg(long, env = "REFLECTO_PROFILE", default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
    /// Install, enable and start the reflecto-listen systemd user unit
    #[arg(long)]
    pub service: bool,
    /// Print a JSON summary on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Summary {
    server: String,
    profile: String,
    user: String,
    user_created: bool,
    token: Made,
    device: Made,
    test_message: String,
    service: Option<service::Installed>,
    /// The command that shows notifications here, when `--service` did not start it.
    listen_command: Option<String>,
    phone_link: String,
    phone_code: String,
}

fn progress(line: &str) {
    eprintln!("setup: {line}");
}

fn login_name() -> Result<String, ApiError> {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|n| n.trim().to_owned())
        .find(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UsageError,
                "cannot tell your login name (USER is not set); pass --user NAME",
            )
        })
}

/// The test notification, to this computer only (a phone paired later is not sent it again).
fn send_test(rt: &Runtime, server: &str, token: &Secret, device: &str) -> Result<String, ApiError> {
    let request = SendRequest {
        message: format!(
            "{} receives notifications from {server}. Send one with: reflecto send hi",
            host_name()
        ),
        title: Some("reflecto setup".to_owned()),
        device: Some(device.to_owned()),
        ..SendRequest::default()
    };
    let client = Client::new(server)?;
    let policy = RetryPolicy::bounded(std::time::Duration::from_secs(10));
    let sent = rt.block_on(client.send(
        token,
        &request,
        &Client::new_idempotency_key(),
        policy,
        &|_| {},
    ))?;
    progress(&format!(
        "test notification {} sent to {device}",
        sent.response.id
    ));
    Ok(sent.response.id)
}

pub fn run(args: SetupArgs) -> Result<(), ApiError> {
    let database = args.store.locate()?;
    let found = relay::find(&database, args.server.as_deref())?;
    let server = found.server.clone();
    progress(&format!("relay {server} ({})", found.how));
    let user = match &args.user {
        Some(name) if name.trim().is_empty() => {
            return Err(ApiError::new(
                ErrorCode::UsageError,
                "--user must not be empty",
            ));
        }
        Some(name) => name.trim().to_owned(),
        None => login_name()?,
    };
    let creds = Credentials::from_env();
    account::check_profile(&creds, &args.profile, &server)?;
    let rt = runtime()?;
    let store = rt.block_on(open_store(&database))?;
    let user_created = match rt.block_on(store.user_by_name(&user)) {
        Ok(_) => {
            progress(&format!("user '{user}' exists; reusing it"));
            false
        }
        Err(crate::store::StoreError::NotFound(_)) => {
            rt.block_on(store.add_user(&user, now_ms()))
                .map_err(store_error)?;
            progress(&format!("user '{user}' created"));
            true
        }
        Err(e) => return Err(store_error(e)),
    };
    let (token, secret) = account::token(&rt, &store, &creds, &args, &found, &user)?;
    let device = account::device(&rt, &store, &creds, &args, &server, &user)?;
    let test_message = send_test(&rt, &server, &secret, &device.id)?;
    let (service, listen_command) = if args.service {
        let installed = service::install(&args.profile, device.created)?;
        progress(&format!(
            "{} {}; ran {}",
            if installed.written { "wrote" } else { "kept" },
            installed.unit.display(),
            installed.systemctl.join(", ")
        ));
        (Some(installed), None)
    } else {
        let command = match args.profile.as_str() {
            DEFAULT_PROFILE => "reflecto listen".to_owned(),
            other => format!("reflecto listen --profile {other}"),
        };
        progress(&format!(
            "to see it here, run `{command}` (or `reflecto setup --service` to keep it running as a user service)"
        ));
        (None, Some(command))
    };
    let code = rt
        .block_on(store.create_pair_code(&user, now_ms()))
        .map_err(store_error)?;
    let phone_link = format!("{server}/app/#code={code}");
    let summary = Summary {
        server,
        profile: args.profile.clone(),
        user,
        user_created,
        token,
        device,
        test_message,
        service,
        listen_command,
        phone_link,
        phone_code: code,
    };
    print(&summary, args.json)
}

fn print(summary: &Summary, json: bool) -> Result<(), ApiError> {
    if json {
        let text =
            serde_json::to_string_pretty(summary).map_err(|e| internal("rendering JSON", e))?;
        println!("{text}");
        return Ok(());
    }
    progress(&format!(
        "done: `reflecto send hi` now notifies this computer. On your phone, open this link (pairing code {}, valid 10 minutes):",
        summary.phone_code
    ));
    if is_loopback(&summary.server) {
        eprintln!(
            "note: {} is this computer's own address; a phone reaches the relay at its public address (README: \"The relay as a service, behind Caddy\")",
            summary.server
        );
    }
    println!("{}", summary.phone_link);
    // SPEC §2.5: and its QR code, so the phone scans it off this screen.
    print!(
        "{}",
        crate::qr::pairing_qr_terminal(
            &summary.phone_link,
            std::io::IsTerminal::is_terminal(&std::io::stdout())
        )
    );
    Ok(())
}

/// Whether a phone could not reach `server` (a loopback host).
fn is_loopback(server: &str) -> bool {
    match url::Url::parse(server)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
