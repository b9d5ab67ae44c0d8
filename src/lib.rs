//! ip_inventory: IP enrichment for honeypot and threat-intelligence data as plain SQL.
//!
//! This crate is the thin pgrx layer; the logic lives in `ip_inventory_core` (`core/`).
//! - `gucs`: every setting; `shmem`: cluster-wide state; `errors`: every error we raise;
//! - `datum`: SQL value translation; `readers`: per-backend database readers;
//! - `lookup`: the lookup functions; `admin`: reload, info, age, verify.
//!
//! SQL objects other than functions live in `sql/`.

// Functions return `Result<_, ErrorReport>`: pgrx raises an unboxed ErrorReport with its own
// SQLSTATE (a boxed one would become a generic 22000), and the error path is cold.
#![allow(clippy::result_large_err)]

use pgrx::prelude::*;

mod admin;
mod datum;
mod errors;
mod gucs;
mod lookup;
mod readers;
mod shmem;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/types.sql", name = "types", bootstrap);
extension_sql_file!(
    "../sql/maxmind_privileges.sql",
    name = "maxmind_privileges",
    requires = [
        admin::maxmind_reload,
        admin::maxmind_verify,
        lookup::enrich_ip
    ],
    finalize
);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    shmem::init();
}
