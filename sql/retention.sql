-- Retention: what happens to addresses older than the retention period, in the inventory and
-- in the attached event tables (ip_inventory_observed).
--
-- mode 'anonymize': event addresses are truncated in place (ip_anonymize); inventory rows
-- are merged into one row per truncated network (ip_class 'anonymized': counts and times
-- summed up, country and ASN kept where all merged rows agree, never enriched again).
-- mode 'delete': old events and inventory rows (merged ones too) are deleted.
-- Batches commit one by one, so a long run holds no lock for long and an interrupted one
-- resumes by being called again; dry_run (the default) only counts. Event tables are changed
-- as their owners, in security-restricted operations (src/observe.rs): a trigger, rule or
-- policy their owner wrote runs with that owner's rights, never with the caller's.

-- Checks the arguments and returns the cutoff and the summary to fill.
-- A retention run's arguments, checked alike by ip_inventory_retention and, on Citus,
-- ip_inventory_citus_retention; run_hint is how the caller's own statement is written.
CREATE FUNCTION @extschema@._ip_inventory_retention_check(
    older_than interval, mode text, dry_run boolean, batch_size int, prefix_v4 int, prefix_v6 int,
    run_hint text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF older_than IS NULL OR older_than <= interval '0' THEN
        RAISE EXCEPTION 'older_than must be a positive interval, not %', coalesce(older_than::text, 'NULL')
            USING ERRCODE = '22023', HINT = run_hint;
    END IF;
    IF mode IS NULL OR mode NOT IN ('anonymize', 'delete') THEN
        RAISE EXCEPTION 'mode must be anonymize or delete, not %', coalesce(left(mode, 64), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF dry_run IS NULL OR batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'dry_run must not be NULL and batch_size must be at least 1' USING ERRCODE = '22023';
    END IF;
    -- Validates the prefixes; a full-length prefix would keep the addresses as they are.
    PERFORM @extschema@.ip_anonymize('0.0.0.0'::inet, prefix_v4, prefix_v6);
    IF mode = 'anonymize' AND (prefix_v4 >= 32 OR prefix_v6 >= 128) THEN
        RAISE EXCEPTION 'prefixes of 32 (IPv4) or 128 (IPv6) bits anonymize nothing' USING ERRCODE = '22023';
    END IF;
END $$;

CREATE FUNCTION @extschema@._ip_inventory_retention_start(
    older_than interval, mode text, dry_run boolean, batch_size int, prefix_v4 int, prefix_v6 int,
    OUT cutoff timestamptz, OUT summary jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM @extschema@._ip_inventory_retention_check(older_than, mode, dry_run, batch_size, prefix_v4, prefix_v6,
        'For example CALL ip_inventory_retention(interval ''90 days'');');
    IF @extschema@._ip_inventory_citus_distributed() THEN
        -- (Batches by ctid would mix the shards' row positions.)
        RAISE EXCEPTION 'ip_inventory is distributed with Citus' USING ERRCODE = '55000',
            HINT = 'On the coordinator: SELECT ip_inventory_citus_retention(...); (docs/scaling.md)';
    END IF;
    cutoff := now() - older_than;
    summary := jsonb_build_object('dry_run', dry_run, 'mode', mode, 'cutoff', cutoff,
                                  'inventory', jsonb_build_object('rows', 0), 'events', '[]'::jsonb);
END $$;

-- Anonymize's second half: inventory rows taken out (deleted by the caller) are written back
-- as one row per truncated network (ip_class 'anonymized'): counts added, first and last seen
-- widened, country and ASN kept only where every merged row agreed. Returns how many rows
-- were merged. Used on one node and, through the coordinator, on Citus (where a row cannot
-- change its address in place: it is deleted from its shard and its network row inserted
-- into the network's).
CREATE FUNCTION @extschema@._ip_inventory_merge_anonymized(
    taken @extschema@.ip_inventory[], prefix_v4 int, prefix_v6 int) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF taken IS NULL OR cardinality(taken) = 0 THEN
        RETURN 0;
    END IF;
    INSERT INTO @extschema@.ip_inventory AS inv (ip_address, first_seen_at, last_seen_at, observation_count,
                                                ip_class, geo_country, asn_number, asn_source)
    SELECT @extschema@.ip_anonymize(p.ip_address, prefix_v4, prefix_v6),
           min(p.first_seen_at), max(p.last_seen_at), sum(p.observation_count), 'anonymized',
           CASE WHEN count(DISTINCT p.geo_country) = 1 AND count(p.geo_country) = count(*)
                THEN min(p.geo_country) END,
           CASE WHEN count(DISTINCT (p.asn_number, p.asn_source)) = 1 AND count(p.asn_number) = count(*)
                THEN min(p.asn_number) END,
           CASE WHEN count(DISTINCT (p.asn_number, p.asn_source)) = 1 AND count(p.asn_number) = count(*)
                THEN min(p.asn_source) END
    FROM unnest(taken) AS p GROUP BY 1 ORDER BY 1
    ON CONFLICT (ip_address) DO UPDATE SET
        observation_count = inv.observation_count + excluded.observation_count,
        first_seen_at = LEAST(inv.first_seen_at, excluded.first_seen_at),
        last_seen_at = GREATEST(inv.last_seen_at, excluded.last_seen_at),
        geo_country = CASE WHEN inv.geo_country = excluded.geo_country THEN inv.geo_country END,
        asn_number = CASE WHEN (inv.asn_number, inv.asn_source) = (excluded.asn_number, excluded.asn_source)
                          THEN inv.asn_number END,
        asn_source = CASE WHEN (inv.asn_number, inv.asn_source) = (excluded.asn_number, excluded.asn_source)
                          THEN inv.asn_source END;
    RETURN cardinality(taken);
END $$;

-- One batch of the inventory's rows last seen before the cutoff (a dry run counts them all).
CREATE FUNCTION @extschema@._ip_inventory_retain_inventory(
    cutoff timestamptz, mode text, dry_run boolean, batch_size int, prefix_v4 int, prefix_v6 int,
    INOUT summary jsonb, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    networks bigint;
    taken @extschema@.ip_inventory[];
BEGIN
    IF dry_run THEN
        SELECT count(*), count(DISTINCT @extschema@.ip_anonymize(ip_address, prefix_v4, prefix_v6))
          INTO n, networks
          FROM @extschema@.ip_inventory
         WHERE last_seen_at < cutoff AND (mode = 'delete' OR ip_class <> 'anonymized');
        summary := jsonb_set(summary, '{inventory}', jsonb_build_object('rows', n, 'networks', networks));
        done := true;
        RETURN;
    END IF;
    IF mode = 'delete' THEN
        DELETE FROM @extschema@.ip_inventory WHERE ip_address IN (
            SELECT ip_address FROM @extschema@.ip_inventory WHERE last_seen_at < cutoff
            ORDER BY ip_address LIMIT batch_size FOR UPDATE);
        GET DIAGNOSTICS n = ROW_COUNT;
    ELSE
        WITH picked AS (
            DELETE FROM @extschema@.ip_inventory AS inv WHERE inv.ip_address IN (
                SELECT ip_address FROM @extschema@.ip_inventory
                WHERE last_seen_at < cutoff AND ip_class <> 'anonymized'
                ORDER BY ip_address LIMIT batch_size FOR UPDATE)
            RETURNING inv AS r)
        SELECT array_agg(picked.r) INTO taken FROM picked;
        n := @extschema@._ip_inventory_merge_anonymized(taken, prefix_v4, prefix_v6);
    END IF;
    summary := jsonb_set(summary, '{inventory,rows}', to_jsonb((summary #>> '{inventory,rows}')::bigint + n));
    done := n < batch_size;
END $$;

-- The failure records of the addresses this run takes out of the inventory (deleted, or merged
-- into a network by anonymize), and of any address no longer in it: ip_inventory_failures
-- holds the raw address (and a source's error text about it), so it is kept exactly as long
-- as the address's own row. A dry run counts what the run would remove.
CREATE FUNCTION @extschema@._ip_inventory_retain_failures(
    cutoff timestamptz, mode text, dry_run boolean, INOUT summary jsonb, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    failed inet[];
    kept inet[];
    n bigint;
BEGIN
    -- The failed addresses first, then the inventory rows that keep theirs: Citus joins no
    -- local table (the failures, on the coordinator) with a distributed one (the inventory).
    failed := ARRAY(SELECT DISTINCT f.ip_address FROM @extschema@.ip_inventory_failures AS f);
    kept := ARRAY(SELECT i.ip_address FROM @extschema@.ip_inventory AS i
                  WHERE i.ip_address = ANY (failed)
                    AND NOT (dry_run AND i.last_seen_at < cutoff AND (mode = 'delete' OR i.ip_class <> 'anonymized')));
    IF dry_run THEN
        SELECT count(*) INTO n FROM @extschema@.ip_inventory_failures AS f WHERE f.ip_address <> ALL (kept);
    ELSE
        DELETE FROM @extschema@.ip_inventory_failures AS f WHERE f.ip_address <> ALL (kept);
        GET DIAGNOSTICS n = ROW_COUNT;
    END IF;
    summary := summary || jsonb_build_object('failures', jsonb_build_object('rows', n));
    done := true;
END $$;

-- The attached event tables, in name order.
CREATE FUNCTION @extschema@._ip_inventory_retention_tables() RETURNS SETOF regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT o.event_table FROM @extschema@.ip_inventory_observed AS o
    WHERE EXISTS (SELECT FROM pg_catalog.pg_class AS c WHERE c.oid = o.event_table)
    ORDER BY o.event_table::text;
END;

-- One batch of an event table's rows older than the cutoff by its time column (a dry run
-- counts them all); a table without a time column is skipped.
CREATE FUNCTION @extschema@._ip_inventory_retain_table(
    event_table regclass, cutoff timestamptz, mode text, dry_run boolean, batch_size int,
    prefix_v4 int, prefix_v6 int, INOUT summary jsonb, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    last int := jsonb_array_length(summary -> 'events') - 1;
BEGIN
    n := @extschema@._ip_inventory_retain_events(event_table, mode, cutoff, prefix_v4, prefix_v6, batch_size, dry_run);
    IF last < 0 OR summary -> 'events' -> last ->> 'table' IS DISTINCT FROM event_table::text THEN
        summary := jsonb_set(summary, '{events}', (summary -> 'events') || CASE WHEN n IS NULL
            THEN jsonb_build_object('table', event_table::text, 'skipped', 'no time column')
            ELSE jsonb_build_object('table', event_table::text, 'rows', 0) END);
        last := last + 1;
    END IF;
    IF n IS NOT NULL THEN
        summary := jsonb_set(summary, ARRAY['events', last::text, 'rows'],
                             to_jsonb((summary -> 'events' -> last ->> 'rows')::bigint + n));
    END IF;
    done := n IS NULL OR dry_run OR n < batch_size;
END $$;

-- An event table whose batch failed (a trigger its owner wrote raised, its column changed
-- type, ...): the error goes into the summary and the other tables are still kept.
CREATE FUNCTION @extschema@._ip_inventory_retention_failed(
    INOUT summary jsonb, event_table regclass, state text, message text, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    summary := jsonb_set(summary, '{events}', (summary -> 'events') || jsonb_build_object(
        'table', event_table::text, 'error', left(message, 200), 'sqlstate', state));
    RAISE WARNING 'ip_inventory_retention: % failed: %', event_table, left(message, 200);
    done := true;
END $$;

CREATE PROCEDURE @extschema@.ip_inventory_retention(
    older_than interval,
    mode text DEFAULT 'anonymize',
    dry_run boolean DEFAULT true,
    batch_size int DEFAULT 10000,
    prefix_v4 int DEFAULT 24,
    prefix_v6 int DEFAULT 48,
    INOUT summary jsonb DEFAULT NULL)
-- (No SET clause: a procedure with one cannot COMMIT. The body only calls the functions above
-- by qualified name; see sql/jobs.sql.)
LANGUAGE plpgsql AS $$
DECLARE
    run record;
    step record;
    t record;
BEGIN
    run := @extschema@._ip_inventory_retention_start(older_than, mode, dry_run, batch_size, prefix_v4, prefix_v6);
    step := @extschema@._ip_inventory_retain_inventory(run.cutoff, mode, dry_run, batch_size,
                                                       prefix_v4, prefix_v6, run.summary);
    COMMIT;
    WHILE NOT step.done LOOP
        step := @extschema@._ip_inventory_retain_inventory(run.cutoff, mode, dry_run, batch_size,
                                                           prefix_v4, prefix_v6, step.summary);
        COMMIT;
    END LOOP;
    step := @extschema@._ip_inventory_retain_failures(run.cutoff, mode, dry_run, step.summary);
    COMMIT;
    FOR t IN SELECT r.tbl FROM @extschema@._ip_inventory_retention_tables() AS r(tbl) LOOP
        LOOP
            -- A batch that fails is rolled back and reported; the next table is still kept.
            BEGIN
                step := @extschema@._ip_inventory_retain_table(t.tbl, run.cutoff, mode, dry_run, batch_size,
                                                               prefix_v4, prefix_v6, step.summary);
            EXCEPTION WHEN OTHERS THEN
                step := @extschema@._ip_inventory_retention_failed(step.summary, t.tbl, SQLSTATE, SQLERRM);
            END;
            COMMIT;
            EXIT WHEN step.done;
        END LOOP;
    END LOOP;
    summary := step.summary;
END $$;

COMMENT ON FUNCTION @extschema@._ip_inventory_retention_check(interval, text, boolean, int, int, int, text) IS 'Checks a retention run''s arguments (internal: ip_inventory_retention, ip_inventory_citus_retention).';
COMMENT ON FUNCTION @extschema@._ip_inventory_retention_start(interval, text, boolean, int, int, int) IS 'Checks a retention run''s arguments and starts its summary (internal: ip_inventory_retention).';
COMMENT ON FUNCTION @extschema@._ip_inventory_retain_inventory(timestamptz, text, boolean, int, int, int, jsonb) IS 'One batch of retention in ip_inventory (internal: ip_inventory_retention).';
COMMENT ON FUNCTION @extschema@._ip_inventory_merge_anonymized(@extschema@.ip_inventory[], int, int) IS 'Writes inventory rows taken out by anonymize back as one row per truncated network (internal: ip_inventory_retention, ip_inventory_citus_retention).';
COMMENT ON FUNCTION @extschema@._ip_inventory_retain_failures(timestamptz, text, boolean, jsonb) IS 'Removes the failure records of addresses no longer in the inventory (internal: ip_inventory_retention).';
COMMENT ON FUNCTION @extschema@._ip_inventory_retention_tables() IS 'The attached event tables retention applies to (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_retain_table(regclass, timestamptz, text, boolean, int, int, int, jsonb) IS 'One batch of retention in an attached event table (internal: ip_inventory_retention).';
COMMENT ON FUNCTION @extschema@._ip_inventory_retention_failed(jsonb, regclass, text, text) IS 'Records an event table whose retention batch failed (internal: ip_inventory_retention).';
COMMENT ON PROCEDURE @extschema@.ip_inventory_retention(interval, text, boolean, int, int, int, jsonb) IS
    'Applies the retention period: inventory rows last seen, and attached events older than older_than, are anonymized (truncated to prefix_v4 / prefix_v6, inventory rows merged per network) or deleted (mode => ''delete''), in batches committed one by one, and the failure records of the addresses taken out go with them; event tables are changed as their owners. dry_run (the default) only counts what it would change.';

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retention_check(interval, text, boolean, int, int, int, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retention_start(interval, text, boolean, int, int, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retain_inventory(timestamptz, text, boolean, int, int, int, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_merge_anonymized(@extschema@.ip_inventory[], int, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retain_failures(timestamptz, text, boolean, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retention_tables() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retain_table(regclass, timestamptz, text, boolean, int, int, int, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retention_failed(jsonb, regclass, text, text) FROM PUBLIC;
REVOKE ALL ON PROCEDURE @extschema@.ip_inventory_retention(interval, text, boolean, int, int, int, jsonb) FROM PUBLIC;
