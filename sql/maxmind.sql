-- Re-enrichment from MaxMind: which rows a database update leaves pending, and how their
-- MaxMind columns are rewritten (enrich_pending, cascade_refresh('maxmind')).

-- Which addresses MaxMind answers for, by their class: public ones, and the IPv6 forms that
-- carry a public IPv4 address (6to4, Teredo), which MaxMind's databases alias to the IPv4
-- tree (core: IpClass::in_maxmind). Every MaxMind writer, selector and report uses it.
CREATE FUNCTION @extschema@._ip_inventory_maxmind_serves(ip_class text)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ip_class IN ('public', '6to4', 'teredo');
COMMENT ON FUNCTION @extschema@._ip_inventory_maxmind_serves(text) IS
    'Whether MaxMind answers for addresses of this class: public, 6to4, teredo (internal).';

-- Whether MaxMind should (re-)enrich a row it serves: never answered, or answered by another
-- City or ASN build than the ones in service (NULL: that database is not configured).
CREATE FUNCTION @extschema@._ip_inventory_maxmind_pending(
    maxmind_ts timestamptz, maxmind_build timestamptz, maxmind_asn_build timestamptz,
    city_build timestamptz, asn_build timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN maxmind_ts IS NULL
    OR (city_build IS NOT NULL AND maxmind_build IS DISTINCT FROM city_build)
    OR (asn_build IS NOT NULL AND maxmind_asn_build IS DISTINCT FROM asn_build);

-- The one statement that writes MaxMind's answers into inventory rows, as text, for every
-- writer: _ip_inventory_apply_maxmind below and the Citus shard and coordinator writers
-- (sql/citus.sql) run it on their relation. target: the inventory relation (qualified);
-- answers: a relation with the column ip, the columns of _ip_inventory_maxmind_columns and
-- those of ip_anonymizer and _ip_inventory_isp_columns.
-- It writes only MaxMind's columns, enrichment->'maxmind', and the ASN by the ASN rule (whose
-- offer counts only when the ASN database was consulted).
CREATE FUNCTION @extschema@._ip_inventory_maxmind_update(target text, answers text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format($sql$
    UPDATE %1$s AS inv SET
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
        asn_number  = CASE WHEN @extschema@._ip_inventory_asn_replaced(%3$s, c.asn_number, inv.asn_source)
                       THEN c.asn_number ELSE inv.asn_number END,
        asn_org     = CASE WHEN @extschema@._ip_inventory_asn_replaced(%3$s, c.asn_number, inv.asn_source)
                       THEN c.asn_org ELSE inv.asn_org END,
        asn_network = CASE WHEN @extschema@._ip_inventory_asn_replaced(%3$s, c.asn_number, inv.asn_source)
                       THEN c.asn_network ELSE inv.asn_network END,
        asn_source  = CASE WHEN @extschema@._ip_inventory_asn_replaced(%3$s, c.asn_number, inv.asn_source)
                       THEN c.asn_source ELSE inv.asn_source END,
        enrichment       = jsonb_set_lax(inv.enrichment, '{maxmind}', c.maxmind_json, true, 'delete_key'),
        -- The anonymizer flags go with a MaxMind answer (NULL: no data or no Anonymous-IP
        -- database); a row MaxMind did not answer for keeps its flags.
        is_anonymous         = CASE WHEN c.maxmind_ts IS NULL THEN inv.is_anonymous ELSE c.is_anonymous END,
        is_anonymous_vpn     = CASE WHEN c.maxmind_ts IS NULL THEN inv.is_anonymous_vpn ELSE c.is_anonymous_vpn END,
        is_hosting_provider  = CASE WHEN c.maxmind_ts IS NULL THEN inv.is_hosting_provider ELSE c.is_hosting_provider END,
        is_public_proxy      = CASE WHEN c.maxmind_ts IS NULL THEN inv.is_public_proxy ELSE c.is_public_proxy END,
        is_residential_proxy = CASE WHEN c.maxmind_ts IS NULL THEN inv.is_residential_proxy ELSE c.is_residential_proxy END,
        is_tor_exit_node     = CASE WHEN c.maxmind_ts IS NULL THEN inv.is_tor_exit_node ELSE c.is_tor_exit_node END,
        -- ISP and connection type likewise (NULL: no data or no ISP / Connection-Type database).
        isp                  = CASE WHEN c.maxmind_ts IS NULL THEN inv.isp ELSE c.isp END,
        isp_organization     = CASE WHEN c.maxmind_ts IS NULL THEN inv.isp_organization ELSE c.isp_organization END,
        mobile_country_code  = CASE WHEN c.maxmind_ts IS NULL THEN inv.mobile_country_code ELSE c.mobile_country_code END,
        mobile_network_code  = CASE WHEN c.maxmind_ts IS NULL THEN inv.mobile_network_code ELSE c.mobile_network_code END,
        connection_type      = CASE WHEN c.maxmind_ts IS NULL THEN inv.connection_type ELSE c.connection_type END
    FROM %2$s AS c
    WHERE inv.ip_address = c.ip AND @extschema@._ip_inventory_maxmind_serves(inv.ip_class) $sql$,
    target, answers, $o$CASE WHEN c.maxmind_asn_build IS NOT NULL THEN 'maxmind' END$o$);
COMMENT ON FUNCTION @extschema@._ip_inventory_maxmind_update(text, text) IS
    'The UPDATE that writes MaxMind''s answers into inventory rows, for a target relation and a relation of answers (internal).';

-- MaxMind's answers for the given addresses, as the relation _ip_inventory_maxmind_update
-- reads ($1: the addresses).
CREATE FUNCTION @extschema@._ip_inventory_maxmind_answers()
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN $sql$(SELECT b.ip, c.*, a.*, s.* FROM unnest($1::pg_catalog.inet[]) AS b(ip), @extschema@.enrich_ip(b.ip) AS e,
                 @extschema@._ip_inventory_maxmind_columns(e) AS c, @extschema@._ip_inventory_anonymous(b.ip) AS a,
                 @extschema@._ip_inventory_isp_columns(b.ip) AS s)$sql$;
COMMENT ON FUNCTION @extschema@._ip_inventory_maxmind_answers() IS
    'MaxMind''s answers for the addresses $1, as a relation for _ip_inventory_maxmind_update (internal).';

-- Writes MaxMind's answers for the given addresses into their inventory rows: the UPDATE
-- alone. A batch is a few thousand addresses of a table that may hold millions, so probing
-- the primary key per address is the right join. Left to its costs, the planner hashes the
-- whole inventory for every batch while the table is small enough for a sequential scan to
-- look cheaper (at 200,000 rows re-enrichment took 1.8x as long, docs/benchmarks.md): only
-- the nested loop is allowed here, for this call alone (its SET clauses).
CREATE FUNCTION @extschema@._ip_inventory_maxmind_write(ips inet[]) RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    updated bigint;
BEGIN
    EXECUTE @extschema@._ip_inventory_maxmind_update('@extschema@.ip_inventory',
                                                     @extschema@._ip_inventory_maxmind_answers())
    USING ips;
    GET DIAGNOSTICS updated = ROW_COUNT;
    RETURN updated;
END $$;

-- Re-enriches the given addresses from MaxMind (strict: a database that cannot be used is an
-- error). The caller holds the rows' locks already, taken either in address order (the order
-- recorders use) or with SKIP LOCKED, so this update never waits on a recorder and cannot
-- deadlock with one. Locking here again would cost a second index probe per row.
CREATE FUNCTION @extschema@._ip_inventory_apply_maxmind(ips inet[]) RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    updated bigint;
BEGIN
    updated := @extschema@._ip_inventory_maxmind_write(ips);
    PERFORM @extschema@._ip_inventory_count_recorded(0::bigint, 0::bigint, updated);
    -- Their tags follow their new data (sql/tags.sql).
    PERFORM @extschema@._ip_inventory_tag(ips);
    RETURN updated;
END $$;

COMMENT ON FUNCTION @extschema@._ip_inventory_maxmind_pending(timestamptz, timestamptz, timestamptz, timestamptz, timestamptz) IS
    'Whether MaxMind should (re-)enrich a row: never answered, or answered by another build than the one in service (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_apply_maxmind(inet[]) IS
    'Re-enriches the given addresses from MaxMind, writing only MaxMind''s columns (internal: enrich_pending, cascade_refresh).';
COMMENT ON FUNCTION @extschema@._ip_inventory_maxmind_write(inet[]) IS
    'Writes MaxMind''s answers into the given addresses'' inventory rows, by primary-key probes (internal: _ip_inventory_apply_maxmind).';
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_apply_maxmind(inet[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_maxmind_write(inet[]) FROM PUBLIC;
