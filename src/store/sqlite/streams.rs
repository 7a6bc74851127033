//! Desktop (extension) streams on the embedded backend: a device's `pending` jobs in sequence
//! order (notifications and clears), and the acknowledgements that deliver them.

use super::SqliteStore;
use super::devices_pairing::SEEN_SQL;
use super::queue::payload_at;
use crate::api::DeviceType;
use crate::store::Result;
use crate::store::contract::Streams;
use crate::store::model::*;
use rusqlite::{Connection, OptionalExtension, params};

/// A device's unacknowledged stream events after a sequence number.
pub(super) const STREAM_SQL: &str = "SELECT j.seq, j.message_id, (SELECT envelope FROM messages WHERE id = j.message_id), \
     j.payload_kind, j.payload, j.kind FROM jobs j WHERE j.device_id = ?1 AND j.seq > ?2 AND j.state = 'pending' ORDER BY j.seq LIMIT ?3";

/// The place a new job for a device takes on its stream.
pub(super) fn stream_place(
    c: &Connection,
    device_id: &str,
    device_type: DeviceType,
) -> Result<StreamPlace> {
    Ok(match device_type {
        DeviceType::Extension => c
            .query_row(
                "UPDATE devices SET next_seq = next_seq + 1 WHERE id = ?1 RETURNING next_seq",
                [device_id],
                |r| r.get(0),
            )
            .optional()?
            .map_or(StreamPlace::Gone, StreamPlace::Next),
        DeviceType::Android | DeviceType::Webpush => StreamPlace::NoStream,
    })
}

impl Streams for SqliteStore {
    /// An extension device's unacknowledged events after `after_seq`, in order.
    async fn stream_events(
        &self,
        device_id: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<StreamEvent>> {
        self.lookup(|c| {
            let mut stmt = c.prepare_cached(STREAM_SQL)?;
            let rows = stmt.query_map(params![device_id, after_seq, limit as i64], |r| {
                Ok(StreamEvent {
                    seq: r.get(0)?,
                    message_id: r.get(1)?,
                    envelope: r.get(2)?,
                    payload: payload_at(r, 3, 4)?,
                    kind: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Marks the device's events with these sequence numbers delivered; returns how many were.
    async fn ack_stream_events(
        &self,
        device_id: &str,
        seqs: Vec<i64>,
        now: i64,
    ) -> Result<Vec<AckedEvent>> {
        let device_id = device_id.to_owned();
        self.writer()
            .write(move |c| {
                let mut stmt = c.prepare_cached(
                    "UPDATE jobs SET state = 'delivered', attempts = attempts + 1, updated_at = ?3 \
                     WHERE device_id = ?1 AND seq = ?2 AND state = 'pending' RETURNING message_id, kind, run_at",
                )?;
                let mut acked = Vec::with_capacity(seqs.len());
                for seq in seqs {
                    let row = stmt
                        .query_row(params![device_id, seq, now], |r| {
                            Ok(AckedEvent {
                                message_id: r.get(0)?,
                                kind: r.get(1)?,
                                accepted_at: r.get(2)?,
                            })
                        })
                        .optional()?;
                    acked.extend(row);
                }
                c.prepare_cached(SEEN_SQL)?
                    .execute(params![device_id, now])?;
                Ok(acked)
            })
            .await
    }
}
