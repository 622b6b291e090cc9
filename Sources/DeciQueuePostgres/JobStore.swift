// The queue's SQL: every operation is one statement, so each is atomic on its own and no
// transaction ever spans a network round trip (a worker that vanishes mid-call leaves nothing
// half-done). Claims use FOR UPDATE SKIP LOCKED; a job's lease is (lease_owner, attempts), and
// every write a worker makes names both, so a worker whose lease was taken over writes nothing.
// NOTIFY is sent from inside the statement (delivered at its commit): `deci_new_job` (payload: the
// model), `deci_job` (payload: the job id; any change) and `deci_cancel` (payload: the job id).
import DeciDiffusion
import Foundation
import NIOCore
import PostgresNIO

public final class JobStore: @unchecked Sendable {
    static let newJobChannel = "deci_new_job"
    static let jobChannel = "deci_job"
    static let cancelChannel = "deci_cancel"

    let link: PostgresLink

    init(link: PostgresLink) { self.link = link }

    /// A job's row, without its images and preview.
    struct Row {
        var id: JobID
        var model: String
        var seed: UInt64
        var spec: String
        var state: JobStatus
        var attempts: Int
        var leaseOwner: String?
        var cancelRequested: Bool
        var progress: JobProgress?
        var previewStep: Int?
        var resolved: String?
        var error: String?
        var warnings: String?
        var timings: String?
        var partial: Bool
        var imageCount: Int
        var created: Date
        var started: Date?
        var finished: Date?
        /// 1-based among queued jobs (meaningful only while queued).
        var position: Int
    }

    /// A claimed job: what the worker runs and the lease it holds.
    struct Claim {
        var id: JobID
        var attempt: Int
        var spec: String
        var model: String
        var cancelRequested: Bool
    }

    // MARK: - API side

    /// Inserts a queued job unless `queueLimit` jobs already wait; returns false when full. The
    /// count and the insert are one statement; API nodes racing each other can overshoot the limit
    /// by at most one job each.
    func enqueue(id: JobID, model: String, seed: UInt64, spec: String, maxAttempts: Int, queueLimit: Int) throws(QueueError) -> Bool {
        let rows = try link.run("""
            WITH waiting AS (SELECT count(*) AS n FROM deci_jobs WHERE state = 'queued'),
            added AS (
                INSERT INTO deci_jobs (id, model, seed, spec, state, max_attempts)
                SELECT \(id.rawValue), \(model), \(Int64(bitPattern: seed)), \(spec)::jsonb, 'queued', \(maxAttempts)
                FROM waiting WHERE waiting.n < \(queueLimit)
                RETURNING id, model)
            SELECT id, pg_notify('\(unescaped: Self.newJobChannel)', model)::text FROM added
            """)
        return rows.rows.count == 1
    }

    func fetch(_ id: JobID) throws(QueueError) -> Row? {
        let rows = try link.run("""
            SELECT j.id, j.model, j.seed, j.spec::text, j.state, j.attempts, j.lease_owner, j.cancel_requested, j.step, j.total_steps,
                   j.seconds_per_step, j.eta_seconds, j.preview_step, j.resolved::text, j.error, j.warnings::text, j.timings::text,
                   j.partial, j.image_count, j.created, j.started, j.finished,
                   CASE WHEN j.state = 'queued' THEN (SELECT count(*) FROM deci_jobs q WHERE q.state = 'queued' AND (q.created, q.id) <= (j.created, j.id)) ELSE 0 END
            FROM deci_jobs j WHERE j.id = \(id.rawValue)
            """)
        guard let row = rows.rows.first else { return nil }
        return try decodeRow(row)
    }

    func isExpired(_ id: JobID) throws(QueueError) -> Bool {
        try link.run("SELECT 1 FROM deci_expired WHERE id = \(id.rawValue)").rows.count > 0
    }

    /// The latest preview of a running job: (step, kind, PNG).
    func preview(_ id: JobID) throws(QueueError) -> (step: Int, kind: String, png: [UInt8])? {
        let rows = try link.run("SELECT preview_step, preview_kind, preview_png FROM deci_jobs WHERE id = \(id.rawValue) AND preview_png IS NOT NULL")
        guard let row = rows.rows.first else { return nil }
        return try decoding("preview") {
            let (step, kind, png) = try row.decode((Int, String, ByteBuffer).self)
            return (step: step, kind: kind, png: Array(buffer: png))
        }
    }

    func images(_ id: JobID) throws(QueueError) -> [(png: [UInt8], parameters: String)] {
        let rows = try link.run("SELECT png, parameters::text FROM deci_job_images WHERE job_id = \(id.rawValue) ORDER BY idx")
        return try rows.rows.map { (row) throws(QueueError) in
            try decoding("deci_job_images") {
                let (png, parameters) = try row.decode((ByteBuffer, String).self)
                return (png: Array(buffer: png), parameters: parameters)
            }
        }
    }

    /// A queued job is cancelled at once; a running one is marked, and its worker stops at its
    /// next step. Returns the state after the call (nil: no such job).
    func cancel(_ id: JobID) throws(QueueError) -> JobStatus? {
        let rows = try link.run("""
            UPDATE deci_jobs SET
                cancel_requested = cancel_requested OR state = 'running',
                finished = CASE WHEN state = 'queued' THEN clock_timestamp() ELSE finished END,
                state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END
            WHERE id = \(id.rawValue)
            RETURNING state, pg_notify('\(unescaped: Self.jobChannel)', id)::text, pg_notify('\(unescaped: Self.cancelChannel)', id)::text
            """)
        guard let row = rows.rows.first else { return nil }
        return try decoding("state") { try JobStatus(rawValue: row.decode((String, String, String).self).0) }
    }

    struct Stats {
        var queued: Int
        var running: [JobID]
        /// Models some live worker has loaded.
        var servedModels: Set<String>
        var kept: Int
    }

    func stats(workerTimeout: Double) throws(QueueError) -> Stats {
        let rows = try link.run("""
            SELECT (SELECT count(*) FROM deci_jobs WHERE state = 'queued'),
                   (SELECT count(*) FROM deci_jobs),
                   (SELECT coalesce(array_agg(id ORDER BY started), '{}') FROM deci_jobs WHERE state = 'running'),
                   (SELECT coalesce(array_agg(DISTINCT m), '{}') FROM deci_workers, unnest(models) AS m
                    WHERE seen > now() - make_interval(secs => \(workerTimeout)))
            """)
        guard let row = rows.rows.first else { return Stats(queued: 0, running: [], servedModels: [], kept: 0) }
        return try decoding("stats") {
            let (queued, kept, running, models) = try row.decode((Int, Int, [String], [String]).self)
            return Stats(queued: queued, running: running.map(JobID.init(rawValue:)), servedModels: Set(models), kept: kept)
        }
    }

    /// Drops finished jobs older than `lifetime` seconds (their images go with them) and
    /// remembers their ids for a day. Safe to run from any number of nodes at once.
    @discardableResult
    func cleanup(lifetime: Double) throws(QueueError) -> Int {
        let rows = try link.run("""
            WITH gone AS (DELETE FROM deci_jobs WHERE finished < now() - make_interval(secs => \(lifetime)) RETURNING id)
            INSERT INTO deci_expired (id) SELECT id FROM gone ON CONFLICT (id) DO NOTHING RETURNING id
            """)
        _ = try link.run("DELETE FROM deci_expired WHERE expired < now() - interval '1 day'")
        return rows.rows.count
    }

    // MARK: - Both sides

    /// Puts every running job whose lease has expired back in the queue with its attempt counted,
    /// or fails it once it has used its attempts (or cancels it when a cancel was asked). Safe to
    /// run from any number of nodes at once: the row lock makes each job change once.
    @discardableResult
    func requeueExpired() throws(QueueError) -> [(id: JobID, state: JobStatus)] {
        let rows = try link.run("""
            UPDATE deci_jobs SET
                state = CASE WHEN cancel_requested THEN 'cancelled' WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
                error = CASE WHEN NOT cancel_requested AND attempts >= max_attempts
                             THEN format('the worker running it stopped answering (lease expired) on all %s attempts', attempts) ELSE error END,
                finished = CASE WHEN cancel_requested OR attempts >= max_attempts THEN clock_timestamp() END,
                lease_owner = NULL, lease_expires = NULL, step = NULL, total_steps = NULL, seconds_per_step = NULL, eta_seconds = NULL,
                preview_png = NULL, preview_step = NULL, preview_kind = NULL
            WHERE state = 'running' AND lease_expires < now()
            RETURNING id, state, pg_notify('\(unescaped: Self.jobChannel)', id)::text, pg_notify('\(unescaped: Self.newJobChannel)', model)::text
            """)
        return try rows.rows.map { (row) throws(QueueError) in
            try decoding("requeue") {
                let (id, state, _, _) = try row.decode((String, String, String, String).self)
                return (id: JobID(rawValue: id), state: JobStatus(rawValue: state) ?? .queued)
            }
        }
    }

    // MARK: - Worker side

    /// Claims the oldest queued job for one of `models`, with a lease of `lease` seconds.
    func claim(owner: String, models: [String], lease: Double) throws(QueueError) -> Claim? {
        let rows = try link.run("""
            UPDATE deci_jobs SET state = 'running', attempts = attempts + 1, lease_owner = \(owner),
                lease_expires = now() + make_interval(secs => \(lease)), started = clock_timestamp(), heartbeat = now(),
                step = NULL, total_steps = NULL, seconds_per_step = NULL, eta_seconds = NULL, preview_png = NULL, preview_step = NULL, preview_kind = NULL
            WHERE id = (SELECT id FROM deci_jobs WHERE state = 'queued' AND model = ANY(\(models))
                        ORDER BY created, id LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING id, attempts, spec::text, model, cancel_requested, pg_notify('\(unescaped: Self.jobChannel)', id)::text
            """)
        guard let row = rows.rows.first else { return nil }
        return try decoding("claim") {
            let (id, attempt, spec, model, cancel, _) = try row.decode((String, Int, String, String, Bool, String).self)
            return Claim(id: JobID(rawValue: id), attempt: attempt, spec: spec, model: model, cancelRequested: cancel)
        }
    }

    /// What a heartbeat carries besides renewing the lease.
    struct Beat {
        var progress: JobProgress?
        var preview: (step: Int, kind: String, png: [UInt8])?
        var resolved: String?
    }

    /// Renews the lease and stores progress. Returns whether a cancel was asked, or nil when the
    /// lease is no longer this worker's (expired and taken over): the worker must stop.
    func heartbeat(_ claim: Claim, owner: String, lease: Double, beat: Beat) throws(QueueError) -> Bool? {
        let p = beat.progress
        let rows = try link.run("""
            UPDATE deci_jobs SET lease_expires = now() + make_interval(secs => \(lease)), heartbeat = now(),
                step = coalesce(\(p?.step), step), total_steps = coalesce(\(p?.totalSteps), total_steps),
                seconds_per_step = coalesce(\(p?.secondsPerStep), seconds_per_step), eta_seconds = coalesce(\(p?.etaSeconds), eta_seconds),
                preview_png = coalesce(\(beat.preview.map { ByteBuffer(bytes: $0.png) }), preview_png),
                preview_step = coalesce(\(beat.preview?.step), preview_step), preview_kind = coalesce(\(beat.preview?.kind), preview_kind),
                resolved = coalesce(\(beat.resolved)::jsonb, resolved)
            WHERE id = \(claim.id.rawValue) AND lease_owner = \(owner) AND attempts = \(claim.attempt) AND state = 'running'
            RETURNING cancel_requested, pg_notify('\(unescaped: Self.jobChannel)', id)::text
            """)
        guard let row = rows.rows.first else { return nil }
        return try decoding("heartbeat") { try row.decode((Bool, String).self).0 }
    }

    /// The final state a worker writes, once.
    struct Outcome {
        var state: JobStatus
        var error: String?
        var warnings: [String]
        var timings: GenerationResult.Timings?
        var partial: Bool
        var progress: JobProgress?
        var resolved: String?
        var images: [StoredImage]
    }

    /// Writes the job's outcome and images in one statement, only while the lease is still this
    /// worker's — or the lease expired and no other worker has claimed the job since (it is back
    /// in the queue with the same attempt number). Returns false when the write was refused: the
    /// job belongs to another attempt, so this result is dropped and exactly one is ever visible.
    func finish(_ claim: Claim, owner: String, outcome o: Outcome) throws(QueueError) -> Bool {
        let images = StoredJSON.encode(o.images)
        let rows = try link.run("""
            WITH done AS (
                UPDATE deci_jobs SET state = \(o.state.rawValue), finished = clock_timestamp(), finished_by = \(owner), lease_owner = NULL, lease_expires = NULL,
                    started = coalesce(started, clock_timestamp()),
                    error = \(o.error), warnings = \(StoredJSON.encode(o.warnings))::jsonb, timings = \(o.timings.map { StoredJSON.encode(StoredTimings($0)) })::jsonb,
                    partial = \(o.partial), image_count = \(o.images.count),
                    step = coalesce(\(o.progress?.step), step), total_steps = coalesce(\(o.progress?.totalSteps), total_steps),
                    seconds_per_step = coalesce(\(o.progress?.secondsPerStep), seconds_per_step), eta_seconds = 0,
                    resolved = coalesce(\(o.resolved)::jsonb, resolved), preview_png = NULL
                WHERE id = \(claim.id.rawValue) AND attempts = \(claim.attempt)
                  AND ((state = 'running' AND lease_owner = \(owner)) OR state = 'queued')
                RETURNING id),
            stored AS (
                INSERT INTO deci_job_images (job_id, idx, png, parameters)
                SELECT done.id, (e.ord - 1)::integer, decode(e.value->>'png', 'base64'), e.value->'parameters'
                FROM done, jsonb_array_elements(\(images)::jsonb) WITH ORDINALITY AS e(value, ord))
            SELECT id, pg_notify('\(unescaped: Self.jobChannel)', id)::text FROM done
            """)
        return rows.rows.count == 1
    }

    /// Hands a claimed job back to the queue (a worker shutting down); its attempt stays counted.
    @discardableResult
    func release(_ claim: Claim, owner: String) throws(QueueError) -> Bool {
        let rows = try link.run("""
            UPDATE deci_jobs SET state = 'queued', lease_owner = NULL, lease_expires = NULL, step = NULL, total_steps = NULL,
                seconds_per_step = NULL, eta_seconds = NULL, preview_png = NULL, preview_step = NULL, preview_kind = NULL
            WHERE id = \(claim.id.rawValue) AND lease_owner = \(owner) AND attempts = \(claim.attempt) AND state = 'running'
            RETURNING id, pg_notify('\(unescaped: Self.newJobChannel)', model)::text, pg_notify('\(unescaped: Self.jobChannel)', id)::text
            """)
        return rows.rows.count == 1
    }

    /// Announces a worker and the models it holds (for /healthz on API nodes).
    func announce(worker: String, models: [String], running: JobID?) throws(QueueError) {
        _ = try link.run("""
            INSERT INTO deci_workers (name, models, seen, running) VALUES (\(worker), \(models), now(), \(running?.rawValue))
            ON CONFLICT (name) DO UPDATE SET models = excluded.models, seen = excluded.seen, running = excluded.running
            """)
    }

    func retire(worker: String) {
        _ = try? link.run("DELETE FROM deci_workers WHERE name = \(worker)")
    }

    // MARK: - Decoding

    private func decodeRow(_ row: PostgresRow) throws(QueueError) -> Row {
        try decoding("deci_jobs") {
            let r = row.makeRandomAccess()
            func col<T: PostgresDecodable>(_ i: Int, _ type: T.Type) throws -> T { try r[i].decode(T.self) }
            let step = try col(8, Int?.self), total = try col(9, Int?.self)
            let progress = step.map { JobProgress(step: $0, totalSteps: total ?? 0, secondsPerStep: try? col(10, Double?.self), etaSeconds: try? col(11, Double?.self)) }
            let stateText = try col(4, String.self)
            guard let state = JobStatus(rawValue: stateText) else { throw QueueError.corrupt("state: \"\(stateText)\"") }
            return Row(id: JobID(rawValue: try col(0, String.self)), model: try col(1, String.self), seed: UInt64(bitPattern: try col(2, Int64.self)),
                       spec: try col(3, String.self), state: state, attempts: try col(5, Int.self), leaseOwner: try col(6, String?.self),
                       cancelRequested: try col(7, Bool.self), progress: progress, previewStep: try col(12, Int?.self),
                       resolved: try col(13, String?.self), error: try col(14, String?.self), warnings: try col(15, String?.self),
                       timings: try col(16, String?.self), partial: try col(17, Bool.self), imageCount: try col(18, Int.self),
                       created: try col(19, Date.self), started: try col(20, Date?.self), finished: try col(21, Date?.self),
                       position: try col(22, Int.self))
        }
    }

    private func decoding<T>(_ what: String, _ body: () throws -> T) throws(QueueError) -> T {
        do { return try body() } catch let e as QueueError { throw e } catch {
            throw .corrupt("\(what): \(error)")
        }
    }
}
