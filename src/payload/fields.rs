//! Lenient field decoders shared by the four payload kinds (SPEC §4).
//!
//! Producers that convert XML send every scalar as a string, an absent element as `""`, an empty
//! one as `null` and an absent block as `{}`. These helpers accept those spellings, and reject
//! anything else with a tagged message that keeps the SQLSTATE (see `error::tagged`). Lengths are
//! checked here against the column widths in `sql/schema`, so an over-long value is a named field
//! error instead of a constraint failure deep inside an insert. Every width is at least the legacy
//! column's (issue 10), and a `text` column has no limit: whatever the legacy database stored is
//! stored as sent.

use serde::de::{Deserialize, DeserializeOwned, Deserializer, Error as _};
use serde_json::Value;

use super::time::{truncate_for_message, EventTime};
use crate::error::{tagged, ErrorKind};

/// Column widths the decoders enforce. They match `sql/schema/*.sql`.
pub mod width {
    pub const CODE: usize = 100;
    pub const NAME: usize = 255;
    pub const SHORT: usize = 50;
    pub const STATUS: usize = 20;
    /// `scada_events.source`, as wide as the legacy column.
    pub const SOURCE: usize = 128;
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Text, with `null`, `""` and absence meaning "not given". Numbers and booleans are taken as their
/// JSON spelling, since identifiers such as meter numbers sometimes arrive unquoted.
pub fn text_value(value: Value, max_chars: usize) -> Result<Option<String>, String> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => {
            return Err(tagged(
                ErrorKind::InvalidParameter,
                format!("expected text, found {}", describe(&other)),
            ))
        }
    };
    if text.is_empty() {
        return Ok(None);
    }
    if text.contains('\0') {
        return Err(tagged(
            ErrorKind::InvalidText,
            "text contains a NUL character",
        ));
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(tagged(
            ErrorKind::StringTooLong,
            format!("{chars} characters, at most {max_chars} allowed"),
        ));
    }
    Ok(Some(text))
}

pub fn opt_code<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text_value(Value::deserialize(d)?, width::CODE).map_err(D::Error::custom)
}

pub fn opt_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text_value(Value::deserialize(d)?, width::NAME).map_err(D::Error::custom)
}

pub fn opt_short<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text_value(Value::deserialize(d)?, width::SHORT).map_err(D::Error::custom)
}

pub fn opt_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text_value(Value::deserialize(d)?, width::STATUS).map_err(D::Error::custom)
}

pub fn opt_source<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text_value(Value::deserialize(d)?, width::SOURCE).map_err(D::Error::custom)
}

/// Text for a `text` column: no length limit, as the legacy column had none.
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text_value(Value::deserialize(d)?, usize::MAX).map_err(D::Error::custom)
}

/// A 32-bit integer given as a JSON integer or as its decimal text.
pub fn int32_value(value: Value) -> Result<Option<i32>, String> {
    let wide: i128 = match &value {
        Value::Null => return Ok(None),
        Value::String(s) if s.is_empty() => return Ok(None),
        Value::String(s) => s.trim().parse::<i128>().map_err(|_| {
            tagged(
                ErrorKind::InvalidText,
                format!("\"{}\" is not an integer", truncate_for_message(s)),
            )
        })?,
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i128::from(i)
            } else if let Some(u) = n.as_u64() {
                i128::from(u)
            } else {
                return Err(tagged(
                    ErrorKind::InvalidText,
                    format!("{n} is not an integer"),
                ));
            }
        }
        other => {
            return Err(tagged(
                ErrorKind::InvalidParameter,
                format!("expected an integer, found {}", describe(other)),
            ))
        }
    };
    i32::try_from(wide).map(Some).map_err(|_| {
        tagged(
            ErrorKind::OutOfRange,
            format!("{wide} is out of range for a 32-bit integer"),
        )
    })
}

pub fn opt_int32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    int32_value(Value::deserialize(d)?).map_err(D::Error::custom)
}

/// A finite number given as a JSON number or as its text.
pub fn number_value(value: Value) -> Result<Option<f64>, String> {
    match &value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Some(f)),
            Ok(_) => Err(tagged(
                ErrorKind::OutOfRange,
                format!("\"{}\" is not a finite number", truncate_for_message(s)),
            )),
            Err(_) => Err(tagged(
                ErrorKind::InvalidText,
                format!("\"{}\" is not a number", truncate_for_message(s)),
            )),
        },
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| tagged(ErrorKind::OutOfRange, format!("{n} is not a finite number"))),
        other => Err(tagged(
            ErrorKind::InvalidParameter,
            format!("expected a number, found {}", describe(other)),
        )),
    }
}

fn bounded_number<'de, D: Deserializer<'de>>(d: D, limit: f64) -> Result<Option<f64>, D::Error> {
    let n = number_value(Value::deserialize(d)?).map_err(D::Error::custom)?;
    match n {
        Some(f) if f.abs() > limit => Err(D::Error::custom(tagged(
            ErrorKind::OutOfRange,
            format!("{f} is outside -{limit}..{limit}"),
        ))),
        other => Ok(other),
    }
}

pub fn opt_latitude<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    bounded_number(d, 90.0)
}

pub fn opt_longitude<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    bounded_number(d, 180.0)
}

/// Voltage in volts; `numeric(12,3)` holds up to 999,999,999.999.
pub fn opt_voltage<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    bounded_number(d, 999_999_999.0)
}

/// A flag given as a JSON boolean or as `"true"`/`"false"` text.
pub fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => Err(D::Error::custom(tagged(
                ErrorKind::InvalidText,
                format!("\"{}\" is not a boolean", truncate_for_message(&s)),
            ))),
        },
        other => Err(D::Error::custom(tagged(
            ErrorKind::InvalidParameter,
            format!("expected a boolean, found {}", describe(&other)),
        ))),
    }
}

/// A timestamp given as text. Numbers are refused: epoch seconds and epoch milliseconds cannot be
/// told apart reliably, and no producer documents either.
pub fn time_value(value: Value) -> Result<Option<EventTime>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => EventTime::parse(&s)
            .map(Some)
            .map_err(|m| tagged(ErrorKind::InvalidDatetime, m)),
        other => Err(tagged(
            ErrorKind::InvalidDatetime,
            format!("expected timestamp text, found {}", describe(&other)),
        )),
    }
}

pub fn opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EventTime>, D::Error> {
    time_value(Value::deserialize(d)?).map_err(D::Error::custom)
}

/// A repeated XML element: a list, or a single object when it occurred once. `null`, `{}` and `[]`
/// are all "none".
pub fn one_or_many<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    let items = match Value::deserialize(d)? {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        Value::Object(map) if map.is_empty() => return Ok(Vec::new()),
        single @ Value::Object(_) => vec![single],
        other => {
            return Err(D::Error::custom(tagged(
                ErrorKind::InvalidParameter,
                format!(
                    "expected an object or a list of objects, found {}",
                    describe(&other)
                ),
            )))
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            nested::<T>(item).map_err(|message| D::Error::custom(format!("@[{i}] {message}")))
        })
        .collect()
}

/// Decodes a nested value, keeping the path inside it: serde's own errors from a nested decode
/// carry no path, so it travels in front of the message as `@path` and `payload::decode` joins it
/// to the outer path.
fn nested<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        if path == "." {
            message
        } else {
            format!("@{path} {message}")
        }
    })
}

/// A nested block: `null`, `""` and `{}` all mean "absent".
pub fn opt_block<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::Object(map) if map.is_empty() => Ok(None),
        block @ Value::Object(_) => nested::<T>(block).map(Some).map_err(D::Error::custom),
        other => Err(D::Error::custom(tagged(
            ErrorKind::InvalidParameter,
            format!("expected an object, found {}", describe(&other)),
        ))),
    }
}

/// A list of identifiers (`associatedMeters`): a list of text, or one text.
pub fn code_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let items = match Value::deserialize(d)? {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut codes = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match text_value(item, width::CODE) {
            Ok(Some(code)) if !codes.contains(&code) => codes.push(code),
            Ok(_) => {}
            Err(message) => return Err(D::Error::custom(format!("@[{i}] {message}"))),
        }
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind_of(message: &str) -> ErrorKind {
        ErrorKind::from_tagged(message).0
    }

    #[test]
    fn empty_and_null_text_are_absent() {
        assert_eq!(text_value(json!(""), 10), Ok(None));
        assert_eq!(text_value(json!(null), 10), Ok(None));
        assert_eq!(text_value(json!("M1"), 10), Ok(Some("M1".into())));
        assert_eq!(text_value(json!(12345678), 10), Ok(Some("12345678".into())));
    }

    #[test]
    fn text_limits_count_characters_not_bytes() {
        assert_eq!(text_value(json!("ضوء⚡😀"), 5), Ok(Some("ضوء⚡😀".into())));
        assert_eq!(
            kind_of(&text_value(json!("ضوء⚡😀"), 4).unwrap_err()),
            ErrorKind::StringTooLong
        );
        assert_eq!(
            kind_of(&text_value(json!("abcdef"), 5).unwrap_err()),
            ErrorKind::StringTooLong
        );
        assert_eq!(
            kind_of(&text_value(json!({"a": 1}), 5).unwrap_err()),
            ErrorKind::InvalidParameter
        );
        assert_eq!(
            kind_of(&text_value(json!("a\u{0}b"), 5).unwrap_err()),
            ErrorKind::InvalidText
        );
    }

    #[test]
    fn integers_from_numbers_and_text() {
        assert_eq!(int32_value(json!(3230316)), Ok(Some(3230316)));
        assert_eq!(int32_value(json!("3230316")), Ok(Some(3230316)));
        assert_eq!(int32_value(json!("")), Ok(None));
        assert_eq!(
            kind_of(&int32_value(json!("ONU-7")).unwrap_err()),
            ErrorKind::InvalidText
        );
        assert_eq!(
            kind_of(&int32_value(json!(2.5)).unwrap_err()),
            ErrorKind::InvalidText
        );
        assert_eq!(
            kind_of(&int32_value(json!(4_294_967_296_u64)).unwrap_err()),
            ErrorKind::OutOfRange
        );
        assert_eq!(
            kind_of(&int32_value(json!("99999999999999999999")).unwrap_err()),
            ErrorKind::OutOfRange
        );
        assert_eq!(
            kind_of(&int32_value(json!([1])).unwrap_err()),
            ErrorKind::InvalidParameter
        );
    }

    #[test]
    fn numbers_from_numbers_and_text() {
        assert_eq!(number_value(json!("11000")), Ok(Some(11000.0)));
        assert_eq!(number_value(json!(0)), Ok(Some(0.0)));
        assert_eq!(
            kind_of(&number_value(json!("eleven")).unwrap_err()),
            ErrorKind::InvalidText
        );
        assert_eq!(
            kind_of(&number_value(json!("inf")).unwrap_err()),
            ErrorKind::OutOfRange
        );
    }

    #[test]
    fn timestamps_must_be_text() {
        assert!(matches!(
            time_value(json!("2025-09-30T10:00:00Z")),
            Ok(Some(_))
        ));
        assert_eq!(time_value(json!("")), Ok(None));
        assert_eq!(
            kind_of(&time_value(json!(1759226400)).unwrap_err()),
            ErrorKind::InvalidDatetime
        );
        assert_eq!(
            kind_of(&time_value(json!("soon")).unwrap_err()),
            ErrorKind::InvalidDatetime
        );
    }
}
