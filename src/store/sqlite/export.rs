//! Reading the store out table by table for `admin copy`, in rowid order and in chunks, so a
//! long history never sits in memory at once.

use super::SqliteStore;
use crate::store::Result;
use crate::store::copy::Value;
use rusqlite::types::ValueRef;

impl SqliteStore {
    /// Up to `limit` rows of `table` after rowid `after`, and the last rowid read. Table and
    /// column names come from [`crate::store::copy::TABLES`], never from input. A job leased
    /// when its relay stopped is exported queued: on a shared database nobody would ever take
    /// its lease back at start-up.
    pub fn export_chunk(
        &self,
        table: &str,
        columns: &[&str],
        after: i64,
        limit: usize,
    ) -> Result<(Vec<Vec<Value>>, i64)> {
        let selected: Vec<String> = columns
            .iter()
            .map(|&c| match (table, c) {
                ("jobs", "state") => "CASE state WHEN 'leased' THEN 'queued' ELSE state END".into(),
                ("jobs", "lease_until") => "NULL".into(),
                _ => format!("\"{c}\""),
            })
            .collect();
        let sql = format!(
            "SELECT rowid, {} FROM \"{table}\" WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            selected.join(", ")
        );
        self.read(|c| {
            let mut stmt = c.prepare(&sql)?;
            let mut rows = stmt.query(rusqlite::params![after, limit as i64])?;
            let mut out = Vec::new();
            let mut last = after;
            while let Some(row) = rows.next()? {
                last = row.get(0)?;
                let values = (1..=columns.len())
                    .map(|i| {
                        Ok(match row.get_ref(i)? {
                            ValueRef::Null => Value::Null,
                            ValueRef::Integer(n) => Value::Int(n),
                            ValueRef::Real(f) => Value::Int(f as i64),
                            ValueRef::Text(t) => {
                                Value::Text(String::from_utf8_lossy(t).into_owned())
                            }
                            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                        })
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                out.push(values);
            }
            Ok((out, last))
        })
    }
}
