-- Batch jobs: backfill from an event table, and (re-)enrichment of pending rows. Both commit
-- per batch together with their progress, so a crash or cancel loses at most the batch in
-- flight, and a rerun continues from the last committed batch without counting anything twice.

-- Re-enriches the given addresses from MaxMind (strict: a database that cannot be used is an
-- error). Writes only MaxMind's columns and enrichment->'maxmind'; the ASN stays with Team
-- Cymru when MaxMind has none, and is cleared when only an older MaxMind build had one.
-- The caller holds the rows' locks already, taken either in address order (the order recorders
-- use) or with SKIP LOCKED, so this update never waits on a recorder and cannot deadlock with
-- one. Locking here again would cost a second index probe per row.
CREATE FUNCTION ip_inventory_apply_maxmind(ips inet[]) RETURNS bigint LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp AS $$
DECLARE
    updated bigint;
BEGIN
    UPDATE ip_inventory AS inv SET
        geo_country      = CASE WHEN c.maxmind_build IS NULL THEN inv.geo_country ELSE c.geo_country END,
        geo_country_name = CASE WHEN c.maxmind_build IS NULL THEN inv.geo_country_name ELSE c.geo_country_name END,
        geo_city         = CASE WHEN c.maxmind_build IS NULL THEN inv.geo_city ELSE c.geo_city END,
        geo_subdivision  = CASE WHEN c.maxmind_build IS NULL THEN inv.geo_subdivision ELSE c.geo_subdivision END,
        geo_latitude     = CASE WHEN c.maxmind_build IS NULL THEN inv.geo_latitude ELSE c.geo_latitude END,
        geo_longitude    = CASE WHEN c.maxmind_build IS NULL THEN inv.geo_longitude ELSE c.geo_longitude END,
        geo_network      = CASE WHEN c.maxmind_build IS NULL THEN inv.geo_network ELSE c.geo_network END,
        maxmind_build    = coalesce(c.maxmind_build, inv.maxmind_build),
        maxmind_asn_build = coalesce(c.maxmind_asn_build, inv.maxmind_asn_build),
        maxmind_ts       = coalesce(c.maxmind_ts, inv.maxmind_ts),
        -- The ASN stays as it is when the ASN database was not consulted, or when MaxMind has
        -- none and Team Cymru gave it; otherwise it is MaxMind's (NULL when MaxMind has none).
        asn_number  = CASE WHEN c.maxmind_asn_build IS NULL OR (c.asn_number IS NULL AND inv.asn_source = 'cymru')
                           THEN inv.asn_number ELSE c.asn_number END,
        asn_org     = CASE WHEN c.maxmind_asn_build IS NULL OR (c.asn_number IS NULL AND inv.asn_source = 'cymru')
                           THEN inv.asn_org ELSE c.asn_org END,
        asn_network = CASE WHEN c.maxmind_asn_build IS NULL OR (c.asn_number IS NULL AND inv.asn_source = 'cymru')
                           THEN inv.asn_network ELSE c.asn_network END,
        asn_source  = CASE WHEN c.maxmind_asn_build IS NULL OR (c.asn_number IS NULL AND inv.asn_source = 'cymru')
                           THEN inv.asn_source ELSE c.asn_source END,
        enrichment       = jsonb_set_lax(inv.enrichment, '{maxmind}', c.maxmind_json, true, 'delete_key')
    FROM unnest(ips) AS b(ip), enrich_ip(b.ip) AS e, ip_inventory_maxmind_columns(e) AS c
    WHERE inv.ip_address = b.ip AND inv.ip_class = 'public';
    GET DIAGNOSTICS updated = ROW_COUNT;
    PERFORM ip_inventory_count_recorded(0, 0, updated);
    RETURN updated;
END $$;

-- Whether MaxMind should (re-)enrich a public row: never answered, or answered by another
-- City or ASN build than the ones in service (NULL: that database is not configured).
CREATE FUNCTION ip_inventory_maxmind_pending(
    maxmind_ts timestamptz, maxmind_build timestamptz, maxmind_asn_build timestamptz,
    city_build timestamptz, asn_build timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN maxmind_ts IS NULL
    OR (city_build IS NOT NULL AND maxmind_build IS DISTINCT FROM city_build)
    OR (asn_build IS NOT NULL AND maxmind_asn_build IS DISTINCT FROM asn_build);

-- Advisory-lock key of a job: held (session level, across the job's commits) while it runs.
CREATE FUNCTION ip_inventory_job_lock(job text) RETURNS bigint LANGUAGE sql IMMUTABLE
RETURN (hashtext('ip_inventory')::bigint << 32) | (hashtext(job)::bigint & 4294967295);

-- The process holding a job's lock (the session running it), or NULL.
CREATE FUNCTION ip_inventory_job_holder(job text) RETURNS int LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT l.pid FROM pg_locks AS l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND ((l.classid::bigint << 32) | l.objid::bigint) = ip_inventory_job_lock(job)
    LIMIT 1;
END;

-- Releases every hold this session has on a job's lock.
CREATE FUNCTION ip_inventory_job_release(job text) RETURNS void LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp AS $$
BEGIN
    -- One pg_locks row stands for all of a session's stacked holds of a lock.
    WHILE ip_inventory_job_holder(job) = pg_backend_pid() LOOP
        PERFORM pg_advisory_unlock(ip_inventory_job_lock(job));
    END LOOP;
END $$;

-- Takes a job's lock or raises naming the session that holds it.
CREATE FUNCTION ip_inventory_job_start(job text) RETURNS void LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp AS $$
DECLARE
    holder int;
BEGIN
    -- A hold left by an earlier run of this session is released first (advisory locks stack).
    PERFORM ip_inventory_job_release(job);
    IF NOT pg_try_advisory_lock(ip_inventory_job_lock(job)) THEN
        holder := ip_inventory_job_holder(job);
        RAISE EXCEPTION 'job % is already running (process %)', job, holder
            USING ERRCODE = '55006', HINT = 'Wait for it, or stop it with SELECT pg_cancel_backend(' || holder || ');';
    END IF;
END $$;

-- Progress notice of a batch: rows so far, rate of this run, estimated time left.
CREATE FUNCTION ip_inventory_job_notice(j ip_inventory_jobs) RETURNS void LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp AS $$
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

-- Counts the addresses in an event table into ip_inventory, page range by page range.
--
-- Each batch reads the rows after the last committed position (a ctid), records their
-- observations, and commits together with the new position: rerunning after a crash or
-- cancel continues there, and a finished backfill rerun later counts only rows appended
-- since. Refuses a table whose inserts the observe trigger already records (they would be
-- counted twice); with attach => true, the last batch takes a lock that holds off inserts,
-- reads what is left, and attaches the trigger in the same transaction, so that every row is
-- counted once, by one or the other. New public addresses are enriched from MaxMind inline
-- unless ip_inventory.ingest_enrichment is off.
--
-- (Procedures that commit cannot have a SET search_path clause: names are qualified.)
CREATE PROCEDURE ip_inventory_backfill(
    source regclass, ip_columns text[], ts_column text DEFAULT NULL, batch_size int DEFAULT 10000,
    attach boolean DEFAULT false, INOUT summary jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    -- A backfill is identified by its table (an OID; pg_dump writes it as a name), not by a
    -- name whose spelling depends on search_path and renames.
    job_name text := 'backfill:' || (SELECT format('%I.%I', n.nspname, c.relname)
                                     FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
                                     WHERE c.oid = source);
    j @extschema@.ip_inventory_jobs;
    enrich boolean := coalesce(current_setting('ip_inventory.ingest_enrichment', true)::boolean, true);
    rows_per_page double precision;
    pages bigint;
    upper_page bigint;
    final boolean;
    r record;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = '22023';
    END IF;
    PERFORM @extschema@.ip_inventory_check_columns(source, ip_columns, ts_column);
    IF EXISTS (SELECT FROM @extschema@.ip_inventory_observed_tables AS o WHERE o.event_table = source) THEN
        RAISE EXCEPTION 'the inserts into % are already recorded by its ip_inventory_observe trigger', source
            USING ERRCODE = '55000',
            DETAIL = 'Backfilling it would count its rows twice.',
            HINT = format('Run SELECT ip_inventory_detach(%L); first, then CALL ip_inventory_backfill(..., attach => true).', source::text);
    END IF;
    SELECT * INTO j FROM @extschema@.ip_inventory_jobs AS jb WHERE jb.source = ip_inventory_backfill.source;
    job_name := coalesce(j.job, job_name);
    IF FOUND AND (j.ip_columns IS DISTINCT FROM ip_columns OR j.ts_column IS DISTINCT FROM ts_column) THEN
        RAISE EXCEPTION 'an earlier backfill of % counted columns % (time %), not % (time %)',
            source, j.ip_columns, coalesce(j.ts_column, 'none'), ip_columns, coalesce(ts_column, 'none')
            USING ERRCODE = '55000',
            HINT = format('Rerun it with the same columns, or DELETE FROM ip_inventory_jobs WHERE job = %L to start over (the rows it counted would be counted again).', job_name);
    END IF;
    -- Rows per page: the planner's figure, or the first pages' when the table was never analyzed.
    SELECT c.reltuples / nullif(c.relpages, 0) INTO rows_per_page
    FROM pg_class AS c WHERE c.oid = source AND c.reltuples > 0;
    IF rows_per_page IS NULL THEN
        EXECUTE format('SELECT count(*) / 8.0 FROM %s WHERE ctid < ''(8,0)''::tid', source) INTO rows_per_page;
    END IF;
    rows_per_page := greatest(rows_per_page, 1);

    PERFORM @extschema@.ip_inventory_job_start(job_name);
    BEGIN
        INSERT INTO @extschema@.ip_inventory_jobs AS jb (job, source, ip_columns, ts_column, resume_after,
                                                        status, started_at, run_started_at, updated_at)
        VALUES (job_name, source, ip_columns, ts_column, '(0,0)', 'running',
                clock_timestamp(), clock_timestamp(), clock_timestamp())
        ON CONFLICT (job) DO NOTHING;
        pages := pg_relation_size(source) / current_setting('block_size')::bigint;
        UPDATE @extschema@.ip_inventory_jobs AS jb SET
            status = 'running', run_started_at = clock_timestamp(), run_done_rows = 0, finished_at = NULL,
            total_rows = jb.done_rows
                + round(greatest(pages - (jb.resume_after::text::point)[0], 0) * rows_per_page)::bigint
        WHERE jb.job = job_name RETURNING * INTO j;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM @extschema@.ip_inventory_job_release(job_name);
        RAISE;
    END;
    COMMIT;

    LOOP
        -- An error or cancel inside a batch rolls the batch back and releases the job's lock;
        -- the batch's commit is outside the block (a block with a handler cannot commit).
        BEGIN
            pages := pg_relation_size(source) / current_setting('block_size')::bigint;
            upper_page := (j.resume_after::text::point)[0]::bigint
                          + greatest(ceil(batch_size / rows_per_page), 1)::bigint;
            final := upper_page >= pages;
            IF final AND attach THEN
                -- Hold off inserts until the trigger exists: rows before the lock are read here,
                -- rows after it are recorded by the trigger.
                EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', source);
            END IF;
            EXECUTE @extschema@.ip_inventory_record_sql(
                        source::text, ip_columns, ts_column,
                        format('ctid > %L::tid', j.resume_after)
                            || CASE WHEN final THEN '' ELSE format(' AND ctid < ''(%s,0)''::tid', upper_page) END,
                        true)
                INTO r USING enrich;
            UPDATE @extschema@.ip_inventory_jobs AS jb SET
                resume_after = CASE WHEN final THEN coalesce(r.last_ctid, jb.resume_after)
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
                PERFORM @extschema@.ip_inventory_attach(source, ip_columns, ts_column);
            END IF;
            PERFORM @extschema@.ip_inventory_job_notice(j);
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            PERFORM @extschema@.ip_inventory_job_release(job_name);
            RAISE;
        END;
        COMMIT;
        EXIT WHEN final;
    END LOOP;
    PERFORM @extschema@.ip_inventory_job_release(job_name);
    summary := jsonb_build_object(
        'job', j.job, 'status', j.status, 'event_rows', j.done_rows, 'this_run_rows', j.run_done_rows,
        'addresses', j.addresses, 'new_addresses', j.new_addresses, 'batches', j.batches,
        'attached', attach,
        'seconds', round(extract(epoch FROM j.updated_at - j.run_started_at)::numeric, 3));
END $$;

-- Enriches, in address order, the public rows MaxMind has not answered for, or that a
-- different City or ASN build than the one in service answered. Rows it finished are no
-- longer pending, so a rerun after a crash or cancel continues with what is left.
CREATE PROCEDURE ip_inventory_enrich_pending(
    batch_size int DEFAULT 10000, max_rows bigint DEFAULT NULL, INOUT summary jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    job_name text := 'enrich_pending';
    city_build timestamptz;
    asn_build timestamptz;
    after_ip inet := NULL;
    batch inet[];
    enriched bigint;
    stopped boolean := false;
    j @extschema@.ip_inventory_jobs;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = '22023';
    END IF;
    IF max_rows < 0 THEN
        RAISE EXCEPTION 'max_rows must not be negative, not %', max_rows USING ERRCODE = '22023';
    END IF;
    -- Raises unless the configured databases can be used (none configured included).
    PERFORM @extschema@.maxmind_age();
    SELECT max(i.build_time) FILTER (WHERE i.name = 'city'), max(i.build_time) FILTER (WHERE i.name = 'asn')
    INTO city_build, asn_build FROM @extschema@.maxmind_info() AS i;

    PERFORM @extschema@.ip_inventory_job_start(job_name);
    BEGIN
        -- A finished job starts counting afresh; an interrupted one keeps its counts.
        INSERT INTO @extschema@.ip_inventory_jobs AS jb (job, status, started_at, run_started_at, updated_at)
        VALUES (job_name, 'running', clock_timestamp(), clock_timestamp(), clock_timestamp())
        ON CONFLICT (job) DO UPDATE SET
            status = 'running',
            started_at = CASE WHEN jb.status = 'finished' THEN clock_timestamp() ELSE jb.started_at END,
            done_rows = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.done_rows END,
            addresses = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.addresses END,
            batches = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.batches END,
            run_started_at = clock_timestamp(), run_done_rows = 0, finished_at = NULL;
        UPDATE @extschema@.ip_inventory_jobs AS jb SET total_rows = jb.done_rows + least(max_rows, (
            SELECT count(*) FROM @extschema@.ip_inventory AS inv
            WHERE inv.ip_class = 'public'
              AND @extschema@.ip_inventory_maxmind_pending(inv.maxmind_ts, inv.maxmind_build,
                                                           inv.maxmind_asn_build, city_build, asn_build)))
        WHERE jb.job = job_name RETURNING * INTO j;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM @extschema@.ip_inventory_job_release(job_name);
        RAISE;
    END;
    COMMIT;

    LOOP
        BEGIN
            SELECT array_agg(p.ip_address ORDER BY p.ip_address) INTO batch FROM (
                SELECT inv.ip_address FROM @extschema@.ip_inventory AS inv
                WHERE inv.ip_class = 'public' AND (after_ip IS NULL OR inv.ip_address > after_ip)
                  AND @extschema@.ip_inventory_maxmind_pending(inv.maxmind_ts, inv.maxmind_build,
                                                               inv.maxmind_asn_build, city_build, asn_build)
                ORDER BY inv.ip_address
                LIMIT CASE WHEN max_rows IS NULL THEN batch_size
                           ELSE least(batch_size, max_rows - j.run_done_rows) END
                -- Locked as they are read, in address order: see ip_inventory_apply_maxmind.
                FOR UPDATE OF inv
            ) AS p;
            IF batch IS NOT NULL THEN
                enriched := @extschema@.ip_inventory_apply_maxmind(batch);
                after_ip := batch[cardinality(batch)];
                stopped := max_rows IS NOT NULL AND j.run_done_rows + cardinality(batch) >= max_rows;
                UPDATE @extschema@.ip_inventory_jobs AS jb SET
                    done_rows = jb.done_rows + cardinality(batch),
                    run_done_rows = jb.run_done_rows + cardinality(batch),
                    addresses = jb.addresses + enriched, batches = jb.batches + 1,
                    updated_at = clock_timestamp()
                WHERE jb.job = job_name RETURNING * INTO j;
                PERFORM @extschema@.ip_inventory_job_notice(j);
            END IF;
            IF batch IS NULL OR stopped THEN
                -- Stopped at max_rows, the job is not finished: it continues at the next run.
                UPDATE @extschema@.ip_inventory_jobs AS jb SET
                    status = CASE WHEN stopped THEN 'stopped' ELSE 'finished' END,
                    total_rows = CASE WHEN stopped THEN jb.total_rows ELSE jb.done_rows END,
                    finished_at = CASE WHEN stopped THEN NULL ELSE clock_timestamp() END,
                    updated_at = clock_timestamp()
                WHERE jb.job = job_name RETURNING * INTO j;
            END IF;
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            PERFORM @extschema@.ip_inventory_job_release(job_name);
            RAISE;
        END;
        COMMIT;
        EXIT WHEN batch IS NULL OR stopped;
    END LOOP;
    PERFORM @extschema@.ip_inventory_job_release(job_name);
    summary := jsonb_build_object(
        'job', j.job, 'status', CASE WHEN stopped THEN 'stopped at max_rows' ELSE 'finished' END,
        'enriched', j.run_done_rows, 'batches', j.batches,
        'city_build', city_build, 'asn_build', asn_build,
        'seconds', round(extract(epoch FROM j.updated_at - j.run_started_at)::numeric, 3));
END $$;

CREATE VIEW ip_inventory_progress AS
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
       j.addresses, j.new_addresses, j.batches, j.source, j.ip_columns, j.ts_column,
       j.started_at, j.updated_at, j.finished_at
FROM ip_inventory_jobs AS j
LEFT JOIN LATERAL (SELECT ip_inventory_job_holder(j.job) AS pid) AS h ON j.status = 'running';

COMMENT ON FUNCTION ip_inventory_apply_maxmind(inet[]) IS
    'Re-enriches the given addresses from MaxMind, writing only MaxMind''s columns (internal: used by ip_inventory_enrich_pending).';
COMMENT ON FUNCTION ip_inventory_maxmind_pending(timestamptz, timestamptz, timestamptz, timestamptz, timestamptz) IS
    'Whether MaxMind should (re-)enrich a row: never answered, or answered by another build than the one in service (internal).';
COMMENT ON FUNCTION ip_inventory_job_lock(text) IS 'Advisory-lock key held while a job runs (internal).';
COMMENT ON FUNCTION ip_inventory_job_holder(text) IS 'The process running a job, or NULL (internal).';
COMMENT ON FUNCTION ip_inventory_job_start(text) IS 'Takes a job''s lock or raises naming its holder (internal).';
COMMENT ON FUNCTION ip_inventory_job_release(text) IS 'Releases this session''s holds on a job''s lock (internal).';
COMMENT ON FUNCTION ip_inventory_job_notice(ip_inventory_jobs) IS 'Raises the per-batch progress NOTICE (internal).';
COMMENT ON PROCEDURE ip_inventory_backfill(regclass, text[], text, int, boolean, jsonb) IS
    'Counts the addresses of an existing event table into ip_inventory in batches, committing each with its position: resumable, never counts a row twice. attach => true attaches the observe trigger in the last batch''s transaction.';
COMMENT ON PROCEDURE ip_inventory_enrich_pending(int, bigint, jsonb) IS
    'Enriches, in batches committed one by one, the public rows MaxMind has not answered for or that another database build answered. Resumable.';
COMMENT ON VIEW ip_inventory_progress IS
    'Progress of backfill and enrich_pending jobs: status (running, interrupted, stopped, finished), the running process, rows done of total, rate, ETA. Updated with every committed batch.';
