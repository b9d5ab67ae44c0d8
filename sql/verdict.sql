-- What a live consumer asks (ip_verdict), the queue that gets its stale answers refreshed
-- first (shared memory, src/sources/queue.rs), and refreshing chosen addresses now
-- (cascade_refresh_now). docs/verdict.md is the orchestrator's guide.

-- Adds the addresses not in the inventory yet (canonical form), enriched from MaxMind as
-- recording would; they have no observation yet: observation_count 0, first and last seen
-- the time they were added, until an event is recorded. Returns how many were added.
CREATE FUNCTION @extschema@._ip_inventory_add(ips inet[]) RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    given inet[];
    known inet[];
    fresh inet[];
    added bigint;
    enriched bigint;
    new_ips inet[];
BEGIN
    -- The addresses not in the inventory: one read by address (on Citus routed to the shards
    -- that hold them; Citus refuses a correlated NOT EXISTS beside unnest), the difference
    -- taken locally. One that a recorder adds meanwhile is skipped by ON CONFLICT.
    given := ARRAY(SELECT DISTINCT @extschema@.ip_canonical(x) FROM unnest(ips) AS x WHERE x IS NOT NULL);
    known := ARRAY(SELECT i.ip_address FROM @extschema@.ip_inventory AS i WHERE i.ip_address = ANY (given));
    fresh := ARRAY(SELECT g FROM unnest(given) AS g EXCEPT SELECT k FROM unnest(known) AS k);
    WITH new AS (
        INSERT INTO @extschema@.ip_inventory AS inv (
            ip_address, first_seen_at, last_seen_at, observation_count, ip_class,
            geo_country, geo_country_name, geo_city, geo_subdivision, geo_latitude,
            geo_longitude, geo_network, maxmind_build, maxmind_asn_build, maxmind_ts,
            asn_number, asn_org, asn_network, asn_source, enrichment,
            is_anonymous, is_anonymous_vpn, is_hosting_provider, is_public_proxy,
            is_residential_proxy, is_tor_exit_node,
            isp, isp_organization, mobile_country_code, mobile_network_code, connection_type)
        SELECT a.ip, now(), now(), 0, a.class,
               m.geo_country, m.geo_country_name, m.geo_city, m.geo_subdivision, m.geo_latitude,
               m.geo_longitude, m.geo_network, m.maxmind_build, m.maxmind_asn_build, m.maxmind_ts,
               m.asn_number, m.asn_org, m.asn_network, m.asn_source,
               jsonb_set_lax('{}', '{maxmind}', m.maxmind_json, true, 'delete_key'),
               m.is_anonymous, m.is_anonymous_vpn, m.is_hosting_provider, m.is_public_proxy,
               m.is_residential_proxy, m.is_tor_exit_node,
               m.isp, m.isp_organization, m.mobile_country_code, m.mobile_network_code, m.connection_type
        FROM (SELECT f AS ip, @extschema@.ip_class(f) AS class FROM unnest(fresh) AS f) AS a
        LEFT JOIN LATERAL (
            SELECT * FROM @extschema@._ip_inventory_new_row_maxmind(a.ip)
            OFFSET 0 -- a gated subquery: see _ip_inventory_new_row_maxmind
        ) AS m ON true
        -- Address order, as recorders insert: concurrent writers cannot deadlock.
        ORDER BY a.ip
        ON CONFLICT (ip_address) DO NOTHING
        RETURNING inv.ip_address AS ip, inv.maxmind_ts IS NOT NULL AS with_maxmind)
    SELECT count(*), count(*) FILTER (WHERE with_maxmind), array_agg(ip) INTO added, enriched, new_ips FROM new;
    -- New rows get their tags (sql/tags.sql).
    IF new_ips IS NOT NULL THEN
        PERFORM @extschema@._ip_inventory_tag(new_ips);
    END IF;
    PERFORM @extschema@._ip_inventory_count_recorded(0::bigint, added, enriched);
    RETURN added;
END $$;
COMMENT ON FUNCTION @extschema@._ip_inventory_add(inet[]) IS
    'Adds addresses not in ip_inventory yet, enriched from MaxMind, with no observation (internal: cascade_refresh_now, the refresh queue).';
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_add(inet[]) FROM PUBLIC;

-- The verdict. It reads the inventory row with a plain snapshot read (never waits for a
-- refresh or a recorder holding the row), answers an unknown address from MaxMind (offline),
-- never calls the network, and queues in shared memory (never waits on a lock a transaction
-- holds). One row of typed columns: the consumer reads it as a record, or as JSON with
-- to_jsonb(v). SECURITY DEFINER: the caller needs no privilege on the inventory or on the
-- queue, only EXECUTE on this function (not PUBLIC: it writes the queue).
CREATE FUNCTION @extschema@.ip_verdict(ip inet,
    OUT ip_address inet, OUT known boolean, OUT ip_class text,
    OUT geo_country text, OUT geo_country_name text, OUT geo_city text,
    OUT asn_number bigint, OUT asn_org text, OUT asn_source text,
    OUT is_scanner boolean, OUT greynoise_classification text, OUT greynoise_riot boolean,
    OUT greynoise_name text, OUT rdns_name text,
    OUT first_seen_at timestamptz, OUT last_seen_at timestamptz, OUT observation_count bigint,
    OUT maxmind_ts timestamptz, OUT cymru_ts timestamptz, OUT greynoise_ts timestamptz,
    OUT rdns_ts timestamptz, OUT stale text[], OUT queued boolean)
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    addr inet := @extschema@.ip_canonical(ip);
    r @extschema@.ip_inventory;
    -- MaxMind as recording asks it: a database that cannot be used leaves its fields NULL
    -- (one WARNING per session) rather than failing the consumer.
    e @extschema@.ip_enrichment := @extschema@._ip_inventory_maxmind(addr);
    want text[];
BEGIN
    ip_address := addr;
    stale := '{}';
    SELECT i.* INTO r FROM @extschema@.ip_inventory AS i WHERE i.ip_address = addr;
    known := FOUND;
    IF known THEN
        ip_class := r.ip_class;
        geo_country := r.geo_country;
        geo_country_name := r.geo_country_name;
        geo_city := r.geo_city;
        asn_number := r.asn_number;
        asn_org := r.asn_org;
        asn_source := r.asn_source;
        is_scanner := r.is_scanner;
        greynoise_classification := r.enrichment -> 'greynoise' ->> 'classification';
        greynoise_riot := (r.enrichment -> 'greynoise' ->> 'riot')::boolean;
        greynoise_name := r.enrichment -> 'greynoise' ->> 'name';
        rdns_name := r.enrichment -> 'rdns' ->> 'name';
        first_seen_at := r.first_seen_at;
        last_seen_at := r.last_seen_at;
        observation_count := r.observation_count;
        maxmind_ts := r.maxmind_ts;
        cymru_ts := r.cymru_ts;
        greynoise_ts := r.greynoise_ts;
        rdns_ts := r.rdns_ts;
        -- MaxMind is stale when the row is pending (never enriched, or from another build
        -- than the one that answers now); enrich_pending or cascade_refresh('maxmind') fix it.
        IF @extschema@._ip_inventory_maxmind_serves(r.ip_class)
           AND @extschema@._ip_inventory_maxmind_pending(r.maxmind_ts, r.maxmind_build, r.maxmind_asn_build,
                                                         e.maxmind_build, e.asn_build) THEN
            stale := stale || 'maxmind'::text;
        END IF;
    ELSE
        -- Not in the inventory: MaxMind answers now; no network source has been asked.
        ip_class := e.ip_class;
        geo_country := e.country_code;
        geo_country_name := e.country_name;
        geo_city := e.city;
        asn_number := e.asn;
        asn_org := e.asn_org;
        asn_source := CASE WHEN e.asn IS NOT NULL THEN 'maxmind' END;
        maxmind_ts := CASE WHEN e.maxmind_build IS NOT NULL OR e.asn_build IS NOT NULL THEN now() END;
    END IF;
    -- The network sources that serve the address and have no fresh answer (not those switched
    -- off or told to skip its network: no refresh would ask them).
    want := @extschema@._ip_inventory_verdict_due(addr, ip_class, asn_source, cymru_ts, greynoise_ts, rdns_ts);
    stale := stale || want;
    queued := cardinality(want) > 0 AND @extschema@._ip_inventory_queue(addr, want);
END $$;
COMMENT ON FUNCTION @extschema@.ip_verdict(inet) IS
    'What the inventory knows about an address, for a live consumer (docs/verdict.md): geo, ASN, GreyNoise, reverse DNS, first/last seen and observations, when each source last answered, which sources are missing or stale (stale), and whether the address is queued so that the next cascade_refresh() of those sources asks about it first (queued). An address not in the inventory is answered from MaxMind. Never calls the network, never waits for a row lock.';
REVOKE ALL ON FUNCTION @extschema@.ip_verdict(inet) FROM PUBLIC;

-- The refresh queue, for operators: which addresses wait for which source, since when.
CREATE FUNCTION @extschema@.ip_inventory_refresh_queue(
    OUT ip_address inet, OUT sources text[], OUT queued_at timestamptz)
RETURNS SETOF record LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT q.ip_address::inet, q.sources, q.queued_at FROM @extschema@._ip_inventory_queue_entries() AS q;
END;
COMMENT ON FUNCTION @extschema@.ip_inventory_refresh_queue() IS
    'Addresses ip_verdict() queued for the next refresh of the sources named (bounded, in shared memory; an entry lapses after a day). Needs shared_preload_libraries.';
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_refresh_queue() FROM PUBLIC;

-- Refresh on demand: the given addresses (added to the inventory when missing) and the
-- inventory rows within a network, now, whatever their TTL, from one source or all. Claims,
-- the GreyNoise quota, failures and privileges are those of cascade_refresh(). The addresses
-- it adds are rows of its own transaction until it commits: an event for one of them waits
-- for the call (an operator's few addresses; the scheduled refresh adds queued ones only
-- when storing).
CREATE FUNCTION @extschema@.cascade_refresh_now(
    source text, addresses inet[] DEFAULT NULL, within cidr DEFAULT NULL, lim int DEFAULT 1000)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    given inet[];
    targets inet[];
    added bigint;
    one jsonb;
BEGIN
    IF source IS NULL OR lim IS NULL THEN
        RAISE EXCEPTION 'cascade_refresh_now: source and lim must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF addresses IS NULL AND within IS NULL THEN
        RAISE EXCEPTION 'cascade_refresh_now: give addresses, within, or both' USING ERRCODE = '22004';
    END IF;
    PERFORM @extschema@._ip_inventory_citus_coordinator_only('cascade_refresh_now');
    IF lim < 0 OR lim > 100000 THEN
        RAISE EXCEPTION 'cascade_refresh_now: lim must be between 0 and 100000, not %', lim USING ERRCODE = '22023';
    END IF;
    IF source NOT IN ('maxmind', 'cymru', 'greynoise', 'rdns', 'all') THEN
        RAISE EXCEPTION 'unknown enrichment source "%"', left(source, 64)
            USING ERRCODE = '22023', HINT = 'Use maxmind, cymru, greynoise, rdns or all.';
    END IF;
    IF array_position(addresses, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'cascade_refresh_now: addresses hold a NULL' USING ERRCODE = '22004';
    END IF;
    IF EXISTS (SELECT FROM unnest(addresses) AS a WHERE masklen(a) <> CASE family(a) WHEN 4 THEN 32 ELSE 128 END) THEN
        RAISE EXCEPTION 'cascade_refresh_now: % is a network, not an address',
            (SELECT a FROM unnest(addresses) AS a WHERE masklen(a) <> CASE family(a) WHEN 4 THEN 32 ELSE 128 END LIMIT 1)
            USING ERRCODE = '22023', HINT = 'Name networks with within => ''192.0.2.0/24''.';
    END IF;
    given := ARRAY(SELECT DISTINCT @extschema@.ip_canonical(a) FROM unnest(addresses) AS a ORDER BY 1);
    IF cardinality(given) > lim THEN
        RAISE EXCEPTION 'cascade_refresh_now: % addresses, more than lim (%)', cardinality(given), lim
            USING ERRCODE = '22023', HINT = 'Refresh them in batches, or raise lim.';
    END IF;
    added := @extschema@._ip_inventory_add(given);
    targets := given || ARRAY(
        SELECT i.ip_address FROM @extschema@.ip_inventory AS i
        WHERE within IS NOT NULL AND i.ip_address <<= within AND i.ip_address <> ALL (given)
        ORDER BY i.observation_count DESC, i.ip_address
        LIMIT lim - cardinality(given));

    IF source <> 'all' THEN
        -- A source switched off stays off (cascade_refresh's answer: "disabled": true).
        one := @extschema@._ip_inventory_refresh_source(source, lim, false, targets);
        RETURN one || jsonb_build_object('added', added);
    END IF;
    RETURN @extschema@._ip_inventory_refresh_all(lim, false, targets, 'cascade_refresh_now', started)
        || jsonb_build_object('added', added);
END $$;
COMMENT ON FUNCTION @extschema@.cascade_refresh_now(text, inet[], cidr, int) IS
    'Refreshes the given addresses (added to ip_inventory when missing) and up to lim inventory rows within a network now, whatever their TTL, from one source (maxmind, cymru, greynoise, rdns) or each in turn (all); returns the counts of cascade_refresh() and added. Same claims, GreyNoise quota and failure records as cascade_refresh().';
-- It calls the network: operators get GRANT EXECUTE (docs/cascade.md).
REVOKE ALL ON FUNCTION @extschema@.cascade_refresh_now(text, inet[], cidr, int) FROM PUBLIC;
