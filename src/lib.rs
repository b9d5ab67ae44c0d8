//! ip_inventory: IP enrichment for honeypot and threat-intelligence data as plain SQL.
//!
//! This crate is the thin pgrx layer; the logic lives in `ip_inventory_core` (`core/`), and
//! the glue mirrors its domains (map: docs/development.md):
//! - `mmdb`: per-backend readers, the lookup functions, reload/info/verify/age;
//! - `sources`: the network sources' fetch, claims and TTLs for cascade_refresh;
//! - `inventory`: event tables (attach, the observe trigger, backfill reads, event retention)
//!   and job locks;
//! - `privacy`: ip_anonymize and ip_pseudonymize; `metrics`: the counters of ip_inventory_stats;
//! - `citus`: recognizing Citus shards and distributed tables (the rest is sql/citus.sql);
//! - cross-cutting: `gucs` (every setting), `shmem` (cluster-wide state), `errors` (every
//!   error we raise), `datum` (SQL values), `security` (acting as a table's or the
//!   extension's owner).
//!
//! SQL objects other than functions live in `sql/`.

// Functions return `Result<_, ErrorReport>`: pgrx raises an unboxed ErrorReport with its own
// SQLSTATE (a boxed one would become a generic 22000), and the error path is cold.
#![allow(clippy::result_large_err)]

use pgrx::prelude::*;

mod citus;
mod datum;
mod errors;
mod gucs;
mod inventory;
mod lists;
mod metrics;
mod mmdb;
mod privacy;
mod security;
mod shmem;
mod sources;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/types.sql", name = "types", bootstrap);
extension_sql_file!(
    "../sql/inventory.sql",
    name = "inventory",
    requires = ["types", mmdb::lookup::ip_canonical]
);
extension_sql_file!(
    "../sql/maxmind.sql",
    name = "maxmind",
    requires = ["inventory", "maxmind_info_acl", mmdb::lookup::enrich_ip]
);
extension_sql_file!(
    "../sql/observe.sql",
    name = "observe",
    requires = [
        "inventory",
        "maxmind",
        mmdb::lookup::ip_class,
        mmdb::lookup::ip_inventory_maxmind,
        mmdb::lookup::ip_inventory_maxmind_json,
        mmdb::lookup::ip_inventory_anonymous,
        mmdb::lookup::ip_inventory_isp,
        mmdb::lookup::ip_inventory_connection_type,
        metrics::ip_inventory_count_recorded
    ]
);
extension_sql_file!(
    "../sql/jobs.sql",
    name = "jobs",
    requires = [
        "observe",
        "maxmind",
        "event_tables",
        "job_locks",
        mmdb::admin::maxmind_age
    ]
);
extension_sql_file!(
    "../sql/cascade.sql",
    name = "cascade",
    requires = [
        "jobs",
        "network_functions_acl",
        "claims",
        "ttl_comment",
        sources::ip_inventory_ttl,
        sources::fetch::ip_inventory_fetch
    ]
);
extension_sql_file!(
    "../sql/verdict.sql",
    name = "verdict",
    requires = [
        "cascade",
        "refresh_queue",
        mmdb::lookup::ip_inventory_maxmind,
        sources::ip_inventory_ttl
    ]
);
extension_sql_file!(
    "../sql/retention.sql",
    name = "retention",
    requires = ["observe", "event_tables", privacy::ip_anonymize]
);
extension_sql_file!(
    "../sql/citus.sql",
    name = "citus",
    requires = ["observe", "jobs", "cascade", "retention", "maxmind"]
);
extension_sql_file!(
    "../sql/reports.sql",
    name = "reports",
    requires = [
        "cascade",
        "maxmind",
        sources::ip_inventory_ttl,
        mmdb::admin::maxmind_age
    ]
);
extension_sql_file!(
    "../sql/lists.sql",
    name = "lists",
    requires = [
        "inventory",
        lists::ip_list_match,
        lists::ip_list_contains,
        lists::ip_list_register,
        lists::ip_list_unregister,
        lists::ip_inventory_list_stats
    ]
);
extension_sql_file!(
    "../sql/tags.sql",
    name = "tags",
    requires = ["inventory", "jobs", "lists", "citus"]
);
extension_sql_file!(
    "../sql/stats.sql",
    name = "stats",
    requires = [
        "cascade",
        "reports",
        metrics::ip_inventory_latency_histograms,
        metrics::ip_inventory_stats_counters,
        metrics::ip_inventory_stats_reset,
        metrics::ip_inventory_count_recorded,
        mmdb::admin::maxmind_info
    ]
);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    shmem::init();
    metrics::init();
    lists::init();
}
