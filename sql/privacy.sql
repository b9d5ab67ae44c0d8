-- Retention: what happens to addresses older than the retention period, in the inventory and
-- in the observed event tables (ip_inventory_observed_tables).
--
-- mode 'anonymize': event addresses are truncated in place (ip_anonymize); inventory rows
-- are merged into one row per truncated network (ip_class 'anonymized': counts and times
-- summed up, country and ASN kept where all merged rows agree, never enriched again).
-- mode 'delete': old events and inventory rows (merged ones too) are deleted.
-- Batches commit one by one, so a long run holds no lock for long and an interrupted one
-- resumes by being called again; dry_run (the default) only counts.
CREATE PROCEDURE ip_inventory_retention(
    older_than interval,
    mode text DEFAULT 'anonymize',
    dry_run boolean DEFAULT true,
    batch_size int DEFAULT 10000,
    prefix_v4 int DEFAULT 24,
    prefix_v6 int DEFAULT 48,
    INOUT summary jsonb DEFAULT NULL)
-- (No SET search_path: a procedure with SET clauses cannot COMMIT; names are qualified.)
LANGUAGE plpgsql AS $$
DECLARE
    cutoff timestamptz;
    t record;
    n bigint;
    done bigint;
    inventory_rows bigint := 0;
    networks bigint;
    events jsonb := '[]';
    changed text;
    old_rows text;
BEGIN
    IF older_than IS NULL OR older_than <= interval '0' THEN
        RAISE EXCEPTION 'older_than must be a positive interval, not %', coalesce(older_than::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'For example CALL ip_inventory_retention(interval ''90 days'');';
    END IF;
    IF mode IS NULL OR mode NOT IN ('anonymize', 'delete') THEN
        RAISE EXCEPTION 'mode must be anonymize or delete, not %', coalesce(mode, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF dry_run IS NULL OR batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'dry_run must not be NULL and batch_size must be at least 1' USING ERRCODE = '22023';
    END IF;
    -- Validates the prefixes; a full-length prefix would keep the addresses as they are.
    PERFORM @extschema@.ip_anonymize('0.0.0.0', prefix_v4, prefix_v6);
    IF mode = 'anonymize' AND (prefix_v4 >= 32 OR prefix_v6 >= 128) THEN
        RAISE EXCEPTION 'prefixes of 32 (IPv4) or 128 (IPv6) bits anonymize nothing' USING ERRCODE = '22023';
    END IF;
    cutoff := now() - older_than;

    -- The inventory: rows last seen before the cutoff.
    IF dry_run THEN
        SELECT count(*), count(DISTINCT @extschema@.ip_anonymize(ip_address, prefix_v4, prefix_v6))
          INTO inventory_rows, networks
          FROM @extschema@.ip_inventory
         WHERE last_seen_at < cutoff AND (mode = 'delete' OR ip_class <> 'anonymized');
    ELSE
        LOOP
            IF mode = 'delete' THEN
                DELETE FROM @extschema@.ip_inventory WHERE ip_address IN (
                    SELECT ip_address FROM @extschema@.ip_inventory WHERE last_seen_at < cutoff
                    ORDER BY ip_address LIMIT batch_size FOR UPDATE);
                GET DIAGNOSTICS n = ROW_COUNT;
            ELSE
                WITH picked AS (
                    DELETE FROM @extschema@.ip_inventory WHERE ip_address IN (
                        SELECT ip_address FROM @extschema@.ip_inventory
                        WHERE last_seen_at < cutoff AND ip_class <> 'anonymized'
                        ORDER BY ip_address LIMIT batch_size FOR UPDATE)
                    RETURNING *),
                merged AS (
                    SELECT @extschema@.ip_anonymize(p.ip_address, prefix_v4, prefix_v6) AS network,
                           min(p.first_seen_at) AS first_seen, max(p.last_seen_at) AS last_seen,
                           sum(p.observation_count) AS observations, count(*) AS merged_rows,
                           CASE WHEN count(DISTINCT p.geo_country) = 1 AND count(p.geo_country) = count(*)
                                THEN min(p.geo_country) END AS country,
                           CASE WHEN count(DISTINCT (p.asn_number, p.asn_source)) = 1 AND count(p.asn_number) = count(*)
                                THEN min(p.asn_number) END AS asn,
                           CASE WHEN count(DISTINCT (p.asn_number, p.asn_source)) = 1 AND count(p.asn_number) = count(*)
                                THEN min(p.asn_source) END AS asn_source
                    FROM picked AS p GROUP BY 1),
                stored AS (
                    INSERT INTO @extschema@.ip_inventory AS inv (ip_address, first_seen_at, last_seen_at, observation_count,
                                                     ip_class, geo_country, asn_number, asn_source)
                    SELECT network, first_seen, last_seen, observations, 'anonymized', country, asn, asn_source
                    FROM merged ORDER BY network
                    ON CONFLICT (ip_address) DO UPDATE SET
                        observation_count = inv.observation_count + excluded.observation_count,
                        first_seen_at = LEAST(inv.first_seen_at, excluded.first_seen_at),
                        last_seen_at = GREATEST(inv.last_seen_at, excluded.last_seen_at),
                        geo_country = CASE WHEN inv.geo_country = excluded.geo_country THEN inv.geo_country END,
                        asn_number = CASE WHEN (inv.asn_number, inv.asn_source) = (excluded.asn_number, excluded.asn_source)
                                          THEN inv.asn_number END,
                        asn_source = CASE WHEN (inv.asn_number, inv.asn_source) = (excluded.asn_number, excluded.asn_source)
                                          THEN inv.asn_source END
                    RETURNING 1)
                -- (stored runs whether or not it is read: data-modifying WITH always does.)
                SELECT coalesce(sum(merged_rows), 0) INTO n FROM merged;
            END IF;
            inventory_rows := inventory_rows + n;
            COMMIT;
            EXIT WHEN n < batch_size;
        END LOOP;
    END IF;

    -- The observed event tables: rows older than the cutoff by their time column.
    FOR t IN SELECT o.event_table, o.ip_columns, o.ts_column FROM @extschema@.ip_inventory_observed_tables AS o
             ORDER BY o.event_table::text LOOP
        IF t.ts_column IS NULL THEN
            events := events || jsonb_build_object('table', t.event_table::text, 'skipped', 'no time column');
            CONTINUE;
        END IF;
        SELECT string_agg(format('%1$I = @extschema@.ip_anonymize(%1$I, $1, $2)', c), ', '),
               string_agg(format('%1$I IS DISTINCT FROM @extschema@.ip_anonymize(%1$I, $1, $2)', c), ' OR ')
          INTO changed, old_rows
          FROM unnest(t.ip_columns) AS c;
        old_rows := format('%I < $3', t.ts_column) || CASE WHEN mode = 'anonymize' THEN ' AND (' || old_rows || ')' ELSE '' END;
        done := 0;
        IF dry_run THEN
            EXECUTE format('SELECT count(*) FROM %s WHERE %s', t.event_table, old_rows)
               INTO done USING prefix_v4, prefix_v6, cutoff;
        ELSE
            LOOP
                EXECUTE CASE mode
                    WHEN 'anonymize' THEN format(
                        'UPDATE %1$s SET %2$s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %1$s WHERE %3$s LIMIT $4))',
                        t.event_table, changed, old_rows)
                    ELSE format(
                        'DELETE FROM %1$s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %1$s WHERE %2$s LIMIT $4))',
                        t.event_table, old_rows)
                    END
                    USING prefix_v4, prefix_v6, cutoff, batch_size;
                GET DIAGNOSTICS n = ROW_COUNT;
                done := done + n;
                COMMIT;
                EXIT WHEN n < batch_size;
            END LOOP;
        END IF;
        events := events || jsonb_build_object('table', t.event_table::text, 'rows', done);
    END LOOP;

    summary := jsonb_build_object(
        'dry_run', dry_run, 'mode', mode, 'cutoff', cutoff,
        'inventory', jsonb_strip_nulls(jsonb_build_object('rows', inventory_rows, 'networks', networks)),
        'events', events);
END $$;

COMMENT ON PROCEDURE ip_inventory_retention(interval, text, boolean, int, int, int, jsonb) IS
    'Applies the retention period: inventory rows last seen, and observed events older than older_than, are anonymized (truncated to prefix_v4 / prefix_v6, inventory rows merged per network) or deleted (mode => ''delete''), in batches committed one by one. dry_run (the default) only counts what it would change.';
