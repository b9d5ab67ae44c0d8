-- The data the extension owns: the inventory (one row per IP address ever observed), the
-- event tables attached to it, the batch jobs' progress, the network sources' failures and the
-- GreyNoise quota. Every table is dumped by pg_dump with its rows.

-- The inventory: one row per IP address ever observed.
--
-- Observation columns change only when events are recorded (the observe trigger, backfill);
-- each enrichment source writes only its own columns, its timestamp and its key in
-- `enrichment`.

CREATE TABLE @extschema@.ip_inventory (
    ip_address          inet PRIMARY KEY,
    first_seen_at       timestamptz NOT NULL,
    last_seen_at        timestamptz NOT NULL,
    -- 0: added by cascade_refresh_now or the refresh queue, not observed yet.
    observation_count   bigint NOT NULL CHECK (observation_count >= 0),
    ip_class            text NOT NULL,

    geo_country         text,
    geo_country_name    text,
    geo_city            text,
    geo_subdivision     text,
    geo_latitude        double precision,
    geo_longitude       double precision,
    geo_network         cidr,
    maxmind_build       timestamptz,
    maxmind_asn_build   timestamptz,
    maxmind_ts          timestamptz,

    asn_number          bigint,
    asn_org             text,
    asn_network         cidr,
    asn_source          text CHECK (asn_source IN ('maxmind', 'cymru')),

    cymru_ts            timestamptz,
    greynoise_ts        timestamptz,
    rdns_ts             timestamptz,

    enrichment          jsonb NOT NULL DEFAULT '{}',

    -- Names the operators' existing queries use.
    is_scanner          boolean GENERATED ALWAYS AS ((enrichment -> 'greynoise' ->> 'noise')::boolean) STORED,
    scanner_ts          timestamptz GENERATED ALWAYS AS (greynoise_ts) STORED,
    enrichment_ts       timestamptz GENERATED ALWAYS AS (GREATEST(maxmind_ts, cymru_ts, greynoise_ts, rdns_ts)) STORED,

    -- MaxMind Anonymous-IP flags (ip_inventory.anonymous_db), written with the MaxMind columns;
    -- NULL when the database holds no anonymizer data for the address or is not configured.
    -- Added after 0.1.0: at the end, where ALTER TABLE puts them on an upgrade.
    is_anonymous         boolean,
    is_anonymous_vpn     boolean,
    is_hosting_provider  boolean,
    is_public_proxy      boolean,
    is_residential_proxy boolean,
    is_tor_exit_node     boolean,

    -- Tags of the enabled tag rules the address matches (sql/tags.sql), materialized: written
    -- after each enrichment of the row and by ip_inventory_retag() after the rules change.
    tags                 text[] NOT NULL DEFAULT '{}',
    tag_confidence       jsonb NOT NULL DEFAULT '{}',
    tags_generation      bigint,

    -- MaxMind ISP (ip_inventory.isp_db) and Connection-Type (ip_inventory.connection_type_db)
    -- data, written with the MaxMind columns as the anonymizer flags are; NULL when the
    -- database holds none for the address or is not configured. Added after the tags (the
    -- upgrade appends them in this order).
    isp                  text,
    isp_organization     text,
    mobile_country_code  text,
    mobile_network_code  text,
    connection_type      text,

    -- One row per address: IPv4-mapped addresses are kept as IPv4, without netmask; only
    -- rows merged by retention (ip_inventory_retention) hold a network.
    CONSTRAINT ip_inventory_ip_address_check
        CHECK (ip_address = @extschema@.ip_canonical(ip_address) OR ip_class = 'anonymized'),
    CHECK (first_seen_at <= last_seen_at),
    CHECK ((asn_number IS NULL) = (asn_source IS NULL))
) WITH (fillfactor = 90);
-- The free tenth of each page lets the updates of a row (observations, re-enrichment) write
-- the new version on the same page without new index entries (HOT).

-- No secondary indexes: the report views aggregate the whole table (sequential scans),
-- enrich_pending walks the primary key in address order, and recording upserts by primary
-- key; every further index would slow each upsert and enrichment. docs/inventory.md shows
-- the plans.

SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory', '');

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

-- The ASN rule, written once: whether an ASN offered by an enrichment source replaces the
-- row's (maxmind when the ASN database was consulted, cymru; anything else never does).
-- MaxMind's answer wins, and a MaxMind build without an ASN clears the one an older build
-- gave, but not one Team Cymru gave; Team Cymru's never replaces MaxMind's, and replaces
-- or clears its own. The writers set asn_number, asn_org, asn_network and asn_source
-- together by it (sql/maxmind.sql, sql/cascade.sql).
CREATE FUNCTION @extschema@._ip_inventory_asn_replaced(offered_by text, offered_asn bigint, asn_source text)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE offered_by
    WHEN 'maxmind' THEN offered_asn IS NOT NULL OR asn_source IS DISTINCT FROM 'cymru'
    WHEN 'cymru' THEN asn_source IS DISTINCT FROM 'maxmind'
    ELSE false END;
COMMENT ON FUNCTION @extschema@._ip_inventory_asn_replaced(text, bigint, text) IS
    'Whether an ASN offered by maxmind or cymru replaces the row''s (internal: the one ASN rule).';

-- Progress of the batch jobs (backfill, enrich_pending): committed with each batch, so other
-- sessions can watch it, and a rerun after a crash knows where to continue.
CREATE TABLE @extschema@.ip_inventory_jobs (
    job             text PRIMARY KEY,
    event_table     regclass,
    ip_columns      text[],
    ts_column       text,
    resume_after    tid,
    total_rows      bigint,
    done_rows       bigint NOT NULL DEFAULT 0,
    addresses       bigint NOT NULL DEFAULT 0,
    new_addresses   bigint NOT NULL DEFAULT 0,
    batches         bigint NOT NULL DEFAULT 0,
    status          text NOT NULL CHECK (status IN ('running', 'stopped', 'finished')),
    started_at      timestamptz NOT NULL,
    run_started_at  timestamptz NOT NULL,
    run_done_rows   bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL,
    finished_at     timestamptz
);
-- One backfill job per event table.
CREATE UNIQUE INDEX ip_inventory_jobs_event_table_key ON @extschema@.ip_inventory_jobs (event_table);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory_jobs', '');

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

-- Why a source could not answer about an address; removed when it answers.
CREATE TABLE @extschema@.ip_inventory_failures (
    ip_address      inet NOT NULL,
    source          text NOT NULL CHECK (source IN ('cymru', 'greynoise', 'rdns')),
    attempts        int NOT NULL CHECK (attempts > 0),
    error           text NOT NULL,
    first_failed_at timestamptz NOT NULL,
    last_failed_at  timestamptz NOT NULL,
    PRIMARY KEY (ip_address, source)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory_failures', '');
COMMENT ON TABLE @extschema@.ip_inventory_failures IS
    'Addresses a network source failed to answer about (timeout, reset, garbage, HTTP 5xx ...), with the last error; the row stays due and the next cascade_refresh() asks again. Removed when the source answers.';

-- The GreyNoise calls counted per UTC day, saved by every refresh so that a restart (which
-- clears shared memory) does not forget the calls already made today.
CREATE TABLE @extschema@.ip_inventory_quota (
    source  text PRIMARY KEY CHECK (source = 'greynoise'),
    day     date NOT NULL,
    used    int NOT NULL CHECK (used >= 0)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory_quota', '');
COMMENT ON TABLE @extschema@.ip_inventory_quota IS
    'GreyNoise calls made on a UTC day, as last saved by a refresh; the shared-memory count starts from it after a restart. Read greynoise_quota() for the live count.';

-- The event tables whose inserts feed the inventory. Written only by ip_inventory_attach and
-- ip_inventory_detach (src/observe.rs), which check that the caller owns the table and may
-- feed the inventory; the observe trigger, backfill and retention read their columns here.
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
COMMENT ON TABLE @extschema@.ip_inventory_observed IS
    'Event tables attached to ip_inventory (ip_inventory_attach): their inserts are recorded, retention applies to them. Read it through ip_inventory_observed_tables.';
COMMENT ON COLUMN @extschema@.ip_inventory_observed.event_table IS 'The event table.';
COMMENT ON COLUMN @extschema@.ip_inventory_observed.ip_columns IS 'Its columns holding addresses (inet or cidr).';
COMMENT ON COLUMN @extschema@.ip_inventory_observed.ts_column IS 'Its event time column (NULL: the time of the insert).';
COMMENT ON COLUMN @extschema@.ip_inventory_observed.attached_by IS 'The role that attached it.';
COMMENT ON COLUMN @extschema@.ip_inventory_observed.attached_at IS 'When it was attached.';
COMMENT ON COLUMN @extschema@.ip_inventory_observed.enriched_views IS 'The views ip_inventory_enriched_view() created over it, owned by its owner; ip_inventory_detach() drops them.';
