//! The inventory's logic that needs no Postgres: aggregating the rows of an event table
//! into observations per address ([`observe`]) and the lock keys of batch jobs ([`jobs`]).

pub mod jobs;
pub mod observe;
