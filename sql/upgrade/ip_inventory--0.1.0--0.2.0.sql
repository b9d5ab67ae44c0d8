-- ip_inventory 0.1.0 -> 0.2.0, run by ALTER EXTENSION ip_inventory UPDATE.
-- Assembled by scripts/upgrade_script.py from sql/upgrade/0.1.0--0.2.0/prologue.sql, every function,
-- procedure, view, comment and grant of a fresh install, and epilogue.sql; do not edit.
\echo Use "ALTER EXTENSION ip_inventory UPDATE TO '0.2.0'" to load this file. \quit

-- 0.1.0 -> 0.2.0, hand-written part before the replaced objects (scripts/upgrade_script.py).

-- The attached event tables become data the extension owns (sql/inventory.sql), filled from
-- the observe triggers 0.1.0 created: their arguments named the columns.
CREATE TABLE @extschema@.ip_inventory_observed (
    event_table regclass PRIMARY KEY,
    ip_columns  text[] NOT NULL CHECK (cardinality(ip_columns) > 0),
    ts_column   text,
    attached_by text NOT NULL,
    attached_at timestamptz NOT NULL,
    -- The views ip_inventory_enriched_view() created over it (ip_inventory_detach drops them).
    enriched_views regclass[] NOT NULL DEFAULT '{}'
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory_observed', '');

DO $migrate$
DECLARE
    t record;
    args text[];
    start int;
BEGIN
    FOR t IN SELECT tg.tgrelid, tg.tgargs, c.relkind
             FROM pg_catalog.pg_trigger AS tg JOIN pg_catalog.pg_class AS c ON c.oid = tg.tgrelid
             WHERE tg.tgfoid = '@extschema@.ip_inventory_observe()'::pg_catalog.regprocedure LOOP
        -- tgargs holds the arguments as NUL-terminated strings.
        args := '{}';
        start := 0;
        FOR i IN 0 .. pg_catalog.length(t.tgargs) - 1 LOOP
            IF pg_catalog.get_byte(t.tgargs, i) = 0 THEN
                args := args || pg_catalog.convert_from(pg_catalog.substring(t.tgargs, start + 1, i - start), 'UTF8');
                start := i + 1;
            END IF;
        END LOOP;
        IF t.relkind NOT IN ('r', 'p') OR args[1] IS NULL THEN
            RAISE WARNING 'ip_inventory: % has an ip_inventory_observe trigger that 0.2.0 does not keep; drop it', t.tgrelid::regclass;
            CONTINUE;
        END IF;
        INSERT INTO @extschema@.ip_inventory_observed (event_table, ip_columns, ts_column, attached_by, attached_at)
        VALUES (t.tgrelid, args[1]::text[], nullif(args[2], ''), 'ALTER EXTENSION ip_inventory UPDATE', pg_catalog.now())
        ON CONFLICT DO NOTHING;
        RAISE NOTICE 'ip_inventory: % stays attached (columns %, time %); review the attached tables in ip_inventory_observed_tables',
            t.tgrelid::regclass, args[1], coalesce(nullif(args[2], ''), 'none');
    END LOOP;
END $migrate$;

-- Internal helpers get internal names (a leading underscore); renaming keeps every object
-- that refers to them.
ALTER FUNCTION @extschema@.ip_inventory_maxmind(inet) RENAME TO _ip_inventory_maxmind;
ALTER FUNCTION @extschema@.ip_inventory_maxmind_columns(@extschema@.ip_enrichment) RENAME TO _ip_inventory_maxmind_columns;
ALTER FUNCTION @extschema@.ip_inventory_check_columns(regclass, text[], text) RENAME TO _ip_inventory_check_columns;
ALTER FUNCTION @extschema@.ip_inventory_apply_maxmind(inet[]) RENAME TO _ip_inventory_apply_maxmind;
ALTER FUNCTION @extschema@.ip_inventory_maxmind_pending(timestamptz, timestamptz, timestamptz, timestamptz, timestamptz)
    RENAME TO _ip_inventory_maxmind_pending;
ALTER FUNCTION @extschema@.ip_inventory_refresh_result(text, bigint, bigint, bigint, bigint, bigint, bigint, bigint, timestamptz, text)
    RENAME TO _ip_inventory_refresh_result;
ALTER FUNCTION @extschema@.ip_inventory_refresh_maxmind(int) RENAME TO _ip_inventory_refresh_maxmind;
ALTER FUNCTION @extschema@.ip_inventory_refresh_network(text, int) RENAME TO _ip_inventory_refresh_network;
ALTER FUNCTION @extschema@.ip_inventory_greynoise_state() RENAME TO _ip_inventory_greynoise_state;
ALTER FUNCTION @extschema@.ip_inventory_greynoise_seed(int, bigint) RENAME TO _ip_inventory_greynoise_seed;
ALTER FUNCTION @extschema@.ip_inventory_stats_counters() RENAME TO _ip_inventory_stats_counters;
ALTER FUNCTION @extschema@.ip_inventory_job_notice(@extschema@.ip_inventory_jobs) RENAME TO _ip_inventory_job_notice;

-- A changed result type or parameter default cannot be replaced in place.
DROP FUNCTION @extschema@.ip_inventory_count_recorded(bigint, bigint, bigint);
-- ip_pseudonymize(inet, text DEFAULT NULL) becomes two functions: with an explicit salt
-- (anyone) and with the configured salt (not PUBLIC).
DROP FUNCTION @extschema@.ip_pseudonymize(inet, text);

-- "source" means an enrichment source only: a backfill's event table is its event_table.
ALTER TABLE @extschema@.ip_inventory_jobs RENAME COLUMN source TO event_table;
ALTER INDEX @extschema@.ip_inventory_jobs_source_key RENAME TO ip_inventory_jobs_event_table_key;
DROP VIEW @extschema@.ip_inventory_progress;
DROP PROCEDURE @extschema@.ip_inventory_backfill(regclass, text[], text, int, boolean, jsonb);
-- The due-row indexes are rebuilt on the one definition of what each source serves
-- (_ip_inventory_source_serves, created below; the indexes in the epilogue).
DROP INDEX @extschema@.ip_inventory_cymru_due;
DROP INDEX @extschema@.ip_inventory_greynoise_due;
DROP INDEX @extschema@.ip_inventory_rdns_due;

-- Citus support (sql/citus.sql): the queue of observations for other shards and the list of
-- attached distributed event tables; empty, and stay so on a single node.
CREATE TABLE @extschema@.ip_inventory_citus_queue (
    shard_key    inet NOT NULL,
    ip           inet NOT NULL,
    observations bigint NOT NULL CHECK (observations > 0),
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    enrich       boolean NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory_citus_queue', '');
CREATE TABLE @extschema@.ip_inventory_citus_observed (
    event_table text PRIMARY KEY,
    ip_columns  text[] NOT NULL CHECK (cardinality(ip_columns) > 0),
    ts_column   text
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory_citus_observed', '');

-- The result types of ip_anonymous() and ip_isp() (sql/types.sql).
CREATE TYPE @extschema@.ip_anonymizer AS (
    is_anonymous         boolean,
    is_anonymous_vpn     boolean,
    is_hosting_provider  boolean,
    is_public_proxy      boolean,
    is_residential_proxy boolean,
    is_tor_exit_node     boolean
);
COMMENT ON TYPE @extschema@.ip_anonymizer IS
    'Result of ip_anonymous(): the MaxMind anonymizer flags of an address (a flag the database does not set is false).';
CREATE TYPE @extschema@.ip_isp_data AS (
    isp                            text,
    organization                   text,
    autonomous_system_number       bigint,
    autonomous_system_organization text,
    mobile_country_code            text,
    mobile_network_code            text
);
COMMENT ON TYPE @extschema@.ip_isp_data IS
    'Result of ip_isp(): the MaxMind ISP fields of an address.';

-- Network lists (sql/lists.sql): the result type of ip_list_match() and the registry.
CREATE TYPE @extschema@.ip_list_hit AS (
    network    cidr,
    label      text,
    attributes jsonb
);
CREATE TABLE @extschema@.ip_inventory_lists (
    list_name     text PRIMARY KEY CHECK (list_name ~ '^[a-z][a-z0-9_]{0,62}$'),
    list_table    regclass NOT NULL,
    description   text,
    registered_by text NOT NULL,
    registered_at timestamptz NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory_lists', '');

-- Issue 19: addresses added on demand (cascade_refresh_now, ip_verdict's refresh queue) have
-- no observation yet (sql/inventory.sql); the refreshes take the addresses to refresh
-- (sql/cascade.sql: a new parameter, so the old signatures go).
ALTER TABLE @extschema@.ip_inventory DROP CONSTRAINT ip_inventory_observation_count_check,
    ADD CONSTRAINT ip_inventory_observation_count_check CHECK (observation_count >= 0);
DROP FUNCTION @extschema@._ip_inventory_refresh_maxmind(int);
DROP FUNCTION @extschema@._ip_inventory_refresh_network(text, int);

-- Issue 18 items 2 and 4: the MaxMind anonymizer flags and the materialized tags of the tag
-- rules become inventory columns (sql/inventory.sql), and the tag rules and their state are
-- new tables (sql/tags.sql; their triggers are created in the epilogue, after their functions).
ALTER TABLE @extschema@.ip_inventory
    ADD COLUMN is_anonymous         boolean,
    ADD COLUMN is_anonymous_vpn     boolean,
    ADD COLUMN is_hosting_provider  boolean,
    ADD COLUMN is_public_proxy      boolean,
    ADD COLUMN is_residential_proxy boolean,
    ADD COLUMN is_tor_exit_node     boolean,
    ADD COLUMN tags                 text[] NOT NULL DEFAULT '{}',
    ADD COLUMN tag_confidence       jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN tags_generation      bigint;
-- Issue 18 item 4: MaxMind ISP and Connection-Type data as inventory columns (sql/inventory.sql).
ALTER TABLE @extschema@.ip_inventory
    ADD COLUMN isp                  text,
    ADD COLUMN isp_organization     text,
    ADD COLUMN mobile_country_code  text,
    ADD COLUMN mobile_network_code  text,
    ADD COLUMN connection_type      text;
CREATE TABLE @extschema@.ip_inventory_tag_rules (
    rule_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tag         text NOT NULL CONSTRAINT ip_inventory_tag_rules_tag_check
                    CHECK (tag ~ '^[a-z0-9][a-z0-9_.:-]{0,62}$'),
    attack_type text CONSTRAINT ip_inventory_tag_rules_attack_type_check
                    CHECK (attack_type ~ '^[a-z0-9][a-z0-9_.:-]{0,62}$'),
    confidence  numeric NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    condition   jsonb NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    comment     text CHECK (octet_length(comment) <= 2000),
    event_table regclass,
    created_by  text NOT NULL DEFAULT current_user,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory_tag_rules', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory_tag_rules_rule_id_seq', '');
CREATE TABLE @extschema@.ip_inventory_tag_state (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation    bigint NOT NULL,
    enabled_rules int NOT NULL,
    compiled      text,
    changed_at    timestamptz,
    event_tables  regclass[] NOT NULL DEFAULT '{}'
);
INSERT INTO @extschema@.ip_inventory_tag_state (generation, enabled_rules) VALUES (0, 0);

-- Every function, procedure, view, comment and grant of a fresh install.

COMMENT ON TYPE ip_enrichment IS
    'Result of enrich_ip(): IANA class, MaxMind City fields (network = matched City prefix) and ASN fields (asn_network = matched ASN prefix); maxmind_build/asn_build are the build times of the City/ASN databases consulted. Non-public addresses carry only ip_class.';

COMMENT ON TYPE ip_list_hit IS
    'Result of ip_list_match(): the most specific network of a network list holding the address, its label and its other columns as attributes.';

COMMENT ON TYPE ip_anonymizer IS
    'Result of ip_anonymous(): the MaxMind anonymizer flags of an address (a flag the database does not set is false).';

COMMENT ON TYPE ip_isp_data IS
    'Result of ip_isp(): the MaxMind ISP fields of an address.';

CREATE OR REPLACE FUNCTION "_ip_inventory_anonymous"(
	"ip" inet 
) RETURNS ip_anonymizer 
STRICT STABLE PARALLEL SAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_anonymous_wrapper';

COMMENT ON FUNCTION @extschema@._ip_inventory_anonymous(inet) IS
    'ip_anonymous() for the inventory''s anonymizer columns: NULL when ip_inventory.anonymous_db is not configured; a database that cannot be used gives NULL with one WARNING per session (internal).';

CREATE OR REPLACE FUNCTION "_ip_inventory_backfill_batch"(
	"event_table" regclass, 
	"ip_columns" TEXT[], 
	"ts_column" TEXT, 
	"after_ctid" TEXT, 
	"before_page" bigint 
) RETURNS TABLE (
	"event_rows" bigint,  
	"last_ctid" TEXT,  
	"addresses" bigint,  
	"new_addresses" bigint  
)
VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_backfill_batch_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_claim"(
	"source" TEXT, 
	"ips" TEXT[], 
	"lim" INT 
) RETURNS TEXT[] 
STRICT VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_claim_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_connection_type"(
	"ip" inet 
) RETURNS text 
STRICT STABLE PARALLEL SAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_connection_type_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_count_recorded"(
	"observations" bigint, 
	"new_addresses" bigint, 
	"maxmind_enriched" bigint 
) RETURNS bigint 
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_count_recorded_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_enriched_view_refresh"(
	"event_table" regclass 
) RETURNS VOID 
STRICT VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_enriched_view_refresh_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_greynoise_pace"() RETURNS bigint 
STRICT VOLATILE PARALLEL SAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_greynoise_pace_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_greynoise_seed"(
	"day" INT, 
	"used" bigint 
) RETURNS VOID 
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_greynoise_seed_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_greynoise_state"() RETURNS TABLE (
	"day" INT,  
	"daily_quota" bigint,  
	"used" bigint,  
	"remaining" bigint,  
	"paused_until" bigint  
)
STRICT VOLATILE PARALLEL SAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_greynoise_state_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_isp"(
	"ip" inet 
) RETURNS ip_isp_data 
STRICT STABLE PARALLEL SAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_isp_wrapper';

COMMENT ON FUNCTION @extschema@._ip_inventory_isp(inet) IS
    'ip_isp() for the inventory''s ISP columns: NULL when ip_inventory.isp_db is not configured; a database that cannot be used gives NULL with one WARNING per session (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_connection_type(inet) IS
    'ip_connection_type() for the inventory''s connection_type column: NULL when ip_inventory.connection_type_db is not configured; a database that cannot be used gives NULL with one WARNING per session (internal).';

CREATE OR REPLACE FUNCTION "_ip_inventory_job_holder"(
	"job" TEXT 
) RETURNS INT 
STRICT STABLE PARALLEL SAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_job_holder_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_job_release"(
	"job" TEXT 
) RETURNS VOID 
STRICT VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_job_release_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_job_start"(
	"job" TEXT 
) RETURNS VOID 
STRICT VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_job_start_wrapper';

COMMENT ON FUNCTION @extschema@._ip_inventory_job_start(text) IS 'Takes a batch job''s lock or raises naming its holder (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_job_release(text) IS 'Releases this session''s holds on a batch job''s lock (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_job_holder(text) IS 'The process running a batch job, or NULL (internal: ip_inventory_progress).';

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_job_start(text) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_job_release(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION "_ip_inventory_latency_histograms"() RETURNS TABLE (
	"source" TEXT,  
	"metric" TEXT,  
	"le" double precision[],  
	"buckets" bigint[],  
	"sum_seconds" double precision,  
	"count" bigint  
)
STRICT VOLATILE PARALLEL RESTRICTED 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_latency_histograms_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_list_stats"(
	"list_name" TEXT 
) RETURNS jsonb 
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_list_stats_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_maxmind"(
	"ip" inet 
) RETURNS ip_enrichment 
STRICT STABLE PARALLEL SAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_maxmind_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_maxmind_json"(
	"continent_code" TEXT, 
	"registered_country_code" TEXT, 
	"subdivision_code" TEXT, 
	"postal_code" TEXT, 
	"accuracy_radius" INT, 
	"time_zone" TEXT, 
	"is_anonymous_proxy" bool, 
	"is_satellite_provider" bool, 
	"is_anycast" bool 
) RETURNS jsonb 
IMMUTABLE PARALLEL SAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_maxmind_json_wrapper';

COMMENT ON FUNCTION @extschema@._ip_inventory_maxmind_json(text, text, text, text, int, text, boolean, boolean, boolean) IS
    'The MaxMind fields without an inventory column as one jsonb object of the non-NULL ones, NULL when none (internal: _ip_inventory_maxmind_columns).';

CREATE OR REPLACE FUNCTION "_ip_inventory_queue"(
	"ip" inet, 
	"sources" TEXT[] 
) RETURNS bool 
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_queue_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_queue_done"(
	"source" TEXT, 
	"ips" TEXT[] 
) RETURNS VOID 
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_queue_done_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_queue_entries"() RETURNS TABLE (
	"ip_address" TEXT,  
	"sources" TEXT[],  
	"queued_at" timestamp with time zone  
)
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_queue_entries_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_queue_peek"(
	"source" TEXT, 
	"lim" INT 
) RETURNS TEXT[] 
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_queue_peek_wrapper';

COMMENT ON FUNCTION @extschema@._ip_inventory_queue(inet, text[]) IS 'Queues an address for the next refresh of the given network sources (internal: ip_verdict).';

COMMENT ON FUNCTION @extschema@._ip_inventory_queue_peek(text, int) IS 'Addresses queued for a network source, longest queued first (internal: cascade_refresh).';

COMMENT ON FUNCTION @extschema@._ip_inventory_queue_done(text, text[]) IS 'Removes addresses a refresh took from the queue (internal: cascade_refresh).';

COMMENT ON FUNCTION @extschema@._ip_inventory_queue_entries() IS 'The refresh queue (internal: ip_inventory_refresh_queue).';

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_queue(inet, text[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_queue_peek(text, int) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_queue_done(text, text[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_queue_entries() FROM PUBLIC;

CREATE OR REPLACE FUNCTION "_ip_inventory_refresh_limit"(
	"source" TEXT 
) RETURNS INT 
STRICT STABLE PARALLEL SAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_refresh_limit_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_release"(
	"source" TEXT, 
	"ips" TEXT[] 
) RETURNS VOID 
STRICT VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_release_wrapper';

COMMENT ON FUNCTION @extschema@._ip_inventory_claim(text, text[], int) IS 'Claims addresses for a refresh of a network source (internal: cascade_refresh).';

COMMENT ON FUNCTION @extschema@._ip_inventory_release(text, text[]) IS 'Releases a refresh''s claims (internal: cascade_refresh).';

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_claim(text, text[], int) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_release(text, text[]) FROM PUBLIC;

CREATE OR REPLACE FUNCTION "_ip_inventory_retain_events"(
	"event_table" regclass, 
	"mode" TEXT, 
	"cutoff" timestamp with time zone, 
	"prefix_v4" INT, 
	"prefix_v6" INT, 
	"batch_size" INT, 
	"dry_run" bool 
) RETURNS bigint 
STRICT VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_retain_events_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_rows_before_page"(
	"event_table" regclass, 
	"pages" bigint 
) RETURNS bigint 
STRICT VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_rows_before_page_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_skip_networks"(
	"source" TEXT 
) RETURNS TEXT[] 
STRICT STABLE PARALLEL SAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_skip_networks_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_source_enabled"(
	"source" TEXT 
) RETURNS bool 
STRICT STABLE PARALLEL SAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_source_enabled_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_stats_counters"() RETURNS TABLE (
	"source" TEXT,  
	"metric" TEXT,  
	"error_kind" TEXT,  
	"kind" TEXT,  
	"value" bigint,  
	"stats_reset" timestamp with time zone  
)
STRICT VOLATILE PARALLEL RESTRICTED 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_stats_counters_wrapper';

CREATE OR REPLACE FUNCTION "_ip_inventory_verdict_due"(
	"ip" inet, 
	"ip_class" TEXT, 
	"asn_source" TEXT, 
	"cymru_ts" timestamp with time zone, 
	"greynoise_ts" timestamp with time zone, 
	"rdns_ts" timestamp with time zone 
) RETURNS TEXT[] 
STABLE PARALLEL SAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_verdict_due_wrapper';

CREATE OR REPLACE FUNCTION "enrich_ip"(
	"ip" inet 
) RETURNS ip_enrichment 
STRICT STABLE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'enrich_ip_wrapper';

COMMENT ON FUNCTION @extschema@.enrich_ip(inet) IS
    'MaxMind City and ASN enrichment as one ip_enrichment value. Use FROM t, LATERAL enrich_ip(t.ip) e. An inet with a netmask is looked up by its address.';

COMMENT ON FUNCTION @extschema@._ip_inventory_maxmind(inet) IS
    'enrich_ip() for recording observations: a database that is not configured or cannot be used leaves its fields and build time NULL (one WARNING per session) instead of raising (internal).';

CREATE OR REPLACE FUNCTION "ip_anonymize"(
	"ip" inet, 
	"prefix_v4" INT DEFAULT 24, 
	"prefix_v6" INT DEFAULT 48 
) RETURNS inet 
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_anonymize_wrapper';

COMMENT ON FUNCTION @extschema@.ip_anonymize(inet, int, int) IS
    'The network an address falls in, truncated to prefix_v4 (default 24) or prefix_v6 (default 48) bits, with its prefix length: 81.2.69.160 -> 81.2.69.0/24. IPv4-mapped addresses are truncated as IPv4.';

CREATE OR REPLACE FUNCTION "ip_anonymous"(
	"ip" inet 
) RETURNS ip_anonymizer 
STRICT STABLE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_anonymous_wrapper';

CREATE OR REPLACE FUNCTION "ip_asn"(
	"ip" inet 
) RETURNS bigint 
STRICT STABLE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_asn_wrapper';

CREATE OR REPLACE FUNCTION "ip_asn_org"(
	"ip" inet 
) RETURNS text 
STRICT STABLE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_asn_org_wrapper';

CREATE OR REPLACE FUNCTION "ip_canonical"(
	"ip" inet 
) RETURNS inet 
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_canonical_wrapper';

COMMENT ON TABLE @extschema@.ip_inventory IS
    'One row per IP address observed in event tables (ip_inventory_attach, ip_inventory_backfill), with MaxMind, Team Cymru, GreyNoise and reverse-DNS enrichment. Dumped by pg_dump with its rows.';

COMMENT ON COLUMN @extschema@.ip_inventory.ip_address IS 'The address, canonical (ip_canonical()): IPv4-mapped IPv6 addresses are kept as IPv4, no netmask.';

COMMENT ON COLUMN @extschema@.ip_inventory.first_seen_at IS 'Earliest event time of the address. Changed only by observations.';

COMMENT ON COLUMN @extschema@.ip_inventory.last_seen_at IS 'Latest event time of the address. Changed only by observations.';

COMMENT ON COLUMN @extschema@.ip_inventory.observation_count IS 'Number of appearances in observed event columns (an event with the address in two observed columns counts 2). Changed only by observations; 0 for an address added by cascade_refresh_now() or the refresh queue (ip_verdict) and not observed since (its first and last seen are when it was added).';

COMMENT ON COLUMN @extschema@.ip_inventory.ip_class IS 'IANA special-purpose class (ip_class()), or anonymized for a network row merged by ip_inventory_retention(); only public addresses are enriched.';

COMMENT ON COLUMN @extschema@.ip_inventory.geo_country IS 'MaxMind City: ISO country code.';

COMMENT ON COLUMN @extschema@.ip_inventory.geo_country_name IS 'MaxMind City: country name (ip_inventory.language at enrichment time).';

COMMENT ON COLUMN @extschema@.ip_inventory.geo_city IS 'MaxMind City: city name.';

COMMENT ON COLUMN @extschema@.ip_inventory.geo_subdivision IS 'MaxMind City: name of the largest subdivision (state, region); its ISO code is in enrichment->''maxmind''.';

COMMENT ON COLUMN @extschema@.ip_inventory.geo_latitude IS 'MaxMind City: latitude.';

COMMENT ON COLUMN @extschema@.ip_inventory.geo_longitude IS 'MaxMind City: longitude.';

COMMENT ON COLUMN @extschema@.ip_inventory.geo_network IS 'MaxMind City: the matched prefix.';

COMMENT ON COLUMN @extschema@.ip_inventory.maxmind_build IS 'Build time of the MaxMind City database that answered; rows from another build are pending (ip_inventory_enrich_pending).';

COMMENT ON COLUMN @extschema@.ip_inventory.maxmind_asn_build IS 'Build time of the MaxMind ASN database that answered; rows from another build are pending.';

COMMENT ON COLUMN @extschema@.ip_inventory.maxmind_ts IS 'When MaxMind last enriched the row (NULL: never).';

COMMENT ON COLUMN @extschema@.ip_inventory.asn_number IS 'Autonomous system number, from asn_source.';

COMMENT ON COLUMN @extschema@.ip_inventory.asn_org IS 'Autonomous system organisation, from asn_source.';

COMMENT ON COLUMN @extschema@.ip_inventory.asn_network IS 'The announced prefix holding the address, from asn_source.';

COMMENT ON COLUMN @extschema@.ip_inventory.asn_source IS 'Which source gave the ASN: maxmind or cymru.';

COMMENT ON COLUMN @extschema@.ip_inventory.cymru_ts IS 'When Team Cymru was last asked about the address (NULL: never).';

COMMENT ON COLUMN @extschema@.ip_inventory.greynoise_ts IS 'When GreyNoise was last asked about the address (NULL: never).';

COMMENT ON COLUMN @extschema@.ip_inventory.rdns_ts IS 'When reverse DNS was last asked about the address (NULL: never).';

COMMENT ON COLUMN @extschema@.ip_inventory.enrichment IS 'Each source''s answer under its own key (maxmind, cymru, greynoise, rdns), e.g. enrichment->''greynoise''->>''riot''.';

COMMENT ON COLUMN @extschema@.ip_inventory.is_scanner IS 'GreyNoise: the address was observed scanning the internet (enrichment->''greynoise''->>''noise''). Generated.';

COMMENT ON COLUMN @extschema@.ip_inventory.scanner_ts IS 'Same as greynoise_ts, under the name the earlier cascade used. Generated.';

COMMENT ON COLUMN @extschema@.ip_inventory.is_anonymous IS 'MaxMind Anonymous-IP: the address belongs to any anonymizer (VPN, hosting provider, public or residential proxy, Tor exit). NULL: no anonymizer data, or ip_inventory.anonymous_db not configured when MaxMind last enriched the row.';

COMMENT ON COLUMN @extschema@.ip_inventory.is_anonymous_vpn IS 'MaxMind Anonymous-IP: a VPN provider''s address. NULL: no anonymizer data (see is_anonymous).';

COMMENT ON COLUMN @extschema@.ip_inventory.is_hosting_provider IS 'MaxMind Anonymous-IP: a hosting or VPN provider''s address. NULL: no anonymizer data (see is_anonymous).';

COMMENT ON COLUMN @extschema@.ip_inventory.is_public_proxy IS 'MaxMind Anonymous-IP: a public proxy. NULL: no anonymizer data (see is_anonymous).';

COMMENT ON COLUMN @extschema@.ip_inventory.is_residential_proxy IS 'MaxMind Anonymous-IP: a residential proxy. NULL: no anonymizer data (see is_anonymous).';

COMMENT ON COLUMN @extschema@.ip_inventory.is_tor_exit_node IS 'MaxMind Anonymous-IP: a Tor exit node. NULL: no anonymizer data (see is_anonymous).';

COMMENT ON COLUMN @extschema@.ip_inventory.tags IS 'Tags of the enabled rules of ip_inventory_tag_rules the address matches, sorted (docs/tags.md). Materialized: written after each enrichment of the row and by ip_inventory_retag().';

COMMENT ON COLUMN @extschema@.ip_inventory.tag_confidence IS 'Confidence of each tag, {tag: confidence in [0,1]}: the highest of the matching rules giving the tag.';

COMMENT ON COLUMN @extschema@.ip_inventory.tags_generation IS 'The generation of the tag rules (ip_inventory_tag_state) tags were computed with; NULL: never tagged. Rows of an older generation are re-tagged by ip_inventory_retag().';

COMMENT ON COLUMN @extschema@.ip_inventory.isp IS 'MaxMind ISP: the internet service provider''s name (ip_isp()). NULL: no ISP data, or ip_inventory.isp_db not configured when MaxMind last enriched the row.';

COMMENT ON COLUMN @extschema@.ip_inventory.isp_organization IS 'MaxMind ISP: the organisation the address is assigned to (ip_isp().organization). NULL: none (see isp).';

COMMENT ON COLUMN @extschema@.ip_inventory.mobile_country_code IS 'MaxMind ISP: mobile country code (MCC, ITU E.212, e.g. 310) of a mobile network. NULL: not a known mobile network (see isp).';

COMMENT ON COLUMN @extschema@.ip_inventory.mobile_network_code IS 'MaxMind ISP: mobile network code (MNC, e.g. 004) of a mobile network. NULL: not a known mobile network (see isp).';

COMMENT ON COLUMN @extschema@.ip_inventory.connection_type IS 'MaxMind Connection-Type: Cable/DSL, Cellular, Corporate, Satellite or Dialup (ip_connection_type()). NULL: unknown, or ip_inventory.connection_type_db not configured when MaxMind last enriched the row.';

COMMENT ON COLUMN @extschema@.ip_inventory.enrichment_ts IS 'When any source last enriched the row (the latest of the source timestamps), under the name the earlier cascade used. Generated; staleness per source is in ip_inventory_staleness.';

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_asn_replaced(offered_by text, offered_asn bigint, asn_source text)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE offered_by
    WHEN 'maxmind' THEN offered_asn IS NOT NULL OR asn_source IS DISTINCT FROM 'cymru'
    WHEN 'cymru' THEN asn_source IS DISTINCT FROM 'maxmind'
    ELSE false END;

COMMENT ON FUNCTION @extschema@._ip_inventory_asn_replaced(text, bigint, text) IS
    'Whether an ASN offered by maxmind or cymru replaces the row''s (internal: the one ASN rule).';

COMMENT ON TABLE @extschema@.ip_inventory_jobs IS
    'Progress of ip_inventory_backfill() and ip_inventory_enrich_pending(), committed per batch. Read it through ip_inventory_progress.';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.job IS 'backfill:<schema>.<table> (named when the backfill started) or enrich_pending.';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.event_table IS 'Backfill: the event table; identifies the job (survives renames).';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.ip_columns IS 'Backfill: the address columns counted.';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.ts_column IS 'Backfill: the event time column (NULL: the time of the backfill).';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.resume_after IS 'Backfill: every row up to this ctid is counted; the next batch starts after it.';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.total_rows IS 'Rows to process, estimated when the run started.';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.done_rows IS 'Rows processed so far, over all runs.';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.addresses IS 'Addresses recorded or enriched so far.';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.new_addresses IS 'Backfill: addresses that were not in the inventory before.';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.batches IS 'Batches committed so far.';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.status IS 'running, stopped (enrich_pending reached max_rows: the next run continues) or finished. A running job holds a lock only the extension can take; ip_inventory_progress shows a running row whose lock nobody holds as interrupted.';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.started_at IS 'When the first run started.';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.run_started_at IS 'When the current (or last) run started.';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.run_done_rows IS 'Rows processed by the current (or last) run.';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.updated_at IS 'When the last batch committed.';

COMMENT ON COLUMN @extschema@.ip_inventory_jobs.finished_at IS 'When the job finished.';

COMMENT ON TABLE @extschema@.ip_inventory_failures IS
    'Addresses a network source failed to answer about (timeout, reset, garbage, HTTP 5xx ...), with the last error; the row stays due and the next cascade_refresh() asks again. Removed when the source answers.';

COMMENT ON TABLE @extschema@.ip_inventory_quota IS
    'GreyNoise calls made on a UTC day, as last saved by a refresh; the shared-memory count starts from it after a restart. Read greynoise_quota() for the live count.';

COMMENT ON TABLE @extschema@.ip_inventory_observed IS
    'Event tables attached to ip_inventory (ip_inventory_attach): their inserts are recorded, retention applies to them. Read it through ip_inventory_observed_tables.';

COMMENT ON COLUMN @extschema@.ip_inventory_observed.event_table IS 'The event table.';

COMMENT ON COLUMN @extschema@.ip_inventory_observed.ip_columns IS 'Its columns holding addresses (inet or cidr).';

COMMENT ON COLUMN @extschema@.ip_inventory_observed.ts_column IS 'Its event time column (NULL: the time of the insert).';

COMMENT ON COLUMN @extschema@.ip_inventory_observed.attached_by IS 'The role that attached it.';

COMMENT ON COLUMN @extschema@.ip_inventory_observed.attached_at IS 'When it was attached.';

COMMENT ON COLUMN @extschema@.ip_inventory_observed.enriched_views IS 'The views ip_inventory_enriched_view() created over it, owned by its owner; ip_inventory_detach() drops them.';

COMMENT ON FUNCTION @extschema@.ip_canonical(inet) IS
    'The address as ip_inventory keys it: IPv4-mapped IPv6 as IPv4, netmask dropped.';

CREATE OR REPLACE FUNCTION "ip_class"(
	"ip" inet 
) RETURNS TEXT 
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_class_wrapper';

COMMENT ON FUNCTION @extschema@.ip_class(inet) IS
    'IANA special-purpose class of an address: public, private, loopback, link_local, cgnat, multicast, documentation, benchmarking, reserved, ... (IPv4-mapped addresses by their IPv4 address).';

CREATE OR REPLACE FUNCTION "ip_connection_type"(
	"ip" inet 
) RETURNS text 
STRICT STABLE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_connection_type_wrapper';

CREATE OR REPLACE FUNCTION "ip_country"(
	"ip" inet 
) RETURNS text 
STRICT STABLE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_country_wrapper';

COMMENT ON FUNCTION @extschema@.ip_country(inet) IS
    'ISO 3166 country code from the MaxMind City database; NULL when unknown or the address is not public (6to4 and Teredo addresses: as libmaxminddb answers them).';

COMMENT ON FUNCTION @extschema@.ip_asn(inet) IS
    'Autonomous system number from the MaxMind ASN database; NULL when unknown or the address is not public (6to4 and Teredo addresses: as libmaxminddb answers them).';

COMMENT ON FUNCTION @extschema@.ip_asn_org(inet) IS
    'Autonomous system organisation from the MaxMind ASN database; NULL when unknown or the address is not public (6to4 and Teredo addresses: as libmaxminddb answers them).';

CREATE OR REPLACE FUNCTION "ip_inventory_attach"(
	"tbl" regclass, 
	"ip_columns" TEXT[], 
	"ts_column" TEXT DEFAULT NULL 
) RETURNS VOID 
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_attach_wrapper';

CREATE OR REPLACE FUNCTION "ip_inventory_detach"(
	"tbl" regclass 
) RETURNS VOID 
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_detach_wrapper';

CREATE OR REPLACE FUNCTION "ip_inventory_enriched_view"(
	"event_table" regclass, 
	"view_name" TEXT DEFAULT NULL, 
	"view_schema" TEXT DEFAULT NULL 
) RETURNS TEXT[] 
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_enriched_view_wrapper';

COMMENT ON FUNCTION @extschema@.ip_inventory_attach(regclass, text[], text) IS
    'Attaches an event table: its inserts are recorded in ip_inventory (the observe trigger) and retention applies to it, e.g. SELECT ip_inventory_attach(''raw_events'', ARRAY[''src_ip'', ''dst_ip''], ''event_ts''). The caller must own the table; EXECUTE on this function is the privilege to feed the inventory.';

COMMENT ON FUNCTION @extschema@.ip_inventory_detach(regclass) IS 'Detaches an event table: drops its enriched views (ip_inventory_enriched_view), its observe trigger and forgets it. The caller must own the table.';

COMMENT ON FUNCTION @extschema@.ip_inventory_enriched_view(regclass, text, text) IS
    'Creates (or replaces) the BI views of an attached event table: <view_name> (default <table>_enriched: the events joined to ip_inventory per address column, columns prefixed src_country, dst_asn, ...) and, with an event time, <view_name>_daily_country, <view_name>_daily_asn and <view_name>_daily_tag, and <view_name>_tag_report (events and average confidence by tag, address and event rules). Owned by the table''s owner, in view_schema (default the table''s), security_invoker: readers need SELECT on the events and ip_inventory. ip_inventory_detach drops them. The caller must own the table.';

COMMENT ON FUNCTION @extschema@._ip_inventory_enriched_view_refresh(regclass) IS 'Replaces the recorded enriched view of an attached table as its owner, after a change of the event rules (internal: _ip_inventory_tag_rules_changed).';

COMMENT ON FUNCTION @extschema@._ip_inventory_backfill_batch(regclass, text[], text, text, bigint) IS 'One backfill batch: reads the rows as the table''s owner and records them (internal: ip_inventory_backfill).';

COMMENT ON FUNCTION @extschema@._ip_inventory_retain_events(regclass, text, timestamptz, int, int, int, boolean) IS 'One retention batch of an attached event table, run as its owner (internal: ip_inventory_retention).';

COMMENT ON FUNCTION @extschema@._ip_inventory_rows_before_page(regclass, bigint) IS 'Rows in the first pages of an event table, counted as its owner (internal: backfill).';

REVOKE ALL ON FUNCTION @extschema@.ip_inventory_attach(regclass, text[], text) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@.ip_inventory_detach(regclass) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@.ip_inventory_enriched_view(regclass, text, text) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_enriched_view_refresh(regclass) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_backfill_batch(regclass, text[], text, text, bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retain_events(regclass, text, timestamptz, int, int, int, boolean) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_rows_before_page(regclass, bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION "ip_inventory_fetch"(
	"source" TEXT, 
	"ips" TEXT[] 
) RETURNS TABLE (
	"ip" inet,  
	"outcome" TEXT,  
	"answer" jsonb,  
	"detail" TEXT  
)
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_fetch_wrapper';

COMMENT ON FUNCTION @extschema@.ip_inventory_fetch(text, text[]) IS
    'Asks one network source (cymru, greynoise, rdns) about addresses, one row per address: outcome found, not_found, failed or skipped, the answer, why. Writes nothing; cascade_refresh() uses it.';

COMMENT ON FUNCTION @extschema@._ip_inventory_greynoise_state() IS 'The GreyNoise quota as counted in shared memory (internal: greynoise_quota()).';

COMMENT ON FUNCTION @extschema@._ip_inventory_greynoise_seed(int, bigint) IS 'Raises the shared GreyNoise count to the one saved before a restart (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_greynoise_pace() IS 'The GreyNoise calls a scheduled run may make: calls left today / runs left until midnight UTC (internal: cascade_refresh()).';

REVOKE ALL ON FUNCTION @extschema@.ip_inventory_fetch(text, text[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_greynoise_state() FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_greynoise_seed(int, bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_greynoise_pace() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION @extschema@._ip_inventory_greynoise_state() TO pg_monitor;

CREATE OR REPLACE FUNCTION "ip_inventory_stats_reset"() RETURNS timestamp with time zone 
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_stats_reset_wrapper';

CREATE OR REPLACE FUNCTION "ip_inventory_ttl"(
	"source" TEXT 
) RETURNS interval 
STRICT STABLE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_inventory_ttl_wrapper';

COMMENT ON FUNCTION @extschema@.ip_inventory_ttl(text) IS
    'How long an answer of cymru, greynoise or rdns stays fresh (ip_inventory.<source>_ttl).';

COMMENT ON FUNCTION @extschema@._ip_inventory_source_enabled(text) IS
    'Whether a network source is switched on: ip_inventory.<source>_enabled (internal: cascade_refresh, ip_inventory_health).';

COMMENT ON FUNCTION @extschema@._ip_inventory_skip_networks(text) IS
    'The networks a source never asks about: ip_inventory.<source>_skip_networks (internal: cascade_refresh, ip_inventory_staleness).';

COMMENT ON FUNCTION @extschema@._ip_inventory_refresh_limit(text) IS
    'Rows cascade_refresh() takes from a source without lim: ip_inventory.<source>_refresh_limit (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_verdict_due(inet, text, text, timestamptz, timestamptz, timestamptz) IS
    'The network sources that serve a row, are switched on, do not skip its network and have no fresh answer for it (internal: ip_verdict).';

CREATE OR REPLACE FUNCTION "ip_isp"(
	"ip" inet 
) RETURNS ip_isp_data 
STRICT STABLE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_isp_wrapper';

COMMENT ON FUNCTION @extschema@.ip_anonymous(inet) IS
    'Anonymizer flags (anonymous, VPN, hosting provider, public proxy, residential proxy, Tor exit node) from the MaxMind Anonymous-IP, Anonymous Plus or Enterprise database (ip_inventory.anonymous_db); NULL when the database holds no anonymizer data for the address or the address is not public (6to4 and Teredo addresses: as libmaxminddb answers them).';

COMMENT ON FUNCTION @extschema@.ip_isp(inet) IS
    'ISP, organisation, autonomous system and mobile country/network codes from the MaxMind ISP or Enterprise database (ip_inventory.isp_db); NULL when the database holds none for the address or the address is not public (6to4 and Teredo addresses: as libmaxminddb answers them).';

COMMENT ON FUNCTION @extschema@.ip_connection_type(inet) IS
    'Connection type (Cable/DSL, Cellular, Corporate, Satellite, Dialup) from the MaxMind Connection-Type or Enterprise database (ip_inventory.connection_type_db); NULL when unknown or the address is not public (6to4 and Teredo addresses: as libmaxminddb answers them).';

CREATE OR REPLACE FUNCTION "ip_list_contains"(
	"ip" inet, 
	"list_name" TEXT 
) RETURNS bool 
STRICT STABLE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_list_contains_wrapper';

CREATE OR REPLACE FUNCTION "ip_list_match"(
	"ip" inet, 
	"list_name" TEXT 
) RETURNS ip_list_hit 
STRICT STABLE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_list_match_wrapper';

CREATE OR REPLACE FUNCTION "ip_list_register"(
	"list_name" TEXT, 
	"list_table" regclass, 
	"description" TEXT DEFAULT NULL 
) RETURNS VOID 
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_list_register_wrapper';

CREATE OR REPLACE FUNCTION "ip_list_unregister"(
	"list_name" TEXT 
) RETURNS VOID 
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_list_unregister_wrapper';

COMMENT ON TABLE @extschema@.ip_inventory_lists IS
    'Registered network lists (ip_list_register): the name ip_list_match() takes and the table holding the networks. Written by ip_list_register/ip_list_unregister only.';

COMMENT ON COLUMN @extschema@.ip_inventory_lists.list_name IS 'The list''s name (a lowercase identifier).';

COMMENT ON COLUMN @extschema@.ip_inventory_lists.list_table IS 'Its table: a network column (cidr or inet), optionally label (text), any other columns as attributes.';

COMMENT ON COLUMN @extschema@.ip_inventory_lists.description IS 'What the list holds.';

COMMENT ON COLUMN @extschema@.ip_inventory_lists.registered_by IS 'The role that registered it.';

COMMENT ON COLUMN @extschema@.ip_inventory_lists.registered_at IS 'When it was registered.';

GRANT SELECT ON @extschema@.ip_inventory_lists TO PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_list_changed() RETURNS trigger
LANGUAGE c SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ip_inventory_list_changed_wrapper';

COMMENT ON FUNCTION @extschema@._ip_inventory_list_changed() IS
    'Statement trigger on registered list tables: lists are rebuilt in every session after the change commits (internal).';

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_list_changed() FROM PUBLIC;

COMMENT ON FUNCTION @extschema@.ip_list_match(inet, text) IS
    'The most specific network of the list holding the address, with its label and attributes (ip_list_hit); NULL when none does. Needs SELECT on the list''s table.';

COMMENT ON FUNCTION @extschema@.ip_list_contains(inet, text) IS
    'Whether a network of the list holds the address. Needs SELECT on the list''s table.';

COMMENT ON FUNCTION @extschema@.ip_list_register(text, regclass, text) IS
    'Registers a table of networks (network cidr|inet, optional label text, other columns as attributes) as a network list; the caller must own the table.';

COMMENT ON FUNCTION @extschema@.ip_list_unregister(text) IS
    'Forgets a network list; its table stays. The caller must own the table.';

COMMENT ON FUNCTION @extschema@._ip_inventory_list_stats(text) IS
    'Networks, duplicates, ranges and bytes this session holds for a list (internal).';

REVOKE ALL ON FUNCTION @extschema@.ip_list_register(text, regclass, text) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@.ip_list_unregister(text) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_list_stats(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION "ip_pseudonymize"(
	"ip" inet, 
	"salt" TEXT 
) RETURNS text 
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_pseudonymize_wrapper';

CREATE OR REPLACE FUNCTION "ip_pseudonymize"(
	"ip" inet 
) RETURNS text 
STRICT STABLE PARALLEL SAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'ip_pseudonymize_configured_wrapper';

COMMENT ON FUNCTION @extschema@.ip_pseudonymize(inet, text) IS
    'A keyed hash of the address (HMAC-SHA256, 32 hex digits), the same for the same address and salt.';

COMMENT ON FUNCTION @extschema@.ip_pseudonymize(inet) IS
    'ip_pseudonymize() with the salt named by ip_inventory.pseudonymize_salt. Not granted to PUBLIC: whoever can call it can reverse pseudonyms of IPv4 addresses by trying them all.';

REVOKE ALL ON FUNCTION @extschema@.ip_pseudonymize(inet) FROM PUBLIC;

CREATE OR REPLACE FUNCTION "maxmind_age"() RETURNS interval 
STRICT STABLE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'maxmind_age_wrapper';

COMMENT ON FUNCTION @extschema@.maxmind_age() IS
    'Age of the loaded MaxMind data from the databases'' build_epoch metadata: the older of City and ASN.';

CREATE OR REPLACE FUNCTION "maxmind_info"() RETURNS TABLE (
	"name" TEXT,  
	"path" TEXT,  
	"database_type" TEXT,  
	"build_time" timestamp with time zone,  
	"age" interval,  
	"ip_version" INT,  
	"node_count" bigint,  
	"record_size" INT,  
	"file_size" bigint,  
	"languages" TEXT[],  
	"generation" bigint,  
	"status" TEXT,  
	"error" TEXT  
)
STRICT STABLE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'maxmind_info_wrapper';

COMMENT ON FUNCTION @extschema@.maxmind_info() IS
    'One row per configured database as this session has it in service: path, type, build time, age, tree size, generation, status, error.';

REVOKE ALL ON FUNCTION @extschema@.maxmind_info() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION @extschema@.maxmind_info() TO pg_monitor;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_builds(OUT city_build timestamptz, OUT asn_build timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT max(i.build_time) FILTER (WHERE i.name = 'city'), max(i.build_time) FILTER (WHERE i.name = 'asn')
    FROM @extschema@.maxmind_info() AS i;
END;

COMMENT ON FUNCTION @extschema@._ip_inventory_builds() IS
    'Build times of the City and ASN databases in service (internal: pending rows, staleness).';

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_maxmind_serves(ip_class text)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ip_class IN ('public', '6to4', 'teredo');

COMMENT ON FUNCTION @extschema@._ip_inventory_maxmind_serves(text) IS
    'Whether MaxMind answers for addresses of this class: public, 6to4, teredo (internal).';

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_maxmind_pending(
    maxmind_ts timestamptz, maxmind_build timestamptz, maxmind_asn_build timestamptz,
    city_build timestamptz, asn_build timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN maxmind_ts IS NULL
    OR (city_build IS NOT NULL AND maxmind_build IS DISTINCT FROM city_build)
    OR (asn_build IS NOT NULL AND maxmind_asn_build IS DISTINCT FROM asn_build);

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_maxmind_update(target text, answers text)
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_maxmind_answers()
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN $sql$(SELECT b.ip, c.*, a.*, s.* FROM unnest($1::pg_catalog.inet[]) AS b(ip), @extschema@.enrich_ip(b.ip) AS e,
                 @extschema@._ip_inventory_maxmind_columns(e) AS c, @extschema@._ip_inventory_anonymous(b.ip) AS a,
                 @extschema@._ip_inventory_isp_columns(b.ip) AS s)$sql$;

COMMENT ON FUNCTION @extschema@._ip_inventory_maxmind_answers() IS
    'MaxMind''s answers for the addresses $1, as a relation for _ip_inventory_maxmind_update (internal).';

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_maxmind_write(ips inet[]) RETURNS bigint LANGUAGE plpgsql
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_apply_maxmind(ips inet[]) RETURNS bigint LANGUAGE plpgsql
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_maxmind_columns(e @extschema@.ip_enrichment)
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_isp_columns(ip inet)
RETURNS TABLE (isp text, isp_organization text, mobile_country_code text,
               mobile_network_code text, connection_type text)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT i.isp, i.organization, i.mobile_country_code, i.mobile_network_code,
           @extschema@._ip_inventory_connection_type(ip)
    FROM @extschema@._ip_inventory_isp(ip) AS i;
END;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_new_row_maxmind(ip inet)
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_first_seen(observed bigint, kept timestamptz, seen timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN observed = 0 THEN seen ELSE LEAST(kept, seen) END;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_last_seen(observed bigint, kept timestamptz, seen timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN observed = 0 THEN seen ELSE GREATEST(kept, seen) END;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_record(
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_check_columns(tbl regclass, ip_columns text[], ts_column text)
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

CREATE OR REPLACE FUNCTION @extschema@.ip_inventory_observe() RETURNS trigger
LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ip_inventory_observe_wrapper';

CREATE OR REPLACE VIEW @extschema@.ip_inventory_observed_tables AS
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_enriched_view_sql(
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_job_notice(j @extschema@.ip_inventory_jobs) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    secs double precision := greatest(extract(epoch FROM clock_timestamp() - j.run_started_at), 0.001);
    rate double precision := j.run_done_rows / secs;
BEGIN
    RAISE NOTICE '%: batch %, % of % rows (%), % rows/s, ETA %',
        j.job, j.batches, j.done_rows, coalesce(j.total_rows::text, '?'),
        coalesce(round(100.0 * j.done_rows / nullif(greatest(j.total_rows, j.done_rows), 0), 1)::text || '%', '?'),
        round(rate)::bigint,
        CASE WHEN rate > 0 AND j.total_rows IS NOT NULL
             THEN justify_interval(make_interval(secs => round(greatest(j.total_rows - j.done_rows, 0) / rate)))::text
             ELSE '?' END;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_rows_per_page(event_table regclass) RETURNS double precision
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rows_per_page double precision;
BEGIN
    SELECT c.reltuples / nullif(c.relpages, 0) INTO rows_per_page
    FROM pg_class AS c WHERE c.oid = event_table AND c.reltuples > 0;
    IF rows_per_page IS NULL THEN
        rows_per_page := @extschema@._ip_inventory_rows_before_page(event_table, 8::bigint) / 8.0;
    END IF;
    RETURN greatest(rows_per_page, 1);
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_backfill_start(
    event_table regclass, ip_columns text[], ts_column text, batch_size int)
RETURNS @extschema@.ip_inventory_jobs
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- A backfill is identified by its table (an OID; pg_dump writes it as a name), not by a
    -- name whose spelling depends on search_path and renames.
    job_name text := 'backfill:' || (SELECT format('%I.%I', n.nspname, c.relname)
                                     FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
                                     WHERE c.oid = _ip_inventory_backfill_start.event_table);
    j @extschema@.ip_inventory_jobs;
    pages bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = '22023';
    END IF;
    PERFORM @extschema@._ip_inventory_check_columns(_ip_inventory_backfill_start.event_table, ip_columns, ts_column);
    IF @extschema@._ip_inventory_citus_table(_ip_inventory_backfill_start.event_table) THEN
        -- Its rows are in shards on the workers: walking the coordinator's table reads none.
        RAISE EXCEPTION '% is a Citus distributed table', _ip_inventory_backfill_start.event_table USING ERRCODE = '55000',
            HINT = 'On the coordinator: SELECT ip_inventory_citus_backfill(...); (docs/scaling.md)';
    END IF;
    IF EXISTS (SELECT FROM @extschema@.ip_inventory_observed AS o WHERE o.event_table = _ip_inventory_backfill_start.event_table) THEN
        RAISE EXCEPTION 'the inserts into % are already recorded by its ip_inventory_observe trigger', _ip_inventory_backfill_start.event_table
            USING ERRCODE = '55000',
            DETAIL = 'Backfilling it would count its rows twice.',
            HINT = format('Run SELECT ip_inventory_detach(%L); first, then CALL ip_inventory_backfill(..., attach => true).', _ip_inventory_backfill_start.event_table::text);
    END IF;
    SELECT * INTO j FROM @extschema@.ip_inventory_jobs AS jb WHERE jb.event_table = _ip_inventory_backfill_start.event_table;
    job_name := coalesce(j.job, job_name);
    IF FOUND AND (j.ip_columns IS DISTINCT FROM ip_columns OR j.ts_column IS DISTINCT FROM ts_column) THEN
        RAISE EXCEPTION 'an earlier backfill of % counted columns % (time %), not % (time %)',
            _ip_inventory_backfill_start.event_table, j.ip_columns, coalesce(j.ts_column, 'none'), ip_columns, coalesce(ts_column, 'none')
            USING ERRCODE = '55000',
            HINT = format('Rerun it with the same columns, or DELETE FROM ip_inventory_jobs WHERE job = %L to start over (the rows it counted would be counted again).', job_name);
    END IF;

    PERFORM @extschema@._ip_inventory_job_start(job_name);
    INSERT INTO @extschema@.ip_inventory_jobs AS jb (job, event_table, ip_columns, ts_column, resume_after,
                                                    status, started_at, run_started_at, updated_at)
    VALUES (job_name, _ip_inventory_backfill_start.event_table, ip_columns, ts_column, '(0,0)', 'running',
            clock_timestamp(), clock_timestamp(), clock_timestamp())
    ON CONFLICT (job) DO NOTHING;
    pages := pg_relation_size(_ip_inventory_backfill_start.event_table) / current_setting('block_size')::bigint;
    UPDATE @extschema@.ip_inventory_jobs AS jb SET
        status = 'running', run_started_at = clock_timestamp(), run_done_rows = 0, finished_at = NULL,
        total_rows = jb.done_rows
            + round(greatest(pages - (jb.resume_after::text::point)[0], 0)
                    * @extschema@._ip_inventory_rows_per_page(_ip_inventory_backfill_start.event_table))::bigint
    WHERE jb.job = job_name RETURNING * INTO j;
    RETURN j;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_backfill_step(job_name text, batch_size int, attach boolean)
RETURNS @extschema@.ip_inventory_jobs
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j @extschema@.ip_inventory_jobs;
    pages bigint;
    upper_page bigint;
    final boolean;
    r record;
BEGIN
    SELECT * INTO STRICT j FROM @extschema@.ip_inventory_jobs AS jb WHERE jb.job = job_name;
    pages := pg_relation_size(j.event_table) / current_setting('block_size')::bigint;
    upper_page := (j.resume_after::text::point)[0]::bigint
                  + greatest(ceil(batch_size / @extschema@._ip_inventory_rows_per_page(j.event_table)), 1)::bigint;
    final := upper_page >= pages;
    IF final AND attach THEN
        -- Rows before the lock are read here, rows after it are recorded by the trigger.
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', j.event_table);
    END IF;
    SELECT * INTO STRICT r FROM @extschema@._ip_inventory_backfill_batch(
        j.event_table, j.ip_columns, j.ts_column, j.resume_after::text, CASE WHEN NOT final THEN upper_page END);
    UPDATE @extschema@.ip_inventory_jobs AS jb SET
        resume_after = CASE WHEN final THEN coalesce(r.last_ctid::tid, jb.resume_after)
                            ELSE format('(%s,0)', upper_page)::tid END,
        done_rows = jb.done_rows + r.event_rows,
        run_done_rows = jb.run_done_rows + r.event_rows,
        addresses = jb.addresses + r.addresses,
        new_addresses = jb.new_addresses + r.new_addresses,
        batches = jb.batches + 1,
        updated_at = clock_timestamp(),
        status = CASE WHEN final THEN 'finished' ELSE 'running' END,
        total_rows = CASE WHEN final THEN jb.done_rows + r.event_rows ELSE jb.total_rows END,
        finished_at = CASE WHEN final THEN clock_timestamp() END
    WHERE jb.job = job_name RETURNING * INTO j;
    IF final AND attach THEN
        PERFORM @extschema@.ip_inventory_attach(j.event_table, j.ip_columns, j.ts_column);
    END IF;
    PERFORM @extschema@._ip_inventory_job_notice(j);
    RETURN j;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_job_summary(j @extschema@.ip_inventory_jobs, extra jsonb)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM @extschema@._ip_inventory_job_release(j.job);
    RETURN jsonb_build_object(
        'job', j.job, 'status', j.status, 'batches', j.batches,
        'seconds', round(extract(epoch FROM j.updated_at - j.run_started_at)::numeric, 3)) || extra;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_backfill_summary(j @extschema@.ip_inventory_jobs, attach boolean)
RETURNS jsonb LANGUAGE sql SET search_path = pg_catalog, pg_temp
RETURN @extschema@._ip_inventory_job_summary(j, jsonb_build_object(
    'event_rows', j.done_rows, 'this_run_rows', j.run_done_rows,
    'addresses', j.addresses, 'new_addresses', j.new_addresses, 'attached', attach));

CREATE OR REPLACE PROCEDURE @extschema@.ip_inventory_backfill(
    event_table regclass, ip_columns text[], ts_column text DEFAULT NULL, batch_size int DEFAULT 10000,
    attach boolean DEFAULT false, INOUT summary jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    j @extschema@.ip_inventory_jobs;
BEGIN
    j := @extschema@._ip_inventory_backfill_start(event_table, ip_columns, ts_column, batch_size);
    COMMIT;
    LOOP
        j := @extschema@._ip_inventory_backfill_step(j.job, batch_size, attach);
        COMMIT;
        EXIT WHEN j.finished_at IS NOT NULL;
    END LOOP;
    summary := @extschema@._ip_inventory_backfill_summary(j, attach);
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_enrich_start(
    batch_size int, max_rows bigint,
    OUT j @extschema@.ip_inventory_jobs, OUT city_build timestamptz, OUT asn_build timestamptz)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = '22023';
    END IF;
    IF max_rows < 0 THEN
        RAISE EXCEPTION 'max_rows must not be negative, not %', max_rows USING ERRCODE = '22023';
    END IF;
    IF @extschema@._ip_inventory_citus_distributed() THEN
        RAISE EXCEPTION 'ip_inventory is distributed with Citus' USING ERRCODE = '55000',
            HINT = 'On the coordinator: SELECT ip_inventory_citus_enrich_pending(); (docs/scaling.md)';
    END IF;
    -- Raises unless the configured databases can be used (none configured included).
    PERFORM @extschema@.maxmind_age();
    SELECT b.city_build, b.asn_build INTO city_build, asn_build FROM @extschema@._ip_inventory_builds() AS b;

    PERFORM @extschema@._ip_inventory_job_start('enrich_pending'::text);
    -- A finished job starts counting afresh; an interrupted one keeps its counts.
    INSERT INTO @extschema@.ip_inventory_jobs AS jb (job, status, started_at, run_started_at, updated_at)
    VALUES ('enrich_pending', 'running', clock_timestamp(), clock_timestamp(), clock_timestamp())
    ON CONFLICT (job) DO UPDATE SET
        status = 'running',
        started_at = CASE WHEN jb.status = 'finished' THEN clock_timestamp() ELSE jb.started_at END,
        done_rows = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.done_rows END,
        addresses = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.addresses END,
        batches = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.batches END,
        run_started_at = clock_timestamp(), run_done_rows = 0, finished_at = NULL;
    UPDATE @extschema@.ip_inventory_jobs AS jb SET total_rows = jb.done_rows + least(max_rows, (
        SELECT count(*) FROM @extschema@.ip_inventory AS inv
        WHERE @extschema@._ip_inventory_maxmind_serves(inv.ip_class)
          AND @extschema@._ip_inventory_maxmind_pending(inv.maxmind_ts, inv.maxmind_build,
                                                        inv.maxmind_asn_build, city_build, asn_build)))
    WHERE jb.job = 'enrich_pending' RETURNING * INTO j;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_enrich_step(
    batch_size int, max_rows bigint, after_ip inet, city_build timestamptz, asn_build timestamptz,
    OUT j @extschema@.ip_inventory_jobs, OUT last_ip inet, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    batch inet[];
    enriched bigint;
    stopped boolean := false;
BEGIN
    SELECT * INTO STRICT j FROM @extschema@.ip_inventory_jobs AS jb WHERE jb.job = 'enrich_pending';
    SELECT array_agg(p.ip_address ORDER BY p.ip_address) INTO batch FROM (
        SELECT inv.ip_address FROM @extschema@.ip_inventory AS inv
        WHERE @extschema@._ip_inventory_maxmind_serves(inv.ip_class) AND (after_ip IS NULL OR inv.ip_address > after_ip)
          AND @extschema@._ip_inventory_maxmind_pending(inv.maxmind_ts, inv.maxmind_build,
                                                        inv.maxmind_asn_build, city_build, asn_build)
        ORDER BY inv.ip_address
        LIMIT CASE WHEN max_rows IS NULL THEN batch_size
                   ELSE least(batch_size, max_rows - j.run_done_rows) END
        FOR UPDATE OF inv
    ) AS p;
    last_ip := after_ip;
    IF batch IS NOT NULL THEN
        enriched := @extschema@._ip_inventory_apply_maxmind(batch);
        last_ip := batch[cardinality(batch)];
        stopped := max_rows IS NOT NULL AND j.run_done_rows + cardinality(batch) >= max_rows;
        UPDATE @extschema@.ip_inventory_jobs AS jb SET
            done_rows = jb.done_rows + cardinality(batch),
            run_done_rows = jb.run_done_rows + cardinality(batch),
            addresses = jb.addresses + enriched, batches = jb.batches + 1,
            updated_at = clock_timestamp()
        WHERE jb.job = 'enrich_pending' RETURNING * INTO j;
        PERFORM @extschema@._ip_inventory_job_notice(j);
    END IF;
    done := batch IS NULL OR stopped;
    IF done THEN
        -- Stopped at max_rows, the job is not finished: it continues at the next run.
        UPDATE @extschema@.ip_inventory_jobs AS jb SET
            status = CASE WHEN stopped THEN 'stopped' ELSE 'finished' END,
            total_rows = CASE WHEN stopped THEN jb.total_rows ELSE jb.done_rows END,
            finished_at = CASE WHEN stopped THEN NULL ELSE clock_timestamp() END,
            updated_at = clock_timestamp()
        WHERE jb.job = 'enrich_pending' RETURNING * INTO j;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_enrich_summary(
    j @extschema@.ip_inventory_jobs, city_build timestamptz, asn_build timestamptz)
RETURNS jsonb LANGUAGE sql SET search_path = pg_catalog, pg_temp
RETURN @extschema@._ip_inventory_job_summary(j, jsonb_build_object(
    'status', CASE WHEN j.status = 'stopped' THEN 'stopped at max_rows' ELSE 'finished' END,
    'enriched', j.run_done_rows, 'city_build', city_build, 'asn_build', asn_build));

CREATE OR REPLACE PROCEDURE @extschema@.ip_inventory_enrich_pending(
    batch_size int DEFAULT 10000, max_rows bigint DEFAULT NULL, INOUT summary jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    started record;
    step record;
BEGIN
    started := @extschema@._ip_inventory_enrich_start(batch_size, max_rows);
    COMMIT;
    step := @extschema@._ip_inventory_enrich_step(batch_size, max_rows, NULL::pg_catalog.inet,
                                                  started.city_build, started.asn_build);
    COMMIT;
    WHILE NOT step.done LOOP
        step := @extschema@._ip_inventory_enrich_step(batch_size, max_rows, step.last_ip,
                                                      started.city_build, started.asn_build);
        COMMIT;
    END LOOP;
    summary := @extschema@._ip_inventory_enrich_summary(step.j, started.city_build, started.asn_build);
END $$;

CREATE OR REPLACE VIEW @extschema@.ip_inventory_progress AS
SELECT j.job,
       CASE WHEN j.status IN ('finished', 'stopped') THEN j.status
            WHEN h.pid IS NOT NULL THEN 'running'
            ELSE 'interrupted' END AS status,
       h.pid AS running_pid,
       j.done_rows, j.total_rows,
       round(100.0 * j.done_rows / nullif(greatest(j.total_rows, j.done_rows), 0), 1) AS percent,
       round(j.run_done_rows / nullif(extract(epoch FROM j.updated_at - j.run_started_at), 0)) AS rows_per_second,
       CASE WHEN j.status = 'running' AND j.run_done_rows > 0 AND j.total_rows IS NOT NULL THEN
           justify_interval(make_interval(secs => round(greatest(j.total_rows - j.done_rows, 0)
               * extract(epoch FROM j.updated_at - j.run_started_at) / j.run_done_rows)))
       END AS eta,
       j.addresses, j.new_addresses, j.batches, j.event_table, j.ip_columns, j.ts_column,
       j.started_at, j.updated_at, j.finished_at
FROM @extschema@.ip_inventory_jobs AS j
LEFT JOIN LATERAL (SELECT @extschema@._ip_inventory_job_holder(j.job) AS pid) AS h ON j.status = 'running';

COMMENT ON FUNCTION @extschema@._ip_inventory_job_notice(@extschema@.ip_inventory_jobs) IS 'Raises the per-batch progress NOTICE (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_rows_per_page(regclass) IS 'Rows per page of an event table, to size backfill batches (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_backfill_start(regclass, text[], text, int) IS 'Checks and starts or resumes a backfill (internal: ip_inventory_backfill).';

COMMENT ON FUNCTION @extschema@._ip_inventory_backfill_step(text, int, boolean) IS 'One batch of a backfill (internal: ip_inventory_backfill).';

COMMENT ON FUNCTION @extschema@._ip_inventory_job_summary(@extschema@.ip_inventory_jobs, jsonb) IS 'A job''s summary; releases its lock (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_backfill_summary(@extschema@.ip_inventory_jobs, boolean) IS 'The summary ip_inventory_backfill returns (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_enrich_start(int, bigint) IS 'Checks and starts or resumes enrich_pending (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_enrich_step(int, bigint, inet, timestamptz, timestamptz) IS 'One batch of enrich_pending (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_enrich_summary(@extschema@.ip_inventory_jobs, timestamptz, timestamptz) IS 'The summary ip_inventory_enrich_pending returns (internal).';

COMMENT ON PROCEDURE @extschema@.ip_inventory_backfill(regclass, text[], text, int, boolean, jsonb) IS
    'Counts the addresses of an existing event table into ip_inventory in batches, committing each with its position: resumable, never counts a row twice. attach => true attaches the observe trigger in the last batch''s transaction. Reads the table as its owner.';

COMMENT ON PROCEDURE @extschema@.ip_inventory_enrich_pending(int, bigint, jsonb) IS
    'Enriches, in batches committed one by one, the public rows MaxMind has not answered for or that another database build answered. Resumable.';

COMMENT ON VIEW @extschema@.ip_inventory_progress IS
    'Progress of backfill and enrich_pending jobs: status (running, interrupted, stopped, finished), the running process, rows done of total, rate, ETA. Updated with every committed batch.';

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_job_notice(@extschema@.ip_inventory_jobs) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_rows_per_page(regclass) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_backfill_start(regclass, text[], text, int) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_backfill_step(text, int, boolean) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_job_summary(@extschema@.ip_inventory_jobs, jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_backfill_summary(@extschema@.ip_inventory_jobs, boolean) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_enrich_start(int, bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_enrich_step(int, bigint, inet, timestamptz, timestamptz) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_enrich_summary(@extschema@.ip_inventory_jobs, timestamptz, timestamptz) FROM PUBLIC;

REVOKE ALL ON PROCEDURE @extschema@.ip_inventory_backfill(regclass, text[], text, int, boolean, jsonb) FROM PUBLIC;

REVOKE ALL ON PROCEDURE @extschema@.ip_inventory_enrich_pending(int, bigint, jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_source_serves(
    source text, ip_address inet, ip_class text, asn_source text)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ip_class = 'public' AND CASE source
    WHEN 'cymru' THEN asn_source IS NULL OR asn_source = 'cymru'
    WHEN 'greynoise' THEN family(ip_address) = 4
    WHEN 'rdns' THEN true
    ELSE false END;

COMMENT ON FUNCTION @extschema@._ip_inventory_source_serves(text, inet, text, text) IS
    'Whether a network source serves an inventory row (internal: cascade_refresh, the due-row indexes, ip_inventory_staleness).';

CREATE OR REPLACE FUNCTION @extschema@.greynoise_quota(
    OUT day date, OUT daily_quota bigint, OUT used bigint, OUT remaining bigint, OUT paused_until timestamptz)
LANGUAGE sql VOLATILE
RETURN (SELECT ROW(date '1970-01-01' + s.day, s.daily_quota, s.used, s.remaining,
                   CASE WHEN s.paused_until > 0 THEN to_timestamp(s.paused_until) END)
        FROM @extschema@._ip_inventory_greynoise_state() AS s);

COMMENT ON FUNCTION @extschema@.greynoise_quota() IS
    'The GreyNoise daily quota, counted across all sessions: UTC day, limit (ip_inventory.greynoise_daily_quota), calls made, calls left, and until when GreyNoise asked not to be called (its last HTTP 429). Needs shared_preload_libraries.';

REVOKE ALL ON FUNCTION @extschema@.greynoise_quota() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION @extschema@.greynoise_quota() TO pg_monitor;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_refresh_result(
    source text, selected bigint, refreshed bigint, unchanged bigint, not_found bigint,
    failed bigint, skipped bigint, quota_remaining bigint, started timestamptz, first_failure text)
RETURNS jsonb LANGUAGE sql STABLE
RETURN jsonb_strip_nulls(jsonb_build_object(
    'source', source, 'selected', selected, 'refreshed', refreshed, 'unchanged', unchanged,
    'not_found', not_found, 'failed', failed, 'skipped', skipped,
    'quota_remaining', quota_remaining,
    'elapsed', round(extract(epoch FROM clock_timestamp() - started), 3),
    'first_failure', first_failure));

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_refresh_maxmind(lim int, wanted inet[] DEFAULT NULL) RETURNS jsonb LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    distributed boolean := @extschema@._ip_inventory_citus_distributed();
    city_build timestamptz;
    asn_build timestamptz;
    ips inet[];
    before jsonb;
    res record;
BEGIN
    IF distributed AND wanted IS NOT NULL THEN
        RAISE EXCEPTION 'cascade_refresh_now() does not refresh distributed inventories'
            USING ERRCODE = '0A000', HINT = 'Use cascade_refresh() on the coordinator.';
    END IF;
    SELECT b.city_build, b.asn_build INTO city_build, asn_build FROM @extschema@._ip_inventory_builds() AS b;
    EXECUTE format($sql$
        SELECT coalesce(array_agg(s.ip_address), '{}'),
               coalesce(jsonb_object_agg(host(s.ip_address), coalesce(s.enrichment -> 'maxmind', 'null')), '{}')
          FROM (SELECT ip_address, enrichment FROM @extschema@.ip_inventory
                WHERE @extschema@._ip_inventory_maxmind_serves(ip_class)
                  AND CASE WHEN $3 IS NULL
                           THEN @extschema@._ip_inventory_maxmind_pending(maxmind_ts, maxmind_build, maxmind_asn_build, $1, $2)
                           ELSE ip_address = ANY ($3) END
                ORDER BY observation_count DESC, ip_address
                LIMIT $4 %s) AS s $sql$,
        CASE WHEN distributed THEN '' ELSE 'FOR UPDATE SKIP LOCKED' END)
      INTO ips, before
      USING city_build, asn_build, wanted, lim;
    IF distributed THEN
        PERFORM @extschema@._ip_inventory_citus_apply_maxmind(ips);
    ELSE
        PERFORM @extschema@._ip_inventory_apply_maxmind(ips);
    END IF;
    SELECT count(*) AS selected,
           count(*) FILTER (WHERE i.enrichment ? 'maxmind' AND i.enrichment -> 'maxmind' <> before -> host(i.ip_address)) AS refreshed,
           count(*) FILTER (WHERE i.enrichment ? 'maxmind' AND i.enrichment -> 'maxmind' = before -> host(i.ip_address)) AS unchanged,
           count(*) FILTER (WHERE NOT i.enrichment ? 'maxmind') AS not_found
      INTO res
      FROM @extschema@.ip_inventory AS i WHERE i.ip_address = ANY (ips);
    -- (Every argument of the exact type: no overload elsewhere can match better.)
    RETURN @extschema@._ip_inventory_refresh_result('maxmind'::text, res.selected, res.refreshed, res.unchanged,
                                                    res.not_found, 0::bigint, 0::bigint, NULL::bigint, started, NULL::text);
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_store_answers(src text, answers jsonb, before jsonb)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    res record;
BEGIN
    IF @extschema@._ip_inventory_citus_distributed() THEN
        -- Citus: no row locks over shards, no STABLE functions of columns in an UPDATE.
        RETURN @extschema@._ip_inventory_citus_store_answers(src, answers, before);
    END IF;
    PERFORM FROM @extschema@.ip_inventory AS i
    WHERE i.ip_address IN (SELECT (a ->> 'ip')::inet FROM jsonb_array_elements(answers) AS a)
    ORDER BY i.ip_address FOR UPDATE;
    WITH r AS MATERIALIZED (
        SELECT x.ip, x.outcome, x.answer, x.detail, before -> host(x.ip) AS previous,
               CASE WHEN src = 'cymru' THEN (x.answer ->> 'asn')::bigint END AS asn
        FROM jsonb_to_recordset(answers) AS x(ip inet, outcome text, answer jsonb, detail text)
    ),
    -- An answer (and a skip that says why, like an IPv6 address for GreyNoise) is stored
    -- with its time; quota, 429 and stop skips leave the row as it was.
    stored AS (
        UPDATE @extschema@.ip_inventory AS i SET
            enrichment   = i.enrichment || jsonb_build_object(src, r.answer),
            cymru_ts     = CASE WHEN src = 'cymru' THEN now() ELSE i.cymru_ts END,
            greynoise_ts = CASE WHEN src = 'greynoise' THEN now() ELSE i.greynoise_ts END,
            rdns_ts      = CASE WHEN src = 'rdns' THEN now() ELSE i.rdns_ts END,
            -- The ASN rule (sql/inventory.sql): only Team Cymru offers one here.
            asn_number   = CASE WHEN @extschema@._ip_inventory_asn_replaced(src, r.asn, i.asn_source)
                                THEN r.asn ELSE i.asn_number END,
            asn_org      = CASE WHEN @extschema@._ip_inventory_asn_replaced(src, r.asn, i.asn_source)
                                THEN CASE WHEN r.asn IS NOT NULL THEN r.answer ->> 'as_name' END ELSE i.asn_org END,
            asn_network  = CASE WHEN @extschema@._ip_inventory_asn_replaced(src, r.asn, i.asn_source)
                                THEN CASE WHEN r.asn IS NOT NULL THEN (r.answer ->> 'prefix')::cidr END ELSE i.asn_network END,
            asn_source   = CASE WHEN @extschema@._ip_inventory_asn_replaced(src, r.asn, i.asn_source)
                                THEN CASE WHEN r.asn IS NOT NULL THEN 'cymru' END ELSE i.asn_source END
        FROM r
        WHERE i.ip_address = r.ip AND r.answer IS NOT NULL
        RETURNING 1
    ),
    recorded AS (
        INSERT INTO @extschema@.ip_inventory_failures AS f (ip_address, source, attempts, error, first_failed_at, last_failed_at)
        SELECT r.ip, src, 1, r.detail, now(), now() FROM r WHERE r.outcome = 'failed'
        ON CONFLICT (ip_address, source) DO UPDATE
            SET attempts = f.attempts + 1, error = excluded.error, last_failed_at = excluded.last_failed_at
        RETURNING 1
    ),
    cleared AS (
        DELETE FROM @extschema@.ip_inventory_failures AS f USING r
        WHERE f.ip_address = r.ip AND f.source = src AND r.answer IS NOT NULL
        RETURNING 1
    )
    SELECT count(*) AS selected,
           count(*) FILTER (WHERE outcome = 'found' AND answer IS DISTINCT FROM previous) AS refreshed,
           count(*) FILTER (WHERE outcome = 'found' AND answer = previous) AS unchanged,
           count(*) FILTER (WHERE outcome = 'not_found') AS not_found,
           count(*) FILTER (WHERE outcome = 'failed') AS failed,
           count(*) FILTER (WHERE outcome = 'skipped') AS skipped,
           min(detail) FILTER (WHERE outcome = 'failed') AS first_failure,
           (SELECT count(*) FROM stored) + (SELECT count(*) FROM recorded) + (SELECT count(*) FROM cleared) AS writes
      INTO res
      FROM r;
    -- The answered rows' tags follow their new data (sql/tags.sql).
    PERFORM @extschema@._ip_inventory_tag(ARRAY(
        SELECT (a ->> 'ip')::inet FROM jsonb_array_elements(answers) AS a
        WHERE a -> 'answer' IS NOT NULL AND a -> 'answer' <> 'null' ORDER BY 1));
    RETURN jsonb_build_object('selected', res.selected, 'refreshed', res.refreshed, 'unchanged', res.unchanged,
                              'not_found', res.not_found, 'failed', res.failed, 'skipped', res.skipped,
                              'first_failure', res.first_failure);
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_refresh_network(src text, lim int, wanted inet[] DEFAULT NULL) RETURNS jsonb LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    ttl interval := @extschema@.ip_inventory_ttl(src);
    maxmind_ready boolean;
    candidates text[];
    page bigint := lim::bigint * 2 + 32;
    offset_rows bigint := 0;
    ips text[] := '{}';
    queued text[] := '{}';
    before jsonb;
    answers jsonb;
    answer jsonb;
    one jsonb;
    counts jsonb;
    quota record;
    quota_left bigint;
    -- Networks the operator excluded from this source (ip_inventory.<source>_skip_networks).
    skip cidr[] := @extschema@._ip_inventory_skip_networks(src)::cidr[];
BEGIN
    IF src = 'cymru' THEN
        maxmind_ready := EXISTS (SELECT FROM @extschema@._ip_inventory_builds() AS b
                                 WHERE b.city_build IS NOT NULL OR b.asn_build IS NOT NULL);
    END IF;
    IF src = 'greynoise' THEN
        -- After a restart, continue today's count from the last saved one.
        PERFORM @extschema@._ip_inventory_greynoise_seed((q.day - date '1970-01-01'), q.used::bigint)
           FROM @extschema@.ip_inventory_quota AS q WHERE q.source = 'greynoise';
    END IF;

    -- Due rows, busiest first; rows whose last attempt failed come after the others, so a
    -- few addresses the source keeps failing on cannot hold up the rest. Run as a one-shot
    -- statement with the source as a constant, so that it is planned with that source's
    -- due-row index. No row is locked: the rows are claimed (shared memory, src/claims.rs)
    -- so that concurrent refreshes split them, and an event insert for one of them never
    -- waits for the network. Pages of candidates are read until lim are claimed: other
    -- refreshes may hold some. Team Cymru waits for MaxMind's chance at a row, unless no
    -- MaxMind database is in service at all.
    IF wanted IS NOT NULL THEN
        ips := @extschema@._ip_inventory_claim(src, ARRAY(
            SELECT host(i.ip_address) FROM @extschema@.ip_inventory AS i
            WHERE i.ip_address = ANY (wanted)
              AND @extschema@._ip_inventory_source_serves(src, i.ip_address, i.ip_class, i.asn_source)
              AND NOT i.ip_address <<= ANY (skip)
            ORDER BY i.observation_count DESC, i.ip_address), lim);
    ELSE
        -- First the addresses a live consumer asked about (ip_verdict's queue, in shared
        -- memory), those still due. An address not in the inventory yet is asked about if the
        -- source would serve its row (by its class and MaxMind's ASN), and added just before
        -- the answers are stored: no new row is held while the network answers.
        queued := @extschema@._ip_inventory_queue_peek(src, lim);
        IF cardinality(queued) > 0 THEN
            ips := @extschema@._ip_inventory_claim(src, ARRAY(
                SELECT q.ip FROM unnest(queued) WITH ORDINALITY AS q(ip, n)
                LEFT JOIN @extschema@.ip_inventory AS i ON i.ip_address = q.ip::inet
                WHERE CASE WHEN i.ip_address IS NULL
                           THEN @extschema@._ip_inventory_source_serves(src, q.ip::inet, @extschema@.ip_class(q.ip::inet),
                                    CASE WHEN (@extschema@._ip_inventory_maxmind(q.ip::inet)).asn IS NOT NULL THEN 'maxmind' END)
                           ELSE @extschema@._ip_inventory_source_serves(src, i.ip_address, i.ip_class, i.asn_source)
                                AND (CASE src WHEN 'cymru' THEN i.cymru_ts WHEN 'greynoise' THEN i.greynoise_ts ELSE i.rdns_ts END
                                     < now() - ttl) IS NOT FALSE END
                  AND NOT q.ip::inet <<= ANY (skip)
                ORDER BY q.n), lim);
        END IF;
    END IF;
    WHILE wanted IS NULL AND cardinality(ips) < lim LOOP
        EXECUTE format($sql$
            SELECT coalesce(array_agg(host(s.ip_address)), '{}')
              FROM (SELECT i.ip_address
                    FROM @extschema@.ip_inventory AS i
                    LEFT JOIN @extschema@.ip_inventory_failures AS f ON f.ip_address = i.ip_address AND f.source = $1
                    WHERE @extschema@._ip_inventory_source_serves(%1$L, i.ip_address, i.ip_class, i.asn_source)
                      AND (i.%2$I IS NULL OR i.%2$I < now() - $2)
                      AND (%1$L <> 'cymru' OR i.maxmind_ts IS NOT NULL OR NOT $4)
                      AND NOT i.ip_address <<= ANY ($7)
                    ORDER BY f.attempts IS NOT NULL, i.observation_count DESC, i.ip_address
                    LIMIT $5 OFFSET $6) AS s $sql$,
            src, src || '_ts')
          INTO candidates
          USING src, ttl, lim, maxmind_ready, page, offset_rows, skip;
        -- (This backend's own claims do not exclude an address: the queued ones are left out here.)
        ips := ips || @extschema@._ip_inventory_claim(src, ARRAY(SELECT c FROM unnest(candidates) AS c WHERE c <> ALL (ips)),
                                                      lim - cardinality(ips));
        EXIT WHEN cardinality(ips) >= lim OR cardinality(candidates) < page;
        offset_rows := offset_rows + page;
    END LOOP;
    SELECT coalesce(jsonb_object_agg(host(i.ip_address), coalesce(i.enrichment -> src, 'null')), '{}')
      INTO before
      FROM @extschema@.ip_inventory AS i WHERE i.ip_address = ANY (ips::inet[]);

    -- The network.
    SELECT coalesce(jsonb_agg(jsonb_build_object('ip', host(f.ip), 'outcome', f.outcome,
                                                 'answer', f.answer, 'detail', f.detail)), '[]')
      INTO answers
      FROM @extschema@.ip_inventory_fetch(src, ips) AS f;
    IF jsonb_array_length(answers) <> coalesce(array_length(ips, 1), 0) THEN
        -- Every claimed address gets one row from the fetch; anything else is a bug.
        RAISE EXCEPTION '% refresh: % addresses selected, % answered', src,
            coalesce(array_length(ips, 1), 0), jsonb_array_length(answers) USING ERRCODE = 'XX000';
    END IF;

    IF cardinality(queued) > 0 THEN
        PERFORM @extschema@._ip_inventory_add(ips::inet[]);
    END IF;
    BEGIN
        counts := @extschema@._ip_inventory_store_answers(src, answers, before);
    EXCEPTION WHEN OTHERS THEN
        -- An answer that cannot be stored fails its address only; the others are stored.
        counts := '{"selected": 0, "refreshed": 0, "unchanged": 0, "not_found": 0, "failed": 0, "skipped": 0}';
        FOR answer IN SELECT a FROM jsonb_array_elements(answers) AS a LOOP
            BEGIN
                one := @extschema@._ip_inventory_store_answers(src, jsonb_build_array(answer), before);
            EXCEPTION WHEN OTHERS THEN
                one := @extschema@._ip_inventory_store_answers(src, jsonb_build_array(jsonb_build_object(
                    'ip', answer -> 'ip', 'outcome', 'failed',
                    'detail', left(src || ': the answer cannot be stored: ' || SQLERRM, 200))), before);
            END;
            counts := (SELECT jsonb_object_agg(k, (counts ->> k)::bigint + (one ->> k)::bigint)
                       FROM unnest(ARRAY['selected', 'refreshed', 'unchanged', 'not_found', 'failed', 'skipped']) AS k)
                      || jsonb_strip_nulls(jsonb_build_object('first_failure',
                             coalesce(counts ->> 'first_failure', one ->> 'first_failure')));
        END LOOP;
    END;
    PERFORM @extschema@._ip_inventory_release(src, ips);
    -- Taken: answered, failed (recorded, due again) or no longer due.
    PERFORM @extschema@._ip_inventory_queue_done(src, queued);

    IF src = 'greynoise' THEN
        SELECT * INTO quota FROM @extschema@.greynoise_quota();
        quota_left := quota.remaining;
        INSERT INTO @extschema@.ip_inventory_quota AS q (source, day, used)
        VALUES ('greynoise', quota.day, quota.used)
        ON CONFLICT (source) DO UPDATE SET day = excluded.day, used = excluded.used
            WHERE (q.day, q.used) < (excluded.day, excluded.used);
    END IF;
    RETURN @extschema@._ip_inventory_refresh_result(src, (counts ->> 'selected')::bigint, (counts ->> 'refreshed')::bigint,
        (counts ->> 'unchanged')::bigint, (counts ->> 'not_found')::bigint, (counts ->> 'failed')::bigint,
        (counts ->> 'skipped')::bigint, quota_left, started, counts ->> 'first_failure');
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_refresh_source(src text, lim int, paced boolean, wanted inet[] DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    n int := coalesce(lim, @extschema@._ip_inventory_refresh_limit(src));
BEGIN
    IF src = 'maxmind' THEN
        RETURN @extschema@._ip_inventory_refresh_maxmind(n, wanted);
    END IF;
    IF NOT @extschema@._ip_inventory_source_enabled(src) THEN
        RETURN @extschema@._ip_inventory_refresh_result(src, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
                                                        0::bigint, NULL::bigint, started, NULL::text)
               || jsonb_build_object('disabled', true);
    END IF;
    IF src = 'greynoise' AND paced AND wanted IS NULL THEN
        -- The count continues from the one saved before a restart (as the refresh does).
        PERFORM @extschema@._ip_inventory_greynoise_seed((q.day - date '1970-01-01'), q.used::bigint)
           FROM @extschema@.ip_inventory_quota AS q WHERE q.source = 'greynoise';
        n := least(n, @extschema@._ip_inventory_greynoise_pace());
        RETURN @extschema@._ip_inventory_refresh_network(src, n) || jsonb_build_object('paced_limit', n);
    END IF;
    RETURN @extschema@._ip_inventory_refresh_network(src, n, wanted);
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_refresh_all(
    lim int, paced boolean, wanted inet[], caller text, started timestamptz) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src text;
    one jsonb;
    results jsonb := '{}';
    total jsonb;
BEGIN
    FOREACH src IN ARRAY ARRAY['maxmind', 'cymru', 'greynoise', 'rdns'] LOOP
        BEGIN
            one := @extschema@._ip_inventory_refresh_source(src, lim, paced, wanted);
        EXCEPTION WHEN OTHERS THEN
            one := jsonb_build_object('source', src, 'error', SQLERRM, 'sqlstate', SQLSTATE);
            RAISE WARNING '%(''all''): % failed: %', caller, src, SQLERRM;
        END;
        results := results || jsonb_build_object(src, one - 'source');
    END LOOP;
    SELECT jsonb_object_agg(k, s) INTO total
    FROM unnest(ARRAY['selected', 'refreshed', 'unchanged', 'not_found', 'failed', 'skipped']) AS k,
         LATERAL (SELECT coalesce(sum((v ->> k)::bigint), 0) AS s FROM jsonb_each(results) AS e(n, v)) AS t;
    RETURN jsonb_build_object('source', 'all') || total
        || jsonb_strip_nulls(jsonb_build_object('quota_remaining', results -> 'greynoise' -> 'quota_remaining'))
        || jsonb_build_object('elapsed', round(extract(epoch FROM clock_timestamp() - started), 3),
                              'sources', results);
END $$;

CREATE OR REPLACE FUNCTION @extschema@.cascade_refresh(source text, lim int DEFAULT NULL) RETURNS jsonb LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    one jsonb;
BEGIN
    IF source IS NULL THEN
        RAISE EXCEPTION 'cascade_refresh: source must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM @extschema@._ip_inventory_citus_coordinator_only('cascade_refresh');
    IF lim < 0 OR lim > 100000 THEN
        RAISE EXCEPTION 'cascade_refresh: lim must be between 0 and 100000, not %', lim
            USING ERRCODE = '22023',
                  HINT = 'Refresh in batches: schedule cascade_refresh() with a moderate lim.';
    END IF;
    CASE source
    WHEN 'maxmind', 'cymru', 'greynoise', 'rdns' THEN
        -- GreyNoise alone with an explicit lim is an operator's ask: not paced (the daily
        -- quota still holds).
        one := @extschema@._ip_inventory_refresh_source(source, lim, lim IS NULL);
        IF one ? 'disabled' THEN
            RAISE NOTICE 'cascade_refresh: % is disabled (ip_inventory.%_enabled = off): nothing refreshed', source, source;
        END IF;
        RETURN one;
    WHEN 'all' THEN
        -- GreyNoise is always paced here: this is the scheduled run.
        RETURN @extschema@._ip_inventory_refresh_all(lim, true, NULL, 'cascade_refresh', started);
    ELSE
        RAISE EXCEPTION 'unknown enrichment source "%"', left(source, 64)
            USING ERRCODE = '22023', HINT = 'Use maxmind, cymru, greynoise, rdns or all.';
    END CASE;
END $$;

COMMENT ON FUNCTION @extschema@._ip_inventory_refresh_result(text, bigint, bigint, bigint, bigint, bigint, bigint, bigint, timestamptz, text) IS
    'The counts a refresh returns, as jsonb (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_refresh_maxmind(int, inet[]) IS
    'cascade_refresh(''maxmind''): re-enriches rows never enriched or enriched from another database build, or the given addresses (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_store_answers(text, jsonb, jsonb) IS
    'Stores a network source''s answers and records its failures (internal: cascade_refresh).';

COMMENT ON FUNCTION @extschema@._ip_inventory_refresh_network(text, int, inet[]) IS
    'cascade_refresh() for one network source: asks it about the queued and due rows, or the given addresses, and stores the answers and failures (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_refresh_all(int, boolean, inet[], text, timestamptz) IS
    'cascade_refresh(''all'') and cascade_refresh_now(''all''): every source in turn, the counts summed (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_refresh_source(text, int, boolean, inet[]) IS
    'cascade_refresh() and cascade_refresh_now() for one source: its limit, its switch, the GreyNoise pace (internal).';

COMMENT ON FUNCTION @extschema@.cascade_refresh(text, int) IS
    'Refreshes up to lim due rows (without lim: ip_inventory.<source>_refresh_limit) from one source (maxmind, cymru, greynoise, rdns) or from each in turn (all), busiest addresses first, and returns the counts as jsonb: selected, refreshed, unchanged, not_found, failed, skipped, quota_remaining, elapsed (seconds), disabled (a source switched off), paced_limit (GreyNoise spread over the UTC day: in all, and alone without lim). Concurrent calls split the work.';

REVOKE ALL ON FUNCTION @extschema@.cascade_refresh(text, int) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_store_answers(text, jsonb, jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_refresh_network(text, int, inet[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_refresh_maxmind(int, inet[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_refresh_source(text, int, boolean, inet[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_refresh_all(int, boolean, inet[], text, timestamptz) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@.ip_inventory_fetch(text, text[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_greynoise_seed(int, bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_add(ips inet[]) RETURNS bigint LANGUAGE plpgsql
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

CREATE OR REPLACE FUNCTION @extschema@.ip_verdict(ip inet,
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

CREATE OR REPLACE FUNCTION @extschema@.ip_inventory_refresh_queue(
    OUT ip_address inet, OUT sources text[], OUT queued_at timestamptz)
RETURNS SETOF record LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT q.ip_address::inet, q.sources, q.queued_at FROM @extschema@._ip_inventory_queue_entries() AS q;
END;

COMMENT ON FUNCTION @extschema@.ip_inventory_refresh_queue() IS
    'Addresses ip_verdict() queued for the next refresh of the sources named (bounded, in shared memory; an entry lapses after a day). Needs shared_preload_libraries.';

REVOKE ALL ON FUNCTION @extschema@.ip_inventory_refresh_queue() FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.cascade_refresh_now(
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

REVOKE ALL ON FUNCTION @extschema@.cascade_refresh_now(text, inet[], cidr, int) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_retention_check(
    older_than interval, mode text, dry_run boolean, batch_size int, prefix_v4 int, prefix_v6 int,
    run_hint text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF older_than IS NULL OR older_than <= interval '0' THEN
        RAISE EXCEPTION 'older_than must be a positive interval, not %', coalesce(older_than::text, 'NULL')
            USING ERRCODE = '22023', HINT = run_hint;
    END IF;
    IF mode IS NULL OR mode NOT IN ('anonymize', 'delete') THEN
        RAISE EXCEPTION 'mode must be anonymize or delete, not %', coalesce(left(mode, 64), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF dry_run IS NULL OR batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'dry_run must not be NULL and batch_size must be at least 1' USING ERRCODE = '22023';
    END IF;
    -- Validates the prefixes; a full-length prefix would keep the addresses as they are.
    PERFORM @extschema@.ip_anonymize('0.0.0.0'::inet, prefix_v4, prefix_v6);
    IF mode = 'anonymize' AND (prefix_v4 >= 32 OR prefix_v6 >= 128) THEN
        RAISE EXCEPTION 'prefixes of 32 (IPv4) or 128 (IPv6) bits anonymize nothing' USING ERRCODE = '22023';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_retention_start(
    older_than interval, mode text, dry_run boolean, batch_size int, prefix_v4 int, prefix_v6 int,
    OUT cutoff timestamptz, OUT summary jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM @extschema@._ip_inventory_retention_check(older_than, mode, dry_run, batch_size, prefix_v4, prefix_v6,
        'For example CALL ip_inventory_retention(interval ''90 days'');');
    IF @extschema@._ip_inventory_citus_distributed() THEN
        -- (Batches by ctid would mix the shards' row positions.)
        RAISE EXCEPTION 'ip_inventory is distributed with Citus' USING ERRCODE = '55000',
            HINT = 'On the coordinator: SELECT ip_inventory_citus_retention(...); (docs/scaling.md)';
    END IF;
    cutoff := now() - older_than;
    summary := jsonb_build_object('dry_run', dry_run, 'mode', mode, 'cutoff', cutoff,
                                  'inventory', jsonb_build_object('rows', 0), 'events', '[]'::jsonb);
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_merge_anonymized(
    taken @extschema@.ip_inventory[], prefix_v4 int, prefix_v6 int) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF taken IS NULL OR cardinality(taken) = 0 THEN
        RETURN 0;
    END IF;
    INSERT INTO @extschema@.ip_inventory AS inv (ip_address, first_seen_at, last_seen_at, observation_count,
                                                ip_class, geo_country, asn_number, asn_source)
    SELECT @extschema@.ip_anonymize(p.ip_address, prefix_v4, prefix_v6),
           min(p.first_seen_at), max(p.last_seen_at), sum(p.observation_count), 'anonymized',
           CASE WHEN count(DISTINCT p.geo_country) = 1 AND count(p.geo_country) = count(*)
                THEN min(p.geo_country) END,
           CASE WHEN count(DISTINCT (p.asn_number, p.asn_source)) = 1 AND count(p.asn_number) = count(*)
                THEN min(p.asn_number) END,
           CASE WHEN count(DISTINCT (p.asn_number, p.asn_source)) = 1 AND count(p.asn_number) = count(*)
                THEN min(p.asn_source) END
    FROM unnest(taken) AS p GROUP BY 1 ORDER BY 1
    ON CONFLICT (ip_address) DO UPDATE SET
        observation_count = inv.observation_count + excluded.observation_count,
        first_seen_at = LEAST(inv.first_seen_at, excluded.first_seen_at),
        last_seen_at = GREATEST(inv.last_seen_at, excluded.last_seen_at),
        geo_country = CASE WHEN inv.geo_country = excluded.geo_country THEN inv.geo_country END,
        asn_number = CASE WHEN (inv.asn_number, inv.asn_source) = (excluded.asn_number, excluded.asn_source)
                          THEN inv.asn_number END,
        asn_source = CASE WHEN (inv.asn_number, inv.asn_source) = (excluded.asn_number, excluded.asn_source)
                          THEN inv.asn_source END;
    RETURN cardinality(taken);
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_retain_inventory(
    cutoff timestamptz, mode text, dry_run boolean, batch_size int, prefix_v4 int, prefix_v6 int,
    INOUT summary jsonb, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    networks bigint;
    taken @extschema@.ip_inventory[];
BEGIN
    IF dry_run THEN
        SELECT count(*), count(DISTINCT @extschema@.ip_anonymize(ip_address, prefix_v4, prefix_v6))
          INTO n, networks
          FROM @extschema@.ip_inventory
         WHERE last_seen_at < cutoff AND (mode = 'delete' OR ip_class <> 'anonymized');
        summary := jsonb_set(summary, '{inventory}', jsonb_build_object('rows', n, 'networks', networks));
        done := true;
        RETURN;
    END IF;
    IF mode = 'delete' THEN
        DELETE FROM @extschema@.ip_inventory WHERE ip_address IN (
            SELECT ip_address FROM @extschema@.ip_inventory WHERE last_seen_at < cutoff
            ORDER BY ip_address LIMIT batch_size FOR UPDATE);
        GET DIAGNOSTICS n = ROW_COUNT;
    ELSE
        WITH picked AS (
            DELETE FROM @extschema@.ip_inventory AS inv WHERE inv.ip_address IN (
                SELECT ip_address FROM @extschema@.ip_inventory
                WHERE last_seen_at < cutoff AND ip_class <> 'anonymized'
                ORDER BY ip_address LIMIT batch_size FOR UPDATE)
            RETURNING inv AS r)
        SELECT array_agg(picked.r) INTO taken FROM picked;
        n := @extschema@._ip_inventory_merge_anonymized(taken, prefix_v4, prefix_v6);
    END IF;
    summary := jsonb_set(summary, '{inventory,rows}', to_jsonb((summary #>> '{inventory,rows}')::bigint + n));
    done := n < batch_size;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_retain_failures(
    cutoff timestamptz, mode text, dry_run boolean, INOUT summary jsonb, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    failed inet[];
    kept inet[];
    n bigint;
BEGIN
    -- The failed addresses first, then the inventory rows that keep theirs: Citus joins no
    -- local table (the failures, on the coordinator) with a distributed one (the inventory).
    failed := ARRAY(SELECT DISTINCT f.ip_address FROM @extschema@.ip_inventory_failures AS f);
    kept := ARRAY(SELECT i.ip_address FROM @extschema@.ip_inventory AS i
                  WHERE i.ip_address = ANY (failed)
                    AND NOT (dry_run AND i.last_seen_at < cutoff AND (mode = 'delete' OR i.ip_class <> 'anonymized')));
    IF dry_run THEN
        SELECT count(*) INTO n FROM @extschema@.ip_inventory_failures AS f WHERE f.ip_address <> ALL (kept);
    ELSE
        DELETE FROM @extschema@.ip_inventory_failures AS f WHERE f.ip_address <> ALL (kept);
        GET DIAGNOSTICS n = ROW_COUNT;
    END IF;
    summary := summary || jsonb_build_object('failures', jsonb_build_object('rows', n));
    done := true;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_retention_tables() RETURNS SETOF regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT o.event_table FROM @extschema@.ip_inventory_observed AS o
    WHERE EXISTS (SELECT FROM pg_catalog.pg_class AS c WHERE c.oid = o.event_table)
    ORDER BY o.event_table::text;
END;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_retain_table(
    event_table regclass, cutoff timestamptz, mode text, dry_run boolean, batch_size int,
    prefix_v4 int, prefix_v6 int, INOUT summary jsonb, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    last int := jsonb_array_length(summary -> 'events') - 1;
BEGIN
    n := @extschema@._ip_inventory_retain_events(event_table, mode, cutoff, prefix_v4, prefix_v6, batch_size, dry_run);
    IF last < 0 OR summary -> 'events' -> last ->> 'table' IS DISTINCT FROM event_table::text THEN
        summary := jsonb_set(summary, '{events}', (summary -> 'events') || CASE WHEN n IS NULL
            THEN jsonb_build_object('table', event_table::text, 'skipped', 'no time column')
            ELSE jsonb_build_object('table', event_table::text, 'rows', 0) END);
        last := last + 1;
    END IF;
    IF n IS NOT NULL THEN
        summary := jsonb_set(summary, ARRAY['events', last::text, 'rows'],
                             to_jsonb((summary -> 'events' -> last ->> 'rows')::bigint + n));
    END IF;
    done := n IS NULL OR dry_run OR n < batch_size;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_retention_failed(
    INOUT summary jsonb, event_table regclass, state text, message text, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    summary := jsonb_set(summary, '{events}', (summary -> 'events') || jsonb_build_object(
        'table', event_table::text, 'error', left(message, 200), 'sqlstate', state));
    RAISE WARNING 'ip_inventory_retention: % failed: %', event_table, left(message, 200);
    done := true;
END $$;

CREATE OR REPLACE PROCEDURE @extschema@.ip_inventory_retention(
    older_than interval,
    mode text DEFAULT 'anonymize',
    dry_run boolean DEFAULT true,
    batch_size int DEFAULT 10000,
    prefix_v4 int DEFAULT 24,
    prefix_v6 int DEFAULT 48,
    INOUT summary jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    run record;
    step record;
    t record;
BEGIN
    run := @extschema@._ip_inventory_retention_start(older_than, mode, dry_run, batch_size, prefix_v4, prefix_v6);
    step := @extschema@._ip_inventory_retain_inventory(run.cutoff, mode, dry_run, batch_size,
                                                       prefix_v4, prefix_v6, run.summary);
    COMMIT;
    WHILE NOT step.done LOOP
        step := @extschema@._ip_inventory_retain_inventory(run.cutoff, mode, dry_run, batch_size,
                                                           prefix_v4, prefix_v6, step.summary);
        COMMIT;
    END LOOP;
    step := @extschema@._ip_inventory_retain_failures(run.cutoff, mode, dry_run, step.summary);
    COMMIT;
    FOR t IN SELECT r.tbl FROM @extschema@._ip_inventory_retention_tables() AS r(tbl) LOOP
        LOOP
            -- A batch that fails is rolled back and reported; the next table is still kept.
            BEGIN
                step := @extschema@._ip_inventory_retain_table(t.tbl, run.cutoff, mode, dry_run, batch_size,
                                                               prefix_v4, prefix_v6, step.summary);
            EXCEPTION WHEN OTHERS THEN
                step := @extschema@._ip_inventory_retention_failed(step.summary, t.tbl, SQLSTATE, SQLERRM);
            END;
            COMMIT;
            EXIT WHEN step.done;
        END LOOP;
    END LOOP;
    summary := step.summary;
END $$;

COMMENT ON FUNCTION @extschema@._ip_inventory_retention_check(interval, text, boolean, int, int, int, text) IS 'Checks a retention run''s arguments (internal: ip_inventory_retention, ip_inventory_citus_retention).';

COMMENT ON FUNCTION @extschema@._ip_inventory_retention_start(interval, text, boolean, int, int, int) IS 'Checks a retention run''s arguments and starts its summary (internal: ip_inventory_retention).';

COMMENT ON FUNCTION @extschema@._ip_inventory_retain_inventory(timestamptz, text, boolean, int, int, int, jsonb) IS 'One batch of retention in ip_inventory (internal: ip_inventory_retention).';

COMMENT ON FUNCTION @extschema@._ip_inventory_merge_anonymized(@extschema@.ip_inventory[], int, int) IS 'Writes inventory rows taken out by anonymize back as one row per truncated network (internal: ip_inventory_retention, ip_inventory_citus_retention).';

COMMENT ON FUNCTION @extschema@._ip_inventory_retain_failures(timestamptz, text, boolean, jsonb) IS 'Removes the failure records of addresses no longer in the inventory (internal: ip_inventory_retention).';

COMMENT ON FUNCTION @extschema@._ip_inventory_retention_tables() IS 'The attached event tables retention applies to (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_retain_table(regclass, timestamptz, text, boolean, int, int, int, jsonb) IS 'One batch of retention in an attached event table (internal: ip_inventory_retention).';

COMMENT ON FUNCTION @extschema@._ip_inventory_retention_failed(jsonb, regclass, text, text) IS 'Records an event table whose retention batch failed (internal: ip_inventory_retention).';

COMMENT ON PROCEDURE @extschema@.ip_inventory_retention(interval, text, boolean, int, int, int, jsonb) IS
    'Applies the retention period: inventory rows last seen, and attached events older than older_than, are anonymized (truncated to prefix_v4 / prefix_v6, inventory rows merged per network) or deleted (mode => ''delete''), in batches committed one by one, and the failure records of the addresses taken out go with them; event tables are changed as their owners. dry_run (the default) only counts what it would change.';

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retention_check(interval, text, boolean, int, int, int, text) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retention_start(interval, text, boolean, int, int, int) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retain_inventory(timestamptz, text, boolean, int, int, int, jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_merge_anonymized(@extschema@.ip_inventory[], int, int) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retain_failures(timestamptz, text, boolean, jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retention_tables() FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retain_table(regclass, timestamptz, text, boolean, int, int, int, jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retention_failed(jsonb, regclass, text, text) FROM PUBLIC;

REVOKE ALL ON PROCEDURE @extschema@.ip_inventory_retention(interval, text, boolean, int, int, int, jsonb) FROM PUBLIC;

COMMENT ON TABLE @extschema@.ip_inventory_citus_queue IS
    'Citus only: observations recorded on a worker for addresses whose inventory row is in a shard of another range; ip_inventory_citus_flush() moves them into ip_inventory. Empty on a single node.';

COMMENT ON TABLE @extschema@.ip_inventory_citus_observed IS
    'Citus only: the attached distributed event tables (schema-qualified names) and their columns, on every node (a reference table). Written by ip_inventory_attach/ip_inventory_detach. Empty on a single node.';

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_distributed() RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT FROM pg_catalog.pg_dist_partition AS p
                   WHERE p.logicalrelid = '@extschema@.ip_inventory'::regclass);
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_on_coordinator() RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
        RETURN true;
    END IF;
    RETURN coalesce((SELECT g.groupid = 0 FROM pg_catalog.pg_dist_local_group AS g), true);
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_require(what text) RETURNS void
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_coordinator_only(what text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT @extschema@._ip_inventory_citus_on_coordinator() AND @extschema@._ip_inventory_citus_distributed() THEN
        RAISE EXCEPTION '% runs on the Citus coordinator only', what USING ERRCODE = '55000',
            DETAIL = 'The GreyNoise quota and the claims of concurrent refreshes are counted on the coordinator, once for the cluster.';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_shard_of(rel regclass, OUT logical regclass, OUT shardid bigint)
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_shard_name(logical regclass, shardid bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT format('%I.%I', n.nspname, c.relname || '_' || shardid)
        FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.oid = logical);

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_local_shards(logical regclass) RETURNS SETOF regclass
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT @extschema@._ip_inventory_citus_shard_name(s.logicalrelid, s.shardid)::regclass
    FROM pg_catalog.pg_dist_shard AS s
    JOIN pg_catalog.pg_dist_placement AS p ON p.shardid = s.shardid
    WHERE s.logicalrelid = logical AND p.groupid = (SELECT g.groupid FROM pg_catalog.pg_dist_local_group AS g)
    ORDER BY s.shardid;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_shard_columns(shard regclass, OUT ip_columns text[], OUT ts_column text)
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_key_in_range(lo int, hi int) RETURNS inet
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_record_shard(
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_record(
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

CREATE OR REPLACE FUNCTION @extschema@.ip_inventory_citus_flush() RETURNS jsonb
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

CREATE OR REPLACE FUNCTION @extschema@.ip_inventory_distribute(
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_set_observed(tbl regclass, ip_columns text[], ts_column text)
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_table(rel regclass) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT FROM pg_catalog.pg_dist_partition AS p WHERE p.logicalrelid = rel);
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_add_summary(acc jsonb, one jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT jsonb_object_agg(k, coalesce((acc ->> k)::bigint, 0) + coalesce((one ->> k)::bigint, 0))
        FROM unnest(ARRAY['shards', 'event_rows', 'this_run_rows', 'addresses', 'new_addresses', 'batches', 'enriched', 'inventory_rows']) AS k)
       || jsonb_build_object('shards', coalesce((acc ->> 'shards')::bigint, 0) + CASE WHEN one IS NULL THEN 0 ELSE 1 END);

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_node_shards(relation text) RETURNS regclass[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN ARRAY(SELECT s FROM @extschema@._ip_inventory_citus_local_shards(to_regclass(relation)) AS s);

CREATE OR REPLACE PROCEDURE @extschema@._ip_inventory_citus_backfill_node(
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_on_nodes(command text,
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

CREATE OR REPLACE FUNCTION @extschema@.ip_inventory_citus_backfill(
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_enrich_start(batch_size int,
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_enrich_step(
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_enrich_end(summary jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM @extschema@._ip_inventory_job_release('enrich_pending'::text);
    RETURN summary;
END $$;

CREATE OR REPLACE PROCEDURE @extschema@._ip_inventory_citus_enrich_node(batch_size int, INOUT summary jsonb DEFAULT NULL)
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

CREATE OR REPLACE FUNCTION @extschema@.ip_inventory_citus_enrich_pending(batch_size int DEFAULT 10000) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_node_info() RETURNS jsonb
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

CREATE OR REPLACE FUNCTION @extschema@.ip_inventory_citus_nodes()
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

CREATE OR REPLACE FUNCTION @extschema@.ip_inventory_citus_reload()
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

CREATE OR REPLACE FUNCTION @extschema@.ip_inventory_citus_stats()
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_health()
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_apply_maxmind(ips inet[]) RETURNS bigint
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_store_answers(src text, answers jsonb, before jsonb)
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_tag(ips inet[], stale_only boolean DEFAULT false) RETURNS bigint
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_tag_pending(ips inet[], lim int) RETURNS bigint
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_retag_after() RETURNS jsonb
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_retain_shard(
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_anonymize_step(
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_retain_events(
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_anonymize_refused() RETURNS SETOF text
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

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_citus_retention_shards(
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

CREATE OR REPLACE PROCEDURE @extschema@._ip_inventory_citus_retention_node(
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

CREATE OR REPLACE FUNCTION @extschema@.ip_inventory_citus_retention(
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

COMMENT ON TABLE @extschema@.ip_inventory_tag_rules IS
    'Tag rules: a tag, its attack type and confidence for the addresses whose inventory data match a declarative condition (docs/tags.md). Written by the extension''s owner and the roles granted INSERT/UPDATE/DELETE on it; tags are materialized in ip_inventory.tags (run ip_inventory_retag() after a change).';

COMMENT ON SEQUENCE @extschema@.ip_inventory_tag_rules_rule_id_seq IS 'Numbers the tag rules (ip_inventory_tag_rules.rule_id); dumped with them.';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.rule_id IS 'The rule''s number.';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.tag IS 'The tag (lowercase letters, digits, _ . : -, at most 63). Several rules may give one tag: an address gets the highest confidence of those it matches.';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.attack_type IS 'The attack type or category of the tag (same alphabet); every rule giving one tag names the same one. The report views count by it.';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.confidence IS 'Confidence of the tag for a matching address, in [0, 1].';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.condition IS 'A jsonb object whose keys must all match (docs/tags.md): country, asn, ip_class, network, greynoise_classification, greynoise_noise, greynoise_riot, rdns_regex, is_anonymous, is_anonymous_vpn, is_hosting_provider, is_public_proxy, is_residential_proxy, is_tor_exit_node, isp, isp_regex, connection_type, mobile_country_code, mobile_network_code, in_list, and the combinators not, any, all. Checked when written.';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.enabled IS 'Only enabled rules tag.';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.comment IS 'Why the rule exists.';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.event_table IS 'NULL: an address rule (tags materialized in ip_inventory.tags). An attached event table: an event rule, whose condition has an "event" key over the table''s columns; its tags are per event, in the <prefix>_event_tags columns of the table''s enriched view.';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.created_by IS 'The role that created it (default: the inserting role; kept by updates).';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.created_at IS 'When it was created.';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.updated_at IS 'When it was last changed.';

COMMENT ON TABLE @extschema@.ip_inventory_tag_state IS
    'The tag rules'' generation (bumped by every change), the number of enabled rules and their compiled tagging expression (internal; rebuilt by a trigger on ip_inventory_tag_rules).';

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_keys()
RETURNS TABLE (key text, kind text) LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT k.key, k.kind FROM (VALUES
        ('country', 'array'), ('asn', 'array'), ('ip_class', 'array'), ('network', 'array'),
        ('greynoise_classification', 'array'), ('greynoise_noise', 'boolean'),
        ('greynoise_riot', 'boolean'), ('rdns_regex', 'string'),
        ('is_anonymous', 'boolean'), ('is_anonymous_vpn', 'boolean'),
        ('is_hosting_provider', 'boolean'), ('is_public_proxy', 'boolean'),
        ('is_residential_proxy', 'boolean'), ('is_tor_exit_node', 'boolean'),
        ('isp', 'array'), ('isp_regex', 'string'), ('connection_type', 'array'),
        ('mobile_country_code', 'array'), ('mobile_network_code', 'array'),
        ('in_list', 'array'), ('not', 'object'), ('any', 'array'), ('all', 'array')) AS k(key, kind);
END;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_check(cond jsonb, depth int DEFAULT 0)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
    v jsonb;
    want text;
    e jsonb;
    s text;
    hint text := 'A condition is a JSON object of these keys (all must match): '
        || (SELECT string_agg(t.key || ' (' || t.kind || ')', ', ') FROM @extschema@._ip_inventory_tag_keys() AS t)
        || '. See docs/tags.md.';
BEGIN
    IF depth > 8 THEN
        RAISE EXCEPTION 'tag rule condition nests deeper than 8 levels' USING ERRCODE = '54000';
    END IF;
    IF cond IS NULL OR jsonb_typeof(cond) <> 'object' THEN
        RAISE EXCEPTION 'tag rule condition must be a JSON object, not %', coalesce(jsonb_typeof(cond), 'NULL')
            USING ERRCODE = '22023', HINT = hint;
    END IF;
    IF cond = '{}' THEN
        RAISE EXCEPTION 'tag rule condition is empty' USING ERRCODE = '22023',
            HINT = 'A rule must say which addresses it tags, e.g. {"country": ["CN"]}.';
    END IF;
    IF depth = 0 AND octet_length(cond::text) > 65536 THEN
        RAISE EXCEPTION 'tag rule condition is longer than 64 kB' USING ERRCODE = '54000';
    END IF;
    FOR k, v IN SELECT x.key, x.value FROM jsonb_each(cond) AS x LOOP
        SELECT t.kind INTO want FROM @extschema@._ip_inventory_tag_keys() AS t WHERE t.key = k;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown key "%" in tag rule condition', left(k, 64) USING ERRCODE = '22023', HINT = hint;
        END IF;
        IF jsonb_typeof(v) <> want THEN
            RAISE EXCEPTION 'tag rule condition key "%" takes a JSON %, not %', k, want, jsonb_typeof(v)
                USING ERRCODE = '22023', HINT = hint;
        END IF;
        IF want = 'array' AND (jsonb_array_length(v) = 0 OR jsonb_array_length(v) > 10000) THEN
            RAISE EXCEPTION 'tag rule condition key "%" takes 1 to 10000 values, not %', k, jsonb_array_length(v)
                USING ERRCODE = '22023';
        END IF;
        IF k IN ('any', 'all') THEN
            FOR e IN SELECT jsonb_array_elements(v) LOOP
                PERFORM @extschema@._ip_inventory_tag_check(e, depth + 1);
            END LOOP;
        ELSIF k = 'not' THEN
            PERFORM @extschema@._ip_inventory_tag_check(v, depth + 1);
        ELSIF k IN ('rdns_regex', 'isp_regex') THEN
            s := v #>> '{}';
            IF s = '' OR octet_length(s) > 256 THEN
                RAISE EXCEPTION '% must be 1 to 256 bytes', k USING ERRCODE = '22023';
            END IF;
            -- Back-references are the one feature that makes matching exponential.
            IF s ~ '\\[1-9]' THEN
                RAISE EXCEPTION '% must not use back-references (\1 ... \9)', k USING ERRCODE = '2201B',
                    HINT = CASE k WHEN 'rdns_regex' THEN 'Write the alternatives out: rules are matched against every reverse DNS name.'
                                  ELSE 'Write the alternatives out: rules are matched against every ISP name.' END;
            END IF;
            BEGIN
                PERFORM 'probe' ~* s;
            EXCEPTION WHEN invalid_regular_expression OR program_limit_exceeded THEN
                RAISE EXCEPTION '% "%" is not a valid regular expression: %', k, left(s, 64), SQLERRM
                    USING ERRCODE = '2201B', HINT = 'A POSIX regular expression (PostgreSQL ~*), matched case-insensitively.';
            END;
        ELSIF want = 'array' THEN
            FOR e IN SELECT jsonb_array_elements(v) LOOP
                s := CASE WHEN jsonb_typeof(e) = 'string' THEN e #>> '{}' END;
                IF NOT coalesce((CASE k
                    WHEN 'country' THEN s ~ '^[A-Z]{2}$'
                    WHEN 'asn' THEN jsonb_typeof(e) = 'number' AND (e #>> '{}') ~ '^[0-9]{1,10}$'
                                    AND (e #>> '{}')::numeric <= 4294967295
                    WHEN 'ip_class' THEN s ~ '^[a-z0-9_]{1,32}$'
                    WHEN 'greynoise_classification' THEN s ~ '^[a-z_]{1,32}$'
                    WHEN 'in_list' THEN s ~ '^[a-z][a-z0-9_]{0,62}$'
                    WHEN 'network' THEN s ~ '^[0-9a-fA-F.:]{2,39}(/[0-9]{1,3})?$'
                    WHEN 'isp' THEN octet_length(s) BETWEEN 1 AND 256
                    -- MaxMind's values, exactly: a misspelt one would silently match nothing.
                    WHEN 'connection_type' THEN s IN ('Cable/DSL', 'Cellular', 'Corporate', 'Satellite', 'Dialup')
                    WHEN 'mobile_country_code' THEN s ~ '^[0-9]{3}$'
                    WHEN 'mobile_network_code' THEN s ~ '^[0-9]{2,3}$'
                    ELSE false END), false) THEN
                    RAISE EXCEPTION 'tag rule condition key "%" has an invalid value %', k, left(e::text, 64)
                        USING ERRCODE = '22023',
                        HINT = CASE k WHEN 'country' THEN 'ISO country codes in upper case, e.g. ["CN", "RU"].'
                                      WHEN 'asn' THEN 'AS numbers as JSON numbers, e.g. [4134, 14061].'
                                      WHEN 'ip_class' THEN 'Classes as ip_class() names them, e.g. ["public"].'
                                      WHEN 'greynoise_classification' THEN 'e.g. ["malicious", "unknown"].'
                                      WHEN 'in_list' THEN 'Names of network lists (ip_inventory_lists).'
                                      WHEN 'isp' THEN 'ISP names exactly as ip_isp() gives them (1 to 256 bytes), e.g. ["Verizon Wireless"]; isp_regex matches a pattern.'
                                      WHEN 'connection_type' THEN 'One or more of "Cable/DSL", "Cellular", "Corporate", "Satellite", "Dialup" (as ip_connection_type() gives them).'
                                      WHEN 'mobile_country_code' THEN 'Mobile country codes (MCC) as strings of 3 digits, e.g. ["310"].'
                                      WHEN 'mobile_network_code' THEN 'Mobile network codes (MNC) as strings of 2 or 3 digits, e.g. ["004"].'
                                      ELSE 'Networks in CIDR notation, e.g. ["192.0.2.0/24"].' END;
                END IF;
                IF k = 'network' THEN
                    BEGIN
                        PERFORM s::cidr;
                    EXCEPTION WHEN invalid_text_representation THEN
                        RAISE EXCEPTION 'tag rule condition key "network" has an invalid network %', left(s, 64)
                            USING ERRCODE = '22023', HINT = 'Networks in CIDR notation without host bits, e.g. ["192.0.2.0/24"].';
                    END;
                ELSIF k = 'in_list' AND NOT EXISTS (SELECT FROM @extschema@.ip_inventory_lists AS l WHERE l.list_name = s) THEN
                    RAISE EXCEPTION 'network list "%" is not registered', s USING ERRCODE = '42704',
                        HINT = 'Register it first with ip_list_register(); SELECT list_name FROM ip_inventory_lists; lists the registered ones.';
                END IF;
            END LOOP;
        END IF;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_condition_sql(cond jsonb)
RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
    v jsonb;
    parts text[] := '{}';
    vals text;
    e jsonb;
    sub text[];
BEGIN
    FOR k, v IN SELECT x.key, x.value FROM jsonb_each(cond) AS x ORDER BY x.key LOOP
        IF jsonb_typeof(v) = 'array' AND k NOT IN ('any', 'all') THEN
            vals := ARRAY(SELECT jsonb_array_elements_text(v))::text;
        END IF;
        parts := parts || CASE k
            WHEN 'country' THEN format('(inv.geo_country OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])) IS TRUE', vals)
            WHEN 'asn' THEN format('(inv.asn_number OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.int8[])) IS TRUE', vals)
            WHEN 'ip_class' THEN format('(inv.ip_class OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])) IS TRUE', vals)
            WHEN 'network' THEN format('(inv.ip_address OPERATOR(pg_catalog.<<=) ANY (%L::pg_catalog.inet[])) IS TRUE', vals)
            WHEN 'greynoise_classification' THEN format(
                '(inv.enrichment OPERATOR(pg_catalog.->) ''greynoise'' OPERATOR(pg_catalog.->>) ''classification'' OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])) IS TRUE', vals)
            WHEN 'greynoise_noise' THEN format(
                '(inv.enrichment OPERATOR(pg_catalog.->) ''greynoise'' OPERATOR(pg_catalog.->) ''noise'' OPERATOR(pg_catalog.=) %L::pg_catalog.jsonb) IS TRUE', v::text)
            WHEN 'greynoise_riot' THEN format(
                '(inv.enrichment OPERATOR(pg_catalog.->) ''greynoise'' OPERATOR(pg_catalog.->) ''riot'' OPERATOR(pg_catalog.=) %L::pg_catalog.jsonb) IS TRUE', v::text)
            WHEN 'rdns_regex' THEN format(
                '(inv.enrichment OPERATOR(pg_catalog.->) ''rdns'' OPERATOR(pg_catalog.->>) ''name'' OPERATOR(pg_catalog.~*) %L::pg_catalog.text) IS TRUE', v #>> '{}')
            WHEN 'isp' THEN format('(inv.isp OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])) IS TRUE', vals)
            WHEN 'isp_regex' THEN format('(inv.isp OPERATOR(pg_catalog.~*) %L::pg_catalog.text) IS TRUE', v #>> '{}')
            WHEN 'connection_type' THEN format('(inv.connection_type OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])) IS TRUE', vals)
            WHEN 'mobile_country_code' THEN format('(inv.mobile_country_code OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])) IS TRUE', vals)
            WHEN 'mobile_network_code' THEN format('(inv.mobile_network_code OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])) IS TRUE', vals)
            WHEN 'in_list' THEN (
                -- A list unregistered since the rule was written matches nothing (its
                -- registration is read once per statement: an InitPlan).
                SELECT '(' || string_agg(format(
                    '(CASE WHEN (SELECT EXISTS (SELECT FROM @extschema@.ip_inventory_lists AS l WHERE l.list_name OPERATOR(pg_catalog.=) %L::pg_catalog.text))'
                    ' THEN @extschema@.ip_list_contains(inv.ip_address, %L::pg_catalog.text) END) IS TRUE', n, n), ' OR ') || ')'
                FROM jsonb_array_elements_text(v) AS n)
            WHEN 'not' THEN format('(NOT %s)', @extschema@._ip_inventory_tag_condition_sql(v))
            WHEN 'any' THEN (SELECT '(' || string_agg(@extschema@._ip_inventory_tag_condition_sql(x), ' OR ') || ')'
                             FROM jsonb_array_elements(v) AS x)
            WHEN 'all' THEN (SELECT '(' || string_agg(@extschema@._ip_inventory_tag_condition_sql(x), ' AND ') || ')'
                             FROM jsonb_array_elements(v) AS x)
            ELSE format('(inv.%I IS NOT DISTINCT FROM %L::pg_catalog.bool)', k, v::text) END;
    END LOOP;
    RETURN '(' || array_to_string(parts, ' AND ') || ')';
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_event_kind(t regtype)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN t IN ('pg_catalog.int2'::pg_catalog.regtype, 'pg_catalog.int4'::pg_catalog.regtype, 'pg_catalog.int8'::pg_catalog.regtype, 'pg_catalog.numeric'::pg_catalog.regtype,
                       'pg_catalog.float4'::pg_catalog.regtype, 'pg_catalog.float8'::pg_catalog.regtype) THEN 'number'
            WHEN t IN ('pg_catalog.text'::pg_catalog.regtype, 'pg_catalog.varchar'::pg_catalog.regtype, 'pg_catalog.bpchar'::pg_catalog.regtype,
                       'pg_catalog.inet'::pg_catalog.regtype, 'pg_catalog.cidr'::pg_catalog.regtype) THEN 'string'
            WHEN t = 'pg_catalog.bool'::pg_catalog.regtype THEN 'boolean' END;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_event_check(tbl regclass, ev jsonb)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c jsonb;
    col text;
    typ regtype;
    want text;
    ops text[];
    v jsonb;
    hint text := 'An event condition is {"column": "dst_port", "in": [22, 2222]}, "eq": v, "not_in": [...] or "min"/"max": n, or an array of them (all must match). See docs/tags.md.';
BEGIN
    IF tbl IS NULL OR NOT EXISTS (SELECT FROM pg_class AS r WHERE r.oid = tbl AND r.relkind IN ('r', 'p', 'f', 'v', 'm')) THEN
        RAISE EXCEPTION 'an event rule needs an existing event table' USING ERRCODE = '42P01',
            HINT = 'Set event_table to the attached table whose events it tags, e.g. ''sensors.events''.';
    END IF;
    IF jsonb_typeof(ev) NOT IN ('object', 'array') OR ev IN ('[]', '{}') THEN
        RAISE EXCEPTION 'tag rule key "event" takes an object or a non-empty array of objects' USING ERRCODE = '22023', HINT = hint;
    END IF;
    IF jsonb_typeof(ev) = 'array' AND jsonb_array_length(ev) > 64 THEN
        RAISE EXCEPTION 'tag rule key "event" takes at most 64 conditions' USING ERRCODE = '54000';
    END IF;
    FOR c IN SELECT CASE WHEN jsonb_typeof(ev) = 'array' THEN x ELSE ev END
             FROM jsonb_array_elements(CASE WHEN jsonb_typeof(ev) = 'array' THEN ev ELSE '[null]' END) AS x LOOP
        IF jsonb_typeof(c) IS DISTINCT FROM 'object' OR jsonb_typeof(c -> 'column') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'an event condition must be an object with a "column" string' USING ERRCODE = '22023', HINT = hint;
        END IF;
        ops := ARRAY(SELECT k FROM jsonb_object_keys(c) AS k WHERE k <> 'column' ORDER BY k);
        IF NOT (ops IN ('{eq}', '{in}', '{not_in}', '{min}', '{max}', '{max,min}')) THEN
            RAISE EXCEPTION 'event condition on "%" has the operators %: give one of eq, in, not_in, or min and/or max',
                left(c ->> 'column', 64), left(ops::text, 100) USING ERRCODE = '22023', HINT = hint;
        END IF;
        col := c ->> 'column';
        SELECT a.atttypid::regtype INTO typ FROM pg_attribute AS a
        WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of % does not exist', left(col, 64), tbl USING ERRCODE = '42703';
        END IF;
        want := @extschema@._ip_inventory_tag_event_kind(typ);
        IF want IS NULL THEN
            RAISE EXCEPTION 'column "%" of % is %: event conditions take numbers, text, inet, cidr and boolean columns',
                col, tbl, typ USING ERRCODE = '42804', HINT = 'Domains and user-defined types are refused: filter the enriched view instead.';
        END IF;
        IF ops && '{min,max}' AND want <> 'number' THEN
            RAISE EXCEPTION 'column "%" of % is %: min and max take numeric columns', col, tbl, typ USING ERRCODE = '42804';
        END IF;
        IF ops && '{in,not_in}' AND (jsonb_typeof(c -> ops[1]) <> 'array' OR jsonb_array_length(c -> ops[1]) NOT BETWEEN 1 AND 10000) THEN
            RAISE EXCEPTION 'event condition "%" on "%" takes an array of 1 to 10000 values', ops[1], col USING ERRCODE = '22023', HINT = hint;
        END IF;
        FOR v IN SELECT x FROM jsonb_array_elements(c -> 'in') AS x
                 UNION ALL SELECT x FROM jsonb_array_elements(c -> 'not_in') AS x
                 UNION ALL SELECT c -> 'eq' WHERE c ? 'eq'
                 UNION ALL SELECT c -> 'min' WHERE c ? 'min'
                 UNION ALL SELECT c -> 'max' WHERE c ? 'max' LOOP
            IF jsonb_typeof(v) <> want THEN
                RAISE EXCEPTION 'column "%" of % is %: it takes JSON %s, not %', col, tbl, typ, want, left(v::text, 64)
                    USING ERRCODE = '42804';
            END IF;
            -- The view casts the value to the column's type: it must be one.
            BEGIN
                EXECUTE format('SELECT %L::%s', v #>> '{}', format_type(typ, NULL));
            EXCEPTION WHEN data_exception THEN
                RAISE EXCEPTION 'value % is not a valid % for column "%" of %: %', left(v::text, 64), typ, col, tbl, SQLERRM
                    USING ERRCODE = '22P02';
            END;
        END LOOP;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_event_ok(tbl regclass, ev jsonb)
RETURNS boolean LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM @extschema@._ip_inventory_tag_event_check(tbl, ev);
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    RETURN false;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_event_sql(tbl regclass, ev jsonb)
RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT '(' || string_agg(
            (SELECT CASE
                WHEN c ? 'eq' THEN format('(e.%I OPERATOR(pg_catalog.=) %L::%s) IS TRUE', c ->> 'column', c ->> 'eq', t.typ)
                WHEN c ? 'in' THEN format('(e.%I OPERATOR(pg_catalog.=) ANY (ARRAY[%s])) IS TRUE', c ->> 'column',
                    (SELECT string_agg(format('%L::%s', x, t.typ), ', ') FROM jsonb_array_elements_text(c -> 'in') AS x))
                WHEN c ? 'not_in' THEN format('(e.%I OPERATOR(pg_catalog.<>) ALL (ARRAY[%s])) IS TRUE', c ->> 'column',
                    (SELECT string_agg(format('%L::%s', x, t.typ), ', ') FROM jsonb_array_elements_text(c -> 'not_in') AS x))
                ELSE '(' || concat_ws(' AND ',
                    CASE WHEN c ? 'min' THEN format('(e.%I OPERATOR(pg_catalog.>=) %L::%s) IS TRUE', c ->> 'column', c ->> 'min', t.typ) END,
                    CASE WHEN c ? 'max' THEN format('(e.%I OPERATOR(pg_catalog.<=) %L::%s) IS TRUE', c ->> 'column', c ->> 'max', t.typ) END) || ')'
                END
             FROM (SELECT format_type(a.atttypid, NULL) AS typ FROM pg_attribute AS a
                   WHERE a.attrelid = tbl AND a.attname = c ->> 'column' AND NOT a.attisdropped) AS t),
            ' AND ') || ')'
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(ev) = 'array' THEN ev ELSE jsonb_build_array(ev) END) AS c);

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_event_tags_sql(tbl regclass, inv_alias text)
RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT '(SELECT coalesce(pg_catalog.array_agg(r.tag ORDER BY r.tag), ''{}''::pg_catalog.text[]) AS tags,'
               || ' coalesce(pg_catalog.jsonb_object_agg(r.tag, r.confidence), ''{}''::pg_catalog.jsonb) AS tag_confidence'
               || ' FROM (SELECT v.tag, pg_catalog.max(v.confidence) AS confidence FROM (SELECT '
               || quote_ident(inv_alias) || '.*) AS inv, LATERAL (VALUES '
               || string_agg(format('(%L::pg_catalog.text, %L::pg_catalog.numeric, %s AND %s)', t.tag, t.confidence,
                                    CASE WHEN t.condition - 'event' = '{}' THEN 'true'
                                         ELSE @extschema@._ip_inventory_tag_condition_sql(t.condition - 'event') END,
                                    CASE WHEN @extschema@._ip_inventory_tag_event_ok(tbl, t.condition -> 'event')
                                         THEN @extschema@._ip_inventory_tag_event_sql(tbl, t.condition -> 'event')
                                         ELSE 'false' END), ', ' ORDER BY t.rule_id)
               || ') AS v(tag, confidence, hit) WHERE v.hit GROUP BY v.tag) AS r)'
        FROM @extschema@.ip_inventory_tag_rules AS t
        WHERE t.enabled AND t.event_table = tbl);

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_sql()
RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT '(SELECT coalesce(pg_catalog.array_agg(r.tag ORDER BY r.tag), ''{}''::pg_catalog.text[]) AS tags,'
               || ' coalesce(pg_catalog.jsonb_object_agg(r.tag, r.confidence), ''{}''::pg_catalog.jsonb) AS tag_confidence'
               || ' FROM (SELECT v.tag, pg_catalog.max(v.confidence) AS confidence FROM (VALUES '
               || string_agg(format('(%L::pg_catalog.text, %L::pg_catalog.numeric, %s)', t.tag, t.confidence,
                                    @extschema@._ip_inventory_tag_condition_sql(t.condition)), ', ' ORDER BY t.rule_id)
               || ') AS v(tag, confidence, hit) WHERE v.hit GROUP BY v.tag) AS r)'
        FROM @extschema@.ip_inventory_tag_rules AS t WHERE t.enabled AND t.event_table IS NULL);

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_rule_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.event_table IS NULL THEN
        IF NEW.condition ? 'event' THEN
            RAISE EXCEPTION 'tag rule condition key "event" needs an event table' USING ERRCODE = '22023',
                HINT = 'Set event_table to the attached table whose columns the "event" condition names.';
        END IF;
        PERFORM @extschema@._ip_inventory_tag_check(NEW.condition);
    ELSE
        IF jsonb_typeof(NEW.condition) IS DISTINCT FROM 'object' OR NOT NEW.condition ? 'event' THEN
            RAISE EXCEPTION 'an event rule (event_table %) needs an "event" key in its condition', NEW.event_table
                USING ERRCODE = '22023', HINT = 'e.g. {"event": {"column": "dst_port", "in": [22, 2222]}}; see docs/tags.md.';
        END IF;
        IF NEW.condition - 'event' <> '{}' THEN
            PERFORM @extschema@._ip_inventory_tag_check(NEW.condition - 'event');
            -- The enriched view runs as its reader, who need not read the network lists.
            IF jsonb_path_exists(NEW.condition - 'event', 'strict $.** ? (@.type() == "object" && exists(@.in_list))') THEN
                RAISE EXCEPTION 'an event rule cannot use in_list' USING ERRCODE = '0A000',
                    HINT = 'Tag the listed addresses with an address rule and filter the enriched view by <prefix>_tags.';
            END IF;
        END IF;
        IF TG_OP = 'INSERT' AND NEW.created_at < transaction_timestamp() THEN
            -- A rule reloaded with its history (pg_restore): its table may have changed since
            -- it was written. It then matches nothing (its view compiles it as false:
            -- _ip_inventory_tag_event_ok) rather than failing the restore of every rule.
            IF NOT @extschema@._ip_inventory_tag_event_ok(NEW.event_table, NEW.condition -> 'event') THEN
                RAISE WARNING 'event rule % (tag %) does not fit % any more and matches nothing', NEW.rule_id, NEW.tag, NEW.event_table
                    USING HINT = 'Fix its condition or delete it: SELECT * FROM ip_inventory_tag_rules WHERE event_table IS NOT NULL;';
            END IF;
        ELSE
            PERFORM @extschema@._ip_inventory_tag_event_check(NEW.event_table, NEW.condition -> 'event');
        END IF;
    END IF;
    IF EXISTS (SELECT FROM @extschema@.ip_inventory_tag_rules AS r
               WHERE r.tag = NEW.tag AND r.rule_id <> NEW.rule_id
                 AND r.attack_type IS DISTINCT FROM NEW.attack_type) THEN
        RAISE EXCEPTION 'tag "%" already has another attack type', NEW.tag USING ERRCODE = '23514',
            HINT = 'Every rule giving a tag names the same attack_type: SELECT rule_id, attack_type FROM ip_inventory_tag_rules WHERE tag = ...;';
    END IF;
    -- An insert keeps what it gives (pg_restore reloads the rules with their history).
    IF TG_OP = 'UPDATE' THEN
        NEW.created_by := OLD.created_by;
        NEW.created_at := OLD.created_at;
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_apply(ips inet[]) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN 0;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_recompile() RETURNS regclass[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g bigint;
    c text;
    old_tables regclass[];
    new_tables regclass[];
BEGIN
    -- Rule changes in two sessions compile one after the other: the state row is locked
    -- first, in a statement of its own, so that (READ COMMITTED) the statements below take
    -- their snapshot after the other session's commit and compile its rules too. Without
    -- it, the later session compiled from a snapshot older than the other's change (a rule
    -- lost, or a deleted one kept: pg_tests/chaos.py, part rules).
    PERFORM FROM @extschema@.ip_inventory_tag_state AS s FOR UPDATE;
    SELECT s.event_tables INTO old_tables FROM @extschema@.ip_inventory_tag_state AS s;
    UPDATE @extschema@.ip_inventory_tag_state AS s SET
        generation = s.generation + 1,
        enabled_rules = (SELECT count(*) FROM @extschema@.ip_inventory_tag_rules AS r WHERE r.enabled AND r.event_table IS NULL),
        compiled = @extschema@._ip_inventory_tag_sql(),
        changed_at = now(),
        event_tables = ARRAY(SELECT DISTINCT r.event_table FROM @extschema@.ip_inventory_tag_rules AS r
                             WHERE r.enabled AND r.event_table IS NOT NULL ORDER BY 1)
    RETURNING s.generation, s.compiled, s.event_tables INTO g, c, new_tables;
    EXECUTE format('CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_apply(ips pg_catalog.inet[]) RETURNS pg_catalog.int8'
                   ' LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS %L',
        CASE WHEN c IS NULL THEN E'\nBEGIN\n    RETURN 0;\nEND ' ELSE format($body$
DECLARE
    written pg_catalog.int8;
BEGIN
    -- Generated from ip_inventory_tag_rules, generation %1$s.
    UPDATE @extschema@.ip_inventory AS cur SET
        tags = t.tags, tag_confidence = t.tag_confidence, tags_generation = %1$s
    FROM (SELECT inv.ip_address, x.tags, x.tag_confidence
          FROM @extschema@.ip_inventory AS inv, LATERAL %2$s AS x
          WHERE inv.ip_address OPERATOR(pg_catalog.=) ANY (ips)) AS t
    WHERE cur.ip_address OPERATOR(pg_catalog.=) t.ip_address
      AND (cur.tags IS DISTINCT FROM t.tags OR cur.tag_confidence IS DISTINCT FROM t.tag_confidence
           OR cur.tags_generation IS DISTINCT FROM %1$s);
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END $body$, g, c) END);
    RETURN old_tables || new_tables;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_rules_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tables regclass[];
    t regclass;
BEGIN
    tables := @extschema@._ip_inventory_tag_recompile();
    -- Event rules are compiled into the enriched views of their tables: the views of the
    -- tables named before or after the change are replaced (CREATE OR REPLACE, as each
    -- table's owner; grants on them stay).
    FOR t IN SELECT DISTINCT o.event_table FROM @extschema@.ip_inventory_observed AS o
             WHERE o.event_table = ANY (tables) AND cardinality(o.enriched_views) > 0
             ORDER BY 1 LOOP
        PERFORM @extschema@._ip_inventory_enriched_view_refresh(t);
    END LOOP;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_list_changed(changed_table regclass, changed_list text)
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Once per transaction: after the generation moved in it, the rows it tags stay stale
    -- (_ip_inventory_tag), so its later list changes need no new one. (The state row's xmin
    -- is this transaction's only when the top level moved it; a subtransaction's move is
    -- simply moved again.)
    IF EXISTS (SELECT FROM @extschema@.ip_inventory_tag_state AS s
               WHERE s.xmin::text = (pg_catalog.txid_current_if_assigned() % 4294967296)::text) THEN
        RETURN true;
    END IF;
    IF NOT EXISTS (
        SELECT FROM @extschema@.ip_inventory_tag_rules AS r
        WHERE r.enabled AND r.event_table IS NULL
          AND EXISTS (SELECT FROM jsonb_path_query(r.condition, 'strict $.** ? (@.type() == "object" && exists(@.in_list)).in_list[*]') AS n(v)
                      WHERE n.v #>> '{}' = changed_list
                         OR n.v #>> '{}' IN (SELECT l.list_name FROM @extschema@.ip_inventory_lists AS l
                                             WHERE l.list_table = changed_table))) THEN
        RETURN false;
    END IF;
    PERFORM @extschema@._ip_inventory_tag_recompile();
    RETURN true;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag(ips inet[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    enabled int;
    moved_here boolean;
    written bigint;
BEGIN
    IF ips IS NULL OR cardinality(ips) = 0 THEN
        RETURN 0;
    END IF;
    SELECT s.enabled_rules, s.xmin::text = (pg_catalog.txid_current_if_assigned() % 4294967296)::text
      INTO enabled, moved_here FROM @extschema@.ip_inventory_tag_state AS s;
    IF enabled = 0 THEN
        RETURN 0;
    END IF;
    IF @extschema@._ip_inventory_citus_distributed() THEN
        IF NOT @extschema@._ip_inventory_citus_on_coordinator() THEN
            RETURN 0;
        END IF;
        written := @extschema@._ip_inventory_citus_tag(ips);
    ELSE
        written := @extschema@._ip_inventory_tag_apply(ips);
    END IF;
    -- The generation moved in this transaction: a later list change in it starts no other
    -- (_ip_inventory_tag_list_changed), so these rows stay stale and the next retag tags them
    -- with what the transaction committed.
    IF moved_here THEN
        UPDATE @extschema@.ip_inventory AS inv SET tags_generation = NULL
        WHERE inv.ip_address = ANY (ips) AND inv.tags_generation IS NOT NULL;
    END IF;
    RETURN written;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tags_stale(tags text[], tags_generation bigint, generation bigint, enabled_rules int)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN enabled_rules > 0 THEN tags_generation IS DISTINCT FROM generation
            ELSE cardinality(tags) > 0 END;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_retag_start(batch_size int, max_rows bigint)
RETURNS @extschema@.ip_inventory_jobs LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j @extschema@.ip_inventory_jobs;
    st record;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = '22023';
    END IF;
    IF max_rows < 0 THEN
        RAISE EXCEPTION 'max_rows must not be negative, not %', max_rows USING ERRCODE = '22023';
    END IF;
    IF @extschema@._ip_inventory_citus_distributed() THEN
        PERFORM @extschema@._ip_inventory_citus_require('ip_inventory_retag');
    END IF;
    PERFORM @extschema@._ip_inventory_job_start('retag'::text);
    INSERT INTO @extschema@.ip_inventory_jobs AS jb (job, status, started_at, run_started_at, updated_at)
    VALUES ('retag', 'running', clock_timestamp(), clock_timestamp(), clock_timestamp())
    ON CONFLICT (job) DO UPDATE SET
        status = 'running',
        started_at = CASE WHEN jb.status = 'finished' THEN clock_timestamp() ELSE jb.started_at END,
        done_rows = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.done_rows END,
        addresses = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.addresses END,
        batches = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.batches END,
        run_started_at = clock_timestamp(), run_done_rows = 0, finished_at = NULL;
    SELECT s.generation, s.enabled_rules INTO st FROM @extschema@.ip_inventory_tag_state AS s;
    -- (The state as values: Citus joins no local table with a distributed one.)
    UPDATE @extschema@.ip_inventory_jobs AS jb SET total_rows = jb.done_rows + least(max_rows, (
        SELECT count(*) FROM @extschema@.ip_inventory AS inv
        WHERE @extschema@._ip_inventory_tags_stale(inv.tags, inv.tags_generation, st.generation, st.enabled_rules)))
    WHERE jb.job = 'retag' RETURNING * INTO j;
    RETURN j;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_retag_step(
    batch_size int, max_rows bigint, after_ip inet,
    OUT j @extschema@.ip_inventory_jobs, OUT last_ip inet, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    batch inet[];
    written bigint;
    stopped boolean := false;
    st record;
    distributed boolean := @extschema@._ip_inventory_citus_distributed();
BEGIN
    SELECT * INTO STRICT j FROM @extschema@.ip_inventory_jobs AS jb WHERE jb.job = 'retag';
    SELECT s.generation, s.enabled_rules INTO st FROM @extschema@.ip_inventory_tag_state AS s;
    IF distributed THEN
        batch := ARRAY(
            SELECT inv.ip_address FROM @extschema@.ip_inventory AS inv
            WHERE (after_ip IS NULL OR inv.ip_address > after_ip)
              AND @extschema@._ip_inventory_tags_stale(inv.tags, inv.tags_generation, st.generation, st.enabled_rules)
            ORDER BY inv.ip_address
            LIMIT CASE WHEN max_rows IS NULL THEN batch_size
                       ELSE least(batch_size, max_rows - j.run_done_rows) END);
        IF cardinality(batch) = 0 THEN
            batch := NULL;
        END IF;
    ELSE
        SELECT array_agg(p.ip_address ORDER BY p.ip_address) INTO batch FROM (
            SELECT inv.ip_address FROM @extschema@.ip_inventory AS inv
            WHERE (after_ip IS NULL OR inv.ip_address > after_ip)
              AND @extschema@._ip_inventory_tags_stale(inv.tags, inv.tags_generation, st.generation, st.enabled_rules)
            ORDER BY inv.ip_address
            LIMIT CASE WHEN max_rows IS NULL THEN batch_size
                       ELSE least(batch_size, max_rows - j.run_done_rows) END
            FOR UPDATE OF inv
        ) AS p;
    END IF;
    last_ip := after_ip;
    IF batch IS NOT NULL THEN
        IF distributed THEN
            -- (With no rule enabled it clears the tags: the same values as below.)
            written := @extschema@._ip_inventory_citus_tag(batch);
        ELSIF st.enabled_rules > 0 THEN
            written := @extschema@._ip_inventory_tag(batch);
        ELSE
            UPDATE @extschema@.ip_inventory AS inv SET tags = '{}', tag_confidence = '{}', tags_generation = st.generation
            WHERE inv.ip_address = ANY (batch);
            GET DIAGNOSTICS written = ROW_COUNT;
        END IF;
        last_ip := batch[cardinality(batch)];
        stopped := max_rows IS NOT NULL AND j.run_done_rows + cardinality(batch) >= max_rows;
        UPDATE @extschema@.ip_inventory_jobs AS jb SET
            done_rows = jb.done_rows + cardinality(batch),
            run_done_rows = jb.run_done_rows + cardinality(batch),
            addresses = jb.addresses + written, batches = jb.batches + 1,
            updated_at = clock_timestamp()
        WHERE jb.job = 'retag' RETURNING * INTO j;
        PERFORM @extschema@._ip_inventory_job_notice(j);
    END IF;
    done := batch IS NULL OR stopped;
    IF done THEN
        UPDATE @extschema@.ip_inventory_jobs AS jb SET
            status = CASE WHEN stopped THEN 'stopped' ELSE 'finished' END,
            total_rows = CASE WHEN stopped THEN jb.total_rows ELSE jb.done_rows END,
            finished_at = CASE WHEN stopped THEN NULL ELSE clock_timestamp() END,
            updated_at = clock_timestamp()
        WHERE jb.job = 'retag' RETURNING * INTO j;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_retag_summary(j @extschema@.ip_inventory_jobs)
RETURNS jsonb LANGUAGE sql SET search_path = pg_catalog, pg_temp
RETURN @extschema@._ip_inventory_job_summary(j, jsonb_build_object(
    'status', CASE WHEN j.status = 'stopped' THEN 'stopped at max_rows' ELSE 'finished' END,
    'rows', j.done_rows, 'retagged', j.addresses,
    'generation', (SELECT s.generation FROM @extschema@.ip_inventory_tag_state AS s)));

CREATE OR REPLACE PROCEDURE @extschema@.ip_inventory_retag(
    batch_size int DEFAULT 10000, max_rows bigint DEFAULT NULL, INOUT summary jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    step record;
BEGIN
    PERFORM @extschema@._ip_inventory_retag_start(batch_size, max_rows);
    COMMIT;
    step := @extschema@._ip_inventory_retag_step(batch_size, max_rows, NULL::pg_catalog.inet);
    COMMIT;
    WHILE NOT step.done LOOP
        step := @extschema@._ip_inventory_retag_step(batch_size, max_rows, step.last_ip);
        COMMIT;
    END LOOP;
    summary := @extschema@._ip_inventory_retag_summary(step.j);
END $$;

CREATE OR REPLACE VIEW @extschema@.ip_inventory_tag_report AS
SELECT t.tag, a.attack_type,
       count(*) AS addresses,
       sum(inv.observation_count)::bigint AS events,
       round(avg((inv.tag_confidence ->> t.tag)::numeric), 3) AS avg_confidence,
       round(sum((inv.tag_confidence ->> t.tag)::numeric * inv.observation_count)
             / nullif(sum(inv.observation_count), 0), 3) AS avg_event_confidence
FROM @extschema@.ip_inventory AS inv
CROSS JOIN LATERAL unnest(inv.tags) AS t(tag)
LEFT JOIN (SELECT DISTINCT ON (r.tag) r.tag, r.attack_type FROM @extschema@.ip_inventory_tag_rules AS r
           ORDER BY r.tag, r.enabled DESC, r.rule_id) AS a ON a.tag = t.tag
GROUP BY t.tag, a.attack_type;

CREATE OR REPLACE VIEW @extschema@.ip_inventory_attack_type_report AS
SELECT per.attack_type,
       count(*) AS addresses,
       sum(per.observation_count)::bigint AS events,
       round(avg(per.confidence), 3) AS avg_confidence,
       round(sum(per.confidence * per.observation_count) / nullif(sum(per.observation_count), 0), 3) AS avg_event_confidence
FROM (SELECT inv.ip_address, inv.observation_count, a.attack_type,
             max((inv.tag_confidence ->> t.tag)::numeric) AS confidence
      FROM @extschema@.ip_inventory AS inv
      CROSS JOIN LATERAL unnest(inv.tags) AS t(tag)
      JOIN (SELECT DISTINCT ON (r.tag) r.tag, r.attack_type FROM @extschema@.ip_inventory_tag_rules AS r
            WHERE r.attack_type IS NOT NULL ORDER BY r.tag, r.enabled DESC, r.rule_id) AS a ON a.tag = t.tag
      GROUP BY inv.ip_address, inv.observation_count, a.attack_type) AS per
GROUP BY per.attack_type;

CREATE OR REPLACE VIEW @extschema@.ip_inventory_tag_status AS
SELECT s.generation, s.enabled_rules, s.changed_at AS rules_changed_at,
       (SELECT count(*) FROM @extschema@.ip_inventory AS inv
        WHERE @extschema@._ip_inventory_tags_stale(inv.tags, inv.tags_generation,
                  (SELECT t.generation FROM @extschema@.ip_inventory_tag_state AS t),
                  (SELECT t.enabled_rules FROM @extschema@.ip_inventory_tag_state AS t))) AS stale_rows,
       (SELECT count(*) FROM @extschema@.ip_inventory AS inv WHERE cardinality(inv.tags) > 0) AS tagged_rows
FROM @extschema@.ip_inventory_tag_state AS s;

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_keys() IS 'The keys of a tag rule condition and the JSON type of their values (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_check(jsonb, int) IS 'Raises unless the jsonb is a valid tag rule condition (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_condition_sql(jsonb) IS 'A valid tag rule condition as a boolean SQL expression over the inventory row inv, values as quoted literals (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_event_kind(regtype) IS 'The JSON type an event condition takes for a column type, NULL for types it refuses (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_event_check(regclass, jsonb) IS 'Raises unless the jsonb is a valid event condition over the table''s columns (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_event_ok(regclass, jsonb) IS 'Whether an event condition is still valid over the table''s columns (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_event_sql(regclass, jsonb) IS 'A valid event condition as a boolean SQL expression over the event row e, values as literals cast to the column types (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_event_tags_sql(regclass, text) IS 'The event-tag subquery of the enabled event rules of a table, for its enriched view (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_sql() IS 'The tagging subquery of the enabled rules over the inventory row inv (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_apply(inet[]) IS 'The tagging UPDATE of the rules in force, generated when the rules change (internal: _ip_inventory_tag).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_rule_check() IS 'Trigger: checks a tag rule as it is written (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_recompile() IS 'A new rules generation, compiled expression and tagging statement; returns the event tables of the enabled event rules before and after (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_rules_changed() IS 'Trigger: a new rules generation and compiled expression after any change of the rules, and the enriched views of their event tables replaced (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_list_changed(regclass, text) IS 'A network list changed: a new rules generation when an enabled address rule names it, so that ip_inventory_retag re-tags (internal: the list tables'' trigger, ip_list_register, ip_list_unregister).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tag(inet[]) IS 'Tags the given inventory rows by the enabled rules, writing those whose tags change (internal: after enrichment, ip_inventory_retag).';

COMMENT ON FUNCTION @extschema@._ip_inventory_tags_stale(text[], bigint, bigint, int) IS 'Whether a row''s tags are out of date for the rules in force (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_retag_start(int, bigint) IS 'Checks and starts or resumes a retag (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_retag_step(int, bigint, inet) IS 'One batch of ip_inventory_retag (internal).';

COMMENT ON FUNCTION @extschema@._ip_inventory_retag_summary(@extschema@.ip_inventory_jobs) IS 'The summary ip_inventory_retag returns (internal).';

COMMENT ON PROCEDURE @extschema@.ip_inventory_retag(int, bigint, jsonb) IS
    'Re-tags, in batches committed one by one, the inventory rows whose tags were computed under another generation of the tag rules. Resumable; run it after changing ip_inventory_tag_rules.';

COMMENT ON VIEW @extschema@.ip_inventory_tag_report IS
    'Per tag: its attack type, tagged addresses, their events (observation_count) and average confidence, per address and weighted by events.';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_report.tag IS 'The tag.';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_report.attack_type IS 'The attack type of the rules giving the tag.';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_report.addresses IS 'Addresses with the tag.';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_report.events IS 'Their observations in the attached event tables (sum of observation_count).';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_report.avg_confidence IS 'Average confidence of the tag over the addresses.';

COMMENT ON COLUMN @extschema@.ip_inventory_tag_report.avg_event_confidence IS 'Average confidence of the tag over the events (each address weighted by its observations).';

COMMENT ON VIEW @extschema@.ip_inventory_attack_type_report IS
    'Per attack type: addresses with a tag of that type, their events (observation_count) and average confidence (an address''s highest of its tags of that type), per address and weighted by events.';

COMMENT ON COLUMN @extschema@.ip_inventory_attack_type_report.attack_type IS 'The attack type.';

COMMENT ON COLUMN @extschema@.ip_inventory_attack_type_report.addresses IS 'Addresses with a tag of this attack type.';

COMMENT ON COLUMN @extschema@.ip_inventory_attack_type_report.events IS 'Their observations (sum of observation_count).';

COMMENT ON COLUMN @extschema@.ip_inventory_attack_type_report.avg_confidence IS 'Average confidence over the addresses.';

COMMENT ON COLUMN @extschema@.ip_inventory_attack_type_report.avg_event_confidence IS 'Average confidence over the events.';

COMMENT ON VIEW @extschema@.ip_inventory_tag_status IS
    'The tag rules'' generation, enabled rules, when they last changed, the rows whose tags are stale (run ip_inventory_retag()) and the tagged rows.';

REVOKE ALL ON @extschema@.ip_inventory_tag_rules FROM PUBLIC;

REVOKE ALL ON @extschema@.ip_inventory_tag_state FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_condition_sql(jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_sql() FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_event_sql(regclass, jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_event_tags_sql(regclass, text) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_rules_changed() FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_recompile() FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_list_changed(regclass, text) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag(inet[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_apply(inet[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retag_start(int, bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retag_step(int, bigint, inet) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retag_summary(@extschema@.ip_inventory_jobs) FROM PUBLIC;

REVOKE ALL ON PROCEDURE @extschema@.ip_inventory_retag(int, bigint, jsonb) FROM PUBLIC;

CREATE OR REPLACE VIEW @extschema@.ip_inventory_coverage AS
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

CREATE OR REPLACE VIEW @extschema@.ip_inventory_asn_sources AS
SELECT asn_source,
       count(*) AS ips,
       round(100.0 * count(*) / sum(count(*)) OVER (), 2) AS pct_of_ips_with_asn
FROM @extschema@.ip_inventory
WHERE asn_number IS NOT NULL
GROUP BY asn_source;

CREATE OR REPLACE VIEW @extschema@.ip_inventory_top_countries AS
SELECT rank() OVER (ORDER BY count(*) DESC) AS rank,
       geo_country,
       max(geo_country_name) AS geo_country_name,
       count(*) AS ips,
       sum(observation_count) AS observations
FROM @extschema@.ip_inventory
WHERE geo_country IS NOT NULL
GROUP BY geo_country;

CREATE OR REPLACE VIEW @extschema@.ip_inventory_top_asns AS
SELECT rank() OVER (ORDER BY count(*) DESC) AS rank,
       asn_number,
       max(asn_org) AS asn_org,
       count(*) AS ips,
       sum(observation_count) AS observations
FROM @extschema@.ip_inventory
WHERE asn_number IS NOT NULL
GROUP BY asn_number;

CREATE OR REPLACE VIEW @extschema@.ip_inventory_staleness AS
SELECT 'maxmind' AS source, NULL::interval AS ttl,
       count(*) AS eligible,
       count(*) FILTER (WHERE maxmind_ts IS NULL) AS never,
       count(*) FILTER (WHERE maxmind_ts IS NOT NULL
                        AND @extschema@._ip_inventory_maxmind_pending(maxmind_ts, maxmind_build, maxmind_asn_build,
                                                         b.city_build, b.asn_build)) AS stale,
       min(maxmind_ts) AS oldest
FROM @extschema@.ip_inventory, @extschema@._ip_inventory_builds() AS b WHERE @extschema@._ip_inventory_maxmind_serves(ip_class)
UNION ALL
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

CREATE OR REPLACE FUNCTION @extschema@.ip_inventory_health()
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

CREATE OR REPLACE VIEW @extschema@.ip_inventory_stats AS
SELECT s.source, s.metric, s.error_kind, s.kind, s.value, s.stats_reset
FROM @extschema@._ip_inventory_stats_counters() AS s
UNION ALL
SELECT i.name, 'build_age_seconds', NULL, 'gauge', extract(epoch FROM i.age)::bigint, NULL
FROM @extschema@.maxmind_info() AS i
WHERE i.age IS NOT NULL
UNION ALL
SELECT 'greynoise', g.metric, NULL, 'gauge', g.value, NULL
FROM @extschema@.greynoise_quota() AS q,
     LATERAL (VALUES ('quota_used', q.used), ('quota_limit', q.daily_quota),
                     ('quota_warning', current_setting('ip_inventory.greynoise_quota_warning')::bigint),
                     ('quota_critical', current_setting('ip_inventory.greynoise_quota_critical')::bigint)) AS g(metric, value);

CREATE OR REPLACE VIEW @extschema@.ip_inventory_latency AS
SELECT h.source, h.metric, h.le, h.buckets, h.sum_seconds, h.count
FROM @extschema@._ip_inventory_latency_histograms() AS h;

CREATE OR REPLACE FUNCTION @extschema@.ip_inventory_backlog(cap bigint DEFAULT 10000)
RETURNS TABLE (source text, enabled boolean, ttl interval, due bigint, capped boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    maxmind_ready boolean := EXISTS (SELECT FROM @extschema@._ip_inventory_builds() AS b
                                     WHERE b.city_build IS NOT NULL OR b.asn_build IS NOT NULL);
BEGIN
    IF cap IS NULL OR cap < 1 THEN
        RAISE EXCEPTION 'ip_inventory_backlog: cap must be at least 1, not %', coalesce(cap::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    FOREACH source IN ARRAY ARRAY['cymru', 'greynoise', 'rdns'] LOOP
        enabled := @extschema@._ip_inventory_source_enabled(source);
        ttl := @extschema@.ip_inventory_ttl(source);
        due := 0;
        IF enabled THEN
            EXECUTE format($sql$
                SELECT count(*) FROM (
                    SELECT FROM @extschema@.ip_inventory AS i
                    WHERE @extschema@._ip_inventory_source_serves(%1$L, i.ip_address, i.ip_class, i.asn_source)
                      AND (i.%2$I IS NULL OR i.%2$I < now() - $1)
                      AND (%1$L <> 'cymru' OR i.maxmind_ts IS NOT NULL OR NOT $2)
                      AND NOT i.ip_address <<= ANY ($3)
                    LIMIT $4) AS d $sql$,
                source, source || '_ts')
              INTO due
              USING ttl, maxmind_ready, @extschema@._ip_inventory_skip_networks(source)::cidr[], cap;
        END IF;
        capped := due >= cap;
        RETURN NEXT;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.ip_inventory_source_coverage()
RETURNS TABLE (source text, enabled boolean, eligible bigint, answered bigint, pending bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.source,
           CASE WHEN s.source = 'maxmind'
                THEN EXISTS (SELECT FROM @extschema@._ip_inventory_builds() AS b
                             WHERE b.city_build IS NOT NULL OR b.asn_build IS NOT NULL)
                ELSE @extschema@._ip_inventory_source_enabled(s.source) END,
           s.eligible, s.eligible - s.never, s.never + s.stale
    FROM @extschema@.ip_inventory_staleness AS s
$$;

GRANT SELECT ON @extschema@.ip_inventory_stats TO pg_monitor;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_stats_counters() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION @extschema@._ip_inventory_stats_counters() TO pg_monitor;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_latency_histograms() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION @extschema@._ip_inventory_latency_histograms() TO pg_monitor;

GRANT SELECT ON @extschema@.ip_inventory_latency TO pg_monitor;

REVOKE ALL ON FUNCTION @extschema@.ip_inventory_backlog(bigint) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION @extschema@.ip_inventory_backlog(bigint) TO pg_monitor;

REVOKE ALL ON FUNCTION @extschema@.ip_inventory_source_coverage() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION @extschema@.ip_inventory_source_coverage() TO pg_monitor;

REVOKE ALL ON FUNCTION @extschema@._ip_inventory_count_recorded(bigint, bigint, bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@.ip_inventory_stats_reset() FROM PUBLIC;

COMMENT ON VIEW @extschema@.ip_inventory_stats IS
    'Operational counters, cluster-wide since the server started or ip_inventory_stats_reset(): MaxMind lookups, misses, sampled latency and errors by kind per database (city, asn, custom); City record cache hits and misses; requests, latency, failures by kind and answers per network source (cymru, greynoise, rdns); inventory writes; reloads; gauges for the generation, GreyNoise quota and database age. Needs shared_preload_libraries.';

COMMENT ON FUNCTION @extschema@._ip_inventory_stats_counters() IS
    'The counters and the generation behind ip_inventory_stats (this session''s pending counts included).';

COMMENT ON VIEW @extschema@.ip_inventory_latency IS
    'Latency histograms, cluster-wide since the server started or ip_inventory_stats_reset(): MaxMind lookups per database family (lookup_seconds, timed lookups only) and network requests per source (request_seconds). le: bucket upper bounds in seconds; buckets: cumulative counts per bound; count: all (+Inf); sum_seconds. Needs shared_preload_libraries.';

COMMENT ON FUNCTION @extschema@._ip_inventory_latency_histograms() IS
    'The latency histograms behind ip_inventory_latency (this session''s pending counts included).';

COMMENT ON FUNCTION @extschema@.ip_inventory_backlog(bigint) IS
    'Per network source (cymru, greynoise, rdns): switched on, TTL, rows its next cascade_refresh would consider due (counted up to cap, with the due-row indexes), and whether the count stopped at cap.';

COMMENT ON FUNCTION @extschema@.ip_inventory_source_coverage() IS
    'Per source (maxmind, cymru, greynoise, rdns): whether it is in service, rows it serves, rows it answered at least once, rows pending (never answered or stale; MaxMind: another build). Reads the whole inventory.';

COMMENT ON FUNCTION @extschema@.ip_inventory_stats_reset() IS
    'Zeroes every ip_inventory_stats counter cluster-wide (gauges stay) and returns the reset time.';

COMMENT ON FUNCTION @extschema@._ip_inventory_count_recorded(bigint, bigint, bigint) IS
    'Counts inventory writes of the current transaction for ip_inventory_stats (internal: called by the observe trigger, backfill and enrich_pending; needs INSERT or UPDATE on ip_inventory).';

CREATE OR REPLACE FUNCTION "maxmind_reload"() RETURNS jsonb 
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'maxmind_reload_wrapper';

COMMENT ON FUNCTION @extschema@.maxmind_reload() IS
    'Validate every configured database in full, then make every backend switch to it at its next lookup; on failure nothing changes. Needs shared_preload_libraries.';

REVOKE ALL ON FUNCTION @extschema@.maxmind_reload() FROM PUBLIC;

CREATE OR REPLACE FUNCTION "maxmind_verify"(
	"path" TEXT, 
	"kind" TEXT DEFAULT 'any' 
) RETURNS jsonb 
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'maxmind_verify_wrapper';

COMMENT ON FUNCTION @extschema@.maxmind_verify(text, text) IS
    'Fully verify a MaxMind DB file without installing it; kind is city, asn, anonymous, isp, connection_type or any.';

REVOKE ALL ON FUNCTION @extschema@.maxmind_verify(text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION "mmdb_lookup"(
	"ip" inet, 
	"database" TEXT 
) RETURNS jsonb 
STRICT STABLE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'mmdb_lookup_wrapper';

COMMENT ON FUNCTION @extschema@.mmdb_lookup(inet, text) IS
    'Whole record of any MaxMind DB file as {"network", "data"}: database is city, asn, anonymous, isp, connection_type, a name from ip_inventory.databases, or an absolute path (superusers and pg_read_server_files only).';

CREATE OR REPLACE FUNCTION "mmdb_lookup"(
	"ip" inet, 
	"database" TEXT, 
	"path" TEXT[] 
) RETURNS jsonb 
STRICT STABLE PARALLEL SAFE 
LANGUAGE c 
AS 'MODULE_PATHNAME', 'mmdb_lookup_path_wrapper';

COMMENT ON FUNCTION @extschema@.mmdb_lookup(inet, text, text[]) IS
    'The value at path of the record (MaxMind''s data path: map keys, array indexes, negative from the end), decoding nothing else; NULL when there is no record or nothing at the path.';

CREATE OR REPLACE FUNCTION "mmdb_networks"(
	"database" TEXT, 
	"within" cidr DEFAULT NULL 
) RETURNS TABLE (
	"network" cidr,  
	"data" jsonb  
)
STABLE PARALLEL SAFE
LANGUAGE c 
AS 'MODULE_PATHNAME', 'mmdb_networks_wrapper';

COMMENT ON FUNCTION @extschema@.mmdb_networks(text, cidr) IS
    'Every network of a MaxMind DB file (under within) that has a record, with the record as jsonb, in address order; streamed and cancellable. Not granted to PUBLIC: it exports a whole licensed database.';

REVOKE ALL ON FUNCTION @extschema@.mmdb_networks(text, cidr) FROM PUBLIC;

-- 0.1.0 -> 0.2.0, hand-written part after the replaced objects: what 0.2.0 no longer has.
-- The SQL that recorded observations (now aggregated in Rust, src/observe.rs).
DROP FUNCTION @extschema@.ip_inventory_record_sql(text, text[], text, text, boolean);
-- Advisory-lock job exclusion (any role could take the key): replaced by
-- _ip_inventory_job_start/_release/_holder (src/jobs.rs).
DROP FUNCTION @extschema@.ip_inventory_job_holder(text);
DROP FUNCTION @extschema@.ip_inventory_job_lock(text);
DROP FUNCTION @extschema@.ip_inventory_job_start(text);
DROP FUNCTION @extschema@.ip_inventory_job_release(text);
-- The due-row indexes on _ip_inventory_source_serves (as in sql/cascade.sql).
CREATE INDEX ip_inventory_cymru_due ON @extschema@.ip_inventory (cymru_ts NULLS FIRST)
    WHERE @extschema@._ip_inventory_source_serves('cymru', ip_address, ip_class, asn_source);
CREATE INDEX ip_inventory_greynoise_due ON @extschema@.ip_inventory (greynoise_ts NULLS FIRST)
    WHERE @extschema@._ip_inventory_source_serves('greynoise', ip_address, ip_class, asn_source);
CREATE INDEX ip_inventory_rdns_due ON @extschema@.ip_inventory (rdns_ts NULLS FIRST)
    WHERE @extschema@._ip_inventory_source_serves('rdns', ip_address, ip_class, asn_source);
-- The tag rules' triggers (as in sql/tags.sql), on their functions created above.
CREATE TRIGGER ip_inventory_tag_rule_check BEFORE INSERT OR UPDATE ON @extschema@.ip_inventory_tag_rules
    FOR EACH ROW EXECUTE FUNCTION @extschema@._ip_inventory_tag_rule_check();
CREATE TRIGGER ip_inventory_tag_rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.ip_inventory_tag_rules
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._ip_inventory_tag_rules_changed();
