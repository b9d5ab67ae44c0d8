-- Recording observations: the event tables attached to the inventory, the trigger that
-- records their inserts, and the statement that writes aggregated observations into the
-- inventory, shared by the trigger and backfill (src/observe.rs reads and aggregates events).

-- The inventory columns an ip_enrichment value fills. One mapping for every writer: new rows
-- (recording) and re-enrichment (_ip_inventory_apply_maxmind). `maxmind_ts` is set only when
-- a MaxMind database was actually consulted; `maxmind_json` holds the fields without a column
-- (NULL when MaxMind gave none). Building it is the costliest part of recording and
-- re-enrichment (~2.5 µs a row), so consumers reference it once: jsonb_set_lax(...,
-- 'delete_key') stores it or removes a stale one in one expression.
CREATE FUNCTION @extschema@._ip_inventory_maxmind_columns(e @extschema@.ip_enrichment)
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

-- Writes observations (one entry per distinct address, in address order, so that concurrent
-- recorders lock rows in the same order and cannot deadlock) into the inventory: appearances
-- are added, first and last seen widened. New public addresses are enriched from MaxMind
-- inline when `enrich`; existing rows only get their observation columns updated. Counts what
-- it wrote for ip_inventory_stats (at commit). Runs as its caller: the observe trigger (as
-- the extension's owner) and backfill (as the job's runner).
CREATE FUNCTION @extschema@._ip_inventory_record(
    ips inet[], observations bigint[], first_seen timestamptz[], last_seen timestamptz[], enrich boolean,
    OUT addresses bigint, OUT new_addresses bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    counted bigint;
BEGIN
    WITH obs AS (
        SELECT o.ip, o.n, o.first_seen, o.last_seen
        FROM unnest(ips, observations, first_seen, last_seen) AS o(ip, n, first_seen, last_seen)),
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
        -- lateral, whose join filter the planner may answer by hashing the whole inventory.
        -- The filter below runs after the lookup, so the CASE spares the lookup for known
        -- addresses (the function is strict).
        LEFT JOIN @extschema@.ip_inventory AS cur ON cur.ip_address = o.ip
        LEFT JOIN LATERAL (
            SELECT c.* FROM @extschema@._ip_inventory_maxmind(
                                CASE WHEN enrich AND cur.ip_address IS NULL THEN o.ip END) AS e,
                            @extschema@._ip_inventory_maxmind_columns(e) AS c
            WHERE enrich AND cur.ip_address IS NULL AND @extschema@._ip_inventory_maxmind_serves(@extschema@.ip_class(o.ip))
        ) AS m ON true
        ORDER BY o.ip
        -- A row added with no observation (cascade_refresh_now, the refresh queue) takes its
        -- first and last seen from its first events.
        ON CONFLICT (ip_address) DO UPDATE SET
            observation_count = inv.observation_count + excluded.observation_count,
            first_seen_at = CASE WHEN inv.observation_count = 0 THEN excluded.first_seen_at
                                 ELSE LEAST(inv.first_seen_at, excluded.first_seen_at) END,
            last_seen_at = CASE WHEN inv.observation_count = 0 THEN excluded.last_seen_at
                                ELSE GREATEST(inv.last_seen_at, excluded.last_seen_at) END
        RETURNING (xmax = 0) AS inserted, (xmax = 0 AND inv.maxmind_ts IS NOT NULL) AS enriched),
    totals AS (
        SELECT count(*) AS addresses, count(*) FILTER (WHERE inserted) AS new_addresses,
               count(*) FILTER (WHERE enriched) AS enriched,
               (SELECT coalesce(sum(n), 0)::bigint FROM obs) AS observations
        FROM recorded)
    SELECT t.addresses, t.new_addresses,
           @extschema@._ip_inventory_count_recorded(t.observations, t.new_addresses, t.enriched)
      INTO addresses, new_addresses, counted
      FROM totals AS t;
END $$;

-- Checks that a table can be observed with these columns; raises otherwise.
CREATE FUNCTION @extschema@._ip_inventory_check_columns(tbl regclass, ip_columns text[], ts_column text)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    col text;
    col_type regtype;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'no table given' USING ERRCODE = '22004';
    END IF;
    IF (SELECT c.relnamespace FROM pg_class AS c WHERE c.oid = tbl)
       = (SELECT e.extnamespace FROM pg_extension AS e WHERE e.extname = 'ip_inventory')
       AND EXISTS (SELECT FROM pg_depend AS d WHERE d.classid = 'pg_class'::regclass AND d.objid = tbl
                   AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e') THEN
        RAISE EXCEPTION '% belongs to ip_inventory and cannot be observed', tbl USING ERRCODE = '22023';
    END IF;
    IF ip_columns IS NULL OR cardinality(ip_columns) = 0 THEN
        RAISE EXCEPTION 'no address columns given for %', tbl USING ERRCODE = '22023',
            HINT = 'Name the inet columns holding addresses, e.g. ARRAY[''src_ip'', ''dst_ip''].';
    END IF;
    IF array_position(ip_columns, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'address columns % hold a NULL', left(ip_columns::text, 200) USING ERRCODE = '22004';
    END IF;
    IF cardinality(ip_columns) <> (SELECT count(DISTINCT c) FROM unnest(ip_columns) AS c) THEN
        RAISE EXCEPTION 'address columns % name a column twice', left(ip_columns::text, 200) USING ERRCODE = '22023';
    END IF;
    FOREACH col IN ARRAY ip_columns || CASE WHEN ts_column IS NULL THEN '{}'::text[] ELSE ARRAY[ts_column] END LOOP
        SELECT a.atttypid::regtype INTO col_type FROM pg_attribute AS a
        WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of % does not exist', left(col, 64), tbl USING ERRCODE = '42703';
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

-- The statement-level trigger that records the addresses of inserted rows (src/observe.rs).
-- ip_inventory_attach() creates it; the columns come from ip_inventory_observed, never from the
-- trigger's arguments, and a table that is not attached records nothing. SECURITY DEFINER:
-- recording writes the shared inventory, which inserting roles need no privilege on; it reads
-- only the transition table, in columns of built-in types it checks at every firing. Only
-- rows that were really inserted are seen, so replaying events with INSERT ... ON CONFLICT DO
-- NOTHING does not count them again; a rolled-back insert rolls its observations back with it.
CREATE FUNCTION @extschema@.ip_inventory_observe() RETURNS trigger
LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ip_inventory_observe_wrapper';

CREATE VIEW @extschema@.ip_inventory_observed_tables AS
SELECT o.event_table, o.ip_columns, o.ts_column,
       coalesce(t.tgenabled <> 'D', false) AS enabled,
       o.attached_by, o.attached_at
FROM @extschema@.ip_inventory_observed AS o
JOIN pg_catalog.pg_class AS c ON c.oid = o.event_table
LEFT JOIN pg_catalog.pg_trigger AS t
       ON t.tgrelid = o.event_table AND t.tgname = 'ip_inventory_observe'
      AND t.tgfoid = '@extschema@.ip_inventory_observe()'::regprocedure;

COMMENT ON FUNCTION @extschema@._ip_inventory_maxmind_columns(@extschema@.ip_enrichment) IS
    'The ip_inventory columns an ip_enrichment value fills (internal: shared by recording and re-enrichment).';
COMMENT ON FUNCTION @extschema@._ip_inventory_record(inet[], bigint[], timestamptz[], timestamptz[], boolean) IS
    'Writes aggregated observations into ip_inventory (internal: shared by the observe trigger and backfill).';
COMMENT ON FUNCTION @extschema@._ip_inventory_check_columns(regclass, text[], text) IS
    'Raises unless the table has these inet address columns and this timestamp column (internal).';
COMMENT ON FUNCTION @extschema@.ip_inventory_observe() IS
    'AFTER INSERT FOR EACH STATEMENT trigger recording the addresses of inserted rows of an attached table in ip_inventory (one aggregated upsert per statement). Created by ip_inventory_attach(); reads the columns from ip_inventory_observed.';
COMMENT ON VIEW @extschema@.ip_inventory_observed_tables IS
    'Event tables whose inserts are recorded in ip_inventory (ip_inventory_attach), with their address and time columns, whether the trigger is enabled, who attached them and when.';

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_record(inet[], bigint[], timestamptz[], timestamptz[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_observe() FROM PUBLIC;
