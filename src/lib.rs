//! ip_inventory: IP enrichment for honeypot and threat-intelligence data as plain SQL.
//!
//! This crate is the thin pgrx layer; the logic lives in `ip_inventory_core` (`core/`).
//! - `gucs`: every setting; `shmem`: cluster-wide state; `errors`: every error we raise;
//! - `datum`: SQL value translation; `readers`: per-backend database readers;
//! - `lookup`: the lookup functions; `admin`: reload, info, age, verify;
//! - `cascade`: the network sources (Team Cymru, GreyNoise, reverse DNS) for cascade_refresh;
//! - `privacy`: ip_anonymize and ip_pseudonymize;
//! - `metrics`: the counters behind ip_inventory_stats.
//!
//! SQL objects other than functions live in `sql/`.

// Functions return `Result<_, ErrorReport>`: pgrx raises an unboxed ErrorReport with its own
// SQLSTATE (a boxed one would become a generic 22000), and the error path is cold.
#![allow(clippy::result_large_err)]

use pgrx::prelude::*;

mod admin;
mod cascade;
mod datum;
mod errors;
mod gucs;
mod lookup;
mod metrics;
mod privacy;
mod readers;
mod shmem;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/types.sql", name = "types", bootstrap);
extension_sql_file!(
    "../sql/inventory.sql",
    name = "inventory",
    requires = ["types", lookup::ip_canonical]
);
extension_sql_file!(
    "../sql/observe.sql",
    name = "observe",
    requires = [
        "inventory",
        lookup::ip_class,
        lookup::ip_canonical,
        lookup::ip_inventory_maxmind,
        metrics::ip_inventory_count_recorded
    ]
);
extension_sql_file!(
    "../sql/jobs.sql",
    name = "jobs",
    requires = [
        "observe",
        lookup::enrich_ip,
        admin::maxmind_age,
        admin::maxmind_info
    ]
);
extension_sql_file!(
    "../sql/reports.sql",
    name = "reports",
    requires = [
        "cascade",
        admin::ip_inventory_ttl,
        admin::maxmind_info,
        admin::maxmind_age
    ]
);
extension_sql_file!(
    "../sql/cascade.sql",
    name = "cascade",
    requires = [
        "jobs",
        admin::ip_inventory_ttl,
        cascade::ip_inventory_fetch,
        cascade::ip_inventory_greynoise_state,
        cascade::ip_inventory_greynoise_seed
    ]
);
extension_sql_file!(
    "../sql/privacy.sql",
    name = "privacy",
    requires = ["observe", privacy::ip_anonymize]
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
extension_sql_file!(
    "../sql/rust_functions.sql",
    name = "rust_functions",
    requires = [
        admin::maxmind_reload,
        admin::maxmind_verify,
        admin::ip_inventory_ttl,
        lookup::enrich_ip,
        lookup::ip_inventory_maxmind,
        privacy::ip_anonymize,
        privacy::ip_pseudonymize
    ],
    finalize
);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    shmem::init();
    metrics::init();
}
