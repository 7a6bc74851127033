//! Versioned migrations for PostgreSQL, applied under an advisory lock so relays that start
//! together on an empty database do not race: the first migrates, the others wait for it and
//! then find nothing to do. Append only, like SQLite's list. The tables mirror SQLite's
//! (same names, columns and meanings: `admin copy` moves rows across one to one), plus
//! `rate_events` for the rolling windows SQLite keeps in memory, and the two functions that
//! check and charge rate limits in the same round trip as the work they guard.

use crate::store::Result;
use deadpool_postgres::Object;
use tokio_postgres::GenericClient;

/// `pg_advisory_xact_lock` key for migrations ("reflecto" in ASCII).
const MIGRATION_LOCK: i64 = 0x7265_666c_6563_746f;

const MIGRATIONS: &[&str] = &[
    // 1: the whole model as of SQLite's migration 4 ("wpi").
    r#"
    CREATE TABLE users (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        hash BYTEA NOT NULL UNIQUE,
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        priority_cap TEXT,
        scope_devices TEXT,
        test BOOLEAN NOT NULL DEFAULT false,
        created_at BIGINT NOT NULL,
        last_used_at BIGINT,
        revoked_at BIGINT
    );
    CREATE INDEX tokens_user ON tokens(user_id);
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('android', 'extension', 'webpush')),
        fcm_token TEXT,
        credential_hash BYTEA UNIQUE,
        reachable BOOLEAN NOT NULL DEFAULT true,
        next_seq BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        public_key TEXT,
        endpoint TEXT,
        p256dh TEXT,
        auth TEXT
    );
    CREATE INDEX devices_user ON devices(user_id);
    CREATE TABLE pairing_codes (
        code_hash BYTEA PRIMARY KEY,
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        expires_at BIGINT NOT NULL
    );
    CREATE TABLE pair_failures (
        at_ms BIGINT NOT NULL
    );
    CREATE INDEX pair_failures_at ON pair_failures(at_ms);
    CREATE TABLE store_probe (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        at_ms BIGINT NOT NULL
    );
    CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        token_id TEXT NOT NULL,
        envelope TEXT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX messages_created ON messages(created_at);
    CREATE TABLE jobs (
        id BIGSERIAL PRIMARY KEY,
        message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        device_id TEXT NOT NULL,
        device_type TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        run_at BIGINT NOT NULL,
        lease_until BIGINT,
        last_error TEXT,
        seq BIGINT,
        expires_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        payload BYTEA,
        payload_kind TEXT,
        priority TEXT
    );
    -- Partial indexes: each holds only the jobs its query looks for, so accepting a send
    -- writes fewer index entries (a job leaves them as it moves on).
    CREATE INDEX jobs_due ON jobs(run_at) WHERE state = 'queued';
    CREATE INDEX jobs_lease ON jobs(lease_until) WHERE state = 'leased';
    CREATE INDEX jobs_message ON jobs(message_id);
    CREATE INDEX jobs_device_seq ON jobs(device_id, seq) WHERE seq IS NOT NULL;
    CREATE INDEX jobs_expiry ON jobs(expires_at) WHERE state IN ('queued', 'pending');
    CREATE TABLE idempotency (
        token_id TEXT NOT NULL,
        key TEXT NOT NULL,
        status INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (token_id, key)
    );
    CREATE TABLE token_month_counts (
        token_id TEXT NOT NULL,
        month TEXT NOT NULL,
        count BIGINT NOT NULL,
        PRIMARY KEY (token_id, month)
    );
    CREATE TABLE receiver_sends (
        user_id BIGINT NOT NULL,
        at_ms BIGINT NOT NULL
    );
    CREATE INDEX receiver_sends_user ON receiver_sends(user_id, at_ms);
    CREATE TABLE vapid (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        private_key BYTEA NOT NULL,
        created_at BIGINT NOT NULL
    );
    -- The rolling windows one SQLite relay keeps in memory: one row per charged event.
    -- layer 'token' (token_burst, key = token id) or 'ip' (ip_minute and ip_hour, key = IP).
    CREATE TABLE rate_events (
        layer TEXT NOT NULL,
        key TEXT NOT NULL,
        at_ms BIGINT NOT NULL
    );
    CREATE INDEX rate_events_key ON rate_events(layer, key, at_ms);

    -- Step 1 of SPEC §1.7 for one address, atomically across relays: both per-IP windows
    -- counted (each at most up to its limit) and charged only if both have room.
    CREATE FUNCTION reflecto_charge_ip(p_ip TEXT, p_now BIGINT, p_minute BIGINT, p_hour BIGINT)
    RETURNS TABLE (charged BOOLEAN, minute_used BIGINT, minute_oldest BIGINT, hour_used BIGINT, hour_oldest BIGINT)
    LANGUAGE plpgsql AS $$
    DECLARE
        v_minute BIGINT := 0; v_minute_oldest BIGINT;
        v_hour BIGINT := 0; v_hour_oldest BIGINT;
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('reflecto ip ' || p_ip, 0));
        IF p_minute > 0 THEN
            SELECT count(*), min(e.at_ms) INTO v_minute, v_minute_oldest FROM (
                SELECT r.at_ms FROM rate_events r WHERE r.layer = 'ip' AND r.key = p_ip AND r.at_ms > p_now - 60000
                ORDER BY r.at_ms DESC LIMIT p_minute) e;
        END IF;
        IF p_hour > 0 THEN
            SELECT count(*), min(e.at_ms) INTO v_hour, v_hour_oldest FROM (
                SELECT r.at_ms FROM rate_events r WHERE r.layer = 'ip' AND r.key = p_ip AND r.at_ms > p_now - 3600000
                ORDER BY r.at_ms DESC LIMIT p_hour) e;
        END IF;
        IF (p_minute > 0 AND v_minute >= p_minute) OR (p_hour > 0 AND v_hour >= p_hour) THEN
            RETURN QUERY SELECT false, v_minute, v_minute_oldest, v_hour, v_hour_oldest;
            RETURN;
        END IF;
        INSERT INTO rate_events (layer, key, at_ms) VALUES ('ip', p_ip, p_now);
        RETURN QUERY SELECT true, v_minute, v_minute_oldest, v_hour, v_hour_oldest;
    END $$;

    -- Steps 6-7 of SPEC §1.7 in one transaction and one round trip: an Idempotency-Key seen
    -- before replays (decided under a lock on the key, so a concurrent repeat on another
    -- relay waits and then replays); otherwise the token and receiver windows are counted
    -- under locks on the token and the receiver (always taken in that order), and only if
    -- all have room is the send charged and the message committed with one job per target.
    -- (The wake-up is not sent from here: a transaction that NOTIFYs takes a database-wide
    -- lock at commit, so relays coalesce their wake-ups and send them on their own.)
    CREATE FUNCTION reflecto_accept(
        p_message_id TEXT, p_user_id BIGINT, p_token_id TEXT, p_envelope TEXT,
        p_now BIGINT, p_expires_at BIGINT, p_priority TEXT, p_month TEXT,
        p_idem_key TEXT, p_idem_status INTEGER, p_idem_body TEXT, p_touch BOOLEAN,
        p_burst BIGINT, p_monthly BIGINT, p_daily BIGINT,
        p_device_ids TEXT[], p_device_types TEXT[], p_states TEXT[],
        p_payloads BYTEA[], p_payload_kinds TEXT[])
    RETURNS TABLE (outcome TEXT, replay_status INTEGER, replay_body TEXT,
        burst_used BIGINT, burst_oldest BIGINT, monthly_used BIGINT, daily_used BIGINT, daily_oldest BIGINT)
    LANGUAGE plpgsql AS $$
    DECLARE
        v_seq BIGINT;
        v_burst BIGINT := 0; v_burst_oldest BIGINT;
        v_monthly BIGINT := 0;
        v_daily BIGINT := 0; v_daily_oldest BIGINT;
        v_status INTEGER; v_body TEXT;
    BEGIN
        IF p_idem_key IS NOT NULL THEN
            PERFORM pg_advisory_xact_lock(hashtextextended('reflecto key ' || p_token_id || ' ' || p_idem_key, 0));
            SELECT i.status, i.body INTO v_status, v_body FROM idempotency i
                WHERE i.token_id = p_token_id AND i.key = p_idem_key AND i.created_at > p_now - 86400000;
            IF FOUND THEN
                RETURN QUERY SELECT 'replayed'::TEXT, v_status, v_body, 0::BIGINT, NULL::BIGINT, 0::BIGINT, 0::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
        END IF;
        IF p_burst > 0 OR p_monthly > 0 THEN
            PERFORM pg_advisory_xact_lock(hashtextextended('reflecto token ' || p_token_id, 0));
        END IF;
        IF p_daily > 0 THEN
            PERFORM pg_advisory_xact_lock(hashtextextended('reflecto receiver ' || p_user_id::TEXT, 0));
        END IF;
        IF p_burst > 0 THEN
            SELECT count(*), min(e.at_ms) INTO v_burst, v_burst_oldest FROM (
                SELECT r.at_ms FROM rate_events r WHERE r.layer = 'token' AND r.key = p_token_id AND r.at_ms > p_now - 60000
                ORDER BY r.at_ms DESC LIMIT p_burst) e;
        END IF;
        IF p_monthly > 0 THEN
            SELECT coalesce(max(c.count), 0) INTO v_monthly FROM token_month_counts c
                WHERE c.token_id = p_token_id AND c.month = p_month;
        END IF;
        IF p_daily > 0 THEN
            SELECT count(*), min(e.at_ms) INTO v_daily, v_daily_oldest FROM (
                SELECT s.at_ms FROM receiver_sends s WHERE s.user_id = p_user_id AND s.at_ms > p_now - 86400000
                ORDER BY s.at_ms DESC LIMIT p_daily) e;
        END IF;
        IF (p_burst > 0 AND v_burst >= p_burst) OR (p_monthly > 0 AND v_monthly >= p_monthly)
            OR (p_daily > 0 AND v_daily >= p_daily) THEN
            RETURN QUERY SELECT 'refused'::TEXT, NULL::INTEGER, NULL::TEXT, v_burst, v_burst_oldest, v_monthly, v_daily, v_daily_oldest;
            RETURN;
        END IF;
        INSERT INTO messages (id, user_id, token_id, envelope, created_at, expires_at)
            VALUES (p_message_id, p_user_id, p_token_id, p_envelope, p_now, p_expires_at);
        FOR i IN 1 .. coalesce(array_length(p_device_ids, 1), 0) LOOP
            v_seq := NULL;
            IF p_device_types[i] = 'extension' THEN
                UPDATE devices SET next_seq = next_seq + 1 WHERE id = p_device_ids[i] RETURNING next_seq INTO v_seq;
                -- A desktop device removed since the targets were read gets no job.
                CONTINUE WHEN NOT FOUND;
            END IF;
            INSERT INTO jobs (message_id, device_id, device_type, state, run_at, seq, expires_at, updated_at, payload, payload_kind, priority)
                VALUES (p_message_id, p_device_ids[i], p_device_types[i], p_states[i], p_now, v_seq, p_expires_at, p_now,
                        p_payloads[i], p_payload_kinds[i], p_priority);
        END LOOP;
        INSERT INTO token_month_counts (token_id, month, count) VALUES (p_token_id, p_month, 1)
            ON CONFLICT (token_id, month) DO UPDATE SET count = token_month_counts.count + 1;
        INSERT INTO receiver_sends (user_id, at_ms) VALUES (p_user_id, p_now);
        IF p_burst > 0 THEN
            INSERT INTO rate_events (layer, key, at_ms) VALUES ('token', p_token_id, p_now);
        END IF;
        IF p_idem_key IS NOT NULL THEN
            INSERT INTO idempotency (token_id, key, status, body, created_at)
                VALUES (p_token_id, p_idem_key, p_idem_status, p_idem_body, p_now)
                ON CONFLICT (token_id, key) DO UPDATE
                SET status = EXCLUDED.status, body = EXCLUDED.body, created_at = EXCLUDED.created_at;
        END IF;
        IF p_touch THEN
            UPDATE tokens SET last_used_at = p_now WHERE id = p_token_id;
        END IF;
        RETURN QUERY SELECT 'accepted'::TEXT, NULL::INTEGER, NULL::TEXT, v_burst, v_burst_oldest, v_monthly, v_daily, v_daily_oldest;
    END $$;
    "#,
    // 2: a token per claim of a job, so an outcome or renewal lands only under the lease it
    // was claimed with; when each device was last seen (SPEC §2.5), NULL for never.
    "ALTER TABLE jobs ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;
     ALTER TABLE devices ADD COLUMN last_seen_at BIGINT;",
    // 3: a send's key (SPEC §1.15). `reflecto_accept` gains it: it supersedes the owner's
    // earlier messages with the key in the same transaction and round trip as the accept (a
    // new parameter is a new signature, so the old function is dropped, not replaced).
    r#"
    ALTER TABLE messages ADD COLUMN key TEXT;
    CREATE INDEX messages_user_key ON messages(user_id, key) WHERE key IS NOT NULL;
    DROP FUNCTION reflecto_accept(TEXT, BIGINT, TEXT, TEXT, BIGINT, BIGINT, TEXT, TEXT, TEXT, INTEGER,
        TEXT, BOOLEAN, BIGINT, BIGINT, BIGINT, TEXT[], TEXT[], TEXT[], BYTEA[], TEXT[]);
    CREATE FUNCTION reflecto_accept(
        p_message_id TEXT, p_user_id BIGINT, p_token_id TEXT, p_envelope TEXT,
        p_now BIGINT, p_expires_at BIGINT, p_priority TEXT, p_month TEXT,
        p_idem_key TEXT, p_idem_status INTEGER, p_idem_body TEXT, p_touch BOOLEAN,
        p_burst BIGINT, p_monthly BIGINT, p_daily BIGINT,
        p_device_ids TEXT[], p_device_types TEXT[], p_states TEXT[],
        p_payloads BYTEA[], p_payload_kinds TEXT[], p_key TEXT)
    RETURNS TABLE (outcome TEXT, replay_status INTEGER, replay_body TEXT,
        burst_used BIGINT, burst_oldest BIGINT, monthly_used BIGINT, daily_used BIGINT, daily_oldest BIGINT)
    LANGUAGE plpgsql AS $$
    DECLARE
        v_seq BIGINT;
        v_burst BIGINT := 0; v_burst_oldest BIGINT;
        v_monthly BIGINT := 0;
        v_daily BIGINT := 0; v_daily_oldest BIGINT;
        v_status INTEGER; v_body TEXT;
    BEGIN
        IF p_idem_key IS NOT NULL THEN
            PERFORM pg_advisory_xact_lock(hashtextextended('reflecto key ' || p_token_id || ' ' || p_idem_key, 0));
            SELECT i.status, i.body INTO v_status, v_body FROM idempotency i
                WHERE i.token_id = p_token_id AND i.key = p_idem_key AND i.created_at > p_now - 86400000;
            IF FOUND THEN
                RETURN QUERY SELECT 'replayed'::TEXT, v_status, v_body, 0::BIGINT, NULL::BIGINT, 0::BIGINT, 0::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
        END IF;
        IF p_burst > 0 OR p_monthly > 0 THEN
            PERFORM pg_advisory_xact_lock(hashtextextended('reflecto token ' || p_token_id, 0));
        END IF;
        IF p_daily > 0 THEN
            PERFORM pg_advisory_xact_lock(hashtextextended('reflecto receiver ' || p_user_id::TEXT, 0));
        END IF;
        IF p_burst > 0 THEN
            SELECT count(*), min(e.at_ms) INTO v_burst, v_burst_oldest FROM (
                SELECT r.at_ms FROM rate_events r WHERE r.layer = 'token' AND r.key = p_token_id AND r.at_ms > p_now - 60000
                ORDER BY r.at_ms DESC LIMIT p_burst) e;
        END IF;
        IF p_monthly > 0 THEN
            SELECT coalesce(max(c.count), 0) INTO v_monthly FROM token_month_counts c
                WHERE c.token_id = p_token_id AND c.month = p_month;
        END IF;
        IF p_daily > 0 THEN
            SELECT count(*), min(e.at_ms) INTO v_daily, v_daily_oldest FROM (
                SELECT s.at_ms FROM receiver_sends s WHERE s.user_id = p_user_id AND s.at_ms > p_now - 86400000
                ORDER BY s.at_ms DESC LIMIT p_daily) e;
        END IF;
        IF (p_burst > 0 AND v_burst >= p_burst) OR (p_monthly > 0 AND v_monthly >= p_monthly)
            OR (p_daily > 0 AND v_daily >= p_daily) THEN
            RETURN QUERY SELECT 'refused'::TEXT, NULL::INTEGER, NULL::TEXT, v_burst, v_burst_oldest, v_monthly, v_daily, v_daily_oldest;
            RETURN;
        END IF;
        -- SPEC §1.15: the owner's earlier messages with this key stop being delivered.
        IF p_key IS NOT NULL THEN
            UPDATE jobs SET state = 'superseded', lease_until = NULL, updated_at = p_now
                WHERE state IN ('queued', 'leased', 'pending')
                AND message_id IN (SELECT m.id FROM messages m WHERE m.user_id = p_user_id AND m.key = p_key);
        END IF;
        INSERT INTO messages (id, user_id, token_id, envelope, created_at, expires_at, key)
            VALUES (p_message_id, p_user_id, p_token_id, p_envelope, p_now, p_expires_at, p_key);
        FOR i IN 1 .. coalesce(array_length(p_device_ids, 1), 0) LOOP
            v_seq := NULL;
            IF p_device_types[i] = 'extension' THEN
                UPDATE devices SET next_seq = next_seq + 1 WHERE id = p_device_ids[i] RETURNING next_seq INTO v_seq;
                -- A desktop device removed since the targets were read gets no job.
                CONTINUE WHEN NOT FOUND;
            END IF;
            INSERT INTO jobs (message_id, device_id, device_type, state, run_at, seq, expires_at, updated_at, payload, payload_kind, priority)
                VALUES (p_message_id, p_device_ids[i], p_device_types[i], p_states[i], p_now, v_seq, p_expires_at, p_now,
                        p_payloads[i], p_payload_kinds[i], p_priority);
        END LOOP;
        INSERT INTO token_month_counts (token_id, month, count) VALUES (p_token_id, p_month, 1)
            ON CONFLICT (token_id, month) DO UPDATE SET count = token_month_counts.count + 1;
        INSERT INTO receiver_sends (user_id, at_ms) VALUES (p_user_id, p_now);
        IF p_burst > 0 THEN
            INSERT INTO rate_events (layer, key, at_ms) VALUES ('token', p_token_id, p_now);
        END IF;
        IF p_idem_key IS NOT NULL THEN
            INSERT INTO idempotency (token_id, key, status, body, created_at)
                VALUES (p_token_id, p_idem_key, p_idem_status, p_idem_body, p_now)
                ON CONFLICT (token_id, key) DO UPDATE
                SET status = EXCLUDED.status, body = EXCLUDED.body, created_at = EXCLUDED.created_at;
        END IF;
        IF p_touch THEN
            UPDATE tokens SET last_used_at = p_now WHERE id = p_token_id;
        END IF;
        RETURN QUERY SELECT 'accepted'::TEXT, NULL::INTEGER, NULL::TEXT, v_burst, v_burst_oldest, v_monthly, v_daily, v_daily_oldest;
    END $$;
    "#,
    // 4: clears and acknowledgements (SPEC §1.15, §1.16). A job is a message or a `clear` of
    // it (riding the same queue, leases and retries); each delivery keeps its device's first
    // acknowledgement; a message keeps the responses its actions offer (space-separated: a
    // response holds no space), when it was cleared and its first acknowledgement.
    // `reflecto_accept` gains the responses (a new signature: the old function is dropped)
    // and supersedes only message jobs, never a clear.
    r#"
    ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';
    ALTER TABLE jobs ADD COLUMN acknowledged_at BIGINT;
    ALTER TABLE jobs ADD COLUMN response TEXT;
    ALTER TABLE messages ADD COLUMN responses TEXT;
    ALTER TABLE messages ADD COLUMN cleared_at BIGINT;
    ALTER TABLE messages ADD COLUMN acknowledged_at BIGINT;
    ALTER TABLE messages ADD COLUMN acknowledged_by TEXT;
    ALTER TABLE messages ADD COLUMN acknowledged_response TEXT;
    DROP FUNCTION reflecto_accept(TEXT, BIGINT, TEXT, TEXT, BIGINT, BIGINT, TEXT, TEXT, TEXT, INTEGER,
        TEXT, BOOLEAN, BIGINT, BIGINT, BIGINT, TEXT[], TEXT[], TEXT[], BYTEA[], TEXT[], TEXT);
    CREATE FUNCTION reflecto_accept(
        p_message_id TEXT, p_user_id BIGINT, p_token_id TEXT, p_envelope TEXT,
        p_now BIGINT, p_expires_at BIGINT, p_priority TEXT, p_month TEXT,
        p_idem_key TEXT, p_idem_status INTEGER, p_idem_body TEXT, p_touch BOOLEAN,
        p_burst BIGINT, p_monthly BIGINT, p_daily BIGINT,
        p_device_ids TEXT[], p_device_types TEXT[], p_states TEXT[],
        p_payloads BYTEA[], p_payload_kinds TEXT[], p_key TEXT, p_responses TEXT)
    RETURNS TABLE (outcome TEXT, replay_status INTEGER, replay_body TEXT,
        burst_used BIGINT, burst_oldest BIGINT, monthly_used BIGINT, daily_used BIGINT, daily_oldest BIGINT)
    LANGUAGE plpgsql AS $$
    DECLARE
        v_seq BIGINT;
        v_burst BIGINT := 0; v_burst_oldest BIGINT;
        v_monthly BIGINT := 0;
        v_daily BIGINT := 0; v_daily_oldest BIGINT;
        v_status INTEGER; v_body TEXT;
    BEGIN
        IF p_idem_key IS NOT NULL THEN
            PERFORM pg_advisory_xact_lock(hashtextextended('reflecto key ' || p_token_id || ' ' || p_idem_key, 0));
            SELECT i.status, i.body INTO v_status, v_body FROM idempotency i
                WHERE i.token_id = p_token_id AND i.key = p_idem_key AND i.created_at > p_now - 86400000;
            IF FOUND THEN
                RETURN QUERY SELECT 'replayed'::TEXT, v_status, v_body, 0::BIGINT, NULL::BIGINT, 0::BIGINT, 0::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
        END IF;
        IF p_burst > 0 OR p_monthly > 0 THEN
            PERFORM pg_advisory_xact_lock(hashtextextended('reflecto token ' || p_token_id, 0));
        END IF;
        IF p_daily > 0 THEN
            PERFORM pg_advisory_xact_lock(hashtextextended('reflecto receiver ' || p_user_id::TEXT, 0));
        END IF;
        IF p_burst > 0 THEN
            SELECT count(*), min(e.at_ms) INTO v_burst, v_burst_oldest FROM (
                SELECT r.at_ms FROM rate_events r WHERE r.layer = 'token' AND r.key = p_token_id AND r.at_ms > p_now - 60000
                ORDER BY r.at_ms DESC LIMIT p_burst) e;
        END IF;
        IF p_monthly > 0 THEN
            SELECT coalesce(max(c.count), 0) INTO v_monthly FROM token_month_counts c
                WHERE c.token_id = p_token_id AND c.month = p_month;
        END IF;
        IF p_daily > 0 THEN
            SELECT count(*), min(e.at_ms) INTO v_daily, v_daily_oldest FROM (
                SELECT s.at_ms FROM receiver_sends s WHERE s.user_id = p_user_id AND s.at_ms > p_now - 86400000
                ORDER BY s.at_ms DESC LIMIT p_daily) e;
        END IF;
        IF (p_burst > 0 AND v_burst >= p_burst) OR (p_monthly > 0 AND v_monthly >= p_monthly)
            OR (p_daily > 0 AND v_daily >= p_daily) THEN
            RETURN QUERY SELECT 'refused'::TEXT, NULL::INTEGER, NULL::TEXT, v_burst, v_burst_oldest, v_monthly, v_daily, v_daily_oldest;
            RETURN;
        END IF;
        -- SPEC §1.15: the owner's earlier messages with this key stop being delivered.
        IF p_key IS NOT NULL THEN
            UPDATE jobs SET state = 'superseded', lease_until = NULL, updated_at = p_now
                WHERE state IN ('queued', 'leased', 'pending') AND kind = 'message'
                AND message_id IN (SELECT m.id FROM messages m WHERE m.user_id = p_user_id AND m.key = p_key);
        END IF;
        INSERT INTO messages (id, user_id, token_id, envelope, created_at, expires_at, key, responses)
            VALUES (p_message_id, p_user_id, p_token_id, p_envelope, p_now, p_expires_at, p_key, p_responses);
        FOR i IN 1 .. coalesce(array_length(p_device_ids, 1), 0) LOOP
            v_seq := NULL;
            IF p_device_types[i] = 'extension' THEN
                UPDATE devices SET next_seq = next_seq + 1 WHERE id = p_device_ids[i] RETURNING next_seq INTO v_seq;
                -- A desktop device removed since the targets were read gets no job.
                CONTINUE WHEN NOT FOUND;
            END IF;
            INSERT INTO jobs (message_id, device_id, device_type, state, run_at, seq, expires_at, updated_at, payload, payload_kind, priority)
                VALUES (p_message_id, p_device_ids[i], p_device_types[i], p_states[i], p_now, v_seq, p_expires_at, p_now,
                        p_payloads[i], p_payload_kinds[i], p_priority);
        END LOOP;
        INSERT INTO token_month_counts (token_id, month, count) VALUES (p_token_id, p_month, 1)
            ON CONFLICT (token_id, month) DO UPDATE SET count = token_month_counts.count + 1;
        INSERT INTO receiver_sends (user_id, at_ms) VALUES (p_user_id, p_now);
        IF p_burst > 0 THEN
            INSERT INTO rate_events (layer, key, at_ms) VALUES ('token', p_token_id, p_now);
        END IF;
        IF p_idem_key IS NOT NULL THEN
            INSERT INTO idempotency (token_id, key, status, body, created_at)
                VALUES (p_token_id, p_idem_key, p_idem_status, p_idem_body, p_now)
                ON CONFLICT (token_id, key) DO UPDATE
                SET status = EXCLUDED.status, body = EXCLUDED.body, created_at = EXCLUDED.created_at;
        END IF;
        IF p_touch THEN
            UPDATE tokens SET last_used_at = p_now WHERE id = p_token_id;
        END IF;
        RETURN QUERY SELECT 'accepted'::TEXT, NULL::INTEGER, NULL::TEXT, v_burst, v_burst_oldest, v_monthly, v_daily, v_daily_oldest;
    END $$;
    "#,
    // 5: urgent messages (SPEC §1.17). One row per send that repeats, calls back or has a
    // Pushover receipt: the repeat plan and where it stands (`next_at` NULL once stopped), the
    // callback's durable work (`callback_type` set when an event is due; retried with back-off
    // until `callback_give_up_at`, claimed under `callback_lease_until` so one relay sends it)
    // and its outcome. A repeat is a job of kind 'repeat'.
    "CREATE TABLE urgent (
        message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        retry_ms BIGINT,
        expire_ms BIGINT,
        expires_at BIGINT,
        next_at BIGINT,
        repeats BIGINT NOT NULL DEFAULT 0,
        receipt TEXT UNIQUE,
        callback TEXT,
        callback_type TEXT,
        callback_state TEXT,
        callback_at BIGINT,
        callback_attempts INTEGER NOT NULL DEFAULT 0,
        callback_run_at BIGINT,
        callback_lease_until BIGINT,
        callback_give_up_at BIGINT
     );
     CREATE INDEX urgent_next ON urgent(next_at) WHERE next_at IS NOT NULL;
     CREATE INDEX urgent_callback ON urgent(callback_run_at) WHERE callback_run_at IS NOT NULL;",
    // 6: the operator API (SPEC §1.19): admin tokens (no user; hashed like sender
    // tokens), the addresses each was used from (a new one is audited), the audit log, and
    // the indexes that page messages newest first, all or one user's.
    r#"
    CREATE TABLE admin_tokens (
        id TEXT PRIMARY KEY,
        hash BYTEA NOT NULL UNIQUE,
        label TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        last_used_at BIGINT,
        revoked_at BIGINT
    );
    CREATE TABLE admin_token_ips (
        token_id TEXT NOT NULL REFERENCES admin_tokens(id) ON DELETE CASCADE,
        ip TEXT NOT NULL,
        first_at BIGINT NOT NULL,
        PRIMARY KEY (token_id, ip)
    );
    CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY,
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        ip TEXT
    );
    CREATE INDEX audit_at ON audit(at);
    CREATE INDEX messages_page ON messages(created_at, id);
    CREATE INDEX messages_user_page ON messages(user_id, created_at, id);
    "#,
    // 7: heartbeats (SPEC §1.18), as SQLite's migration 11.
    r#"
    CREATE TABLE heartbeats (
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        every_ms BIGINT NOT NULL,
        grace_ms BIGINT NOT NULL,
        grace_set BOOLEAN NOT NULL,
        state TEXT NOT NULL,
        last_ping_at BIGINT NOT NULL,
        alarm_at BIGINT NOT NULL,
        token_id TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (user_id, name)
    );
    CREATE INDEX heartbeats_due ON heartbeats(alarm_at) WHERE state = 'up';
    "#,
    // 8: as SQLite's migration 13: `messages_created` repeats the head of `messages_page`.
    "DROP INDEX messages_created;",
    // 9: the due jobs of each channel in their own run of the due index (as SQLite's migration
    // 6 made its scan skip another channel's jobs). The claim and the next-due lookup filtered
    // `device_type` on the heap row: every claim fetched each due job of another channel ahead
    // of its own, again at every claim (an FCM drain beside as many queued Web Push jobs, or
    // Web Push beside android jobs waiting for FCM credentials). They now read one range of
    // this index per channel (`queue.rs`).
    "DROP INDEX jobs_due; CREATE INDEX jobs_due ON jobs(device_type, run_at) WHERE state = 'queued';",
];

/// Brings the schema up to date in one transaction, holding the migration lock.
pub async fn migrate(client: &mut Object) -> Result<()> {
    let client: &mut tokio_postgres::Client = client;
    let tx = client.transaction().await?;
    lock_migrations(&tx).await?;
    apply(&tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Waits for (and, until the transaction ends, holds) the migration lock.
pub async fn lock_migrations(c: &impl GenericClient) -> Result<()> {
    c.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    Ok(())
}

/// Applies the migrations this database lacks, inside the caller's transaction.
pub async fn apply(tx: &impl GenericClient) -> Result<()> {
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS reflecto_schema (version INTEGER NOT NULL); \
         INSERT INTO reflecto_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM reflecto_schema)",
    )
    .await?;
    let current: i32 = tx
        .query_one("SELECT version FROM reflecto_schema", &[])
        .await?
        .get(0);
    let current = usize::try_from(current).unwrap_or(0);
    if current > MIGRATIONS.len() {
        return Err(crate::store::StoreError::Conflict(format!(
            "the database's schema (version {current}) is newer than this relay's ({}); upgrade reflecto",
            MIGRATIONS.len()
        )));
    }
    for sql in MIGRATIONS.iter().skip(current) {
        tx.batch_execute(sql).await?;
    }
    tx.execute(
        "UPDATE reflecto_schema SET version = $1",
        &[&(MIGRATIONS.len() as i32)],
    )
    .await?;
    Ok(())
}

/// Whether the database holds no relay data yet (`admin copy` writes only into such a one).
pub async fn is_empty(client: &impl GenericClient) -> Result<bool> {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM tokens) + (SELECT count(*) FROM devices) \
             + (SELECT count(*) FROM messages) + (SELECT count(*) FROM vapid) + (SELECT count(*) FROM token_month_counts)",
            &[],
        )
        .await?;
    Ok(row.get::<_, i64>(0) == 0)
}
