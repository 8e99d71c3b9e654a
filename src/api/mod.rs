//! The SQL surface (SPEC §2): thin `#[pg_extern]` functions over `payload`, `canonical` and `db`.
//!
//! Every ingest function goes through [`ingest`], which decides what bad input does (SPEC §6):
//! in `quarantine` mode the payload is kept in `oms_rejected_events`, a WARNING names the field and
//! the function returns NULL; in `error` mode it raises an ERROR with the payload's SQLSTATE.

pub mod callcenter;
pub mod drop_guard;
pub mod helpers;
pub mod kaifa;
pub mod onu;
pub mod scada;

use pgrx::pg_sys::panic::{CaughtError, ErrorReport};
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiError};
use serde_json::Value;

use crate::correlation::run::{self, By};
use crate::correlation::worker;
use crate::db::jsonb::{self, RawJsonb, MAX_DEPTH};
use crate::db::{arg, count_ingest_call, execute, sqlstate, subtransaction, timestamptz};
use crate::error::{ErrorKind, PayloadError, Source};
use crate::gucs::{self, OnInvalidPayload};
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

/// A payload as received: the jsonb datum (stored as is) and its decoded value.
pub struct Payload {
    pub raw: RawJsonb,
    pub value: Value,
}

/// A payload the function will not process, and why.
struct Rejection {
    source: Source,
    code: PgSqlErrorCode,
    message: String,
    field: Option<String>,
    detail: Option<String>,
    hint: Option<String>,
}

impl From<PayloadError> for Rejection {
    fn from(e: PayloadError) -> Self {
        Rejection {
            source: e.source,
            code: sql_error_code(e.kind),
            message: e.to_string(),
            detail: Some(format!("field path: {}", e.field)),
            hint: e.hint().map(str::to_string),
            field: Some(e.field),
        }
    }
}

const RECORD_REJECTION: &str = r#"
INSERT INTO oms_rejected_events (source, function_name, raw_payload, message, sqlstate, field_path)
VALUES ($1, $2, $3, $4, $5, $6)
"#;

/// Runs one ingest call: decodes the payload and writes through `body` in a subtransaction, and
/// applies the bad-input policy to whatever cannot be processed.
pub fn ingest<T>(
    function: &'static str,
    source: Source,
    json_data: Option<RawJsonb>,
    body: impl Fn(&mut SpiClient<'_>, &Payload) -> Result<T, IngestError>,
) -> Option<T> {
    let Some(raw) = json_data else {
        let e = PayloadError::new(
            source,
            ErrorKind::InvalidParameter,
            ".",
            "the payload is NULL",
        );
        return reject(function, None, e.into());
    };
    let value = match raw.to_value() {
        Ok(value) => value,
        Err(jsonb::JsonbDecodeError::TooDeep) => {
            let problem = format!("nests deeper than {MAX_DEPTH} levels");
            let e = PayloadError::new(source, ErrorKind::InvalidParameter, ".", problem);
            return reject(function, Some(raw), e.into());
        }
    };
    let payload = Payload { raw, value };
    count_ingest_call();
    match subtransaction::run(|| Spi::connect_mut(|client| body(client, &payload))) {
        Ok(Ok(value)) => Some(value),
        Ok(Err(IngestError::Payload(e))) => reject(function, Some(raw), e.into()),
        Ok(Err(IngestError::Spi(e))) => {
            ErrorReport::new(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("{function}: {e}"),
                function,
            )
            .report(PgLogLevel::ERROR);
            unreachable!("ERROR does not return")
        }
        Err(caught) => match storage_rejection(source, caught) {
            Ok(rejection) => reject(function, Some(raw), rejection),
            Err(caught) => caught.rethrow(),
        },
    }
}

/// A data or integrity error raised while storing a validated payload is still about the
/// payload (a value the checks let through); anything else (cancel, shutdown, out of memory, a
/// deadlock that outlived its retries) is not, and goes to the caller unchanged.
fn storage_rejection(source: Source, caught: CaughtError) -> Result<Rejection, CaughtError> {
    let CaughtError::PostgresError(report) = &caught else {
        return Err(caught);
    };
    let code = report.sql_error_code();
    if !matches!(&sqlstate(code)[..2], "22" | "23") {
        return Err(caught);
    }
    Ok(Rejection {
        source,
        code,
        message: format!(
            "could not store the {} event: {}",
            source.label(),
            report.message()
        ),
        field: None,
        detail: report.detail().map(str::to_string),
        hint: report.hint().map(str::to_string),
    })
}

fn reject<T>(function: &'static str, raw: Option<RawJsonb>, rejection: Rejection) -> Option<T> {
    let detail = match &rejection.detail {
        Some(detail) => format!("{function} received a payload it cannot process; {detail}"),
        None => format!("{function} received a payload it cannot process"),
    };
    let mut report =
        ErrorReport::new(rejection.code, rejection.message.clone(), function).set_detail(detail);
    if let Some(hint) = &rejection.hint {
        report = report.set_hint(hint.clone());
    }
    match gucs::on_invalid_payload() {
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
                        arg(raw),
                        arg(rejection.message.as_str()),
                        arg(sqlstate(rejection.code)),
                        arg(rejection.field.as_deref()),
                    ],
                )
                .map(|_| ())
            })
            .unwrap_or_else(|e| panic!("{function}: could not quarantine a rejected payload: {e}"));
            let hint = match &rejection.hint {
                Some(hint) => format!("{hint} The payload is kept in oms_rejected_events; the function returned NULL."),
                None => "The payload is kept in oms_rejected_events; the function returned NULL.".to_string(),
            };
            report.set_hint(hint).report(PgLogLevel::WARNING);
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

/// Before an ingest writes a power signal (SPEC §5). In `immediate` mode the call is the
/// correlator: it takes the correlator's lock before it locks any meter, so that no correlator
/// waits for a meter this call holds while this call waits for it. In `deferred` mode the
/// database's worker must be running.
pub(crate) fn before_signal(client: &mut SpiClient<'_>) -> Result<(), IngestError> {
    match gucs::correlate() {
        gucs::Correlate::Immediate => run::lock(client)?,
        gucs::Correlate::Deferred => worker::ensure_running(client)?,
    }
    Ok(())
}

/// After an ingest queued its signal: in `immediate` mode, the queue is drained before the call
/// returns.
pub(crate) fn after_signal(client: &mut SpiClient<'_>) -> Result<(), IngestError> {
    if gucs::correlate() == gucs::Correlate::Immediate {
        run::drain(client, By::Immediate, None, gucs::batch_size(), false)?;
    }
    Ok(())
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
