//! Translation between Postgres values and Rust, written for the per-row hot path.
//!
//! pgrx's `Inet` is a `String` made by `inet_out`, i.e. a text round trip per row. The
//! on-disk `inet`/`cidr` is a tiny varlena (`utils/inet.h`: family, bits, 4 or 16 address
//! bytes); we read and write that layout directly.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use pgrx::callconv::{BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::{impl_sql_translatable, FromDatum, PgTupleDesc};

use ip_inventory_core::inet;

use crate::errors;

/// An argument type of a STRICT function: pgrx's `ArgAbi`, which never sees NULL (Postgres does
/// not call a STRICT function with one).
macro_rules! non_null_arg {
    ($t:ty) => {
        unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for $t {
            unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
                let index = arg.index();
                unsafe { arg.unbox_arg_using_from_datum() }
                    .unwrap_or_else(|| panic!("argument {index} must not be null"))
            }
        }
    };
}
pub(crate) use non_null_arg;

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
        // SAFETY: Postgres hands us an inet/cidr datum (the SQL signature says so).
        let payload = unsafe { inet_payload(datum) };
        match inet::decode(payload) {
            Ok((addr, _bits)) => Some(InetArg { addr }),
            Err(detail) => {
                errors::bad_inet(detail).report(pgrx::PgLogLevel::ERROR);
                unreachable!("an ERROR report does not return")
            }
        }
    }
}

non_null_arg!(InetArg);

impl_sql_translatable!(InetArg, arg_only = "inet");

/// The bytes of an `inet` or `cidr` datum. A value in place (1-byte or plain 4-byte header:
/// every inet a table row, a literal or an expression hands over) is read where it lies, the
/// test `pg_detoast_datum_packed` makes, without calling it: each call into Postgres from Rust
/// is guarded by a `sigsetjmp`, a measurable part of a cached lookup. A compressed or
/// external value is detoasted (into the current memory context).
///
/// # Safety
/// `datum` must be a non-null `inet` or `cidr` datum.
pub unsafe fn inet_payload<'a>(datum: pg_sys::Datum) -> &'a [u8] {
    use pgrx::varlena::{varatt_is_1b_e, varatt_is_4b_c, vardata_any, varsize_any_exhdr};
    unsafe {
        let mut v = datum.cast_mut_ptr::<pg_sys::varlena>();
        if varatt_is_4b_c(v) || varatt_is_1b_e(v) {
            v = pg_sys::pg_detoast_datum_packed(v);
        }
        std::slice::from_raw_parts(vardata_any(v).cast::<u8>(), varsize_any_exhdr(v))
    }
}

/// Writes a plain varlena at `dst`: a 4-byte header, then `payload` (the layout of `text`,
/// `inet` and `cidr`).
///
/// # Safety
/// `dst` must have `VARHDRSZ + payload.len()` writable bytes and be 4-byte aligned.
#[inline]
pub unsafe fn write_varlena(dst: *mut u8, payload: &[u8]) {
    let total = pg_sys::VARHDRSZ + payload.len();
    unsafe {
        pgrx::varlena::set_varsize_4b(dst.cast(), total as i32);
        std::ptr::copy_nonoverlapping(payload.as_ptr(), dst.add(pg_sys::VARHDRSZ), payload.len());
    }
}

/// A plain varlena datum of `payload` (see [`write_varlena`]), in the current memory context.
#[inline]
pub fn varlena_datum(payload: &[u8]) -> pg_sys::Datum {
    // SAFETY: palloc returns the bytes asked for, maximally aligned.
    unsafe {
        let p = pg_sys::palloc(pg_sys::VARHDRSZ + payload.len()).cast::<u8>();
        write_varlena(p, payload);
        pg_sys::Datum::from(p)
    }
}

/// Builds a `cidr` or `inet` datum (the same layout) in the current memory context.
pub fn network_datum(net: IpNetwork) -> pg_sys::Datum {
    let (payload, len) = inet::encode(net);
    varlena_datum(&payload[..len])
}

/// A `text` datum copied from a Rust string, in the current memory context.
#[inline]
pub fn text_datum(s: &str) -> pg_sys::Datum {
    varlena_datum(s.as_bytes())
}

/// A scalar of a flat `jsonb` object being built by [`jsonb_object`].
pub enum JsonScalar<'a> {
    Text(&'a str),
    Int(i64),
    Bool(bool),
}

/// A flat `jsonb` object of the pairs whose value is not `None`, built as `jsonb_build_object`
/// builds it (keys sorted and unique, integers as `numeric`), in the current memory context;
/// `None` when every value is `None`. One call, with no allocation of its own, instead of
/// `nullif(jsonb_strip_nulls(jsonb_build_object(...)), '{}')`, which builds, walks and compares
/// three values.
pub fn jsonb_object<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<JsonScalar<'a>>)>,
) -> Option<pg_sys::Datum> {
    let string = |s: &str| pg_sys::JsonbValue {
        type_: pg_sys::jbvType::jbvString,
        val: pg_sys::JsonbValue__bindgen_ty_1 {
            string: pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_1 {
                len: s.len() as i32,
                val: s.as_ptr().cast_mut().cast(),
            },
        },
    };
    // SAFETY: pushJsonbValue copies each JsonbValue struct; the strings they point to (the
    // callers' arguments and static keys) outlive JsonbValueToJsonb, which copies them into
    // the result. Errors (out of memory) are raised by Postgres and unwind through pgrx.
    unsafe {
        let mut state: *mut pg_sys::JsonbParseState = std::ptr::null_mut();
        for (key, value) in pairs {
            let Some(value) = value else { continue };
            if state.is_null() {
                pg_sys::pushJsonbValue(
                    &mut state,
                    pg_sys::JsonbIteratorToken::WJB_BEGIN_OBJECT,
                    std::ptr::null_mut(),
                );
            }
            let mut k = string(key);
            pg_sys::pushJsonbValue(&mut state, pg_sys::JsonbIteratorToken::WJB_KEY, &mut k);
            let mut v = match value {
                JsonScalar::Text(t) => string(t),
                JsonScalar::Int(n) => pg_sys::JsonbValue {
                    type_: pg_sys::jbvType::jbvNumeric,
                    val: pg_sys::JsonbValue__bindgen_ty_1 {
                        numeric: pg_sys::int64_to_numeric(n),
                    },
                },
                JsonScalar::Bool(b) => pg_sys::JsonbValue {
                    type_: pg_sys::jbvType::jbvBool,
                    val: pg_sys::JsonbValue__bindgen_ty_1 { boolean: b },
                },
            };
            pg_sys::pushJsonbValue(&mut state, pg_sys::JsonbIteratorToken::WJB_VALUE, &mut v);
        }
        if state.is_null() {
            return None;
        }
        let res = pg_sys::pushJsonbValue(
            &mut state,
            pg_sys::JsonbIteratorToken::WJB_END_OBJECT,
            std::ptr::null_mut(),
        );
        Some(pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(res)))
    }
}

/// A `jsonb` result that is already a datum.
pub struct JsonbDatum(pub pg_sys::Datum);

unsafe impl BoxRet for JsonbDatum {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

impl_sql_translatable!(JsonbDatum, "jsonb");

/// Microseconds between the Unix epoch and the Postgres epoch (2000-01-01).
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// A `timestamptz` (microseconds since 2000-01-01) from Unix seconds.
#[inline]
pub fn timestamptz_from_unix(secs: u64) -> pg_sys::TimestampTz {
    // build_epoch is validated to lie before 2100 when a database is opened.
    secs as i64 * 1_000_000 - PG_EPOCH_OFFSET_US
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

/// An `ip_anonymizer` composite result (`ip_anonymous`).
pub struct AnonymizerDatum(pub pg_sys::Datum);

unsafe impl BoxRet for AnonymizerDatum {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

impl_sql_translatable!(AnonymizerDatum, "ip_anonymizer");

/// An `ip_isp_data` composite result (`ip_isp`).
pub struct IspDatum(pub pg_sys::Datum);

unsafe impl BoxRet for IspDatum {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

impl_sql_translatable!(IspDatum, "ip_isp_data");

/// The result row type of the calling function, looked up once per call site and kept in
/// `fn_extra` (the expression's own memory context), then checked against `expected` (the
/// attribute types of `type_name`, named in the error).
///
/// # Safety
/// `fcinfo` must be the live call info of a function returning a composite type.
pub unsafe fn result_tupdesc(
    fcinfo: pg_sys::FunctionCallInfo,
    type_name: &str,
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
                type_name,
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
            return Err(errors::type_altered(
                type_name,
                format!(
                    "expected {} attributes of the types this library writes, found {} ({} live)",
                    expected.len(),
                    natts,
                    live.len()
                ),
            ));
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

/// The address of an `inet` or `cidr` datum (the netmask is dropped).
///
/// # Safety
/// `datum` must be a non-null `inet` or `cidr` datum.
pub unsafe fn inet_from_datum(datum: pg_sys::Datum) -> Result<IpAddr, ErrorReport> {
    // SAFETY: as in InetArg::from_polymorphic_datum.
    let payload = unsafe { inet_payload(datum) };
    inet::decode(payload)
        .map(|(addr, _bits)| addr)
        .map_err(errors::bad_inet)
}

/// A `tid` datum as (block, offset), which orders as `tid` does.
///
/// # Safety
/// `datum` must be a non-null `tid` datum.
pub unsafe fn item_pointer(datum: pg_sys::Datum) -> (u32, u16) {
    // SAFETY: a tid datum points to an ItemPointerData.
    let p = unsafe { &*datum.cast_mut_ptr::<pg_sys::ItemPointerData>() };
    (
        (u32::from(p.ip_blkid.bi_hi) << 16) | u32::from(p.ip_blkid.bi_lo),
        p.ip_posid,
    )
}

/// An `inet[]` datum of host addresses, in the current memory context.
pub fn inet_array(ips: impl ExactSizeIterator<Item = IpAddr>) -> pg_sys::Datum {
    let mut elems: Vec<pg_sys::Datum> = ips.map(|ip| network_datum(IpNetwork::from(ip))).collect();
    // SAFETY: elems are inet datums; inet is a 4-byte-aligned varlena (typlen -1, by reference).
    unsafe {
        pg_sys::Datum::from(pg_sys::construct_array(
            elems.as_mut_ptr(),
            elems.len() as i32,
            pg_sys::INETOID,
            -1,
            false,
            pg_sys::TYPALIGN_INT as std::ffi::c_char,
        ))
    }
}

/// A relation's name as SQL would write it, schema-qualified, for messages.
pub fn relation_display(relid: pg_sys::Oid) -> String {
    // SAFETY: catalog lookups; NULL for a relation that vanished.
    unsafe {
        let name = pg_sys::get_rel_name(relid);
        if name.is_null() {
            return format!("relation {}", u32::from(relid));
        }
        let schema = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relid));
        std::ffi::CStr::from_ptr(pg_sys::quote_qualified_identifier(schema, name))
            .to_string_lossy()
            .into_owned()
    }
}

/// Runs `f` with the current row type of a table (opened with the lock a SELECT takes, kept
/// to the end of the transaction).
pub fn with_row_type<R>(relid: pg_sys::Oid, f: impl FnOnce(pg_sys::TupleDesc) -> R) -> R {
    // SAFETY: the relation stays open while f reads its descriptor.
    unsafe {
        let rel = pg_sys::relation_open(relid, pg_sys::AccessShareLock as i32);
        let result = f((*rel).rd_att);
        pg_sys::relation_close(rel, pg_sys::NoLock as i32);
        result
    }
}
