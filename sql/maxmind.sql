-- Re-enrichment from MaxMind: which rows a database update leaves pending, and how their
-- MaxMind columns are rewritten (enrich_pending, cascade_refresh('maxmind')).

-- Whether MaxMind should (re-)enrich a public row: never answered, or answered by another
-- City or ASN build than the ones in service (NULL: that database is not configured).
CREATE FUNCTION @extschema@._ip_inventory_maxmind_pending(
    maxmind_ts timestamptz, maxmind_build timestamptz, maxmind_asn_build timestamptz,
    city_build timestamptz, asn_build timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN maxmind_ts IS NULL
    OR (city_build IS NOT NULL AND maxmind_build IS DISTINCT FROM city_build)
    OR (asn_build IS NOT NULL AND maxmind_asn_build IS DISTINCT FROM asn_build);

-- Re-enriches the given addresses from MaxMind (strict: a database that cannot be used is an
-- error). Writes only MaxMind's columns and enrichment->'maxmind'; the ASN stays with Team
-- Cymru when MaxMind has none, and is cleared when only an older MaxMind build had one.
-- The caller holds the rows' locks already, taken either in address order (the order recorders
-- use) or with SKIP LOCKED, so this update never waits on a recorder and cannot deadlock with
-- one. Locking here again would cost a second index probe per row.
CREATE FUNCTION @extschema@._ip_inventory_apply_maxmind(ips inet[]) RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    updated bigint;
BEGIN
    UPDATE @extschema@.ip_inventory AS inv SET
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
    FROM unnest(ips) AS b(ip), @extschema@.enrich_ip(b.ip) AS e, @extschema@._ip_inventory_maxmind_columns(e) AS c
    WHERE inv.ip_address = b.ip AND inv.ip_class IN ('public', '6to4', 'teredo');
    GET DIAGNOSTICS updated = ROW_COUNT;
    PERFORM @extschema@._ip_inventory_count_recorded(0::bigint, 0::bigint, updated);
    RETURN updated;
END $$;

COMMENT ON FUNCTION @extschema@._ip_inventory_maxmind_pending(timestamptz, timestamptz, timestamptz, timestamptz, timestamptz) IS
    'Whether MaxMind should (re-)enrich a row: never answered, or answered by another build than the one in service (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_apply_maxmind(inet[]) IS
    'Re-enriches the given addresses from MaxMind, writing only MaxMind''s columns (internal: enrich_pending, cascade_refresh).';
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_apply_maxmind(inet[]) FROM PUBLIC;
