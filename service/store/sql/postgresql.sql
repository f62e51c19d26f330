-- Statements run verbatim on PostgreSQL (as prepared statements on the asyncpg connection).
-- Parameters are positional ($1, $2, …), each cast to its type.

-- name: apply_change
-- Apply one planned change in one statement, when the job is still where the caller
-- expects it ($2, and under the claim $3 when given): set the job's fields, bump its
-- version, record the change's events in order, move the per-state counters, and queue
-- the callback (its body is built at the first delivery). No row back: the job had moved,
-- and the caller takes the general path.
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
                               ELSE callback_status END
    WHERE id = $1::bigint AND status = $2::varchar
      AND ($3::varchar IS NULL OR lease_owner = $3::varchar)
    RETURNING *
), events AS (
    INSERT INTO job_events (job_id, at, kind, source, from_status, to_status, detail)
    SELECT upd.id, $6::timestamptz, e.kind, e.source, e.from_status, e.to_status, e.detail
    FROM upd CROSS JOIN ROWS FROM (
        jsonb_to_recordset($22::jsonb)
            AS (kind varchar, source varchar, from_status varchar, to_status varchar, detail jsonb)
    ) WITH ORDINALITY AS e(kind, source, from_status, to_status, detail, ord)
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
           $6::timestamptz, $6::timestamptz, $6::timestamptz
    FROM upd
    WHERE $26::varchar IS NOT NULL AND upd.callback_url IS NOT NULL
)
SELECT * FROM upd
