-- The SQL surface: function attributes, privileges, and the IANA classifier.
\ir helpers.psql
CREATE EXTENSION ip_inventory;

-- The functions written in Rust (the lookups among them) are STRICT, PARALLEL SAFE, and
-- have no SET clause (proconfig IS NULL): a SET clause makes every call save and restore
-- settings.
SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args,
       p.provolatile AS volatility, p.proparallel AS parallel, p.proisstrict AS strict,
       p.proconfig AS set_clause, left(pg_get_function_result(p.oid), 30) AS result
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ip_inventory'
WHERE p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
ORDER BY 1, 2;
-- The functions and procedures written in SQL: plpgsql ones pin their search_path
-- (procedures that commit cannot, and qualify names instead).
SELECT p.proname, p.prokind AS kind, l.lanname AS language, p.proconfig AS set_clause
FROM pg_proc p
JOIN pg_language l ON l.oid = p.prolang
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ip_inventory'
WHERE l.lanname <> 'c'
ORDER BY 1;

-- Every function carries a description.
SELECT p.proname FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ip_inventory'
WHERE obj_description(p.oid, 'pg_proc') IS NULL;

-- Reloading affects the whole cluster and verifying reads server files: not for PUBLIC.
CREATE ROLE ipi_analyst;
SELECT f, has_function_privilege('ipi_analyst', f, 'EXECUTE') AS analyst_may_call
FROM unnest(ARRAY['enrich_ip(inet)', 'ip_country(inet)', 'ip_asn(inet)', 'ip_class(inet)',
                  'mmdb_lookup(inet, text)', 'maxmind_info()', 'maxmind_age()',
                  'maxmind_reload()', 'maxmind_verify(text, text)']) AS f;
DROP ROLE ipi_analyst;

-- IANA special-purpose classes; IPv4-mapped addresses by their IPv4 address; a netmask is
-- ignored (the address is classified).
SELECT ip, ip_class(ip)
FROM (VALUES (inet '8.8.8.8'), ('81.2.69.160'), ('10.1.2.3'), ('172.16.5.4'), ('192.168.1.1'),
             ('100.64.0.1'), ('127.0.0.1'), ('169.254.169.254'), ('0.0.0.0'), ('0.1.2.3'),
             ('192.0.0.8'), ('192.0.0.9'), ('192.0.2.1'), ('198.51.100.1'), ('203.0.113.9'),
             ('198.18.0.1'), ('224.0.0.251'), ('240.0.0.1'), ('255.255.255.255'),
             ('192.88.99.1'), ('10.0.0.0/8'), ('8.8.8.0/24'),
             ('::'), ('::1'), ('::ffff:8.8.8.8'), ('::ffff:10.0.0.1'), ('64:ff9b::808:808'),
             ('100::1'), ('2001::1'), ('2001:2::1'), ('2001:db8::1'), ('2002:c000:204::1'),
             ('3fff::1'), ('5f00::1'), ('fc00::1'), ('fd00::1'), ('fe80::1'), ('ff02::1'),
             ('2001:4860:4860::8888'), ('2a02:cf40::1'), ('4000::1')) AS v(ip);

-- IPv6 zone identifiers are not inet values: Postgres refuses them before we are called.
SELECT ip_class('fe80::1%eth0');

-- STRICT: NULL in, NULL out.
SELECT ip_class(NULL) IS NULL AS class_null, enrich_ip(NULL) IS NULL AS enrich_null,
       ip_country(NULL) IS NULL AS country_null, mmdb_lookup(NULL, 'city') IS NULL AS mmdb_null;
