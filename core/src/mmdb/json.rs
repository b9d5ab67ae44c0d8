//! Any MaxMind DB record as JSON (`mmdb_lookup`).
//!
//! `serde_json::Value` cannot take every MaxMind DB type (bytes, 128-bit integers, NaN), so
//! records are converted with our own visitor:
//! - `uint64`/`uint128` beyond what JSON numbers hold exactly stay numbers when they fit in
//!   `u64`, and become decimal strings otherwise;
//! - `bytes` become a lowercase hex string;
//! - non-finite floats become `null`;
//! - strings and keys are sanitized like network answers ([`crate::sanitize`]): control
//!   characters become U+FFFD (PostgreSQL's jsonb cannot hold a NUL: the whole call would
//!   fail), and strings, the hex of bytes included, are cut to
//!   [`sanitize::MAX_TEXT`](crate::sanitize::MAX_TEXT) bytes.
//!
//! Nesting is limited to [`MAX_DEPTH`] levels: the conversion recurses, and a hostile file
//! nested hundreds of levels deep (the format allows 512) must give an error, not exhaust the
//! backend's stack. Real MaxMind records are about five levels deep.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::sanitize;

fn text(s: &str) -> String {
    if sanitize::is_clean(s, sanitize::MAX_TEXT) {
        s.to_owned()
    } else {
        sanitize::text(s, sanitize::MAX_TEXT)
    }
}

pub(crate) struct JsonRecord(pub(crate) Value);

pub(crate) const MAX_DEPTH: u32 = 64;

impl<'de> Deserialize<'de> for JsonRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        JsonVisitor { depth: 0 }
            .deserialize(deserializer)
            .map(JsonRecord)
    }
}

/// Converts one value at nesting level `depth`.
#[derive(Clone, Copy)]
struct JsonVisitor {
    depth: u32,
}

impl JsonVisitor {
    fn child<E: Error>(self) -> Result<JsonVisitor, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!(
                "record is nested deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(JsonVisitor {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for JsonVisitor {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any MaxMind DB value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or_else(
            |_| Value::String(v.to_string()),
            |n| Value::Number(n.into()),
        ))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(u64::try_from(v).map_or_else(
            |_| Value::String(v.to_string()),
            |n| Value::Number(n.into()),
        ))
    }
    fn visit_f32<E>(self, v: f32) -> Result<Value, E> {
        // Through the shortest decimal that round-trips the f32: 1.1f32 becomes 1.1, not
        // 1.100000023841858 (what widening the bits to f64 would give).
        Ok(float(v.to_string().parse().unwrap_or(f64::NAN)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(text(v)))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        use std::fmt::Write;
        let mut hex = String::with_capacity(v.len().min(sanitize::MAX_TEXT) * 2);
        for b in v.iter().take(sanitize::MAX_TEXT) {
            let _ = write!(hex, "{b:02x}");
        }
        Ok(Value::String(text(&hex)))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Value, S::Error> {
        let child = self.child()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element_seed(child)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Value, M::Error> {
        let child = self.child()?;
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(child)?;
            out.insert(text(&k), v);
        }
        Ok(Value::Object(out))
    }
}
