//! How the records' enums are read from their text columns: a value this relay has no name
//! for (written by a newer one) is an error, never a guess.

use crate::api::DeviceType;
use crate::store::model::{JobKind, JobState, PayloadKind};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};

fn named<T>(
    value: ValueRef<'_>,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> FromSqlResult<T> {
    let text = value.as_str()?;
    parse(text).ok_or_else(|| FromSqlError::Other(format!("unknown {what} '{text}'").into()))
}

impl FromSql for PayloadKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        named(value, "payload kind", |t| match t {
            "sealed" => Some(PayloadKind::Sealed),
            "webpush" => Some(PayloadKind::WebPush),
            _ => None,
        })
    }
}

impl FromSql for JobState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        named(value, "job state", JobState::parse)
    }
}

impl FromSql for JobKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        named(value, "job kind", JobKind::parse)
    }
}

impl FromSql for DeviceType {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        named(value, "device type", DeviceType::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_this_relay_does_not_know_is_an_error() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let read = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, JobState>(0));
        assert_eq!(read("SELECT 'leased'").unwrap(), JobState::Leased);
        assert!(read("SELECT 'paused'").is_err());
        let kind = conn.query_row("SELECT 'android'", [], |r| r.get::<_, DeviceType>(0));
        assert_eq!(kind.unwrap(), DeviceType::Android);
    }
}
