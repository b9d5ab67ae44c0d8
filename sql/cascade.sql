-- The cascade: refreshing what is stale, source by source. MaxMind answers offline; Team
-- Cymru fills the ASNs MaxMind lacks; GreyNoise classifies scanners (daily quota); reverse
-- DNS adds host names. Network sources run only from here, never from triggers or lookups.
--
-- A network refresh claims the rows it picks (in shared memory: concurrent refreshes split
-- the work, none waits for another), asks the source holding no row lock, then locks the rows
-- briefly and writes only that source's columns, its key in `enrichment` and its timestamp.
-- A failure, or an answer that cannot be stored, is recorded in ip_inventory_failures and
-- leaves the row due, so the next run asks again. MaxMind needs no network: its refresh locks
-- the rows it picks (FOR UPDATE SKIP LOCKED).

-- Which rows a network source serves: the one definition that the refresh, the due-row
-- indexes below and ip_inventory_staleness use. Public addresses only; Team Cymru fills the
-- ASNs MaxMind lacks (and keeps its own answers fresh); GreyNoise Community answers for
-- IPv4 only (core: Source::answers_for). A SQL-standard body, bound when created, so the
-- planner inlines it and an index predicate written with it matches a query written with it.
CREATE FUNCTION @extschema@._ip_inventory_source_serves(
    source text, ip_address inet, ip_class text, asn_source text)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ip_class = 'public' AND CASE source
    WHEN 'cymru' THEN asn_source IS NULL OR asn_source = 'cymru'
    WHEN 'greynoise' THEN family(ip_address) = 4
    WHEN 'rdns' THEN true
    ELSE false END;
COMMENT ON FUNCTION @extschema@._ip_inventory_source_serves(text, inet, text, text) IS
    'Whether a network source serves an inventory row (internal: cascade_refresh, the due-row indexes, ip_inventory_staleness).';

-- Rows due for a network source: its timestamp is NULL (never asked) or older than its TTL.
-- These indexes find them without reading the table once most rows are fresh; observation
-- updates do not touch the indexed columns, so they stay HOT.
CREATE INDEX ip_inventory_cymru_due ON @extschema@.ip_inventory (cymru_ts NULLS FIRST)
    WHERE @extschema@._ip_inventory_source_serves('cymru', ip_address, ip_class, asn_source);
CREATE INDEX ip_inventory_greynoise_due ON @extschema@.ip_inventory (greynoise_ts NULLS FIRST)
    WHERE @extschema@._ip_inventory_source_serves('greynoise', ip_address, ip_class, asn_source);
CREATE INDEX ip_inventory_rdns_due ON @extschema@.ip_inventory (rdns_ts NULLS FIRST)
    WHERE @extschema@._ip_inventory_source_serves('rdns', ip_address, ip_class, asn_source);

CREATE FUNCTION @extschema@.greynoise_quota(
    OUT day date, OUT daily_quota bigint, OUT used bigint, OUT remaining bigint, OUT paused_until timestamptz)
LANGUAGE sql VOLATILE
RETURN (SELECT ROW(date '1970-01-01' + s.day, s.daily_quota, s.used, s.remaining,
                   CASE WHEN s.paused_until > 0 THEN to_timestamp(s.paused_until) END)
        FROM @extschema@._ip_inventory_greynoise_state() AS s);
COMMENT ON FUNCTION @extschema@.greynoise_quota() IS
    'The GreyNoise daily quota, counted across all sessions: UTC day, limit (ip_inventory.greynoise_daily_quota), calls made, calls left, and until when GreyNoise asked not to be called (its last HTTP 429). Needs shared_preload_libraries.';
-- A counter: for monitoring roles and those granted EXECUTE.
REVOKE ALL ON FUNCTION @extschema@.greynoise_quota() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.greynoise_quota() TO pg_monitor;

-- The counts a refresh returns (pg_cron keeps them in cron.job_run_details).
CREATE FUNCTION @extschema@._ip_inventory_refresh_result(
    source text, selected bigint, refreshed bigint, unchanged bigint, not_found bigint,
    failed bigint, skipped bigint, quota_remaining bigint, started timestamptz, first_failure text)
RETURNS jsonb LANGUAGE sql STABLE
RETURN jsonb_strip_nulls(jsonb_build_object(
    'source', source, 'selected', selected, 'refreshed', refreshed, 'unchanged', unchanged,
    'not_found', not_found, 'failed', failed, 'skipped', skipped,
    'quota_remaining', quota_remaining,
    'elapsed', round(extract(epoch FROM clock_timestamp() - started), 3),
    'first_failure', first_failure));

-- MaxMind: the rows never enriched or enriched from another database build; or, when
-- `wanted` is given (cascade_refresh_now), those of its addresses MaxMind serves, pending or not.
-- On one node the rows are locked (SKIP LOCKED: concurrent refreshes split them). A distributed
-- inventory (Citus) has no FOR UPDATE over shards: its rows are picked without a lock and
-- re-enriched by one distributed UPDATE (_ip_inventory_citus_apply_maxmind); two such
-- refreshes at once may enrich the same rows twice, with the same values.
CREATE FUNCTION @extschema@._ip_inventory_refresh_maxmind(lim int, wanted inet[] DEFAULT NULL) RETURNS jsonb LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    distributed boolean := @extschema@._ip_inventory_citus_distributed();
    city_build timestamptz;
    asn_build timestamptz;
    ips inet[];
    before jsonb;
    res record;
BEGIN
    IF distributed AND wanted IS NOT NULL THEN
        RAISE EXCEPTION 'cascade_refresh_now() does not refresh distributed inventories'
            USING ERRCODE = '0A000', HINT = 'Use cascade_refresh() on the coordinator.';
    END IF;
    SELECT b.city_build, b.asn_build INTO city_build, asn_build FROM @extschema@._ip_inventory_builds() AS b;
    EXECUTE format($sql$
        SELECT coalesce(array_agg(s.ip_address), '{}'),
               coalesce(jsonb_object_agg(host(s.ip_address), coalesce(s.enrichment -> 'maxmind', 'null')), '{}')
          FROM (SELECT ip_address, enrichment FROM @extschema@.ip_inventory
                WHERE @extschema@._ip_inventory_maxmind_serves(ip_class)
                  AND CASE WHEN $3 IS NULL
                           THEN @extschema@._ip_inventory_maxmind_pending(maxmind_ts, maxmind_build, maxmind_asn_build, $1, $2)
                           ELSE ip_address = ANY ($3) END
                ORDER BY observation_count DESC, ip_address
                LIMIT $4 %s) AS s $sql$,
        CASE WHEN distributed THEN '' ELSE 'FOR UPDATE SKIP LOCKED' END)
      INTO ips, before
      USING city_build, asn_build, wanted, lim;
    IF distributed THEN
        PERFORM @extschema@._ip_inventory_citus_apply_maxmind(ips);
    ELSE
        PERFORM @extschema@._ip_inventory_apply_maxmind(ips);
    END IF;
    SELECT count(*) AS selected,
           count(*) FILTER (WHERE i.enrichment ? 'maxmind' AND i.enrichment -> 'maxmind' <> before -> host(i.ip_address)) AS refreshed,
           count(*) FILTER (WHERE i.enrichment ? 'maxmind' AND i.enrichment -> 'maxmind' = before -> host(i.ip_address)) AS unchanged,
           count(*) FILTER (WHERE NOT i.enrichment ? 'maxmind') AS not_found
      INTO res
      FROM @extschema@.ip_inventory AS i WHERE i.ip_address = ANY (ips);
    -- (Every argument of the exact type: no overload elsewhere can match better.)
    RETURN @extschema@._ip_inventory_refresh_result('maxmind'::text, res.selected, res.refreshed, res.unchanged,
                                                    res.not_found, 0::bigint, 0::bigint, NULL::bigint, started, NULL::text);
END $$;

-- Stores a network source's answers (a jsonb array of {ip, outcome, answer, detail} as
-- ip_inventory_fetch gives them) and records its failures; returns the counts. The rows are
-- locked in address order first, the order recorders lock them in, so writing never
-- deadlocks with ingest.
CREATE FUNCTION @extschema@._ip_inventory_store_answers(src text, answers jsonb, before jsonb)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    res record;
BEGIN
    IF @extschema@._ip_inventory_citus_distributed() THEN
        -- Citus: no row locks over shards, no STABLE functions of columns in an UPDATE.
        RETURN @extschema@._ip_inventory_citus_store_answers(src, answers, before);
    END IF;
    PERFORM FROM @extschema@.ip_inventory AS i
    WHERE i.ip_address IN (SELECT (a ->> 'ip')::inet FROM jsonb_array_elements(answers) AS a)
    ORDER BY i.ip_address FOR UPDATE;
    WITH r AS MATERIALIZED (
        SELECT x.ip, x.outcome, x.answer, x.detail, before -> host(x.ip) AS previous,
               CASE WHEN src = 'cymru' THEN (x.answer ->> 'asn')::bigint END AS asn
        FROM jsonb_to_recordset(answers) AS x(ip inet, outcome text, answer jsonb, detail text)
    ),
    -- An answer (and a skip that says why, like an IPv6 address for GreyNoise) is stored
    -- with its time; quota, 429 and stop skips leave the row as it was.
    stored AS (
        UPDATE @extschema@.ip_inventory AS i SET
            enrichment   = i.enrichment || jsonb_build_object(src, r.answer),
            cymru_ts     = CASE WHEN src = 'cymru' THEN now() ELSE i.cymru_ts END,
            greynoise_ts = CASE WHEN src = 'greynoise' THEN now() ELSE i.greynoise_ts END,
            rdns_ts      = CASE WHEN src = 'rdns' THEN now() ELSE i.rdns_ts END,
            -- The ASN rule (sql/inventory.sql): only Team Cymru offers one here.
            asn_number   = CASE WHEN @extschema@._ip_inventory_asn_replaced(src, r.asn, i.asn_source)
                                THEN r.asn ELSE i.asn_number END,
            asn_org      = CASE WHEN @extschema@._ip_inventory_asn_replaced(src, r.asn, i.asn_source)
                                THEN CASE WHEN r.asn IS NOT NULL THEN r.answer ->> 'as_name' END ELSE i.asn_org END,
            asn_network  = CASE WHEN @extschema@._ip_inventory_asn_replaced(src, r.asn, i.asn_source)
                                THEN CASE WHEN r.asn IS NOT NULL THEN (r.answer ->> 'prefix')::cidr END ELSE i.asn_network END,
            asn_source   = CASE WHEN @extschema@._ip_inventory_asn_replaced(src, r.asn, i.asn_source)
                                THEN CASE WHEN r.asn IS NOT NULL THEN 'cymru' END ELSE i.asn_source END
        FROM r
        WHERE i.ip_address = r.ip AND r.answer IS NOT NULL
        RETURNING 1
    ),
    recorded AS (
        INSERT INTO @extschema@.ip_inventory_failures AS f (ip_address, source, attempts, error, first_failed_at, last_failed_at)
        SELECT r.ip, src, 1, r.detail, now(), now() FROM r WHERE r.outcome = 'failed'
        ON CONFLICT (ip_address, source) DO UPDATE
            SET attempts = f.attempts + 1, error = excluded.error, last_failed_at = excluded.last_failed_at
        RETURNING 1
    ),
    cleared AS (
        DELETE FROM @extschema@.ip_inventory_failures AS f USING r
        WHERE f.ip_address = r.ip AND f.source = src AND r.answer IS NOT NULL
        RETURNING 1
    )
    SELECT count(*) AS selected,
           count(*) FILTER (WHERE outcome = 'found' AND answer IS DISTINCT FROM previous) AS refreshed,
           count(*) FILTER (WHERE outcome = 'found' AND answer = previous) AS unchanged,
           count(*) FILTER (WHERE outcome = 'not_found') AS not_found,
           count(*) FILTER (WHERE outcome = 'failed') AS failed,
           count(*) FILTER (WHERE outcome = 'skipped') AS skipped,
           min(detail) FILTER (WHERE outcome = 'failed') AS first_failure,
           (SELECT count(*) FROM stored) + (SELECT count(*) FROM recorded) + (SELECT count(*) FROM cleared) AS writes
      INTO res
      FROM r;
    -- The answered rows' tags follow their new data (sql/tags.sql).
    PERFORM @extschema@._ip_inventory_tag(ARRAY(
        SELECT (a ->> 'ip')::inet FROM jsonb_array_elements(answers) AS a
        WHERE a -> 'answer' IS NOT NULL AND a -> 'answer' <> 'null' ORDER BY 1));
    RETURN jsonb_build_object('selected', res.selected, 'refreshed', res.refreshed, 'unchanged', res.unchanged,
                              'not_found', res.not_found, 'failed', res.failed, 'skipped', res.skipped,
                              'first_failure', res.first_failure);
END $$;

-- A network source: pick the due rows, claim them, ask the source holding no row lock, then
-- store the answers and record the failures. Addresses queued by ip_verdict come first.
-- With `wanted` (cascade_refresh_now), those of its addresses the source serves instead,
-- due or not.
CREATE FUNCTION @extschema@._ip_inventory_refresh_network(src text, lim int, wanted inet[] DEFAULT NULL) RETURNS jsonb LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    ttl interval := @extschema@.ip_inventory_ttl(src);
    maxmind_ready boolean;
    candidates text[];
    page bigint := lim::bigint * 2 + 32;
    offset_rows bigint := 0;
    ips text[] := '{}';
    queued text[] := '{}';
    before jsonb;
    answers jsonb;
    answer jsonb;
    one jsonb;
    counts jsonb;
    quota record;
    quota_left bigint;
    -- Networks the operator excluded from this source (ip_inventory.<source>_skip_networks).
    skip cidr[] := @extschema@._ip_inventory_skip_networks(src)::cidr[];
BEGIN
    IF src = 'cymru' THEN
        maxmind_ready := EXISTS (SELECT FROM @extschema@._ip_inventory_builds() AS b
                                 WHERE b.city_build IS NOT NULL OR b.asn_build IS NOT NULL);
    END IF;
    IF src = 'greynoise' THEN
        -- After a restart, continue today's count from the last saved one.
        PERFORM @extschema@._ip_inventory_greynoise_seed((q.day - date '1970-01-01'), q.used::bigint)
           FROM @extschema@.ip_inventory_quota AS q WHERE q.source = 'greynoise';
    END IF;

    -- Due rows, busiest first; rows whose last attempt failed come after the others, so a
    -- few addresses the source keeps failing on cannot hold up the rest. Run as a one-shot
    -- statement with the source as a constant, so that it is planned with that source's
    -- due-row index. No row is locked: the rows are claimed (shared memory, src/claims.rs)
    -- so that concurrent refreshes split them, and an event insert for one of them never
    -- waits for the network. Pages of candidates are read until lim are claimed: other
    -- refreshes may hold some. Team Cymru waits for MaxMind's chance at a row, unless no
    -- MaxMind database is in service at all.
    IF wanted IS NOT NULL THEN
        ips := @extschema@._ip_inventory_claim(src, ARRAY(
            SELECT host(i.ip_address) FROM @extschema@.ip_inventory AS i
            WHERE i.ip_address = ANY (wanted)
              AND @extschema@._ip_inventory_source_serves(src, i.ip_address, i.ip_class, i.asn_source)
              AND NOT i.ip_address <<= ANY (skip)
            ORDER BY i.observation_count DESC, i.ip_address), lim);
    ELSE
        -- First the addresses a live consumer asked about (ip_verdict's queue, in shared
        -- memory), those still due. An address not in the inventory yet is asked about if the
        -- source would serve its row (by its class and MaxMind's ASN), and added just before
        -- the answers are stored: no new row is held while the network answers.
        queued := @extschema@._ip_inventory_queue_peek(src, lim);
        IF cardinality(queued) > 0 THEN
            ips := @extschema@._ip_inventory_claim(src, ARRAY(
                SELECT q.ip FROM unnest(queued) WITH ORDINALITY AS q(ip, n)
                LEFT JOIN @extschema@.ip_inventory AS i ON i.ip_address = q.ip::inet
                WHERE CASE WHEN i.ip_address IS NULL
                           THEN @extschema@._ip_inventory_source_serves(src, q.ip::inet, @extschema@.ip_class(q.ip::inet),
                                    CASE WHEN (@extschema@._ip_inventory_maxmind(q.ip::inet)).asn IS NOT NULL THEN 'maxmind' END)
                           ELSE @extschema@._ip_inventory_source_serves(src, i.ip_address, i.ip_class, i.asn_source)
                                AND (CASE src WHEN 'cymru' THEN i.cymru_ts WHEN 'greynoise' THEN i.greynoise_ts ELSE i.rdns_ts END
                                     < now() - ttl) IS NOT FALSE END
                  AND NOT q.ip::inet <<= ANY (skip)
                ORDER BY q.n), lim);
        END IF;
    END IF;
    WHILE wanted IS NULL AND cardinality(ips) < lim LOOP
        EXECUTE format($sql$
            SELECT coalesce(array_agg(host(s.ip_address)), '{}')
              FROM (SELECT i.ip_address
                    FROM @extschema@.ip_inventory AS i
                    LEFT JOIN @extschema@.ip_inventory_failures AS f ON f.ip_address = i.ip_address AND f.source = $1
                    WHERE @extschema@._ip_inventory_source_serves(%1$L, i.ip_address, i.ip_class, i.asn_source)
                      AND (i.%2$I IS NULL OR i.%2$I < now() - $2)
                      AND (%1$L <> 'cymru' OR i.maxmind_ts IS NOT NULL OR NOT $4)
                      AND NOT i.ip_address <<= ANY ($7)
                    ORDER BY f.attempts IS NOT NULL, i.observation_count DESC, i.ip_address
                    LIMIT $5 OFFSET $6) AS s $sql$,
            src, src || '_ts')
          INTO candidates
          USING src, ttl, lim, maxmind_ready, page, offset_rows, skip;
        -- (This backend's own claims do not exclude an address: the queued ones are left out here.)
        ips := ips || @extschema@._ip_inventory_claim(src, ARRAY(SELECT c FROM unnest(candidates) AS c WHERE c <> ALL (ips)),
                                                      lim - cardinality(ips));
        EXIT WHEN cardinality(ips) >= lim OR cardinality(candidates) < page;
        offset_rows := offset_rows + page;
    END LOOP;
    SELECT coalesce(jsonb_object_agg(host(i.ip_address), coalesce(i.enrichment -> src, 'null')), '{}')
      INTO before
      FROM @extschema@.ip_inventory AS i WHERE i.ip_address = ANY (ips::inet[]);

    -- The network.
    SELECT coalesce(jsonb_agg(jsonb_build_object('ip', host(f.ip), 'outcome', f.outcome,
                                                 'answer', f.answer, 'detail', f.detail)), '[]')
      INTO answers
      FROM @extschema@.ip_inventory_fetch(src, ips) AS f;
    IF jsonb_array_length(answers) <> coalesce(array_length(ips, 1), 0) THEN
        -- Every claimed address gets one row from the fetch; anything else is a bug.
        RAISE EXCEPTION '% refresh: % addresses selected, % answered', src,
            coalesce(array_length(ips, 1), 0), jsonb_array_length(answers) USING ERRCODE = 'XX000';
    END IF;

    IF cardinality(queued) > 0 THEN
        PERFORM @extschema@._ip_inventory_add(ips::inet[]);
    END IF;
    BEGIN
        counts := @extschema@._ip_inventory_store_answers(src, answers, before);
    EXCEPTION WHEN OTHERS THEN
        -- An answer that cannot be stored fails its address only; the others are stored.
        counts := '{"selected": 0, "refreshed": 0, "unchanged": 0, "not_found": 0, "failed": 0, "skipped": 0}';
        FOR answer IN SELECT a FROM jsonb_array_elements(answers) AS a LOOP
            BEGIN
                one := @extschema@._ip_inventory_store_answers(src, jsonb_build_array(answer), before);
            EXCEPTION WHEN OTHERS THEN
                one := @extschema@._ip_inventory_store_answers(src, jsonb_build_array(jsonb_build_object(
                    'ip', answer -> 'ip', 'outcome', 'failed',
                    'detail', left(src || ': the answer cannot be stored: ' || SQLERRM, 200))), before);
            END;
            counts := (SELECT jsonb_object_agg(k, (counts ->> k)::bigint + (one ->> k)::bigint)
                       FROM unnest(ARRAY['selected', 'refreshed', 'unchanged', 'not_found', 'failed', 'skipped']) AS k)
                      || jsonb_strip_nulls(jsonb_build_object('first_failure',
                             coalesce(counts ->> 'first_failure', one ->> 'first_failure')));
        END LOOP;
    END;
    PERFORM @extschema@._ip_inventory_release(src, ips);
    -- Taken: answered, failed (recorded, due again) or no longer due.
    PERFORM @extschema@._ip_inventory_queue_done(src, queued);

    IF src = 'greynoise' THEN
        SELECT * INTO quota FROM @extschema@.greynoise_quota();
        quota_left := quota.remaining;
        INSERT INTO @extschema@.ip_inventory_quota AS q (source, day, used)
        VALUES ('greynoise', quota.day, quota.used)
        ON CONFLICT (source) DO UPDATE SET day = excluded.day, used = excluded.used
            WHERE (q.day, q.used) < (excluded.day, excluded.used);
    END IF;
    RETURN @extschema@._ip_inventory_refresh_result(src, (counts ->> 'selected')::bigint, (counts ->> 'refreshed')::bigint,
        (counts ->> 'unchanged')::bigint, (counts ->> 'not_found')::bigint, (counts ->> 'failed')::bigint,
        (counts ->> 'skipped')::bigint, quota_left, started, counts ->> 'first_failure');
END $$;

-- One source of cascade_refresh(): without lim, the source's own limit
-- (ip_inventory.<source>_refresh_limit); a source switched off refreshes nothing and says so
-- in its result; a paced GreyNoise run makes at most the calls left today divided by the
-- runs left until midnight UTC (ip_inventory.greynoise_refresh_interval apart), so that the
-- daily quota lasts the whole day.
CREATE FUNCTION @extschema@._ip_inventory_refresh_source(src text, lim int, paced boolean, wanted inet[] DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    n int := coalesce(lim, @extschema@._ip_inventory_refresh_limit(src));
BEGIN
    IF src = 'maxmind' THEN
        RETURN @extschema@._ip_inventory_refresh_maxmind(n, wanted);
    END IF;
    IF NOT @extschema@._ip_inventory_source_enabled(src) THEN
        RETURN @extschema@._ip_inventory_refresh_result(src, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
                                                        0::bigint, NULL::bigint, started, NULL::text)
               || jsonb_build_object('disabled', true);
    END IF;
    IF src = 'greynoise' AND paced AND wanted IS NULL THEN
        -- The count continues from the one saved before a restart (as the refresh does).
        PERFORM @extschema@._ip_inventory_greynoise_seed((q.day - date '1970-01-01'), q.used::bigint)
           FROM @extschema@.ip_inventory_quota AS q WHERE q.source = 'greynoise';
        n := least(n, @extschema@._ip_inventory_greynoise_pace());
        RETURN @extschema@._ip_inventory_refresh_network(src, n) || jsonb_build_object('paced_limit', n);
    END IF;
    RETURN @extschema@._ip_inventory_refresh_network(src, n, wanted);
END $$;

-- Every source in cascade order, for cascade_refresh('all') and cascade_refresh_now('all'):
-- each in its own subtransaction, so one that fails (a missing database, a rejected key) is
-- reported and the others still run (a cancel stops them all); the counts summed up.
CREATE FUNCTION @extschema@._ip_inventory_refresh_all(
    lim int, paced boolean, wanted inet[], caller text, started timestamptz) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src text;
    one jsonb;
    results jsonb := '{}';
    total jsonb;
BEGIN
    FOREACH src IN ARRAY ARRAY['maxmind', 'cymru', 'greynoise', 'rdns'] LOOP
        BEGIN
            one := @extschema@._ip_inventory_refresh_source(src, lim, paced, wanted);
        EXCEPTION WHEN OTHERS THEN
            one := jsonb_build_object('source', src, 'error', SQLERRM, 'sqlstate', SQLSTATE);
            RAISE WARNING '%(''all''): % failed: %', caller, src, SQLERRM;
        END;
        results := results || jsonb_build_object(src, one - 'source');
    END LOOP;
    SELECT jsonb_object_agg(k, s) INTO total
    FROM unnest(ARRAY['selected', 'refreshed', 'unchanged', 'not_found', 'failed', 'skipped']) AS k,
         LATERAL (SELECT coalesce(sum((v ->> k)::bigint), 0) AS s FROM jsonb_each(results) AS e(n, v)) AS t;
    RETURN jsonb_build_object('source', 'all') || total
        || jsonb_strip_nulls(jsonb_build_object('quota_remaining', results -> 'greynoise' -> 'quota_remaining'))
        || jsonb_build_object('elapsed', round(extract(epoch FROM clock_timestamp() - started), 3),
                              'sources', results);
END $$;

-- The entry point: one source, or all in cascade order.
CREATE FUNCTION @extschema@.cascade_refresh(source text, lim int DEFAULT NULL) RETURNS jsonb LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    one jsonb;
BEGIN
    IF source IS NULL THEN
        RAISE EXCEPTION 'cascade_refresh: source must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM @extschema@._ip_inventory_citus_coordinator_only('cascade_refresh');
    IF lim < 0 OR lim > 100000 THEN
        RAISE EXCEPTION 'cascade_refresh: lim must be between 0 and 100000, not %', lim
            USING ERRCODE = '22023',
                  HINT = 'Refresh in batches: schedule cascade_refresh() with a moderate lim.';
    END IF;
    CASE source
    WHEN 'maxmind', 'cymru', 'greynoise', 'rdns' THEN
        -- GreyNoise alone with an explicit lim is an operator's ask: not paced (the daily
        -- quota still holds).
        one := @extschema@._ip_inventory_refresh_source(source, lim, lim IS NULL);
        IF one ? 'disabled' THEN
            RAISE NOTICE 'cascade_refresh: % is disabled (ip_inventory.%_enabled = off): nothing refreshed', source, source;
        END IF;
        RETURN one;
    WHEN 'all' THEN
        -- GreyNoise is always paced here: this is the scheduled run.
        RETURN @extschema@._ip_inventory_refresh_all(lim, true, NULL, 'cascade_refresh', started);
    ELSE
        RAISE EXCEPTION 'unknown enrichment source "%"', left(source, 64)
            USING ERRCODE = '22023', HINT = 'Use maxmind, cymru, greynoise, rdns or all.';
    END CASE;
END $$;

COMMENT ON FUNCTION @extschema@._ip_inventory_refresh_result(text, bigint, bigint, bigint, bigint, bigint, bigint, bigint, timestamptz, text) IS
    'The counts a refresh returns, as jsonb (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_refresh_maxmind(int, inet[]) IS
    'cascade_refresh(''maxmind''): re-enriches rows never enriched or enriched from another database build, or the given addresses (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_store_answers(text, jsonb, jsonb) IS
    'Stores a network source''s answers and records its failures (internal: cascade_refresh).';
COMMENT ON FUNCTION @extschema@._ip_inventory_refresh_network(text, int, inet[]) IS
    'cascade_refresh() for one network source: asks it about the queued and due rows, or the given addresses, and stores the answers and failures (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_refresh_all(int, boolean, inet[], text, timestamptz) IS
    'cascade_refresh(''all'') and cascade_refresh_now(''all''): every source in turn, the counts summed (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_refresh_source(text, int, boolean, inet[]) IS
    'cascade_refresh() and cascade_refresh_now() for one source: its limit, its switch, the GreyNoise pace (internal).';
COMMENT ON FUNCTION @extschema@.cascade_refresh(text, int) IS
    'Refreshes up to lim due rows (without lim: ip_inventory.<source>_refresh_limit) from one source (maxmind, cymru, greynoise, rdns) or from each in turn (all), busiest addresses first, and returns the counts as jsonb: selected, refreshed, unchanged, not_found, failed, skipped, quota_remaining, elapsed (seconds), disabled (a source switched off), paced_limit (GreyNoise spread over the UTC day: in all, and alone without lim). Concurrent calls split the work.';

-- Network calls and the raw fetch are for the refresh, not for every role; an operator
-- role gets GRANT EXECUTE ON FUNCTION cascade_refresh(text, int) (docs/cascade.md).
REVOKE ALL ON FUNCTION @extschema@.cascade_refresh(text, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_store_answers(text, jsonb, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_refresh_network(text, int, inet[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_refresh_maxmind(int, inet[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_refresh_source(text, int, boolean, inet[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_refresh_all(int, boolean, inet[], text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_fetch(text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_greynoise_seed(int, bigint) FROM PUBLIC;
