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
