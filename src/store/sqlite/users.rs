//! Users: the receivers, who own devices and tokens.

use super::SqliteStore;
use crate::store::model::*;
use crate::store::{Result, StoreError};
use rusqlite::{OptionalExtension, params};

impl SqliteStore {
    pub async fn add_user(&self, name: &str, now: i64) -> Result<UserRecord> {
        let name = name.to_owned();
        self.writer()
            .write(move |c| {
                let exists: Option<i64> = c
                    .query_row("SELECT id FROM users WHERE name = ?1", [&name], |r| {
                        r.get(0)
                    })
                    .optional()?;
                if exists.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "user '{name}' already exists"
                    )));
                }
                c.execute(
                    "INSERT INTO users (name, created_at) VALUES (?1, ?2)",
                    params![name, now],
                )?;
                Ok(UserRecord {
                    id: c.last_insert_rowid(),
                    name,
                    created_at: now,
                })
            })
            .await
    }

    pub async fn list_users(&self) -> Result<Vec<UserRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT id, name, created_at FROM users ORDER BY name")?;
            let rows = stmt.query_map([], |r| {
                Ok(UserRecord {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub async fn user_by_name(&self, name: &str) -> Result<UserRecord> {
        self.read(|c| {
            c.query_row(
                "SELECT id, name, created_at FROM users WHERE name = ?1",
                [name],
                |r| {
                    Ok(UserRecord {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created_at: r.get(2)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("user '{name}'")))
        })
    }

    /// Removes a user with their tokens, devices, pairing codes and messages.
    pub async fn remove_user(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.writer()
            .write(
                move |c| match c.execute("DELETE FROM users WHERE name = ?1", [&name])? {
                    0 => Err(StoreError::NotFound(format!("user '{name}'"))),
                    _ => Ok(()),
                },
            )
            .await
    }
}
