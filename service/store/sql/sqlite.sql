-- Statements run verbatim on SQLite (on the writer thread's connection, sqlite3's named
-- parameters). Dates are naive UTC text ('YYYY-MM-DD HH:MM:SS.ffffff'), JSON is text: the
-- forms SQLAlchemy's column types store.

-- name: apply_change
-- One planned change, when the job is still where the caller expects it (:expect, and
-- under the claim :owner when given): its fields, its version, its lease (a terminal job
-- with nothing to keep is settled now). The caller adds the events, counters and outbox
-- row in the same transaction. No row: the job had moved.
UPDATE jobs SET
    status = :status,
    version = version + :version_bump,
    updated_at = :now,
    provider_id = COALESCE(:provider_id, provider_id),
    provider_status = COALESCE(:provider_status, provider_status),
    fetch_result = COALESCE(:fetch_result, fetch_result),
    submitted_at = COALESCE(:submitted_at, submitted_at),
    eta_at = COALESCE(:eta_at, eta_at),
    next_poll_at = CASE WHEN :terminal THEN NULL ELSE COALESCE(:next_poll_at, next_poll_at) END,
    output = COALESCE(:output, output),
    error_code = COALESCE(:error_code, error_code),
    error_message = COALESCE(:error_message, error_message),
    completed_at = CASE WHEN :terminal THEN :now ELSE completed_at END,
    lease_owner = CASE WHEN :release THEN NULL ELSE lease_owner END,
    lease_expires_at = CASE WHEN :release THEN NULL ELSE lease_expires_at END,
    polls = polls + :polls,
    attempts = CASE WHEN :reset_attempts THEN 0 ELSE attempts + :attempts END,
    webhooks = webhooks + :webhooks,
    callback_status = CASE WHEN :terminal AND callback_url IS NOT NULL THEN 'pending'
                           ELSE callback_status END,
    archive_status = CASE WHEN :archive THEN 'pending' ELSE archive_status END,
    settled_at = CASE WHEN :terminal AND NOT :archive THEN :now ELSE settled_at END
WHERE id = :id AND status = :expect AND (:owner IS NULL OR lease_owner = :owner)
RETURNING *

-- name: insert_event
INSERT INTO job_events (job_id, at, kind, source, from_status, to_status, detail)
VALUES (:job_id, :at, :kind, :source, :from_status, :to_status, :detail)

-- name: bump_count
INSERT INTO status_counts (client_id, status, shard, n) VALUES (:client_id, :status, :shard, :n)
ON CONFLICT (client_id, status, shard) DO UPDATE SET n = n + excluded.n

-- name: insert_outbox
-- The callback of a job that just finished, when it has a URL (its body is built at the
-- first delivery), due at :due (later than now while its outputs are being archived).
INSERT INTO callback_deliveries (job_id, client_id, webhook_id, event_type, url, status,
                                 next_attempt_at, created_at, updated_at)
SELECT id, client_id, :webhook_id, :event_type, callback_url, 'pending', :due, :now, :now
FROM jobs WHERE id = :job_id AND callback_url IS NOT NULL

-- name: queue_archive
-- A job that just succeeded: archive its outputs now, giving up at :deadline.
INSERT INTO output_archives (job_id, status, attempts, next_attempt_at, deadline_at,
                             created_at, updated_at)
VALUES (:job_id, 'pending', 0, :now, :deadline, :now, :now)

-- name: count_webhook
-- Count a webhook that moves nothing, on the job as the caller found it.
UPDATE jobs SET webhooks = webhooks + 1, version = version + 1, updated_at = :now
WHERE id = :id AND status = :status AND webhooks = :webhooks
RETURNING *

-- name: get_job
SELECT * FROM jobs WHERE id = :id

-- name: find_active_key
SELECT api_keys.*, clients.name AS client_name, clients.default_callback_url
FROM api_keys JOIN clients ON clients.id = api_keys.client_id
WHERE api_keys.key_hash = :key_hash AND api_keys.revoked_at IS NULL

-- name: prior_job
SELECT id, created_at, request_hash FROM jobs
WHERE client_id = :client_id AND idempotency_key = :key

-- name: forget_idempotency_key
UPDATE jobs SET idempotency_key = NULL WHERE id = :id

-- name: count_rate_window
INSERT INTO rate_windows (client_id, window_start, count) VALUES (:client_id, :start, 1)
ON CONFLICT (client_id, window_start) DO UPDATE SET count = count + 1
RETURNING count

-- name: forget_rate_windows
DELETE FROM rate_windows WHERE client_id = :client_id AND window_start < :start

-- name: count_unfinished
SELECT COALESCE(sum(n), 0) FROM status_counts
WHERE client_id = :client_id AND status IN ({UNFINISHED})

-- name: insert_job
INSERT INTO jobs (public_id, client_id, status, request, idempotency_key, request_hash, output,
                  created_at, updated_at, next_poll_at, callback_url, metadata)
VALUES (:public_id, :client_id, :status, :request, :key, :request_hash, '[]',
        :now, :now, :now, :callback_url, :metadata)
RETURNING *
