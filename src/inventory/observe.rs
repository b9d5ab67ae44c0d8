//! Event tables: attaching them, the observe trigger, reading them for backfill and applying
//! retention to them.
//!
//! The set of observed tables is the catalog table `ip_inventory_observed`, written only by
//! `ip_inventory_attach`/`ip_inventory_detach` after they checked that the caller owns the
//! table and may feed the inventory (EXECUTE on `ip_inventory_attach`, revoked from PUBLIC).
//!
//! Reading events never runs another role's code with more rights than that role has:
//! - the trigger (SECURITY DEFINER: it writes the shared inventory) reads only the statement's
//!   transition table, and only columns whose types it checks at every firing to be the
//!   built-in `inet`/`cidr` and timestamp types, so no user-defined cast, operator or
//!   function is involved;
//! - backfill and retention read and change the table as its owner in a security-restricted
//!   operation (`security::Table::as_owner`), after checking the caller's own privileges.
//!
//! Observations are aggregated here, in Rust, and the inventory is written once per distinct
//! address by `_ip_inventory_record` (sql/observe.sql), the same for trigger and backfill.

use std::ffi::CStr;

use ip_inventory_core::inventory::observe::Observations;
use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::prelude::*;
use pgrx::{impl_sql_translatable, FromDatum, PgLogLevel};

use crate::security::{self, Table};
use crate::{citus, datum, errors, gucs};

/// A `regclass` argument, as its OID.
#[derive(Debug, Clone, Copy)]
pub struct RegClass(pub pg_sys::Oid);

impl FromDatum for RegClass {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        (!is_null).then(|| RegClass(pg_sys::Oid::from(datum.value() as u32)))
    }
}

datum::non_null_arg!(RegClass);

impl_sql_translatable!(RegClass, arg_only = "regclass");

/// Which columns of an event table hold addresses and the event time.
struct Columns {
    ip: Vec<String>,
    ts: Option<String>,
}

impl Columns {
    /// The SELECT list reading them: the addresses as they are, the time as `timestamptz`
    /// (a built-in cast: the types are checked before any read).
    fn select_list(&self) -> String {
        let mut cols: Vec<String> = self.ip.iter().map(|c| quote_ident(c)).collect();
        if let Some(ts) = &self.ts {
            cols.push(format!("{}::pg_catalog.timestamptz", quote_ident(ts)));
        }
        cols.join(", ")
    }

    /// Checks against the table's current row type that every address column is `inet` or
    /// `cidr` and the time column `timestamptz`, `timestamp` or `date`: types whose reading
    /// runs no user code. Raises 42804/42703 (the table changed since it was attached).
    fn check(&self, table: &str, tupdesc: pg_sys::TupleDesc) -> Result<(), ErrorReport> {
        for (name, is_ts) in self
            .ip
            .iter()
            .map(|c| (c, false))
            .chain(self.ts.iter().map(|c| (c, true)))
        {
            let typ = column_type(tupdesc, name)
                .ok_or_else(|| errors::event_column_missing(table, name))?;
            let ok = if is_ts {
                [
                    pg_sys::TIMESTAMPTZOID,
                    pg_sys::TIMESTAMPOID,
                    pg_sys::DATEOID,
                ]
                .contains(&typ)
            } else {
                [pg_sys::INETOID, pg_sys::CIDROID].contains(&typ)
            };
            if !ok {
                return Err(errors::event_column_type(table, name, is_ts));
            }
        }
        Ok(())
    }
}

/// The type of a live column of a row type, by name.
fn column_type(tupdesc: pg_sys::TupleDesc, name: &str) -> Option<pg_sys::Oid> {
    // SAFETY: tupdesc is a valid descriptor that outlives this call.
    let desc = unsafe { pgrx::PgTupleDesc::from_pg_unchecked(tupdesc) };
    desc.iter().find_map(|att| {
        // SAFETY: attname is a NUL-terminated NameData.
        let attname = unsafe { CStr::from_ptr(att.attname.data.as_ptr()) };
        (!att.attisdropped && attname.to_bytes() == name.as_bytes()).then_some(att.atttypid)
    })
}

fn quote_ident(name: &str) -> String {
    let c = std::ffi::CString::new(name.replace('\0', "")).unwrap_or_default();
    // SAFETY: quote_identifier returns its argument or a palloc'd quoted copy.
    unsafe { CStr::from_ptr(pg_sys::quote_identifier(c.as_ptr())) }
        .to_string_lossy()
        .into_owned()
}

/// What reading events found: the observations, the rows read, and the highest ctid read
/// (when asked) as (block, offset).
type EventsRead = (Observations, i64, Option<(u32, u16)>);

/// Reads every row of `query` (address columns, then the time column if any) and counts the
/// addresses. Rows without a time count at `now` (the transaction's start, as `now()`).
fn read_events(
    client: &pgrx::spi::SpiClient<'_>,
    query: &str,
    args: &[DatumWithOid<'_>],
    columns: &Columns,
    ctid_first: bool,
) -> Result<EventsRead, ErrorReport> {
    // SAFETY: a plain read.
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    let first_ip = if ctid_first { 2 } else { 1 };
    let ts_col = columns.ts.as_ref().map(|_| first_ip + columns.ip.len());
    let mut obs = Observations::new();
    let mut rows = 0i64;
    let mut last_ctid: Option<(u32, u16)> = None;
    let mut cursor = client.try_open_cursor(query, args).map_err(errors::spi)?;
    loop {
        let fetched = cursor.fetch(10_000).map_err(errors::spi)?;
        if fetched.is_empty() {
            break;
        }
        // SAFETY: SPI_tuptable holds the rows just fetched (kept alive by `fetched`); the
        // columns are, in order, the ctid (when asked), the inet/cidr address columns and the
        // timestamptz time column, as the query was built.
        unsafe {
            let table = pg_sys::SPI_tuptable;
            let tupdesc = (*table).tupdesc;
            let value = |tuple: pg_sys::HeapTuple, col: usize| {
                let mut is_null = false;
                let d = pg_sys::SPI_getbinval(tuple, tupdesc, col as i32, &mut is_null);
                (!is_null).then_some(d)
            };
            for r in 0..(*table).numvals as usize {
                let tuple = *(*table).vals.add(r);
                rows += 1;
                if ctid_first {
                    if let Some(d) = value(tuple, 1) {
                        let tid = datum::item_pointer(d);
                        if last_ctid.is_none_or(|l| tid > l) {
                            last_ctid = Some(tid);
                        }
                    }
                }
                let ts = ts_col
                    .and_then(|c| value(tuple, c))
                    .map_or(now, |d| d.value() as i64);
                for c in first_ip..first_ip + columns.ip.len() {
                    if let Some(d) = value(tuple, c) {
                        obs.add(datum::inet_from_datum(d)?, ts);
                    }
                }
            }
        }
    }
    Ok((obs, rows, last_ctid))
}

/// What `_ip_inventory_record` reports.
#[derive(Default)]
struct Recorded {
    addresses: i64,
    new_addresses: i64,
}

/// Writes aggregated observations into the inventory (as the current user). Observations
/// read from a Citus shard (`shard`) are written on its node (`_ip_inventory_citus_record`).
fn record(
    client: &mut pgrx::spi::SpiClient<'_>,
    schema: &str,
    obs: Observations,
    shard: Option<pg_sys::Oid>,
) -> Result<Recorded, ErrorReport> {
    if obs.is_empty() {
        return Ok(Recorded::default());
    }
    let rows = obs.into_sorted();
    let ips = datum::inet_array(rows.iter().map(|(ip, _)| *ip));
    let counts: Vec<i64> = rows.iter().map(|(_, s)| s.count).collect();
    let stamp = |t: i64| TimestampWithTimeZone::try_from(t).map_err(|_| errors::bad_event_time());
    let firsts = rows
        .iter()
        .map(|(_, s)| stamp(s.first))
        .collect::<Result<Vec<_>, _>>()?;
    let lasts = rows
        .iter()
        .map(|(_, s)| stamp(s.last))
        .collect::<Result<Vec<_>, _>>()?;
    let enrich = gucs::ingest_enrichment();
    let query = match shard {
        None => format!(
            "SELECT r.addresses, r.new_addresses FROM {schema}._ip_inventory_record($1, $2, $3, $4, $5) AS r"
        ),
        Some(shard) => format!(
            "SELECT r.addresses, r.new_addresses
             FROM {schema}._ip_inventory_citus_record({}::pg_catalog.oid::pg_catalog.regclass, $1, $2, $3, $4, $5) AS r",
            u32::from(shard)
        ),
    };
    let t = client
        .update(
            &query,
            None,
            &[
                // SAFETY: an inet[] datum built for this call.
                unsafe { DatumWithOid::new(ips, pg_sys::INETARRAYOID) },
                counts.into(),
                firsts.into(),
                lasts.into(),
                enrich.into(),
            ],
        )
        .map_err(errors::spi)?
        .first();
    Ok(Recorded {
        addresses: t.get::<i64>(1).map_err(errors::spi)?.unwrap_or(0),
        new_addresses: t.get::<i64>(2).map_err(errors::spi)?.unwrap_or(0),
    })
}

/// The attached columns of an event table, from the catalog; `None` when not attached.
fn attached_columns(
    client: &pgrx::spi::SpiClient<'_>,
    schema: &str,
    table: pg_sys::Oid,
) -> Result<Option<Columns>, ErrorReport> {
    let t = client
        .select(
            &format!(
                "SELECT o.ip_columns, o.ts_column FROM {schema}.ip_inventory_observed AS o
                 WHERE o.event_table OPERATOR(pg_catalog.=) $1::pg_catalog.regclass"
            ),
            Some(1),
            &[table.into()],
        )
        .map_err(errors::spi)?;
    if t.is_empty() {
        return Ok(None);
    }
    let t = t.first();
    Ok(Some(Columns {
        ip: t
            .get::<Vec<String>>(1)
            .map_err(errors::spi)?
            .unwrap_or_default(),
        ts: t.get::<String>(2).map_err(errors::spi)?,
    }))
}

/// `ip_inventory_observe()`: the AFTER INSERT ... FOR EACH STATEMENT trigger that
/// `ip_inventory_attach` creates. Declared SECURITY DEFINER with a pinned search_path in
/// sql/observe.sql: inserting roles need no privilege on the inventory.
#[pg_trigger(sql = false)]
fn ip_inventory_observe<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<
    Option<pgrx::heap_tuple::PgHeapTuple<'a, pgrx::AllocatedByPostgres>>,
    std::convert::Infallible,
> {
    if let Err(e) = observe(trigger) {
        e.report(PgLogLevel::ERROR);
    }
    Ok(None)
}

fn observe(trigger: &pgrx::PgTrigger<'_>) -> Result<(), ErrorReport> {
    let data = trigger.trigger_data();
    let statement_insert = matches!(trigger.level(), pgrx::PgTriggerLevel::Statement)
        && matches!(trigger.op(), Ok(pgrx::PgTriggerOperation::Insert))
        && matches!(trigger.when(), Ok(pgrx::PgTriggerWhen::After));
    let Some(new_table) = trigger
        .new_transition_table_name()
        .ok()
        .flatten()
        .filter(|_| statement_insert)
    else {
        return Err(errors::observe_misused());
    };
    let relid = trigger.relid().map_err(|_| errors::observe_misused())?;
    // SAFETY: tg_relation is the trigger's open relation.
    let tupdesc = unsafe { (*data.tg_relation).rd_att };
    let table = datum::relation_display(relid);
    let schema = schema_of_trigger(data);
    Spi::connect_mut(|client| {
        // On a Citus worker the trigger fires on a shard of an attached distributed table.
        let (columns, shard) = match attached_columns(client, &schema, relid)? {
            Some(columns) => (columns, None),
            None => match citus::shard_columns(client, &schema, relid)? {
                Some((ip, ts)) => (Columns { ip, ts }, Some(relid)),
                None => {
                    errors::not_attached(&table).report(PgLogLevel::WARNING);
                    return Ok(());
                }
            },
        };
        columns.check(&table, tupdesc)?;
        // SAFETY: registers this trigger's transition tables with the SPI connection.
        unsafe { pg_sys::SPI_register_trigger_data(data as *const _ as *mut _) };
        let query = format!(
            "SELECT {} FROM {}",
            columns.select_list(),
            quote_ident(new_table)
        );
        let (obs, _, _) = read_events(client, &query, &[], &columns, false)?;
        record(client, &schema, obs, shard)?;
        Ok(())
    })
}

/// The schema of the trigger's function: the extension's.
pub(crate) fn schema_of_trigger(data: &pg_sys::TriggerData) -> String {
    // SAFETY: tg_trigger is the firing trigger; tgfoid is its function.
    unsafe {
        let foid = (*data.tg_trigger).tgfoid;
        let name = pg_sys::get_namespace_name(pg_sys::get_func_namespace(foid));
        if name.is_null() {
            return "public".to_owned();
        }
        CStr::from_ptr(pg_sys::quote_identifier(name))
            .to_string_lossy()
            .into_owned()
    }
}

/// `ip_inventory_attach(tbl regclass, ip_columns text[], ts_column text DEFAULT NULL)`:
/// records the table in `ip_inventory_observed` and (re)creates its observe trigger. The
/// caller must own the table and hold EXECUTE on this function (the privilege to feed the
/// inventory; revoked from PUBLIC).
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn ip_inventory_attach(
    tbl: Option<RegClass>,
    ip_columns: Option<Vec<Option<String>>>,
    ts_column: default!(Option<String>, "NULL"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    let schema = security::schema_of(fcinfo);
    let tbl = tbl.ok_or_else(errors::no_table)?;
    let table = Table::open(tbl.0)?;
    if !table.owned_by_caller() {
        return Err(errors::must_own(&table.name, "attach"));
    }
    check_columns(&schema, tbl.0, ip_columns.clone(), ts_column.clone())?;
    let ip_columns: Vec<String> = ip_columns
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    let attached_by = security::role_name(security::caller());
    let owner = security::extension_owner()?;
    let (ip_columns_again, ts_again) = (ip_columns.clone(), ts_column.clone());
    security::run_as(owner, || {
        Spi::connect_mut(|client| {
            client
                .update(
                    &format!(
                        "INSERT INTO {schema}.ip_inventory_observed AS o
                             (event_table, ip_columns, ts_column, attached_by, attached_at)
                         VALUES ($1::pg_catalog.regclass, $2, $3, $4, pg_catalog.now())
                         ON CONFLICT (event_table) DO UPDATE SET ip_columns = excluded.ip_columns,
                             ts_column = excluded.ts_column, attached_by = excluded.attached_by,
                             attached_at = excluded.attached_at"
                    ),
                    None,
                    &[
                        tbl.0.into(),
                        ip_columns.into(),
                        ts_column.into(),
                        attached_by.into(),
                    ],
                )
                .map_err(errors::spi)?;
            // A distributed table: Citus creates the trigger on every shard, where it fires
            // on the worker holding the shard (citus.enable_unsafe_triggers, for this
            // statement only); the reference table tells the shards' triggers the columns.
            let distributed = citus::is_distributed(client, &schema, table.oid)?;
            if distributed {
                client
                    .update(
                        &format!(
                            "SELECT {schema}._ip_inventory_citus_set_observed($1::pg_catalog.regclass, $2, $3)"
                        ),
                        None,
                        &[table.oid.into(), ip_columns_again.clone().into(), ts_again.clone().into()],
                    )
                    .map_err(errors::spi)?;
            }
            security::drop_trigger(client, &table, "ip_inventory_observe")?;
            if distributed {
                set_unsafe_triggers(client, "on")?;
            }
            client
                .update(
                    &format!(
                        "CREATE TRIGGER ip_inventory_observe AFTER INSERT ON {} \
                         REFERENCING NEW TABLE AS ip_inventory_new \
                         FOR EACH STATEMENT EXECUTE FUNCTION {schema}.ip_inventory_observe()",
                        table.name
                    ),
                    None,
                    &[],
                )
                .map_err(errors::spi)?;
            if distributed {
                set_unsafe_triggers(client, "off")?;
            }
            Ok(())
        })
    })
}

/// Sets `citus.enable_unsafe_triggers` for the rest of the transaction: Citus creates
/// triggers on distributed tables only with it.
fn set_unsafe_triggers(
    client: &mut pgrx::spi::SpiClient<'_>,
    value: &str,
) -> Result<(), ErrorReport> {
    client
        .update(
            "SELECT pg_catalog.set_config('citus.enable_unsafe_triggers', $1, true)",
            None,
            &[value.into()],
        )
        .map(|_| ())
        .map_err(errors::spi)
}

/// Raises unless the table has these address columns and this time column (as the caller).
fn check_columns(
    schema: &str,
    tbl: pg_sys::Oid,
    ip_columns: Option<Vec<Option<String>>>,
    ts_column: Option<String>,
) -> Result<(), ErrorReport> {
    Spi::connect(|client| {
        client
            .select(
                &format!(
                    "SELECT {schema}._ip_inventory_check_columns($1::pg_catalog.regclass, $2, $3)"
                ),
                None,
                &[tbl.into(), ip_columns.into(), ts_column.into()],
            )
            .map(|_| ())
    })
    .map_err(errors::spi)
}

/// `ip_inventory_detach(tbl regclass)`: drops the observe trigger and the catalog entry. The
/// caller must own the table.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn ip_inventory_detach(
    tbl: Option<RegClass>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    let schema = security::schema_of(fcinfo);
    let tbl = tbl.ok_or_else(errors::no_table)?;
    // A dropped or converted relation can still be forgotten by its OID.
    let table = Table::open(tbl.0).ok();
    if let Some(t) = &table {
        if !t.owned_by_caller() {
            return Err(errors::must_own(&t.name, "detach"));
        }
    } else if !unsafe { pg_sys::superuser() } {
        return Err(errors::must_own(&u32::from(tbl.0).to_string(), "detach"));
    }
    let owner = security::extension_owner()?;
    // Its enriched views first, as the table's owner (who owns them); a table already
    // dropped took them with it.
    if let Some(t) = &table {
        let views = security::run_as(owner, || {
            Spi::connect(|client| recorded_views(client, &schema, t.oid))
        })?;
        drop_views(t, &views)?;
    }
    security::run_as(owner, || {
        Spi::connect_mut(|client| {
            if let Some(t) = &table {
                if citus::is_distributed(client, &schema, t.oid)? {
                    client
                        .update(
                            &format!(
                                "SELECT {schema}._ip_inventory_citus_set_observed($1::pg_catalog.regclass, NULL, NULL)"
                            ),
                            None,
                            &[t.oid.into()],
                        )
                        .map_err(errors::spi)?;
                }
                security::drop_trigger(client, t, "ip_inventory_observe")?;
            }
            client
                .update(
                    &format!(
                        "DELETE FROM {schema}.ip_inventory_observed AS o
                         WHERE o.event_table OPERATOR(pg_catalog.=) $1::pg_catalog.regclass"
                    ),
                    None,
                    &[tbl.0.into()],
                )
                .map(|_| ())
                .map_err(errors::spi)
        })
    })
}

/// The views `ip_inventory_enriched_view` recorded for an event table that are still views
/// over it (a recorded OID whose view was dropped, or was reused by another relation, is
/// skipped): their OIDs and qualified, quoted names. Read as the extension's owner.
fn recorded_views(
    client: &pgrx::spi::SpiClient<'_>,
    schema: &str,
    table: pg_sys::Oid,
) -> Result<Vec<(pg_sys::Oid, String)>, ErrorReport> {
    let rows = client
        .select(
            &format!(
                "WITH reads AS NOT MATERIALIZED (
                     -- (a view, a relation it reads), from the views' rewrite rules; inlined
                     -- into each use, so the lookups by view go through the catalogs' indexes.
                     SELECT r.ev_class AS reader, d.refobjid AS source
                     FROM pg_catalog.pg_rewrite AS r
                     JOIN pg_catalog.pg_depend AS d
                       ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                      AND d.objid OPERATOR(pg_catalog.=) r.oid
                     WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass)
                 SELECT c.oid, pg_catalog.concat(pg_catalog.quote_ident(n.nspname), '.', pg_catalog.quote_ident(c.relname))
                 FROM {schema}.ip_inventory_observed AS o,
                      pg_catalog.unnest(o.enriched_views) WITH ORDINALITY AS v(rel, ord)
                 JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) v.rel::pg_catalog.oid
                 JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                 WHERE o.event_table OPERATOR(pg_catalog.=) $1::pg_catalog.regclass
                   AND c.relkind OPERATOR(pg_catalog.=) 'v'
                   AND (EXISTS (SELECT FROM reads AS x
                                WHERE x.reader OPERATOR(pg_catalog.=) c.oid
                                  AND x.source OPERATOR(pg_catalog.=) $1::pg_catalog.oid)
                        -- The tag views read the enriched view (the first recorded), itself
                        -- a view over the table.
                        OR EXISTS (SELECT FROM reads AS x, reads AS y
                                   WHERE x.reader OPERATOR(pg_catalog.=) c.oid
                                     AND x.source OPERATOR(pg_catalog.=) o.enriched_views[1]::pg_catalog.oid
                                     AND y.reader OPERATOR(pg_catalog.=) x.source
                                     AND y.source OPERATOR(pg_catalog.=) $1::pg_catalog.oid))
                 ORDER BY v.ord DESC"
            ),
            None,
            &[table.into()],
        )
        .map_err(errors::spi)?;
    let mut out = Vec::new();
    for row in rows {
        out.push((
            row.get::<pg_sys::Oid>(1)
                .map_err(errors::spi)?
                .unwrap_or(pg_sys::Oid::INVALID),
            row.get::<String>(2)
                .map_err(errors::spi)?
                .unwrap_or_default(),
        ));
    }
    Ok(out)
}

/// Drops views as the event table's owner (who owns them).
fn drop_views(table: &Table, views: &[(pg_sys::Oid, String)]) -> Result<(), ErrorReport> {
    if views.is_empty() {
        return Ok(());
    }
    table.as_owner(|| {
        Spi::connect_mut(|client| {
            for (_, name) in views {
                client
                    .update(&format!("DROP VIEW {name}"), None, &[])
                    .map_err(errors::spi)?;
            }
            Ok(())
        })
    })
}

/// `ip_inventory_enriched_view(event_table regclass, view_name text DEFAULT NULL, view_schema
/// text DEFAULT NULL) → text[]`: (re)creates the views for BI over an attached event table:
/// `<view_name>` (default `<table>_enriched`), the events joined to the inventory for each
/// address column, and with an event time `<view_name>_daily_country`,
/// `<view_name>_daily_asn` and `<view_name>_daily_tag`, and `<view_name>_tag_report` (events
/// and average confidence by tag, event rules included). They are created in `view_schema`
/// (default: the table's) as the table's owner, who owns them, with `security_invoker`: a
/// reader needs SELECT on the events and on ip_inventory, so a view never shows events to
/// anyone who could not read them. The
/// views recorded earlier for the table are replaced; a relation of one of the names that is
/// not one of them is refused (42P07). Returns the views' qualified names.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn ip_inventory_enriched_view(
    event_table: Option<RegClass>,
    view_name: default!(Option<String>, "NULL"),
    view_schema: default!(Option<String>, "NULL"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<Vec<String>, ErrorReport> {
    let schema = security::schema_of(fcinfo);
    let tbl = event_table.ok_or_else(errors::no_table)?;
    let table = Table::open(tbl.0)?;
    if !table.owned_by_caller() {
        return Err(errors::must_own(&table.name, "create its enriched views"));
    }
    let owner = security::extension_owner()?;
    // The catalog, the names and the SQL, read as the extension's owner (no user code runs).
    type Plan = (
        Vec<(pg_sys::Oid, String)>,
        Vec<(String, String, Vec<String>)>,
        String,
    );
    let (recorded, views, view_schema) = security::run_as(owner, || {
        Spi::connect(|client| -> Result<Plan, ErrorReport> {
            let Some(columns) = attached_columns(client, &schema, table.oid)? else {
                return Err(errors::not_attached(&table.name));
            };
            // Columns changed to another type since attach would bring the owner's casts
            // into the views: refused, as the trigger refuses them.
            datum::with_row_type(table.oid, |tupdesc| columns.check(&table.name, tupdesc))?;
            let t = client
                .select(
                    "SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text
                     FROM pg_catalog.pg_class AS c
                     JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                     WHERE c.oid OPERATOR(pg_catalog.=) $1",
                    Some(1),
                    &[table.oid.into()],
                )
                .map_err(errors::spi)?
                .first();
            let table_schema = t.get::<String>(1).map_err(errors::spi)?.unwrap_or_default();
            let relname = t.get::<String>(2).map_err(errors::spi)?.unwrap_or_default();
            let view_schema = view_schema.unwrap_or(table_schema);
            let view_name = view_name.unwrap_or_else(|| format!("{relname}_enriched"));
            let rows = client
                .select(
                    &format!(
                        "SELECT s.kind, s.relname, s.ddl FROM {schema}._ip_inventory_enriched_view_sql(
                             $1::pg_catalog.regclass, $2, $3, $4, $5) AS s"
                    ),
                    None,
                    &[
                        table.oid.into(),
                        columns.ip.clone().into(),
                        columns.ts.clone().into(),
                        view_schema.clone().into(),
                        view_name.into(),
                    ],
                )
                .map_err(errors::spi)?;
            let mut views = Vec::new();
            for row in rows {
                views.push((
                    row.get::<String>(1)
                        .map_err(errors::spi)?
                        .unwrap_or_default(),
                    row.get::<String>(2)
                        .map_err(errors::spi)?
                        .unwrap_or_default(),
                    row.get::<Vec<String>>(3)
                        .map_err(errors::spi)?
                        .unwrap_or_default(),
                ));
            }
            let recorded = recorded_views(client, &schema, table.oid)?;
            // A relation of one of the names that is not a view recorded for this table.
            for (_, relname, _) in &views {
                let existing = client
                    .select(
                        "SELECT c.oid FROM pg_catalog.pg_class AS c
                         JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                         WHERE n.nspname OPERATOR(pg_catalog.=) $1 AND c.relname OPERATOR(pg_catalog.=) $2",
                        Some(1),
                        &[view_schema.clone().into(), relname.clone().into()],
                    )
                    .map_err(errors::spi)?;
                if let Some(row) = existing.into_iter().next() {
                    let oid = row.get::<pg_sys::Oid>(1).map_err(errors::spi)?;
                    if !recorded.iter().any(|(r, _)| Some(*r) == oid) {
                        return Err(errors::view_name_taken(
                            &format!("{}.{}", quote_ident(&view_schema), quote_ident(relname)),
                            &table.name,
                        ));
                    }
                }
            }
            Ok((recorded, views, view_schema))
        })
    })?;
    drop_views(&table, &recorded)?;
    // Created as the table's owner in a security-restricted operation: they are the owner's,
    // in a schema where the owner may create them.
    let created: Vec<(pg_sys::Oid, String)> = table.as_owner(|| {
        Spi::connect_mut(|client| {
            let mut created = Vec::new();
            for (_, relname, ddl) in &views {
                for statement in ddl {
                    client.update(statement, None, &[]).map_err(errors::spi)?;
                }
                let oid = client
                    .select(
                        "SELECT c.oid FROM pg_catalog.pg_class AS c
                         JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                         WHERE n.nspname OPERATOR(pg_catalog.=) $1 AND c.relname OPERATOR(pg_catalog.=) $2",
                        Some(1),
                        &[view_schema.clone().into(), relname.clone().into()],
                    )
                    .map_err(errors::spi)?
                    .first()
                    .get::<pg_sys::Oid>(1)
                    .map_err(errors::spi)?
                    .unwrap_or(pg_sys::Oid::INVALID);
                created.push((
                    oid,
                    format!("{}.{}", quote_ident(&view_schema), quote_ident(relname)),
                ));
            }
            Ok::<_, ErrorReport>(created)
        })
    })?;
    let oids: Vec<pg_sys::Oid> = created.iter().map(|(o, _)| *o).collect();
    security::run_as(owner, || {
        Spi::connect_mut(|client| {
            client
                .update(
                    &format!(
                        "UPDATE {schema}.ip_inventory_observed AS o
                         SET enriched_views = $2::pg_catalog.oid[]::pg_catalog.regclass[]
                         WHERE o.event_table OPERATOR(pg_catalog.=) $1::pg_catalog.regclass"
                    ),
                    None,
                    &[table.oid.into(), oids.into()],
                )
                .map(|_| ())
                .map_err(errors::spi)
        })
    })?;
    Ok(created.into_iter().map(|(_, name)| name).collect())
}

/// `_ip_inventory_enriched_view_refresh(event_table regclass)`: replaces the enriched view
/// recorded for an attached table (the first of `enriched_views`) with `CREATE OR REPLACE
/// VIEW` under its current name, as the table's owner: the event rules of the table are
/// compiled into it as literals, so `_ip_inventory_tag_rules_changed` calls this after every
/// change of the rules. Grants on the view and views over it stay. Nothing to do when the
/// table is gone, detached or has no recorded enriched view. Not for PUBLIC: it runs DDL as
/// another role (the SQL is the extension's, the rules' values quoted literals).
#[pg_extern(
    volatile,
    parallel_unsafe,
    name = "_ip_inventory_enriched_view_refresh"
)]
#[search_path(pg_catalog, pg_temp)]
fn ip_inventory_enriched_view_refresh(
    event_table: RegClass,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    let schema = security::schema_of(fcinfo);
    let Ok(table) = Table::open(event_table.0) else {
        return Ok(());
    };
    let owner = security::extension_owner()?;
    let ddl = security::run_as(owner, || {
        Spi::connect(|client| -> Result<Option<Vec<String>>, ErrorReport> {
            let Some(columns) = attached_columns(client, &schema, table.oid)? else {
                return Ok(None);
            };
            let recorded = recorded_views(client, &schema, table.oid)?;
            // The enriched view is the first recorded; recorded_views lists them last first.
            let Some((oid, _)) = recorded.last() else {
                return Ok(None);
            };
            let first = client
                .select(
                    &format!(
                        "SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text
                         FROM {schema}.ip_inventory_observed AS o
                         JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) o.enriched_views[1]::pg_catalog.oid
                         JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                         WHERE o.event_table OPERATOR(pg_catalog.=) $1::pg_catalog.regclass
                           AND c.oid OPERATOR(pg_catalog.=) $2"
                    ),
                    Some(1),
                    &[table.oid.into(), (*oid).into()],
                )
                .map_err(errors::spi)?;
            if first.is_empty() {
                return Ok(None);
            }
            let first = first.first();
            let view_schema = first
                .get::<String>(1)
                .map_err(errors::spi)?
                .unwrap_or_default();
            let view_name = first
                .get::<String>(2)
                .map_err(errors::spi)?
                .unwrap_or_default();
            datum::with_row_type(table.oid, |tupdesc| columns.check(&table.name, tupdesc))?;
            let ddl = client
                .select(
                    &format!(
                        "SELECT s.ddl FROM {schema}._ip_inventory_enriched_view_sql(
                             $1::pg_catalog.regclass, $2, $3, $4, $5) AS s
                         WHERE s.kind OPERATOR(pg_catalog.=) 'enriched'"
                    ),
                    Some(1),
                    &[
                        table.oid.into(),
                        columns.ip.clone().into(),
                        columns.ts.clone().into(),
                        view_schema.into(),
                        view_name.into(),
                    ],
                )
                .map_err(errors::spi)?
                .first()
                .get::<Vec<String>>(1)
                .map_err(errors::spi)?;
            Ok(ddl)
        })
    })?;
    let Some(ddl) = ddl else {
        return Ok(());
    };
    table.as_owner(|| {
        Spi::connect_mut(|client| {
            for statement in &ddl {
                client.update(statement, None, &[]).map_err(errors::spi)?;
            }
            Ok(())
        })
    })
}

/// `_ip_inventory_backfill_batch(event_table, ip_columns, ts_column, after_ctid, before_page,
/// enrich)`: records the observations of the rows of `event_table` after `after_ctid` (and before
/// page `before_page`, NULL: to the end). The rows are read as the table's owner in a
/// security-restricted operation; the inventory is written as the caller, who must be able
/// to read the table. Returns (event_rows, last_ctid, addresses, new_addresses).
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe, name = "_ip_inventory_backfill_batch")]
#[search_path(pg_catalog, pg_temp)]
fn ip_inventory_backfill_batch(
    event_table: RegClass,
    ip_columns: Vec<Option<String>>,
    ts_column: Option<String>,
    after_ctid: &str,
    before_page: Option<i64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<
    TableIterator<
        'static,
        (
            name!(event_rows, i64),
            name!(last_ctid, Option<String>),
            name!(addresses, i64),
            name!(new_addresses, i64),
        ),
    >,
    ErrorReport,
> {
    let schema = security::schema_of(fcinfo);
    let table = Table::open(event_table.0)?;
    table.require("SELECT", "backfill it")?;
    let columns = Columns {
        ip: ip_columns.into_iter().flatten().collect(),
        ts: ts_column,
    };
    let mut condition = "ctid OPERATOR(pg_catalog.>) $1::pg_catalog.tid".to_owned();
    if let Some(page) = before_page {
        condition.push_str(&format!(
            " AND ctid OPERATOR(pg_catalog.<) '({page},0)'::pg_catalog.tid"
        ));
    }
    let query = format!(
        "SELECT ctid, {} FROM {} WHERE {condition}",
        columns.select_list(),
        table.name
    );
    let (obs, rows, last) = table.as_owner(|| {
        Spi::connect(|client| {
            datum::with_row_type(table.oid, |tupdesc| columns.check(&table.name, tupdesc))?;
            read_events(client, &query, &[after_ctid.into()], &columns, true)
        })
    })?;
    let shard = Spi::connect(|client| citus::is_shard(client, &schema, table.oid))?;
    let recorded =
        Spi::connect_mut(|client| record(client, &schema, obs, shard.then_some(table.oid)))?;
    Ok(TableIterator::once((
        rows,
        last.map(|(b, o)| format!("({b},{o})")),
        recorded.addresses,
        recorded.new_addresses,
    )))
}

/// `_ip_inventory_retain_events(event_table, mode, cutoff, prefix_v4, prefix_v6, batch_size,
/// dry_run) → bigint`: one batch of retention on an attached event table: events older than
/// `cutoff` get their addresses truncated (`anonymize`) or are deleted (`delete`); a dry run
/// counts them all. Runs as the table's owner in a security-restricted operation; the caller
/// must hold UPDATE (anonymize), DELETE (delete) or SELECT (dry run) on the table.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, name = "_ip_inventory_retain_events")]
#[search_path(pg_catalog, pg_temp)]
fn ip_inventory_retain_events(
    event_table: RegClass,
    mode: &str,
    cutoff: TimestampWithTimeZone,
    prefix_v4: i32,
    prefix_v6: i32,
    batch_size: i32,
    dry_run: bool,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<Option<i64>, ErrorReport> {
    let schema = security::schema_of(fcinfo);
    let table = Table::open(event_table.0)?;
    let columns = Spi::connect(|client| {
        Ok::<_, ErrorReport>(match attached_columns(client, &schema, table.oid)? {
            Some(columns) => Some(columns),
            // A shard of an attached distributed table, on its worker.
            None => {
                citus::shard_columns(client, &schema, table.oid)?.map(|(ip, ts)| Columns { ip, ts })
            }
        })
    })?;
    let Some(columns) = columns else {
        return Err(errors::not_attached(&table.name));
    };
    let Some(ts) = &columns.ts else {
        return Ok(None);
    };
    let anonymize = match mode {
        "anonymize" => true,
        "delete" => false,
        other => return Err(errors::retention_mode(other)),
    };
    table.require(
        if dry_run {
            "SELECT"
        } else if anonymize {
            "UPDATE"
        } else {
            "DELETE"
        },
        "apply retention to it",
    )?;
    // (The column cast to inet: an overload for cidr elsewhere cannot match better.)
    let anon = |c: &String| {
        format!(
            "{schema}.ip_anonymize({}::pg_catalog.inet, $1, $2)",
            quote_ident(c)
        )
    };
    let changed: Vec<String> = columns
        .ip
        .iter()
        .map(|c| format!("{} = {}", quote_ident(c), anon(c)))
        .collect();
    let differs: Vec<String> = columns
        .ip
        .iter()
        .map(|c| format!("{} IS DISTINCT FROM {}", quote_ident(c), anon(c)))
        .collect();
    let mut old_rows = format!(
        "{}::pg_catalog.timestamptz OPERATOR(pg_catalog.<) $3",
        quote_ident(ts)
    );
    if anonymize {
        old_rows.push_str(&format!(" AND ({})", differs.join(" OR ")));
    }
    let name = &table.name;
    let query = if dry_run {
        format!("SELECT pg_catalog.count(*) FROM {name} WHERE {old_rows}")
    } else if anonymize {
        format!(
            "UPDATE {name} SET {} WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT ctid FROM {name} WHERE {old_rows} LIMIT $4))",
            changed.join(", ")
        )
    } else {
        format!(
            "DELETE FROM {name} WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT ctid FROM {name} WHERE {old_rows} LIMIT $4))"
        )
    };
    let done = table.as_owner(|| {
        Spi::connect_mut(|client| {
            datum::with_row_type(table.oid, |tupdesc| columns.check(&table.name, tupdesc))?;
            let done = client
                .update(
                    &query,
                    None,
                    &[
                        prefix_v4.into(),
                        prefix_v6.into(),
                        cutoff.into(),
                        batch_size.into(),
                    ],
                )
                .map_err(errors::spi)?;
            if dry_run {
                return done.first().get::<i64>(1).map_err(errors::spi);
            }
            // The statement's own row count: rules the owner added may run queries of their
            // own (a plain statement, not WITH: rules are refused in data-modifying WITH).
            // SAFETY: a plain read of the count of the command that set its tag.
            Ok(Some(unsafe { pg_sys::SPI_processed } as i64))
        })
    })?;
    Ok(Some(done.unwrap_or(0)))
}

/// `_ip_inventory_rows_before_page(event_table, pages) → bigint`: rows in the first pages of an
/// event table (to size backfill batches of a table never analyzed), counted as its owner.
#[pg_extern(volatile, parallel_unsafe, name = "_ip_inventory_rows_before_page")]
#[search_path(pg_catalog, pg_temp)]
fn ip_inventory_rows_before_page(event_table: RegClass, pages: i64) -> Result<i64, ErrorReport> {
    let table = Table::open(event_table.0)?;
    table.require("SELECT", "backfill it")?;
    let query = format!(
        "SELECT pg_catalog.count(*) FROM {} WHERE ctid OPERATOR(pg_catalog.<) pg_catalog.format('(%s,0)', $1)::pg_catalog.tid",
        table.name
    );
    table.as_owner(|| {
        Spi::get_one_with_args::<i64>(&query, &[pages.into()])
            .map(|n| n.unwrap_or(0))
            .map_err(errors::spi)
    })
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.ip_inventory_attach(regclass, text[], text) IS
    'Attaches an event table: its inserts are recorded in ip_inventory (the observe trigger) and retention applies to it, e.g. SELECT ip_inventory_attach(''raw_events'', ARRAY[''src_ip'', ''dst_ip''], ''event_ts''). The caller must own the table; EXECUTE on this function is the privilege to feed the inventory.';
COMMENT ON FUNCTION @extschema@.ip_inventory_detach(regclass) IS 'Detaches an event table: drops its enriched views (ip_inventory_enriched_view), its observe trigger and forgets it. The caller must own the table.';
COMMENT ON FUNCTION @extschema@.ip_inventory_enriched_view(regclass, text, text) IS
    'Creates (or replaces) the BI views of an attached event table: <view_name> (default <table>_enriched: the events joined to ip_inventory per address column, columns prefixed src_country, dst_asn, ...) and, with an event time, <view_name>_daily_country, <view_name>_daily_asn and <view_name>_daily_tag, and <view_name>_tag_report (events and average confidence by tag, address and event rules). Owned by the table''s owner, in view_schema (default the table''s), security_invoker: readers need SELECT on the events and ip_inventory. ip_inventory_detach drops them. The caller must own the table.';
COMMENT ON FUNCTION @extschema@._ip_inventory_enriched_view_refresh(regclass) IS 'Replaces the recorded enriched view of an attached table as its owner, after a change of the event rules (internal: _ip_inventory_tag_rules_changed).';
COMMENT ON FUNCTION @extschema@._ip_inventory_backfill_batch(regclass, text[], text, text, bigint) IS 'One backfill batch: reads the rows as the table''s owner and records them (internal: ip_inventory_backfill).';
COMMENT ON FUNCTION @extschema@._ip_inventory_retain_events(regclass, text, timestamptz, int, int, int, boolean) IS 'One retention batch of an attached event table, run as its owner (internal: ip_inventory_retention).';
COMMENT ON FUNCTION @extschema@._ip_inventory_rows_before_page(regclass, bigint) IS 'Rows in the first pages of an event table, counted as its owner (internal: backfill).';
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_attach(regclass, text[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_detach(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_enriched_view(regclass, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_enriched_view_refresh(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_backfill_batch(regclass, text[], text, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retain_events(regclass, text, timestamptz, int, int, int, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_rows_before_page(regclass, bigint) FROM PUBLIC;
"#,
    name = "event_tables",
    requires = [
        ip_inventory_attach,
        ip_inventory_detach,
        ip_inventory_enriched_view,
        ip_inventory_enriched_view_refresh,
        ip_inventory_backfill_batch,
        ip_inventory_retain_events,
        ip_inventory_rows_before_page
    ]
);
