-- Statements run verbatim on PostgreSQL (as prepared statements on the asyncpg connection).
-- Parameters are positional ($1, $2, …), each cast to its type. `{EVENTS($n)}` is the rows
-- of the events in parameter $n (a JSON array), in order, as `e` (service/store/sql).

-- name: apply_change
-- Apply one planned change in one statement, when the job is still where the caller
-- expects it ($2, and under the claim $3 when given): set the job's fields, bump its
-- version, record the change's events in order, move the per-state counters, and queue
-- the callback (its body is built at the first delivery; held until $28 when the job's
-- outputs are to be archived, which queues the archive; a terminal job with nothing to
-- keep is settled now), and NOTIFY $27 when a process
-- waits on the job (job_watchers). Returns the changed job, or no row when the job had
-- moved (the caller reads it in a statement of its own: this one's snapshot may predate
-- the change it waited for).
WITH upd AS (
    UPDATE jobs SET
        status = $4::varchar,
        version = version + $5::integer,
        updated_at = $6::timestamptz,
        provider_id = COALESCE($7::varchar, provider_id),
        provider_status = COALESCE($8::varchar, provider_status),
        fetch_result = COALESCE($9::text, fetch_result),
        submitted_at = COALESCE($10::timestamptz, submitted_at),
        eta_at = COALESCE($11::timestamptz, eta_at),
        next_poll_at = CASE WHEN $16::boolean THEN NULL
                            ELSE COALESCE($12::timestamptz, next_poll_at) END,
        output = COALESCE($13::jsonb, output),
        error_code = COALESCE($14::varchar, error_code),
        error_message = COALESCE($15::text, error_message),
        completed_at = CASE WHEN $16::boolean THEN $6::timestamptz ELSE completed_at END,
        lease_owner = CASE WHEN $17::boolean THEN NULL ELSE lease_owner END,
        lease_expires_at = CASE WHEN $17::boolean THEN NULL ELSE lease_expires_at END,
        polls = polls + $18::integer,
        attempts = CASE WHEN $20::boolean THEN 0 ELSE attempts + $19::integer END,
        webhooks = webhooks + $21::integer,
        callback_status = CASE WHEN $16::boolean AND callback_url IS NOT NULL THEN 'pending'
                               ELSE callback_status END,
        archive_status = CASE WHEN $28::timestamptz IS NOT NULL THEN 'pending'
                              ELSE archive_status END,
        settled_at = CASE WHEN $16::boolean AND $28::timestamptz IS NULL THEN $6::timestamptz
                          ELSE settled_at END
    WHERE id = $1::bigint AND status = $2::varchar
      AND ($3::varchar IS NULL OR lease_owner = $3::varchar)
    RETURNING *
), events AS (
    INSERT INTO job_events (job_id, at, kind, source, from_status, to_status, detail)
    SELECT upd.id, $6::timestamptz, e.kind, e.source, e.from_status, e.to_status, e.detail
    FROM upd CROSS JOIN {EVENTS($22)}
    ORDER BY e.ord
), counts AS (
    INSERT INTO status_counts (client_id, status, shard, n)
    SELECT upd.client_id, d.status, $24::integer, d.n
    FROM upd CROSS JOIN jsonb_to_recordset($23::jsonb) AS d(status varchar, n bigint)
    ORDER BY d.status
    ON CONFLICT (client_id, status, shard) DO UPDATE SET n = status_counts.n + EXCLUDED.n
), outbox AS (
    INSERT INTO callback_deliveries (job_id, client_id, webhook_id, event_type, url, status,
                                     next_attempt_at, created_at, updated_at)
    SELECT upd.id, upd.client_id, $25::varchar, $26::varchar, upd.callback_url, 'pending',
           COALESCE($28::timestamptz, $6::timestamptz), $6::timestamptz, $6::timestamptz
    FROM upd
    WHERE $26::varchar IS NOT NULL AND upd.callback_url IS NOT NULL
), archive AS (
    INSERT INTO output_archives (job_id, status, attempts, next_attempt_at, deadline_at,
                                 created_at, updated_at)
    SELECT upd.id, 'pending', 0, $6::timestamptz, $28::timestamptz, $6::timestamptz,
           $6::timestamptz
    FROM upd
    WHERE $28::timestamptz IS NOT NULL
)
SELECT upd.*,
       CASE WHEN EXISTS (SELECT 1 FROM job_watchers w WHERE w.job_id = upd.id)
            THEN pg_notify($27::text, upd.id::text) END AS watched
FROM upd

-- name: count_webhook
-- Count one webhook that moves nothing, on the job as the caller found it ($2: its status,
-- $3: its webhook count, so concurrent counters never skip the body cap), and record the
-- events the caller passes (its raw body and why nothing moved, or none past the cap), and
-- NOTIFY $6 when a process waits on the job. No row back: the job had moved; the caller looks again.
WITH upd AS (
    UPDATE jobs SET
        webhooks = webhooks + 1,
        version = version + 1,
        updated_at = $4::timestamptz
    WHERE id = $1::bigint AND status = $2::varchar AND webhooks = $3::integer
    RETURNING *
), events AS (
    INSERT INTO job_events (job_id, at, kind, source, from_status, to_status, detail)
    SELECT upd.id, $4::timestamptz, e.kind, e.source, e.from_status, e.to_status, e.detail
    FROM upd CROSS JOIN {EVENTS($5)}
    ORDER BY e.ord
)
SELECT upd.*,
       CASE WHEN EXISTS (SELECT 1 FROM job_watchers w WHERE w.job_id = upd.id)
            THEN pg_notify($6::text, upd.id::text) END AS watched
FROM upd

-- name: get_job
SELECT * FROM jobs WHERE id = $1::bigint

-- name: find_active_key
SELECT api_keys.*, clients.name AS client_name, clients.default_callback_url
FROM api_keys JOIN clients ON clients.id = api_keys.client_id
WHERE api_keys.key_hash = $1::varchar AND api_keys.revoked_at IS NULL

-- name: create_job
-- Create a job in one statement (its own transaction), exact under concurrent creators of
-- one client without a lock held across round trips: the client's rate window row and its
-- unfinished counters are row-locked here, so a creator that waited for another reads the
-- counts that one committed. Given the Idempotency-Key ($2), the window ($3), and the
-- limits ($4 creations a window, $5 unfinished jobs): a key
-- that names a job inserts nothing and counts nothing (the caller replays it, or frees an
-- expired key and asks again); otherwise the creation counts in the window, and the job
-- (in state $16), its event ($15) and its count are inserted when both limits allow, with
-- a NOTIFY to every replica's submitter. Returns what was found and the job, if one was made.
WITH prior AS (
    SELECT id, created_at, request_hash FROM jobs
    WHERE client_id = $1::bigint AND idempotency_key = $2::varchar
), window_count AS (
    INSERT INTO rate_windows (client_id, window_start, count)
    SELECT $1::bigint, $3::timestamptz, 1 WHERE NOT EXISTS (SELECT 1 FROM prior)
    ON CONFLICT (client_id, window_start) DO UPDATE SET count = rate_windows.count + 1
    RETURNING count
), open_rows AS (
    SELECT n FROM status_counts
    WHERE client_id = $1::bigint AND status IN ({UNFINISHED})
    ORDER BY status, shard  -- the order apply_change locks counters in: no deadlock
    FOR UPDATE
), open AS (
    SELECT COALESCE(sum(n), 0)::bigint AS n FROM open_rows
), allowed AS (
    SELECT 1 AS ok FROM window_count, open
    WHERE window_count.count <= $4::bigint AND open.n < $5::bigint
), j AS (
    INSERT INTO jobs (public_id, client_id, status, request, idempotency_key, request_hash,
                      output, created_at, updated_at, next_poll_at, callback_url, metadata)
    SELECT $6::varchar, $1::bigint, $16::varchar, $7::jsonb, $2::varchar, $8::varchar,
           '[]'::jsonb, $9::timestamptz, $9::timestamptz, $9::timestamptz, $10::text, $11::jsonb
    FROM allowed
    RETURNING *
), created AS (
    INSERT INTO job_events (job_id, at, kind, source, from_status, to_status, detail)
    SELECT j.id, $9::timestamptz, e.kind, e.source, e.from_status, e.to_status, e.detail
    FROM j CROSS JOIN {EVENTS($15)}
), counted AS (
    INSERT INTO status_counts (client_id, status, shard, n)
    SELECT $1::bigint, $16::varchar, (j.id % $12::integer)::integer, 1 FROM j
    ON CONFLICT (client_id, status, shard) DO UPDATE SET n = status_counts.n + 1
)
SELECT
    (SELECT count FROM window_count) AS window_count,
    (SELECT n FROM open WHERE NOT EXISTS (SELECT 1 FROM prior)) AS unfinished,
    (SELECT id FROM prior) AS prior_id,
    (SELECT created_at FROM prior) AS prior_created_at,
    (SELECT request_hash FROM prior) AS prior_hash,
    j.*,
    CASE WHEN j.id IS NOT NULL THEN pg_notify($13::text, $14::text) END AS notified
FROM (SELECT 1) AS one LEFT JOIN j ON true

-- name: forget_idempotency_key
-- A key older than its lifetime may name a new job.
UPDATE jobs SET idempotency_key = NULL WHERE id = $1::bigint

-- name: forget_rate_windows
-- A client's past windows, when its new one opens.
DELETE FROM rate_windows WHERE client_id = $1::bigint AND window_start < $2::timestamptz

-- name: record_events
-- Events on a job whose change did not apply (its notes, and why), and NOTIFY $4 when a
-- process waits on the job.
WITH events AS (
    INSERT INTO job_events (job_id, at, kind, source, from_status, to_status, detail)
    SELECT $1::bigint, $2::timestamptz, e.kind, e.source, e.from_status, e.to_status, e.detail
    FROM {EVENTS($3)}
    ORDER BY e.ord
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM job_watchers w WHERE w.job_id = $1::bigint)
            THEN pg_notify($4::text, $1::text) END AS watched

-- name: watch_job
-- This process ($2) waits on a job until $3 (refreshed while it waits).
INSERT INTO job_watchers (job_id, watcher, expires_at)
SELECT $1::bigint, $2::varchar, $3::timestamptz
WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1::bigint)
ON CONFLICT (job_id, watcher) DO UPDATE SET expires_at = EXCLUDED.expires_at

-- name: unwatch_job
DELETE FROM job_watchers WHERE job_id = $1::bigint AND watcher = $2::varchar

-- name: keep_watching
-- This process ($1) still waits on its jobs until $2; rows of processes that stopped
-- refreshing theirs (expired before $3) go.
WITH kept AS (
    UPDATE job_watchers SET expires_at = $2::timestamptz WHERE watcher = $1::varchar
)
DELETE FROM job_watchers WHERE expires_at < $3::timestamptz AND watcher <> $1::varchar

-- name: unwatch_all
DELETE FROM job_watchers WHERE watcher = $1::varchar
