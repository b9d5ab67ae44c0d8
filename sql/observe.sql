-- Recording observations: the ingest trigger and the pieces it shares with backfill and
-- enrich_pending.

-- The inventory columns an ip_enrichment value fills. One mapping for every writer: new rows
-- (recording) and re-enrichment (ip_inventory_apply_maxmind). `maxmind_ts` is set only when a
-- MaxMind database was actually consulted; `maxmind_json` holds the fields without a column
-- (NULL when MaxMind gave none). Building it is the costliest part of recording and
-- re-enrichment (~2.5 µs a row), so consumers reference it once: jsonb_set_lax(...,
-- 'delete_key') stores it or removes a stale one in one expression.
CREATE FUNCTION ip_inventory_maxmind_columns(e ip_enrichment)
RETURNS TABLE (
    geo_country text, geo_country_name text, geo_city text, geo_subdivision text,
    geo_latitude double precision, geo_longitude double precision, geo_network cidr,
    maxmind_build timestamptz, maxmind_asn_build timestamptz, maxmind_ts timestamptz,
    asn_number bigint, asn_org text, asn_network cidr, asn_source text, maxmind_json jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT e.country_code, e.country_name, e.city, e.subdivision_name,
           e.latitude, e.longitude, e.network,
           e.maxmind_build, e.asn_build,
           CASE WHEN e.maxmind_build IS NOT NULL OR e.asn_build IS NOT NULL THEN now() END,
           e.asn, e.asn_org, e.asn_network, CASE WHEN e.asn IS NOT NULL THEN 'maxmind' END,
           nullif(jsonb_strip_nulls(jsonb_build_object(
               'continent_code', e.continent_code,
               'registered_country_code', e.registered_country_code,
               'subdivision_code', e.subdivision_code,
               'postal_code', e.postal_code,
               'accuracy_radius', e.accuracy_radius,
               'time_zone', e.time_zone,
               'is_anonymous_proxy', e.is_anonymous_proxy,
               'is_satellite_provider', e.is_satellite_provider,
               'is_anycast', e.is_anycast)), '{}');
END;

-- The statement that records the observations of some rows: aggregates them per address
-- (appearances, first and last event time) and upserts the inventory in address order (so
-- that concurrent recorders lock rows in the same order and cannot deadlock). New public
-- addresses are enriched from MaxMind inline when $1 is true; existing rows only get their
-- observation columns updated. The statement takes $1 (enrich) and returns event_rows (when
-- track_rows), addresses, new_addresses, and last_ctid (the highest ctid read, when
-- track_rows), and counts what it wrote for ip_inventory_stats (at commit). Shared by the
-- trigger and backfill, which differ only in where rows come from.
CREATE FUNCTION ip_inventory_record_sql(
    relation text, ip_columns text[], ts_column text, condition text, track_rows boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT format($sql$
        WITH src AS (SELECT %1$s FROM %2$s WHERE %3$s),
        obs AS (
            SELECT v.ip, count(*) AS n, min(v.ts) AS first_seen, max(v.ts) AS last_seen
            FROM src CROSS JOIN LATERAL (VALUES %4$s) AS v(ip, ts)
            WHERE v.ip IS NOT NULL
            GROUP BY v.ip),
        recorded AS (
            INSERT INTO @extschema@.ip_inventory AS inv (
                ip_address, first_seen_at, last_seen_at, observation_count, ip_class,
                geo_country, geo_country_name, geo_city, geo_subdivision, geo_latitude,
                geo_longitude, geo_network, maxmind_build, maxmind_asn_build, maxmind_ts,
                asn_number, asn_org, asn_network, asn_source, enrichment)
            SELECT o.ip, o.first_seen, o.last_seen, o.n, @extschema@.ip_class(o.ip),
                   m.geo_country, m.geo_country_name, m.geo_city, m.geo_subdivision, m.geo_latitude,
                   m.geo_longitude, m.geo_network, m.maxmind_build, m.maxmind_asn_build, m.maxmind_ts,
                   m.asn_number, m.asn_org, m.asn_network, m.asn_source,
                   jsonb_set_lax('{}', '{maxmind}', m.maxmind_json, true, 'delete_key')
            FROM obs AS o
            -- Only new addresses are enriched here. An explicit join, not NOT EXISTS in the
            -- lateral, whose join filter the planner may answer by hashing the whole
            -- inventory. The filter below runs after the lookup, so the CASE spares the
            -- lookup for known addresses (the function is strict).
            LEFT JOIN @extschema@.ip_inventory AS cur ON cur.ip_address = o.ip
            LEFT JOIN LATERAL (
                SELECT c.* FROM @extschema@.ip_inventory_maxmind(
                                    CASE WHEN $1 AND cur.ip_address IS NULL THEN o.ip END) AS e,
                                @extschema@.ip_inventory_maxmind_columns(e) AS c
                WHERE $1 AND cur.ip_address IS NULL AND @extschema@.ip_class(o.ip) = 'public'
            ) AS m ON true
            ORDER BY o.ip
            ON CONFLICT (ip_address) DO UPDATE SET
                observation_count = inv.observation_count + excluded.observation_count,
                first_seen_at = LEAST(inv.first_seen_at, excluded.first_seen_at),
                last_seen_at = GREATEST(inv.last_seen_at, excluded.last_seen_at)
            RETURNING (xmax = 0) AS inserted, (xmax = 0 AND inv.maxmind_ts IS NOT NULL) AS enriched),
        totals AS (
            SELECT %5$s AS event_rows, count(*) AS addresses,
                   count(*) FILTER (WHERE inserted) AS new_addresses, %6$s AS last_ctid,
                   count(*) FILTER (WHERE enriched) AS enriched,
                   (SELECT coalesce(sum(n), 0)::bigint FROM obs) AS observations
            FROM recorded)
        SELECT t.*, @extschema@.ip_inventory_count_recorded(t.observations, t.new_addresses, t.enriched)
        FROM totals AS t
        $sql$,
        -- %1: the columns read (and ctid for backfill)
        CASE WHEN track_rows THEN 'ctid AS row_ctid, ' ELSE '' END
            || (SELECT string_agg(quote_ident(c), ', ') FROM unnest(ip_columns) AS c)
            || CASE WHEN ts_column IS NULL THEN '' ELSE ', ' || quote_ident(ts_column) END,
        relation,
        coalesce(condition, 'true'),
        -- %4: one (address, time) pair per address column, the address in canonical form
        -- (IPv4-mapped as IPv4, no netmask); events without a time count now
        (SELECT string_agg(format('(@extschema@.ip_canonical(src.%I::inet), %s)', c,
                    CASE WHEN ts_column IS NULL THEN 'now()'
                         ELSE format('coalesce(src.%I::timestamptz, now())', ts_column) END), ', ')
         FROM unnest(ip_columns) AS c),
        CASE WHEN track_rows THEN '(SELECT count(*) FROM src)' ELSE 'NULL::bigint' END,
        CASE WHEN track_rows THEN '(SELECT max(row_ctid) FROM src)' ELSE 'NULL::tid' END)
$$;

-- Checks that a table can be observed with these columns; raises otherwise.
CREATE FUNCTION ip_inventory_check_columns(tbl regclass, ip_columns text[], ts_column text)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = @extschema@, pg_catalog, pg_temp AS $$
DECLARE
    col text;
    col_type regtype;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'no table given' USING ERRCODE = '22004';
    END IF;
    IF tbl = 'ip_inventory'::regclass THEN
        RAISE EXCEPTION 'ip_inventory cannot observe itself' USING ERRCODE = '22023';
    END IF;
    IF ip_columns IS NULL OR cardinality(ip_columns) = 0 THEN
        RAISE EXCEPTION 'no address columns given for %', tbl USING ERRCODE = '22023',
            HINT = 'Name the inet columns holding addresses, e.g. ARRAY[''src_ip'', ''dst_ip''].';
    END IF;
    IF array_position(ip_columns, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'address columns % hold a NULL', ip_columns USING ERRCODE = '22004';
    END IF;
    IF cardinality(ip_columns) <> (SELECT count(DISTINCT c) FROM unnest(ip_columns) AS c) THEN
        RAISE EXCEPTION 'address columns % name a column twice', ip_columns USING ERRCODE = '22023';
    END IF;
    FOREACH col IN ARRAY ip_columns || CASE WHEN ts_column IS NULL THEN '{}'::text[] ELSE ARRAY[ts_column] END LOOP
        SELECT a.atttypid::regtype INTO col_type FROM pg_attribute AS a
        WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of % does not exist', col, tbl USING ERRCODE = '42703';
        END IF;
        IF col = ts_column AND col_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
            RAISE EXCEPTION 'column "%" of % is %, not a timestamp', col, tbl, col_type
                USING ERRCODE = '42804';
        ELSIF col <> ts_column OR ts_column IS NULL THEN
            IF col_type NOT IN ('inet'::regtype, 'cidr'::regtype) THEN
                RAISE EXCEPTION 'column "%" of % is %, not inet', col, tbl, col_type
                    USING ERRCODE = '42804',
                    HINT = format('Convert it: ALTER TABLE %s ALTER COLUMN %I TYPE inet USING %I::inet;', tbl, col, col);
            END IF;
        END IF;
    END LOOP;
END $$;

-- The statement-level trigger that records the addresses of inserted rows. Arguments: the
-- address columns as an array literal ('{src_ip,dst_ip}') and, optionally, the event time
-- column. Create it with ip_inventory_attach(); it reads the new rows from the transition
-- table ip_inventory_new. Only rows that were really inserted are seen, so replaying events
-- with INSERT ... ON CONFLICT DO NOTHING does not count them again; a rolled-back insert
-- rolls its observations back with it.
CREATE FUNCTION ip_inventory_observe() RETURNS trigger LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp AS $$
BEGIN
    IF TG_LEVEL <> 'STATEMENT' OR TG_OP <> 'INSERT' OR TG_WHEN <> 'AFTER' THEN
        RAISE EXCEPTION 'ip_inventory_observe() must be an AFTER INSERT ... FOR EACH STATEMENT trigger'
            USING ERRCODE = '39P01', HINT = 'Create it with ip_inventory_attach().';
    END IF;
    EXECUTE ip_inventory_record_sql('ip_inventory_new', TG_ARGV[0]::text[], nullif(TG_ARGV[1], ''), NULL, false)
        USING coalesce(current_setting('ip_inventory.ingest_enrichment', true)::boolean, true);
    RETURN NULL;
END $$;

-- Creates (or replaces) the observe trigger on an event table.
CREATE FUNCTION ip_inventory_attach(tbl regclass, ip_columns text[], ts_column text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = @extschema@, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ip_inventory_check_columns(tbl, ip_columns, ts_column);
    PERFORM ip_inventory_detach(tbl);
    EXECUTE format(
        'CREATE TRIGGER ip_inventory_observe AFTER INSERT ON %s REFERENCING NEW TABLE AS ip_inventory_new '
        'FOR EACH STATEMENT EXECUTE FUNCTION ip_inventory_observe(%L, %L)',
        tbl, ip_columns::text, coalesce(ts_column, ''));
END $$;

CREATE FUNCTION ip_inventory_detach(tbl regclass) RETURNS void LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT FROM pg_trigger WHERE tgrelid = tbl AND tgname = 'ip_inventory_observe') THEN
        EXECUTE format('DROP TRIGGER ip_inventory_observe ON %s', tbl);
    END IF;
END $$;

CREATE VIEW ip_inventory_observed_tables AS
SELECT t.tgrelid::regclass AS event_table,
       split_part(encode(t.tgargs, 'escape'), '\000', 1)::text[] AS ip_columns,
       nullif(split_part(encode(t.tgargs, 'escape'), '\000', 2), '') AS ts_column,
       t.tgenabled <> 'D' AS enabled
FROM pg_trigger AS t
WHERE t.tgfoid = '@extschema@.ip_inventory_observe()'::regprocedure;

COMMENT ON FUNCTION ip_inventory_maxmind_columns(ip_enrichment) IS
    'The ip_inventory columns an ip_enrichment value fills (internal: shared by recording and ip_inventory_apply_maxmind).';
COMMENT ON FUNCTION ip_inventory_record_sql(text, text[], text, text, boolean) IS
    'Builds the statement that records observations of rows (internal: shared by the observe trigger and backfill).';
COMMENT ON FUNCTION ip_inventory_check_columns(regclass, text[], text) IS
    'Raises unless the table has these inet address columns and this timestamp column.';
COMMENT ON FUNCTION ip_inventory_observe() IS
    'AFTER INSERT FOR EACH STATEMENT trigger recording the addresses of inserted rows in ip_inventory (one aggregated upsert per statement). Arguments: address columns as an array literal, optional event time column. Create it with ip_inventory_attach().';
COMMENT ON FUNCTION ip_inventory_attach(regclass, text[], text) IS
    'Creates (or replaces) the ip_inventory_observe trigger on an event table, e.g. SELECT ip_inventory_attach(''raw_events'', ARRAY[''src_ip'', ''dst_ip''], ''event_ts'').';
COMMENT ON FUNCTION ip_inventory_detach(regclass) IS 'Drops the ip_inventory_observe trigger of an event table.';
COMMENT ON VIEW ip_inventory_observed_tables IS 'Event tables whose inserts are recorded in ip_inventory, with their address and time columns.';
