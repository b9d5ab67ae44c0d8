//! The lookup functions: `ip_class`, `ip_country`, `ip_asn`, `ip_asn_org`, `enrich_ip`,
//! `mmdb_lookup`. Each translates SQL values to the core and back; the decoding lives in
//! `ip_inventory_core::mmdb`.
//!
//! All are STRICT (but `_ip_inventory_maxmind_json`, whose arguments are the fields that may
//! be NULL) and PARALLEL SAFE with no SET clause (a SET clause makes every call pay
//! for a GUC save/restore, ~3x). Only `public` addresses, and 6to4 and Teredo addresses as
//! libmaxminddb answers them, are ever looked up in MaxMind.

use std::path::Path;

use ip_inventory_core::classify;
use ip_inventory_core::metrics::{MaxmindMetric, Metric};
use ip_inventory_core::mmdb::{CityCache, Database, DbError, DbSlot, Hit, Store};
use ip_inventory_core::mmdb::{DbErrorKind, DbFamily};
use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::prelude::*;
use pgrx::JsonB;

use super::readers;
use crate::datum::{
    self, AnonymizerDatum, EnrichmentDatum, InetArg, InetDatum, IspDatum, TextDatum,
};
use crate::errors;
use crate::metrics;

/// `ip_class(inet)`: the IANA special-purpose class of an address (`public`, `private`,
/// `loopback`, ...). Pure computation, no database.
#[pg_extern(immutable, strict, parallel_safe)]
fn ip_class(ip: InetArg) -> &'static str {
    classify(ip.addr).as_str()
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.ip_class(inet) IS
    'IANA special-purpose class of an address: public, private, loopback, link_local, cgnat, multicast, documentation, benchmarking, reserved, ... (IPv4-mapped addresses by their IPv4 address).';
"#,
    name = "ip_class_comment",
    requires = [ip_class]
);

/// Looks `ip` up in the slot `slot` picks and hands a hit to `read`; maps every failure to
/// an ERROR naming that slot's file. `Ok(None)` when the database cannot hold the address.
fn read_hit<T>(
    ip: InetArg,
    slot: impl FnOnce(&mut readers::Readers) -> Result<&mut readers::Slot, ErrorReport>,
    read: impl for<'a> FnOnce(&'a Database, &Hit<'a>) -> Result<Option<T>, DbError>,
) -> Result<Option<T>, errors::Boxed> {
    read_hit_or(ip, slot, |_| None, read)
}

/// [`read_hit`], answered by `quick` when it can: (value, whether the database has a record),
/// without a lookup.
fn read_hit_or<T>(
    ip: InetArg,
    slot: impl FnOnce(&mut readers::Readers) -> Result<&mut readers::Slot, ErrorReport>,
    quick: impl FnOnce(&Database) -> Option<(Option<T>, bool)>,
    read: impl for<'a> FnOnce(&'a Database, &Hit<'a>) -> Result<Option<T>, DbError>,
) -> Result<Option<T>, errors::Boxed> {
    readers::with(|r| {
        r.lookup_or(slot, ip.addr, quick, |db, hit| match hit {
            Some(hit) => Ok((read(db, hit)?, hit.has_data())),
            None => Ok((None, false)),
        })
    })
}

/// Whether MaxMind is consulted for `ip` (public addresses, and 6to4 and Teredo addresses as
/// libmaxminddb answers them: `IpClass::in_maxmind`); the others are counted as `not_public`.
#[inline]
fn is_public(ip: InetArg) -> bool {
    let public = classify(ip.addr).in_maxmind();
    if !public {
        metrics::count(Metric::maxmind(MaxmindMetric::NotPublic));
    }
    public
}

/// `ip_canonical(inet) → inet`: the address as the inventory keys it: IPv4-mapped IPv6
/// becomes IPv4, and any netmask is dropped (`::ffff:1.2.3.4/96` → `1.2.3.4`).
#[pg_extern(immutable, strict, parallel_safe)]
fn ip_canonical(ip: InetArg) -> InetDatum {
    InetDatum(datum::network_datum(ipnetwork::IpNetwork::from(
        ip_inventory_core::canonical(ip.addr),
    )))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.ip_canonical(inet) IS
    'The address as ip_inventory keys it: IPv4-mapped IPv6 as IPv4, netmask dropped.';
"#,
    name = "ip_canonical_comment",
    requires = [ip_canonical]
);

/// `ip_country(inet)`: ISO country code from the City database (NULL when unknown or not
/// public).
#[pg_extern(stable, strict, parallel_safe)]
fn ip_country(ip: InetArg) -> Option<TextDatum> {
    if !is_public(ip) {
        return None;
    }
    // IPv4 addresses are answered by the pre-decoded records' country map when there is
    // one, without walking the tree.
    read_hit_or(
        ip,
        |r| Ok(&mut r.city),
        |db| {
            db.country_v4(ip.addr)
                .map(|(code, found)| (code.map(TextDatum::new), found))
        },
        |db, hit| Ok(db.country_code(hit)?.map(TextDatum::new)),
    )
    .unwrap_or_else(|e| errors::raise(e))
}

/// `ip_asn(inet)`: autonomous system number from the ASN database.
#[pg_extern(stable, strict, parallel_safe)]
fn ip_asn(ip: InetArg) -> Option<i64> {
    if !is_public(ip) {
        return None;
    }
    read_hit(
        ip,
        |r| Ok(&mut r.asn),
        |db, hit| {
            let n = db.asn_number(hit)?;
            count_malformed(n.malformed);
            Ok(n.number.map(i64::from))
        },
    )
    .unwrap_or_else(|e| errors::raise(e))
}

/// Counts a record value answered NULL because it could not be read (an IPinfo `asn` that is
/// no `AS<number>`): `ip_inventory_stats` shows it as `maxmind` / `bad_values`.
#[inline]
fn count_malformed(malformed: bool) {
    if malformed {
        metrics::count(Metric::maxmind(MaxmindMetric::BadValues));
    }
}

/// `ip_asn_org(inet)`: autonomous system organisation from the ASN database.
#[pg_extern(stable, strict, parallel_safe)]
fn ip_asn_org(ip: InetArg) -> Option<TextDatum> {
    if !is_public(ip) {
        return None;
    }
    read_hit(
        ip,
        |r| Ok(&mut r.asn),
        |db, hit| Ok(db.asn_fields(hit)?.organization.map(TextDatum::new)),
    )
    .unwrap_or_else(|e| errors::raise(e))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.ip_country(inet) IS
    'ISO 3166 country code from the MaxMind City database; NULL when unknown or the address is not public (6to4 and Teredo addresses: as libmaxminddb answers them).';
COMMENT ON FUNCTION @extschema@.ip_asn(inet) IS
    'Autonomous system number from the MaxMind ASN database; NULL when unknown or the address is not public (6to4 and Teredo addresses: as libmaxminddb answers them).';
COMMENT ON FUNCTION @extschema@.ip_asn_org(inet) IS
    'Autonomous system organisation from the MaxMind ASN database; NULL when unknown or the address is not public (6to4 and Teredo addresses: as libmaxminddb answers them).';
"#,
    name = "accessor_comments",
    requires = [ip_country, ip_asn, ip_asn_org]
);

/// Attribute types of `ip_anonymizer`, in order: the six flags.
const ANONYMIZER_TYPES: [pg_sys::Oid; 6] = [pg_sys::BOOLOID; 6];

/// `ip_anonymous(inet) → ip_anonymizer`: the anonymizer flags of the Anonymous-IP (or
/// Anonymous Plus, Enterprise) database; NULL when the database holds no anonymizer data for
/// the address or MaxMind is not consulted for it.
#[pg_extern(stable, strict, parallel_safe)]
fn ip_anonymous(ip: InetArg, fcinfo: pg_sys::FunctionCallInfo) -> Option<AnonymizerDatum> {
    anonymous(ip, fcinfo).unwrap_or_else(|e| errors::raise(e))
}

fn anonymous(
    ip: InetArg,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<Option<AnonymizerDatum>, errors::Boxed> {
    if !is_public(ip) {
        return Ok(None);
    }
    let Some(f) = read_hit(
        ip,
        |r| Ok(&mut r.anonymous),
        |db, hit| db.anonymous_flags(hit),
    )?
    else {
        return Ok(None);
    };
    // SAFETY: fcinfo is this call's; the SQL declaration returns ip_anonymizer.
    let tupdesc = unsafe { datum::result_tupdesc(fcinfo, "ip_anonymizer", &ANONYMIZER_TYPES)? };
    let values = [
        f.is_anonymous,
        f.is_anonymous_vpn,
        f.is_hosting_provider,
        f.is_public_proxy,
        f.is_residential_proxy,
        f.is_tor_exit_node,
    ]
    .map(pg_sys::Datum::from);
    // SAFETY: six non-null booleans, as the checked tupdesc has.
    Ok(Some(AnonymizerDatum(unsafe {
        datum::composite_datum(tupdesc, &values, &[false; 6])
    })))
}

/// `_ip_inventory_anonymous(inet) → ip_anonymizer`: `ip_anonymous` for the inventory's
/// anonymizer columns: NULL when the Anonymous-IP slot is not configured, and a database that
/// cannot be used leaves the flags NULL with one WARNING per session instead of raising, as
/// `_ip_inventory_maxmind` does for City and ASN (enrichment never fails for an optional slot).
#[pg_extern(stable, strict, parallel_safe, name = "_ip_inventory_anonymous")]
fn ip_inventory_anonymous(
    ip: InetArg,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Option<AnonymizerDatum> {
    lenient(
        ip,
        |r| &mut r.anonymous,
        "The inventory's anonymizer flags stay NULL for it until the database can be used.",
        || anonymous(ip, fcinfo),
    )
}

/// The lookup of an optional slot for the inventory's columns: NULL when the slot is not
/// configured or MaxMind does not serve the address, and a database that cannot be used
/// answers NULL with one WARNING per session (its detail `detail`) instead of raising.
fn lenient<T>(
    ip: InetArg,
    slot: impl Fn(&mut readers::Readers) -> &mut readers::Slot,
    detail: &str,
    lookup: impl FnOnce() -> Result<Option<T>, errors::Boxed>,
) -> Option<T> {
    if !classify(ip.addr).in_maxmind() || readers::with(|r| slot(r).path().is_none()) {
        return None;
    }
    lookup().unwrap_or_else(|e| {
        readers::with(|r| slot(r).warn_once(e.set_detail(detail)));
        None
    })
}

/// Attribute types of `ip_isp_data`, in order.
const ISP_TYPES: [pg_sys::Oid; 6] = [
    pg_sys::TEXTOID,
    pg_sys::TEXTOID,
    pg_sys::INT8OID,
    pg_sys::TEXTOID,
    pg_sys::TEXTOID,
    pg_sys::TEXTOID,
];

/// `ip_isp(inet) → ip_isp_data`: ISP, organisation, AS and mobile codes of the ISP (or
/// Enterprise) database; NULL when the database holds none of them for the address or
/// MaxMind is not consulted for it.
#[pg_extern(stable, strict, parallel_safe)]
fn ip_isp(ip: InetArg, fcinfo: pg_sys::FunctionCallInfo) -> Option<IspDatum> {
    isp(ip, fcinfo).unwrap_or_else(|e| errors::raise(e))
}

fn isp(ip: InetArg, fcinfo: pg_sys::FunctionCallInfo) -> Result<Option<IspDatum>, errors::Boxed> {
    if !is_public(ip) {
        return Ok(None);
    }
    read_hit(
        ip,
        |r| Ok(&mut r.isp),
        |db, hit| {
            let Some(f) = db.isp_fields(hit)? else {
                return Ok(None);
            };
            let mut values = [pg_sys::Datum::null(); 6];
            let mut nulls = [true; 6];
            let mut set = |i: usize, v: Option<pg_sys::Datum>| {
                if let Some(v) = v {
                    values[i] = v;
                    nulls[i] = false;
                }
            };
            set(0, f.isp.map(datum::text_datum));
            set(1, f.organization.map(datum::text_datum));
            set(
                2,
                f.autonomous_system_number
                    .map(|n| pg_sys::Datum::from(i64::from(n))),
            );
            set(3, f.autonomous_system_organization.map(datum::text_datum));
            set(4, f.mobile_country_code.map(datum::text_datum));
            set(5, f.mobile_network_code.map(datum::text_datum));
            Ok(Some((values, nulls)))
        },
    )?
    .map(|(values, nulls)| {
        // SAFETY: fcinfo is this call's; the SQL declaration returns ip_isp_data.
        let tupdesc = unsafe { datum::result_tupdesc(fcinfo, "ip_isp_data", &ISP_TYPES)? };
        // SAFETY: values of the checked tupdesc's types.
        Ok(IspDatum(unsafe {
            datum::composite_datum(tupdesc, &values, &nulls)
        }))
    })
    .transpose()
}

/// `ip_connection_type(inet) → text`: the connection type of the Connection-Type (or
/// Enterprise) database (`Cable/DSL`, `Cellular`, `Corporate`, `Satellite`, `Dialup`).
#[pg_extern(stable, strict, parallel_safe)]
fn ip_connection_type(ip: InetArg) -> Option<TextDatum> {
    connection_type(ip).unwrap_or_else(|e| errors::raise(e))
}

fn connection_type(ip: InetArg) -> Result<Option<TextDatum>, errors::Boxed> {
    if !is_public(ip) {
        return Ok(None);
    }
    read_hit(
        ip,
        |r| Ok(&mut r.connection_type),
        |db, hit| Ok(db.connection_type(hit)?.map(TextDatum::new)),
    )
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.ip_anonymous(inet) IS
    'Anonymizer flags (anonymous, VPN, hosting provider, public proxy, residential proxy, Tor exit node) from the MaxMind Anonymous-IP, Anonymous Plus or Enterprise database (ip_inventory.anonymous_db); NULL when the database holds no anonymizer data for the address or the address is not public (6to4 and Teredo addresses: as libmaxminddb answers them).';
COMMENT ON FUNCTION @extschema@.ip_isp(inet) IS
    'ISP, organisation, autonomous system and mobile country/network codes from the MaxMind ISP or Enterprise database (ip_inventory.isp_db); NULL when the database holds none for the address or the address is not public (6to4 and Teredo addresses: as libmaxminddb answers them).';
COMMENT ON FUNCTION @extschema@.ip_connection_type(inet) IS
    'Connection type (Cable/DSL, Cellular, Corporate, Satellite, Dialup) from the MaxMind Connection-Type or Enterprise database (ip_inventory.connection_type_db); NULL when unknown or the address is not public (6to4 and Teredo addresses: as libmaxminddb answers them).';
"#,
    name = "anonymous_isp_comments",
    requires = [ip_anonymous, ip_isp, ip_connection_type]
);

/// `_ip_inventory_isp(inet) → ip_isp_data`: `ip_isp` for the inventory's ISP columns, lenient
/// as `_ip_inventory_anonymous` is: NULL when the ISP slot is not configured, and a database
/// that cannot be used leaves the columns NULL with one WARNING per session.
#[pg_extern(stable, strict, parallel_safe, name = "_ip_inventory_isp")]
fn ip_inventory_isp(ip: InetArg, fcinfo: pg_sys::FunctionCallInfo) -> Option<IspDatum> {
    lenient(
        ip,
        |r| &mut r.isp,
        "The inventory's ISP columns stay NULL for it until the database can be used.",
        || isp(ip, fcinfo),
    )
}

/// `_ip_inventory_connection_type(inet) → text`: `ip_connection_type` for the inventory's
/// `connection_type` column, lenient in the same way.
#[pg_extern(stable, strict, parallel_safe, name = "_ip_inventory_connection_type")]
fn ip_inventory_connection_type(ip: InetArg) -> Option<TextDatum> {
    lenient(
        ip,
        |r| &mut r.connection_type,
        "The inventory's connection_type column stays NULL for it until the database can be used.",
        || connection_type(ip),
    )
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@._ip_inventory_isp(inet) IS
    'ip_isp() for the inventory''s ISP columns: NULL when ip_inventory.isp_db is not configured; a database that cannot be used gives NULL with one WARNING per session (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_connection_type(inet) IS
    'ip_connection_type() for the inventory''s connection_type column: NULL when ip_inventory.connection_type_db is not configured; a database that cannot be used gives NULL with one WARNING per session (internal).';
"#,
    name = "inventory_isp_comment",
    requires = [ip_inventory_isp, ip_inventory_connection_type]
);

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@._ip_inventory_anonymous(inet) IS
    'ip_anonymous() for the inventory''s anonymizer columns: NULL when ip_inventory.anonymous_db is not configured; a database that cannot be used gives NULL with one WARNING per session (internal).';
"#,
    name = "inventory_anonymous_comment",
    requires = [ip_inventory_anonymous]
);

/// Attributes of `ip_enrichment`, in order; `result_tupdesc` checks the type against it.
mod col {
    pub const IP_CLASS: usize = 0;
    pub const NETWORK: usize = 1;
    pub const COUNTRY_CODE: usize = 2;
    pub const COUNTRY_NAME: usize = 3;
    pub const CONTINENT_CODE: usize = 4;
    pub const REGISTERED_COUNTRY_CODE: usize = 5;
    pub const SUBDIVISION_CODE: usize = 6;
    pub const SUBDIVISION_NAME: usize = 7;
    pub const CITY: usize = 8;
    pub const POSTAL_CODE: usize = 9;
    pub const LATITUDE: usize = 10;
    pub const LONGITUDE: usize = 11;
    pub const ACCURACY_RADIUS: usize = 12;
    pub const TIME_ZONE: usize = 13;
    pub const IS_ANONYMOUS_PROXY: usize = 14;
    pub const IS_SATELLITE_PROVIDER: usize = 15;
    pub const IS_ANYCAST: usize = 16;
    pub const ASN: usize = 17;
    pub const ASN_ORG: usize = 18;
    pub const ASN_NETWORK: usize = 19;
    pub const MAXMIND_BUILD: usize = 20;
    pub const ASN_BUILD: usize = 21;
    pub const COUNT: usize = 22;
}

const ENRICHMENT_TYPES: [pg_sys::Oid; col::COUNT] = {
    use pg_sys::{BOOLOID, CIDROID, FLOAT8OID, INT4OID, INT8OID, TEXTOID, TIMESTAMPTZOID};
    [
        TEXTOID,
        CIDROID,
        TEXTOID,
        TEXTOID,
        TEXTOID,
        TEXTOID,
        TEXTOID,
        TEXTOID,
        TEXTOID,
        TEXTOID,
        FLOAT8OID,
        FLOAT8OID,
        INT4OID,
        TEXTOID,
        BOOLOID,
        BOOLOID,
        BOOLOID,
        INT8OID,
        TEXTOID,
        CIDROID,
        TIMESTAMPTZOID,
        TIMESTAMPTZOID,
    ]
};

/// Bytes of text and cidr values a [`Row`] holds itself: a City and ASN answer takes about 200
/// (names in other scripts more); the values that do not fit are palloc'd one by one.
const ROW_BYTES: usize = 1024;

/// The values of one `ip_enrichment` row being built.
struct Row {
    values: [pg_sys::Datum; col::COUNT],
    nulls: [bool; col::COUNT],
    /// Text and cidr values written as varlenas (4-byte header, 4-byte aligned) rather than
    /// palloc'd each through a guarded call into Postgres (up to 13 a row): heap_form_tuple
    /// copies them into the one tuple it allocates. A column in here holds its offset in
    /// `values` until [`Row::form`].
    bytes: RowBytes,
    used: usize,
    here: [bool; col::COUNT],
}

#[repr(C, align(8))]
struct RowBytes([std::mem::MaybeUninit<u8>; ROW_BYTES]);

impl Row {
    #[inline(always)]
    fn new() -> Row {
        Row {
            values: [pg_sys::Datum::null(); col::COUNT],
            nulls: [true; col::COUNT],
            bytes: RowBytes([std::mem::MaybeUninit::uninit(); ROW_BYTES]),
            used: 0,
            here: [false; col::COUNT],
        }
    }

    #[inline]
    fn set(&mut self, i: usize, value: pg_sys::Datum) {
        self.values[i] = value;
        self.nulls[i] = false;
        self.here[i] = false;
    }

    /// Column `i` as a varlena of `payload`: in the row's bytes, or allocated apart when it
    /// does not fit there.
    #[inline]
    fn varlena(&mut self, i: usize, payload: &[u8]) {
        let start = self.used.next_multiple_of(4);
        let total = pg_sys::VARHDRSZ + payload.len();
        if total > ROW_BYTES.saturating_sub(start) {
            self.set(i, datum::varlena_datum(payload));
            return;
        }
        // SAFETY: start + total <= ROW_BYTES (checked above), and start is 4-byte aligned in
        // an 8-byte aligned buffer.
        unsafe { datum::write_varlena(self.bytes.0.as_mut_ptr().add(start).cast(), payload) };
        self.used = start + total;
        self.values[i] = pg_sys::Datum::from(start);
        self.nulls[i] = false;
        self.here[i] = true;
    }

    #[inline]
    fn text(&mut self, i: usize, value: Option<&str>) {
        if let Some(v) = value {
            self.varlena(i, v.as_bytes());
        }
    }

    #[inline]
    fn network(&mut self, i: usize, net: ipnetwork::IpNetwork) {
        let (payload, len) = ip_inventory_core::inet::encode(net);
        self.varlena(i, &payload[..len]);
    }

    /// The row as one composite datum, in the current memory context.
    ///
    /// # Safety
    /// `tupdesc` must be the `ip_enrichment` descriptor checked against `ENRICHMENT_TYPES`.
    unsafe fn form(&self, tupdesc: pg_sys::TupleDesc) -> pg_sys::Datum {
        let base = self.bytes.0.as_ptr() as usize;
        let mut values = self.values;
        for (value, here) in values.iter_mut().zip(self.here) {
            if here {
                *value = pg_sys::Datum::from(base + value.value());
            }
        }
        // SAFETY: every value is of its column's type; those in the row's bytes are complete
        // varlenas that live until this returns, and heap_form_tuple copies them.
        unsafe { datum::composite_datum(tupdesc, &values, &self.nulls) }
    }

    #[inline]
    fn float(&mut self, i: usize, value: Option<f64>) {
        if let Some(v) = value {
            self.set(i, pg_sys::Datum::from(v.to_bits()));
        }
    }

    #[inline]
    fn boolean(&mut self, i: usize, value: Option<bool>) {
        if let Some(v) = value {
            self.set(i, pg_sys::Datum::from(v));
        }
    }

    #[inline]
    fn build_time(&mut self, i: usize, epoch: u64) {
        self.set(i, pg_sys::Datum::from(datum::timestamptz_from_unix(epoch)));
    }
}

/// What a lookup does when a configured database cannot be used.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnDbError {
    /// Raise the error (`enrich_ip`).
    Raise,
    /// Leave that database's fields NULL and warn once per session (`ip_inventory_maxmind`,
    /// used when recording observations: ingesting events must not fail because a
    /// MaxMind file is missing or broken; the rows stay pending for enrich_pending).
    Skip,
}

fn enrichment(
    ip: InetArg,
    fcinfo: pg_sys::FunctionCallInfo,
    on_error: OnDbError,
) -> Result<EnrichmentDatum, errors::Boxed> {
    // SAFETY: fcinfo is this call's; the SQL declaration returns ip_enrichment.
    let tupdesc = unsafe { datum::result_tupdesc(fcinfo, "ip_enrichment", &ENRICHMENT_TYPES)? };
    let mut row = Row::new();
    let class = classify(ip.addr);
    row.text(col::IP_CLASS, Some(class.as_str()));
    if class.in_maxmind() {
        readers::with(|r| fill_maxmind(r, ip, &mut row, on_error))?;
    } else {
        metrics::count(Metric::maxmind(MaxmindMetric::NotPublic));
    }
    // SAFETY: row matches the checked tupdesc.
    Ok(EnrichmentDatum(unsafe { row.form(tupdesc) }))
}

/// `enrich_ip(inet) → ip_enrichment`: City and ASN fields in one composite value. Use it as
/// `FROM t, LATERAL enrich_ip(t.ip) e`; `(enrich_ip(ip)).*` calls it once per column.
#[pg_extern(stable, strict, parallel_safe)]
fn enrich_ip(ip: InetArg, fcinfo: pg_sys::FunctionCallInfo) -> EnrichmentDatum {
    enrichment(ip, fcinfo, OnDbError::Raise).unwrap_or_else(|e| errors::raise(e))
}

/// `_ip_inventory_maxmind(inet) → ip_enrichment`: `enrich_ip` for recording observations: a
/// database that is not configured or cannot be used leaves its fields (and its build time)
/// NULL instead of raising, with one WARNING per session.
#[pg_extern(stable, strict, parallel_safe, name = "_ip_inventory_maxmind")]
fn ip_inventory_maxmind(ip: InetArg, fcinfo: pg_sys::FunctionCallInfo) -> EnrichmentDatum {
    enrichment(ip, fcinfo, OnDbError::Skip).unwrap_or_else(|e| errors::raise(e))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.enrich_ip(inet) IS
    'MaxMind City and ASN enrichment as one ip_enrichment value. Use FROM t, LATERAL enrich_ip(t.ip) e. An inet with a netmask is looked up by its address.';
COMMENT ON FUNCTION @extschema@._ip_inventory_maxmind(inet) IS
    'enrich_ip() for recording observations: a database that is not configured or cannot be used leaves its fields and build time NULL (one WARNING per session) instead of raising (internal).';
"#,
    name = "enrich_ip_comments",
    requires = [enrich_ip, ip_inventory_maxmind]
);

/// `_ip_inventory_maxmind_json(...) → jsonb`: the MaxMind fields without an inventory column,
/// as `enrichment->'maxmind'` stores them: the non-NULL ones as one object, NULL when there is
/// none (`_ip_inventory_maxmind_columns`). Equal to `nullif(jsonb_strip_nulls(jsonb_build_object
/// (...)), '{}')`, at a fraction of its cost (docs/benchmarks.md, "Issue 20, round 3").
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe, name = "_ip_inventory_maxmind_json")]
fn ip_inventory_maxmind_json(
    continent_code: Option<&str>,
    registered_country_code: Option<&str>,
    subdivision_code: Option<&str>,
    postal_code: Option<&str>,
    accuracy_radius: Option<i32>,
    time_zone: Option<&str>,
    is_anonymous_proxy: Option<bool>,
    is_satellite_provider: Option<bool>,
    is_anycast: Option<bool>,
) -> Option<datum::JsonbDatum> {
    use datum::JsonScalar::{Bool, Int, Text};
    datum::jsonb_object([
        ("continent_code", continent_code.map(Text)),
        ("registered_country_code", registered_country_code.map(Text)),
        ("subdivision_code", subdivision_code.map(Text)),
        ("postal_code", postal_code.map(Text)),
        ("accuracy_radius", accuracy_radius.map(|r| Int(r.into()))),
        ("time_zone", time_zone.map(Text)),
        ("is_anonymous_proxy", is_anonymous_proxy.map(Bool)),
        ("is_satellite_provider", is_satellite_provider.map(Bool)),
        ("is_anycast", is_anycast.map(Bool)),
    ])
    .map(datum::JsonbDatum)
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@._ip_inventory_maxmind_json(text, text, text, text, int, text, boolean, boolean, boolean) IS
    'The MaxMind fields without an inventory column as one jsonb object of the non-NULL ones, NULL when none (internal: _ip_inventory_maxmind_columns).';
"#,
    name = "maxmind_json_comment",
    requires = [ip_inventory_maxmind_json]
);

fn fill_maxmind(
    r: &mut readers::Readers,
    ip: InetArg,
    row: &mut Row,
    on_error: OnDbError,
) -> Result<(), errors::Boxed> {
    if r.city.path().is_none() && r.asn.path().is_none() {
        return match on_error {
            OnDbError::Raise => {
                metrics::count_db_error(DbFamily::City, DbErrorKind::NotConfigured);
                Err(Box::new(errors::not_configured(&DbSlot::City)))
            }
            OnDbError::Skip => Ok(()),
        };
    }
    r.with_store(|r, store| {
        if r.city.path().is_some() {
            let outcome = fill_city(&mut r.city, store, &mut r.city_cache, &r.language, ip, row);
            settle(&mut r.city, outcome, on_error)?;
        }
        if r.asn.path().is_some() {
            let outcome = fill_asn(&mut r.asn, store, ip, row);
            settle(&mut r.asn, outcome, on_error)?;
        }
        Ok(())
    })
}

fn settle(
    slot: &mut readers::Slot,
    outcome: Result<(), errors::Boxed>,
    on_error: OnDbError,
) -> Result<(), errors::Boxed> {
    match (outcome, on_error) {
        (Ok(()), _) => Ok(()),
        (Err(e), OnDbError::Raise) => Err(e),
        (Err(e), OnDbError::Skip) => {
            slot.warn_once(e.set_detail(
                "Its fields stay NULL; ip_inventory_enrich_pending() fills them once the database can be used.",
            ));
            Ok(())
        }
    }
}

/// Writes the City fields into `row`, only after every fallible step succeeded.
fn fill_city(
    slot: &mut readers::Slot,
    store: &Store,
    cache: &mut CityCache,
    language: &str,
    ip: InetArg,
    row: &mut Row,
) -> Result<(), errors::Boxed> {
    slot.lookup(store, ip.addr, |db, hit| {
        let found = match hit {
            Some(hit) if hit.has_data() => {
                Some((hit.network(), db.city_fields_cached(hit, language, cache)?))
            }
            _ => None,
        };
        row.build_time(col::MAXMIND_BUILD, db.metadata().build_epoch);
        let Some((network, f)) = found else {
            return Ok(((), false));
        };
        if let Some(net) = network {
            row.network(col::NETWORK, net);
        }
        row.text(col::COUNTRY_CODE, f.country_code);
        row.text(col::COUNTRY_NAME, f.country_name);
        row.text(col::CONTINENT_CODE, f.continent_code);
        row.text(col::REGISTERED_COUNTRY_CODE, f.registered_country_code);
        row.text(col::SUBDIVISION_CODE, f.subdivision_code);
        row.text(col::SUBDIVISION_NAME, f.subdivision_name);
        row.text(col::CITY, f.city);
        row.text(col::POSTAL_CODE, f.postal_code);
        row.float(col::LATITUDE, f.latitude);
        row.float(col::LONGITUDE, f.longitude);
        if let Some(radius) = f.accuracy_radius {
            row.set(col::ACCURACY_RADIUS, pg_sys::Datum::from(i32::from(radius)));
        }
        row.text(col::TIME_ZONE, f.time_zone);
        row.boolean(col::IS_ANONYMOUS_PROXY, f.is_anonymous_proxy);
        row.boolean(col::IS_SATELLITE_PROVIDER, f.is_satellite_provider);
        row.boolean(col::IS_ANYCAST, f.is_anycast);
        Ok(((), true))
    })
}

/// Writes the ASN fields into `row`, only after every fallible step succeeded.
fn fill_asn(
    slot: &mut readers::Slot,
    store: &Store,
    ip: InetArg,
    row: &mut Row,
) -> Result<(), errors::Boxed> {
    slot.lookup(store, ip.addr, |db, hit| {
        let found = match hit {
            Some(hit) if hit.has_data() => Some((hit.network(), db.asn_fields(hit)?)),
            _ => None,
        };
        row.build_time(col::ASN_BUILD, db.metadata().build_epoch);
        let Some((network, f)) = found else {
            return Ok(((), false));
        };
        count_malformed(f.malformed);
        if let Some(net) = network {
            row.network(col::ASN_NETWORK, net);
        }
        if let Some(n) = f.number {
            row.set(col::ASN, pg_sys::Datum::from(i64::from(n)));
        }
        row.text(col::ASN_ORG, f.organization);
        Ok(((), true))
    })
}

/// Whether the current user may name database files by path (it reads server files).
pub(crate) fn may_read_server_files() -> bool {
    unsafe {
        pg_sys::superuser()
            || pg_sys::has_privs_of_role(
                pg_sys::GetUserId(),
                pg_sys::Oid::from(pg_sys::ROLE_PG_READ_SERVER_FILES),
            )
    }
}

/// `mmdb_lookup(inet, database text) → jsonb`: the whole record of any MaxMind DB format
/// file as `{"network": "<matched prefix>", "data": {...}}`, NULL when the database has no
/// record for the address. `database` is `city`, `asn`, a name from
/// `ip_inventory.databases`, or an absolute path (superusers and pg_read_server_files only).
/// Unlike the MaxMind functions, any address is looked up: private ranges may be exactly
/// what a custom database describes.
#[pg_extern(stable, strict, parallel_safe)]
fn mmdb_lookup(ip: InetArg, database: &str) -> Result<Option<JsonB>, ErrorReport> {
    if Path::new(database).is_absolute() && !may_read_server_files() {
        return Err(errors::path_not_allowed());
    }
    read_hit(
        ip,
        |r| r.slot_for(database),
        |db, hit| {
            let Some(data) = db.record_json(hit)? else {
                return Ok(None);
            };
            let network = hit.network().map(|n| n.to_string());
            Ok(Some(JsonB(
                serde_json::json!({ "network": network, "data": data }),
            )))
        },
    )
    .map_err(|e| *e)
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.mmdb_lookup(inet, text) IS
    'Whole record of any MaxMind DB file as {"network", "data"}: database is city, asn, anonymous, isp, connection_type, a name from ip_inventory.databases, or an absolute path (superusers and pg_read_server_files only).';
"#,
    name = "mmdb_lookup_comment",
    requires = [mmdb_lookup]
);
