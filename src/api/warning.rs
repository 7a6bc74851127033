//! Warnings: a 200 response still tells the sender what was changed or dropped. The texts are
//! part of the contract (SPEC §1.5); `Display` is the only place they are spelled.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    UnknownDeviceLabel(String),
    DeviceFallback,
    TagsTruncated {
        got: usize,
    },
    /// 1-based index of the tag that was cut.
    TagTruncated {
        index: usize,
    },
    ActionsTruncated {
        got: usize,
    },
    NoPairedDevices,
    ScopeDropped {
        label: String,
        device_ids: Vec<String>,
    },
    /// A hook's text over a field's cap, cut at a UTF-8 boundary (hooks only, SPEC §1.18).
    FieldTruncated {
        field: &'static str,
        max: usize,
    },
    /// A GitHub event the `github` hook does not map (hooks only, SPEC §1.18).
    GithubEventIgnored(String),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::UnknownDeviceLabel(entry) => write!(f, "unknown device label: '{entry}'"),
            Warning::DeviceFallback => f.write_str(
                "device fallback: all entries unknown, delivering to every paired device",
            ),
            Warning::TagsTruncated { got } => write!(f, "tags truncated to first 5 (got {got})"),
            Warning::TagTruncated { index } => write!(f, "tag #{index} truncated to 32 bytes"),
            Warning::ActionsTruncated { got } => {
                write!(f, "actions truncated to first 3 (got {got})")
            }
            Warning::NoPairedDevices => f.write_str("no paired devices for this token's owner"),
            Warning::ScopeDropped { label, device_ids } => write!(
                f,
                "token scope '{label}' dropped out-of-scope device(s): {}",
                device_ids.join(", ")
            ),
            Warning::FieldTruncated { field, max } => {
                write!(f, "{field} truncated to {max} bytes")
            }
            Warning::GithubEventIgnored(name) => write!(f, "github event '{name}' ignored"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_texts() {
        let cases = [
            (
                Warning::UnknownDeviceLabel("tv".into()),
                "unknown device label: 'tv'",
            ),
            (
                Warning::DeviceFallback,
                "device fallback: all entries unknown, delivering to every paired device",
            ),
            (
                Warning::TagsTruncated { got: 7 },
                "tags truncated to first 5 (got 7)",
            ),
            (
                Warning::TagTruncated { index: 2 },
                "tag #2 truncated to 32 bytes",
            ),
            (
                Warning::ActionsTruncated { got: 4 },
                "actions truncated to first 3 (got 4)",
            ),
            (
                Warning::NoPairedDevices,
                "no paired devices for this token's owner",
            ),
            (
                Warning::ScopeDropped {
                    label: "ci".into(),
                    device_ids: vec!["dev_1".into(), "dev_2".into()],
                },
                "token scope 'ci' dropped out-of-scope device(s): dev_1, dev_2",
            ),
            (
                Warning::FieldTruncated {
                    field: "message",
                    max: 1500,
                },
                "message truncated to 1500 bytes",
            ),
            (
                Warning::GithubEventIgnored("star".into()),
                "github event 'star' ignored",
            ),
        ];
        for (w, text) in cases {
            assert_eq!(w.to_string(), text);
        }
    }
}
