// The queue's tables, created and migrated by the program itself. Each migration is one `DO` block
// (one statement, so one transaction) that takes an advisory lock first: any number of API nodes
// and workers may start at once, exactly one applies each version, and running it again is a no-op.
//
// Images are `bytea`, not large objects: a PNG is kilobytes to a few megabytes (far under bytea's
// 1 GB), it lives and dies with its job (ON DELETE CASCADE, so result expiry is one DELETE, where
// large objects need lo_unlink and leak when it is missed), and it is read in the same query
// protocol as everything else. Large objects would only pay off for streaming gigabyte values.
enum QueueSchema {
    /// Versions in order; never edit one that has shipped, add the next.
    static let migrations: [(version: Int, sql: String)] = [
        (1, """
            CREATE TABLE deci_jobs (
                id text PRIMARY KEY,
                model text NOT NULL,
                seed bigint NOT NULL,                 -- the UInt64 seed's bit pattern
                spec jsonb NOT NULL,                  -- the request (images as PNG), see JobCoding.swift
                state text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
                attempts integer NOT NULL DEFAULT 0,  -- claims so far; also the lease's fencing token
                max_attempts integer NOT NULL,
                lease_owner text,                     -- the worker's name while running
                finished_by text,                     -- the worker whose result was written
                lease_expires timestamptz,
                cancel_requested boolean NOT NULL DEFAULT false,
                step integer,
                total_steps integer,
                seconds_per_step double precision,
                eta_seconds double precision,
                preview_png bytea,                    -- the latest preview of a running job
                preview_step integer,
                preview_kind text,
                resolved jsonb,                       -- the request with defaults filled, from the worker
                error text,
                warnings jsonb,
                timings jsonb,
                partial boolean NOT NULL DEFAULT false,
                image_count integer NOT NULL DEFAULT 0,
                created timestamptz NOT NULL DEFAULT clock_timestamp(),
                started timestamptz,
                finished timestamptz,
                heartbeat timestamptz
            );
            CREATE INDEX deci_jobs_queued ON deci_jobs (created, id) WHERE state = 'queued';
            CREATE INDEX deci_jobs_leases ON deci_jobs (lease_expires) WHERE state = 'running';
            CREATE INDEX deci_jobs_finished ON deci_jobs (finished) WHERE finished IS NOT NULL;
            -- One row per image; the primary key makes a second result for a job impossible.
            CREATE TABLE deci_job_images (
                job_id text NOT NULL REFERENCES deci_jobs (id) ON DELETE CASCADE,
                idx integer NOT NULL,
                png bytea NOT NULL,
                parameters jsonb NOT NULL,
                PRIMARY KEY (job_id, idx)
            );
            -- Ids whose results were dropped, so a late poll gets 410 rather than 404.
            CREATE TABLE deci_expired (id text PRIMARY KEY, expired timestamptz NOT NULL DEFAULT now());
            -- Workers announce themselves (and the models they hold) on every heartbeat.
            CREATE TABLE deci_workers (name text PRIMARY KEY, models text[] NOT NULL, seen timestamptz NOT NULL, running text);
            """),
    ]

    static var latest: Int { migrations.last?.version ?? 0 }

    /// Brings the database to the latest version.
    static func migrate(_ link: PostgresLink) throws(QueueError) {
        for m in migrations {
            // Dollar-quoted with a tag no migration text contains.
            _ = try link.run("""
                DO $deci_migration$
                BEGIN
                    PERFORM pg_advisory_xact_lock(7160431);
                    IF to_regclass('deci_schema') IS NULL THEN
                        CREATE TABLE deci_schema (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now());
                    END IF;
                    IF NOT EXISTS (SELECT 1 FROM deci_schema WHERE version = \(unescaped: String(m.version))) THEN
                        \(unescaped: m.sql)
                        INSERT INTO deci_schema (version) VALUES (\(unescaped: String(m.version)));
                    END IF;
                END
                $deci_migration$
                """)
        }
        let rows = try link.run("SELECT max(version) FROM deci_schema")
        var found = 0
        for row in rows.rows { found = (try? row.decode(Int?.self)) ?? 0 }
        if found > latest {
            throw .server("the database's queue schema is version \(found), newer than this program's \(latest): upgrade decidiffusion")
        }
    }
}
