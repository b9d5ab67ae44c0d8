//! The store of verified copies: the only bytes a reader ever maps.
//!
//! A database the operator names is never mapped where it lies: its file can be rewritten in
//! place, truncated (a mapped page past the end is SIGBUS, and the postmaster restarts the
//! whole cluster), replaced by a FIFO (open() blocks beyond any cancel) or by a corrupted copy.
//! Instead its bytes are copied into a directory only the server writes, named by their
//! SHA-256, and the copy is verified in full before anything uses it. Readers map copies only.
//!
//! Which copy holds the file at a path now is remembered by the file's identity (device,
//! inode, size, modification and change times: a write changes the change time, which no
//! user can set), so a file is read and verified once, by whichever process meets it first,
//! and every other process finds the verified copy at the cost of a stat(). A file that fails
//! verification is remembered too, and never verified again while it stays as it is.
//!
//! Layout of the store directory:
//! - `<sha256>.mmdb`: a verified copy (read-only);
//! - `<sha256>.city-<language>.decoded`: every record of a City copy, decoded (read-only;
//!   [`super::decoded`]), removed with its copy;
//! - `identities/<identity>`: the hash of the file with that identity, and its path;
//! - `rejected/<identity>`: why the file with that identity was refused;
//! - `current/<sha256 of a path>`: the verified copy last in service for that path, served to
//!   a process that starts while the file at the path cannot be used;
//! - `.lock`: held (flock) by the process copying and verifying a file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::decoded::{self, DecodedCity};
use super::{Database, DbError, DbKind, ErrorKind};

/// Copies older than this that no configured path names any more are removed.
const KEEP_UNUSED: Duration = Duration::from_secs(3600);

/// A file's identity, as remembered in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl Identity {
    pub fn from_metadata(m: &fs::Metadata) -> Self {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Identity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        }
    }

    /// The identity of the regular file the path names now (following symlinks). Anything
    /// else (a FIFO, a directory, a device, a symlink loop) is an error, found without opening it.
    pub fn of(path: &Path) -> Result<Self, DbError> {
        let m = fs::metadata(path).map_err(|e| DbError::from_io(path, &e))?;
        if !m.is_file() {
            return Err(DbError::new(path, ErrorKind::NotAFile));
        }
        Ok(Self::from_metadata(&m))
    }

    fn file_name(&self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns
        )
    }
}

/// Whether a caller waits for another process that is copying and verifying a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Wait (reload, the first open of a database a process needs).
    Yes,
    /// Do not wait: the caller has a verified reader in service and keeps using it.
    No,
}

/// What the store has for the file at a path.
#[derive(Debug)]
pub enum Found {
    /// The verified copy of the file the path names now.
    Verified(Verified),
    /// Another process is verifying a file now (only with [`Wait::No`]).
    Busy,
}

/// What [`Store::decoded_city`] found.
#[derive(Debug)]
pub enum Decoded {
    /// The pre-decoded records, mapped.
    Ready(DecodedCity),
    /// Not there, and another process holds the store's lock (only with [`Wait::No`]): it may
    /// be building them; ask again later.
    Busy,
    /// Not there and not built: not asked to, or this database or language cannot have them
    /// (a copy outside the store, a language the database does not list, a data section
    /// beyond 4 GiB).
    Absent,
}

#[derive(Debug, Clone)]
pub struct Verified {
    /// The copy to map.
    pub copy: PathBuf,
    /// The identity of the operator's file it is a copy of.
    pub source: Identity,
}

/// Cloned on every lookup (each backend's readers hand it to the slot they read), so the
/// path is shared, not copied.
#[derive(Debug, Clone)]
pub struct Store {
    dir: Arc<Path>,
}

impl Store {
    /// The store in `dir`, created (mode 0700) when missing.
    pub fn open(dir: &Path) -> io::Result<Store> {
        for d in [
            dir.to_path_buf(),
            dir.join("identities"),
            dir.join("rejected"),
            dir.join("current"),
        ] {
            match fs::create_dir(&d) {
                Ok(()) => fs::set_permissions(&d, fs::Permissions::from_mode(0o700))?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Store {
            dir: Arc::from(dir),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The verified copy of the file at `path`, copying and verifying it in full when no
    /// process did yet. `cancelled` is asked between chunks of the copy (a query cancel).
    pub fn verified(
        &self,
        path: &Path,
        wait: Wait,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Found, DbError> {
        let identity = Identity::of(path)?;
        if let Some(found) = self.known(path, identity)? {
            return Ok(Found::Verified(found));
        }
        let Some(_lock) = self.lock(path, wait)? else {
            return Ok(Found::Busy);
        };
        // Another process may have done it while we waited for the lock.
        if let Some(found) = self.known(path, identity)? {
            return Ok(Found::Verified(found));
        }
        match self.ingest(path, identity, cancelled) {
            Ok(v) => {
                self.collect_garbage();
                Ok(Found::Verified(v))
            }
            Err(e) => {
                // Remembered, so that no process verifies the same bad file again. A cancel is
                // not the file's fault, nor is a file that changed while it was read.
                if let Some(record) = refusal_record(&e.kind) {
                    let _ = write_atomically(
                        &self.dir.join("rejected").join(identity.file_name()),
                        record.as_bytes(),
                    );
                }
                Err(e)
            }
        }
    }

    /// The pre-decoded City records ([`DecodedCity`]) of the verified copy `db` maps, in
    /// `language`: mapped when a process built them before; else, when `build` says so,
    /// built now under the store's lock (waiting for it or not), written beside the copy and
    /// mapped. Only for the languages the database lists: a language setting cannot make the
    /// store grow beyond one file per language the file itself names.
    pub fn decoded_city(
        &self,
        db: &Database,
        language: &str,
        build: Option<Wait>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Decoded, DbError> {
        let copy = db.path();
        let hash = match copy_hash(copy) {
            Some(h) if copy.parent() == Some(&*self.dir) => h,
            _ => return Ok(Decoded::Absent),
        };
        let Some(raw) = unhex(&hash) else {
            return Ok(Decoded::Absent);
        };
        if !db.metadata().languages.iter().any(|l| l == language)
            || language.len() > decoded::MAX_LANGUAGE
            || !language
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Ok(Decoded::Absent);
        }
        let path = self.dir.join(format!("{hash}.city-{language}.decoded"));
        if let Some(d) = DecodedCity::open(&path, &raw, language) {
            return Ok(Decoded::Ready(d));
        }
        let Some(wait) = build else {
            return Ok(Decoded::Absent);
        };
        let Some(_lock) = self.lock(copy, wait)? else {
            return Ok(Decoded::Busy);
        };
        // Another process may have built them while we waited for the lock.
        if let Some(d) = DecodedCity::open(&path, &raw, language) {
            return Ok(Decoded::Ready(d));
        }
        let Some(bytes) = DecodedCity::build(db, language, &raw, cancelled)? else {
            return Ok(Decoded::Absent);
        };
        write_synced(&path, &bytes)
            .map_err(|e| DbError::new(copy, ErrorKind::Io(format!("store: {e}"))))?;
        DecodedCity::open(&path, &raw, language)
            .map(Decoded::Ready)
            .ok_or_else(|| {
                DbError::new(
                    copy,
                    ErrorKind::Io(
                        "store: the pre-decoded records just written cannot be read".into(),
                    ),
                )
            })
    }

    /// Remembers `verified` as the copy in service for `path`: what a process that starts while
    /// the file at the path cannot be used serves meanwhile.
    pub fn set_current(&self, path: &Path, verified: &Verified) {
        let Some(hash) = copy_hash(&verified.copy) else {
            return;
        };
        let s = verified.source;
        let record = format!(
            "{hash}\n{} {} {} {} {}\n",
            s.dev, s.ino, s.size, s.mtime_ns, s.ctime_ns
        );
        let _ = write_atomically(&self.current_record(path), record.as_bytes());
    }

    /// The copy last in service for `path`, if it is still in the store.
    pub fn current(&self, path: &Path) -> Option<Verified> {
        let text = fs::read_to_string(self.current_record(path)).ok()?;
        let mut lines = text.lines();
        let hash = lines.next().filter(|h| is_hash(h))?;
        let n: Vec<i64> = lines
            .next()?
            .split(' ')
            .filter_map(|v| v.parse().ok())
            .collect();
        let [dev, ino, size, mtime_ns, ctime_ns] = n[..] else {
            return None;
        };
        let copy = self.dir.join(format!("{hash}.mmdb"));
        let verified = Verified {
            source: Identity {
                dev: dev as u64,
                ino: ino as u64,
                size: size as u64,
                mtime_ns,
                ctime_ns,
            },
            copy,
        };
        verified.copy.is_file().then_some(verified)
    }

    fn current_record(&self, path: &Path) -> PathBuf {
        let mut h = Sha256::new();
        h.update(path.as_os_str().as_encoded_bytes());
        self.dir.join("current").join(hex(&h.finalize()))
    }

    /// The verified copy remembered for `identity`, or the refusal remembered for it.
    fn known(&self, path: &Path, identity: Identity) -> Result<Option<Verified>, DbError> {
        let name = identity.file_name();
        if let Ok(text) = fs::read_to_string(self.dir.join("identities").join(&name)) {
            if let Some(hash) = text.lines().next().filter(|h| is_hash(h)) {
                let copy = self.dir.join(format!("{hash}.mmdb"));
                if copy.is_file() {
                    return Ok(Some(Verified {
                        copy,
                        source: identity,
                    }));
                }
            }
        }
        if let Ok(record) = fs::read_to_string(self.dir.join("rejected").join(&name)) {
            return Err(DbError::new(path, refusal_from_record(&record)));
        }
        Ok(None)
    }

    fn lock(&self, path: &Path, wait: Wait) -> Result<Option<File>, DbError> {
        let lock_path = self.dir.join(".lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| DbError::new(path, ErrorKind::Io(format!("store lock: {e}"))))?;
        let op = libc::LOCK_EX | if wait == Wait::No { libc::LOCK_NB } else { 0 };
        loop {
            // SAFETY: flock on a descriptor we own; released when the File is dropped.
            if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
                return Ok(Some(f));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) => return Ok(None),
                _ => {
                    return Err(DbError::new(
                        path,
                        ErrorKind::Io(format!("store lock: {e}")),
                    ))
                }
            }
        }
    }

    /// Copies the file into the store (refusing anything but a regular file, never blocking
    /// on open), checks it did not change while being read, and verifies the copy in full
    /// unless a copy of the same bytes was verified before. A copy is named by its hash only
    /// once it passed: `<sha256>.mmdb` exists only for verified bytes.
    fn ingest(
        &self,
        path: &Path,
        identity: Identity,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Verified, DbError> {
        let changed = || {
            DbError::new(
                path,
                ErrorKind::Io(
                    "the file changed while it was being copied; replace files by rename".into(),
                ),
            )
        };
        let mut source = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| DbError::from_io(path, &e))?;
        let meta = source.metadata().map_err(|e| DbError::from_io(path, &e))?;
        if !meta.is_file() {
            return Err(DbError::new(path, ErrorKind::NotAFile));
        }
        if Identity::from_metadata(&meta) != identity {
            return Err(changed());
        }
        if meta.len() == 0 {
            return Err(DbError::new(path, ErrorKind::Empty));
        }
        let tmp = self.dir.join(format!(
            ".incoming-{}-{}",
            std::process::id(),
            identity.file_name()
        ));
        let result = (|| {
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| DbError::new(path, ErrorKind::Io(format!("store: {e}"))))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut copied: u64 = 0;
            loop {
                if cancelled() {
                    return Err(DbError::new(path, ErrorKind::Io("cancelled".into())));
                }
                let n = match source.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(DbError::from_io(path, &e)),
                };
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(|e| DbError::new(path, ErrorKind::Io(format!("store: {e}"))))?;
                copied += n as u64;
                if copied > identity.size {
                    return Err(changed());
                }
            }
            let after = source.metadata().map_err(|e| DbError::from_io(path, &e))?;
            if copied != identity.size || Identity::from_metadata(&after) != identity {
                return Err(changed());
            }
            out.sync_all()
                .map_err(|e| DbError::new(path, ErrorKind::Io(format!("store: {e}"))))?;
            Ok(hex(&hasher.finalize()))
        })();
        let hash = match result {
            Ok(h) => h,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let copy = self.dir.join(format!("{hash}.mmdb"));
        if copy.is_file() {
            let _ = fs::remove_file(&tmp);
        } else {
            if let Err(mut e) = verify_copy(&tmp) {
                let _ = fs::remove_file(&tmp);
                // Errors name the operator's file, not the copy.
                e.path = path.to_path_buf();
                return Err(e);
            }
            let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(0o400));
            fs::rename(&tmp, &copy)
                .map_err(|e| DbError::new(path, ErrorKind::Io(format!("store: {e}"))))?;
        }
        let record = format!("{hash}\n{}\n", path.display());
        write_atomically(
            &self.dir.join("identities").join(identity.file_name()),
            record.as_bytes(),
        )
        .map_err(|e| DbError::new(path, ErrorKind::Io(format!("store: {e}"))))?;
        Ok(Verified {
            copy,
            source: identity,
        })
    }

    fn identity_records(&self) -> impl Iterator<Item = (PathBuf, String, PathBuf)> + '_ {
        fs::read_dir(self.dir.join("identities"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let text = fs::read_to_string(entry.path()).ok()?;
                let mut lines = text.lines();
                let hash = lines.next()?.to_owned();
                let source = PathBuf::from(lines.next()?);
                Some((entry.path(), hash, source))
            })
    }

    /// Forgets identities whose file is gone or changed, removes copies no identity names
    /// any more once they are older than an hour (a process still mapping one keeps its
    /// pages: unlinking a mapped file is safe), and refusals of files that are gone.
    pub fn collect_garbage(&self) {
        let mut live: Vec<String> = fs::read_dir(self.dir.join("current"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| fs::read_to_string(e.path()).ok())
            .filter_map(|t| t.lines().next().map(str::to_owned))
            .collect();
        for (record, hash, source) in self.identity_records().collect::<Vec<_>>() {
            let current = Identity::of(&source).ok().map(|i| i.file_name());
            let name = record
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_owned);
            if current.is_some() && current == name {
                live.push(hash);
            } else {
                let _ = fs::remove_file(&record);
            }
        }
        let now = SystemTime::now();
        for entry in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let p = entry.path();
            // Copies, and the pre-decoded records built from them, go together.
            let Some(hash) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| {
                    n.strip_suffix(".mmdb").or_else(|| {
                        n.strip_suffix(".decoded")
                            .and_then(|n| n.split_once('.'))
                            .map(|(h, _)| h)
                    })
                })
                .filter(|h| is_hash(h))
            else {
                continue;
            };
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > KEEP_UNUSED);
            if old && !live.iter().any(|l| l == hash) {
                let _ = fs::remove_file(&p);
            }
        }
        // Refusals are kept while the refused file could still be met (a day).
        for entry in fs::read_dir(self.dir.join("rejected"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > Duration::from_secs(86_400));
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Opens a copy and verifies it in full: MaxMind's verifier (search tree, data section,
/// metadata), or for files of other vendors whose metadata lacks MaxMind's description, a walk
/// of every network decoding every record. Whether the database suits a slot (City, ASN) is
/// the slot's cheap check when it opens the copy.
fn verify_copy(copy: &Path) -> Result<(), DbError> {
    let db = Database::open(copy, DbKind::Any)?;
    match db.verify() {
        Ok(()) => Ok(()),
        Err(e)
            if db.metadata().description.is_empty()
                && matches!(&e.kind, ErrorKind::Corrupt(m) if m.contains("description")) =>
        {
            db.verify_records()
        }
        Err(e) => Err(e),
    }
}

/// How a refusal is remembered: the kind on the first line, its message after it; the same
/// error comes back to every process that meets the file.
fn refusal_record(kind: &ErrorKind) -> Option<String> {
    Some(match kind {
        ErrorKind::Empty => "empty\n".to_owned(),
        ErrorKind::NotMmdb => "not_mmdb\n".to_owned(),
        ErrorKind::Corrupt(m) => format!("corrupt\n{m}"),
        ErrorKind::ResourceLimit(m) => format!("resource_limit\n{m}"),
        // Not the file's bytes: a cancel, a file that changed while read, a missing file.
        _ => return None,
    })
}

fn refusal_from_record(record: &str) -> ErrorKind {
    let (kind, message) = record.split_once('\n').unwrap_or((record, ""));
    let message = message.to_owned();
    match kind {
        "empty" => ErrorKind::Empty,
        "not_mmdb" => ErrorKind::NotMmdb,
        "resource_limit" => ErrorKind::ResourceLimit(message),
        _ => ErrorKind::Corrupt(message),
    }
}

/// The hash a copy is named by.
fn copy_hash(copy: &Path) -> Option<String> {
    copy.file_name()?
        .to_str()?
        .strip_suffix(".mmdb")
        .filter(|h| is_hash(h))
        .map(str::to_owned)
}

fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(hash: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hash.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Writes a file that readers map: complete and on disk before it gets its name, read-only.
fn write_synced(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        out.write_all(contents)?;
        out.sync_all()?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o400))?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, contents)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmdb::testdata::{fixture, install, never, setup};
    use std::sync::mpsc;

    fn verified(store: &Store, path: &Path) -> Result<Verified, DbError> {
        match store.verified(path, Wait::Yes, &never)? {
            Found::Verified(v) => Ok(v),
            Found::Busy => panic!("busy while waiting"),
        }
    }

    #[test]
    fn a_file_is_copied_verified_and_found_again_by_identity() {
        let (_d, store, live) = setup("GeoIP2-City-Test.mmdb");
        let v = verified(&store, &live).unwrap();
        assert_eq!(fs::read(&v.copy).unwrap(), fs::read(&live).unwrap());
        assert!(v.copy.starts_with(store.dir()));
        // Found again without reading the file: its copy is named in identities/.
        let again = verified(&store, &live).unwrap();
        assert_eq!(again.copy, v.copy);
        // Readers map the copy; what happens to the operator's file cannot reach it.
        let db = Database::open(&v.copy, DbKind::City).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&live)
            .unwrap()
            .set_len(100)
            .unwrap();
        let hit = db.lookup("81.2.69.160".parse().unwrap()).unwrap().unwrap();
        assert_eq!(db.country_code(&hit).unwrap(), Some("GB"));
    }

    #[test]
    fn a_replaced_file_gets_its_own_copy() {
        let (_d, store, live) = setup("GeoIP2-City-Test.mmdb");
        let first = verified(&store, &live).unwrap();
        install("GeoLite2-City-Test.mmdb", &live);
        let second = verified(&store, &live).unwrap();
        assert_ne!(first.copy, second.copy);
        assert_eq!(fs::read(&second.copy).unwrap(), fs::read(&live).unwrap());
    }

    #[test]
    fn a_file_rewritten_in_place_is_verified_again() {
        let (_d, store, live) = setup("GeoIP2-City-Test.mmdb");
        let first = verified(&store, &live).unwrap();
        // Same size, a byte of the data section changed, the modification time put back:
        // only the change time tells, and it is enough.
        let meta = fs::metadata(&live).unwrap();
        let mut bytes = fs::read(&live).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::thread::sleep(Duration::from_millis(20));
        fs::write(&live, &bytes).unwrap();
        let times = [
            libc::timespec {
                tv_sec: meta.atime(),
                tv_nsec: meta.atime_nsec(),
            },
            libc::timespec {
                tv_sec: meta.mtime(),
                tv_nsec: meta.mtime_nsec(),
            },
        ];
        let c = std::ffi::CString::new(live.to_str().unwrap()).unwrap();
        // SAFETY: a valid path and two timespecs.
        assert_eq!(
            unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) },
            0
        );
        assert_ne!(Identity::of(&live).unwrap(), first.source);
        match verified(&store, &live) {
            Ok(v) => assert_ne!(v.copy, first.copy),
            Err(e) => assert!(matches!(e.kind, ErrorKind::Corrupt(_)), "{e}"),
        }
    }

    #[test]
    fn a_corrupt_file_is_refused_once_and_remembered() {
        let (_d, store, live) = setup("GeoIP2-City-Test-Broken-Double-Format.mmdb");
        let e = verified(&store, &live).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Corrupt(_)), "{e}");
        assert_eq!(e.path, live, "errors name the operator's file");
        // Remembered: the same error, without verifying again (the refusal record says so).
        let again = verified(&store, &live).unwrap_err();
        assert_eq!(again, e);
        assert_eq!(
            fs::read_dir(store.dir().join("rejected")).unwrap().count(),
            1
        );
        // No copy of a refused file stays behind.
        let copies = fs::read_dir(store.dir())
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "mmdb"))
            .count();
        assert_eq!(copies, 0);
    }

    #[test]
    fn what_is_not_a_regular_file_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let fifo = dir.path().join("fifo.mmdb");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let loop_a = dir.path().join("a.mmdb");
        let loop_b = dir.path().join("b.mmdb");
        std::os::unix::fs::symlink(&loop_b, &loop_a).unwrap();
        std::os::unix::fs::symlink(&loop_a, &loop_b).unwrap();
        let subdir = dir.path().join("dir.mmdb");
        fs::create_dir(&subdir).unwrap();
        let (tx, rx) = mpsc::channel();
        let store_dir = store.dir().to_path_buf();
        let paths = vec![fifo, loop_a, subdir, PathBuf::from("/dev/zero")];
        std::thread::spawn(move || {
            let store = Store::open(&store_dir).unwrap();
            for p in paths {
                let r = verified(&store, &p).map(|_| ());
                tx.send((p, r)).unwrap();
            }
        });
        for _ in 0..4 {
            let (p, r) = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("refused at once");
            let e = r.unwrap_err();
            assert!(
                matches!(e.kind, ErrorKind::NotAFile | ErrorKind::Io(_)),
                "{}: {e}",
                p.display()
            );
        }
    }

    #[test]
    fn while_another_process_verifies_a_caller_that_does_not_wait_is_told_so() {
        let (_d, store, live) = setup("GeoIP2-City-Test.mmdb");
        let held = store.lock(&live, Wait::Yes).unwrap().unwrap();
        assert!(matches!(
            store.verified(&live, Wait::No, &never).unwrap(),
            Found::Busy
        ));
        drop(held);
        assert!(matches!(
            store.verified(&live, Wait::No, &never).unwrap(),
            Found::Verified(_)
        ));
    }

    #[test]
    fn a_cancelled_copy_leaves_nothing_and_is_not_remembered_as_bad() {
        let (_d, store, live) = setup("GeoIP2-City-Test.mmdb");
        let e = store.verified(&live, Wait::Yes, &|| true).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Io(_)), "{e}");
        assert_eq!(
            fs::read_dir(store.dir().join("rejected")).unwrap().count(),
            0
        );
        assert!(verified(&store, &live).is_ok());
    }

    #[test]
    fn garbage_collection_keeps_what_a_path_names() {
        let (_d, store, live) = setup("GeoIP2-City-Test.mmdb");
        let first = verified(&store, &live).unwrap();
        install("GeoLite2-City-Test.mmdb", &live);
        let second = verified(&store, &live).unwrap();
        // The first copy is old and no path names its file any more.
        let old = SystemTime::now() - Duration::from_secs(7200);
        let f = File::open(&first.copy).unwrap();
        f.set_modified(old).unwrap();
        store.collect_garbage();
        assert!(!first.copy.exists());
        assert!(second.copy.exists());
    }

    /// A copy of a test database whose metadata `description` is an empty map, as other
    /// vendors' files have it. The metadata's other fields point at the description's strings,
    /// so they stay where they are: the description map's entry count (low bits of its
    /// control byte) becomes 0 and the metadata map's grows by as much, so its former entries
    /// are read as extra, unknown metadata fields. The length does not change.
    fn without_description(name: &str, to: &Path) {
        let mut bytes = fs::read(fixture(name)).unwrap();
        let marker = b"\xab\xcd\xefMaxMind.com";
        let meta = bytes
            .windows(marker.len())
            .rposition(|w| w == marker)
            .unwrap()
            + marker.len();
        let key = b"\x4bdescription";
        let at = bytes.windows(key.len()).rposition(|w| w == key).unwrap() + key.len();
        assert_eq!(bytes[meta] >> 5, 7, "the metadata is a map");
        assert_eq!(bytes[at] >> 5, 7, "a map follows the key");
        let entries = bytes[at] & 0x1f;
        bytes[at] &= 0xe0;
        bytes[meta] += entries;
        fs::write(to, bytes).unwrap();
    }

    #[test]
    fn other_vendors_files_without_a_description_are_walked_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let live = dir.path().join("vendor.mmdb");
        without_description("MaxMind-DB-test-ipv4-24.mmdb", &live);
        let db = Database::open(&live, DbKind::Any).unwrap();
        assert!(db.metadata().description.is_empty());
        assert!(
            db.verify().is_err(),
            "MaxMind's verifier insists on a description"
        );
        assert!(verified(&store, &live).is_ok());
        // The walk still refuses broken records.
        let broken = dir.path().join("broken.mmdb");
        without_description("MaxMind-DB-test-broken-pointers-24.mmdb", &broken);
        assert!(verified(&store, &broken).is_err());
    }
}
