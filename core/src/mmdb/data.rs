//! Our own reading of one string of a record in the data section, at the offset our walk
//! found ([`walk`](super::walk)): the path `ip_country` needs (`country` → `iso_code`).
//!
//! The crate decodes only through a `LookupResult`, which only its own lookup makes: a record
//! cache miss paid a second walk of the tree for one two-letter code (a tenth of
//! `ip_country`'s time on uniform addresses; docs/benchmarks.md, "Issue 20, round 5").
//!
//! The reader answers only the plain case: maps (followed through at most one pointer each,
//! as the format allows) whose keys are strings, and a valid UTF-8 string at the end of the
//! path; a missing key answers "no value", as the crate's `decode_path` does. Anything else
//! (another type on the path, a pointer to a pointer, a value the crate would refuse to skip,
//! a read past the data section, maps and arrays of more than [`MAX_VALUES`] values in all
//! or nested deeper than [`MAX_DEPTH`]) makes it decline, and the caller asks the crate, so
//! odd records and errors stay exactly the crate's. Every read is bounds-checked; nothing
//! here can panic or loop.

use maxminddb::PathElement;

/// Most values the maps and arrays met on one path may declare, in all: a real City record
/// declares about a hundred. Far below the crate's own budget (65 536), so a record the
/// crate would refuse for its size is declined here first.
const MAX_VALUES: usize = 4096;
/// Deepest nesting a skipped value may have (records nest a few levels).
const MAX_DEPTH: usize = 32;

const POINTER: u8 = 1;
const STRING: u8 = 2;
const DOUBLE: u8 = 3;
const BYTES: u8 = 4;
const UINT16: u8 = 5;
const UINT32: u8 = 6;
const MAP: u8 = 7;
const INT32: u8 = 8;
const UINT64: u8 = 9;
const UINT128: u8 = 10;
const ARRAY: u8 = 11;
const BOOLEAN: u8 = 14;
const FLOAT: u8 = 15;

/// One item's header: its type, its size field, where its payload starts.
#[derive(Clone, Copy)]
struct Item {
    ty: u8,
    size: usize,
    at: usize,
}

/// The string at `path` (the crate's own path, so both read the same one) of the record at
/// `offset` of `data` (the data section): `Some(Some(s))` found, `Some(None)` a key of the
/// path is missing, `None` declined (ask the crate; so is any array index in the path).
pub(super) fn string_at<'d>(
    data: &'d [u8],
    offset: usize,
    path: &[PathElement<'_>],
) -> Option<Option<&'d str>> {
    let mut values = 0usize;
    let mut at = offset;
    for element in path {
        let PathElement::Key(key) = element else {
            return None;
        };
        let map = resolve(data, at)?;
        if map.ty != MAP {
            return None;
        }
        charge(&mut values, map.size.checked_mul(2)?)?;
        let mut p = map.at;
        let mut value = None;
        for _ in 0..map.size {
            let (k, after) = key_at(data, p)?;
            if k == key.as_bytes() {
                value = Some(after);
                break;
            }
            p = skip(data, after, 0, &mut values)?;
        }
        let Some(v) = value else {
            return Some(None);
        };
        at = v;
    }
    let bytes = string_bytes(data, resolve(data, at)?)?;
    std::str::from_utf8(bytes).ok().map(Some)
}

/// A map key (a string, or a pointer to one) and where the item after it starts.
fn key_at(data: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let item = header(data, at)?;
    let (key, after) = match item.ty {
        POINTER => {
            let (target, after) = pointer(data, at)?;
            (header(data, target)?, after)
        }
        _ => (item, item.at.checked_add(item.size)?),
    };
    Some((string_bytes(data, key)?, after))
}

/// The bytes of a string item; `None` for any other item, or one that runs past the data.
fn string_bytes(data: &[u8], item: Item) -> Option<&[u8]> {
    if item.ty != STRING {
        return None;
    }
    data.get(item.at..item.at.checked_add(item.size)?)
}

/// The item at `at`, through one pointer; a pointer to a pointer declines.
fn resolve(data: &[u8], at: usize) -> Option<Item> {
    let item = header(data, at)?;
    if item.ty != POINTER {
        return Some(item);
    }
    let target = header(data, pointer(data, at)?.0)?;
    (target.ty != POINTER).then_some(target)
}

/// Counts `n` more declared values; `None` past [`MAX_VALUES`].
fn charge(values: &mut usize, n: usize) -> Option<()> {
    *values = values.checked_add(n)?;
    (*values <= MAX_VALUES).then_some(())
}

/// Where the item after the one at `at` starts, without following pointers (as the crate
/// skips), with the crate's checks of each type's size.
fn skip(data: &[u8], at: usize, depth: usize, values: &mut usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let item = header(data, at)?;
    let width = match item.ty {
        POINTER => return Some(pointer(data, at)?.1),
        MAP | ARRAY => {
            let items = if item.ty == MAP {
                item.size.checked_mul(2)?
            } else {
                item.size
            };
            charge(values, items)?;
            let mut p = item.at;
            for _ in 0..items {
                p = skip(data, p, depth + 1, values)?;
            }
            return Some(p);
        }
        BOOLEAN => return (item.size <= 1).then_some(item.at),
        STRING | BYTES => item.size,
        DOUBLE => 8,
        FLOAT => 4,
        UINT16 => 2,
        UINT32 | INT32 => 4,
        UINT64 => 8,
        UINT128 => 16,
        _ => return None,
    };
    let exact = matches!(item.ty, DOUBLE | FLOAT);
    if item.size > width || (exact && item.size != width) {
        return None;
    }
    let end = item.at.checked_add(item.size)?;
    (end <= data.len()).then_some(end)
}

/// The control byte(s) at `at`: type (extended types read from the next byte) and size.
/// For a pointer, `size` is meaningless and `at` is the control byte's place.
fn header(data: &[u8], at: usize) -> Option<Item> {
    let ctrl = *data.get(at)?;
    let mut p = at + 1;
    let mut ty = ctrl >> 5;
    if ty == POINTER {
        return Some(Item { ty, size: 0, at });
    }
    if ty == 0 {
        ty = data.get(p)?.checked_add(7)?;
        p += 1;
        if ty < 8 {
            return None;
        }
    }
    let small = usize::from(ctrl & 0x1f);
    let (size, len) = match small {
        0..=28 => (small, 0),
        29 => (29 + usize::from(*data.get(p)?), 1),
        30 => (285 + be(data.get(p..p + 2)?), 2),
        _ => (65_821 + be(data.get(p..p + 3)?), 3),
    };
    Some(Item {
        ty,
        size,
        at: p + len,
    })
}

/// The data-section offset a pointer at `at` names, and where the item after it starts.
/// A 4-byte pointer whose unused 3 bits are 5 to 7 is declined: the crate reads its
/// low 5 bits as a size field first and so reads other bytes than the format says.
fn pointer(data: &[u8], at: usize) -> Option<(usize, usize)> {
    let ctrl = *data.get(at)?;
    if ctrl & 0x1f >= 29 {
        return None;
    }
    let ss = usize::from((ctrl >> 3) & 0x3);
    let vvv = usize::from(ctrl & 0x7);
    let b = data.get(at + 1..at + 2 + ss)?;
    let target = match ss {
        0 => vvv << 8 | be(b),
        1 => (vvv << 16 | be(b)) + 2048,
        2 => (vvv << 24 | be(b)) + 526_336,
        _ => be(b),
    };
    Some((target, at + 2 + ss))
}

/// A big-endian unsigned number of up to 4 bytes.
fn be(bytes: &[u8]) -> usize {
    bytes.iter().fold(0, |n, &b| n << 8 | usize::from(b))
}
