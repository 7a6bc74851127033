//! What `reflecto setup` makes and finds again, all under one credential profile: the sender
//! token (stored as `login` stores it) and this computer's device (paired as `pair` pairs
//! it). A profile bound to another relay or user is never overwritten.

use super::relay::{self, Found};
use super::{SetupArgs, progress};
use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode};
use crate::cli::admin::store_error;
use crate::cli::auth;
use crate::cli::pair::{host_name, pair_this_computer};
use crate::client::diagnose::check_server;
use crate::credentials::{Credentials, Storage, StoragePolicy};
use crate::store::{NewToken, Store, now_ms};
use serde::Serialize;
use tokio::runtime::Runtime;

/// One thing setup made or found again.
#[derive(Debug, Serialize)]
pub(super) struct Made {
    pub id: String,
    pub label: String,
    /// Made by this run (`false`: reused).
    pub created: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
}

/// A profile already bound to another relay is someone's login: never overwritten.
pub(super) fn check_profile(
    creds: &Credentials,
    profile: &str,
    server: &str,
) -> Result<(), ApiError> {
    if let Some(p) = creds.profile(profile)? {
        let home = check_server(&p.server).unwrap_or(p.server);
        if home != server {
            return Err(ApiError::new(
                ErrorCode::UsageError,
                format!(
                    "profile '{profile}' belongs to {home}, not {server}; set this relay up under another profile (--profile NAME), or `reflecto logout --profile {profile}` first"
                ),
            ));
        }
    }
    Ok(())
}

fn other_user(what: &str, profile: &str, owner: &str, user: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UsageError,
        format!(
            "profile '{profile}' holds {what} of user '{owner}', not '{user}'; pass --user {owner}, or use another profile (--profile NAME)"
        ),
    )
}

/// The profile's live token of `user`, else a new one labelled with the host name, checked
/// with the relay and stored as `login` stores it.
pub(super) fn token(
    rt: &Runtime,
    store: &Store,
    creds: &Credentials,
    args: &SetupArgs,
    found: &Found,
    user: &str,
) -> Result<(Made, Secret), ApiError> {
    let server = &found.server;
    if let Some((secret, storage)) = creds.stored_token(&args.profile)? {
        match rt
            .block_on(store.authenticate_token(secret.expose()))
            .map_err(store_error)?
        {
            Some(t) if !t.revoked && t.user != user => {
                return Err(other_user("a token", &args.profile, &t.user, user));
            }
            Some(t) if !t.revoked => {
                auth::verify(server, &secret).map_err(|e| relay::not_answering(found, e))?;
                progress(&format!(
                    "token {} '{}' is already in profile '{}' ({}); reusing it",
                    t.id,
                    t.label,
                    args.profile,
                    storage.describe()
                ));
                let made = Made {
                    id: t.id,
                    label: t.label,
                    created: false,
                    storage: Some(storage),
                };
                return Ok((made, secret));
            }
            _ => progress(&format!(
                "the token in profile '{}' is revoked or unknown to this relay; making a new one",
                args.profile
            )),
        }
    }
    let new = NewToken {
        user: user.to_owned(),
        label: host_name(),
        priority_cap: None,
        scope_devices: None,
        test: false,
    };
    let (record, secret) = rt
        .block_on(store.create_token(new, now_ms()))
        .map_err(store_error)?;
    if let Err(e) = auth::verify(server, &secret) {
        // Nothing half-made stays usable: the relay never saw this token, and it is stored
        // nowhere.
        let _ = rt.block_on(store.revoke_token(&record.id, now_ms()));
        return Err(match e.code {
            ErrorCode::InvalidToken => ApiError::new(
                ErrorCode::UsageError,
                format!(
                    "{server} does not know the token just made in the store {}: --server and the store (--data-dir, --config, --database) name different relays",
                    args.store.locate()?.describe()
                ),
            ),
            _ => relay::not_answering(found, e),
        });
    }
    let (storage, warning) = creds.login(&args.profile, server, &secret, StoragePolicy::Auto)?;
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    progress(&format!(
        "token {} '{}' created and stored in profile '{}' ({})",
        record.id,
        record.label,
        args.profile,
        storage.describe()
    ));
    let made = Made {
        id: record.id,
        label: record.label,
        created: true,
        storage: Some(storage),
    };
    Ok((made, secret))
}

/// The device the profile holds when the relay still has it and its secrets are here, else
/// this computer paired anew as `pair` pairs it (a code made in the store, redeemed over
/// HTTP); a device whose secrets were lost is removed, so this computer is one device.
pub(super) fn device(
    rt: &Runtime,
    store: &Store,
    creds: &Credentials,
    args: &SetupArgs,
    server: &str,
    user: &str,
) -> Result<Made, ApiError> {
    let profile = &args.profile;
    let previous = creds.profile(profile)?.and_then(|p| p.device);
    let mut replaced = None;
    if let Some(id) = previous {
        match rt.block_on(store.device(&id)).map_err(store_error)? {
            Some(d) if d.user != user => {
                return Err(other_user("a device", profile, &d.user, user));
            }
            Some(d) if creds.device(profile).is_ok() => {
                progress(&format!(
                    "this computer is already device {} '{}'; reusing it",
                    d.id, d.label
                ));
                return Ok(Made {
                    id: d.id,
                    label: d.label,
                    created: false,
                    storage: None,
                });
            }
            Some(d) => replaced = Some(d.id),
            None => progress(&format!(
                "device {id} of profile '{profile}' is gone from the relay; pairing again"
            )),
        }
    }
    let code = rt
        .block_on(store.create_pair_code(user, now_ms()))
        .map_err(store_error)?;
    let paired = pair_this_computer(creds, profile, server, &code, host_name())?;
    progress(&format!(
        "this computer is now device {} '{}' (sealed to its own key; secrets in the {})",
        paired.device_id,
        paired.label,
        paired.storage.describe()
    ));
    if let Some(old) = replaced {
        rt.block_on(store.remove_device(&old, now_ms()))
            .map_err(store_error)?;
        progress(&format!(
            "removed device {old}, whose secrets this computer no longer has"
        ));
    }
    Ok(Made {
        id: paired.device_id,
        label: paired.label,
        created: true,
        storage: Some(paired.storage),
    })
}
