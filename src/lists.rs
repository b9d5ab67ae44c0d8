//! Network lists: tables of networks users maintain (sensors, allow- and block-lists, cloud
//! ranges), registered under a name, looked up with `ip_list_match(ip, list)` and
//! `ip_list_contains(ip, list)`.
//!
//! Each backend holds, per list it used, a [`PrefixTable`] (`ip_inventory_core::lists`) and the
//! rows' labels and attributes. It is rebuilt when any list changed anywhere in the cluster:
//! the trigger `ip_list_register` puts on a list table marks the transaction, and at commit
//! (once the change is visible) a generation counter in shared memory moves; every call
//! compares it with the generation its table was built under (one atomic load). The content
//! is read after the generation, under a new snapshot, so a change that commits in between
//! moves the generation again and is read at the next call. Without
//! `shared_preload_libraries`, a table is rebuilt once per transaction instead.
//!
//! A list table is read as its owner in a security-restricted operation (code the owner
//! planted runs with the owner's rights only); callers need SELECT on it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use ip_inventory_core::lists::{valid_list_name, PrefixTable};
use ipnetwork::IpNetwork;
use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode::*;
use pgrx::{pg_shmem_init, FromDatum, IntoDatum, PgAtomic};

use crate::datum::{self, InetArg};
use crate::security::{self, Table};
use crate::{errors, shmem};

static LIST_GENERATION: PgAtomic<AtomicU64> =
    unsafe { PgAtomic::new(c"ip_inventory_list_generation") };

/// Called from `_PG_init` after `shmem::init`: allocates the list generation while preloading.
pub fn init() {
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(LIST_GENERATION = AtomicU64::new(1));
    }
}

fn generation() -> Option<u64> {
    shmem::enabled().then(|| LIST_GENERATION.get().load(Ordering::Acquire))
}

fn bump() {
    if shmem::enabled() {
        LIST_GENERATION.get().fetch_add(1, Ordering::AcqRel);
    }
}

/// This backend's transaction (its local id). PostgreSQL 17 moved it into `vxid`.
fn local_xact() -> u32 {
    // SAFETY: MyProc is this backend's PGPROC.
    #[cfg(not(feature = "pg18"))]
    let lxid = unsafe { (*pg_sys::MyProc).lxid };
    #[cfg(feature = "pg18")]
    let lxid = unsafe { (*pg_sys::MyProc).vxid.lxid };
    lxid
}

fn xact_snapshot_isolation() -> bool {
    // SAFETY: a plain read.
    unsafe { pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 }
}

thread_local! {
    /// Per list name, the table built for it.
    static CACHE: RefCell<HashMap<String, Rc<Built>>> = RefCell::new(HashMap::new());
    /// Moves when this backend changes a list: its own later statements see the change.
    static LOCAL_EPOCH: Cell<u64> = const { Cell::new(0) };
    /// The local transaction that changed a list (a commit callback is registered for it).
    static WROTE_IN: Cell<Option<u32>> = const { Cell::new(None) };
}

/// What one list holds in a backend.
struct Built {
    relid: pg_sys::Oid,
    table: PrefixTable,
    networks: Vec<IpNetwork>,
    /// Labels and attributes (raw jsonb varlenas) of every entry, in one arena.
    arena: Vec<u8>,
    labels: Vec<(u32, u32)>,
    attributes: Vec<(u32, u32)>,
    /// Validity: the cluster generation (None without preload), this backend's epoch, and the
    /// transaction it is bound to (content from a transaction snapshot, or own uncommitted
    /// changes, or no shared generation to watch).
    generation: Option<u64>,
    local_epoch: u64,
    xact: Option<u32>,
}

impl Built {
    fn valid(&self) -> bool {
        self.generation == generation()
            && self.local_epoch == LOCAL_EPOCH.with(Cell::get)
            && self.xact.is_none_or(|x| x == local_xact())
    }

    fn slice(&self, (start, len): (u32, u32)) -> Option<&[u8]> {
        (len != u32::MAX).then(|| &self.arena[start as usize..(start + len) as usize])
    }
}

/// A varlena copied whole (header included, detoasted), for jsonb values kept across calls.
struct Varlena(Vec<u8>);

impl FromDatum for Varlena {
    unsafe fn from_polymorphic_datum(
        d: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a varlena datum of the query's jsonb column; detoasted to a 4-byte header.
        unsafe {
            let v = pg_sys::pg_detoast_datum(d.cast_mut_ptr());
            let len = pgrx::varlena::varsize(v);
            Some(Varlena(
                std::slice::from_raw_parts(v.cast::<u8>(), len).to_vec(),
            ))
        }
    }
}

// Only read (SPI checks a column's type through IntoDatum); never turned into a datum.
impl IntoDatum for Varlena {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        None
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

/// A copy of a kept varlena in the current memory context, as a datum.
fn varlena_datum(bytes: &[u8]) -> pg_sys::Datum {
    // SAFETY: palloc returns len writable bytes; bytes is a whole varlena with a 4-byte header.
    unsafe {
        let p = pg_sys::palloc(bytes.len()).cast::<u8>();
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        pg_sys::Datum::from(p)
    }
}

fn unknown_list(name: &str) -> ErrorReport {
    errors::report(
        ERRCODE_UNDEFINED_OBJECT,
        format!("network list \"{}\" does not exist", errors::cut(name)),
    )
    .set_hint(
        "SELECT list_name FROM ip_inventory_lists; lists are registered with ip_list_register().",
    )
}

/// The first column of the first row of a query, `None` when it returns no row.
fn first_value<T: FromDatum + IntoDatum>(
    query: &str,
    args: &[pgrx::datum::DatumWithOid<'_>],
) -> Result<Option<T>, ErrorReport> {
    Spi::connect(|client| {
        let rows = client.select(query, Some(1), args)?;
        if rows.is_empty() {
            return Ok(None);
        }
        rows.first().get::<T>(1)
    })
    .map_err(errors::spi)
}

/// A table a list can use: an ordinary or partitioned table (reading anything else can run
/// code its owner wrote).
fn list_table(relid: pg_sys::Oid) -> Result<Table, ErrorReport> {
    Table::open(relid).map_err(|e| {
        e.set_detail("Only ordinary and partitioned tables can be network lists: reading other relations can run code their owner wrote.".to_owned())
            .set_hint("Register the table that holds the networks.".to_owned())
    })
}

/// Pushes a new snapshot for the reads of a rebuild; pops it when dropped.
struct FreshSnapshot;

impl FreshSnapshot {
    fn push() -> FreshSnapshot {
        // SAFETY: in a transaction (a function is running); popped by the drop.
        unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
        FreshSnapshot
    }
}

impl Drop for FreshSnapshot {
    fn drop(&mut self) {
        // SAFETY: pops the snapshot pushed above.
        unsafe { pg_sys::PopActiveSnapshot() };
    }
}

/// Reads list `name` into a new [`Built`].
fn build(schema: &str, name: &str) -> Result<Built, ErrorReport> {
    // The generation first: a change committed after this load moves it again.
    let generation = generation();
    let local_epoch = LOCAL_EPOCH.with(Cell::get);
    let wrote_here = WROTE_IN.with(Cell::get) == Some(local_xact());
    let _snapshot = FreshSnapshot::push();
    let relid = first_value::<pg_sys::Oid>(
        &format!(
            "SELECT l.list_table::pg_catalog.oid FROM {schema}.ip_inventory_lists AS l
             WHERE l.list_name OPERATOR(pg_catalog.=) $1"
        ),
        &[name.into()],
    )?
    .ok_or_else(|| unknown_list(name))?;
    let table = list_table(relid)?;
    let has_label = first_value::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid OPERATOR(pg_catalog.=) $1
                          AND a.attname OPERATOR(pg_catalog.=) 'label' AND a.attnum > 0
                          AND NOT a.attisdropped)",
        &[relid.into()],
    )?
    .unwrap_or(false);
    let label = if has_label {
        "t.label::pg_catalog.text"
    } else {
        "NULL::pg_catalog.text"
    };
    // Every column but network and label is an attribute. Network order makes equal networks
    // answer by their first row in a stable order.
    let query = format!(
        "SELECT t.network, {label},
                pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.-) 'network'::pg_catalog.text
                                       OPERATOR(pg_catalog.-) 'label'::pg_catalog.text
         FROM {} AS t WHERE t.network IS NOT NULL
         ORDER BY t.network USING OPERATOR(pg_catalog.<), 2 USING OPERATOR(pg_catalog.<)",
        table.name
    );
    let mut networks = Vec::new();
    let mut arena = Vec::new();
    let mut labels = Vec::new();
    let mut attributes = Vec::new();
    let mut keep = |bytes: Option<&[u8]>| -> (u32, u32) {
        match bytes {
            None => (0, u32::MAX),
            Some(b) => {
                let start = arena.len() as u32;
                arena.extend_from_slice(b);
                (start, b.len() as u32)
            }
        }
    };
    table.as_owner(|| {
        Spi::connect(|client| {
            let mut cursor = client.open_cursor(query.as_str(), &[]);
            loop {
                let rows = cursor.fetch(10_000).map_err(errors::spi)?;
                if rows.is_empty() {
                    break;
                }
                for row in rows {
                    check_for_interrupts!();
                    let Some(Net(net)) = row.get::<Net>(1).map_err(errors::spi)? else {
                        continue;
                    };
                    networks.push(net);
                    let label = row.get::<String>(2).map_err(errors::spi)?;
                    labels.push(keep(label.as_deref().map(str::as_bytes)));
                    let attrs = row.get::<Varlena>(3).map_err(errors::spi)?;
                    attributes.push(keep(attrs.as_ref().map(|v| v.0.as_slice())));
                }
            }
            Ok::<_, ErrorReport>(())
        })
    })?;
    let table_index = PrefixTable::new(&networks);
    let bound = generation.is_none() || xact_snapshot_isolation() || wrote_here;
    Ok(Built {
        relid,
        table: table_index,
        networks,
        arena,
        labels,
        attributes,
        generation,
        local_epoch,
        xact: bound.then(local_xact),
    })
}

/// A network read from a list table's inet or cidr column (host bits cleared).
struct Net(IpNetwork);

impl FromDatum for Net {
    unsafe fn from_polymorphic_datum(
        d: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: an inet or cidr datum (the column's type is checked when registering; the
        // query reads that column).
        let payload = unsafe { datum::inet_payload(d) };
        let (addr, bits) = ip_inventory_core::inet::decode(payload).ok()?;
        let net = IpNetwork::new(addr, bits).ok()?;
        Some(Net(IpNetwork::new(net.network(), bits).unwrap_or(net)))
    }
}

// Only read; an inet or a cidr column.
impl IntoDatum for Net {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        None
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::CIDROID
    }
    fn is_compatible_with(other: pg_sys::Oid) -> bool {
        other == pg_sys::CIDROID || other == pg_sys::INETOID
    }
}

/// The built list `name`, rebuilding it when stale; checks the caller may read it.
fn list(fcinfo: pg_sys::FunctionCallInfo, name: &str) -> Result<Rc<Built>, ErrorReport> {
    let cached = CACHE.with(|c| c.borrow().get(name).cloned());
    let built = match cached {
        Some(b) if b.valid() => b,
        _ => {
            let schema = security::schema_of(fcinfo);
            let b = Rc::new(build(&schema, name)?);
            CACHE.with(|c| {
                let mut c = c.borrow_mut();
                // Lists dropped or renamed leave entries behind: keep the cache bounded.
                if c.len() >= 64 {
                    c.retain(|_, v| v.valid());
                }
                c.insert(name.to_owned(), b.clone());
            });
            b
        }
    };
    // SAFETY: a syscache lookup for the current user.
    let may = unsafe {
        pg_sys::pg_class_aclcheck(built.relid, pg_sys::GetUserId(), pg_sys::ACL_SELECT as _)
            == pg_sys::AclResult::ACLCHECK_OK
    };
    if !may {
        return Err(errors::report(
            ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "permission denied for network list \"{}\"",
                errors::cut(name)
            ),
        )
        .set_detail("Looking a list up needs SELECT on its table.".to_owned()));
    }
    Ok(built)
}

/// Attributes of `ip_list_hit`, in order.
const HIT_TYPES: [pg_sys::Oid; 3] = [pg_sys::CIDROID, pg_sys::TEXTOID, pg_sys::JSONBOID];

/// `ip_list_hit` composite result.
pub struct HitDatum(pg_sys::Datum);

unsafe impl pgrx::callconv::BoxRet for HitDatum {
    unsafe fn box_into<'fcx>(
        self,
        fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
    ) -> pgrx::datum::Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

pgrx::impl_sql_translatable!(HitDatum, "ip_list_hit");

/// `ip_list_match(ip inet, list text) → ip_list_hit`: the most specific network of the list
/// holding the address, with its label and attributes; NULL when none does.
#[pg_extern(stable, strict, parallel_safe)]
fn ip_list_match(
    ip: InetArg,
    list_name: &str,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<Option<HitDatum>, ErrorReport> {
    let built = list(fcinfo, list_name)?;
    let Some(i) = built.table.lookup(ip.addr) else {
        return Ok(None);
    };
    // SAFETY: fcinfo is this call's; the SQL declaration returns ip_list_hit.
    let tupdesc = unsafe { datum::result_tupdesc(fcinfo, "ip_list_hit", &HIT_TYPES)? };
    let mut values = [pg_sys::Datum::null(); 3];
    let mut nulls = [true; 3];
    values[0] = datum::network_datum(built.networks[i]);
    nulls[0] = false;
    if let Some(label) = built.slice(built.labels[i]) {
        values[1] = datum::text_datum(std::str::from_utf8(label).unwrap_or_default());
        nulls[1] = false;
    }
    if let Some(attrs) = built.slice(built.attributes[i]) {
        values[2] = varlena_datum(attrs);
        nulls[2] = false;
    }
    // SAFETY: values match the checked tupdesc.
    Ok(Some(HitDatum(unsafe {
        datum::composite_datum(tupdesc, &values, &nulls)
    })))
}

/// `ip_list_contains(ip inet, list text) → boolean`: whether a network of the list holds the
/// address.
#[pg_extern(stable, strict, parallel_safe)]
fn ip_list_contains(
    ip: InetArg,
    list_name: &str,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<bool, ErrorReport> {
    Ok(list(fcinfo, list_name)?.table.lookup(ip.addr).is_some())
}

/// `_ip_inventory_list_changed()`: the statement trigger on list tables. Marks the change
/// for this backend at once and for the cluster at commit (when it is visible).
#[pg_trigger(sql = false)]
fn ip_inventory_list_changed<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<
    Option<pgrx::heap_tuple::PgHeapTuple<'a, pgrx::AllocatedByPostgres>>,
    std::convert::Infallible,
> {
    mark_changed();
    let schema = crate::inventory::observe::schema_of_trigger(trigger.trigger_data());
    let relid = trigger.relid().ok();
    if let Err(e) = tags_follow(&schema, relid, None) {
        e.report(PgLogLevel::ERROR);
    }
    Ok(None)
}

/// Tag rules naming a changed list must re-tag: `_ip_inventory_tag_list_changed` starts a new
/// rules generation when an enabled address rule names the list (one query per statement,
/// nothing per network). Run as the extension's owner: list writers hold no privilege on the
/// rules.
fn tags_follow(
    schema: &str,
    table: Option<pg_sys::Oid>,
    name: Option<&str>,
) -> Result<(), ErrorReport> {
    let owner = security::extension_owner()?;
    security::run_as(owner, || {
        Spi::connect_mut(|client| {
            client
                .update(
                    &format!(
                        "SELECT {schema}._ip_inventory_tag_list_changed($1::pg_catalog.oid::pg_catalog.regclass, $2)"
                    ),
                    None,
                    &[table.into(), name.into()],
                )
                .map(|_| ())
                .map_err(errors::spi)
        })
    })
}

/// A list changed in this transaction: this backend rebuilds now; the cluster at commit.
fn mark_changed() {
    LOCAL_EPOCH.with(|e| e.set(e.get() + 1));
    let xact = local_xact();
    if WROTE_IN.with(Cell::get) != Some(xact) {
        WROTE_IN.with(|w| w.set(Some(xact)));
        pgrx::register_xact_callback(pgrx::PgXactCallbackEvent::Commit, || {
            WROTE_IN.with(|w| w.set(None));
            bump();
        });
        pgrx::register_xact_callback(pgrx::PgXactCallbackEvent::Abort, || {
            WROTE_IN.with(|w| w.set(None));
            // What this backend built from its own aborted changes is bound to the aborted
            // transaction; nothing else to undo.
        });
        // A prepared transaction commits in another backend: move the generation at PREPARE
        // and once more at commit is impossible from here, so PREPARE moves it (a backend
        // rebuilding before COMMIT PREPARED sees the old content until the next change).
        pgrx::register_xact_callback(pgrx::PgXactCallbackEvent::PrePrepare, || {
            WROTE_IN.with(|w| w.set(None));
            bump();
        });
    }
}

fn must_own(table: &str) -> ErrorReport {
    errors::report(
        ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("must be owner of table {table} to register or unregister it as a network list"),
    )
    .set_hint("The table's owner (or a superuser) registers it; see docs/network-lists.md.")
}

const TRIGGER: &str = "_ip_inventory_list_changed";

/// `ip_list_register(list_name text, list_table regclass, description text DEFAULT NULL)`:
/// registers a table of networks as a list (or points a list at another table). The caller
/// must own the table; the table needs a `network` column of type cidr or inet, may have a
/// `label` column, and every other column is an attribute.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn ip_list_register(
    list_name: Option<&str>,
    list_table: Option<crate::inventory::observe::RegClass>,
    description: default!(Option<&str>, "NULL"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    let schema = security::schema_of(fcinfo);
    let name = list_name.unwrap_or_default();
    if !valid_list_name(name) {
        return Err(errors::report(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid network list name \"{}\"", errors::cut(name)),
        )
        .set_hint("A list name is a lowercase identifier: a letter, then letters, digits or underscores (at most 63)."));
    }
    let relid = list_table.ok_or_else(errors::no_table)?.0;
    let table = self::list_table(relid)?;
    if !table.owned_by_caller() {
        return Err(must_own(&table.name));
    }
    let network_type = first_value::<String>(
        "SELECT a.atttypid::pg_catalog.regtype::pg_catalog.text FROM pg_catalog.pg_attribute AS a
         WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attname OPERATOR(pg_catalog.=) 'network'
           AND a.attnum > 0 AND NOT a.attisdropped",
        &[relid.into()],
    )?;
    match network_type.as_deref() {
        Some("cidr" | "inet") => {}
        Some(other) => {
            return Err(errors::report(
                ERRCODE_DATATYPE_MISMATCH,
                format!("column \"network\" of {} is of type {other}, not cidr or inet", table.name),
            ))
        }
        None => {
            return Err(errors::report(
                ERRCODE_UNDEFINED_COLUMN,
                format!("{} has no column \"network\"", table.name),
            )
            .set_hint("A list table has a network column (cidr or inet), optionally a label column (text), and any other columns as attributes."))
        }
    }
    let registered_by = security::role_name(security::caller());
    let owner = security::extension_owner()?;
    security::run_as(owner, || {
        Spi::connect_mut(|client| {
            // A list pointed at another table leaves the old one without the trigger.
            let previous = client
                .select(
                    &format!(
                        "SELECT l.list_table::pg_catalog.oid FROM {schema}.ip_inventory_lists AS l
                         WHERE l.list_name OPERATOR(pg_catalog.=) $1"
                    ),
                    Some(1),
                    &[name.into()],
                )
                .map_err(errors::spi)?
                .next()
                .and_then(|r| r.get::<pg_sys::Oid>(1).ok().flatten());
            client
                .update(
                    &format!(
                        "INSERT INTO {schema}.ip_inventory_lists AS l
                             (list_name, list_table, description, registered_by, registered_at)
                         VALUES ($1, $2::pg_catalog.oid::pg_catalog.regclass, $3, $4, pg_catalog.now())
                         ON CONFLICT (list_name) DO UPDATE SET list_table = excluded.list_table,
                             description = excluded.description, registered_by = excluded.registered_by,
                             registered_at = excluded.registered_at"
                    ),
                    None,
                    &[name.into(), relid.into(), description.into(), registered_by.into()],
                )
                .map_err(errors::spi)?;
            if let Some(prev) = previous.filter(|p| *p != relid) {
                if still_listed(client, &schema, prev)? {
                    // Another list still uses it.
                } else if let Ok(t) = Table::open(prev) {
                    security::drop_trigger(client, &t, TRIGGER)?;
                }
            }
            security::drop_trigger(client, &table, TRIGGER)?;
            client
                .update(
                    &format!(
                        "CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {} \
                         FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{TRIGGER}()",
                        table.name
                    ),
                    None,
                    &[],
                )
                .map_err(errors::spi)?;
            Ok(())
        })
    })?;
    mark_changed();
    tags_follow(&schema, Some(relid), Some(name))
}

fn still_listed(
    client: &mut pgrx::spi::SpiClient<'_>,
    schema: &str,
    relid: pg_sys::Oid,
) -> Result<bool, ErrorReport> {
    Ok(!client
        .select(
            &format!(
                "SELECT FROM {schema}.ip_inventory_lists AS l
                 WHERE l.list_table OPERATOR(pg_catalog.=) $1::pg_catalog.oid::pg_catalog.regclass"
            ),
            Some(1),
            &[relid.into()],
        )
        .map_err(errors::spi)?
        .is_empty())
}

/// `ip_list_unregister(list_name text)`: forgets a list (its table stays as it is). The
/// caller must own the list's table.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn ip_list_unregister(
    list_name: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    let schema = security::schema_of(fcinfo);
    let name = list_name.unwrap_or_default();
    let relid = first_value::<pg_sys::Oid>(
        &format!(
            "SELECT l.list_table::pg_catalog.oid FROM {schema}.ip_inventory_lists AS l
             WHERE l.list_name OPERATOR(pg_catalog.=) $1"
        ),
        &[name.into()],
    )?
    .ok_or_else(|| unknown_list(name))?;
    let table = Table::open(relid).ok();
    match &table {
        Some(t) if !t.owned_by_caller() => return Err(must_own(&t.name)),
        None if !unsafe { pg_sys::superuser() } => {
            return Err(must_own(&u32::from(relid).to_string()))
        }
        _ => {}
    }
    let owner = security::extension_owner()?;
    security::run_as(owner, || {
        Spi::connect_mut(|client| {
            client
                .update(
                    &format!(
                        "DELETE FROM {schema}.ip_inventory_lists AS l WHERE l.list_name OPERATOR(pg_catalog.=) $1"
                    ),
                    None,
                    &[name.into()],
                )
                .map_err(errors::spi)?;
            if let Some(t) = &table {
                if !still_listed(client, &schema, t.oid)? {
                    security::drop_trigger(client, t, TRIGGER)?;
                }
            }
            Ok(())
        })
    })?;
    mark_changed();
    tags_follow(&schema, Some(relid), Some(name))
}

/// `_ip_inventory_list_stats(list text)`: what this backend holds for a list (for the docs'
/// sizing figures and the tests): networks, duplicates, ranges, bytes.
#[pg_extern(volatile, parallel_unsafe, name = "_ip_inventory_list_stats")]
fn ip_inventory_list_stats(
    list_name: &str,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<pgrx::JsonB, ErrorReport> {
    let built = list(fcinfo, list_name)?;
    Ok(pgrx::JsonB(serde_json::json!({
        "networks": built.table.networks(),
        "duplicates": built.table.duplicates(),
        "ranges": built.table.ranges(),
        "bytes": built.table.memory() + built.arena.len() + built.networks.len() * 36,
    })))
}
