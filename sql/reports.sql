-- Reports for psql users and BI tools, and the morning health check as one query.

CREATE VIEW @extschema@.ip_inventory_coverage AS
SELECT count(*) AS total_ips,
       count(*) FILTER (WHERE ip_class = 'public') AS public_ips,
       count(asn_number) AS with_asn,
       count(geo_country) AS with_geo,
       count(*) FILTER (WHERE is_scanner) AS scanners,
       count(*) FILTER (WHERE (enrichment -> 'greynoise' ->> 'riot')::boolean) AS riot,
       round(100.0 * count(asn_number) / nullif(count(*) FILTER (WHERE ip_class = 'public'), 0), 2) AS asn_coverage_pct,
       round(100.0 * count(geo_country) / nullif(count(*) FILTER (WHERE ip_class = 'public'), 0), 2) AS geo_coverage_pct,
       count(*) FILTER (WHERE @extschema@._ip_inventory_maxmind_serves(ip_class) AND maxmind_ts IS NULL) AS maxmind_never_enriched,
       coalesce(sum(observation_count), 0) AS observations
FROM @extschema@.ip_inventory;

CREATE VIEW @extschema@.ip_inventory_asn_sources AS
SELECT asn_source,
       count(*) AS ips,
       round(100.0 * count(*) / sum(count(*)) OVER (), 2) AS pct_of_ips_with_asn
FROM @extschema@.ip_inventory
WHERE asn_number IS NOT NULL
GROUP BY asn_source;

CREATE VIEW @extschema@.ip_inventory_top_countries AS
SELECT rank() OVER (ORDER BY count(*) DESC) AS rank,
       geo_country,
       max(geo_country_name) AS geo_country_name,
       count(*) AS ips,
       sum(observation_count) AS observations
FROM @extschema@.ip_inventory
WHERE geo_country IS NOT NULL
GROUP BY geo_country;

CREATE VIEW @extschema@.ip_inventory_top_asns AS
SELECT rank() OVER (ORDER BY count(*) DESC) AS rank,
       asn_number,
       max(asn_org) AS asn_org,
       count(*) AS ips,
       sum(observation_count) AS observations
FROM @extschema@.ip_inventory
WHERE asn_number IS NOT NULL
GROUP BY asn_number;

-- Per source: the rows it applies to, how many it never answered, how many answers are
-- older than its TTL. MaxMind has no TTL: its rows are stale when another database build
-- than the one in service answered them.
CREATE VIEW @extschema@.ip_inventory_staleness AS
SELECT 'maxmind' AS source, NULL::interval AS ttl,
       count(*) AS eligible,
       count(*) FILTER (WHERE maxmind_ts IS NULL) AS never,
       count(*) FILTER (WHERE maxmind_ts IS NOT NULL
                        AND @extschema@._ip_inventory_maxmind_pending(maxmind_ts, maxmind_build, maxmind_asn_build,
                                                         b.city_build, b.asn_build)) AS stale,
       min(maxmind_ts) AS oldest
FROM @extschema@.ip_inventory, @extschema@._ip_inventory_builds() AS b WHERE @extschema@._ip_inventory_maxmind_serves(ip_class)
UNION ALL
-- The network sources, each over the rows it serves (_ip_inventory_source_serves) outside
-- the networks it is told to skip (ip_inventory.<source>_skip_networks). One plain aggregate
-- per source: Citus pushes these down to the shards (it refuses a lateral join over a list
-- of sources). The settings are read once per query (scalar subqueries), not once per row.
SELECT 'cymru', @extschema@.ip_inventory_ttl('cymru'), count(*), count(*) FILTER (WHERE cymru_ts IS NULL),
       count(*) FILTER (WHERE cymru_ts < (SELECT now() - @extschema@.ip_inventory_ttl('cymru'))), min(cymru_ts)
FROM @extschema@.ip_inventory
WHERE @extschema@._ip_inventory_source_serves('cymru', ip_address, ip_class, asn_source)
  AND NOT ip_address <<= ANY ((SELECT @extschema@._ip_inventory_skip_networks('cymru'))::cidr[])
UNION ALL
SELECT 'greynoise', @extschema@.ip_inventory_ttl('greynoise'), count(*), count(*) FILTER (WHERE greynoise_ts IS NULL),
       count(*) FILTER (WHERE greynoise_ts < (SELECT now() - @extschema@.ip_inventory_ttl('greynoise'))), min(greynoise_ts)
FROM @extschema@.ip_inventory
WHERE @extschema@._ip_inventory_source_serves('greynoise', ip_address, ip_class, asn_source)
  AND NOT ip_address <<= ANY ((SELECT @extschema@._ip_inventory_skip_networks('greynoise'))::cidr[])
UNION ALL
SELECT 'rdns', @extschema@.ip_inventory_ttl('rdns'), count(*), count(*) FILTER (WHERE rdns_ts IS NULL),
       count(*) FILTER (WHERE rdns_ts < (SELECT now() - @extschema@.ip_inventory_ttl('rdns'))), min(rdns_ts)
FROM @extschema@.ip_inventory
WHERE @extschema@._ip_inventory_source_serves('rdns', ip_address, ip_class, asn_source)
  AND NOT ip_address <<= ANY ((SELECT @extschema@._ip_inventory_skip_networks('rdns'))::cidr[]);

-- The morning health check: one row per check. SECURITY DEFINER, so that monitoring roles
-- need EXECUTE on it alone (it reads only the extension's own tables and functions); not for
-- PUBLIC: it shows server file paths.
CREATE FUNCTION @extschema@.ip_inventory_health()
RETURNS TABLE ("check" text, status text, value text, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    warn_age interval;
    crit_age interval;
    age interval;
    cov @extschema@.ip_inventory_coverage;
    st record;
    db record;
    n bigint;
    failing bigint;
    last_seen timestamptz;
    warn_left bigint;
    crit_left bigint;
    monthly boolean;
BEGIN
    -- The MaxMind slots' databases (MaxMind's, DB-IP's or IPinfo's files): City and ASN
    -- always, the optional slots when configured (maxmind_info() lists them only then).
    FOR db IN SELECT * FROM @extschema@.maxmind_info()
              WHERE name IN ('city', 'asn', 'anonymous', 'isp', 'connection_type') LOOP
        "check" := 'maxmind_' || db.name || '_database';
        status := CASE db.status WHEN 'ok' THEN 'ok' WHEN 'stale' THEN 'warning' ELSE 'critical' END;
        value := db.status;
        detail := coalesce(db.database_type || ' at ' || db.path, db.path, 'not configured')
                  || coalesce(': ' || db.error, '');
        RETURN NEXT;
    END LOOP;

    -- maxmind_info() above loaded the library, which defines these settings.
    warn_age := current_setting('ip_inventory.maxmind_age_warning')::interval;
    crit_age := current_setting('ip_inventory.maxmind_age_critical')::interval;
    "check" := 'maxmind_age';
    BEGIN
        age := @extschema@.maxmind_age();
        value := justify_interval(date_trunc('minute', age))::text;
        -- Each of City and ASN against the thresholds; DB-IP publishes its Lite files once a
        -- month (MaxMind twice a week, IPinfo daily), so a DB-IP Lite file may be 31 days older.
        SELECT CASE WHEN bool_or(i.age - i.grace > crit_age) THEN 'critical'
                    WHEN bool_or(i.age - i.grace > warn_age) THEN 'warning' ELSE 'ok' END,
               bool_or(i.grace > interval '0')
          INTO status, monthly
          FROM (SELECT m.age, CASE WHEN m.database_type ~* '^dbip-.*lite' THEN interval '31 days'
                                   ELSE interval '0' END AS grace
                FROM @extschema@.maxmind_info() AS m
                WHERE m.name IN ('city', 'asn') AND m.age IS NOT NULL) AS i;
        detail := format('warning after %s, critical after %s (ip_inventory.maxmind_age_warning, _critical)',
                         justify_interval(warn_age), justify_interval(crit_age))
                  || CASE WHEN monthly THEN '; a DB-IP Lite file (published monthly): 31 days more' ELSE '' END;
    EXCEPTION WHEN OTHERS THEN
        status := 'critical'; value := NULL; detail := SQLERRM;
    END;
    RETURN NEXT;

    -- The optional slots' databases, when configured: their age against the same thresholds.
    FOR db IN SELECT * FROM @extschema@.maxmind_info()
              WHERE name IN ('anonymous', 'isp', 'connection_type') LOOP
        "check" := 'maxmind_' || db.name || '_age';
        value := justify_interval(date_trunc('minute', db.age))::text;
        status := CASE WHEN db.age IS NULL THEN 'critical' WHEN db.age > crit_age THEN 'critical'
                       WHEN db.age > warn_age THEN 'warning' ELSE 'ok' END;
        detail := CASE WHEN db.age IS NULL THEN coalesce(db.error, db.status)
                       ELSE format('warning after %s, critical after %s (ip_inventory.maxmind_age_warning, _critical)',
                                   justify_interval(warn_age), justify_interval(crit_age)) END;
        RETURN NEXT;
    END LOOP;

    SELECT * INTO cov FROM @extschema@.ip_inventory_coverage;
    "check" := 'asn_coverage';
    value := coalesce(cov.asn_coverage_pct::text || '%', 'no public addresses');
    status := CASE WHEN cov.asn_coverage_pct < 80 THEN 'critical'
                   WHEN cov.asn_coverage_pct < 95 THEN 'warning' ELSE 'ok' END;
    detail := format('%s of %s public addresses have an ASN (warning below 95%%, critical below 80%%)',
                     cov.with_asn, cov.public_ips);
    RETURN NEXT;
    "check" := 'geo_coverage';
    value := coalesce(cov.geo_coverage_pct::text || '%', 'no public addresses');
    status := CASE WHEN cov.geo_coverage_pct < 80 THEN 'critical'
                   WHEN cov.geo_coverage_pct < 95 THEN 'warning' ELSE 'ok' END;
    detail := format('%s of %s public addresses have a country (warning below 95%%, critical below 80%%)',
                     cov.with_geo, cov.public_ips);
    RETURN NEXT;

    -- Stale answers per source: a warning when more than a tenth of the rows a source
    -- applies to have an answer older than its TTL (or, for MaxMind, from another build).
    -- A network source switched off is reported as such, not as stale.
    FOR st IN SELECT * FROM @extschema@.ip_inventory_staleness LOOP
        "check" := st.source || '_stale';
        IF st.source <> 'maxmind' AND NOT @extschema@._ip_inventory_source_enabled(st.source) THEN
            value := 'disabled';
            status := 'ok';
            detail := format('ip_inventory.%s_enabled = off: not refreshed, its answers are kept (%s older than the TTL, %s never answered, of %s eligible)',
                             st.source, st.stale, st.never, st.eligible);
            RETURN NEXT;
            CONTINUE;
        END IF;
        value := st.stale::text;
        status := CASE WHEN st.stale > 0.1 * st.eligible THEN 'warning' ELSE 'ok' END;
        detail := format('%s stale, %s never enriched, of %s eligible%s', st.stale, st.never, st.eligible,
                         coalesce(', TTL ' || st.ttl::text, ', stale = from another database build'));
        RETURN NEXT;
    END LOOP;

    "check" := 'maxmind_pending';
    SELECT s.never + s.stale INTO n FROM @extschema@.ip_inventory_staleness AS s WHERE s.source = 'maxmind';
    value := n::text;
    status := CASE WHEN n > 0 THEN 'warning' ELSE 'ok' END;
    detail := 'public rows without MaxMind data or from another build: CALL ip_inventory_enrich_pending();';
    RETURN NEXT;

    -- The network sources: GreyNoise's daily quota, and addresses that keep failing.
    "check" := 'greynoise_quota';
    IF NOT @extschema@._ip_inventory_source_enabled('greynoise') THEN
        status := 'ok'; value := 'disabled';
        detail := 'ip_inventory.greynoise_enabled = off: no calls';
    ELSE
        warn_left := current_setting('ip_inventory.greynoise_quota_warning')::bigint;
        crit_left := current_setting('ip_inventory.greynoise_quota_critical')::bigint;
        BEGIN
            SELECT * INTO st FROM @extschema@.greynoise_quota();
            value := st.remaining || ' of ' || st.daily_quota;
            -- (A daily quota of 0 is an operator's choice, not an alarm.)
            status := CASE WHEN st.daily_quota > 0 AND st.remaining < crit_left THEN 'critical'
                           WHEN st.daily_quota > 0 AND st.remaining < warn_left THEN 'warning'
                           WHEN st.paused_until > now() THEN 'warning' ELSE 'ok' END;
            detail := format('calls left today (UTC; warning below %s, critical below %s: ip_inventory.greynoise_quota_warning, _critical): SELECT * FROM greynoise_quota();',
                             warn_left, crit_left)
                      || CASE WHEN st.paused_until > now() THEN ' GreyNoise asked to wait (HTTP 429) until ' || st.paused_until ELSE '' END;
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
            status := 'warning'; value := NULL; detail := SQLERRM;
        END;
    END IF;
    RETURN NEXT;

    "check" := 'network_failures';
    SELECT coalesce(sum(f.n), 0), coalesce(sum(f.repeated), 0),
           string_agg(format('%s %s', f.source, f.n), ', ' ORDER BY f.source)
      INTO n, failing, detail
      FROM (SELECT source, count(*) AS n, count(*) FILTER (WHERE attempts >= 3) AS repeated
            FROM @extschema@.ip_inventory_failures GROUP BY source) AS f;
    value := n::text;
    status := CASE WHEN failing > 0 THEN 'warning' ELSE 'ok' END;
    detail := format('addresses whose last attempt failed (%s), %s of them 3 times or more: SELECT * FROM ip_inventory_failures ORDER BY attempts DESC;',
                     coalesce(detail, 'none'), failing);
    RETURN NEXT;

    "check" := 'observed_tables';
    SELECT count(*) FILTER (WHERE enabled) INTO n FROM @extschema@.ip_inventory_observed_tables;
    value := n::text;
    status := CASE WHEN n = 0 THEN 'warning' ELSE 'ok' END;
    detail := coalesce((SELECT string_agg(event_table::text || CASE WHEN enabled THEN '' ELSE ' (disabled)' END, ', ')
                        FROM @extschema@.ip_inventory_observed_tables), 'no event table is observed: SELECT ip_inventory_attach(...)');
    RETURN NEXT;

    "check" := 'last_observation';
    SELECT max(last_seen_at) INTO last_seen FROM @extschema@.ip_inventory;
    value := last_seen::text;
    status := CASE WHEN last_seen IS NULL OR last_seen < now() - interval '1 day' THEN 'warning' ELSE 'ok' END;
    detail := 'latest event time in the inventory (warning when older than a day: is ingest running?)';
    RETURN NEXT;

    -- Event rules (docs/tags.md) whose table was dropped (its OID gone) or detached: they
    -- match nothing, and a dropped table's OID may one day name another table. Reported
    -- (the row is there only when some event rule exists), not deleted: the rules are the
    -- tag writers', and a detached table may be attached again.
    IF EXISTS (SELECT FROM @extschema@.ip_inventory_tag_rules AS r WHERE r.event_table IS NOT NULL) THEN
        "check" := 'event_rules';
        SELECT string_agg(format('rule %s (%s): %s', x.rule_id, x.tag, x.why), ', ' ORDER BY x.rule_id)
          INTO detail
          FROM (SELECT r.rule_id, r.tag,
                       CASE WHEN c.oid IS NULL THEN format('table %s dropped', r.event_table::oid)
                            ELSE format('%s not attached', r.event_table) END AS why
                FROM @extschema@.ip_inventory_tag_rules AS r
                LEFT JOIN pg_catalog.pg_class AS c ON c.oid = r.event_table
                WHERE r.event_table IS NOT NULL
                  AND (c.oid IS NULL OR NOT EXISTS (SELECT FROM @extschema@.ip_inventory_observed AS o
                                                    WHERE o.event_table = r.event_table))
                ORDER BY r.rule_id LIMIT 20) AS x;
        SELECT count(*) INTO n FROM @extschema@.ip_inventory_tag_rules AS r
        WHERE r.event_table IS NOT NULL
          AND NOT EXISTS (SELECT FROM @extschema@.ip_inventory_observed AS o
                          JOIN pg_catalog.pg_class AS c ON c.oid = o.event_table
                          WHERE o.event_table = r.event_table);
        value := n::text;
        status := CASE WHEN n > 0 THEN 'warning' ELSE 'ok' END;
        detail := CASE WHEN n = 0 THEN 'every event rule''s table exists and is attached'
                       ELSE 'event rules matching nothing, their table dropped or detached: ' || detail
                            || CASE WHEN n > 20 THEN ', ...' ELSE '' END
                            || '. Delete them: DELETE FROM ip_inventory_tag_rules AS r WHERE r.event_table IS NOT NULL AND NOT EXISTS (SELECT FROM ip_inventory_observed_tables AS o WHERE o.event_table = r.event_table);' END;
        RETURN NEXT;
    END IF;

    -- On a Citus coordinator: nodes unreachable or disagreeing, the queue (sql/citus.sql).
    IF @extschema@._ip_inventory_citus_distributed() AND @extschema@._ip_inventory_citus_on_coordinator() THEN
        RETURN QUERY SELECT * FROM @extschema@._ip_inventory_citus_health();
    END IF;
END $$;

COMMENT ON VIEW @extschema@.ip_inventory_coverage IS
    'Totals: addresses, public addresses, with ASN, with country, GreyNoise scanners and RIOT, coverage percentages of public addresses, never enriched, observations.';
COMMENT ON VIEW @extschema@.ip_inventory_asn_sources IS 'Which source gave the ASN (maxmind, cymru), with the share of addresses that have one.';
COMMENT ON VIEW @extschema@.ip_inventory_top_countries IS 'Addresses and observations per country, ranked by addresses.';
COMMENT ON VIEW @extschema@.ip_inventory_top_asns IS 'Addresses and observations per autonomous system, ranked by addresses.';
COMMENT ON VIEW @extschema@.ip_inventory_staleness IS
    'Per enrichment source: eligible rows, never answered, answers older than the TTL (MaxMind: from another database build), oldest answer.';
COMMENT ON FUNCTION @extschema@.ip_inventory_health() IS
    'The morning health check: one row per check ("check", status ok/warning/critical, value, detail). SELECT * FROM ip_inventory_health() WHERE status <> ''ok'';';
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_health() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.ip_inventory_health() TO pg_monitor;
