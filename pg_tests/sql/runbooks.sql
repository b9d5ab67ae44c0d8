-- docs/runbooks.md, docs/security.md, then docs/monitoring.md: every ```sql block runs as written, in document
-- order, in one session, stopping at the first error (ON_ERROR_STOP). The output names each
-- block as it starts; a failing block shows its error and no block after it.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\ir use_fake_sources.psql
-- The names the runbook uses: raw_events, observed; raw_events_import, a historical import.
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet, dst_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts');
INSERT INTO raw_events SELECT now() - i * interval '1 h',
       (ARRAY['81.2.69.160', '89.160.20.128', '216.160.83.56', '8.8.8.8', '71.6.135.131'])[1 + i % 5]::inet,
       '10.0.0.1'
FROM generate_series(1, 50) AS i;
CREATE TABLE raw_events_import (LIKE raw_events);
INSERT INTO raw_events_import SELECT '2025-06-01'::timestamptz + i * interval '1 min',
       ('81.2.69.' || (i % 40 + 140))::inet, CASE WHEN i % 3 = 0 THEN '2001:218::1'::inet END
FROM generate_series(1, 3000) AS i;

\! python3 ../runbook_sql.py ../../docs/runbooks.md ../../docs/security.md ../../docs/monitoring.md > "$IPI_SCRATCH/runbooks.psql" && PGOPTIONS='-c client_min_messages=error' "$IPI_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -f "$IPI_SCRATCH/runbooks.psql" -o /dev/null 2>&1; echo "exit status $?"

-- What the runbook did, as it says it would.
SELECT job, status, done_rows FROM ip_inventory_progress ORDER BY job;
SELECT never, stale FROM ip_inventory_staleness WHERE source = 'maxmind';
SELECT count(*) AS imported_addresses FROM ip_inventory WHERE ip_address << '81.2.69.128/25';
SELECT current_setting('ip_inventory.cymru_mode') AS cymru_mode_after_the_outage,
       current_setting('ip_inventory.greynoise_daily_quota') AS raised_quota;
SELECT rolname FROM pg_roles WHERE rolname LIKE 'ipi\_%' OR rolname IN ('sensor_loader', 'exporter') ORDER BY 1;
-- The roles can do what docs/security.md says, and no more.
SELECT r.rolname,
       has_table_privilege(r.rolname, 'ip_inventory_coverage', 'SELECT') AS reports,
       has_table_privilege(r.rolname, 'ip_inventory', 'SELECT') AS read_inventory,
       has_table_privilege(r.rolname, 'ip_inventory', 'INSERT') AS write_inventory,
       has_function_privilege(r.rolname, 'ip_inventory_attach(regclass, text[], text)', 'EXECUTE') AS attach,
       has_function_privilege(r.rolname, 'cascade_refresh(text, int)', 'EXECUTE') AS refresh,
       has_function_privilege(r.rolname, 'cascade_refresh_now(text, inet[], cidr, int)', 'EXECUTE') AS refresh_now,
       has_function_privilege(r.rolname, 'ip_verdict(inet)', 'EXECUTE') AS verdict,
       has_function_privilege(r.rolname, 'maxmind_info()', 'EXECUTE') AS file_paths,
       has_table_privilege(r.rolname, 'ip_inventory_stats', 'SELECT') AS counters,
       has_function_privilege(r.rolname, 'ip_pseudonymize(inet)', 'EXECUTE') AS configured_salt,
       has_function_privilege(r.rolname, 'ip_inventory_fetch(text, text[])', 'EXECUTE') AS raw_network
FROM pg_roles AS r WHERE r.rolname LIKE 'ipi\_%' OR r.rolname = 'sensor_loader' ORDER BY 1;
SELECT event_table, attached_by FROM ip_inventory_observed_tables ORDER BY 1::text;
SELECT observation_count FROM ip_inventory WHERE ip_address = '81.2.69.160';
SELECT count(*) FILTER (WHERE value <> 0) AS counters_after_the_reset FROM ip_inventory_stats WHERE kind = 'counter';

-- The runbook's roles are cluster-wide: gone again for the tests after this one.
DROP SCHEMA sensors CASCADE;
DROP OWNED BY ipi_reader, ipi_analyst, ipi_feeder, ipi_operator, ipi_consumer, ipi_privacy, sensor_loader, exporter;
DROP ROLE sensor_loader, ipi_analyst, ipi_reader, ipi_feeder, ipi_operator, ipi_consumer, ipi_privacy, exporter;
ALTER SYSTEM RESET ALL;
