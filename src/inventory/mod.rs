//! The inventory's Rust functions (core: `ip_inventory_core::inventory`): event tables
//! (attach, the observe trigger, backfill reads, retention of events) in `observe`, and the
//! batch jobs' locks in `jobs`. The rest of the inventory is SQL (`sql/`).

pub mod jobs;
pub mod observe;
