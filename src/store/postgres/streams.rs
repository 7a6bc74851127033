//! Desktop (extension) streams on PostgreSQL: a device's `pending` jobs (notifications and
//! clears) in sequence order, and the acknowledgements that deliver them; any relay may serve
//! a device's stream.

use super::PgStore;
use super::devices_pairing::SEEN_SQL;
use super::queue::payload_at;
use crate::api::DeviceType;
use crate::store::contract::Streams;
use crate::store::model::{AckedEvent, JobKind, StreamEvent, StreamPlace};
use crate::store::{Result, StoreError};
use tokio_postgres::Transaction;

/// As the SQLite backend's: the place a new job for a device takes on its stream.
pub(super) async fn stream_place(
    tx: &Transaction<'_>,
    device_id: &str,
    device_type: DeviceType,
) -> Result<StreamPlace> {
    Ok(match device_type {
        DeviceType::Extension => tx
            .query_opt(
                "UPDATE devices SET next_seq = next_seq + 1 WHERE id = $1 RETURNING next_seq",
                &[&device_id],
            )
            .await?
            .map_or(StreamPlace::Gone, |row| StreamPlace::Next(row.get(0))),
        DeviceType::Android | DeviceType::Webpush => StreamPlace::NoStream,
    })
}

impl Streams for PgStore {
    async fn stream_events(
        &self,
        device_id: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<StreamEvent>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT j.seq, j.message_id, m.envelope, j.payload_kind, j.payload, j.kind FROM jobs j \
                 JOIN messages m ON m.id = j.message_id \
                 WHERE j.device_id = $1 AND j.seq > $2 AND j.state = 'pending' ORDER BY j.seq LIMIT $3",
            )
            .await?;
        let rows = client
            .query(&statement, &[&device_id, &after_seq, &(limit as i64)])
            .await?;
        rows.iter()
            .map(|r| {
                let kind: &str = r.get(5);
                Ok(StreamEvent {
                    seq: r.get(0),
                    message_id: r.get(1),
                    envelope: r.get(2),
                    payload: payload_at(r, 3, 4),
                    kind: JobKind::parse(kind).ok_or_else(|| {
                        StoreError::Db(format!("unknown job kind '{kind}' in the database"))
                    })?,
                })
            })
            .collect()
    }

    async fn ack_stream_events(
        &self,
        device_id: &str,
        seqs: Vec<i64>,
        now: i64,
    ) -> Result<Vec<AckedEvent>> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        let acked = tx
            .query(
                "UPDATE jobs SET state = 'delivered', attempts = attempts + 1, updated_at = $3 \
                 WHERE device_id = $1 AND seq = ANY($2) AND state = 'pending' RETURNING message_id, kind, run_at",
                &[&device_id, &seqs, &now],
            )
            .await?;
        tx.execute(SEEN_SQL, &[&device_id, &now]).await?;
        tx.commit().await?;
        acked
            .iter()
            .map(|r| {
                let kind: &str = r.get(1);
                Ok(AckedEvent {
                    message_id: r.get(0),
                    kind: JobKind::parse(kind)
                        .ok_or_else(|| StoreError::Db(format!("unknown job kind '{kind}'")))?,
                    accepted_at: r.get(2),
                })
            })
            .collect()
    }
}
