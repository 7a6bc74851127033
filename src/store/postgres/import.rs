//! The receiving end of `admin copy`: one connection, one transaction. Emptiness is checked
//! before anything is created, so a database that holds anything (a relay's data, or another
//! application's tables) is refused untouched; the schema is then created and the rows
//! inserted in the same transaction, so a failed copy leaves the database as it was.

use super::connect::Target;
use super::schema;
use crate::store::copy::Value;
use crate::store::{Result, StoreError};
use std::collections::HashMap;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

pub struct Import {
    client: Client,
    /// Column name → PostgreSQL type name, per table.
    types: HashMap<String, HashMap<String, String>>,
}

impl Import {
    pub async fn begin(url: &str) -> Result<Import> {
        let target = Target::parse(url)?;
        let (client, _messages) = target.connect_listening().await?;
        client.batch_execute("BEGIN").await?;
        schema::lock_migrations(&client).await?;
        let tables: Vec<String> = client
            .query(
                "SELECT table_name::TEXT FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let ours = tables.iter().any(|t| t == "reflecto_schema");
        if !tables.is_empty() && !ours {
            return Err(StoreError::Conflict(format!(
                "the target database is not empty (it has {} other tables); copy only into an empty database",
                tables.len()
            )));
        }
        schema::apply(&client).await?;
        if !schema::is_empty(&client).await? {
            return Err(StoreError::Conflict(
                "the target database already holds a relay's data; copy only into an empty database"
                    .into(),
            ));
        }
        let mut types: HashMap<String, HashMap<String, String>> = HashMap::new();
        for row in client
            .query(
                "SELECT table_name::TEXT, column_name::TEXT, data_type::TEXT FROM information_schema.columns \
                 WHERE table_schema = current_schema()",
                &[],
            )
            .await?
        {
            types
                .entry(row.get(0))
                .or_default()
                .insert(row.get(1), row.get(2));
        }
        Ok(Import { client, types })
    }

    pub async fn insert(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: Vec<Vec<Value>>,
    ) -> Result<()> {
        let types = self
            .types
            .get(table)
            .ok_or_else(|| StoreError::Db(format!("the target has no table {table}")))?;
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> =
            Vec::with_capacity(rows.len() * columns.len());
        let mut tuples = Vec::with_capacity(rows.len());
        for row in rows {
            let mut placeholders = Vec::with_capacity(columns.len());
            for (value, column) in row.into_iter().zip(columns) {
                let kind = types.get(*column).ok_or_else(|| {
                    StoreError::Db(format!("the target has no column {table}.{column}"))
                })?;
                params.push(convert(value, kind, table, column)?);
                placeholders.push(format!("${}", params.len()));
            }
            tuples.push(format!("({})", placeholders.join(", ")));
        }
        let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
        let sql = format!(
            "INSERT INTO \"{table}\" ({}) VALUES {}",
            quoted.join(", "),
            tuples.join(", ")
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        self.client.execute(&sql, &refs).await?;
        Ok(())
    }

    /// Moves the id sequences past the copied ids, then commits.
    pub async fn commit(self) -> Result<()> {
        self.client
            .batch_execute(
                "SELECT setval(pg_get_serial_sequence('users', 'id'), coalesce((SELECT max(id) FROM users), 0) + 1, false); \
                 SELECT setval(pg_get_serial_sequence('jobs', 'id'), coalesce((SELECT max(id) FROM jobs), 0) + 1, false); \
                 SELECT setval(pg_get_serial_sequence('audit', 'id'), coalesce((SELECT max(id) FROM audit), 0) + 1, false); \
                 COMMIT",
            )
            .await?;
        Ok(())
    }
}

/// One SQLite value as the target column's type.
fn convert(
    value: Value,
    kind: &str,
    table: &str,
    column: &str,
) -> Result<Box<dyn ToSql + Sync + Send>> {
    let mismatch = || StoreError::Db(format!("{table}.{column}: a value does not fit {kind}"));
    Ok(match (kind, value) {
        ("bigint", Value::Int(n)) => Box::new(n),
        ("bigint", Value::Null) => Box::new(None::<i64>),
        ("integer", Value::Int(n)) => Box::new(i32::try_from(n).map_err(|_| mismatch())?),
        ("integer", Value::Null) => Box::new(None::<i32>),
        ("boolean", Value::Int(n)) => Box::new(n != 0),
        ("boolean", Value::Null) => Box::new(None::<bool>),
        ("text", Value::Text(s)) => Box::new(s),
        ("text", Value::Null) => Box::new(None::<String>),
        ("bytea", Value::Blob(b)) => Box::new(b),
        ("bytea", Value::Null) => Box::new(None::<Vec<u8>>),
        _ => return Err(mismatch()),
    })
}
