//! The Postgres-free core of ip_inventory.
//!
//! Everything here is plain Rust, tested with `cargo test -p ip_inventory_core`: address
//! classification, MaxMind DB opening/validation/decoding, settings parsing, and the network
//! sources' protocols and clients (Team Cymru, GreyNoise, reverse DNS), and the layout of the
//! operational counters. The
//! extension crate (`src/`) only translates between SQL and these functions.

pub mod claims;
pub mod classify;
pub mod cymru;
pub mod dns;
pub mod fetch;
pub mod greynoise;
pub mod inet;
pub mod jobs;
pub mod lists;
pub mod metrics;
pub mod mmdb;
pub mod net;
pub mod observe;
pub mod privacy;
pub mod sanitize;
pub mod settings;

pub use classify::{canonical, classify, IpClass};
