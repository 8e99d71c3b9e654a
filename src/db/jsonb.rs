//! The `jsonb` argument of the ingest functions, kept as PostgreSQL's own datum.
//!
//! pgrx's `JsonB` turns a jsonb into text and parses the text again (and panics, as an XX000, on
//! JSON nested deeper than serde_json's limit). [`RawJsonb`] instead walks the binary jsonb with
//! PostgreSQL's iterator, stops at a depth no producer needs, and writes the payload back into
//! `jsonb` columns as the very datum it received: no text round trip either way.

use pgrx::pg_sys;
use pgrx::prelude::*;
use serde_json::{Map, Number, Value};

/// Deeper than any producer's payload (the Kaifa SOAP-derived JSON is about 5 levels deep).
pub const MAX_DEPTH: usize = 64;

/// A detoasted jsonb datum, valid for the duration of the function call that received it.
#[derive(Clone, Copy)]
pub struct RawJsonb(pg_sys::Datum);

impl_sql_translatable!(RawJsonb, "jsonb");

impl FromDatum for RawJsonb {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // Detoast once: the iterator and every statement that stores the payload read this copy.
        let detoasted = unsafe { pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) };
        Some(RawJsonb(pg_sys::Datum::from(detoasted)))
    }
}

// The argument is taken through `FromDatum`, like pgrx's own by-reference types.
unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for RawJsonb {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe {
            arg.unbox_arg_using_from_datum()
                .unwrap_or_else(|| panic!("argument {index} must not be null"))
        }
    }

    unsafe fn unbox_nullable_arg(
        arg: pgrx::callconv::Arg<'_, 'fcx>,
    ) -> pgrx::nullable::Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum().into() }
    }
}

impl IntoDatum for RawJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

/// Why a jsonb value could not be turned into a `serde_json::Value`.
#[derive(Debug, PartialEq, Eq)]
pub enum JsonbDecodeError {
    TooDeep,
}

impl RawJsonb {
    /// The payload as a `serde_json::Value`, read from the binary jsonb.
    pub fn to_value(self) -> Result<Value, JsonbDecodeError> {
        use pg_sys::JsonbIteratorToken::*;

        // Containers being built, innermost last, with the key awaiting its value in objects.
        let mut stack: Vec<(Value, Option<String>)> = Vec::new();
        let mut done: Option<Value> = None;
        unsafe {
            let jsonb = self.0.cast_mut_ptr::<pg_sys::Jsonb>();
            let mut iterator = pg_sys::JsonbIteratorInit(&mut (*jsonb).root);
            let mut item = std::mem::MaybeUninit::<pg_sys::JsonbValue>::zeroed().assume_init();
            loop {
                let token = pg_sys::JsonbIteratorNext(&mut iterator, &mut item, false);
                let finished = match token {
                    WJB_DONE => break,
                    WJB_BEGIN_OBJECT | WJB_BEGIN_ARRAY => {
                        if stack.len() >= MAX_DEPTH {
                            return Err(JsonbDecodeError::TooDeep);
                        }
                        let container = if token == WJB_BEGIN_OBJECT {
                            Value::Object(Map::new())
                        } else {
                            Value::Array(Vec::new())
                        };
                        stack.push((container, None));
                        None
                    }
                    WJB_END_OBJECT | WJB_END_ARRAY => stack.pop().map(|(container, _)| container),
                    WJB_KEY => {
                        if let Some((_, key)) = stack.last_mut() {
                            *key = Some(string_of(&item));
                        }
                        None
                    }
                    WJB_VALUE | WJB_ELEM => Some(scalar_of(&item)),
                    _ => None,
                };
                if let Some(value) = finished {
                    match stack.last_mut() {
                        Some((Value::Object(map), key)) => {
                            map.insert(key.take().unwrap_or_default(), value);
                        }
                        Some((Value::Array(items), _)) => items.push(value),
                        _ => done = Some(value),
                    }
                }
            }
        }
        // A top-level scalar is stored as a one-element "raw scalar" array.
        Ok(match done {
            Some(Value::Array(mut items)) if is_raw_scalar(self) && items.len() == 1 => {
                items.remove(0)
            }
            Some(value) => value,
            None => Value::Null,
        })
    }
}

fn is_raw_scalar(raw: RawJsonb) -> bool {
    // JB_ROOT_IS_SCALAR: the root container's header carries JB_FSCALAR.
    unsafe {
        let jsonb = raw.0.cast_mut_ptr::<pg_sys::Jsonb>();
        ((*jsonb).root.header & pg_sys::JB_FSCALAR) != 0
    }
}

unsafe fn string_of(item: &pg_sys::JsonbValue) -> String {
    unsafe {
        let s = item.val.string;
        let bytes = std::slice::from_raw_parts(s.val as *const u8, s.len as usize);
        String::from_utf8_lossy(bytes).into_owned()
    }
}

unsafe fn scalar_of(item: &pg_sys::JsonbValue) -> Value {
    unsafe {
        match item.type_ {
            pg_sys::jbvType::jbvString => Value::String(string_of(item)),
            pg_sys::jbvType::jbvBool => Value::Bool(item.val.boolean),
            pg_sys::jbvType::jbvNumeric => {
                let text: &core::ffi::CStr = pgrx::direct_function_call(
                    pg_sys::numeric_out,
                    &[Some(pg_sys::Datum::from(item.val.numeric))],
                )
                .expect("numeric_out returns text");
                let text = text.to_str().unwrap_or("0");
                // jsonb numerics are finite decimals; those beyond f64 are kept as the nearest f64.
                text.parse::<Number>()
                    .map(Value::Number)
                    .unwrap_or_else(|_| {
                        text.parse::<f64>()
                            .ok()
                            .and_then(Number::from_f64)
                            .map_or(Value::Null, Value::Number)
                    })
            }
            _ => Value::Null,
        }
    }
}
