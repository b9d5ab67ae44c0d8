//! The Postgres-free core of ip_inventory.
//!
//! Everything here is plain Rust, tested with `cargo test -p ip_inventory_core` (no cluster).
//! Each domain is one module; the extension crate (`src/`) only translates between SQL and
//! these functions:
//! - addresses: [`classify`] (ip_class, canonical forms), [`inet`] (Postgres' inet bytes);
//! - MaxMind databases: [`mmdb`] (opening, verification, decoding, the store of verified
//!   copies, the slots and their replacement rules);
//! - network sources: [`sources`] (the [`sources::Source`] enum, Team Cymru, GreyNoise,
//!   reverse DNS, the shared network plumbing, the refresh run and its claims);
//! - the inventory: [`inventory`] (aggregating event tables' rows, job lock keys), [`privacy`]
//!   (anonymize, pseudonymize);
//! - cross-cutting: [`sanitize`] (text from hostile input), [`settings`] (parsing setting
//!   values), [`secret`] (where a key or salt is kept), [`metrics`] (the counters' layout).

/// An enum whose variants have SQL names, with all variants in order.
macro_rules! named {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The name SQL, settings and `ip_inventory_stats` use.
            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// The variant SQL names so (exact, lowercase).
            pub fn parse(text: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.name() == text)
            }
        }
    };
}

pub mod classify;
pub mod inet;
pub mod inventory;
pub mod lists;
pub mod metrics;
pub mod mmdb;
pub mod privacy;
pub mod sanitize;
pub mod secret;
pub mod settings;
pub mod sources;

pub use classify::{canonical, classify, IpClass};
