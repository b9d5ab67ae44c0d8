//! The Postgres-free core of ip_inventory.
//!
//! Everything here is plain Rust, tested with `cargo test -p ip_inventory_core`: address
//! classification, MaxMind DB opening/validation/decoding, and settings parsing. The
//! extension crate (`src/`) only translates between SQL and these functions.

pub mod classify;
pub mod inet;
pub mod mmdb;
pub mod settings;

pub use classify::{canonical, classify, IpClass};
