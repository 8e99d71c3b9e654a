//! The SQL surface (SPEC §2): thin `#[pg_extern]` functions over `payload`, `canonical` and `db`.
//!
//! Every ingest function goes through [`ingest`], which decides what bad input does (SPEC §6):
//! in `quarantine` mode the payload is kept in `oms_rejected_events`, a WARNING names the field and
//! the function returns NULL; in `error` mode it raises an ERROR with the payload's SQLSTATE.

pub mod callcenter;
pub mod helpers;
pub mod kaifa;
pub mod onu;
pub mod scada;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiError};
use pgrx::JsonB;
use serde_json::Value;

use crate::db::{arg, execute, timestamptz};
use crate::error::{ErrorKind, PayloadError, Source};
use crate::gucs::{OnInvalidPayload, ON_INVALID_PAYLOAD};
use crate::payload::EventTime;

/// Why an ingest call did not complete.
#[derive(Debug)]
pub enum IngestError {
    /// The payload is bad: the producer's problem, handled per `on_invalid_payload`.
    Payload(PayloadError),
    /// SPI failed in a way that is our bug, not the producer's.
    Spi(SpiError),
}

impl From<PayloadError> for IngestError {
    fn from(e: PayloadError) -> Self {
        IngestError::Payload(e)
    }
}

impl From<SpiError> for IngestError {
    fn from(e: SpiError) -> Self {
        IngestError::Spi(e)
    }
}

const RECORD_REJECTION: &str = r#"
INSERT INTO oms_rejected_events (source, function_name, raw_payload, message, sqlstate, field_path)
VALUES ($1, $2, $3, $4, $5, $6)
"#;

/// Runs one ingest call: decodes and writes through `body`, and applies the bad-input policy.
pub fn ingest<T>(
    function: &'static str,
    source: Source,
    json_data: Option<JsonB>,
    body: impl FnOnce(&mut SpiClient<'_>, &Value) -> Result<T, IngestError>,
) -> Option<T> {
    let Some(JsonB(payload)) = json_data else {
        let rejection = PayloadError::new(
            source,
            ErrorKind::InvalidParameter,
            ".",
            "the payload is NULL",
        );
        return reject(function, &Value::Null, rejection);
    };
    let outcome = Spi::connect_mut(|client| body(client, &payload));
    match outcome {
        Ok(value) => Some(value),
        Err(IngestError::Payload(rejection)) => reject(function, &payload, rejection),
        Err(IngestError::Spi(e)) => {
            ErrorReport::new(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("{function}: {e}"),
                function,
            )
            .report(PgLogLevel::ERROR);
            unreachable!("ERROR does not return")
        }
    }
}

fn reject<T>(function: &'static str, payload: &Value, rejection: PayloadError) -> Option<T> {
    let mut report = ErrorReport::new(
        sql_error_code(rejection.kind),
        rejection.to_string(),
        function,
    )
    .set_detail(format!(
        "{function} received a payload it cannot process; field path: {}",
        rejection.field
    ));
    if let Some(hint) = rejection.hint() {
        report = report.set_hint(hint);
    }
    match ON_INVALID_PAYLOAD.get() {
        OnInvalidPayload::Error => {
            report.report(PgLogLevel::ERROR);
            unreachable!("ERROR does not return")
        }
        OnInvalidPayload::Quarantine => {
            Spi::connect_mut(|client| {
                execute(
                    client,
                    RECORD_REJECTION,
                    &[
                        arg(rejection.source.as_str()),
                        arg(function),
                        arg(Some(payload).filter(|p| !p.is_null()).cloned().map(JsonB)),
                        arg(rejection.to_string()),
                        arg(rejection.sqlstate()),
                        arg(rejection.field.as_str()),
                    ],
                )
                .map(|_| ())
            })
            .unwrap_or_else(|e| panic!("{function}: could not quarantine a rejected payload: {e}"));
            report
                .set_hint("The payload is kept in oms_rejected_events; the function returned NULL.")
                .report(PgLogLevel::WARNING);
            None
        }
    }
}

fn sql_error_code(kind: ErrorKind) -> PgSqlErrorCode {
    match kind {
        ErrorKind::InvalidParameter => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        ErrorKind::InvalidDatetime => PgSqlErrorCode::ERRCODE_INVALID_DATETIME_FORMAT,
        ErrorKind::InvalidText => PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
        ErrorKind::OutOfRange => PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        ErrorKind::StringTooLong => PgSqlErrorCode::ERRCODE_STRING_DATA_RIGHT_TRUNCATION,
    }
}

/// An event time as a `timestamptz`, or a field error when PostgreSQL cannot represent it.
pub(crate) fn event_time(
    source: Source,
    field: &str,
    time: EventTime,
) -> Result<TimestampWithTimeZone, PayloadError> {
    timestamptz(time).ok_or_else(|| {
        PayloadError::new(
            source,
            ErrorKind::InvalidDatetime,
            field,
            "is outside the range PostgreSQL can store",
        )
    })
}
