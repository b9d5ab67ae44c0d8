-- Recording observations: the event tables attached to the inventory, the trigger that
-- records their inserts, and the statement that writes aggregated observations into the
-- inventory, shared by the trigger and backfill (src/observe.rs reads and aggregates events).

-- The inventory columns an ip_enrichment value fills. One mapping for every writer: new rows
-- (recording) and re-enrichment (_ip_inventory_apply_maxmind). `maxmind_ts` is set only when
-- a MaxMind database was actually consulted; `maxmind_json` holds the fields without a column
-- (NULL when MaxMind gave none), built in one call (in SQL it was the costliest part of
-- recording and re-enrichment), and consumers reference it once: jsonb_set_lax(...,
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
           @extschema@._ip_inventory_maxmind_json(
               e.continent_code, e.registered_country_code, e.subdivision_code, e.postal_code,
               e.accuracy_radius, e.time_zone, e.is_anonymous_proxy, e.is_satellite_provider,
               e.is_anycast);
END;

-- The inventory's ISP and connection-type columns for an address: one row, all NULL when
-- neither the ISP nor the Connection-Type database is configured (or for NULL). Every writer
-- joins it beside _ip_inventory_maxmind_columns and _ip_inventory_anonymous.
CREATE FUNCTION @extschema@._ip_inventory_isp_columns(ip inet)
RETURNS TABLE (isp text, isp_organization text, mobile_country_code text,
               mobile_network_code text, connection_type text)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT i.isp, i.organization, i.mobile_country_code, i.mobile_network_code,
           @extschema@._ip_inventory_connection_type(ip)
    FROM @extschema@._ip_inventory_isp(ip) AS i;
END;

-- MaxMind's columns of a new inventory row: City and ASN (_ip_inventory_maxmind_columns), the
-- anonymizer flags and the ISP columns; no row for an address MaxMind does not serve, or for
-- NULL. The one form of every writer of new rows (_ip_inventory_record, _ip_inventory_add, and
-- on Citus the shard writer and ip_inventory_citus_flush), each of which joins it as
--     LEFT JOIN LATERAL (SELECT * FROM _ip_inventory_new_row_maxmind(
--         CASE WHEN <the row is new> THEN ip END) OFFSET 0) AS m ON true
-- Not strict, so the planner inlines it; the OFFSET 0 keeps it a subquery whose WHERE reads
-- only the outer row, a gate above the lookups: for a known address (NULL here) nothing runs.
-- Pulled up into the writer's join instead, the WHERE became a filter after the MaxMind
-- columns (jsonb_build_object among them) were built for every address (a quarter of the
-- trigger's time in batches of known addresses, docs/benchmarks.md; pg_tests writer_lookups).
CREATE FUNCTION @extschema@._ip_inventory_new_row_maxmind(ip inet)
RETURNS TABLE (
    geo_country text, geo_country_name text, geo_city text, geo_subdivision text,
    geo_latitude double precision, geo_longitude double precision, geo_network cidr,
    maxmind_build timestamptz, maxmind_asn_build timestamptz, maxmind_ts timestamptz,
    asn_number bigint, asn_org text, asn_network cidr, asn_source text, maxmind_json jsonb,
    is_anonymous boolean, is_anonymous_vpn boolean, is_hosting_provider boolean,
    is_public_proxy boolean, is_residential_proxy boolean, is_tor_exit_node boolean,
    isp text, isp_organization text, mobile_country_code text, mobile_network_code text,
    connection_type text)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT c.*, a.*, s.*
    FROM @extschema@._ip_inventory_maxmind(ip) AS e,
         @extschema@._ip_inventory_maxmind_columns(e) AS c,
         @extschema@._ip_inventory_anonymous(ip) AS a,
         @extschema@._ip_inventory_isp_columns(ip) AS s
    WHERE @extschema@._ip_inventory_maxmind_serves(@extschema@.ip_class(ip));
END;

-- An inventory row's first and last seen after more events: widened by them, or taken from
-- them when the row has no observation yet (added by cascade_refresh_now or the refresh
-- queue). The one rule of every writer (_ip_inventory_record, and on Citus the shard writer
-- and ip_inventory_citus_flush); IMMUTABLE because Citus allows nothing else in ON CONFLICT
-- DO UPDATE SET, and inlined by the planner.
CREATE FUNCTION @extschema@._ip_inventory_first_seen(observed bigint, kept timestamptz, seen timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN observed = 0 THEN seen ELSE LEAST(kept, seen) END;

CREATE FUNCTION @extschema@._ip_inventory_last_seen(observed bigint, kept timestamptz, seen timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN observed = 0 THEN seen ELSE GREATEST(kept, seen) END;

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
    new_ips inet[];
BEGIN
    WITH obs AS (
        SELECT o.ip, o.n, o.first_seen, o.last_seen
        FROM unnest(ips, observations, first_seen, last_seen) AS o(ip, n, first_seen, last_seen)),
    recorded AS (
        INSERT INTO @extschema@.ip_inventory AS inv (
            ip_address, first_seen_at, last_seen_at, observation_count, ip_class,
            geo_country, geo_country_name, geo_city, geo_subdivision, geo_latitude,
            geo_longitude, geo_network, maxmind_build, maxmind_asn_build, maxmind_ts,
            asn_number, asn_org, asn_network, asn_source, enrichment,
            is_anonymous, is_anonymous_vpn, is_hosting_provider, is_public_proxy,
            is_residential_proxy, is_tor_exit_node,
            isp, isp_organization, mobile_country_code, mobile_network_code, connection_type)
        SELECT o.ip, o.first_seen, o.last_seen, o.n, @extschema@.ip_class(o.ip),
               m.geo_country, m.geo_country_name, m.geo_city, m.geo_subdivision, m.geo_latitude,
               m.geo_longitude, m.geo_network, m.maxmind_build, m.maxmind_asn_build, m.maxmind_ts,
               m.asn_number, m.asn_org, m.asn_network, m.asn_source,
               jsonb_set_lax('{}', '{maxmind}', m.maxmind_json, true, 'delete_key'),
               m.is_anonymous, m.is_anonymous_vpn, m.is_hosting_provider, m.is_public_proxy,
               m.is_residential_proxy, m.is_tor_exit_node,
               m.isp, m.isp_organization, m.mobile_country_code, m.mobile_network_code, m.connection_type
        FROM obs AS o
        -- Only new addresses are enriched here. An explicit join, not NOT EXISTS in the
        -- lateral, whose join filter the planner may answer by hashing the whole inventory.
        LEFT JOIN @extschema@.ip_inventory AS cur ON cur.ip_address = o.ip
        LEFT JOIN LATERAL (
            SELECT * FROM @extschema@._ip_inventory_new_row_maxmind(
                CASE WHEN enrich AND cur.ip_address IS NULL THEN o.ip END)
            OFFSET 0 -- a gated subquery: see _ip_inventory_new_row_maxmind
        ) AS m ON true
        ORDER BY o.ip
        ON CONFLICT (ip_address) DO UPDATE SET
            observation_count = inv.observation_count + excluded.observation_count,
            first_seen_at = @extschema@._ip_inventory_first_seen(
                inv.observation_count, inv.first_seen_at, excluded.first_seen_at),
            last_seen_at = @extschema@._ip_inventory_last_seen(
                inv.observation_count, inv.last_seen_at, excluded.last_seen_at)
        RETURNING inv.ip_address AS ip, (xmax = 0) AS inserted, (xmax = 0 AND inv.maxmind_ts IS NOT NULL) AS enriched),
    totals AS (
        SELECT count(*) AS addresses, count(*) FILTER (WHERE inserted) AS new_addresses,
               count(*) FILTER (WHERE enriched) AS enriched,
               array_agg(ip) FILTER (WHERE inserted) AS new_ips,
               (SELECT coalesce(sum(n), 0)::bigint FROM obs) AS observations
        FROM recorded)
    SELECT t.addresses, t.new_addresses,
           @extschema@._ip_inventory_count_recorded(t.observations, t.new_addresses, t.enriched), t.new_ips
      INTO addresses, new_addresses, counted, new_ips
      FROM totals AS t;
    -- New rows get their tags (sql/tags.sql); known rows' enrichment did not change.
    IF new_ips IS NOT NULL THEN
        PERFORM @extschema@._ip_inventory_tag(new_ips);
    END IF;
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
       o.attached_by, o.attached_at, o.enriched_views
FROM @extschema@.ip_inventory_observed AS o
JOIN pg_catalog.pg_class AS c ON c.oid = o.event_table
LEFT JOIN pg_catalog.pg_trigger AS t
       ON t.tgrelid = o.event_table AND t.tgname = 'ip_inventory_observe'
      AND t.tgfoid = '@extschema@.ip_inventory_observe()'::regprocedure;

COMMENT ON FUNCTION @extschema@._ip_inventory_maxmind_columns(@extschema@.ip_enrichment) IS
    'The ip_inventory columns an ip_enrichment value fills (internal: shared by recording and re-enrichment).';
COMMENT ON FUNCTION @extschema@._ip_inventory_isp_columns(inet) IS
    'The ip_inventory ISP and connection-type columns of an address, one row (internal: shared by every MaxMind writer).';
COMMENT ON FUNCTION @extschema@._ip_inventory_new_row_maxmind(inet) IS
    'MaxMind''s columns of a new ip_inventory row: City, ASN, anonymizer and ISP; no row unless MaxMind serves the address (internal: every writer of new rows).';
COMMENT ON FUNCTION @extschema@._ip_inventory_first_seen(bigint, timestamptz, timestamptz) IS
    'An inventory row''s first seen after more events: the earlier of the two, or the events'' when the row has no observation yet (internal: every writer''s rule).';
COMMENT ON FUNCTION @extschema@._ip_inventory_last_seen(bigint, timestamptz, timestamptz) IS
    'An inventory row''s last seen after more events: the later of the two, or the events'' when the row has no observation yet (internal: every writer''s rule).';
COMMENT ON FUNCTION @extschema@._ip_inventory_record(inet[], bigint[], timestamptz[], timestamptz[], boolean) IS
    'Writes aggregated observations into ip_inventory (internal: shared by the observe trigger and backfill).';
COMMENT ON FUNCTION @extschema@._ip_inventory_check_columns(regclass, text[], text) IS
    'Raises unless the table has these inet address columns and this timestamp column (internal).';
COMMENT ON FUNCTION @extschema@.ip_inventory_observe() IS
    'AFTER INSERT FOR EACH STATEMENT trigger recording the addresses of inserted rows of an attached table in ip_inventory (one aggregated upsert per statement). Created by ip_inventory_attach(); reads the columns from ip_inventory_observed.';
COMMENT ON VIEW @extschema@.ip_inventory_observed_tables IS
    'Event tables whose inserts are recorded in ip_inventory (ip_inventory_attach), with their address and time columns, whether the trigger is enabled, who attached them and when, and their enriched views (ip_inventory_enriched_view).';

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_record(inet[], bigint[], timestamptz[], timestamptz[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_observe() FROM PUBLIC;

-- Enriched events for BI (ip_inventory_enriched_view, src/inventory/observe.rs): the SQL of
-- the views over one attached event table. Builds text only; the views are created as the
-- event table's owner. Every name is quoted and qualified, every operator and type qualified:
-- a view stores what its SQL resolved to when it was created.
--
-- Per address column the inventory's columns get a prefix: the column name without a trailing
-- `_ip`, `_addr` or `_address` (src_ip: src_country), or the whole column name when nothing is
-- left or two columns would get the same prefix.
CREATE FUNCTION @extschema@._ip_inventory_enriched_view_sql(
    tbl regclass, ip_columns text[], ts_column text, view_schema text, view_name text)
RETURNS TABLE (kind text, relname text, ddl text[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ext text := (SELECT quote_ident(n.nspname) FROM pg_extension AS e
                 JOIN pg_namespace AS n ON n.oid = e.extnamespace WHERE e.extname = 'ip_inventory');
    tbl_name text := (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class AS c
                      JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.oid = tbl);
    event_cols text[];
    prefixes text[] := '{}';
    p text;
    col text;
    i int;
    -- (suffix, inventory expression, comment) of each enriched column.
    fields text[][] := ARRAY[
        ARRAY['country', 'geo_country', 'ISO country code (MaxMind City)'],
        ARRAY['country_name', 'geo_country_name', 'country name (MaxMind City, in ip_inventory.language)'],
        ARRAY['city', 'geo_city', 'city name (MaxMind City)'],
        ARRAY['latitude', 'geo_latitude', 'latitude (MaxMind City)'],
        ARRAY['longitude', 'geo_longitude', 'longitude (MaxMind City)'],
        ARRAY['asn', 'asn_number', 'autonomous system number (MaxMind ASN or Team Cymru)'],
        ARRAY['asn_org', 'asn_org', 'autonomous system organisation (MaxMind ASN or Team Cymru)'],
        ARRAY['greynoise_classification', '%s.enrichment OPERATOR(pg_catalog.->) ''greynoise'' OPERATOR(pg_catalog.->>) ''classification''',
              'GreyNoise classification (benign, malicious, unknown)'],
        ARRAY['greynoise_noise', 'is_scanner', 'GreyNoise: seen scanning the internet (noise)'],
        ARRAY['greynoise_riot', '(%s.enrichment OPERATOR(pg_catalog.->) ''greynoise'' OPERATOR(pg_catalog.->>) ''riot'')::pg_catalog.bool',
              'GreyNoise: a common business service (RIOT)'],
        ARRAY['greynoise_name', '%s.enrichment OPERATOR(pg_catalog.->) ''greynoise'' OPERATOR(pg_catalog.->>) ''name''',
              'GreyNoise: name of the actor or service'],
        ARRAY['rdns_name', '%s.enrichment OPERATOR(pg_catalog.->) ''rdns'' OPERATOR(pg_catalog.->>) ''name''',
              'reverse DNS name (PTR)'],
        ARRAY['is_anonymous', 'is_anonymous', 'MaxMind Anonymous-IP: any anonymizer'],
        ARRAY['is_anonymous_vpn', 'is_anonymous_vpn', 'MaxMind Anonymous-IP: VPN provider'],
        ARRAY['is_hosting_provider', 'is_hosting_provider', 'MaxMind Anonymous-IP: hosting provider'],
        ARRAY['is_public_proxy', 'is_public_proxy', 'MaxMind Anonymous-IP: public proxy'],
        ARRAY['is_residential_proxy', 'is_residential_proxy', 'MaxMind Anonymous-IP: residential proxy'],
        ARRAY['is_tor_exit_node', 'is_tor_exit_node', 'MaxMind Anonymous-IP: Tor exit node'],
        ARRAY['isp', 'isp', 'internet service provider (MaxMind ISP)'],
        ARRAY['isp_organization', 'isp_organization', 'organisation the address is assigned to (MaxMind ISP)'],
        ARRAY['mobile_country_code', 'mobile_country_code', 'mobile country code, MCC (MaxMind ISP)'],
        ARRAY['mobile_network_code', 'mobile_network_code', 'mobile network code, MNC (MaxMind ISP)'],
        ARRAY['connection_type', 'connection_type', 'connection type: Cable/DSL, Cellular, Corporate, Satellite, Dialup (MaxMind Connection-Type)'],
        ARRAY['tags', 'tags', 'tags of the tag rules the address matches (ip_inventory_tag_rules; empty: none)'],
        ARRAY['tag_confidence', 'tag_confidence', 'confidence of each tag, {tag: confidence}'],
        ARRAY['first_seen', 'first_seen_at', 'earliest event time of the address in all attached tables'],
        ARRAY['last_seen', 'last_seen_at', 'latest event time of the address in all attached tables']];
    select_list text[] := '{}';
    joins text := '';
    comments text[] := '{}';
    out_cols text[];
    v text;
    qv text;
    ts_type regtype;
    day_expr text;
    daily text;
    by_key text;
    event_tags text;
    ev text;
    tagged text;
    day_cols text;
    that_day text;
BEGIN
    IF ext IS NULL OR tbl_name IS NULL THEN
        RAISE EXCEPTION 'no such table or extension' USING ERRCODE = '42P01';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_namespace AS n WHERE n.nspname = view_schema) THEN
        RAISE EXCEPTION 'schema "%" does not exist', left(view_schema, 64) USING ERRCODE = '3F000';
    END IF;
    IF view_name IS NULL OR view_name = '' OR octet_length(view_name || '_daily_country') > 63 THEN
        RAISE EXCEPTION 'view name "%" is empty or too long', left(view_name, 64) USING ERRCODE = '42622',
            HINT = 'Views are named <name>, <name>_daily_country, <name>_daily_asn, <name>_daily_tag and <name>_tag_report: give a name of at most 49 bytes.';
    END IF;
    qv := format('%I.%I', view_schema, view_name);
    ev := qv;
    event_cols := ARRAY(SELECT a.attname::text FROM pg_attribute AS a
                        WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum);
    -- Prefixes.
    FOREACH col IN ARRAY ip_columns LOOP
        p := regexp_replace(col, '_(ip|addr|address)$', '');
        IF p = '' OR p = col THEN
            p := col;
        END IF;
        prefixes := prefixes || p;
    END LOOP;
    FOR i IN 1 .. cardinality(ip_columns) LOOP
        IF (SELECT count(*) FROM unnest(prefixes) AS x WHERE x = prefixes[i]) > 1 THEN
            prefixes[i] := ip_columns[i];
        END IF;
    END LOOP;
    -- The enriched view: every event column, then each address column's inventory columns.
    out_cols := event_cols;
    FOREACH col IN ARRAY event_cols LOOP
        select_list := select_list || format('e.%I', col);
        comments := comments || format('COMMENT ON COLUMN %s.%I IS %L', qv, col,
            coalesce(col_description(tbl, (SELECT a.attnum FROM pg_attribute AS a WHERE a.attrelid = tbl AND a.attname = col)),
                     format('Column %s of the event table %s.', col, tbl_name)));
    END LOOP;
    FOR i IN 1 .. cardinality(ip_columns) LOOP
        joins := joins || format(
            ' LEFT JOIN %s.ip_inventory AS i%s ON i%s.ip_address OPERATOR(pg_catalog.=) %s.ip_canonical(e.%I::pg_catalog.inet)',
            ext, i, i, ext, ip_columns[i]);
        FOR f IN 1 .. array_length(fields, 1) LOOP
            v := prefixes[i] || '_' || fields[f][1];
            IF octet_length(v) > 63 THEN
                RAISE EXCEPTION 'column name "%" of the enriched view is too long', left(v, 64) USING ERRCODE = '42622',
                    HINT = 'Rename the address column to a shorter name.';
            END IF;
            IF v = ANY (out_cols) THEN
                RAISE EXCEPTION 'the enriched view of % would have two columns named "%"', tbl_name, left(v, 64)
                    USING ERRCODE = '42701',
                    DETAIL = format('Address column %s gets the prefix %s; the event table or another address column already gives %s.',
                                    ip_columns[i], prefixes[i], v),
                    HINT = 'Rename the event column.';
            END IF;
            out_cols := out_cols || v;
            select_list := select_list || (CASE WHEN strpos(fields[f][2], '%s') > 0
                                                THEN format(fields[f][2], 'i' || i)
                                                ELSE format('i%s.%I', i, fields[f][2]) END
                                           || format(' AS %I', v));
            comments := comments || format('COMMENT ON COLUMN %s.%I IS %L', qv, v,
                format('%s of %s, from %s.ip_inventory (NULL when unknown).',
                       upper(left(fields[f][3], 1)) || substr(fields[f][3], 2), ip_columns[i], ext));
        END LOOP;
    END LOOP;
    -- Event tags (event rules, sql/tags.sql), last: a rules change replaces the view with
    -- CREATE OR REPLACE VIEW, which may add columns only at the end; the rules are compiled
    -- in as literals, so the view must be replaced when they change
    -- (_ip_inventory_tag_rules_changed does).
    event_tags := @extschema@._ip_inventory_tag_event_tags_sql(tbl, 'i1');
    FOR i IN 1 .. cardinality(ip_columns) LOOP
        FOREACH v IN ARRAY ARRAY[prefixes[i] || '_event_tags', prefixes[i] || '_event_tag_confidence'] LOOP
            IF octet_length(v) > 63 THEN
                RAISE EXCEPTION 'column name "%" of the enriched view is too long', left(v, 64) USING ERRCODE = '42622',
                    HINT = 'Rename the address column to a shorter name.';
            END IF;
            IF v = ANY (out_cols) THEN
                RAISE EXCEPTION 'the enriched view of % would have two columns named "%"', tbl_name, left(v, 64)
                    USING ERRCODE = '42701', HINT = 'Rename the event column.';
            END IF;
            out_cols := out_cols || v;
        END LOOP;
        IF event_tags IS NULL THEN
            select_list := select_list || format('''{}''::pg_catalog.text[] AS %I', prefixes[i] || '_event_tags')
                                       || format('''{}''::pg_catalog.jsonb AS %I', prefixes[i] || '_event_tag_confidence');
        ELSE
            joins := joins || format(' LEFT JOIN LATERAL %s AS et%s ON true',
                                     @extschema@._ip_inventory_tag_event_tags_sql(tbl, 'i' || i), i);
            select_list := select_list || format('et%s.tags AS %I', i, prefixes[i] || '_event_tags')
                                       || format('et%s.tag_confidence AS %I', i, prefixes[i] || '_event_tag_confidence');
        END IF;
        comments := comments
            || format('COMMENT ON COLUMN %s.%I IS %L', qv, prefixes[i] || '_event_tags',
                      format('Tags of the event rules of this table (ip_inventory_tag_rules.event_table) that the event and its %s match (empty: none); per event, not materialized.', ip_columns[i]))
            || format('COMMENT ON COLUMN %s.%I IS %L', qv, prefixes[i] || '_event_tag_confidence',
                      format('Confidence of each event tag of %s, {tag: confidence}.', ip_columns[i]));
    END LOOP;
    kind := 'enriched';
    relname := view_name;
    ddl := ARRAY[format('CREATE OR REPLACE VIEW %s WITH (security_invoker = true) AS SELECT %s FROM %s AS e%s',
                        qv, array_to_string(select_list, ', '), tbl_name, joins),
                 format('COMMENT ON VIEW %s IS %L', qv,
                        format('Events of %s joined to %s.ip_inventory for each address column (%s). security_invoker: readers need SELECT on the event table and on ip_inventory. Created by ip_inventory_enriched_view(), dropped by ip_inventory_detach().',
                               tbl_name, ext, array_to_string(ip_columns, ', ')))]
           || comments;
    RETURN NEXT;
    -- The tag views (by tag, daily by tag) read the enriched view, not the event table: the
    -- event rules are compiled into it alone and it is replaced (CREATE OR REPLACE, same
    -- columns) when they change, so the views over it follow without being rebuilt, and a
    -- reader's rights are checked on it, then (security_invoker) on the events and the
    -- inventory. Per event and address column, its tags are those of the address (<p>_tags)
    -- and of the event rules (<p>_event_tags), a tag in both counted once at its highest
    -- confidence.
    IF ts_column IS NOT NULL THEN
        SELECT a.atttypid::regtype INTO ts_type FROM pg_attribute AS a
        WHERE a.attrelid = tbl AND a.attname = ts_column AND NOT a.attisdropped;
        day_expr := CASE WHEN ts_type = 'timestamptz'::regtype
                         THEN format('pg_catalog.timezone(''UTC'', e.%I)::pg_catalog.date', ts_column)
                         ELSE format('e.%I::pg_catalog.date', ts_column) END;
    END IF;
    tagged := '';
    FOR i IN 1 .. cardinality(ip_columns) LOOP
        tagged := tagged || CASE WHEN i > 1 THEN ' UNION ALL ' ELSE '' END || format(
            'SELECT %s AS day, %L::pg_catalog.text AS ip_column, t.tag, t.confidence, t.by_address, t.by_event_rule,'
            ' %s.ip_canonical(e.%I::pg_catalog.inet) AS ip'
            ' FROM %s AS e LEFT JOIN LATERAL (SELECT u.tag, pg_catalog.max(u.confidence) AS confidence,'
            ' pg_catalog.bool_or(u.by_address) AS by_address, pg_catalog.bool_or(NOT u.by_address) AS by_event_rule'
            ' FROM (SELECT a.tag, (e.%I OPERATOR(pg_catalog.->>) a.tag)::pg_catalog.numeric, true FROM pg_catalog.unnest(e.%I) AS a(tag)'
            ' UNION ALL SELECT b.tag, (e.%I OPERATOR(pg_catalog.->>) b.tag)::pg_catalog.numeric, false FROM pg_catalog.unnest(e.%I) AS b(tag))'
            ' AS u(tag, confidence, by_address) GROUP BY u.tag) AS t ON true'
            ' WHERE e.%I IS NOT NULL',
            coalesce(day_expr, 'NULL::pg_catalog.date'), ip_columns[i], ext, ip_columns[i], ev,
            prefixes[i] || '_tag_confidence', prefixes[i] || '_tags',
            prefixes[i] || '_event_tag_confidence', prefixes[i] || '_event_tags', ip_columns[i]);
    END LOOP;
    -- Daily views: events and distinct addresses per day and address column, by country and
    -- by ASN (by tag below). Only with an event time.
    FOREACH by_key IN ARRAY ARRAY['country', 'asn'] LOOP
        EXIT WHEN ts_column IS NULL;
        daily := '';
        FOR i IN 1 .. cardinality(ip_columns) LOOP
            daily := daily || CASE WHEN i > 1 THEN ' UNION ALL ' ELSE '' END || format(
                'SELECT %s AS day, %L::pg_catalog.text AS ip_column, %s, %s.ip_canonical(e.%I::pg_catalog.inet) AS ip'
                ' FROM %s AS e LEFT JOIN %s.ip_inventory AS i ON i.ip_address OPERATOR(pg_catalog.=) %s.ip_canonical(e.%I::pg_catalog.inet)'
                ' WHERE e.%I IS NOT NULL AND e.%I IS NOT NULL',
                day_expr, ip_columns[i],
                CASE by_key WHEN 'country' THEN 'i.geo_country AS country, i.geo_country_name AS country_name'
                            ELSE 'i.asn_number AS asn, i.asn_org AS asn_org' END,
                ext, ip_columns[i], tbl_name, ext, ext, ip_columns[i], ip_columns[i], ts_column);
        END LOOP;
        relname := view_name || '_daily_' || by_key;
        kind := 'daily_' || by_key;
        qv := format('%I.%I', view_schema, relname);
        ddl := ARRAY[
            format('CREATE VIEW %s WITH (security_invoker = true) AS SELECT d.day, d.ip_column, d.%s, %s AS %s,'
                   ' pg_catalog.count(*) AS events, pg_catalog.count(DISTINCT d.ip) AS addresses FROM (%s) AS d GROUP BY d.day, d.ip_column, d.%s',
                   qv, by_key,
                   CASE by_key WHEN 'country' THEN 'pg_catalog.max(d.country_name)' ELSE 'pg_catalog.max(d.asn_org)' END,
                   CASE by_key WHEN 'country' THEN 'country_name' ELSE 'asn_org' END,
                   daily, by_key),
            format('COMMENT ON VIEW %s IS %L', qv,
                   format('Events of %s and distinct addresses per day (UTC for timestamptz) and address column, by %s (from %s.ip_inventory). security_invoker: readers need SELECT on the event table and on ip_inventory.',
                          tbl_name, CASE by_key WHEN 'country' THEN 'country' ELSE 'autonomous system' END, ext)),
            format('COMMENT ON COLUMN %s.day IS %L', qv,
                   format('Day of the event (%s; a timestamptz is taken in UTC).', ts_column)),
            format('COMMENT ON COLUMN %s.ip_column IS %L', qv, 'The address column counted (one of ' || array_to_string(ip_columns, ', ') || ').'),
            CASE by_key WHEN 'country'
                THEN format('COMMENT ON COLUMN %s.country IS %L', qv, 'ISO country code of the addresses (MaxMind City; NULL: unknown).')
                ELSE format('COMMENT ON COLUMN %s.asn IS %L', qv, 'Autonomous system number of the addresses (NULL: unknown).') END,
            CASE by_key WHEN 'country'
                THEN format('COMMENT ON COLUMN %s.country_name IS %L', qv, 'Country name (MaxMind City, in ip_inventory.language).')
                ELSE format('COMMENT ON COLUMN %s.asn_org IS %L', qv, 'Autonomous system organisation.') END,
            format('COMMENT ON COLUMN %s.events IS %L', qv, 'Events that day with an address in this column in this ' || by_key || '.'),
            format('COMMENT ON COLUMN %s.addresses IS %L', qv, 'Distinct addresses (canonical, as ip_inventory keys them) that day in this column in this ' || by_key || '.')];
        RETURN NEXT;
    END LOOP;
    -- By tag: an event counts once under each of its tags (of its address or of the event
    -- rules), and once untagged (tag NULL) when it has none. Per day (with an event time),
    -- and over the whole table: the per-table report of events and average confidence by
    -- tag, event rules included. Views beside the others, not functions: they have the same
    -- owner, grants and lifecycle as the enriched view, and their reader's rights are checked
    -- the same way.
    FOREACH by_key IN ARRAY ARRAY['daily_tag', 'tag_report'] LOOP
        CONTINUE WHEN by_key = 'daily_tag' AND ts_column IS NULL;
        day_cols := CASE by_key WHEN 'daily_tag' THEN 'd.day, ' ELSE '' END;
        that_day := CASE by_key WHEN 'daily_tag' THEN ' that day' ELSE '' END;
        relname := view_name || '_' || by_key;
        kind := by_key;
        qv := format('%I.%I', view_schema, relname);
        ddl := ARRAY[
            format('CREATE VIEW %s WITH (security_invoker = true) AS SELECT %sd.ip_column, d.tag,'
                   ' pg_catalog.count(*) AS events, pg_catalog.count(DISTINCT d.ip) AS addresses,'
                   ' pg_catalog.round(pg_catalog.avg(d.confidence), 3) AS avg_confidence,'
                   ' pg_catalog.count(*) FILTER (WHERE d.by_address) AS address_tag_events,'
                   ' pg_catalog.count(*) FILTER (WHERE d.by_event_rule) AS event_rule_events'
                   ' FROM (%s) AS d%s GROUP BY %sd.ip_column, d.tag',
                   qv, day_cols, tagged,
                   CASE by_key WHEN 'daily_tag' THEN ' WHERE d.day IS NOT NULL' ELSE '' END, day_cols),
            format('COMMENT ON VIEW %s IS %L', qv,
                   format('Events of %s and distinct addresses %s: the tags of the address (tag rules, %s.ip_inventory.tags) and of the event rules of the table (%s''s event tag columns); tag NULL: events with neither. An event counts under each of its tags. security_invoker: readers need SELECT on it, on %s, on the event table and on ip_inventory.',
                          tbl_name,
                          CASE by_key WHEN 'daily_tag' THEN 'per day (UTC for timestamptz) and address column, by tag'
                                      ELSE 'per address column and tag, with the tag''s average confidence' END,
                          ext, ev, ev))]
            || CASE by_key WHEN 'daily_tag'
                   THEN ARRAY[format('COMMENT ON COLUMN %s.day IS %L', qv, format('Day of the event (%s; a timestamptz is taken in UTC).', ts_column))]
                   ELSE '{}'::text[] END
            || ARRAY[
            format('COMMENT ON COLUMN %s.ip_column IS %L', qv, 'The address column counted (one of ' || array_to_string(ip_columns, ', ') || ').'),
            format('COMMENT ON COLUMN %s.tag IS %L', qv, 'A tag of the address (address rules) or of the event (event rules) in this column (ip_inventory_tag_rules; NULL: events with no tag).'),
            format('COMMENT ON COLUMN %s.events IS %L', qv, 'Events' || that_day || ' with an address in this column and this tag.'),
            format('COMMENT ON COLUMN %s.addresses IS %L', qv, 'Distinct addresses (canonical)' || that_day || ' in this column among these events.'),
            format('COMMENT ON COLUMN %s.avg_confidence IS %L', qv, 'Average confidence of the tag over these events (an event with the tag from both kinds of rule: the higher).'),
            format('COMMENT ON COLUMN %s.address_tag_events IS %L', qv, 'Of these events, those whose address has the tag (address rules).'),
            format('COMMENT ON COLUMN %s.event_rule_events IS %L', qv, 'Of these events, those an event rule of the table gave the tag.')];
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION @extschema@._ip_inventory_enriched_view_sql(regclass, text[], text, text, text) IS
    'The SQL of the enriched, daily and tag report views of an attached event table (internal: ip_inventory_enriched_view).';
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_enriched_view_sql(regclass, text[], text, text, text) FROM PUBLIC;
