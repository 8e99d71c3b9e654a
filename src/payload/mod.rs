//! Pure decoding and validation of the four payload kinds. No database access lives here.
//!
//! Each source has a serde struct that mirrors the producer's JSON (lenient about the XML-derived
//! spellings) and a `decode` that returns a validated, typed event or a [`PayloadError`] naming the
//! field.

pub mod callcenter;
pub mod fields;
pub mod kaifa;
pub mod onu;
pub mod scada;
pub mod time;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ErrorKind, PayloadError, Source};
pub use time::EventTime;

/// Deserializes `value` into `T`, turning serde's error into a [`PayloadError`] with the full
/// JSON path of the field at fault.
pub(crate) fn decode_as<T: DeserializeOwned>(
    source: Source,
    value: &Value,
) -> Result<T, PayloadError> {
    if !value.is_object() {
        let found = match value {
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return Err(PayloadError::new(
            source,
            ErrorKind::InvalidParameter,
            ".",
            format!("expected a JSON object, found {found}"),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = e.path().to_string();
        let message = e.into_inner().to_string();
        let mut rest = message.as_str();
        // Paths of nested decodes travel as `@segment` prefixes (see `fields::nested`).
        while let Some(tagged) = rest.strip_prefix('@') {
            let (segment, after) = tagged.split_once(' ').unwrap_or((tagged, ""));
            path = join_path(&path, segment);
            rest = after;
        }
        let (kind, problem) = ErrorKind::from_tagged(rest);
        PayloadError::new(source, kind, path, problem)
    })
}

fn join_path(outer: &str, inner: &str) -> String {
    if outer == "." || outer.is_empty() {
        inner.to_string()
    } else if inner.starts_with('[') {
        format!("{outer}{inner}")
    } else {
        format!("{outer}.{inner}")
    }
}

/// A required field: absent, `null` and `""` are all missing.
pub(crate) fn required<T>(
    source: Source,
    field: &str,
    value: Option<T>,
) -> Result<T, PayloadError> {
    value.ok_or_else(|| {
        PayloadError::new(
            source,
            ErrorKind::InvalidParameter,
            field,
            "required, but missing or empty",
        )
    })
}

/// Latitude and longitude as the producers send them.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Deserialize)]
pub struct Coordinates {
    #[serde(default, deserialize_with = "fields::opt_latitude", alias = "latitude")]
    pub lat: Option<f64>,
    #[serde(
        default,
        deserialize_with = "fields::opt_longitude",
        alias = "longitude",
        alias = "lon"
    )]
    pub lng: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, serde::Deserialize)]
    struct Outer {
        #[serde(default, deserialize_with = "fields::opt_block")]
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Inner {
        #[serde(default, deserialize_with = "fields::one_or_many")]
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Item {
        #[serde(default, deserialize_with = "fields::opt_int32")]
        n: Option<i32>,
    }

    #[test]
    fn nested_errors_keep_their_full_path() {
        let e = decode_as::<Outer>(
            Source::Kaifa,
            &json!({"inner": {"items": [{"n": 1}, {"n": "x"}]}}),
        )
        .unwrap_err();
        assert_eq!(e.field, "inner.items[1].n");
        assert_eq!(e.kind, ErrorKind::InvalidText);

        // The same shape with good values decodes; a lone item counts as a list of one.
        let ok = decode_as::<Outer>(Source::Kaifa, &json!({"inner": {"items": {"n": 7}}})).unwrap();
        let items = ok.inner.expect("inner block").items;
        assert_eq!(items.iter().map(|i| i.n).collect::<Vec<_>>(), [Some(7)]);
    }

    #[test]
    fn non_objects_are_refused() {
        for v in [
            json!([1, 2]),
            json!("text"),
            json!(5),
            json!(null),
            json!(true),
        ] {
            let e = decode_as::<Outer>(Source::Onu, &v).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.kind),
                (".", ErrorKind::InvalidParameter)
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use serde_json::Value;

    /// The producers' sample payloads in `../shared/examples` (or `$OMS_EXAMPLES_DIR`).
    pub fn example(name: &str) -> Value {
        let dir = std::env::var("OMS_EXAMPLES_DIR").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/examples").to_string()
        });
        let path = format!("{dir}/{name}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }
}
