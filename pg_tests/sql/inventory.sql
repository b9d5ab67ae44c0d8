-- The ip_inventory table: columns, comments, pg_dump registration, and the operators'
-- runbook SQL (../shared/reference) running as written.
\ir helpers.psql
CREATE EXTENSION ip_inventory;

SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
       a.attgenerated <> '' AS generated, col_description(a.attrelid, a.attnum) IS NOT NULL AS commented
FROM pg_attribute AS a WHERE a.attrelid = 'ip_inventory'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT obj_description('ip_inventory'::regclass, 'pg_class') IS NOT NULL AS table_commented;
-- Every view and table of the extension carries a comment.
SELECT c.relname FROM pg_class AS c
JOIN pg_depend AS d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
JOIN pg_extension AS e ON e.oid = d.refobjid AND e.extname = 'ip_inventory'
WHERE obj_description(c.oid, 'pg_class') IS NULL;
-- pg_dump dumps the rows of these tables (pg_extension_config_dump).
SELECT unnest(extconfig)::regclass AS dumped_with_rows FROM pg_extension WHERE extname = 'ip_inventory';
SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid) FROM pg_index
WHERE indrelid = 'ip_inventory'::regclass;
-- The due rows of each source, asked the way cascade_refresh asks (the source as a constant),
-- are found through that source's due-row index: the index predicate and the query use the
-- same rule (_ip_inventory_source_serves), which the planner inlines into both.
CREATE FUNCTION query_plan(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        plan := plan || line || E'\n';
    END LOOP;
    RETURN plan;
END $$;
SET enable_seqscan = off;
SELECT src, substring(query_plan(format(
           'SELECT i.ip_address FROM ip_inventory AS i WHERE _ip_inventory_source_serves(%L, i.ip_address, i.ip_class, i.asn_source) AND (i.%I IS NULL OR i.%I < now() - interval ''1 day'')',
           src, src || '_ts', src || '_ts')) FROM 'ip_inventory_[a-z]+_due') AS index_used
FROM unnest(ARRAY['cymru', 'greynoise', 'rdns']) AS src;
RESET enable_seqscan;

-- Some events, through the observe trigger.
\ir use_test_databases.psql
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet, dst_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts');
INSERT INTO raw_events VALUES
    ('2026-11-01 10:00+00', '81.2.69.160', '10.0.0.5'),
    ('2026-11-01 10:05+00', '89.160.20.128', '10.0.0.5'),
    ('2026-11-01 10:06+00', '89.160.20.129', '10.0.0.5'),
    ('2026-11-01 10:07+00', '216.160.83.56', '10.0.0.5'),
    ('2026-11-01 10:08+00', '2001:218::1', 'fd00::5'),
    ('2026-11-01 10:09+00', '1.2.3.4', '10.0.0.5'),
    -- so that no two countries or ASNs tie in the rankings: GB 4, US 3, SE 2, JP 1
    ('2026-11-01 10:10+00', '81.2.69.161', '81.2.69.162'),
    ('2026-11-01 10:11+00', '81.2.69.163', '216.160.83.57'),
    ('2026-11-01 10:12+00', '216.160.83.58', NULL);
-- GreyNoise answers arrive with the cascade; one written by hand here for the reports.
UPDATE ip_inventory SET greynoise_ts = now() - interval '8 days',
       enrichment = enrichment || '{"greynoise": {"noise": true, "riot": false}}'
WHERE ip_address = '1.2.3.4';
SELECT ip_address, is_scanner, scanner_ts IS NOT NULL AS scanner_ts_set,
       enrichment_ts = GREATEST(maxmind_ts, cymru_ts, greynoise_ts, rdns_ts) AS enrichment_ts_is_latest
FROM ip_inventory ORDER BY ip_address;

-- enrichment-operations-runbook.md, morning health check, "3. Check enrichment coverage", as written:
WITH coverage AS (
    SELECT
        COUNT(*) as total_ips,
        COUNT(asn_number) as enriched_ips,
        COUNT(asn_number) * 100.0 / COUNT(*) as coverage_pct
    FROM ip_inventory
)
SELECT
    total_ips,
    enriched_ips,
    ROUND(coverage_pct, 2) || '%' as coverage
FROM coverage;

-- Stale data check
SELECT
    'Cymru stale' as category,
    COUNT(*) as count
FROM ip_inventory
WHERE asn_source = 'cymru'
  AND enrichment_ts < NOW() - INTERVAL '90 days'
UNION ALL
SELECT
    'GreyNoise stale' as category,
    COUNT(*) as count
FROM ip_inventory
WHERE scanner_ts < NOW() - INTERVAL '7 days';

-- Monthly Enrichment Report, as written except one line: the runbook's
-- enrichment->>'greynoise'->>'riot' applies ->> to text and fails in any PostgreSQL;
-- enrichment->'greynoise'->>'riot' is the intended expression.
WITH coverage AS (
    SELECT
        COUNT(*) as total_ips,
        COUNT(asn_number) as with_asn,
        COUNT(geo_country) as with_geo,
        COUNT(CASE WHEN is_scanner THEN 1 END) as scanners,
        COUNT(CASE WHEN enrichment->'greynoise'->>'riot' = 'true' THEN 1 END) as riot
    FROM ip_inventory
)
SELECT
    total_ips as "Total IPs",
    with_asn as "With ASN",
    ROUND(with_asn * 100.0 / total_ips, 2) || '%' as "ASN Coverage",
    with_geo as "With Geo",
    ROUND(with_geo * 100.0 / total_ips, 2) || '%' as "Geo Coverage",
    scanners as "Scanners",
    riot as "RIOT Services"
FROM coverage;
-- The line as the runbook has it:
SELECT COUNT(CASE WHEN enrichment->>'greynoise'->>'riot' = 'true' THEN 1 END) FROM ip_inventory;

-- Source breakdown
SELECT
    asn_source as "ASN Source",
    COUNT(*) as "Count",
    ROUND(COUNT(*) * 100.0 / (SELECT COUNT(*) FROM ip_inventory WHERE asn_number IS NOT NULL), 2) || '%' as "Percentage"
FROM ip_inventory
WHERE asn_number IS NOT NULL
GROUP BY asn_source
ORDER BY COUNT(*) DESC;

-- Top countries
SELECT
    geo_country as "Country",
    COUNT(*) as "Count"
FROM ip_inventory
WHERE geo_country IS NOT NULL
GROUP BY geo_country
ORDER BY COUNT(*) DESC
LIMIT 10;

-- Top ASNs
SELECT
    asn_number as "ASN",
    asn_org as "Organization",
    COUNT(*) as "IPs"
FROM ip_inventory
WHERE asn_number IS NOT NULL
GROUP BY asn_number, asn_org
ORDER BY COUNT(*) DESC
LIMIT 10;

-- asn-inventory-workflows.md, "Verify ip_inventory Status", as written:
SELECT
    COUNT(*) AS total_ips,
    COUNT(asn_number) AS enriched_ips,
    COUNT(*) - COUNT(asn_number) AS missing_asn,
    ROUND(100.0 * COUNT(asn_number) / COUNT(*), 2) AS enrichment_percent
FROM ip_inventory;
