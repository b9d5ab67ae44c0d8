//! Translation between Postgres values and Rust, written for the per-row hot path.
//!
//! pgrx's `Inet` is a `String` made by `inet_out`, i.e. a text round trip per row. The
//! on-disk `inet`/`cidr` is a tiny varlena (`utils/inet.h`: family, bits, 4 or 16 address
//! bytes); we read and write that layout directly.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use pgrx::callconv::{Arg, ArgAbi, BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::{impl_sql_translatable, FromDatum, PgTupleDesc};

use ip_inventory_core::inet;

use crate::errors;

/// An `inet` (or `cidr`) argument, decoded without a text round trip. Lookups use the
/// address alone; the netmask is validated and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InetArg {
    pub addr: IpAddr,
}

impl FromDatum for InetArg {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: Postgres hands us an inet/cidr datum (the SQL signature says so). Packed
        // (1-byte header) values are read in place; anything toasted is detoasted first.
        let payload = unsafe {
            let v = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
            let len = pgrx::varlena::varsize_any_exhdr(v);
            std::slice::from_raw_parts(pgrx::varlena::vardata_any(v).cast::<u8>(), len)
        };
        match inet::decode(payload) {
            Ok((addr, _bits)) => Some(InetArg { addr }),
            Err(detail) => {
                errors::bad_inet(detail).report(pgrx::PgLogLevel::ERROR);
                unreachable!("an ERROR report does not return")
            }
        }
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for InetArg {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| panic!("argument {index} must not be null"))
    }
}

impl_sql_translatable!(InetArg, arg_only = "inet");

/// Builds a `cidr` or `inet` datum (the same layout) in the current memory context.
pub fn network_datum(net: IpNetwork) -> pg_sys::Datum {
    let (payload, len) = inet::encode(net);
    let total = pg_sys::VARHDRSZ + len;
    // SAFETY: palloc returns `total` writable bytes: a 4-byte varlena header and the payload.
    unsafe {
        let p = pg_sys::palloc(total).cast::<u8>();
        pgrx::varlena::set_varsize_4b(p.cast(), total as i32);
        std::ptr::copy_nonoverlapping(payload.as_ptr(), p.add(pg_sys::VARHDRSZ), len);
        pg_sys::Datum::from(p)
    }
}

/// A `text` datum copied from a Rust string, in the current memory context.
#[inline]
pub fn text_datum(s: &str) -> pg_sys::Datum {
    // SAFETY: cstring_to_text_with_len copies `len` bytes into a new palloc'd text.
    unsafe {
        pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(
            s.as_ptr().cast(),
            s.len() as i32,
        ))
    }
}

/// Seconds between the Unix epoch and the Postgres epoch (2000-01-01).
const PG_EPOCH_OFFSET_SECS: i64 = 946_684_800;

/// A `timestamptz` (microseconds since 2000-01-01) from Unix seconds.
#[inline]
pub fn timestamptz_from_unix(secs: u64) -> pg_sys::TimestampTz {
    // build_epoch is validated to lie before 2100 when a database is opened.
    (secs as i64 - PG_EPOCH_OFFSET_SECS) * 1_000_000
}

/// An `inet` result that is already a datum.
pub struct InetDatum(pub pg_sys::Datum);

unsafe impl BoxRet for InetDatum {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

impl_sql_translatable!(InetDatum, "inet");

/// A `text` result that is already a datum.
pub struct TextDatum(pub pg_sys::Datum);

impl TextDatum {
    pub fn new(s: &str) -> Self {
        TextDatum(text_datum(s))
    }
}

unsafe impl BoxRet for TextDatum {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

impl_sql_translatable!(TextDatum, "text");

/// An `ip_enrichment` composite result.
pub struct EnrichmentDatum(pub pg_sys::Datum);

unsafe impl BoxRet for EnrichmentDatum {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

impl_sql_translatable!(EnrichmentDatum, "ip_enrichment");

/// The result row type of the calling function, looked up once per call site and kept in
/// `fn_extra` (the expression's own memory context), then checked against `expected`.
///
/// # Safety
/// `fcinfo` must be the live call info of a function returning a composite type.
pub unsafe fn result_tupdesc(
    fcinfo: pg_sys::FunctionCallInfo,
    expected: &[pg_sys::Oid],
) -> Result<pg_sys::TupleDesc, ErrorReport> {
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        if !(*flinfo).fn_extra.is_null() {
            return Ok((*flinfo).fn_extra.cast());
        }
        let old = pg_sys::MemoryContextSwitchTo((*flinfo).fn_mcxt);
        let mut tupdesc: pg_sys::TupleDesc = std::ptr::null_mut();
        let kind = pg_sys::get_call_result_type(fcinfo, std::ptr::null_mut(), &mut tupdesc);
        pg_sys::MemoryContextSwitchTo(old);
        if kind != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE || tupdesc.is_null() {
            return Err(errors::type_altered(
                "the function does not return a composite type".into(),
            ));
        }
        let natts = (*tupdesc).natts as usize;
        // Through PgTupleDesc: PostgreSQL 18 moved the attribute array behind the compact
        // attributes (`TupleDescData.attrs` is gone), and pgrx reads it right per major.
        let live: Vec<_> = PgTupleDesc::from_pg_unchecked(tupdesc)
            .iter()
            .filter(|a| !a.attisdropped)
            .map(|a| a.atttypid)
            .collect();
        if natts != expected.len() || live.as_slice() != expected {
            return Err(errors::type_altered(format!(
                "expected {} attributes of the types this library writes, found {} ({} live)",
                expected.len(),
                natts,
                live.len()
            )));
        }
        let tupdesc = pg_sys::BlessTupleDesc(tupdesc);
        (*flinfo).fn_extra = tupdesc.cast();
        Ok(tupdesc)
    }
}

/// Forms a heap tuple from values/nulls and returns it as a composite datum.
///
/// # Safety
/// `values`/`nulls` must match `tupdesc`.
pub unsafe fn composite_datum(
    tupdesc: pg_sys::TupleDesc,
    values: &[pg_sys::Datum],
    nulls: &[bool],
) -> pg_sys::Datum {
    unsafe {
        let tuple = pg_sys::heap_form_tuple(
            tupdesc,
            values.as_ptr().cast_mut(),
            nulls.as_ptr().cast_mut(),
        );
        pg_sys::HeapTupleHeaderGetDatum((*tuple).t_data)
    }
}
