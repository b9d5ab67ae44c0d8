//! ip_inventory: IP enrichment for honeypot and threat-intelligence data as plain SQL.
//!
//! This crate is the thin pgrx layer; the logic lives in `ip_inventory_core` (`core/`).
//! - `gucs`: every setting; `shmem`: cluster-wide state; `errors`: every error we raise;
//! - `datum`: SQL value translation; `readers`: per-backend database readers;
//! - `lookup`: the lookup functions; `admin`: reload, info, age, verify;
//! - `cascade`: the network sources (Team Cymru, GreyNoise, reverse DNS) for cascade_refresh;
//! - `privacy`: ip_anonymize and ip_pseudonymize;
//! - `metrics`: the counters behind ip_inventory_stats;
//! - `observe`: event tables (attach, the observe trigger, backfill reads, retention);
//! - `security`: acting as a table's owner or the extension's owner; `jobs`: job locks.
//!
//! SQL objects other than functions live in `sql/`.

// Functions return `Result<_, ErrorReport>`: pgrx raises an unboxed ErrorReport with its own
// SQLSTATE (a boxed one would become a generic 22000), and the error path is cold.
#![allow(clippy::result_large_err)]

use pgrx::prelude::*;

mod admin;
mod cascade;
mod claims;
mod datum;
mod errors;
mod gucs;
mod jobs;
mod lists;
mod lookup;
mod metrics;
mod mmdb_scan;
mod observe;
mod privacy;
mod readers;
mod security;
mod shmem;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/types.sql", name = "types", bootstrap);
extension_sql_file!(
    "../sql/inventory.sql",
    name = "inventory",
    requires = ["types", lookup::ip_canonical]
);
extension_sql_file!(
    "../sql/maxmind.sql",
    name = "maxmind",
    requires = ["inventory", "maxmind_info_acl", lookup::enrich_ip]
);
extension_sql_file!(
    "../sql/observe.sql",
    name = "observe",
    requires = [
        "inventory",
        lookup::ip_class,
        lookup::ip_inventory_maxmind,
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
        admin::maxmind_age
    ]
);
extension_sql_file!(
    "../sql/cascade.sql",
    name = "cascade",
    requires = [
        "jobs",
        "network_functions_acl",
        "claims",
        admin::ip_inventory_ttl,
        cascade::ip_inventory_fetch
    ]
);
extension_sql_file!(
    "../sql/retention.sql",
    name = "retention",
    requires = ["observe", "event_tables", privacy::ip_anonymize]
);
extension_sql_file!(
    "../sql/reports.sql",
    name = "reports",
    requires = [
        "cascade",
        "maxmind",
        admin::ip_inventory_ttl,
        admin::maxmind_age
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
    "../sql/stats.sql",
    name = "stats",
    requires = [
        "cascade",
        metrics::ip_inventory_stats_counters,
        metrics::ip_inventory_stats_reset,
        metrics::ip_inventory_count_recorded,
        admin::maxmind_info
    ]
);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    shmem::init();
    metrics::init();
    lists::init();
}
