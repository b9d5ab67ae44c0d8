//! What the store and slot tests share: MaxMind's test databases and an operator's directory.

use std::fs;
use std::path::{Path, PathBuf};

use super::Store;

/// One of MaxMind's test databases (pg_tests/fixtures/maxmind/test-data).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pg_tests/fixtures/maxmind/test-data")
        .join(name)
}

/// An interrupt check that never fires.
pub fn never() -> bool {
    false
}

/// Puts the test database `name` at `live` by rename, as an operator replaces a file.
pub fn install(name: &str, live: &Path) {
    let staged = live.with_extension("staged");
    fs::copy(fixture(name), &staged).unwrap();
    fs::rename(&staged, live).unwrap();
}

/// A store and an operator's directory holding `name` as `live.mmdb`.
pub fn setup(name: &str) -> (tempfile::TempDir, Store, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let live = dir.path().join("live.mmdb");
    install(name, &live);
    (dir, store, live)
}
