//! The relay's configuration: flags, then `REFLECTO_*` environment variables (both through
//! clap), then a TOML file, then defaults. The resolved value is what `--print-config` shows.

use super::retention::Retention;
use crate::delivery::webpush::vapid::Subject;
use crate::hooks::HookTemplateConfig;
use crate::store::limits::Limits;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_FCM_ENDPOINT: &str = "https://fcm.googleapis.com";
pub use crate::delivery::DEFAULT_LEASE_SECS;

/// Every setting, each optional: the shape of the TOML file and of the flag/env overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    /// `postgres://…`: share one PostgreSQL database with other relays (SPEC §3).
    pub database: Option<String>,
    pub fcm_credentials: Option<PathBuf>,
    pub fcm_endpoint: Option<String>,
    pub trust_proxy: Option<bool>,
    pub webpush_allow_local: Option<bool>,
    pub callback_allow_local: Option<bool>,
    pub vapid_subject: Option<String>,
    /// The address people reach the relay at, for pairing links and QR codes (SPEC §2.4).
    pub public_url: Option<String>,
    pub log_format: Option<LogFormat>,
    pub retention: Option<Retention>,
    pub lease_secs: Option<u64>,
    #[serde(default)]
    pub limits: PartialLimits,
    #[serde(default)]
    pub connections: PartialConnections,
    /// `[hooks.<name>]`: operator templates for `/v1/hooks/<name>` (SPEC §1.18); file only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hooks: BTreeMap<String, HookTemplateConfig>,
}

/// A table of the file whose every setting is optional: its fields are declared once and
/// layered by `over`, `self` winning where it has a value and `lower` filling the rest.
macro_rules! partial_table {
    ($(#[$doc:meta])* pub struct $name:ident { $($field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $(pub $field: Option<$ty>,)*
        }

        impl $name {
            fn over(self, lower: $name) -> $name {
                $name {
                    $($field: self.$field.or(lower.$field),)*
                }
            }
        }
    };
}

partial_table! {
    /// The `[limits]` table: a preset (`preset = "hosted"`) and any layer set explicitly, which
    /// overrides the preset whichever source set it (SPEC §1.8).
    pub struct PartialLimits {
        preset: LimitsPreset,
        token_burst: u64,
        token_monthly: u64,
        receiver_daily: u64,
        ip_minute: u64,
        ip_hour: u64,
    }
}

partial_table! {
    /// The `[connections]` table: what one client may hold of the relay (see [`Connections`]).
    pub struct PartialConnections {
        header_timeout_secs: u64,
        body_timeout_secs: u64,
        idle_timeout_secs: u64,
        max_connections: usize,
        max_header_bytes: usize,
    }
}

/// Limits on each connection and on how many there are, so slow, idle or oversized clients
/// cannot exhaust the relay's tasks, memory or file descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Connections {
    /// From a request's first byte to its last header byte.
    pub header_timeout_secs: u64,
    /// From a request's last header byte to its last body byte.
    pub body_timeout_secs: u64,
    /// A connection with no request in progress and no bytes arriving is closed after this.
    /// Desktop streams are a request in progress, so they are never idle.
    pub idle_timeout_secs: u64,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// The request line and headers together.
    pub max_header_bytes: usize,
}

impl Default for Connections {
    fn default() -> Connections {
        Connections {
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            idle_timeout_secs: 60,
            max_connections: 4096,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// Where the rate limits start before any layer is set (`--limits`, `REFLECTO_LIMITS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LimitsPreset {
    /// A relay run for its operator: token_burst 60, token_monthly off, receiver_daily 10000,
    /// ip_minute 300, ip_hour 3000
    #[default]
    SelfHosted,
    /// The hosted free tier: token_burst 60, token_monthly 500, receiver_daily 1000,
    /// ip_minute 20, ip_hour 200
    Hosted,
}

impl LimitsPreset {
    pub fn limits(self) -> Limits {
        match self {
            LimitsPreset::SelfHosted => Limits::SELF_HOSTED,
            LimitsPreset::Hosted => Limits::HOSTED,
        }
    }
}

impl PartialLimits {
    /// The preset's numbers with every explicitly set layer over them.
    pub fn resolve(self) -> Limits {
        let base = self.preset.unwrap_or_default().limits();
        Limits {
            token_burst: self.token_burst.unwrap_or(base.token_burst),
            token_monthly: self.token_monthly.unwrap_or(base.token_monthly),
            receiver_daily: self.receiver_daily.unwrap_or(base.receiver_daily),
            ip_minute: self.ip_minute.unwrap_or(base.ip_minute),
            ip_hour: self.ip_hour.unwrap_or(base.ip_hour),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// A `postgres://` URL, or `None` for SQLite in the data dir. Printed without its password.
    #[serde(serialize_with = "redacted_url")]
    pub database: Option<String>,
    pub fcm_credentials: Option<PathBuf>,
    pub fcm_endpoint: String,
    pub trust_proxy: bool,
    /// Web Push endpoints may be plain http and resolve to loopback, private or link-local
    /// addresses (a distributor on the LAN, tests).
    pub webpush_allow_local: bool,
    /// `--callback-allow-local`: callbacks (SPEC §1.17) may be http and local (tests).
    pub callback_allow_local: bool,
    /// The VAPID JWT's `sub`: a `mailto:` or `https:` contact for push services.
    pub vapid_subject: String,
    /// The address people reach the relay at (pairing links, QR codes); `None`: each
    /// request's own origin.
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    /// How long finished messages are kept (`0` keeps forever).
    pub retention: Retention,
    /// How long a delivery attempt holds its job; a relay that dies mid-attempt has its jobs
    /// taken over by the others this long after.
    pub lease_secs: u64,
    pub limits: Limits,
    pub connections: Connections,
    /// Operator hook templates by name, compiled (and refused if broken) at start-up.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hooks: BTreeMap<String, HookTemplateConfig>,
}

/// `~/.local/share/reflecto` on Linux (XDG_DATA_HOME honoured), the platform's equivalent elsewhere.
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("dev", "reflecto", "reflecto")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".reflecto"))
}

/// SPEC §1.13 asks for "the relay's admin address", which the relay does not have: the default
/// is `mailto:admin@<this host's name>`, and `--help` tells operators to set a real contact.
pub fn default_vapid_subject() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
        .unwrap_or_else(|| "localhost".to_owned());
    format!("mailto:admin@{host}")
}

fn redacted_url<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_some(&crate::store::redact_url(url)),
        None => s.serialize_none(),
    }
}

impl ServeConfig {
    /// Where the store lives: `--database` if given, else SQLite in the data dir.
    pub fn database(&self) -> Result<crate::store::Database, crate::api::ApiError> {
        crate::store::Database::choose(self.database.as_deref(), &self.data_dir)
            .map_err(|e| crate::api::ApiError::new(crate::api::ErrorCode::UsageError, e))
    }

    /// `--public-url` checked, a usage error (exit 2) when it is not an http(s) URL.
    pub fn public_url(&self) -> Result<Option<String>, crate::api::ApiError> {
        self.public_url
            .as_deref()
            .map(crate::qr::check_public_url)
            .transpose()
            .map_err(|e| crate::api::ApiError::new(crate::api::ErrorCode::UsageError, e))
    }

    /// `--vapid-subject` checked, a usage error (exit 2) when it is not a contact.
    pub fn vapid_subject(&self) -> Result<Subject, crate::api::ApiError> {
        Subject::parse(&self.vapid_subject).map_err(|e| {
            crate::api::ApiError::new(
                crate::api::ErrorCode::UsageError,
                format!("--vapid-subject '{}': {e}", self.vapid_subject),
            )
        })
    }
}

impl PartialConfig {
    pub fn from_file(path: &Path) -> Result<PartialConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }

    /// `self` wins where it has a value; `lower` fills the rest.
    pub fn over(self, lower: PartialConfig) -> PartialConfig {
        PartialConfig {
            listen: self.listen.or(lower.listen),
            data_dir: self.data_dir.or(lower.data_dir),
            database: self.database.or(lower.database),
            fcm_credentials: self.fcm_credentials.or(lower.fcm_credentials),
            fcm_endpoint: self.fcm_endpoint.or(lower.fcm_endpoint),
            trust_proxy: self.trust_proxy.or(lower.trust_proxy),
            webpush_allow_local: self.webpush_allow_local.or(lower.webpush_allow_local),
            callback_allow_local: self.callback_allow_local.or(lower.callback_allow_local),
            vapid_subject: self.vapid_subject.or(lower.vapid_subject),
            public_url: self.public_url.or(lower.public_url),
            log_format: self.log_format.or(lower.log_format),
            retention: self.retention.or(lower.retention),
            lease_secs: self.lease_secs.or(lower.lease_secs),
            limits: self.limits.over(lower.limits),
            connections: self.connections.over(lower.connections),
            hooks: if self.hooks.is_empty() {
                lower.hooks
            } else {
                self.hooks
            },
        }
    }

    pub fn resolve(self) -> ServeConfig {
        ServeConfig {
            listen: self
                .listen
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default address")),
            data_dir: self.data_dir.unwrap_or_else(default_data_dir),
            database: self.database,
            fcm_credentials: self.fcm_credentials,
            fcm_endpoint: self
                .fcm_endpoint
                .unwrap_or_else(|| DEFAULT_FCM_ENDPOINT.to_owned()),
            trust_proxy: self.trust_proxy.unwrap_or(false),
            webpush_allow_local: self.webpush_allow_local.unwrap_or(false),
            callback_allow_local: self.callback_allow_local.unwrap_or(false),
            vapid_subject: self.vapid_subject.unwrap_or_else(default_vapid_subject),
            public_url: self.public_url,
            log_format: self.log_format.unwrap_or_default(),
            retention: self.retention.unwrap_or_default(),
            lease_secs: self.lease_secs.unwrap_or(DEFAULT_LEASE_SECS).max(1),
            limits: self.limits.resolve(),
            connections: self.connections.resolve(),
            hooks: self.hooks,
        }
    }
}

impl PartialConnections {
    /// Zero timeouts and a zero cap would make the relay unusable, so they are raised to 1;
    /// hyper needs at least 8 KiB of read buffer, so smaller header caps are raised to that.
    fn resolve(self) -> Connections {
        let d = Connections::default();
        Connections {
            header_timeout_secs: self
                .header_timeout_secs
                .unwrap_or(d.header_timeout_secs)
                .max(1),
            body_timeout_secs: self.body_timeout_secs.unwrap_or(d.body_timeout_secs).max(1),
            idle_timeout_secs: self.idle_timeout_secs.unwrap_or(d.idle_timeout_secs).max(1),
            max_connections: self.max_connections.unwrap_or(d.max_connections).max(1),
            max_header_bytes: self
                .max_header_bytes
                .unwrap_or(d.max_header_bytes)
                .max(MIN_HEADER_BYTES),
        }
    }
}

/// hyper's smallest read buffer.
pub const MIN_HEADER_BYTES: usize = 8192;

impl ServeConfig {
    /// TOML for `--print-config`. The configuration holds paths, never secret values: the
    /// FCM key stays in its file, so nothing needs redacting beyond not reading it.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# could not render: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration of a file with no flags set.
    fn resolved_over_defaults(file: &str) -> ServeConfig {
        let file: PartialConfig = toml::from_str(file).unwrap();
        PartialConfig::default().over(file).resolve()
    }

    #[test]
    fn flags_beat_file_beats_defaults() {
        let file: PartialConfig = toml::from_str(
            "listen = \"0.0.0.0:9000\"\ntrust_proxy = true\n[limits]\ntoken_burst = 5\nip_hour = 0\n",
        )
        .unwrap();
        let flags = PartialConfig {
            listen: Some("127.0.0.1:1".parse().unwrap()),
            ..Default::default()
        };
        let resolved = flags.over(file).resolve();
        assert_eq!(resolved.listen.to_string(), "127.0.0.1:1");
        assert!(resolved.trust_proxy);
        assert_eq!(resolved.limits.token_burst, 5);
        assert_eq!(resolved.limits.ip_hour, 0);
        assert_eq!(
            resolved.limits.token_monthly, 0,
            "the self-hosted default: off"
        );
        assert_eq!(resolved.fcm_endpoint, DEFAULT_FCM_ENDPOINT);
        assert_eq!(resolved.retention, Retention::DEFAULT);
        assert_eq!(resolved.connections, Connections::default());
    }

    #[test]
    fn the_hosted_preset_parses_and_set_layers_override_it() {
        let file: PartialConfig =
            toml::from_str("[limits]\npreset = \"hosted\"\nip_minute = 100\n").unwrap();
        let limits = file.clone().resolve().limits;
        assert_eq!(
            limits,
            Limits {
                ip_minute: 100,
                ..Limits::HOSTED
            }
        );
        // A flag's layer beats the file's preset; a flag's preset keeps the file's layer.
        let flag_layer = PartialConfig {
            limits: PartialLimits {
                token_monthly: Some(9),
                ..Default::default()
            },
            ..Default::default()
        };
        let limits = flag_layer.over(file.clone()).resolve().limits;
        assert_eq!((limits.token_monthly, limits.ip_hour), (9, 200));
        let flag_preset = PartialConfig {
            limits: PartialLimits {
                preset: Some(LimitsPreset::SelfHosted),
                ..Default::default()
            },
            ..Default::default()
        };
        let limits = flag_preset.over(file).resolve().limits;
        assert_eq!(
            limits,
            Limits {
                ip_minute: 100,
                ..Limits::SELF_HOSTED
            }
        );
        assert_eq!(
            PartialConfig::default().resolve().limits,
            Limits::SELF_HOSTED
        );
        assert!(toml::from_str::<PartialConfig>("[limits]\npreset = \"free\"\n").is_err());
        let named: PartialConfig = toml::from_str("[limits]\npreset = \"self-hosted\"\n").unwrap();
        assert_eq!(named.resolve().limits, Limits::SELF_HOSTED);
    }

    #[test]
    fn retention_comes_from_the_file() {
        let file: PartialConfig = toml::from_str("retention = \"12h\"").unwrap();
        assert_eq!(file.resolve().retention.as_ms(), Some(12 * 3600 * 1000));
        assert!(toml::from_str::<PartialConfig>("retention = \"soon\"").is_err());
        assert!(toml::from_str::<PartialConfig>("retention = 7").is_err());
        let forever: PartialConfig = toml::from_str("retention = 0").unwrap();
        assert_eq!(forever.resolve().retention.as_ms(), None);
    }

    #[test]
    fn connection_limits_come_from_the_file_and_are_kept_usable() {
        let resolved = resolved_over_defaults(
            "[connections]\nheader_timeout_secs = 3\nidle_timeout_secs = 0\nmax_connections = 7\nmax_header_bytes = 100\n",
        );
        assert_eq!(resolved.connections.header_timeout_secs, 3);
        assert_eq!(resolved.connections.idle_timeout_secs, 1);
        assert_eq!(resolved.connections.body_timeout_secs, 30);
        assert_eq!(resolved.connections.max_connections, 7);
        assert_eq!(resolved.connections.max_header_bytes, MIN_HEADER_BYTES);
    }

    #[test]
    fn hook_templates_come_from_the_file_and_print_back() {
        let resolved = resolved_over_defaults(
            "[hooks.uptime]\ntitle = \"{{ monitor.name }}\"\nmessage = \"{{ msg }}\"\n",
        );
        assert_eq!(resolved.hooks["uptime"].message, "{{ msg }}");
        let again: PartialConfig = toml::from_str(&resolved.to_toml()).unwrap();
        assert_eq!(again.resolve(), resolved);
        assert!(toml::from_str::<PartialConfig>("[hooks.x]\ntitle = \"t\"\n").is_err());
        assert!(toml::from_str::<PartialConfig>("[hooks.x]\nmessage = \"m\"\nbody = 1\n").is_err());
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        assert!(toml::from_str::<PartialConfig>("listn = \"x\"").is_err());
    }

    #[test]
    fn printed_config_parses_back() {
        let resolved = PartialConfig::default().resolve();
        let again: PartialConfig = toml::from_str(&resolved.to_toml()).unwrap();
        assert_eq!(again.resolve(), resolved);
    }
}
