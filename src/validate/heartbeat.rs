//! Heartbeat rules (SPEC §1.18): the name, the durations `every` and `grace` and their
//! ranges, and the default grace. Pure, so the relay and `reflecto ping` check the same way
//! (a ping the relay would refuse never leaves the machine).

use crate::api::{ApiError, ErrorCode};

pub const SECOND_MS: i64 = 1000;
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// `every`: 1 minute – 31 days.
pub const EVERY_MIN_MS: i64 = MINUTE_MS;
pub const EVERY_MAX_MS: i64 = 31 * DAY_MS;
/// `grace`: 0 – 1 day.
pub const GRACE_MAX_MS: i64 = DAY_MS;
/// The longest name, in bytes.
pub const NAME_MAX: usize = 64;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidHeartbeat, message)
}

/// A heartbeat's name: 1–64 bytes of `[A-Za-z0-9._-]`.
pub fn name(name: &str) -> Result<&str, ApiError> {
    let ok = (1..=NAME_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(name)
    } else {
        Err(invalid(
            "a heartbeat's name is 1–64 bytes of A-Z a-z 0-9 . _ -",
        ))
    }
}

/// A duration written as a whole number with a unit: `90s`, `45m`, `12h`, `1d`; milliseconds.
pub fn duration(field: &str, text: &str) -> Result<i64, ApiError> {
    let bad = || {
        invalid(format!(
            "{field} '{}' is not a duration: use e.g. 90s, 45m, 12h, 1d",
            crate::validate::truncate_utf8(text, 32)
        ))
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() || number.len() > 9 {
        return Err(bad());
    }
    let n: i64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => SECOND_MS,
        "m" => MINUTE_MS,
        "h" => HOUR_MS,
        "d" => DAY_MS,
        _ => return Err(bad()),
    };
    Ok(n * scale)
}

/// `every` in its range (1 minute – 31 days).
pub fn every(text: &str) -> Result<i64, ApiError> {
    let ms = duration("every", text)?;
    if (EVERY_MIN_MS..=EVERY_MAX_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(invalid(format!(
            "every must be between 1 minute and 31 days (got {text})"
        )))
    }
}

/// `grace` in its range (0 – 1 day).
pub fn grace(text: &str) -> Result<i64, ApiError> {
    let ms = duration("grace", text)?;
    if ms <= GRACE_MAX_MS {
        Ok(ms)
    } else {
        Err(invalid(format!(
            "grace must be between 0 and 1 day (got {text})"
        )))
    }
}

/// The grace when none was given: a tenth of `every`, at most an hour.
pub fn default_grace(every_ms: i64) -> i64 {
    (every_ms / 10).min(HOUR_MS)
}

/// A duration in the largest unit that writes it exactly (`86400000` → `1d`, `5400000` →
/// `90m`), the way a ping gives it.
pub fn format_duration(ms: i64) -> String {
    let s = ms / SECOND_MS;
    match s {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// What a ping asks for, checked: the durations it gives (each optional: a later ping may
/// leave them as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PingSettings {
    pub every_ms: Option<i64>,
    pub grace_ms: Option<i64>,
}

impl PingSettings {
    /// Checks the texts of `every` and `grace` (from the body or the query).
    pub fn parse(every_text: Option<&str>, grace_text: Option<&str>) -> Result<Self, ApiError> {
        Ok(PingSettings {
            every_ms: every_text.map(every).transpose()?,
            grace_ms: grace_text.map(grace).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_alphabet_and_length() {
        assert!(name("backup.nightly_2-x").is_ok());
        assert!(name(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "a/b", "é", "a:b", &"a".repeat(65)] {
            let e = name(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidHeartbeat, "{bad}");
        }
    }

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(duration("every", "90s").unwrap(), 90_000);
        assert_eq!(duration("every", "12h").unwrap(), 12 * HOUR_MS);
        assert_eq!(duration("every", "1d").unwrap(), DAY_MS);
        assert_eq!(duration("every", "45m").unwrap(), 45 * MINUTE_MS);
        for bad in [
            "",
            "90",
            "s",
            "1.5h",
            "-1h",
            "1w",
            "1 h",
            "9999999999d",
            "1hh",
        ] {
            assert!(duration("every", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_of_every_and_grace() {
        assert!(every("59s").is_err());
        assert_eq!(every("1m").unwrap(), MINUTE_MS);
        assert_eq!(every("31d").unwrap(), 31 * DAY_MS);
        assert!(every("32d").is_err());
        assert_eq!(grace("0s").unwrap(), 0);
        assert_eq!(grace("1d").unwrap(), DAY_MS);
        assert!(grace("25h").is_err());
    }

    #[test]
    fn the_default_grace_is_a_tenth_capped_at_an_hour() {
        assert_eq!(default_grace(10 * MINUTE_MS), MINUTE_MS);
        assert_eq!(default_grace(DAY_MS), HOUR_MS);
    }

    #[test]
    fn durations_format_in_their_largest_exact_unit() {
        assert_eq!(format_duration(DAY_MS), "1d");
        assert_eq!(format_duration(90 * MINUTE_MS), "90m");
        assert_eq!(format_duration(90_000), "90s");
        assert_eq!(format_duration(12 * HOUR_MS), "12h");
        assert_eq!(format_duration(0), "0s");
    }
}
