//! One error type for everything a payload can get wrong (SPEC §6).
//!
//! Decoding is pure Rust, so these errors are plain data: the source, the JSON path of the field,
//! the problem and the SQLSTATE the caller sees. The SQL-facing shell turns them into an
//! `ErrorReport` (mode `error`) or a quarantine row plus WARNING (mode `quarantine`).

use std::fmt;

/// Which field system sent the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Scada,
    Onu,
    Kaifa,
    CallCenter,
}

impl Source {
    /// The spelling used in `source_type` columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Scada => "scada",
            Source::Onu => "onu",
            Source::Kaifa => "kaifa",
            Source::CallCenter => "call_center",
        }
    }

    /// The source a `source_type` column names.
    pub fn parse(text: &str) -> Option<Source> {
        [
            Source::Scada,
            Source::Onu,
            Source::Kaifa,
            Source::CallCenter,
        ]
        .into_iter()
        .find(|source| source.as_str() == text)
    }

    /// The spelling used in messages for people.
    pub fn label(self) -> &'static str {
        match self {
            Source::Scada => "SCADA",
            Source::Onu => "ONU",
            Source::Kaifa => "Kaifa",
            Source::CallCenter => "call-center",
        }
    }
}

/// The class of problem, which fixes the SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not an object, wrong JSON type, missing required field, unusable value: 22023.
    InvalidParameter,
    /// A timestamp that cannot be read: 22007.
    InvalidDatetime,
    /// A number written as text that is not a number: 22P02.
    InvalidText,
    /// A number outside the range of its column: 22003.
    OutOfRange,
    /// A string longer than its column: 22001.
    StringTooLong,
}

impl ErrorKind {
    pub fn sqlstate(self) -> &'static str {
        match self {
            ErrorKind::InvalidParameter => "22023",
            ErrorKind::InvalidDatetime => "22007",
            ErrorKind::InvalidText => "22P02",
            ErrorKind::OutOfRange => "22003",
            ErrorKind::StringTooLong => "22001",
        }
    }

    /// Decoders tag their messages with the kind so that the kind survives serde's string errors.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            ErrorKind::InvalidParameter => "[22023]",
            ErrorKind::InvalidDatetime => "[22007]",
            ErrorKind::InvalidText => "[22P02]",
            ErrorKind::OutOfRange => "[22003]",
            ErrorKind::StringTooLong => "[22001]",
        }
    }

    pub(crate) fn from_tagged(message: &str) -> (ErrorKind, &str) {
        for kind in [
            ErrorKind::InvalidDatetime,
            ErrorKind::InvalidText,
            ErrorKind::OutOfRange,
            ErrorKind::StringTooLong,
            ErrorKind::InvalidParameter,
        ] {
            if let Some(rest) = message.strip_prefix(kind.tag()) {
                return (kind, rest.trim_start());
            }
        }
        (ErrorKind::InvalidParameter, message)
    }
}

/// A payload that cannot be processed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    pub source: Source,
    pub kind: ErrorKind,
    /// JSON path of the offending field, such as `customer.meterNumber`; `.` for the whole payload.
    pub field: String,
    pub problem: String,
}

impl PayloadError {
    pub fn new(
        source: Source,
        kind: ErrorKind,
        field: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        PayloadError {
            source,
            kind,
            field: field.into(),
            problem: problem.into(),
        }
    }

    pub fn sqlstate(&self) -> &'static str {
        self.kind.sqlstate()
    }

    /// A hint for the producer's developers, where one helps.
    pub fn hint(&self) -> Option<&'static str> {
        (self.kind == ErrorKind::InvalidDatetime).then_some(
            "Send RFC 3339 or ISO 8601 text, e.g. \"2025-09-30T10:05:00Z\" or \"2025-09-30T10:05:00.123456\".",
        )
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} payload: field \"{}\": {}",
            self.source.label(),
            self.field,
            self.problem
        )
    }
}

impl std::error::Error for PayloadError {}

/// Builds the tagged message a serde decoder returns, read back by [`ErrorKind::from_tagged`].
pub(crate) fn tagged(kind: ErrorKind, problem: impl fmt::Display) -> String {
    format!("{} {}", kind.tag(), problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_to_kinds() {
        for kind in [
            ErrorKind::InvalidParameter,
            ErrorKind::InvalidDatetime,
            ErrorKind::InvalidText,
            ErrorKind::OutOfRange,
            ErrorKind::StringTooLong,
        ] {
            let message = tagged(kind, "went wrong");
            assert_eq!(ErrorKind::from_tagged(&message), (kind, "went wrong"));
        }
        assert_eq!(
            ErrorKind::from_tagged("missing field `x`"),
            (ErrorKind::InvalidParameter, "missing field `x`")
        );
    }

    #[test]
    fn message_names_source_and_field() {
        let e = PayloadError::new(
            Source::Onu,
            ErrorKind::InvalidText,
            "onuId",
            "\"abc\" is not an integer",
        );
        assert_eq!(
            e.to_string(),
            "invalid ONU payload: field \"onuId\": \"abc\" is not an integer"
        );
        assert_eq!(e.sqlstate(), "22P02");
    }
}
