//! Where the client's tokens live. Resolution order: `REFLECTO_TOKEN` (or `--token-stdin`), then
//! the OS keyring entry for the profile (service `reflecto`, user = profile name), then a 0600
//! credentials file — written only when no keyring can be reached, with a warning every time.
//! Profiles (each remembering its server) live in `config.toml` beside it; a stored token is
//! only ever sent to its profile's server (`binding`).

mod binding;
mod device;

pub use device::DeviceSecrets;

use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const KEYRING_SERVICE: &str = "reflecto";
pub const DEFAULT_PROFILE: &str = "default";
pub const DEFAULT_SERVER: &str = "https://api.reflecto.dev";

/// Where a token was found or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    Env,
    Keyring,
    File,
}

impl Storage {
    pub fn describe(self) -> &'static str {
        match self {
            Storage::Env => "REFLECTO_TOKEN",
            Storage::Keyring => "OS keyring",
            Storage::File => "credentials file (0600)",
        }
    }
}

/// How `login` may store the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoragePolicy {
    /// Keyring, else the file with a warning.
    Auto,
    /// The keyring or nothing.
    SecureOnly,
    /// The file, without trying the keyring.
    InsecureFile,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ProfilesFile {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub server: String,
    /// The `dev_` id this machine was paired as (`reflecto pair`), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct CredentialsFile {
    #[serde(default)]
    tokens: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    devices: BTreeMap<String, device::DeviceFileEntry>,
}

/// The client's config directory: `REFLECTO_CONFIG_DIR`, else the platform's
/// (`$XDG_CONFIG_HOME/reflecto`, `~/.config/reflecto`).
pub fn config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("REFLECTO_CONFIG_DIR") {
        return PathBuf::from(dir);
    }
    directories::ProjectDirs::from("dev", "reflecto", "reflecto")
        .map(|d| d.config_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".reflecto"))
}

fn io_error(what: &str, path: &Path, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::CliInternalError,
        format!("{what} {}: {e}", path.display()),
    )
}

fn read_toml<T: Default + for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ApiError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| io_error("parsing", path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(io_error("reading", path, e)),
    }
}

/// Creates `dir` and its missing parents 0700 whatever the umask: they hold credentials.
fn create_private_dir(dir: &Path) -> Result<(), ApiError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| io_error("creating", dir, e))
}

/// Refuses a credentials file others may read, as ssh does with a private key.
fn check_private(path: &Path) -> Result<(), ApiError> {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(ApiError::new(
                ErrorCode::InsecureCredentials,
                format!(
                    "credentials file {} is accessible by other users (mode {mode:04o}); refusing to use it. Run `chmod 600 {}`",
                    path.display(),
                    path.display()
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Writes atomically (temp file + rename) with the given Unix mode.
fn write_private(path: &Path, text: &str, mode: u32) -> Result<(), ApiError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options
            .open(&tmp)
            .map_err(|e| io_error("writing", &tmp, e))?;
        #[cfg(unix)]
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(|e| io_error("securing", &tmp, e))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .map_err(|e| io_error("writing", &tmp, e))?;
        file.sync_all().map_err(|e| io_error("writing", &tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| io_error("writing", path, e))
}

pub struct Credentials {
    dir: PathBuf,
}

impl Credentials {
    pub fn new(dir: PathBuf) -> Credentials {
        Credentials { dir }
    }

    pub fn from_env() -> Credentials {
        Credentials::new(config_dir())
    }

    pub fn profiles_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.dir.join("credentials.toml")
    }

    pub fn profiles(&self) -> Result<BTreeMap<String, Profile>, ApiError> {
        Ok(read_toml::<ProfilesFile>(&self.profiles_path())?.profiles)
    }

    pub fn profile(&self, name: &str) -> Result<Option<Profile>, ApiError> {
        Ok(self.profiles()?.remove(name))
    }

    fn save_profile(&self, name: &str, profile: Option<Profile>) -> Result<(), ApiError> {
        let mut file: ProfilesFile = read_toml(&self.profiles_path())?;
        match profile {
            Some(p) => file.profiles.insert(name.to_owned(), p),
            None => file.profiles.remove(name),
        };
        let text = toml::to_string_pretty(&file)
            .map_err(|e| io_error("rendering", &self.profiles_path(), e))?;
        write_private(&self.profiles_path(), &text, 0o644)
    }

    fn file_token(&self, profile: &str) -> Result<Option<Secret>, ApiError> {
        check_private(&self.credentials_path())?;
        Ok(read_toml::<CredentialsFile>(&self.credentials_path())?
            .tokens
            .remove(profile)
            .map(Secret::new))
    }

    fn set_file_token(&self, profile: &str, token: Option<&Secret>) -> Result<bool, ApiError> {
        let path = self.credentials_path();
        let mut file: CredentialsFile = read_toml(&path)?;
        let changed = match token {
            Some(t) => {
                file.tokens
                    .insert(profile.to_owned(), t.expose().to_owned());
                true
            }
            None => file.tokens.remove(profile).is_some(),
        };
        if !changed {
            return Ok(false);
        }
        if file.tokens.is_empty() && file.devices.is_empty() {
            let _ = std::fs::remove_file(&path);
            return Ok(true);
        }
        let text = toml::to_string_pretty(&file).map_err(|e| io_error("rendering", &path, e))?;
        write_private(&path, &text, 0o600)?;
        Ok(true)
    }

    /// The token for `profile`: env, then keyring, then file.
    pub fn token(&self, profile: &str) -> Result<(Secret, Storage), ApiError> {
        if let Some(token) = std::env::var("REFLECTO_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
        {
            return Ok((Secret::new(token.trim()), Storage::Env));
        }
        if let Some(stored) = self.stored_token(profile)? {
            return Ok(stored);
        }
        Err(ApiError::new(
            ErrorCode::NoStoredToken,
            format!(
                "no token stored for profile '{profile}'; run `reflecto login --profile {profile}` or set REFLECTO_TOKEN"
            ),
        ))
    }

    /// The token stored for `profile` (keyring, then file), ignoring `REFLECTO_TOKEN`: what
    /// `reflecto setup` finds of an earlier run.
    pub fn stored_token(&self, profile: &str) -> Result<Option<(Secret, Storage)>, ApiError> {
        if let Ok(Some(token)) = keyring_get(profile) {
            return Ok(Some((token, Storage::Keyring)));
        }
        Ok(self.file_token(profile)?.map(|t| (t, Storage::File)))
    }

    /// Stores `token` for `profile` under `policy` and remembers its server. Returns where it
    /// went and, for the file fallback, the warning to print.
    pub fn login(
        &self,
        profile: &str,
        server: &str,
        token: &Secret,
        policy: StoragePolicy,
    ) -> Result<(Storage, Option<String>), ApiError> {
        let stored = match policy {
            StoragePolicy::InsecureFile => None,
            _ => match keyring_set(profile, token) {
                Ok(()) => Some(Storage::Keyring),
                Err(reason) if policy == StoragePolicy::SecureOnly => {
                    return Err(ApiError::new(
                        ErrorCode::KeyringUnavailable,
                        format!(
                            "the OS keyring is unavailable ({reason}) and --secure-storage-only forbids the file fallback"
                        ),
                    ));
                }
                Err(reason) => {
                    tracing::debug!(%reason, "keyring unavailable, falling back to the credentials file");
                    None
                }
            },
        };
        let (storage, warning) = match stored {
            Some(storage) => {
                // A stale file copy would shadow nothing, but must not linger on disk.
                self.set_file_token(profile, None)?;
                (storage, None)
            }
            None => {
                self.set_file_token(profile, Some(token))?;
                let warning = format!(
                    "no OS keyring reachable: token stored in {} (mode 0600); use --secure-storage-only to refuse this",
                    self.credentials_path().display()
                );
                (Storage::File, Some(warning))
            }
        };
        // A pairing on this profile survives a new login to the same server.
        let device = self
            .profile(profile)?
            .filter(|p| p.server == server)
            .and_then(|p| p.device);
        self.save_profile(
            profile,
            Some(Profile {
                server: server.to_owned(),
                device,
            }),
        )?;
        Ok((storage, warning))
    }

    /// Forgets the profile and its token wherever it is stored. Returns whether anything was.
    pub fn logout(&self, profile: &str) -> Result<bool, ApiError> {
        let _ = self.forget_device(profile);
        let in_keyring = keyring_delete(profile);
        let in_file = self.set_file_token(profile, None)?;
        let had_profile = self.profile(profile)?.is_some();
        self.save_profile(profile, None)?;
        Ok(in_keyring || in_file || had_profile)
    }

    /// Where each known profile's token lives, masked.
    pub fn status(&self) -> Result<Vec<ProfileStatus>, ApiError> {
        let mut out = Vec::new();
        for (name, profile) in self.profiles()? {
            let mut problem = None;
            let found = match keyring_get(&name) {
                Ok(Some(t)) => Some((t, Storage::Keyring)),
                _ => match self.file_token(&name) {
                    Ok(t) => t.map(|t| (t, Storage::File)),
                    Err(e) if e.code == ErrorCode::InsecureCredentials => {
                        problem = Some(e.message);
                        None
                    }
                    Err(e) => return Err(e),
                },
            };
            out.push(ProfileStatus {
                profile: name,
                server: profile.server,
                storage: found.as_ref().map(|(_, s)| *s),
                token: found.map(|(t, _)| t.masked()),
                problem,
            });
        }
        Ok(out)
    }
}

#[derive(Debug, Serialize)]
pub struct ProfileStatus {
    pub profile: String,
    pub server: String,
    pub storage: Option<Storage>,
    pub token: Option<String>,
    /// Why a stored token cannot be used (an unsafe credentials file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

fn keyring_entry(profile: &str) -> Result<keyring::Entry, String> {
    keyring::Entry::new(KEYRING_SERVICE, profile).map_err(|e| e.to_string())
}

fn keyring_get(profile: &str) -> Result<Option<Secret>, String> {
    match keyring_entry(profile)?.get_password() {
        Ok(token) => Ok(Some(Secret::new(token))),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn keyring_set(profile: &str, token: &Secret) -> Result<(), String> {
    keyring_entry(profile)?
        .set_password(token.expose())
        .map_err(|e| e.to_string())?;
    // Read back: some backends accept a write they cannot keep.
    match keyring_get(profile)? {
        Some(back) if back == *token => Ok(()),
        _ => Err("the keyring did not keep the token".to_owned()),
    }
}

fn keyring_delete(profile: &str) -> bool {
    keyring_entry(profile).is_ok_and(|e| e.delete_credential().is_ok())
}
