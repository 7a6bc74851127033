//! The delivery queue and the desktop streams on PostgreSQL. Any number of relays claim from
//! one `jobs` table: `FOR UPDATE SKIP LOCKED` hands each due job to exactly one of them, and
//! a lease that runs out (its relay died mid-dispatch) is put back by whichever relay sweeps
//! first, so only the dead relay's in-flight jobs can be delivered twice. A live relay renews
//! the leases of the jobs it is working on, however slowly FCM answers.

use super::devices_pairing::webpush_at;
use super::{PgStore, retry_contended};
use crate::store::Result;
use crate::store::contract::Queue;
use crate::store::model::{
    Channel, ClaimedJob, DeliveryTarget, JobKind, JobOutcome, JobPayload, Lease, PayloadKind,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

pub(super) fn payload_at(r: &Row, kind: usize, bytes: usize) -> Option<JobPayload> {
    let kind: Option<String> = r.get(kind);
    let kind = match kind.as_deref() {
        Some("sealed") => PayloadKind::Sealed,
        Some("webpush") => PayloadKind::WebPush,
        _ => return None,
    };
    r.get::<_, Option<Vec<u8>>>(bytes)
        .map(|bytes| JobPayload { kind, bytes })
}

fn device_types(channels: &[Channel]) -> Vec<&'static str> {
    channels.iter().map(|c| c.device_type()).collect()
}

/// The channels' device types as rows of literals, `(VALUES ('android'), …)`, for
/// [`CLAIM_SQL`] and [`NEXT_DUE_SQL`] (a closed set of names, never input). As literals the
/// statement's generic plan costs what its custom ones do, so PostgreSQL stops planning it
/// anew at every call; from `unnest($1::TEXT[])` it guessed ten rows and planned every claim
/// (0.25 ms each, on the path from a send's 200 to FCM).
fn channel_rows(channels: &[Channel]) -> String {
    let rows: Vec<String> = device_types(channels)
        .iter()
        .map(|t| format!("('{t}')"))
        .collect();
    format!("(VALUES {})", rows.join(", "))
}

/// Claims the oldest due jobs of the channels in `{channels}` ([`channel_rows`]) under a new
/// lease. Each channel's due jobs are read from their own range of `jobs_due(device_type,
/// run_at)`, then the oldest of those kept: a `device_type = ANY(…)` beside `ORDER BY run_at`
/// is a filter on the heap row instead, and every claim fetched each due job of another
/// channel ahead of its own. Rows locked here and not kept are unlocked when the claim's
/// transaction, this one statement, ends.
const CLAIM_SQL: &str = "WITH due AS (SELECT d.id FROM {channels} AS t(device_type), \
       LATERAL (SELECT id, run_at FROM jobs WHERE state = 'queued' AND device_type = t.device_type AND run_at <= $1 \
         ORDER BY run_at LIMIT $3 FOR UPDATE SKIP LOCKED) d \
       ORDER BY d.run_at LIMIT $3), \
     claimed AS (UPDATE jobs j SET state = 'leased', lease_until = $2, lease_token = j.lease_token + 1, attempts = j.attempts + 1, updated_at = $1 \
       FROM due WHERE j.id = due.id \
       RETURNING j.id, j.message_id, j.device_id, j.attempts, j.expires_at, j.payload_kind, j.payload, j.priority, j.device_type, j.lease_token, j.kind) \
     SELECT c.id, c.message_id, c.device_id, d.fcm_token, m.envelope, c.attempts, m.created_at, c.expires_at, \
       c.payload_kind, c.payload, c.priority, c.device_type, d.endpoint, d.p256dh, d.auth, c.lease_token, m.key, c.kind \
     FROM claimed c JOIN messages m ON m.id = c.message_id LEFT JOIN devices d ON d.id = c.device_id \
     ORDER BY c.id";

/// When the next job of the channels in `{channels}` is due: each channel's first entry in
/// `jobs_due` (one `min` over `device_type = ANY(…)` would read every due job of them).
const NEXT_DUE_SQL: &str = "SELECT min((SELECT min(run_at) FROM jobs WHERE state = 'queued' AND device_type = t.device_type)) \
     FROM {channels} AS t(device_type)";

impl Queue for PgStore {
    async fn claim_due(
        &self,
        now: i64,
        limit: usize,
        lease_ms: i64,
        channels: &[Channel],
    ) -> Result<Vec<ClaimedJob>> {
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.writer().await?;
        let sql = CLAIM_SQL.replace("{channels}", &channel_rows(channels));
        let statement = client.prepare_cached(&sql).await?;
        let rows = client
            .query(&statement, &[&now, &(now + lease_ms), &(limit as i64)])
            .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for r in rows {
            let kind: String = r.get(11);
            let Some(channel) = Channel::of_device_type(&kind) else {
                tracing::warn!(
                    job = r.get::<_, i64>(0),
                    "no channel delivers '{kind}' jobs"
                );
                continue;
            };
            let target = match channel {
                Channel::Fcm => r.get::<_, Option<String>>(3).map(DeliveryTarget::Fcm),
                Channel::WebPush => webpush_at(&r, 12).map(DeliveryTarget::WebPush),
            };
            let job_kind: &str = r.get(17);
            let Some(job_kind) = JobKind::parse(job_kind) else {
                tracing::warn!(
                    job = r.get::<_, i64>(0),
                    "unknown job kind '{job_kind}' (a newer relay's?)"
                );
                continue;
            };
            let priority: Option<String> = r.get(10);
            jobs.push(ClaimedJob {
                job_id: r.get(0),
                lease_token: r.get(15),
                message_id: r.get(1),
                device_id: r.get(2),
                channel,
                target,
                envelope: r.get(4),
                attempts: r.get(5),
                created_at: r.get(6),
                expires_at: r.get(7),
                payload: payload_at(&r, 8, 9),
                priority: priority.and_then(|p| p.parse().ok()),
                key: r.get(16),
                kind: job_kind,
            });
        }
        Ok(jobs)
    }

    async fn recover_expired_leases(&self, lease_cutoff: i64, now: i64) -> Result<usize> {
        let n = self
            .writer()
            .await?
            .execute(
                "UPDATE jobs SET state = 'queued', lease_until = NULL, run_at = $2, updated_at = $2 \
                 WHERE state = 'leased' AND lease_until <= $1",
                &[&lease_cutoff, &now],
            )
            .await?;
        Ok(n as usize)
    }

    async fn renew_leases(&self, leases: Vec<Lease>, until: i64) -> Result<()> {
        let (ids, tokens): (Vec<i64>, Vec<i64>) =
            leases.iter().map(|l| (l.job_id, l.token)).unzip();
        self.writer()
            .await?
            .execute(
                "UPDATE jobs j SET lease_until = $2 FROM unnest($1::BIGINT[], $3::BIGINT[]) AS l(id, token) \
                 WHERE j.id = l.id AND j.state = 'leased' AND j.lease_token = l.token",
                &[&ids, &until, &tokens],
            )
            .await?;
        Ok(())
    }

    async fn complete_jobs(&self, outcomes: Vec<(Lease, JobOutcome)>, now: i64) -> Result<()> {
        retry_contended(|| self.complete_jobs_once(outcomes.clone(), now)).await
    }

    async fn expire_jobs(&self, now: i64) -> Result<usize> {
        let n = self
            .writer()
            .await?
            .execute(
                "UPDATE jobs SET state = 'expired', last_error = 'ttl_expired', lease_until = NULL, updated_at = $1 \
                 WHERE state IN ('queued', 'pending') AND expires_at <= $1",
                &[&now],
            )
            .await?;
        Ok(n as usize)
    }

    async fn next_due_at(&self, channels: &[Channel]) -> Result<Option<i64>> {
        if channels.is_empty() {
            return Ok(None);
        }
        let client = self.client().await?;
        let sql = NEXT_DUE_SQL.replace("{channels}", &channel_rows(channels));
        let row = client
            .query_one(&client.prepare_cached(&sql).await?, &[])
            .await?;
        Ok(row.get(0))
    }

    async fn queue_depth(&self) -> Result<i64> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT count(*) FROM jobs WHERE state IN ('queued', 'leased', 'pending')",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }
}

/// One wave's outcomes, grouped by what they write: each group is one statement over arrays
/// (a round trip per group, not per job), and a device whose jobs were delivered is marked
/// seen once per wave, as on SQLite, not once per job (each of those updates made a new
/// version of the same row). With the per-channel claim, FCM deliveries/s on PostgreSQL went
/// from about 2,000 to 16,000 (`REFLECTO_BENCH_STORE=postgres cargo bench --bench delivery`,
/// `bench/RESULTS.md`, ninth pass). Unreachable devices are judged last, as on SQLite: a job
/// FCM accepted in the same wave stays delivered, and what is still open of that device's
/// jobs then fails.
#[derive(Default)]
struct Wave {
    delivered: Leases,
    expired: Leases,
    retried: Leases,
    retry_at: Vec<i64>,
    retry_error: Vec<String>,
    failed: Leases,
    fail_reason: Vec<String>,
    unreachable: Vec<(Lease, String)>,
}

/// The `(id, token)` columns a wave's statement unnests.
#[derive(Default)]
struct Leases {
    ids: Vec<i64>,
    tokens: Vec<i64>,
}

impl Leases {
    fn push(&mut self, lease: Lease) {
        self.ids.push(lease.job_id);
        self.tokens.push(lease.token);
    }
}

impl Wave {
    fn of(outcomes: Vec<(Lease, JobOutcome)>) -> Wave {
        let mut wave = Wave::default();
        for (lease, outcome) in outcomes {
            match outcome {
                JobOutcome::Delivered => wave.delivered.push(lease),
                JobOutcome::Expired => wave.expired.push(lease),
                JobOutcome::RetryAt { at_ms, error } => {
                    wave.retried.push(lease);
                    wave.retry_at.push(at_ms);
                    wave.retry_error.push(error);
                }
                JobOutcome::DeadLetter { reason } => {
                    wave.failed.push(lease);
                    wave.fail_reason.push(reason);
                }
                JobOutcome::DeviceUnreachable { error } => wave.unreachable.push((lease, error)),
            }
        }
        wave
    }
}

/// Only a job its lease still holds is written: `l` is the wave's `(id, token)` pairs, `$1`
/// and `$2` of each statement below.
macro_rules! held_sql {
    ($set:literal, $columns:literal, $types:literal) => {
        concat!(
            "UPDATE jobs j SET ",
            $set,
            " FROM unnest($1::BIGINT[], $2::BIGINT[]",
            $types,
            ") AS l(id, token",
            $columns,
            ") WHERE j.id = l.id AND j.state = 'leased' AND j.lease_token = l.token"
        )
    };
}

/// The push service or FCM accepted the send: the device was seen.
const DELIVERED_SQL: &str = concat!(
    "WITH done AS (",
    held_sql!(
        "state = 'delivered', lease_until = NULL, last_error = NULL, updated_at = $3",
        "",
        ""
    ),
    " RETURNING j.device_id) UPDATE devices SET last_seen_at = $3 WHERE id IN (SELECT device_id FROM done)"
);
const RETRY_SQL: &str = held_sql!(
    "state = 'queued', lease_until = NULL, run_at = l.at, last_error = l.error, updated_at = $5",
    ", at, error",
    ", $3::BIGINT[], $4::TEXT[]"
);
const FAILED_SQL: &str = held_sql!(
    "state = 'failed', lease_until = NULL, last_error = l.reason, updated_at = $4",
    ", reason",
    ", $3::TEXT[]"
);
const EXPIRED_SQL: &str = held_sql!(
    "state = 'expired', lease_until = NULL, last_error = COALESCE(j.last_error, 'ttl_expired'), updated_at = $3",
    "",
    ""
);

/// Runs `sql` for the jobs of `leases` (`$1`, `$2`) with `rest` after them; nothing when the
/// wave has none of them.
async fn write_held(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    leases: &Leases,
    rest: &[&(dyn ToSql + Sync)],
) -> Result<()> {
    if leases.ids.is_empty() {
        return Ok(());
    }
    let statement = tx.prepare_cached(sql).await?;
    let params: Vec<&(dyn ToSql + Sync)> = [&leases.ids as _, &leases.tokens as _]
        .into_iter()
        .chain(rest.iter().copied())
        .collect();
    tx.execute(&statement, &params).await?;
    Ok(())
}

impl PgStore {
    /// One try of [`Queue::complete_jobs`].
    async fn complete_jobs_once(&self, outcomes: Vec<(Lease, JobOutcome)>, now: i64) -> Result<()> {
        let wave = Wave::of(outcomes);
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        write_held(&tx, DELIVERED_SQL, &wave.delivered, &[&now]).await?;
        let retry: [&(dyn ToSql + Sync); 3] = [&wave.retry_at, &wave.retry_error, &now];
        write_held(&tx, RETRY_SQL, &wave.retried, &retry).await?;
        write_held(&tx, FAILED_SQL, &wave.failed, &[&wave.fail_reason, &now]).await?;
        write_held(&tx, EXPIRED_SQL, &wave.expired, &[&now]).await?;
        for (lease, error) in wave.unreachable {
            // Only the holder of the lease may judge the device: a stale verdict must not
            // unpair a device another relay reached since.
            let held = tx
                .execute(
                    "UPDATE devices SET reachable = false WHERE id = (SELECT device_id FROM jobs \
                     WHERE id = $1 AND state = 'leased' AND lease_token = $2)",
                    &[&lease.job_id, &lease.token],
                )
                .await?;
            if held == 0 {
                continue;
            }
            tx.execute(
                "UPDATE jobs SET state = 'failed', lease_until = NULL, last_error = $2, updated_at = $3 \
                 WHERE device_id = (SELECT device_id FROM jobs WHERE id = $1) AND state IN ('queued', 'leased', 'pending')",
                &[&lease.job_id, &error, &now],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Database;
    use crate::store::limits::Limits;

    /// The query plan of `sql` with `params`, as `EXPLAIN` prints it.
    async fn plan(
        client: &tokio_postgres::Client,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> String {
        let rows = client
            .query(&format!("EXPLAIN {sql}"), params)
            .await
            .unwrap();
        let lines: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        lines.join("\n")
    }

    /// Regression (the FCM drain on PostgreSQL fetched every queued Web Push job's row at each
    /// claim): the claim and the next-due lookup read each channel's due jobs from its own
    /// range of `jobs_due`, with `device_type` an index condition, never a filter on the row.
    #[tokio::test]
    async fn the_claim_and_the_next_due_lookup_read_one_range_of_jobs_due_per_channel() {
        let Some(Database::Postgres(url)) = crate::store::story::postgres_database().await else {
            return;
        };
        let store = PgStore::open(&url, Limits::default()).await.unwrap();
        let client = store.client().await.unwrap();
        // An empty table may be read whole, which says nothing of the index: what is checked
        // is that `jobs_due` can serve each query as written.
        client
            .batch_execute("SET enable_seqscan = off")
            .await
            .unwrap();
        for channels in [&[Channel::Fcm][..], &Channel::ALL] {
            let rows = channel_rows(channels);
            let claim = CLAIM_SQL.replace("{channels}", &rows);
            let claim = plan(&client, &claim, &[&0i64, &1i64, &128i64]).await;
            let next = plan(&client, &NEXT_DUE_SQL.replace("{channels}", &rows), &[]).await;
            for (what, plan) in [("claim", claim), ("next due", next)] {
                assert!(
                    plan.contains("using jobs_due on jobs")
                        && plan
                            .lines()
                            .any(|l| l.contains("Index Cond: (") && l.contains("(device_type = "))
                        && !plan
                            .lines()
                            .any(|l| l.contains("Filter:") && l.contains("device_type")),
                    "{what} of {rows}: {plan}"
                );
            }
        }
    }
}
