//! Notification priority: five ordered levels, so a token's cap is a plain comparison.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Declared lowest first: the derived `Ord` is the cap order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Min,
    Low,
    #[default]
    Default,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 5] = [
        Priority::Min,
        Priority::Low,
        Priority::Default,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Min => "min",
            Priority::Low => "low",
            Priority::Default => "default",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    /// Pushover's numeric priorities (-2..=1); 2 (emergency) has no equivalent.
    pub fn from_pushover(n: i64) -> Option<Priority> {
        match n {
            -2 => Some(Priority::Min),
            -1 => Some(Priority::Low),
            0 => Some(Priority::Default),
            1 => Some(Priority::High),
            _ => None,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = ();

    /// Case-insensitive, so `HIGH` from a shell works; the canonical form is lowercase.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_the_cap_order() {
        assert!(Priority::Min < Priority::Low);
        assert!(Priority::Low < Priority::Default);
        assert!(Priority::Default < Priority::High);
        assert!(Priority::High < Priority::Urgent);
    }

    #[test]
    fn parses_every_name_any_case() {
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>(), Ok(p));
            assert_eq!(p.as_str().to_uppercase().parse::<Priority>(), Ok(p));
        }
        assert!("emergency".parse::<Priority>().is_err());
    }

    #[test]
    fn pushover_mapping() {
        assert_eq!(Priority::from_pushover(-2), Some(Priority::Min));
        assert_eq!(Priority::from_pushover(1), Some(Priority::High));
        assert_eq!(Priority::from_pushover(2), None);
    }
}
