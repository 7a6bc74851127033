//! Device secrets (`reflecto pair`): the `rfd_live_` stream credential and the X25519 private
//! key, stored like tokens — keyring first, the 0600 file as the fallback — under their own
//! keyring entries so a token and a pairing on one profile never overwrite each other.

use super::{
    Credentials, CredentialsFile, Profile, Storage, io_error, keyring_delete, keyring_get,
    keyring_set, read_toml, write_private,
};
use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
pub(super) struct DeviceFileEntry {
    credential: String,
    private_key: String,
}

/// What `reflecto listen` needs to read its stream and open sealed deliveries.
pub struct DeviceSecrets {
    pub device_id: String,
    pub server: String,
    pub credential: Secret,
    pub private_key: Secret,
}

fn device_user(kind: &str, profile: &str) -> String {
    format!("{kind}:{profile}")
}

fn keyring_get_device(profile: &str) -> Result<Option<(Secret, Secret)>, String> {
    let credential = keyring_get(&device_user("device-credential", profile))?;
    let key = keyring_get(&device_user("device-key", profile))?;
    Ok(credential.zip(key))
}

fn keyring_set_device(profile: &str, credential: &Secret, key: &Secret) -> Result<(), String> {
    let stored = keyring_set(&device_user("device-credential", profile), credential)
        .and_then(|()| keyring_set(&device_user("device-key", profile), key));
    if stored.is_err() {
        keyring_delete_device(profile);
    }
    stored
}

fn keyring_delete_device(profile: &str) -> bool {
    let a = keyring_delete(&device_user("device-credential", profile));
    let b = keyring_delete(&device_user("device-key", profile));
    a || b
}

impl Credentials {
    fn set_file_device(
        &self,
        profile: &str,
        entry: Option<DeviceFileEntry>,
    ) -> Result<(), ApiError> {
        let path = self.credentials_path();
        let mut file: CredentialsFile = read_toml(&path)?;
        let changed = match entry {
            Some(e) => {
                file.devices.insert(profile.to_owned(), e);
                true
            }
            None => file.devices.remove(profile).is_some(),
        };
        if !changed {
            return Ok(());
        }
        if file.tokens.is_empty() && file.devices.is_empty() {
            let _ = std::fs::remove_file(&path);
            return Ok(());
        }
        let text = toml::to_string_pretty(&file).map_err(|e| io_error("rendering", &path, e))?;
        write_private(&path, &text, 0o600)
    }

    /// Stores a pairing for `profile`: the secrets in the keyring (else the 0600 file, with
    /// the warning to print), the server and device id in the profile.
    pub fn store_device(
        &self,
        profile: &str,
        server: &str,
        device_id: &str,
        credential: &Secret,
        private_key: &Secret,
    ) -> Result<(Storage, Option<String>), ApiError> {
        let (storage, warning) = match keyring_set_device(profile, credential, private_key) {
            Ok(()) => {
                self.set_file_device(profile, None)?;
                (Storage::Keyring, None)
            }
            Err(reason) => {
                tracing::debug!(%reason, "keyring unavailable, falling back to the credentials file");
                let entry = DeviceFileEntry {
                    credential: credential.expose().to_owned(),
                    private_key: private_key.expose().to_owned(),
                };
                self.set_file_device(profile, Some(entry))?;
                let warning = format!(
                    "no OS keyring reachable: device credential and private key stored in {} (mode 0600)",
                    self.credentials_path().display()
                );
                (Storage::File, Some(warning))
            }
        };
        self.save_profile(
            profile,
            Some(Profile {
                server: server.to_owned(),
                device: Some(device_id.to_owned()),
            }),
        )?;
        Ok((storage, warning))
    }

    /// The pairing of `profile`: keyring, then file.
    pub fn device(&self, profile: &str) -> Result<DeviceSecrets, ApiError> {
        let not_paired = || {
            ApiError::new(
                ErrorCode::NoStoredToken,
                format!(
                    "this computer is not paired for profile '{profile}'; run `reflecto pair CODE --profile {profile}`"
                ),
            )
        };
        let profile_entry = self.profile(profile)?.ok_or_else(not_paired)?;
        let device_id = profile_entry.device.ok_or_else(not_paired)?;
        let (credential, private_key) = match keyring_get_device(profile) {
            Ok(Some(pair)) => pair,
            _ => {
                let mut file: CredentialsFile = read_toml(&self.credentials_path())?;
                let entry = file.devices.remove(profile).ok_or_else(not_paired)?;
                (
                    Secret::new(entry.credential),
                    Secret::new(entry.private_key),
                )
            }
        };
        Ok(DeviceSecrets {
            device_id,
            server: profile_entry.server,
            credential,
            private_key,
        })
    }

    /// Forgets the pairing of `profile` (its secrets and the device id), wherever stored.
    pub fn forget_device(&self, profile: &str) -> Result<(), ApiError> {
        keyring_delete_device(profile);
        self.set_file_device(profile, None)?;
        if let Some(mut p) = self.profile(profile)?
            && p.device.take().is_some()
        {
            self.save_profile(profile, Some(p))?;
        }
        Ok(())
    }
}
