-- Batch jobs: backfill from an event table, and (re-)enrichment of pending rows. Both commit
-- per batch together with their progress, so a crash or cancel loses at most the batch in
-- flight, and a rerun continues from the last committed batch without counting anything twice.
--
-- A procedure that commits cannot carry a SET search_path clause, so each is a thin loop over
-- functions that do (start, step, summary): its own body calls them by qualified name and
-- holds no operator, type name or function that an object on the caller's search_path could
-- capture. A running job holds a session lock that only the extension can take
-- (_ip_inventory_job_start, src/jobs.rs); an error or cancel releases it with the
-- transaction's abort.

-- Progress notice of a batch: rows so far, rate of this run, estimated time left.
CREATE FUNCTION @extschema@._ip_inventory_job_notice(j @extschema@.ip_inventory_jobs) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    secs double precision := greatest(extract(epoch FROM clock_timestamp() - j.run_started_at), 0.001);
    rate double precision := j.run_done_rows / secs;
BEGIN
    RAISE NOTICE '%: batch %, % of % rows (%), % rows/s, ETA %',
        j.job, j.batches, j.done_rows, coalesce(j.total_rows::text, '?'),
        coalesce(round(100.0 * j.done_rows / nullif(greatest(j.total_rows, j.done_rows), 0), 1)::text || '%', '?'),
        round(rate)::bigint,
        CASE WHEN rate > 0 AND j.total_rows IS NOT NULL
             THEN justify_interval(make_interval(secs => round(greatest(j.total_rows - j.done_rows, 0) / rate)))::text
             ELSE '?' END;
END $$;

-- Rows per page of an event table: the planner's figure, or the first pages' when the table
-- was never analyzed (counted as the table's owner).
CREATE FUNCTION @extschema@._ip_inventory_rows_per_page(event_table regclass) RETURNS double precision
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rows_per_page double precision;
BEGIN
    SELECT c.reltuples / nullif(c.relpages, 0) INTO rows_per_page
    FROM pg_class AS c WHERE c.oid = event_table AND c.reltuples > 0;
    IF rows_per_page IS NULL THEN
        rows_per_page := @extschema@._ip_inventory_rows_before_page(event_table, 8::bigint) / 8.0;
    END IF;
    RETURN greatest(rows_per_page, 1);
END $$;

-- Starts (or resumes) the backfill of an event table: checks, takes the job's lock, and
-- returns the job's row.
CREATE FUNCTION @extschema@._ip_inventory_backfill_start(
    event_table regclass, ip_columns text[], ts_column text, batch_size int)
RETURNS @extschema@.ip_inventory_jobs
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- A backfill is identified by its table (an OID; pg_dump writes it as a name), not by a
    -- name whose spelling depends on search_path and renames.
    job_name text := 'backfill:' || (SELECT format('%I.%I', n.nspname, c.relname)
                                     FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
                                     WHERE c.oid = _ip_inventory_backfill_start.event_table);
    j @extschema@.ip_inventory_jobs;
    pages bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = '22023';
    END IF;
    PERFORM @extschema@._ip_inventory_check_columns(_ip_inventory_backfill_start.event_table, ip_columns, ts_column);
    IF @extschema@._ip_inventory_citus_table(_ip_inventory_backfill_start.event_table) THEN
        -- Its rows are in shards on the workers: walking the coordinator's table reads none.
        RAISE EXCEPTION '% is a Citus distributed table', _ip_inventory_backfill_start.event_table USING ERRCODE = '55000',
            HINT = 'On the coordinator: SELECT ip_inventory_citus_backfill(...); (docs/scaling.md)';
    END IF;
    IF EXISTS (SELECT FROM @extschema@.ip_inventory_observed AS o WHERE o.event_table = _ip_inventory_backfill_start.event_table) THEN
        RAISE EXCEPTION 'the inserts into % are already recorded by its ip_inventory_observe trigger', _ip_inventory_backfill_start.event_table
            USING ERRCODE = '55000',
            DETAIL = 'Backfilling it would count its rows twice.',
            HINT = format('Run SELECT ip_inventory_detach(%L); first, then CALL ip_inventory_backfill(..., attach => true).', _ip_inventory_backfill_start.event_table::text);
    END IF;
    SELECT * INTO j FROM @extschema@.ip_inventory_jobs AS jb WHERE jb.event_table = _ip_inventory_backfill_start.event_table;
    job_name := coalesce(j.job, job_name);
    IF FOUND AND (j.ip_columns IS DISTINCT FROM ip_columns OR j.ts_column IS DISTINCT FROM ts_column) THEN
        RAISE EXCEPTION 'an earlier backfill of % counted columns % (time %), not % (time %)',
            _ip_inventory_backfill_start.event_table, j.ip_columns, coalesce(j.ts_column, 'none'), ip_columns, coalesce(ts_column, 'none')
            USING ERRCODE = '55000',
            HINT = format('Rerun it with the same columns, or DELETE FROM ip_inventory_jobs WHERE job = %L to start over (the rows it counted would be counted again).', job_name);
    END IF;

    PERFORM @extschema@._ip_inventory_job_start(job_name);
    INSERT INTO @extschema@.ip_inventory_jobs AS jb (job, event_table, ip_columns, ts_column, resume_after,
                                                    status, started_at, run_started_at, updated_at)
    VALUES (job_name, _ip_inventory_backfill_start.event_table, ip_columns, ts_column, '(0,0)', 'running',
            clock_timestamp(), clock_timestamp(), clock_timestamp())
    ON CONFLICT (job) DO NOTHING;
    pages := pg_relation_size(_ip_inventory_backfill_start.event_table) / current_setting('block_size')::bigint;
    UPDATE @extschema@.ip_inventory_jobs AS jb SET
        status = 'running', run_started_at = clock_timestamp(), run_done_rows = 0, finished_at = NULL,
        total_rows = jb.done_rows
            + round(greatest(pages - (jb.resume_after::text::point)[0], 0)
                    * @extschema@._ip_inventory_rows_per_page(_ip_inventory_backfill_start.event_table))::bigint
    WHERE jb.job = job_name RETURNING * INTO j;
    RETURN j;
END $$;

-- One batch of a backfill: the rows after the last committed position, up to the page range a
-- batch of batch_size rows takes, or to the end. The last batch, with attach, takes a lock that
-- holds off inserts, reads what is left and attaches the trigger in the same transaction, so
-- that every row is counted once, by one or the other.
CREATE FUNCTION @extschema@._ip_inventory_backfill_step(job_name text, batch_size int, attach boolean)
RETURNS @extschema@.ip_inventory_jobs
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j @extschema@.ip_inventory_jobs;
    pages bigint;
    upper_page bigint;
    final boolean;
    r record;
BEGIN
    SELECT * INTO STRICT j FROM @extschema@.ip_inventory_jobs AS jb WHERE jb.job = job_name;
    pages := pg_relation_size(j.event_table) / current_setting('block_size')::bigint;
    upper_page := (j.resume_after::text::point)[0]::bigint
                  + greatest(ceil(batch_size / @extschema@._ip_inventory_rows_per_page(j.event_table)), 1)::bigint;
    final := upper_page >= pages;
    IF final AND attach THEN
        -- Rows before the lock are read here, rows after it are recorded by the trigger.
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', j.event_table);
    END IF;
    SELECT * INTO STRICT r FROM @extschema@._ip_inventory_backfill_batch(
        j.event_table, j.ip_columns, j.ts_column, j.resume_after::text, CASE WHEN NOT final THEN upper_page END);
    UPDATE @extschema@.ip_inventory_jobs AS jb SET
        resume_after = CASE WHEN final THEN coalesce(r.last_ctid::tid, jb.resume_after)
                            ELSE format('(%s,0)', upper_page)::tid END,
        done_rows = jb.done_rows + r.event_rows,
        run_done_rows = jb.run_done_rows + r.event_rows,
        addresses = jb.addresses + r.addresses,
        new_addresses = jb.new_addresses + r.new_addresses,
        batches = jb.batches + 1,
        updated_at = clock_timestamp(),
        status = CASE WHEN final THEN 'finished' ELSE 'running' END,
        total_rows = CASE WHEN final THEN jb.done_rows + r.event_rows ELSE jb.total_rows END,
        finished_at = CASE WHEN final THEN clock_timestamp() END
    WHERE jb.job = job_name RETURNING * INTO j;
    IF final AND attach THEN
        PERFORM @extschema@.ip_inventory_attach(j.event_table, j.ip_columns, j.ts_column);
    END IF;
    PERFORM @extschema@._ip_inventory_job_notice(j);
    RETURN j;
END $$;

-- The summary a job's procedure returns; releases the job's lock.
CREATE FUNCTION @extschema@._ip_inventory_job_summary(j @extschema@.ip_inventory_jobs, extra jsonb)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM @extschema@._ip_inventory_job_release(j.job);
    RETURN jsonb_build_object(
        'job', j.job, 'status', j.status, 'batches', j.batches,
        'seconds', round(extract(epoch FROM j.updated_at - j.run_started_at)::numeric, 3)) || extra;
END $$;

CREATE FUNCTION @extschema@._ip_inventory_backfill_summary(j @extschema@.ip_inventory_jobs, attach boolean)
RETURNS jsonb LANGUAGE sql SET search_path = pg_catalog, pg_temp
RETURN @extschema@._ip_inventory_job_summary(j, jsonb_build_object(
    'event_rows', j.done_rows, 'this_run_rows', j.run_done_rows,
    'addresses', j.addresses, 'new_addresses', j.new_addresses, 'attached', attach));

-- Counts the addresses in an event table into ip_inventory, page range by page range.
--
-- Each batch reads the rows after the last committed position (a ctid), as the table's owner,
-- records their observations, and commits together with the new position: rerunning after a
-- crash or cancel continues there, and a finished backfill rerun later counts only rows
-- appended since. Refuses a table whose inserts the observe trigger already records (they
-- would be counted twice); with attach => true, the last batch attaches the trigger. New
-- public addresses are enriched from MaxMind inline unless ip_inventory.ingest_enrichment is off.
CREATE PROCEDURE @extschema@.ip_inventory_backfill(
    event_table regclass, ip_columns text[], ts_column text DEFAULT NULL, batch_size int DEFAULT 10000,
    attach boolean DEFAULT false, INOUT summary jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    j @extschema@.ip_inventory_jobs;
BEGIN
    j := @extschema@._ip_inventory_backfill_start(event_table, ip_columns, ts_column, batch_size);
    COMMIT;
    LOOP
        j := @extschema@._ip_inventory_backfill_step(j.job, batch_size, attach);
        COMMIT;
        EXIT WHEN j.finished_at IS NOT NULL;
    END LOOP;
    summary := @extschema@._ip_inventory_backfill_summary(j, attach);
END $$;

-- Starts (or resumes) enrich_pending: checks the databases, takes the job's lock, and returns
-- the job's row and the builds in service.
CREATE FUNCTION @extschema@._ip_inventory_enrich_start(
    batch_size int, max_rows bigint,
    OUT j @extschema@.ip_inventory_jobs, OUT city_build timestamptz, OUT asn_build timestamptz)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = '22023';
    END IF;
    IF max_rows < 0 THEN
        RAISE EXCEPTION 'max_rows must not be negative, not %', max_rows USING ERRCODE = '22023';
    END IF;
    IF @extschema@._ip_inventory_citus_distributed() THEN
        RAISE EXCEPTION 'ip_inventory is distributed with Citus' USING ERRCODE = '55000',
            HINT = 'On the coordinator: SELECT ip_inventory_citus_enrich_pending(); (docs/scaling.md)';
    END IF;
    -- Raises unless the configured databases can be used (none configured included).
    PERFORM @extschema@.maxmind_age();
    SELECT b.city_build, b.asn_build INTO city_build, asn_build FROM @extschema@._ip_inventory_builds() AS b;

    PERFORM @extschema@._ip_inventory_job_start('enrich_pending'::text);
    -- A finished job starts counting afresh; an interrupted one keeps its counts.
    INSERT INTO @extschema@.ip_inventory_jobs AS jb (job, status, started_at, run_started_at, updated_at)
    VALUES ('enrich_pending', 'running', clock_timestamp(), clock_timestamp(), clock_timestamp())
    ON CONFLICT (job) DO UPDATE SET
        status = 'running',
        started_at = CASE WHEN jb.status = 'finished' THEN clock_timestamp() ELSE jb.started_at END,
        done_rows = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.done_rows END,
        addresses = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.addresses END,
        batches = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.batches END,
        run_started_at = clock_timestamp(), run_done_rows = 0, finished_at = NULL;
    UPDATE @extschema@.ip_inventory_jobs AS jb SET total_rows = jb.done_rows + least(max_rows, (
        SELECT count(*) FROM @extschema@.ip_inventory AS inv
        WHERE @extschema@._ip_inventory_maxmind_serves(inv.ip_class)
          AND @extschema@._ip_inventory_maxmind_pending(inv.maxmind_ts, inv.maxmind_build,
                                                        inv.maxmind_asn_build, city_build, asn_build)))
    WHERE jb.job = 'enrich_pending' RETURNING * INTO j;
END $$;

-- One batch of enrich_pending: the next pending public rows after after_ip, in address order,
-- locked as they are read (the order recorders lock them in), enriched from MaxMind.
CREATE FUNCTION @extschema@._ip_inventory_enrich_step(
    batch_size int, max_rows bigint, after_ip inet, city_build timestamptz, asn_build timestamptz,
    OUT j @extschema@.ip_inventory_jobs, OUT last_ip inet, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    batch inet[];
    enriched bigint;
    stopped boolean := false;
BEGIN
    SELECT * INTO STRICT j FROM @extschema@.ip_inventory_jobs AS jb WHERE jb.job = 'enrich_pending';
    SELECT array_agg(p.ip_address ORDER BY p.ip_address) INTO batch FROM (
        SELECT inv.ip_address FROM @extschema@.ip_inventory AS inv
        WHERE @extschema@._ip_inventory_maxmind_serves(inv.ip_class) AND (after_ip IS NULL OR inv.ip_address > after_ip)
          AND @extschema@._ip_inventory_maxmind_pending(inv.maxmind_ts, inv.maxmind_build,
                                                        inv.maxmind_asn_build, city_build, asn_build)
        ORDER BY inv.ip_address
        LIMIT CASE WHEN max_rows IS NULL THEN batch_size
                   ELSE least(batch_size, max_rows - j.run_done_rows) END
        FOR UPDATE OF inv
    ) AS p;
    last_ip := after_ip;
    IF batch IS NOT NULL THEN
        enriched := @extschema@._ip_inventory_apply_maxmind(batch);
        last_ip := batch[cardinality(batch)];
        stopped := max_rows IS NOT NULL AND j.run_done_rows + cardinality(batch) >= max_rows;
        UPDATE @extschema@.ip_inventory_jobs AS jb SET
            done_rows = jb.done_rows + cardinality(batch),
            run_done_rows = jb.run_done_rows + cardinality(batch),
            addresses = jb.addresses + enriched, batches = jb.batches + 1,
            updated_at = clock_timestamp()
        WHERE jb.job = 'enrich_pending' RETURNING * INTO j;
        PERFORM @extschema@._ip_inventory_job_notice(j);
    END IF;
    done := batch IS NULL OR stopped;
    IF done THEN
        -- Stopped at max_rows, the job is not finished: it continues at the next run.
        UPDATE @extschema@.ip_inventory_jobs AS jb SET
            status = CASE WHEN stopped THEN 'stopped' ELSE 'finished' END,
            total_rows = CASE WHEN stopped THEN jb.total_rows ELSE jb.done_rows END,
            finished_at = CASE WHEN stopped THEN NULL ELSE clock_timestamp() END,
            updated_at = clock_timestamp()
        WHERE jb.job = 'enrich_pending' RETURNING * INTO j;
    END IF;
END $$;

CREATE FUNCTION @extschema@._ip_inventory_enrich_summary(
    j @extschema@.ip_inventory_jobs, city_build timestamptz, asn_build timestamptz)
RETURNS jsonb LANGUAGE sql SET search_path = pg_catalog, pg_temp
RETURN @extschema@._ip_inventory_job_summary(j, jsonb_build_object(
    'status', CASE WHEN j.status = 'stopped' THEN 'stopped at max_rows' ELSE 'finished' END,
    'enriched', j.run_done_rows, 'city_build', city_build, 'asn_build', asn_build));

-- Enriches, in address order, the public rows MaxMind has not answered for, or that a
-- different City or ASN build than the one in service answered. Rows it finished are no
-- longer pending, so a rerun after a crash or cancel continues with what is left.
CREATE PROCEDURE @extschema@.ip_inventory_enrich_pending(
    batch_size int DEFAULT 10000, max_rows bigint DEFAULT NULL, INOUT summary jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    started record;
    step record;
BEGIN
    started := @extschema@._ip_inventory_enrich_start(batch_size, max_rows);
    COMMIT;
    step := @extschema@._ip_inventory_enrich_step(batch_size, max_rows, NULL::pg_catalog.inet,
                                                  started.city_build, started.asn_build);
    COMMIT;
    WHILE NOT step.done LOOP
        step := @extschema@._ip_inventory_enrich_step(batch_size, max_rows, step.last_ip,
                                                      started.city_build, started.asn_build);
        COMMIT;
    END LOOP;
    summary := @extschema@._ip_inventory_enrich_summary(step.j, started.city_build, started.asn_build);
END $$;

CREATE VIEW @extschema@.ip_inventory_progress AS
SELECT j.job,
       CASE WHEN j.status IN ('finished', 'stopped') THEN j.status
            WHEN h.pid IS NOT NULL THEN 'running'
            ELSE 'interrupted' END AS status,
       h.pid AS running_pid,
       j.done_rows, j.total_rows,
       round(100.0 * j.done_rows / nullif(greatest(j.total_rows, j.done_rows), 0), 1) AS percent,
       round(j.run_done_rows / nullif(extract(epoch FROM j.updated_at - j.run_started_at), 0)) AS rows_per_second,
       CASE WHEN j.status = 'running' AND j.run_done_rows > 0 AND j.total_rows IS NOT NULL THEN
           justify_interval(make_interval(secs => round(greatest(j.total_rows - j.done_rows, 0)
               * extract(epoch FROM j.updated_at - j.run_started_at) / j.run_done_rows)))
       END AS eta,
       j.addresses, j.new_addresses, j.batches, j.event_table, j.ip_columns, j.ts_column,
       j.started_at, j.updated_at, j.finished_at
FROM @extschema@.ip_inventory_jobs AS j
LEFT JOIN LATERAL (SELECT @extschema@._ip_inventory_job_holder(j.job) AS pid) AS h ON j.status = 'running';

COMMENT ON FUNCTION @extschema@._ip_inventory_job_notice(@extschema@.ip_inventory_jobs) IS 'Raises the per-batch progress NOTICE (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_rows_per_page(regclass) IS 'Rows per page of an event table, to size backfill batches (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_backfill_start(regclass, text[], text, int) IS 'Checks and starts or resumes a backfill (internal: ip_inventory_backfill).';
COMMENT ON FUNCTION @extschema@._ip_inventory_backfill_step(text, int, boolean) IS 'One batch of a backfill (internal: ip_inventory_backfill).';
COMMENT ON FUNCTION @extschema@._ip_inventory_job_summary(@extschema@.ip_inventory_jobs, jsonb) IS 'A job''s summary; releases its lock (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_backfill_summary(@extschema@.ip_inventory_jobs, boolean) IS 'The summary ip_inventory_backfill returns (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_enrich_start(int, bigint) IS 'Checks and starts or resumes enrich_pending (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_enrich_step(int, bigint, inet, timestamptz, timestamptz) IS 'One batch of enrich_pending (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_enrich_summary(@extschema@.ip_inventory_jobs, timestamptz, timestamptz) IS 'The summary ip_inventory_enrich_pending returns (internal).';
COMMENT ON PROCEDURE @extschema@.ip_inventory_backfill(regclass, text[], text, int, boolean, jsonb) IS
    'Counts the addresses of an existing event table into ip_inventory in batches, committing each with its position: resumable, never counts a row twice. attach => true attaches the observe trigger in the last batch''s transaction. Reads the table as its owner.';
COMMENT ON PROCEDURE @extschema@.ip_inventory_enrich_pending(int, bigint, jsonb) IS
    'Enriches, in batches committed one by one, the public rows MaxMind has not answered for or that another database build answered. Resumable.';
COMMENT ON VIEW @extschema@.ip_inventory_progress IS
    'Progress of backfill and enrich_pending jobs: status (running, interrupted, stopped, finished), the running process, rows done of total, rate, ETA. Updated with every committed batch.';

-- Jobs write the inventory: they are for the roles docs/security.md names, not for PUBLIC.
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_job_notice(@extschema@.ip_inventory_jobs) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_rows_per_page(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_backfill_start(regclass, text[], text, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_backfill_step(text, int, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_job_summary(@extschema@.ip_inventory_jobs, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_backfill_summary(@extschema@.ip_inventory_jobs, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_enrich_start(int, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_enrich_step(int, bigint, inet, timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_enrich_summary(@extschema@.ip_inventory_jobs, timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON PROCEDURE @extschema@.ip_inventory_backfill(regclass, text[], text, int, boolean, jsonb) FROM PUBLIC;
REVOKE ALL ON PROCEDURE @extschema@.ip_inventory_enrich_pending(int, bigint, jsonb) FROM PUBLIC;
