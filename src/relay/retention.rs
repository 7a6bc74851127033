//! `--retention` (SPEC §1.14): how long a finished message is kept. Written as a number with a
//! unit — `90s`, `45m`, `12h`, `7d` — and `0` keeps messages forever.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A retention period in whole seconds; zero keeps forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    seconds: u64,
}

impl Retention {
    pub const DEFAULT: Retention = Retention {
        seconds: 7 * 86_400,
    };

    pub fn from_secs(seconds: u64) -> Retention {
        Retention { seconds }
    }

    /// The period in milliseconds, or `None` when messages are kept forever.
    pub fn as_ms(self) -> Option<i64> {
        (self.seconds > 0).then(|| self.seconds.saturating_mul(1000).min(i64::MAX as u64) as i64)
    }
}

/// The shortest time an audit entry is kept (SPEC §1.19): 90 days.
pub const AUDIT_MIN_MS: i64 = 90 * 86_400_000;

impl Retention {
    /// How long audit entries are kept: this retention or 90 days, whichever is longer;
    /// `None` (a retention of 0) keeps them forever, as it keeps messages.
    pub fn audit_ms(self) -> Option<i64> {
        self.as_ms().map(|ms| ms.max(AUDIT_MIN_MS))
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention::DEFAULT
    }
}

impl FromStr for Retention {
    type Err = String;

    fn from_str(s: &str) -> Result<Retention, String> {
        let s = s.trim();
        let bad =
            || format!("'{s}' is not a duration: use e.g. 90s, 45m, 12h, 7d, or 0 to keep forever");
        if s == "0" {
            return Ok(Retention::from_secs(0));
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = s.split_at(split);
        let n: u64 = number.parse().map_err(|_| bad())?;
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        n.checked_mul(scale)
            .map(Retention::from_secs)
            .ok_or_else(bad)
    }
}

impl fmt::Display for Retention {
    /// The largest unit that divides the period exactly, so `--print-config` reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        match s {
            0 => write!(f, "0"),
            _ if s.is_multiple_of(86_400) => write!(f, "{}d", s / 86_400),
            _ if s.is_multiple_of(3600) => write!(f, "{}h", s / 3600),
            _ if s.is_multiple_of(60) => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl Serialize for Retention {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Retention {
    /// A duration string; in a TOML file a bare `0` (keep forever) is accepted too.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(i64),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
            Raw::Number(0) => Ok(Retention::from_secs(0)),
            Raw::Number(n) => Err(serde::de::Error::custom(format!(
                "{n} has no unit: write e.g. \"{n}s\" or \"{n}d\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_entries_are_kept_the_retention_or_90_days_whichever_is_longer() {
        let days = |d: u64| Retention::from_secs(d * 86_400).audit_ms();
        assert_eq!(days(7), Some(AUDIT_MIN_MS));
        assert_eq!(days(120), Some(120 * 86_400_000));
        assert_eq!(Retention::from_secs(0).audit_ms(), None);
    }

    #[test]
    fn durations_parse_with_units() {
        let secs = |s: &str| s.parse::<Retention>().map(|r| r.seconds);
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("45m"), Ok(2700));
        assert_eq!(secs("12h"), Ok(43_200));
        assert_eq!(secs("7d"), Ok(604_800));
        assert_eq!(secs("0"), Ok(0));
        for bad in ["", "7", "d", "7w", "-1d", "1.5h", "99999999999999999999d"] {
            assert!(bad.parse::<Retention>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn zero_keeps_forever_and_display_reads_back() {
        assert_eq!(Retention::from_secs(0).as_ms(), None);
        assert_eq!(Retention::DEFAULT.as_ms(), Some(604_800_000));
        for s in ["0", "90s", "2m", "12h", "7d"] {
            assert_eq!(s.parse::<Retention>().unwrap().to_string(), s);
        }
    }
}
