-- Attacks on the privilege model (docs/security.md). Two attackers: mallory, a role that
-- owns nothing but its own schema (later granted the feeder's privilege, as an operator would
-- grant it to a sensor's loader), and dbowner, who owns the database (and so, on PostgreSQL
-- 15, the public schema the extension lives in) without being superuser. They plant code
-- everywhere a job could run it, then a superuser runs every job and report the way pg_cron
-- would. After each attempt: nobody became superuser, and the job did its work or refused
-- with a clear error.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\ir use_fake_sources.psql
-- (GreyNoise's quota is counted per UTC day for the whole cluster: this test spends none of it.)
ALTER SYSTEM SET ip_inventory.greynoise_daily_quota = 0;
SELECT pg_reload_conf();
CREATE ROLE mallory LOGIN;
CREATE SCHEMA mallory AUTHORIZATION mallory;
CREATE ROLE dbowner LOGIN;
ALTER DATABASE ipi_test OWNER TO dbowner;
-- Who is superuser now (the answer must stay "nobody").
CREATE FUNCTION public.escalated() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(rolname, ', ' ORDER BY rolname), 'nobody')
    FROM pg_roles WHERE rolname IN ('mallory', 'dbowner') AND rolsuper $$;
-- What the planted code tried, and what PostgreSQL answered.
CREATE TABLE public.attempts (who text, via text, result text);
GRANT INSERT, SELECT ON public.attempts TO PUBLIC;

-- 1. Without any grant, mallory cannot feed the inventory, take a job's lock, or read what
--    is not hers.
SET ROLE mallory;
CREATE TABLE mallory.events (ts timestamptz, ip inet);
SELECT try($$CREATE TRIGGER feed AFTER INSERT ON mallory.events REFERENCING NEW TABLE AS ip_inventory_new
             FOR EACH STATEMENT EXECUTE FUNCTION ip_inventory_observe()$$) AS own_trigger;
SELECT try($$SELECT ip_inventory_attach('mallory.events', ARRAY['ip'], 'ts')$$) AS attach;
SELECT try($$SELECT * FROM _ip_inventory_record(ARRAY['6.6.6.6']::inet[], ARRAY[1000000]::bigint[],
             ARRAY[now()], ARRAY[now()], true)$$) AS record_directly;
SELECT try($$INSERT INTO ip_inventory (ip_address, first_seen_at, last_seen_at, observation_count, ip_class)
             VALUES ('6.6.6.6', now(), now(), 1, 'public')$$) AS insert_directly;
SELECT try($$SELECT _ip_inventory_job_start('enrich_pending')$$) AS take_job_lock;
SELECT try($$SELECT * FROM maxmind_info()$$) AS file_paths;
SELECT try($$SELECT * FROM _ip_inventory_stats_counters()$$) AS counters;
SELECT try($$SELECT * FROM ip_inventory_stats$$) AS stats_view;
SELECT try($$SELECT * FROM _ip_inventory_latency_histograms()$$) AS histograms;
SELECT try($$SELECT * FROM ip_inventory_latency$$) AS latency_view;
SELECT try($$SELECT * FROM ip_inventory_backlog()$$) AS backlog;
SELECT try($$SELECT * FROM ip_inventory_source_coverage()$$) AS coverage;
SELECT try($$SELECT * FROM greynoise_quota()$$) AS quota;
SELECT try($$SELECT * FROM ip_inventory_health()$$) AS health;
SELECT try($$SELECT ip_pseudonymize('1.2.3.4')$$) AS configured_salt_oracle;
SELECT try($$SELECT * FROM _ip_inventory_backfill_batch('ip_inventory_jobs', ARRAY['x'], NULL, '(0,0)', NULL)$$) AS read_as_owner;
SELECT try($$SELECT _ip_inventory_retain_events('mallory.events', 'delete', now(), 24, 48, 10, false)$$) AS retain_as_owner;
-- Lookups and classification are for everyone.
SELECT ip_country('81.2.69.160') AS lookups_work, length(ip_pseudonymize('1.2.3.4', 'my-own-salt-16-bytes')) AS own_salt;
RESET ROLE;
SELECT count(*) AS inventory_rows, escalated() FROM ip_inventory;

-- 2. Messages cut what a caller passed; a key never goes to a remote host in clear.
SELECT length(try($$SELECT mmdb_lookup('1.2.3.4', repeat('x', 1000000))$$)) < 300 AS lookup_name_cut,
       length(try($$SELECT cascade_refresh(repeat('y', 1000000), 1)$$)) < 300 AS source_cut,
       length(try($$SELECT ip_inventory_ttl(repeat('z', 1000000))$$)) < 300 AS ttl_cut,
       length(try($$SELECT * FROM ip_inventory_fetch('rdns', ARRAY[repeat('1', 1000000)])$$)) < 300 AS fetch_address_cut,
       length(try($$SET ip_inventory.language = '$$ || repeat('x', 1000000) || $$'$$)) < 400 AS setting_cut;
SELECT try($$SET ip_inventory.greynoise_url = 'http://api.greynoise.io'$$) AS cleartext_remote;
SELECT try($$SET ip_inventory.greynoise_url = 'https://user:pw@api.greynoise.io'$$) AS userinfo;
SELECT try($$SET ip_inventory.greynoise_url = 'http://127.0.0.1:9'$$) AS loopback_for_tests;
RESET ip_inventory.greynoise_url;

-- 3. mallory, granted the feeder's privilege, attaches her own table and nothing else.
GRANT EXECUTE ON FUNCTION ip_inventory_attach(regclass, text[], text), ip_inventory_detach(regclass) TO mallory;
CREATE TABLE public.victim_table (ts timestamptz, ip inet);
SET ROLE mallory;
SELECT try($$SELECT ip_inventory_attach('public.victim_table', ARRAY['ip'], 'ts')$$) AS attach_not_hers;
SELECT try($$SELECT ip_inventory_detach('public.victim_table')$$) AS detach_not_hers;
CREATE VIEW mallory.event_view AS SELECT ts, ip FROM mallory.events;
SELECT try($$SELECT ip_inventory_attach('mallory.event_view', ARRAY['ip'], 'ts')$$) AS attach_a_view;
CREATE DOMAIN mallory.mytime AS timestamptz;
CREATE TABLE mallory.typed (ts mallory.mytime, ip inet);
SELECT try($$SELECT ip_inventory_attach('mallory.typed', ARRAY['ip'], 'ts')$$) AS attach_own_time_type;
SELECT ip_inventory_attach('mallory.events', ARRAY['ip'], 'ts');
INSERT INTO mallory.events VALUES (now() - interval '400 days', '81.2.69.160'), (now(), '89.160.20.128');
-- Code planted where the superuser's jobs read and change her table: a trigger on UPDATE and
-- DELETE, a rule, and a row-level security policy, each trying to make her superuser.
CREATE FUNCTION mallory.escalate(via text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        ALTER ROLE mallory SUPERUSER;
        INSERT INTO public.attempts VALUES ('mallory', via, 'became superuser');
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO public.attempts VALUES ('mallory', via, SQLSTATE || ': ' || SQLERRM);
    END;
    RETURN true;
END $$;
CREATE FUNCTION mallory.on_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mallory.escalate(TG_OP || ' trigger');
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER escalate BEFORE UPDATE OR DELETE ON mallory.events FOR EACH ROW EXECUTE FUNCTION mallory.on_change();
CREATE RULE escalate AS ON UPDATE TO mallory.events DO ALSO SELECT mallory.escalate('rule');
ALTER TABLE mallory.events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY escalate ON mallory.events USING (mallory.escalate('policy'));
-- Later, she changes the time column to a type of her own.
CREATE TABLE mallory.later (ts timestamptz, ip inet);
SELECT ip_inventory_attach('mallory.later', ARRAY['ip'], 'ts');
INSERT INTO mallory.later VALUES (now() - interval '400 days', '81.2.69.161');
ALTER TABLE mallory.later ALTER COLUMN ts TYPE mallory.mytime;
SELECT try($$INSERT INTO mallory.later VALUES (now(), '81.2.69.162')$$) AS insert_after_type_change;
RESET ROLE;
SELECT event_table, ip_columns, ts_column, enabled, attached_by FROM ip_inventory_observed_tables ORDER BY 1::text;
SELECT ip_address, observation_count FROM ip_inventory ORDER BY 1;

-- What the jobs below will find: an old event in a table of the superuser's, a row to enrich,
-- and a table whose column names need quoting.
CREATE TABLE public.victim_events (ts timestamptz, ip inet);
INSERT INTO public.victim_events VALUES (now() - interval '400 days', '175.16.199.1'), (now(), '175.16.199.2');
UPDATE ip_inventory SET maxmind_ts = NULL WHERE ip_address = '81.2.69.160';
CREATE TABLE public."Odd ""events"" é" ("when é" timestamptz, "src ""ip"" ü" inet);
SELECT ip_inventory_attach('public."Odd ""events"" é"', ARRAY['src "ip" ü'], 'when é');
INSERT INTO public."Odd ""events"" é" VALUES (now() - interval '400 days', '2001:218::1');
SELECT event_table, ip_columns, ts_column FROM ip_inventory_observed_tables WHERE event_table::text LIKE '%Odd%';

-- 4. dbowner shadows what jobs call unqualified and what they might call with loose types,
--    in the schema the extension lives in, and puts that schema first for every session.
SET ROLE dbowner;
CREATE FUNCTION public.escalate_dbowner(via text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        ALTER ROLE dbowner SUPERUSER;
        INSERT INTO public.attempts VALUES ('dbowner', via, 'became superuser');
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO public.attempts VALUES ('dbowner', via, SQLSTATE || ': ' || SQLERRM);
    END;
END $$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM public.escalate_dbowner('now()'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION public.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM public.escalate_dbowner('clock_timestamp()'); RETURN pg_catalog.clock_timestamp(); END $$;
CREATE FUNCTION public.jsonb_build_object(text, anyelement) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM public.escalate_dbowner('jsonb_build_object()'); RETURN pg_catalog.jsonb_build_object($1, $2); END $$;
-- Overloads beside the extension's own functions, matching looser argument types better.
CREATE FUNCTION public._ip_inventory_count_recorded(int, int, bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM public.escalate_dbowner('_ip_inventory_count_recorded(int, int, bigint)'); RETURN 0; END $$;
CREATE FUNCTION public.ip_anonymize(text, int, int) RETURNS inet LANGUAGE plpgsql AS $$
BEGIN PERFORM public.escalate_dbowner('ip_anonymize(text, int, int)'); RETURN NULL; END $$;
CREATE FUNCTION public._ip_inventory_job_start(varchar) RETURNS void LANGUAGE plpgsql AS $$
BEGIN PERFORM public.escalate_dbowner('_ip_inventory_job_start(varchar)'); END $$;
CREATE FUNCTION public._ip_inventory_refresh_result(varchar, int, int, int, int, int, int, int, timestamptz, varchar)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM public.escalate_dbowner('_ip_inventory_refresh_result(varchar, int, ...)'); RETURN '{}'; END $$;
-- An operator of her own for the types the extension compares.
CREATE FUNCTION public.inet_eq_escalate(inet, inet) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.escalate_dbowner('= on inet'); RETURN pg_catalog.network_eq($1, $2); END $$;
CREATE OPERATOR public.= (LEFTARG = inet, RIGHTARG = inet, FUNCTION = public.inet_eq_escalate);
ALTER DATABASE ipi_test SET search_path = public, pg_catalog;
RESET ROLE;

-- 5. The superuser's jobs and reports, in a new session with the database's search_path, as
--    pg_cron runs them. (Their results are checked afterwards with a safe search_path: this
--    test's own statements must not call dbowner's functions either.)
\c
SHOW search_path;
SELECT cascade_refresh('all', 100) AS cascade_all \gset
\o /dev/null
SELECT * FROM ip_inventory_health();
SELECT * FROM ip_inventory_stats;
SELECT * FROM ip_inventory_staleness;
SELECT * FROM ip_inventory_coverage;
SELECT * FROM ip_inventory_progress;
SELECT * FROM greynoise_quota();
SELECT maxmind_reload();
SELECT ip_inventory_stats_reset();
\o
SET client_min_messages = warning;
CALL ip_inventory_backfill('public.victim_events', ARRAY['ip'], 'ts', attach => true, summary => NULL) \gset backfill_
CALL ip_inventory_enrich_pending() \gset enrich_
-- Retention reads and changes mallory's tables as mallory: her trigger, rule and policy run
-- with her rights, and the table whose column type she changed is refused, not read.
CALL ip_inventory_retention(interval '365 days') \gset dry_
CALL ip_inventory_retention(interval '365 days', dry_run => false) \gset done_
RESET client_min_messages;
SET search_path = pg_catalog, public;
SELECT :'cascade_all'::jsonb ->> 'source' AS cascade_all, :'backfill_summary'::jsonb ->> 'status' AS backfill,
       :'enrich_summary'::jsonb ->> 'status' AS enrich_pending;
SELECT e ->> 'table' AS event_table, d ->> 'rows' AS dry_run_rows, e ->> 'rows' AS anonymized_rows, e ->> 'sqlstate' AS refused
FROM jsonb_array_elements(:'done_summary'::jsonb -> 'events') AS e
JOIN jsonb_array_elements(:'dry_summary'::jsonb -> 'events') AS d ON d ->> 'table' = e ->> 'table'
ORDER BY 1;
SELECT ts < now() - interval '1 year' AS old, ip FROM mallory.events ORDER BY 1, 2;
SELECT ts < now() - interval '1 year' AS old, ip FROM public.victim_events ORDER BY 1, 2;
SELECT "when é" < now() - interval '1 year' AS old, "src ""ip"" ü" FROM public."Odd ""events"" é";
-- (Refusals by SQLSTATE: PostgreSQL 16 reworded "must be superuser to alter superuser roles".)
SELECT who, via, split_part(result, ':', 1) AS result FROM public.attempts GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT public.escalated();

-- 6. A lock any role can take does not stop a job: mallory holds the advisory key 0.1.0's
--    enrich_pending used, in a session of her own, while the superuser's job runs.
\! "$IPI_PGBIN/psql" -X -q -U mallory -d ipi_test -c "SELECT pg_catalog.pg_advisory_lock((pg_catalog.hashtext('ip_inventory')::bigint OPERATOR(pg_catalog.<<) 32) OPERATOR(pg_catalog.|) (pg_catalog.hashtext('enrich_pending')::bigint OPERATOR(pg_catalog.&) 4294967295)), pg_catalog.pg_sleep(3)" >/dev/null &
SELECT pg_sleep(0.5);
SELECT count(*) AS mallory_holds_the_old_key FROM pg_locks l JOIN pg_stat_activity a USING (pid)
WHERE l.locktype = 'advisory' AND a.usename = 'mallory';
UPDATE ip_inventory SET maxmind_ts = NULL WHERE ip_address = '89.160.20.128';
SET client_min_messages = warning;
CALL ip_inventory_enrich_pending() \gset
RESET client_min_messages;
SELECT :'summary'::jsonb ->> 'enriched' AS enriched_while_the_old_key_is_held;
SELECT pg_sleep(3);
SELECT public.escalated();

-- Roles are cluster-wide: gone again for the tests after this one.
\c postgres
ALTER DATABASE ipi_test OWNER TO postgres;
\c ipi_test
ALTER DATABASE ipi_test RESET search_path;
DROP SCHEMA mallory CASCADE;
REVOKE ALL ON FUNCTION ip_inventory_attach(regclass, text[], text), ip_inventory_detach(regclass) FROM mallory;
DROP OWNED BY dbowner;
DROP ROLE mallory, dbowner;
