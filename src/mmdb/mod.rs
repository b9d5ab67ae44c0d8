//! MaxMind databases in SQL (core: `ip_inventory_core::mmdb`): the per-backend readers and
//! their replacement rules (`readers`), the lookup functions (`lookup`), and reload, info,
//! age and verify (`admin`), and reading a database by path or as a table (`scan`).

pub mod admin;
pub mod lookup;
pub mod readers;
pub mod scan;
