-- Citus: ip_inventory on a coordinator and workers (docs/scaling.md). Nothing here runs on a
-- single node: every function below first checks that Citus is loaded in this database and
-- that the inventory is distributed, and the two tables stay empty.
--
-- The layout (ip_inventory_distribute): ip_inventory is distributed by ip_address; event
-- tables are distributed by their source address and colocated with it, so an event and the
-- inventory row of its source address live in shards of the same range on the same node.
-- ip_inventory_citus_queue is colocated too; ip_inventory_citus_observed is a reference table
-- (every node has all rows). The other tables (jobs, failures, quota, observed) stay local
-- to each node: the jobs of a node are its shards' jobs, and the network refresh with its
-- failures and the GreyNoise quota runs on the coordinator only.
--
-- Recording on a worker: Citus fires the observe trigger on each shard of an event table,
-- inside the worker's part of the distributed transaction. Addresses whose inventory row is
-- in the colocated inventory shard (the distribution column's, always) are written there
-- directly; others (e.g. destination addresses) are written to the colocated queue shard,
-- on the same node and in the same transaction. ip_inventory_citus_flush() on the coordinator
-- moves the queue into the inventory in one distributed transaction (DELETE ... RETURNING,
-- then the upsert): every inserted event is counted once, either way.

-- Observations waiting to be written into an inventory shard on another node. shard_key is
-- the distribution column: an address of the shard range the row was written in, so the row
-- sits where Citus expects it.
CREATE TABLE @extschema@.ip_inventory_citus_queue (
    shard_key    inet NOT NULL,
    ip           inet NOT NULL,
    observations bigint NOT NULL CHECK (observations > 0),
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    enrich       boolean NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory_citus_queue', '');
COMMENT ON TABLE @extschema@.ip_inventory_citus_queue IS
    'Citus only: observations recorded on a worker for addresses whose inventory row is in a shard of another range; ip_inventory_citus_flush() moves them into ip_inventory. Empty on a single node.';

-- The attached distributed event tables, by name (a regclass is an OID, which differs from
-- node to node): a reference table, so a shard's trigger on any worker reads its columns
-- locally, and attach/detach change it in their own distributed transaction.
CREATE TABLE @extschema@.ip_inventory_citus_observed (
    event_table text PRIMARY KEY,
    ip_columns  text[] NOT NULL CHECK (cardinality(ip_columns) > 0),
    ts_column   text
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory_citus_observed', '');
COMMENT ON TABLE @extschema@.ip_inventory_citus_observed IS
    'Citus only: the attached distributed event tables (schema-qualified names) and their columns, on every node (a reference table). Written by ip_inventory_attach/ip_inventory_detach. Empty on a single node.';

-- Whether Citus is loaded in this database and the inventory distributed.
CREATE FUNCTION @extschema@._ip_inventory_citus_distributed() RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT FROM pg_catalog.pg_dist_partition AS p
                   WHERE p.logicalrelid = '@extschema@.ip_inventory'::regclass);
END $$;

-- Whether this node is the coordinator (Citus' group 0), or a single node.
CREATE FUNCTION @extschema@._ip_inventory_citus_on_coordinator() RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
        RETURN true;
    END IF;
    RETURN coalesce((SELECT g.groupid = 0 FROM pg_catalog.pg_dist_local_group AS g), true);
END $$;

-- Raises unless Citus is loaded, the inventory is distributed and this is the coordinator.
CREATE FUNCTION @extschema@._ip_inventory_citus_require(what text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT @extschema@._ip_inventory_citus_distributed() THEN
        RAISE EXCEPTION '%: ip_inventory is not distributed with Citus in this database', what
            USING ERRCODE = '55000', HINT = 'On the Citus coordinator: SELECT ip_inventory_distribute();';
    END IF;
    IF NOT @extschema@._ip_inventory_citus_on_coordinator() THEN
        RAISE EXCEPTION '%: run it on the Citus coordinator, not on a worker', what USING ERRCODE = '55000';
    END IF;
END $$;

-- Refuses work that must run on the coordinator when this is a worker of a distributed
-- inventory (the network refresh: its claims and the GreyNoise quota are counted there).
CREATE FUNCTION @extschema@._ip_inventory_citus_coordinator_only(what text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT @extschema@._ip_inventory_citus_on_coordinator() AND @extschema@._ip_inventory_citus_distributed() THEN
        RAISE EXCEPTION '% runs on the Citus coordinator only', what USING ERRCODE = '55000',
            DETAIL = 'The GreyNoise quota and the claims of concurrent refreshes are counted on the coordinator, once for the cluster.';
    END IF;
END $$;

-- The distributed table a shard belongs to, and the shard's id (NULL when rel is no shard).
-- Citus names a shard <table>_<shardid> in the table's schema.
CREATE FUNCTION @extschema@._ip_inventory_citus_shard_of(rel regclass, OUT logical regclass, OUT shardid bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_shard') IS NULL THEN
        RETURN;
    END IF;
    SELECT s.logicalrelid, s.shardid INTO logical, shardid
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_dist_shard AS s ON s.shardid = substring(c.relname FROM '_([0-9]{1,18})$')::bigint
    JOIN pg_catalog.pg_class AS lc ON lc.oid = s.logicalrelid
    WHERE c.oid = rel AND lc.relnamespace = c.relnamespace AND c.relname = lc.relname || '_' || s.shardid;
END $$;

-- A shard's relation name, schema-qualified and quoted.
CREATE FUNCTION @extschema@._ip_inventory_citus_shard_name(logical regclass, shardid bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT format('%I.%I', n.nspname, c.relname || '_' || shardid)
        FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.oid = logical);

-- The shards of a distributed table that have a placement on this node, in shard order.
CREATE FUNCTION @extschema@._ip_inventory_citus_local_shards(logical regclass) RETURNS SETOF regclass
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT @extschema@._ip_inventory_citus_shard_name(s.logicalrelid, s.shardid)::regclass
    FROM pg_catalog.pg_dist_shard AS s
    JOIN pg_catalog.pg_dist_placement AS p ON p.shardid = s.shardid
    WHERE s.logicalrelid = logical AND p.groupid = (SELECT g.groupid FROM pg_catalog.pg_dist_local_group AS g)
    ORDER BY s.shardid;
END $$;

-- The attached columns of the distributed event table a shard belongs to (no row when the
-- shard's table is not attached, or rel is no shard). Read by the observe trigger on a shard.
-- SECURITY DEFINER: a worker's backfill or retention runs as its caller, who need not read
-- the extension's table; only column names of attached tables are shown.
CREATE FUNCTION @extschema@._ip_inventory_citus_shard_columns(shard regclass, OUT ip_columns text[], OUT ts_column text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    logical regclass;
BEGIN
    SELECT s.logical INTO logical FROM @extschema@._ip_inventory_citus_shard_of(shard) AS s;
    IF logical IS NULL OR NOT @extschema@._ip_inventory_citus_distributed() THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT o.ip_columns, o.ts_column FROM @extschema@.ip_inventory_citus_observed AS o
    WHERE o.event_table = (SELECT format('%I.%I', n.nspname, c.relname)
                           FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
                           WHERE c.oid = logical);
END $$;

-- An address whose hash falls in [lo, hi]: the queue's distribution value for a shard range
-- in which none of the recorded addresses falls. A loop, not a query over generate_series
-- (which would be materialized whole, 16M rows, on every trigger firing): with 32 shards it
-- ends after about 32 hashes.
CREATE FUNCTION @extschema@._ip_inventory_citus_key_in_range(lo int, hi int) RETURNS inet
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key inet;
BEGIN
    FOR g IN 0 .. 16777215 LOOP
        key := '0.0.0.0'::inet + g;
        IF worker_hash(key) BETWEEN lo AND hi THEN
            RETURN key;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'no address hashes into the shard range [%, %]', lo, hi USING ERRCODE = 'XX000';
END $$;

-- _ip_inventory_record (sql/observe.sql) for one inventory shard on this node, named by
-- shard: the same statement with the shard in place of the table.
CREATE FUNCTION @extschema@._ip_inventory_citus_record_shard(
    shard text, ips inet[], observations bigint[], first_seen timestamptz[], last_seen timestamptz[], enrich boolean,
    OUT addresses bigint, OUT new_addresses bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    counted bigint;
BEGIN
    EXECUTE format($sql$
    WITH obs AS (
        SELECT o.ip, o.n, o.first_seen, o.last_seen
        FROM unnest($1, $2, $3, $4) AS o(ip, n, first_seen, last_seen)),
    recorded AS (
        INSERT INTO %1$s AS inv (
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
        LEFT JOIN %1$s AS cur ON cur.ip_address = o.ip
        LEFT JOIN LATERAL (
            SELECT * FROM @extschema@._ip_inventory_new_row_maxmind(
                CASE WHEN $5 AND cur.ip_address IS NULL THEN o.ip END)
            OFFSET 0 -- a gated subquery: see _ip_inventory_new_row_maxmind
        ) AS m ON true
        ORDER BY o.ip
        ON CONFLICT (ip_address) DO UPDATE SET
            observation_count = inv.observation_count + excluded.observation_count,
            first_seen_at = @extschema@._ip_inventory_first_seen(
                inv.observation_count, inv.first_seen_at, excluded.first_seen_at),
            last_seen_at = @extschema@._ip_inventory_last_seen(
                inv.observation_count, inv.last_seen_at, excluded.last_seen_at)
        RETURNING (xmax = 0) AS inserted, (xmax = 0 AND inv.maxmind_ts IS NOT NULL) AS enriched),
    totals AS (
        SELECT count(*) AS addresses, count(*) FILTER (WHERE inserted) AS new_addresses,
               count(*) FILTER (WHERE enriched) AS enriched,
               (SELECT coalesce(sum(n), 0)::bigint FROM obs) AS observations
        FROM recorded)
    SELECT t.addresses, t.new_addresses,
           @extschema@._ip_inventory_count_recorded(t.observations, t.new_addresses, t.enriched)
      FROM totals AS t $sql$, shard)
    INTO addresses, new_addresses, counted
    USING ips, observations, first_seen, last_seen, enrich;
END $$;

-- Records aggregated observations read from a shard of a distributed event table (by its
-- trigger or a backfill on the shard's node): the addresses of the colocated inventory shard
-- directly, the others into the colocated queue shard (ip_inventory_citus_flush moves them).
-- An event table that is not colocated with the inventory puts them all in a queue shard on
-- this node. Everything is written on this node, in the caller's transaction.
CREATE FUNCTION @extschema@._ip_inventory_citus_record(
    event_shard regclass, ips inet[], observations bigint[], first_seen timestamptz[], last_seen timestamptz[],
    enrich boolean, OUT addresses bigint, OUT new_addresses bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ev record;
    target record;
    here inet[];
    away record;
    key inet;
    r record;
BEGIN
    SELECT * INTO ev FROM @extschema@._ip_inventory_citus_shard_of(event_shard);
    IF ev.shardid IS NULL THEN
        RAISE EXCEPTION '% is not a shard of a distributed table', event_shard USING ERRCODE = '55000';
    END IF;
    -- The inventory and queue shards of the same range, when the event table is colocated.
    SELECT si.shardid AS inventory_shard, sq.shardid AS queue_shard,
           si.shardminvalue::int AS lo, si.shardmaxvalue::int AS hi
      INTO target
      FROM pg_catalog.pg_dist_shard AS se
      JOIN pg_catalog.pg_dist_partition AS pe ON pe.logicalrelid = se.logicalrelid
      JOIN pg_catalog.pg_dist_partition AS pi ON pi.logicalrelid = '@extschema@.ip_inventory'::regclass
                                             AND pi.colocationid = pe.colocationid
      JOIN pg_catalog.pg_dist_shard AS si ON si.logicalrelid = pi.logicalrelid AND si.shardminvalue = se.shardminvalue
      JOIN pg_catalog.pg_dist_shard AS sq ON sq.logicalrelid = '@extschema@.ip_inventory_citus_queue'::regclass
                                         AND sq.shardminvalue = se.shardminvalue
     WHERE se.shardid = ev.shardid;
    IF NOT FOUND THEN
        -- Not colocated: a queue shard on this node takes everything.
        SELECT NULL::bigint AS inventory_shard, s.shardid AS queue_shard,
               s.shardminvalue::int AS lo, s.shardmaxvalue::int AS hi
          INTO target
          FROM pg_catalog.pg_dist_shard AS s
          JOIN pg_catalog.pg_dist_placement AS p ON p.shardid = s.shardid
         WHERE s.logicalrelid = '@extschema@.ip_inventory_citus_queue'::regclass
           AND p.groupid = (SELECT g.groupid FROM pg_catalog.pg_dist_local_group AS g)
         ORDER BY s.shardid LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no shard of ip_inventory is placed on this node; cannot record the inserts into %', ev.logical
                USING ERRCODE = '55000',
                HINT = 'Distribute the event table colocated with ip_inventory: SELECT ip_inventory_distribute(''<table>'', ''<address column>'');';
        END IF;
    END IF;

    addresses := 0;
    new_addresses := 0;
    IF target.inventory_shard IS NOT NULL THEN
        SELECT array_agg(o.ip ORDER BY o.ip) AS ips, array_agg(o.n ORDER BY o.ip) AS ns,
               array_agg(o.f ORDER BY o.ip) AS fs, array_agg(o.l ORDER BY o.ip) AS ls
          INTO r
          FROM unnest(ips, observations, first_seen, last_seen) AS o(ip, n, f, l)
         WHERE worker_hash(o.ip) BETWEEN target.lo AND target.hi;
        here := r.ips;
        IF here IS NOT NULL THEN
            SELECT x.addresses, x.new_addresses INTO addresses, new_addresses
              FROM @extschema@._ip_inventory_citus_record_shard(
                       @extschema@._ip_inventory_citus_shard_name('@extschema@.ip_inventory'::regclass, target.inventory_shard),
                       r.ips, r.ns, r.fs, r.ls, enrich) AS x;
            key := here[1];
        END IF;
    END IF;

    SELECT count(*) AS n INTO away
      FROM unnest(ips) AS o(ip)
     WHERE target.inventory_shard IS NULL OR NOT worker_hash(o.ip) BETWEEN target.lo AND target.hi;
    IF away.n > 0 THEN
        key := coalesce(key, @extschema@._ip_inventory_citus_key_in_range(target.lo, target.hi));
        EXECUTE format('INSERT INTO %s (shard_key, ip, observations, first_seen, last_seen, enrich)
                        SELECT $1, o.ip, o.n, o.f, o.l, $6
                        FROM unnest($2, $3, $4, $5) AS o(ip, n, f, l)
                        WHERE $7 OR NOT worker_hash(o.ip) BETWEEN $8 AND $9',
                       @extschema@._ip_inventory_citus_shard_name('@extschema@.ip_inventory_citus_queue'::regclass, target.queue_shard))
        USING key, ips, observations, first_seen, last_seen, enrich,
              target.inventory_shard IS NULL, target.lo, target.hi;
        addresses := addresses + away.n;
    END IF;
END $$;

-- Moves the queue into the inventory in one distributed transaction: the rows deleted are
-- exactly the rows recorded (a row queued meanwhile stays for the next flush). New public
-- addresses are enriched from MaxMind on the coordinator (every queued address is looked up:
-- the upsert keeps the MaxMind columns of rows that exist).
CREATE FUNCTION @extschema@.ip_inventory_citus_flush() RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    moved record;
    written record;
    tagged bigint;
BEGIN
    PERFORM @extschema@._ip_inventory_citus_require('ip_inventory_citus_flush');
    WITH q AS (
        DELETE FROM @extschema@.ip_inventory_citus_queue
        RETURNING ip, observations, first_seen, last_seen, enrich),
    a AS (
        SELECT q.ip, sum(q.observations)::bigint AS n, min(q.first_seen) AS f, max(q.last_seen) AS l,
               bool_or(q.enrich) AS e, count(*) AS queued
        FROM q GROUP BY q.ip)
    SELECT array_agg(a.ip ORDER BY a.ip) AS ips, array_agg(a.n ORDER BY a.ip) AS ns,
           array_agg(a.f ORDER BY a.ip) AS fs, array_agg(a.l ORDER BY a.ip) AS ls,
           array_agg(a.e ORDER BY a.ip) AS es, coalesce(sum(a.queued), 0)::bigint AS queued,
           coalesce(sum(a.n), 0)::bigint AS observations
      INTO moved FROM a;
    IF moved.ips IS NULL THEN
        tagged := @extschema@._ip_inventory_citus_tag_pending(NULL::inet[], 10000);
        RETURN jsonb_build_object('queued_rows', 0, 'addresses', 0, 'observations', 0, 'tagged', tagged);
    END IF;
    WITH w AS (
        INSERT INTO @extschema@.ip_inventory AS inv (
            ip_address, first_seen_at, last_seen_at, observation_count, ip_class,
            geo_country, geo_country_name, geo_city, geo_subdivision, geo_latitude,
            geo_longitude, geo_network, maxmind_build, maxmind_asn_build, maxmind_ts,
            asn_number, asn_org, asn_network, asn_source, enrichment,
            is_anonymous, is_anonymous_vpn, is_hosting_provider, is_public_proxy,
            is_residential_proxy, is_tor_exit_node,
            isp, isp_organization, mobile_country_code, mobile_network_code, connection_type)
        SELECT o.ip, o.f, o.l, o.n, @extschema@.ip_class(o.ip),
               m.geo_country, m.geo_country_name, m.geo_city, m.geo_subdivision, m.geo_latitude,
               m.geo_longitude, m.geo_network, m.maxmind_build, m.maxmind_asn_build, m.maxmind_ts,
               m.asn_number, m.asn_org, m.asn_network, m.asn_source,
               jsonb_set_lax('{}', '{maxmind}', m.maxmind_json, true, 'delete_key'),
               m.is_anonymous, m.is_anonymous_vpn, m.is_hosting_provider, m.is_public_proxy,
               m.is_residential_proxy, m.is_tor_exit_node,
               m.isp, m.isp_organization, m.mobile_country_code, m.mobile_network_code, m.connection_type
        FROM unnest(moved.ips, moved.ns, moved.fs, moved.ls, moved.es) AS o(ip, n, f, l, e)
        LEFT JOIN LATERAL (
            SELECT * FROM @extschema@._ip_inventory_new_row_maxmind(CASE WHEN o.e THEN o.ip END)
            OFFSET 0 -- a gated subquery: see _ip_inventory_new_row_maxmind
        ) AS m ON true
        ON CONFLICT (ip_address) DO UPDATE SET
            observation_count = inv.observation_count + excluded.observation_count,
            first_seen_at = @extschema@._ip_inventory_first_seen(
                inv.observation_count, inv.first_seen_at, excluded.first_seen_at),
            last_seen_at = @extschema@._ip_inventory_last_seen(
                inv.observation_count, inv.last_seen_at, excluded.last_seen_at)
        RETURNING 1)
    SELECT count(*) AS n INTO written FROM w;
    PERFORM @extschema@._ip_inventory_count_recorded(moved.observations, 0::bigint, 0::bigint);
    -- Tags of the new rows, and of rows the workers' triggers added since (sql/tags.sql).
    tagged := @extschema@._ip_inventory_citus_tag_pending(moved.ips, 10000);
    RETURN jsonb_build_object('queued_rows', moved.queued, 'addresses', written.n, 'observations', moved.observations,
                              'tagged', tagged);
END $$;

-- The supported layout, in one call on the coordinator: the inventory distributed by address
-- (once), the queue colocated with it, the attached-table list a reference table; and, when
-- given, an event table distributed by its address column, colocated with the inventory.
-- Call it again for each further event table. An attached event table is detached first
-- (Citus refuses to distribute a table with triggers) and must be attached again after.
CREATE FUNCTION @extschema@.ip_inventory_distribute(
    event_table regclass DEFAULT NULL, address_column text DEFAULT NULL, shard_count int DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    col_type regtype;
    done jsonb := '{}';
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RAISE EXCEPTION 'ip_inventory_distribute: Citus is not loaded in this database' USING ERRCODE = '55000',
            HINT = 'shared_preload_libraries = ''citus,ip_inventory'' on every node, then CREATE EXTENSION citus;';
    END IF;
    IF NOT @extschema@._ip_inventory_citus_on_coordinator() THEN
        RAISE EXCEPTION 'ip_inventory_distribute: run it on the Citus coordinator' USING ERRCODE = '55000';
    END IF;
    IF shard_count IS NOT NULL AND shard_count < 1 THEN
        RAISE EXCEPTION 'shard_count must be at least 1, not %', shard_count USING ERRCODE = '22023';
    END IF;
    IF NOT @extschema@._ip_inventory_citus_distributed() THEN
        PERFORM create_distributed_table('@extschema@.ip_inventory', 'ip_address',
                                         shard_count => coalesce(shard_count, current_setting('citus.shard_count')::int));
        PERFORM create_distributed_table('@extschema@.ip_inventory_citus_queue', 'shard_key',
                                         colocate_with => '@extschema@.ip_inventory');
        PERFORM create_reference_table('@extschema@.ip_inventory_citus_observed');
        done := done || jsonb_build_object('inventory', 'distributed by ip_address');
    ELSE
        done := done || jsonb_build_object('inventory', 'already distributed');
    END IF;
    IF event_table IS NOT NULL THEN
        IF address_column IS NULL THEN
            RAISE EXCEPTION 'name the address column to distribute % by', event_table USING ERRCODE = '22004';
        END IF;
        SELECT a.atttypid::regtype INTO col_type FROM pg_attribute AS a
        WHERE a.attrelid = event_table AND a.attname = address_column AND a.attnum > 0 AND NOT a.attisdropped;
        IF col_type IS DISTINCT FROM 'inet'::regtype THEN
            RAISE EXCEPTION 'column "%" of % is %, not inet', left(address_column, 64), event_table,
                coalesce(col_type::text, 'missing') USING ERRCODE = '42804',
                HINT = 'Events are colocated with the inventory by an inet address column.';
        END IF;
        IF EXISTS (SELECT FROM @extschema@.ip_inventory_observed AS o WHERE o.event_table = ip_inventory_distribute.event_table) THEN
            RAISE EXCEPTION '% is attached: detach it first, distribute it, then attach it again', event_table
                USING ERRCODE = '55000',
                HINT = format('SELECT ip_inventory_detach(%L); SELECT ip_inventory_distribute(%L, %L); SELECT ip_inventory_attach(...);',
                              event_table::text, event_table::text, address_column);
        END IF;
        IF EXISTS (SELECT FROM pg_catalog.pg_dist_partition AS p WHERE p.logicalrelid = event_table) THEN
            done := done || jsonb_build_object('event_table', event_table::text, 'status', 'already distributed',
                'colocated', EXISTS (SELECT FROM pg_catalog.pg_dist_partition AS p, pg_catalog.pg_dist_partition AS i
                                     WHERE p.logicalrelid = event_table AND i.logicalrelid = '@extschema@.ip_inventory'::regclass
                                       AND p.colocationid = i.colocationid));
        ELSE
            PERFORM create_distributed_table(event_table, address_column, colocate_with => '@extschema@.ip_inventory');
            done := done || jsonb_build_object('event_table', event_table::text, 'status', 'distributed by ' || address_column,
                                               'colocated', true);
        END IF;
    END IF;
    RETURN done || jsonb_build_object('shards', (SELECT count(*) FROM pg_catalog.pg_dist_shard AS s
                                                 WHERE s.logicalrelid = '@extschema@.ip_inventory'::regclass),
                                      'nodes', (SELECT count(DISTINCT p.groupid) FROM pg_catalog.pg_dist_shard AS s
                                                JOIN pg_catalog.pg_dist_placement AS p ON p.shardid = s.shardid
                                                WHERE s.logicalrelid = '@extschema@.ip_inventory'::regclass));
END $$;

-- Attach/detach of a distributed event table: its entry in the reference table (called by
-- ip_inventory_attach/ip_inventory_detach as the extension's owner, in their transaction).
CREATE FUNCTION @extschema@._ip_inventory_citus_set_observed(tbl regclass, ip_columns text[], ts_column text)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    name text := (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class AS c
                  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace WHERE c.oid = tbl);
BEGIN
    IF NOT @extschema@._ip_inventory_citus_distributed()
       OR NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition AS p WHERE p.logicalrelid = tbl) THEN
        RETURN false;
    END IF;
    IF ip_columns IS NULL THEN
        DELETE FROM @extschema@.ip_inventory_citus_observed AS o WHERE o.event_table = name;
    ELSE
        INSERT INTO @extschema@.ip_inventory_citus_observed AS o (event_table, ip_columns, ts_column)
        VALUES (name, ip_columns, ts_column)
        ON CONFLICT (event_table) DO UPDATE SET ip_columns = excluded.ip_columns, ts_column = excluded.ts_column;
    END IF;
    RETURN true;
END $$;

-- Whether rel is a Citus table (distributed or reference).
CREATE FUNCTION @extschema@._ip_inventory_citus_table(rel regclass) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT FROM pg_catalog.pg_dist_partition AS p WHERE p.logicalrelid = rel);
END $$;

-- Adds one shard's backfill summary to a node's.
CREATE FUNCTION @extschema@._ip_inventory_citus_add_summary(acc jsonb, one jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT jsonb_object_agg(k, coalesce((acc ->> k)::bigint, 0) + coalesce((one ->> k)::bigint, 0))
        FROM unnest(ARRAY['shards', 'event_rows', 'this_run_rows', 'addresses', 'new_addresses', 'batches', 'enriched', 'inventory_rows']) AS k)
       || jsonb_build_object('shards', coalesce((acc ->> 'shards')::bigint, 0) + CASE WHEN one IS NULL THEN 0 ELSE 1 END);

-- The shards of a distributed table on this node (for the node procedures below).
CREATE FUNCTION @extschema@._ip_inventory_citus_node_shards(relation text) RETURNS regclass[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN ARRAY(SELECT s FROM @extschema@._ip_inventory_citus_local_shards(to_regclass(relation)) AS s);

-- A node's part of ip_inventory_citus_backfill: ip_inventory_backfill on each shard of the
-- table on this node, one after the other; each commits per batch with its position in this
-- node's ip_inventory_jobs (job backfill:<schema>.<shard>), so a rerun continues there.
CREATE PROCEDURE @extschema@._ip_inventory_citus_backfill_node(
    event_table text, ip_columns text[], ts_column text, batch_size int, INOUT summary jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    shards regclass[];
    shard regclass;
    one jsonb;
BEGIN
    shards := @extschema@._ip_inventory_citus_node_shards(event_table);
    summary := @extschema@._ip_inventory_citus_add_summary(NULL::jsonb, NULL::jsonb);
    FOREACH shard IN ARRAY shards LOOP
        one := NULL;
        CALL @extschema@.ip_inventory_backfill(shard, ip_columns, ts_column, batch_size, false, one);
        summary := @extschema@._ip_inventory_citus_add_summary(summary, one);
    END LOOP;
END $$;

-- Runs a node procedure on every node (in parallel; each in its own connection, committing
-- its own batches) and collects their summaries.
CREATE FUNCTION @extschema@._ip_inventory_citus_on_nodes(command text,
    OUT nodes jsonb, OUT total jsonb, OUT failed int)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    nodes := '[]';
    total := NULL;
    failed := 0;
    FOR r IN SELECT a.nodeid, a.success, a.result, n.nodename, n.nodeport
             FROM run_command_on_all_nodes(command) AS a
             LEFT JOIN pg_catalog.pg_dist_node AS n ON n.nodeid = a.nodeid
             ORDER BY a.nodeid LOOP
        IF r.success THEN
            nodes := nodes || jsonb_build_array(jsonb_build_object('node', r.nodename || ':' || r.nodeport) || r.result::jsonb);
            total := (SELECT jsonb_object_agg(k, coalesce((total ->> k)::bigint, 0) + coalesce((r.result::jsonb ->> k)::bigint, 0))
                      FROM unnest(ARRAY['shards', 'event_rows', 'this_run_rows', 'addresses', 'new_addresses', 'batches', 'enriched', 'inventory_rows', 'inventory_networks']) AS k);
        ELSE
            failed := failed + 1;
            nodes := nodes || jsonb_build_array(jsonb_build_object('node', r.nodename || ':' || r.nodeport, 'error', left(r.result, 300)));
            RAISE WARNING 'node %:% failed: %', r.nodename, r.nodeport, left(r.result, 300);
        END IF;
    END LOOP;
END $$;

-- Backfill of a distributed event table: each node backfills its shards (pushed down: the
-- events are read where they are, and recorded into the colocated inventory shards), then the
-- queue is flushed. Resumable like ip_inventory_backfill: run it again after a crash of the
-- coordinator or a worker; every shard continues after its last committed batch.
CREATE FUNCTION @extschema@.ip_inventory_citus_backfill(
    event_table regclass, ip_columns text[], ts_column text DEFAULT NULL, batch_size int DEFAULT 10000)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    name text;
    run record;
    flushed jsonb;
    tags jsonb;
BEGIN
    PERFORM @extschema@._ip_inventory_citus_require('ip_inventory_citus_backfill');
    IF event_table IS NULL OR NOT @extschema@._ip_inventory_citus_table(event_table) THEN
        RAISE EXCEPTION '% is not a distributed table', coalesce(event_table::text, 'NULL') USING ERRCODE = '55000',
            HINT = 'For a table on the coordinator alone: CALL ip_inventory_backfill(...);';
    END IF;
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = '22023';
    END IF;
    PERFORM @extschema@._ip_inventory_check_columns(event_table, ip_columns, ts_column);
    SELECT format('%I.%I', n.nspname, c.relname) INTO name
      FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.oid = event_table;
    IF EXISTS (SELECT FROM @extschema@.ip_inventory_citus_observed AS o WHERE o.event_table = name) THEN
        RAISE EXCEPTION 'the inserts into % are already recorded by its ip_inventory_observe trigger', event_table
            USING ERRCODE = '55000', DETAIL = 'Backfilling it would count its rows twice.';
    END IF;
    IF NOT has_table_privilege(event_table, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied to backfill %: SELECT on it is needed', event_table USING ERRCODE = '42501';
    END IF;
    SELECT * INTO run FROM @extschema@._ip_inventory_citus_on_nodes(format(
        'CALL @extschema@._ip_inventory_citus_backfill_node(%L, %L, %L, %s)', name, ip_columns, ts_column, batch_size));
    IF run.failed > 0 THEN
        -- What the other nodes did is committed; what they queued waits for the next flush
        -- (the queue has shards on the node that failed too).
        flushed := to_jsonb('not flushed: a node failed'::text);
        RAISE WARNING 'ip_inventory_citus_backfill of %: % node(s) failed: run it again once they are back (every shard continues after its last committed batch)',
            event_table, run.failed;
    ELSE
        -- The new rows the nodes recorded in their shards get their tags, before the flush:
        -- the retag runs in its own connection, and would wait for the rows this transaction's
        -- flush writes. The flush tags the rows it writes.
        tags := @extschema@._ip_inventory_citus_retag_after();
        flushed := @extschema@.ip_inventory_citus_flush();
    END IF;
    RETURN jsonb_build_object('table', name, 'status', CASE WHEN run.failed > 0 THEN 'incomplete' ELSE 'finished' END,
                              'failed_nodes', run.failed)
        || coalesce(run.total, '{}') || jsonb_build_object('flushed', flushed, 'nodes', run.nodes)
        || CASE WHEN tags IS NULL THEN '{}' ELSE jsonb_build_object('tags', tags) END;
END $$;

-- A node's enrich_pending: checks its databases, takes the node's enrich_pending lock, and
-- returns its inventory shards and the builds in service on this node.
CREATE FUNCTION @extschema@._ip_inventory_citus_enrich_start(batch_size int,
    OUT shards regclass[], OUT city_build timestamptz, OUT asn_build timestamptz, OUT summary jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = '22023';
    END IF;
    PERFORM @extschema@.maxmind_age();
    SELECT b.city_build, b.asn_build INTO city_build, asn_build FROM @extschema@._ip_inventory_builds() AS b;
    PERFORM @extschema@._ip_inventory_job_start('enrich_pending'::text);
    shards := @extschema@._ip_inventory_citus_node_shards('@extschema@.ip_inventory');
    summary := jsonb_build_object('shards', cardinality(shards), 'enriched', 0, 'batches', 0,
                                  'city_build', city_build, 'asn_build', asn_build);
END $$;

-- One batch of a node's enrich_pending in one inventory shard on this node: the next pending
-- public rows after after_ip, locked in address order, re-enriched from this node's MaxMind
-- databases. The UPDATE is _ip_inventory_apply_maxmind's (sql/maxmind.sql) on the shard.
CREATE FUNCTION @extschema@._ip_inventory_citus_enrich_step(
    shard regclass, batch_size int, after_ip inet, city_build timestamptz, asn_build timestamptz, INOUT summary jsonb,
    OUT last_ip inet, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    batch inet[];
    updated bigint;
BEGIN
    EXECUTE format($sql$
        SELECT array_agg(p.ip_address ORDER BY p.ip_address) FROM (
            SELECT inv.ip_address FROM %1$s AS inv
            WHERE @extschema@._ip_inventory_maxmind_serves(inv.ip_class) AND ($1 IS NULL OR inv.ip_address > $1)
              AND @extschema@._ip_inventory_maxmind_pending(inv.maxmind_ts, inv.maxmind_build,
                                                            inv.maxmind_asn_build, $2, $3)
            ORDER BY inv.ip_address LIMIT $4 FOR UPDATE OF inv) AS p $sql$, shard)
    INTO batch USING after_ip, city_build, asn_build, batch_size;
    last_ip := after_ip;
    done := batch IS NULL OR cardinality(batch) < batch_size;
    IF batch IS NULL THEN
        RETURN;
    END IF;
    EXECUTE @extschema@._ip_inventory_maxmind_update(shard::text, @extschema@._ip_inventory_maxmind_answers())
    USING batch;
    GET DIAGNOSTICS updated = ROW_COUNT;
    -- Their tags are stale now: the coordinator, which has the rules and the network lists,
    -- re-tags them after every node is done (ip_inventory_citus_enrich_pending). Rows never
    -- tagged (no rule was ever enabled) are stale already and are not written twice.
    IF updated > 0 THEN
        EXECUTE format('UPDATE %s SET tags_generation = NULL WHERE ip_address = ANY ($1) AND tags_generation IS NOT NULL', shard)
        USING batch;
    END IF;
    PERFORM @extschema@._ip_inventory_count_recorded(0::bigint, 0::bigint, updated);
    last_ip := batch[cardinality(batch)];
    summary := summary || jsonb_build_object('enriched', (summary ->> 'enriched')::bigint + updated,
                                             'batches', (summary ->> 'batches')::bigint + 1);
    RAISE NOTICE 'enrich_pending on %: % rows enriched so far', shard, summary ->> 'enriched';
END $$;

CREATE FUNCTION @extschema@._ip_inventory_citus_enrich_end(summary jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM @extschema@._ip_inventory_job_release('enrich_pending'::text);
    RETURN summary;
END $$;

-- A node's part of ip_inventory_citus_enrich_pending: its inventory shards one after the
-- other, a commit per batch. Rows it finished are no longer pending: a rerun continues.
CREATE PROCEDURE @extschema@._ip_inventory_citus_enrich_node(batch_size int, INOUT summary jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    started record;
    step record;
    shard regclass;
BEGIN
    started := @extschema@._ip_inventory_citus_enrich_start(batch_size);
    summary := started.summary;
    COMMIT;
    FOREACH shard IN ARRAY started.shards LOOP
        step := @extschema@._ip_inventory_citus_enrich_step(shard, batch_size, NULL::pg_catalog.inet,
                                                            started.city_build, started.asn_build, summary);
        COMMIT;
        WHILE NOT step.done LOOP
            step := @extschema@._ip_inventory_citus_enrich_step(shard, batch_size, step.last_ip,
                                                                started.city_build, started.asn_build, step.summary);
            COMMIT;
        END LOOP;
        summary := step.summary;
    END LOOP;
    summary := @extschema@._ip_inventory_citus_enrich_end(summary);
END $$;

-- enrich_pending on a Citus cluster: every node re-enriches the pending rows of its own
-- inventory shards from its own MaxMind databases, all nodes at once (pushed down: the
-- lookups run where the rows are). Run it after rolling a MaxMind update out
-- (ip_inventory_citus_reload).
CREATE FUNCTION @extschema@.ip_inventory_citus_enrich_pending(batch_size int DEFAULT 10000) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    run record;
BEGIN
    PERFORM @extschema@._ip_inventory_citus_require('ip_inventory_citus_enrich_pending');
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = '22023';
    END IF;
    SELECT * INTO run FROM @extschema@._ip_inventory_citus_on_nodes(format(
        'CALL @extschema@._ip_inventory_citus_enrich_node(%s)', batch_size));
    IF run.failed > 0 THEN
        RAISE WARNING 'ip_inventory_citus_enrich_pending: % node(s) failed: run it again once they are back', run.failed;
    END IF;
    RETURN jsonb_build_object('status', CASE WHEN run.failed > 0 THEN 'incomplete' ELSE 'finished' END,
                              'failed_nodes', run.failed,
                              'enriched', coalesce((run.total ->> 'enriched')::bigint, 0),
                              'batches', coalesce((run.total ->> 'batches')::bigint, 0),
                              -- The re-enriched rows' tags (marked stale on the nodes).
                              'tags', @extschema@._ip_inventory_citus_retag_after(),
                              'nodes', run.nodes);
END $$;

-- One node's view of itself: the MaxMind builds and generation in service, the status of
-- each database, a digest of its ip_inventory.* settings (secrets left out), its queue.
CREATE FUNCTION @extschema@._ip_inventory_citus_node_info() RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    info jsonb;
BEGIN
    SELECT jsonb_build_object(
               'city_build', max(i.build_time) FILTER (WHERE i.name = 'city'),
               'asn_build', max(i.build_time) FILTER (WHERE i.name = 'asn'),
               'generation', max(i.generation),
               'status', string_agg(i.name || ' ' || i.status, ', ' ORDER BY i.name))
      INTO info FROM @extschema@.maxmind_info() AS i WHERE i.name IN ('city', 'asn');
    RETURN info || jsonb_build_object(
        'settings', (SELECT md5(string_agg(s.name || '=' || coalesce(s.setting, ''), ';' ORDER BY s.name))
                     FROM pg_catalog.pg_settings AS s
                     WHERE s.name LIKE 'ip\_inventory.%' AND s.name NOT LIKE '%key%' AND s.name NOT LIKE '%salt%'
                       AND s.name NOT IN ('ip_inventory.city_db', 'ip_inventory.asn_db', 'ip_inventory.databases')));
END $$;

-- Every node of the cluster as it sees itself: its MaxMind builds and generation, database
-- status and a digest of its settings. Nodes that disagree show here and in
-- ip_inventory_health().
CREATE FUNCTION @extschema@.ip_inventory_citus_nodes()
RETURNS TABLE (node text, reachable boolean, city_build timestamptz, asn_build timestamptz, generation bigint,
               status text, settings_digest text, error text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    j jsonb;
BEGIN
    PERFORM @extschema@._ip_inventory_citus_require('ip_inventory_citus_nodes');
    FOR r IN SELECT a.success, a.result, n.nodename || ':' || n.nodeport AS name
             FROM run_command_on_all_nodes('SELECT @extschema@._ip_inventory_citus_node_info()::text') AS a
             LEFT JOIN pg_catalog.pg_dist_node AS n ON n.nodeid = a.nodeid
             ORDER BY n.groupid, n.nodeid LOOP
        node := r.name;
        reachable := r.success;
        IF r.success THEN
            j := r.result::jsonb;
            city_build := (j ->> 'city_build')::timestamptz;
            asn_build := (j ->> 'asn_build')::timestamptz;
            generation := (j ->> 'generation')::bigint;
            status := j ->> 'status';
            settings_digest := j ->> 'settings';
            error := NULL;
        ELSE
            city_build := NULL; asn_build := NULL; generation := NULL; status := NULL; settings_digest := NULL;
            error := left(r.result, 300);
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

-- Rolls a MaxMind update out: every node rereads its configuration and reloads its
-- databases (maxmind_reload() on each), and reports what it has in service afterwards.
-- Install the new files on every node first (by rename, at the configured paths).
CREATE FUNCTION @extschema@.ip_inventory_citus_reload()
RETURNS TABLE (node text, reloaded boolean, result text, city_build timestamptz, asn_build timestamptz)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    PERFORM @extschema@._ip_inventory_citus_require('ip_inventory_citus_reload');
    PERFORM FROM run_command_on_all_nodes('SELECT pg_catalog.pg_reload_conf()');
    -- (Each command runs in a new connection, which reads the reloaded configuration.)
    FOR r IN SELECT a.success, a.result, n.nodename || ':' || n.nodeport AS name
             FROM run_command_on_all_nodes('SELECT @extschema@.maxmind_reload()::text') AS a
             LEFT JOIN pg_catalog.pg_dist_node AS n ON n.nodeid = a.nodeid
             ORDER BY n.groupid, n.nodeid LOOP
        node := r.name;
        reloaded := r.success;
        result := left(r.result, 500);
        SELECT x.city_build, x.asn_build INTO city_build, asn_build
          FROM @extschema@.ip_inventory_citus_nodes() AS x WHERE x.node = r.name;
        RETURN NEXT;
    END LOOP;
END $$;

-- ip_inventory_stats of every node, with the node's name (sum them for cluster totals).
CREATE FUNCTION @extschema@.ip_inventory_citus_stats()
RETURNS TABLE (node text, source text, metric text, error_kind text, kind text, value bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    PERFORM @extschema@._ip_inventory_citus_require('ip_inventory_citus_stats');
    FOR r IN SELECT a.success, a.result, n.nodename || ':' || n.nodeport AS name
             FROM run_command_on_all_nodes(
                 'SELECT coalesce(json_agg(s), ''[]'')::text FROM @extschema@.ip_inventory_stats AS s') AS a
             LEFT JOIN pg_catalog.pg_dist_node AS n ON n.nodeid = a.nodeid
             ORDER BY n.groupid, n.nodeid LOOP
        IF NOT r.success THEN
            RAISE WARNING 'ip_inventory_citus_stats: node % is not reachable: %', r.name, left(r.result, 200);
            CONTINUE;
        END IF;
        RETURN QUERY SELECT r.name, x.source, x.metric, x.error_kind, x.kind, x.value
                     FROM json_to_recordset(r.result::json) AS x(source text, metric text, error_kind text, kind text, value bigint);
    END LOOP;
END $$;

-- The Citus rows of ip_inventory_health(): nodes unreachable or disagreeing on MaxMind builds
-- or settings, and observations waiting in the queue.
CREATE FUNCTION @extschema@._ip_inventory_citus_health()
RETURNS TABLE ("check" text, status text, value text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n record;
    q bigint;
BEGIN
    SELECT count(*) AS nodes, count(*) FILTER (WHERE NOT x.reachable) AS down,
           count(DISTINCT x.city_build) AS city_builds, count(DISTINCT x.asn_build) AS asn_builds,
           count(DISTINCT x.settings_digest) AS settings,
           string_agg(x.node || CASE WHEN x.reachable THEN ' city ' || coalesce(x.city_build::text, 'none')
                                                          || ', asn ' || coalesce(x.asn_build::text, 'none')
                                     ELSE ' unreachable' END, '; ' ORDER BY x.node) AS list
      INTO n FROM @extschema@.ip_inventory_citus_nodes() AS x;
    "check" := 'citus_nodes';
    value := n.nodes || ' nodes';
    status := CASE WHEN n.down > 0 THEN 'critical'
                   WHEN n.city_builds > 1 OR n.asn_builds > 1 OR n.settings > 1 THEN 'warning' ELSE 'ok' END;
    detail := CASE WHEN n.down > 0 THEN n.down || ' node(s) unreachable: '
                   WHEN n.city_builds > 1 OR n.asn_builds > 1 THEN 'nodes disagree on the MaxMind builds in service: '
                   WHEN n.settings > 1 THEN 'nodes disagree on ip_inventory.* settings (SELECT * FROM ip_inventory_citus_nodes()): '
                   ELSE 'all nodes serve the same builds: ' END || n.list;
    RETURN NEXT;
    SELECT count(*) INTO q FROM @extschema@.ip_inventory_citus_queue;
    "check" := 'citus_queue';
    value := q::text;
    status := CASE WHEN q > 1000000 THEN 'warning' ELSE 'ok' END;
    detail := 'observations waiting for SELECT ip_inventory_citus_flush(); (schedule it every minute)';
    RETURN NEXT;
END $$;

-- _ip_inventory_apply_maxmind (sql/maxmind.sql) for a distributed inventory: Citus refuses
-- STABLE functions of a row's columns in an UPDATE, so the lookups run first, here on the
-- coordinator (a materialized CTE: an intermediate result), and the UPDATE only copies them.
CREATE FUNCTION @extschema@._ip_inventory_citus_apply_maxmind(ips inet[]) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    updated bigint;
BEGIN
    IF cardinality(ips) IS NOT DISTINCT FROM 0 OR ips IS NULL THEN
        RETURN 0;
    END IF;
    EXECUTE format('WITH x AS MATERIALIZED (SELECT * FROM %s AS a) %s',
                   @extschema@._ip_inventory_maxmind_answers(),
                   @extschema@._ip_inventory_maxmind_update('@extschema@.ip_inventory', 'x'))
    USING ips;
    GET DIAGNOSTICS updated = ROW_COUNT;
    PERFORM @extschema@._ip_inventory_count_recorded(0::bigint, 0::bigint, updated);
    -- Their tags follow their new data (on the coordinator: _ip_inventory_citus_tag).
    PERFORM @extschema@._ip_inventory_tag(ips);
    RETURN updated;
END $$;

-- _ip_inventory_store_answers (sql/cascade.sql) for a distributed inventory: what each
-- answer writes is computed first (a materialized CTE, on the coordinator), so the UPDATE of
-- the shards only combines columns with constants; the failures table is the
-- coordinator's. No row locks: Citus' distributed deadlock detection covers the UPDATE.
CREATE FUNCTION @extschema@._ip_inventory_citus_store_answers(src text, answers jsonb, before jsonb)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    res record;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS ip_inventory_citus_answers (
        ip inet, outcome text, answer jsonb, detail text, previous jsonb, piece jsonb, at timestamptz,
        asn bigint, as_name text, prefix cidr) ON COMMIT DROP;
    TRUNCATE pg_temp.ip_inventory_citus_answers;
    INSERT INTO pg_temp.ip_inventory_citus_answers
    SELECT x.ip, x.outcome, x.answer, x.detail, before -> host(x.ip), jsonb_build_object(src, x.answer), now(),
           (x.answer ->> 'asn')::bigint, x.answer ->> 'as_name', (x.answer ->> 'prefix')::cidr
    FROM jsonb_to_recordset(answers) AS x(ip inet, outcome text, answer jsonb, detail text);
    WITH r AS MATERIALIZED (SELECT * FROM pg_temp.ip_inventory_citus_answers WHERE answer IS NOT NULL)
    UPDATE @extschema@.ip_inventory AS i SET
        enrichment   = i.enrichment || r.piece,
        cymru_ts     = CASE WHEN src = 'cymru' THEN r.at ELSE i.cymru_ts END,
        greynoise_ts = CASE WHEN src = 'greynoise' THEN r.at ELSE i.greynoise_ts END,
        rdns_ts      = CASE WHEN src = 'rdns' THEN r.at ELSE i.rdns_ts END,
        asn_number   = CASE WHEN src = 'cymru' AND i.asn_source IS DISTINCT FROM 'maxmind' THEN r.asn ELSE i.asn_number END,
        asn_org      = CASE WHEN src = 'cymru' AND i.asn_source IS DISTINCT FROM 'maxmind'
                            THEN CASE WHEN r.asn IS NOT NULL THEN r.as_name END ELSE i.asn_org END,
        asn_network  = CASE WHEN src = 'cymru' AND i.asn_source IS DISTINCT FROM 'maxmind'
                            THEN CASE WHEN r.asn IS NOT NULL THEN r.prefix END ELSE i.asn_network END,
        asn_source   = CASE WHEN src = 'cymru' AND i.asn_source IS DISTINCT FROM 'maxmind'
                            THEN CASE WHEN r.asn IS NOT NULL THEN 'cymru' END ELSE i.asn_source END
    FROM r
    WHERE i.ip_address = r.ip;
    INSERT INTO @extschema@.ip_inventory_failures AS f (ip_address, source, attempts, error, first_failed_at, last_failed_at)
    SELECT r.ip, src, 1, r.detail, now(), now() FROM pg_temp.ip_inventory_citus_answers AS r WHERE r.outcome = 'failed'
    ON CONFLICT (ip_address, source) DO UPDATE
        SET attempts = f.attempts + 1, error = excluded.error, last_failed_at = excluded.last_failed_at;
    DELETE FROM @extschema@.ip_inventory_failures AS f USING pg_temp.ip_inventory_citus_answers AS r
    WHERE f.ip_address = r.ip AND f.source = src AND r.answer IS NOT NULL;
    -- The answered rows' tags follow their new data (_ip_inventory_citus_tag).
    PERFORM @extschema@._ip_inventory_tag(ARRAY(
        SELECT r.ip FROM pg_temp.ip_inventory_citus_answers AS r WHERE r.answer IS NOT NULL ORDER BY 1));
    SELECT count(*) AS selected,
           count(*) FILTER (WHERE outcome = 'found' AND answer IS DISTINCT FROM previous) AS refreshed,
           count(*) FILTER (WHERE outcome = 'found' AND answer = previous) AS unchanged,
           count(*) FILTER (WHERE outcome = 'not_found') AS not_found,
           count(*) FILTER (WHERE outcome = 'failed') AS failed,
           count(*) FILTER (WHERE outcome = 'skipped') AS skipped,
           min(detail) FILTER (WHERE outcome = 'failed') AS first_failure
      INTO res
      FROM pg_temp.ip_inventory_citus_answers;
    RETURN jsonb_build_object('selected', res.selected, 'refreshed', res.refreshed, 'unchanged', res.unchanged,
                              'not_found', res.not_found, 'failed', res.failed, 'skipped', res.skipped,
                              'first_failure', res.first_failure);
END $$;

-- Tags (sql/tags.sql) of a distributed inventory, on the coordinator: the rules, their
-- compiled expression and the network lists are the coordinator's, and Citus refuses the
-- single-node tagging UPDATE (a lateral subquery of functions over the row's columns). So the
-- rows are read into a temporary table here, tagged here, and the changed tags written back by
-- one distributed UPDATE that only copies values. No row locks over shards: the UPDATE writes a
-- row only while its enrichment times are those read (a row re-enriched meanwhile is tagged by
-- its writer, or stays stale for ip_inventory_retag). stale_only: only rows whose tags are out
-- of date. Returns how many rows it wrote. SECURITY DEFINER, as _ip_inventory_tag: the state
-- and the network lists are the extension owner's.
CREATE FUNCTION @extschema@._ip_inventory_citus_tag(ips inet[], stale_only boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st record;
    written bigint;
BEGIN
    IF ips IS NULL OR cardinality(ips) = 0 THEN
        RETURN 0;
    END IF;
    SELECT s.generation, s.enabled_rules, s.compiled INTO st FROM @extschema@.ip_inventory_tag_state AS s;
    -- (Created once per transaction: IF NOT EXISTS would say NOTICE at every further call.)
    IF to_regclass('pg_temp.ip_inventory_citus_tags') IS NULL THEN
        CREATE TEMP TABLE ip_inventory_citus_tag_rows (LIKE @extschema@.ip_inventory) ON COMMIT DROP;
        CREATE TEMP TABLE ip_inventory_citus_tags (
            ip inet, tags text[], tag_confidence jsonb,
            maxmind_ts timestamptz, cymru_ts timestamptz, greynoise_ts timestamptz, rdns_ts timestamptz) ON COMMIT DROP;
    ELSE
        TRUNCATE pg_temp.ip_inventory_citus_tag_rows, pg_temp.ip_inventory_citus_tags;
    END IF;
    INSERT INTO pg_temp.ip_inventory_citus_tag_rows
    SELECT inv.* FROM @extschema@.ip_inventory AS inv
    WHERE inv.ip_address = ANY (ips)
      AND (NOT stale_only OR @extschema@._ip_inventory_tags_stale(inv.tags, inv.tags_generation, st.generation, st.enabled_rules));
    -- The compiled expression is the rules' (values as quoted literals), run over the copies.
    EXECUTE format($sql$
        INSERT INTO pg_temp.ip_inventory_citus_tags
        SELECT inv.ip_address, x.tags, x.tag_confidence, inv.maxmind_ts, inv.cymru_ts, inv.greynoise_ts, inv.rdns_ts
        FROM pg_temp.ip_inventory_citus_tag_rows AS inv,
             LATERAL %s AS x
        WHERE inv.tags IS DISTINCT FROM x.tags OR inv.tag_confidence IS DISTINCT FROM x.tag_confidence
           OR inv.tags_generation IS DISTINCT FROM $1 $sql$,
        CASE WHEN st.enabled_rules > 0 AND st.compiled IS NOT NULL THEN st.compiled
             ELSE '(SELECT ''{}''::pg_catalog.text[] AS tags, ''{}''::pg_catalog.jsonb AS tag_confidence)' END)
    USING st.generation;
    WITH t AS MATERIALIZED (SELECT * FROM pg_temp.ip_inventory_citus_tags)
    UPDATE @extschema@.ip_inventory AS cur SET
        tags = t.tags, tag_confidence = t.tag_confidence, tags_generation = st.generation
    FROM t
    WHERE cur.ip_address = t.ip
      AND cur.maxmind_ts IS NOT DISTINCT FROM t.maxmind_ts AND cur.cymru_ts IS NOT DISTINCT FROM t.cymru_ts
      AND cur.greynoise_ts IS NOT DISTINCT FROM t.greynoise_ts AND cur.rdns_ts IS NOT DISTINCT FROM t.rdns_ts;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END $$;

-- After a flush: the flushed rows and up to `lim` other rows whose tags are stale (rows the
-- workers' triggers recorded in their shards: the workers have neither the rules nor the
-- lists). Nothing while no rule is enabled.
CREATE FUNCTION @extschema@._ip_inventory_citus_tag_pending(ips inet[], lim int) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st record;
BEGIN
    SELECT s.generation, s.enabled_rules INTO st FROM @extschema@.ip_inventory_tag_state AS s;
    IF st.enabled_rules = 0 THEN
        RETURN 0;
    END IF;
    RETURN @extschema@._ip_inventory_citus_tag(coalesce(ips, '{}') || ARRAY(
               SELECT inv.ip_address FROM @extschema@.ip_inventory AS inv
               WHERE @extschema@._ip_inventory_tags_stale(inv.tags, inv.tags_generation, st.generation, st.enabled_rules)
               ORDER BY inv.ip_address LIMIT lim), true);
END $$;

-- After the node procedures changed rows in their shards (backfill: new rows; enrich_pending:
-- re-enriched rows, marked stale there): ip_inventory_retag on the coordinator, in its own
-- connection (it commits per batch). Its summary, or why it did not run.
CREATE FUNCTION @extschema@._ip_inventory_citus_retag_after() RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    IF (SELECT s.enabled_rules FROM @extschema@.ip_inventory_tag_state AS s) = 0 THEN
        RETURN to_jsonb('no enabled tag rule'::text);
    END IF;
    SELECT * INTO r FROM run_command_on_coordinator('CALL @extschema@.ip_inventory_retag()');
    IF r.success IS NOT TRUE THEN
        RAISE WARNING 'tags not updated: %', left(r.result, 300)
            USING HINT = 'Run CALL ip_inventory_retag(); on the coordinator.';
        RETURN jsonb_build_object('error', left(r.result, 300));
    END IF;
    -- (CALL answers with its INOUT parameter: the retag summary.)
    RETURN CASE WHEN r.result ~ '^\{' THEN r.result::jsonb ELSE to_jsonb(r.result) END;
END $$;

-- One batch of retention (mode delete) in an inventory shard on this node: rows last seen
-- before the cutoff, in address order (a dry run counts them all).
CREATE FUNCTION @extschema@._ip_inventory_citus_retain_shard(
    shard regclass, cutoff timestamptz, dry_run boolean, batch_size int, INOUT summary jsonb, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    IF dry_run THEN
        EXECUTE format('SELECT count(*) FROM %s WHERE last_seen_at < $1', shard) INTO n USING cutoff;
    ELSE
        EXECUTE format('DELETE FROM %1$s WHERE ip_address IN (SELECT ip_address FROM %1$s WHERE last_seen_at < $1
                        ORDER BY ip_address LIMIT $2 FOR UPDATE)', shard) USING cutoff, batch_size;
        GET DIAGNOSTICS n = ROW_COUNT;
    END IF;
    summary := summary || jsonb_build_object('inventory_rows', (summary ->> 'inventory_rows')::bigint + n);
    done := dry_run OR n < batch_size;
END $$;

-- One batch of retention (mode anonymize) of the distributed inventory, on the coordinator: a
-- row cannot change its address (the distribution column) in place, so the batch's rows are
-- deleted from their shards and written back by _ip_inventory_merge_anonymized as one row per
-- truncated network, in the network's shard, in one distributed transaction. A row observed
-- since it was picked no longer matches the DELETE's condition and stays.
CREATE FUNCTION @extschema@._ip_inventory_citus_anonymize_step(
    cutoff timestamptz, dry_run boolean, batch_size int, prefix_v4 int, prefix_v6 int,
    INOUT summary jsonb, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    batch inet[];
    taken @extschema@.ip_inventory[];
    n bigint;
    networks bigint;
BEGIN
    IF dry_run THEN
        SELECT count(*), count(DISTINCT @extschema@.ip_anonymize(ip_address, prefix_v4, prefix_v6))
          INTO n, networks
          FROM @extschema@.ip_inventory WHERE last_seen_at < cutoff AND ip_class <> 'anonymized';
        summary := summary || jsonb_build_object('inventory_rows', n, 'inventory_networks', networks);
        done := true;
        RETURN;
    END IF;
    batch := ARRAY(SELECT ip_address FROM @extschema@.ip_inventory
                   WHERE last_seen_at < cutoff AND ip_class <> 'anonymized'
                   ORDER BY ip_address LIMIT batch_size);
    WITH picked AS (
        DELETE FROM @extschema@.ip_inventory AS inv
        WHERE inv.ip_address = ANY (batch) AND inv.last_seen_at < cutoff AND inv.ip_class <> 'anonymized'
        RETURNING inv AS r)
    SELECT array_agg(picked.r) INTO taken FROM picked;
    n := @extschema@._ip_inventory_merge_anonymized(taken, prefix_v4, prefix_v6);
    summary := summary || jsonb_build_object('inventory_rows', (summary ->> 'inventory_rows')::bigint + n);
    done := cardinality(batch) < batch_size;
END $$;

-- One batch of retention in an event shard on this node (_ip_inventory_retain_events: as the
-- table's owner, by the shard's attached time column). Anonymize reaches only tables whose
-- address columns do not hold the distribution column (_ip_inventory_citus_retention_shards).
CREATE FUNCTION @extschema@._ip_inventory_citus_retain_events(
    shard regclass, cutoff timestamptz, mode text, dry_run boolean, batch_size int, prefix_v4 int, prefix_v6 int,
    INOUT summary jsonb, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    n := @extschema@._ip_inventory_retain_events(shard, mode, cutoff, prefix_v4, prefix_v6, batch_size, dry_run);
    summary := summary || jsonb_build_object('event_rows', (summary ->> 'event_rows')::bigint + coalesce(n, 0));
    done := n IS NULL OR dry_run OR n < batch_size;
END $$;

-- The attached distributed event tables that anonymize cannot change: one of their address
-- columns is the distribution column (the supported layout's source address). Rewriting it
-- would leave rows in the shard of their old address, where Citus no longer finds them.
CREATE FUNCTION @extschema@._ip_inventory_citus_anonymize_refused() RETURNS SETOF text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- (PL/pgSQL, not a SQL-standard body: Citus' catalog exists only where Citus is loaded.)
    RETURN QUERY
    SELECT o.event_table FROM @extschema@.ip_inventory_citus_observed AS o
    JOIN pg_catalog.pg_dist_partition AS p ON p.logicalrelid = pg_catalog.to_regclass(o.event_table)
    WHERE o.ts_column IS NOT NULL AND p.partmethod = 'h'
      AND pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) = ANY (o.ip_columns)
    ORDER BY o.event_table;
END $$;
-- The shards on this node that a node's retention works on: the inventory's (mode delete:
-- anonymize works on the inventory from the coordinator), then those of the attached
-- distributed event tables that have a time column; with anonymize, the shards of the tables
-- it cannot change come apart (refused).
CREATE FUNCTION @extschema@._ip_inventory_citus_retention_shards(
    mode text, OUT inventory regclass[], OUT events regclass[], OUT refused regclass[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cannot text[] := CASE WHEN mode = 'anonymize' THEN ARRAY(SELECT @extschema@._ip_inventory_citus_anonymize_refused())
                          ELSE '{}' END;
BEGIN
    inventory := CASE WHEN mode = 'delete' THEN @extschema@._ip_inventory_citus_node_shards('@extschema@.ip_inventory')
                      ELSE '{}' END;
    events := ARRAY(SELECT s FROM @extschema@.ip_inventory_citus_observed AS o,
                           LATERAL @extschema@._ip_inventory_citus_local_shards(to_regclass(o.event_table)) AS s
                    WHERE o.ts_column IS NOT NULL AND to_regclass(o.event_table) IS NOT NULL
                      AND o.event_table <> ALL (cannot)
                    ORDER BY o.event_table, s::text);
    refused := ARRAY(SELECT s FROM unnest(cannot) AS t,
                            LATERAL @extschema@._ip_inventory_citus_local_shards(to_regclass(t)) AS s
                     ORDER BY t, s::text);
END $$;

-- A node's part of ip_inventory_citus_retention: its inventory shards (delete) or, on the
-- coordinator, the distributed inventory (anonymize), then its event shards, batch by batch,
-- each committed.
CREATE PROCEDURE @extschema@._ip_inventory_citus_retention_node(
    cutoff timestamptz, mode text, dry_run boolean, batch_size int, prefix_v4 int, prefix_v6 int,
    delete_unanonymizable boolean, INOUT summary jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    shards record;
    shard regclass;
    step record;
BEGIN
    shards := @extschema@._ip_inventory_citus_retention_shards(mode);
    summary := @extschema@._ip_inventory_citus_add_summary(NULL::jsonb, NULL::jsonb);
    IF mode = 'anonymize' AND @extschema@._ip_inventory_citus_on_coordinator() THEN
        LOOP
            step := @extschema@._ip_inventory_citus_anonymize_step(cutoff, dry_run, batch_size, prefix_v4, prefix_v6, summary);
            summary := step.summary;
            COMMIT;
            EXIT WHEN step.done;
        END LOOP;
    END IF;
    FOREACH shard IN ARRAY shards.inventory LOOP
        LOOP
            step := @extschema@._ip_inventory_citus_retain_shard(shard, cutoff, dry_run, batch_size, summary);
            summary := step.summary;
            COMMIT;
            EXIT WHEN step.done;
        END LOOP;
    END LOOP;
    FOREACH shard IN ARRAY shards.events LOOP
        LOOP
            step := @extschema@._ip_inventory_citus_retain_events(shard, cutoff, mode, dry_run, batch_size,
                                                                   prefix_v4, prefix_v6, summary);
            summary := step.summary;
            COMMIT;
            EXIT WHEN step.done;
        END LOOP;
    END LOOP;
    -- Old events that anonymize cannot change go, when the caller asked for it.
    FOREACH shard IN ARRAY CASE WHEN delete_unanonymizable THEN shards.refused ELSE '{}' END LOOP
        LOOP
            step := @extschema@._ip_inventory_citus_retain_events(shard, cutoff, 'delete', dry_run, batch_size,
                                                                   prefix_v4, prefix_v6, summary);
            summary := step.summary;
            COMMIT;
            EXIT WHEN step.done;
        END LOOP;
    END LOOP;
END $$;

-- Retention on a Citus cluster: every node works, in its own shards, on the attached events
-- older than older_than, and on the inventory rows last seen before then (delete: every node
-- in its shards; anonymize: the coordinator, which moves each row to the shard of its
-- network), in batches that commit (resumable by calling it again). Events distributed by an
-- address column cannot be anonymized (the address is their distribution column): with
-- delete_unanonymizable their old events are deleted instead; without, the result names
-- them and the run is 'incomplete'.
CREATE FUNCTION @extschema@.ip_inventory_citus_retention(
    older_than interval, mode text DEFAULT 'delete', dry_run boolean DEFAULT true, batch_size int DEFAULT 10000,
    prefix_v4 int DEFAULT 24, prefix_v6 int DEFAULT 48, delete_unanonymizable boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    run record;
    cutoff timestamptz;
    refused text[] := '{}';
BEGIN
    PERFORM @extschema@._ip_inventory_citus_require('ip_inventory_citus_retention');
    PERFORM @extschema@._ip_inventory_retention_check(older_than, mode, dry_run, batch_size, prefix_v4, prefix_v6,
        'For example SELECT ip_inventory_citus_retention(interval ''90 days'');');
    IF delete_unanonymizable IS NULL THEN
        RAISE EXCEPTION 'delete_unanonymizable must not be NULL' USING ERRCODE = '22023';
    END IF;
    IF mode = 'anonymize' THEN
        refused := ARRAY(SELECT @extschema@._ip_inventory_citus_anonymize_refused());
        IF cardinality(refused) > 0 AND NOT delete_unanonymizable THEN
            RAISE WARNING 'ip_inventory_citus_retention: not anonymizing the events of %: an address column is their distribution column',
                array_to_string(refused, ', ')
                USING HINT = 'Delete their old events instead: ip_inventory_citus_retention(..., delete_unanonymizable => true).';
        END IF;
    END IF;
    cutoff := now() - older_than;
    SELECT * INTO run FROM @extschema@._ip_inventory_citus_on_nodes(format(
        'CALL @extschema@._ip_inventory_citus_retention_node(%L, %L, %L, %s, %s, %s, %L)',
        cutoff, mode, dry_run, batch_size, prefix_v4, prefix_v6, delete_unanonymizable));
    -- The failure records (on the coordinator) of the addresses taken out (sql/retention.sql).
    RETURN jsonb_build_object('dry_run', dry_run, 'mode', mode, 'cutoff', cutoff,
                              'status', CASE WHEN run.failed > 0 OR (cardinality(refused) > 0 AND NOT delete_unanonymizable)
                                             THEN 'incomplete' ELSE 'finished' END,
                              'inventory', jsonb_build_object('rows', coalesce((run.total ->> 'inventory_rows')::bigint, 0))
                                  || CASE WHEN mode = 'anonymize' AND dry_run
                                          THEN jsonb_build_object('networks', coalesce((run.total ->> 'inventory_networks')::bigint, 0))
                                          ELSE '{}' END,
                              'events', jsonb_build_object('rows', coalesce((run.total ->> 'event_rows')::bigint, 0))
                                  || CASE WHEN cardinality(refused) > 0 AND delete_unanonymizable
                                          THEN jsonb_build_object('deleted_not_anonymized', to_jsonb(refused))
                                          WHEN cardinality(refused) > 0
                                          THEN jsonb_build_object('not_anonymized', to_jsonb(refused),
                                                                  'reason', 'an address column is the distribution column')
                                          ELSE '{}' END,
                              'nodes', run.nodes)
        || (@extschema@._ip_inventory_retain_failures(cutoff, mode, dry_run, '{}'::jsonb)).summary;
END $$;

COMMENT ON FUNCTION @extschema@.ip_inventory_distribute(regclass, text, int) IS
    'Citus, on the coordinator: distributes ip_inventory by ip_address (once) and, when given, an event table by its address column, colocated with it. E.g. SELECT ip_inventory_distribute(''raw_events'', ''src_ip''); then SELECT ip_inventory_attach(...). docs/scaling.md.';
COMMENT ON FUNCTION @extschema@.ip_inventory_citus_flush() IS
    'Citus: moves the observations workers queued for inventory shards of other ranges into ip_inventory, in one distributed transaction. Schedule it (every minute).';
COMMENT ON FUNCTION @extschema@.ip_inventory_citus_backfill(regclass, text[], text, int) IS
    'Citus: backfill of a distributed event table, every node its own shards in batches that commit (resumable), then the queue flushed. Returns the counts per node.';
COMMENT ON FUNCTION @extschema@.ip_inventory_citus_enrich_pending(int) IS
    'Citus: enrich_pending on every node for its own inventory shards, from its own MaxMind databases, in batches that commit (resumable).';
COMMENT ON FUNCTION @extschema@.ip_inventory_citus_nodes() IS
    'Citus: every node as it sees itself: MaxMind builds and generation in service, database status, a digest of its ip_inventory.* settings.';
COMMENT ON FUNCTION @extschema@.ip_inventory_citus_reload() IS
    'Citus: rolls a MaxMind update out: pg_reload_conf() and maxmind_reload() on every node, then the builds each serves.';
COMMENT ON FUNCTION @extschema@.ip_inventory_citus_stats() IS
    'Citus: ip_inventory_stats of every node, with its name.';

-- Everything that writes, calls other nodes or shows their state is for superusers and the
-- roles granted it; the catalog lookups below it stay callable (backfill and retention call
-- them as their callers, on a single node too).
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_distribute(regclass, text, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_citus_flush() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_citus_backfill(regclass, text[], text, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_citus_enrich_pending(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_citus_nodes() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_citus_reload() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_citus_stats() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_health() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_node_info() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_on_nodes(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_set_observed(regclass, text[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_record(regclass, inet[], bigint[], timestamptz[], timestamptz[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_record_shard(text, inet[], bigint[], timestamptz[], timestamptz[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_enrich_start(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_enrich_step(regclass, int, inet, timestamptz, timestamptz, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_enrich_end(jsonb) FROM PUBLIC;
REVOKE ALL ON PROCEDURE @extschema@._ip_inventory_citus_enrich_node(int, jsonb) FROM PUBLIC;
REVOKE ALL ON PROCEDURE @extschema@._ip_inventory_citus_backfill_node(text, text[], text, int, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_citus_retention(interval, text, boolean, int, int, int, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_retain_shard(regclass, timestamptz, boolean, int, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_anonymize_step(timestamptz, boolean, int, int, int, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_retain_events(regclass, timestamptz, text, boolean, int, int, int, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_anonymize_refused() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_retention_shards(text) FROM PUBLIC;
REVOKE ALL ON PROCEDURE @extschema@._ip_inventory_citus_retention_node(timestamptz, text, boolean, int, int, int, boolean, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.ip_inventory_citus_retention(interval, text, boolean, int, int, int, boolean) IS
    'Citus: retention. Every node deletes (mode delete) or anonymizes (mode anonymize) the attached events older than older_than in its own shards, and the inventory rows last seen before then (delete: in each node''s shards; anonymize: merged per network by the coordinator), in batches that commit. Events distributed by an address column cannot be anonymized: delete_unanonymizable => true deletes their old events instead, else the result names them. dry_run (the default) only counts.';
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_apply_maxmind(inet[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_store_answers(text, jsonb, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_tag(inet[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_tag_pending(inet[], int) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_citus_retag_after() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@._ip_inventory_citus_tag(inet[], boolean) IS
    'Citus, on the coordinator: tags the given rows of the distributed inventory by the rules in force, computed on the coordinator and written by a distributed UPDATE (internal: _ip_inventory_tag, ip_inventory_retag).';
COMMENT ON FUNCTION @extschema@._ip_inventory_citus_tag_pending(inet[], int) IS
    'Citus: tags the flushed rows and a bounded number of other stale rows (those the workers recorded) (internal: ip_inventory_citus_flush).';
COMMENT ON FUNCTION @extschema@._ip_inventory_citus_retag_after() IS
    'Citus: runs ip_inventory_retag on the coordinator in its own connection after the node procedures changed rows (internal).';
