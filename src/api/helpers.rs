//! Rust halves of the helper functions. Their SQL faces, with the exact legacy signatures
//! (`varchar` arguments), are in `sql/functions/helpers.sql`.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use serde_json::json;

use crate::correlation::run::{self, By};
use crate::correlation::scada_alarm::{check_outage, resolve_device, scada_scope_name};
use crate::correlation::scada_result::ScadaResult;
use crate::correlation::storm;
use crate::correlation::stream::engine_is_writing;
use crate::db::registry::{self, ExplicitChange};
use crate::db::{arg, execute};
use crate::gucs;

/// A time-ordered UUID (RFC 9562 version 7): the default of every `uuid` key, so that new rows
/// land at the right-hand edge of their indexes.
#[pg_extern(volatile, parallel_safe)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn oms_uuid_v7() -> Uuid {
    crate::db::new_uuid_v7()
}

fn invalid_argument(function: &'static str, message: String) -> ! {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        message,
        function,
    )
    .report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// `update_meter_status`: applies a status to one meter by number, with the same ordering rule
/// and audit as the ingest functions, and returns the status event's id.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn oms_update_meter_status(
    meter_number: Option<&str>,
    new_status: Option<&str>,
    event_type: Option<&str>,
    source_type: Option<&str>,
    source_event_id: Option<&str>,
    event_timestamp: Option<TimestampWithTimeZone>,
    metadata: Option<JsonB>,
) -> Option<Uuid> {
    const FUNCTION: &str = "update_meter_status";
    let meter_number = meter_number
        .unwrap_or_else(|| invalid_argument(FUNCTION, "p_meter_number is required".into()));
    let event_type = event_type.unwrap_or_default();
    let new_status = new_status.unwrap_or_default();
    let (power, communication) = match event_type {
        "power_on" | "power_off" if matches!(new_status, "on" | "off" | "unknown") => (Some(new_status), None),
        "communication_lost" | "communication_restored" if matches!(new_status, "online" | "offline" | "unknown") => {
            (None, Some(new_status))
        }
        "power_on" | "power_off" | "communication_lost" | "communication_restored" => invalid_argument(
            FUNCTION,
            format!("p_new_status {new_status:?} does not fit p_event_type {event_type:?}"),
        ),
        _ => invalid_argument(
            FUNCTION,
            format!(
                "p_event_type {event_type:?} is not one of power_on, power_off, communication_lost, communication_restored"
            ),
        ),
    };
    let source = source_type.unwrap_or_default();
    let confidence = match source {
        "scada" => gucs::confidence_scada(),
        "onu" => gucs::confidence_onu(),
        "kaifa" => gucs::confidence_kaifa(),
        "call_center" => gucs::confidence_call_center(),
        "system" => 1.0,
        other => invalid_argument(
            FUNCTION,
            format!("p_source_type {other:?} is not one of scada, onu, kaifa, call_center, system"),
        ),
    };
    let at = event_timestamp.unwrap_or_else(|| unsafe {
        TimestampWithTimeZone::try_from(pg_sys::GetCurrentTransactionStartTimestamp())
            .expect("now() is in range")
    });
    let change = ExplicitChange {
        event_type,
        new_power_status: power,
        new_communication_status: communication,
        source,
        source_event_id,
        confidence,
    };
    let metadata = metadata
        .map(|m| m.0)
        .filter(|m| !m.is_null())
        .unwrap_or_else(|| json!({}));
    let id = Spi::connect_mut(|client| {
        registry::apply_to_meter_number(client, meter_number, change, at, metadata)
    })
    .unwrap_or_else(|e| panic!("{FUNCTION}: {e}"));
    match id {
        Some(id) => Some(id),
        None => invalid_argument(
            FUNCTION,
            format!("unknown or inactive meter {meter_number:?}"),
        ),
    }
}

const FIND_SCADA_EVENT: &str =
    "SELECT event_type::text, severity::text, reason FROM scada_events WHERE id = $1";

/// `process_scada_event_meters`: the outage check of SPEC §4.1 for an already stored SCADA event.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn oms_process_scada_event_meters(
    scada_event_id: Uuid,
    substation_id: &str,
    feeder_id: Option<&str>,
    event_timestamp: TimestampWithTimeZone,
) -> TableIterator<
    'static,
    (
        name!(total_meters, i32),
        name!(offline_meters, i32),
        name!(online_meters, i32),
        name!(unknown_meters, i32),
        name!(outage_event_id, Option<Uuid>),
    ),
> {
    const FUNCTION: &str = "process_scada_event_meters";
    let row = Spi::connect_mut(|client| -> pgrx::spi::SpiResult<_> {
        let event = execute(client, FIND_SCADA_EVENT, &[arg(scada_event_id)])?;
        if event.is_empty() {
            invalid_argument(FUNCTION, format!("unknown SCADA event {scada_event_id}"));
        }
        let (event_type, _, _) = event.first().get_three::<String, String, String>()?;
        run::lock(client)?;
        let Some(device) = resolve_device(client, substation_id, feeder_id)? else {
            return Ok((0, 0, 0, 0, None));
        };
        let mut result = ScadaResult {
            scada_event_id: scada_event_id.to_string(),
            classification: "outage".into(),
            meters_checked: true,
            scope: Some(device.scope().into()),
            scada_scope: scada_scope_name().into(),
            ..ScadaResult::default()
        };
        let metadata = json!({"scada_event_type": event_type, "via": FUNCTION});
        let outage = check_outage(
            client,
            scada_event_id,
            device,
            event_timestamp,
            metadata,
            &mut result,
        )?;
        Ok((
            result.total_meters,
            result.offline_meters,
            result.online_meters,
            result.unknown_meters,
            outage,
        ))
    })
    .unwrap_or_else(|e| panic!("{FUNCTION}: {e}"));
    TableIterator::once(row)
}

/// Applies storm mode's switching rule at `at` (event time; now by default) without a signal:
/// after a storm's last signal, nothing else would end it. Schedule it once a minute (pg_cron, or
/// the dashboard's poller). Returns whether storm mode is on.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn oms_storm_mode_refresh(at: default!(Option<TimestampWithTimeZone>, "NULL")) -> bool {
    let now = at
        .map(crate::correlation::load::time)
        .unwrap_or_else(|| unsafe { pg_sys::GetCurrentTimestamp() });
    Spi::connect_mut(|client| storm::refresh(client, now))
        .unwrap_or_else(|e| panic!("oms_storm_mode_refresh: {e}"))
}

/// Correlates what is queued, now, in the caller's transaction, and returns what it did (SPEC
/// §5: for operators, pg_cron and tests; the worker does the same a batch at a time).
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn oms_correlate_pending() -> TableIterator<
    'static,
    (
        name!(batches, i32),
        name!(signals, i32),
        name!(set_aside, i32),
        name!(outages_changed, i32),
    ),
> {
    let drained = Spi::connect_mut(|client| {
        run::lock(client)?;
        run::drain(client, By::Pending, None, gucs::batch_size(), false)
    })
    .unwrap_or_else(|e| panic!("oms_correlate_pending: {e}"));
    let n = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
    TableIterator::once((
        n(drained.batches),
        n(drained.signals),
        n(drained.set_aside),
        n(drained.outages_changed),
    ))
}

/// Whether the outage changes being made in this session are the correlation engine's: the
/// trigger that announces status changes made by operators asks, so that the engine's own are
/// announced once, by the engine (sql/functions/stream.sql).
#[pg_extern(volatile, parallel_safe)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn oms_engine_is_writing() -> bool {
    engine_is_writing()
}
