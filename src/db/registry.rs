//! The meter registry and its audit trail, written once for every source (SPEC §3, §4, §6).
//!
//! The rule, as SQL fragments every writer shares: select the meters, lock them in id order (so
//! concurrent signals over overlapping meters queue instead of deadlocking), update those whose
//! newest applied event is not newer than this one, and audit every selected meter with its real
//! previous status. An event older than a meter's newest applied event is audited with
//! `applied = false` and never overwrites the newer status.
//!
//! The fragments are composed into the statement that stores the source event where that saves a
//! round of SPI (ONU: `db::store::onu`, call center: `db::store::callcenter`, SCADA:
//! `db::scada_check`); Kaifa messages and `update_meter_status` run them as statements of their own
//! here.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::JsonB;

use super::{arg, execute};
use crate::canonical::{MeterSelector, MeterSignal, StatusChange};

/// What `locked` keeps of each meter it locks: `applied` says whether this event ($1) is not
/// older than the newest one already applied to the meter (SPEC §6, ordering). Read from the locked
/// row itself, so nothing can change it before the UPDATE.
macro_rules! locked_columns {
    () => {
        "m.id, m.power_status, m.communication_status, (m.last_event_at IS NULL OR m.last_event_at <= $1) AS applied"
    };
}
pub(crate) use locked_columns;

/// `locked`: the selected active meters, locked in id order. Expects a CTE `target(id)`.
macro_rules! lock_target {
    () => {
        concat!(
            "\nlocked AS (\n    SELECT ",
            $crate::db::registry::locked_columns!(),
            r#"
    FROM oms_meters m
    WHERE m.id IN (SELECT id FROM target) AND m.status = 'active'
    ORDER BY m.id
    FOR NO KEY UPDATE OF m
),"#
        )
    };
}

/// `changed` (the locked meters that took the new status) and `audited` (their status events,
/// returning meter, previous status and whether it was applied). Expects a CTE
/// `locked` of `locked_columns!()` and parameters $1 event time,
/// $2 source type, $3 source event id, $4 confidence, $5 metadata, $6 status event type, $7 new
/// power status (or NULL), $8 new communication status (or NULL), $9 whether to audit a meter
/// whose status would not change. Statement-specific parameters start at $10.
macro_rules! apply_and_audit {
    () => {
        r#"
changed AS (
    UPDATE oms_meters m SET
        power_status = COALESCE($7, m.power_status),
        last_power_change = CASE WHEN $7 IS DISTINCT FROM m.power_status AND $7 IS NOT NULL
                                 THEN $1 ELSE m.last_power_change END,
        communication_status = COALESCE($8, m.communication_status),
        last_communication = CASE WHEN $8 = 'online' THEN GREATEST(m.last_communication, $1)
                                  ELSE m.last_communication END,
        last_status_change = CASE WHEN ($7 IS NOT NULL AND $7 IS DISTINCT FROM m.power_status)
                                    OR ($8 IS NOT NULL AND $8 IS DISTINCT FROM m.communication_status)
                                  THEN $1 ELSE m.last_status_change END,
        last_event_at = $1,
        updated_at = pg_catalog.now()
    FROM locked l
    WHERE m.id = l.id AND l.applied
    RETURNING m.id
),
audited AS (
    INSERT INTO oms_meter_status_events
        (id, meter_id, event_type, source_type, source_event_id, previous_status, new_status,
         event_timestamp, confidence_score, applied, metadata)
    SELECT oms_uuid_v7(), l.id, $6, $2, $3,
           CASE WHEN $7 IS NOT NULL THEN l.power_status ELSE l.communication_status END,
           COALESCE($7, $8), $1, $4, l.applied,
           CASE WHEN l.applied THEN $5
                ELSE $5 || '{"not_applied": "older than the newest event already applied to this meter"}'::jsonb END
    -- `changed` took exactly the locked meters with `applied`, so the audit reads `locked` alone.
    FROM locked l
    WHERE $9
       OR ($7 IS NOT NULL AND $7 IS DISTINCT FROM l.power_status)
       OR ($8 IS NOT NULL AND $8 IS DISTINCT FROM l.communication_status)
    RETURNING id, meter_id, previous_status, applied
)
"#
    };
}
pub(crate) use apply_and_audit;
pub(crate) use lock_target;

/// The registry CTEs for a statement that names its meters in a CTE `target(id)`.
macro_rules! registry_ctes {
    () => {
        concat!(
            $crate::db::registry::lock_target!(),
            $crate::db::registry::apply_and_audit!()
        )
    };
}
pub(crate) use registry_ctes;

/// Matched, applied and audited counts, the final SELECT of a registry statement.
macro_rules! registry_counts {
    () => {
        r#"
SELECT (SELECT count(*) FROM locked)::int4,
       (SELECT count(*) FROM changed)::int4,
       (SELECT count(*) FROM audited)::int4
"#
    };
}

// SPEC §4.3: a message reaches its meter by asset mRID, usage-point mRID, or a meter number equal
// to the asset mRID: the meters' ids, from the asset mRIDs ($assets) and usage-point mRIDs
// ($points), as a query.
macro_rules! meters_by_mrid {
    ($assets:literal, $points:literal) => {
        concat!(
            "SELECT id FROM oms_meters WHERE asset_mrid = ANY(",
            $assets,
            ") ",
            "UNION SELECT id FROM oms_meters WHERE usage_point_mrid = ANY(",
            $points,
            ") ",
            "UNION SELECT id FROM oms_meters WHERE meter_number = ANY(",
            $assets,
            ")"
        )
    };
}

// A power signal is queued for the correlator in the same statement (a communication event that is
// a called meter's report, by `QUEUE_REPORT` after it).
const APPLY_BY_MRID: &str = concat!(
    "WITH target AS (",
    meters_by_mrid!("$10", "$11"),
    "),",
    registry_ctes!(),
    ",",
    crate::db::queue::enqueue!(
        "audited",
        "CASE $6 WHEN 'power_off' THEN 'off' WHEN 'power_on' THEN 'on' END"
    ),
    registry_counts!(),
    ", ARRAY(SELECT meter_id FROM audited)"
);

// The meters a message names (as `APPLY_BY_MRID`) that a customer called about within
// `call_verify_window` ($4 s) before it ($3): their communication event is a report for the
// correlator (issue 22).
macro_rules! called_meters {
    () => {
        concat!(
            "\nSELECT t.id\nFROM (",
            meters_by_mrid!("$1", "$2"),
            r#") AS t
WHERE $4 > 0 AND EXISTS (
    SELECT 1 FROM oms_meter_status_events e
    WHERE e.meter_id = t.id AND e.event_timestamp < $3 AND e.event_timestamp >= $3 - $4 * interval '1 second'
      AND e.source_type = 'call_center' AND e.event_type = 'power_off')
"#
        )
    };
}

const CALLED_ABOUT: &str = concat!("SELECT EXISTS (", called_meters!(), ")");

// Run after the registry statement, which holds the meters' row locks until commit: a call
// ingested concurrently waits for them (`db::store::callcenter` locks its meter), so this new
// snapshot sees every call that committed first, and a call that commits after sees this
// message's `last_communication`. Either way the report reaches the correlator.
const QUEUE_REPORT: &str = concat!(
    "INSERT INTO oms_correlation_queue (at, power, source_type, source_event_id, meters)\n",
    "SELECT $3, 'report', 'kaifa', $5, q.meters FROM (SELECT array_agg(id) AS meters FROM (",
    called_meters!(),
    ") AS c) AS q WHERE q.meters IS NOT NULL RETURNING 1"
);

/// One meter by number, returning the status event's id (`update_meter_status`).
const APPLY_BY_METER_NUMBER: &str = concat!(
    "WITH target AS (SELECT id FROM oms_meters WHERE meter_number = $10),",
    registry_ctes!(),
    "SELECT (SELECT id FROM audited LIMIT 1)"
);

/// `report`: a customer report, audited against the meter and never written to the registry
/// (SPEC §4.4). Expects a CTE `reporting` with a row when the report is to be recorded, and $1
/// event time, $2 source type, $3 source event id, $4 confidence, $5 metadata, $6 meter number.
macro_rules! customer_report_audit {
    () => {
        r#"
report AS (
    INSERT INTO oms_meter_status_events
        (id, meter_id, event_type, source_type, source_event_id, previous_status, new_status,
         event_timestamp, confidence_score, applied, metadata)
    SELECT oms_uuid_v7(), m.id, 'power_off', $2, $3, m.power_status, 'off', $1, $4, false, $5
    FROM reporting, oms_meters m
    WHERE m.meter_number = $6 AND m.status = 'active'
    RETURNING meter_id
)"#
    };
}
pub(crate) use customer_report_audit;

// A Kaifa message names its meter by mRID; when the registry knows the meter only by a number
// equal to the asset mRID, the registry learns the mRIDs, so later messages and the runbook's
// "meters by source" query see it as a Kaifa meter.
const LEARN_MRIDS: &str = r#"
UPDATE oms_meters
SET asset_mrid = COALESCE(asset_mrid, $1), usage_point_mrid = COALESCE(usage_point_mrid, $2),
    updated_at = pg_catalog.now()
WHERE (meter_number = $1 OR asset_mrid = $1)
  AND (asset_mrid IS NULL OR (usage_point_mrid IS NULL AND $2 IS NOT NULL))
"#;

/// How many meters a signal reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Active meters the signal selected.
    pub matched: i32,
    /// Meters whose registry row took the new status.
    pub applied: i32,
    /// Status events written.
    pub audited: i32,
    /// The meters they were written for.
    pub audited_meters: Vec<pgrx::Uuid>,
}

/// Applies a Kaifa message's signal to the meters its mRIDs name.
pub fn apply(
    client: &mut SpiClient<'_>,
    signal: &MeterSignal,
    at: TimestampWithTimeZone,
) -> SpiResult<Applied> {
    let metadata = JsonB(signal.metadata.clone());
    let change = signal.change;
    let mut args = vec![
        arg(at),
        arg(signal.source.as_str()),
        arg(signal.source_event_id.as_str()),
        arg(signal.confidence),
        arg(metadata),
    ];
    let sql = match &signal.selector {
        MeterSelector::ReportedMeter(_) | MeterSelector::BehindOnu { .. } => {
            unreachable!("call-center and ONU signals are applied by their source's store statement (db::store)")
        }
        MeterSelector::ByMrid {
            asset_mrids,
            usage_point_mrids,
        } => {
            args.extend(change_args(change));
            args.push(arg(asset_mrids.clone()));
            args.push(arg(usage_point_mrids.clone()));
            APPLY_BY_MRID
        }
    };
    read_applied(execute(client, sql, &args)?)
}

/// Whether a Kaifa message's communication event is likely a report (`queue_report` decides it
/// under the meters' locks): asked first, so that only those take the correlator's lock in
/// `immediate` mode, and routine head-end traffic never waits for it.
pub fn called_about(
    client: &mut SpiClient<'_>,
    signal: &MeterSignal,
    at: TimestampWithTimeZone,
) -> SpiResult<bool> {
    match report_args(signal, at) {
        Some(args) => Ok(execute(client, CALLED_ABOUT, &args)?
            .first()
            .get_one::<bool>()?
            .unwrap_or(false)),
        None => Ok(false),
    }
}

/// Queues a Kaifa communication event as the report of the meters it names that a customer called
/// about within `call_verify_window` before it (issue 22); whether it did. Called after `apply`.
pub fn queue_report(
    client: &mut SpiClient<'_>,
    signal: &MeterSignal,
    at: TimestampWithTimeZone,
) -> SpiResult<bool> {
    match report_args(signal, at) {
        Some(args) => Ok(!execute(client, QUEUE_REPORT, &args)?.is_empty()),
        None => Ok(false),
    }
}

/// `called_meters!`'s parameters ($1-$4) and the message's event id ($5), for a message that
/// names its meters by mRID.
fn report_args<'a>(
    signal: &'a MeterSignal,
    at: TimestampWithTimeZone,
) -> Option<[pgrx::datum::DatumWithOid<'a>; 5]> {
    let MeterSelector::ByMrid {
        asset_mrids,
        usage_point_mrids,
    } = &signal.selector
    else {
        return None;
    };
    Some([
        arg(asset_mrids.clone()),
        arg(usage_point_mrids.clone()),
        arg(at),
        arg(crate::gucs::call_verify_window_seconds()),
        arg(signal.source_event_id.as_str()),
    ])
}

/// Records a message's mRIDs on its meter, when the message names exactly one asset (and at most
/// one usage point), so that the pairing is unambiguous.
pub fn learn_mrids(
    client: &mut SpiClient<'_>,
    asset_mrids: &[String],
    usage_point_mrids: &[String],
) -> SpiResult<()> {
    if let ([asset], [] | [_]) = (asset_mrids, usage_point_mrids) {
        execute(
            client,
            LEARN_MRIDS,
            &[
                arg(asset.as_str()),
                arg(usage_point_mrids.first().map(String::as_str)),
            ],
        )?;
    }
    Ok(())
}

/// Applies a status to one meter by number and returns the status event's id (`None` when the
/// meter is unknown or not active).
pub fn apply_to_meter_number(
    client: &mut SpiClient<'_>,
    meter_number: &str,
    change: ExplicitChange<'_>,
    at: TimestampWithTimeZone,
    metadata: serde_json::Value,
) -> SpiResult<Option<pgrx::Uuid>> {
    let args = [
        arg(at),
        arg(change.source),
        arg(change.source_event_id),
        arg(change.confidence),
        arg(JsonB(metadata)),
        arg(change.event_type),
        arg(change.new_power_status),
        arg(change.new_communication_status),
        arg(true),
        arg(meter_number),
    ];
    execute(client, APPLY_BY_METER_NUMBER, &args)?
        .first()
        .get_one::<pgrx::Uuid>()
}

/// A status change spelled out by a DBA rather than derived from a source event, with what the
/// audit trail attributes it to.
#[derive(Debug, Clone, Copy)]
pub struct ExplicitChange<'a> {
    pub event_type: &'a str,
    pub new_power_status: Option<&'a str>,
    pub new_communication_status: Option<&'a str>,
    pub source: &'a str,
    pub source_event_id: Option<&'a str>,
    pub confidence: f64,
}

/// Parameters $6-$9 of a registry statement for a change. A meter that speaks while already
/// online is not news for the audit trail; every other signal is audited for every meter.
pub(crate) fn change_args<'a>(change: StatusChange) -> [pgrx::datum::DatumWithOid<'a>; 4] {
    [
        arg(change.event_type()),
        arg(change.new_power_status()),
        arg(change.new_communication_status()),
        arg(change != StatusChange::CommunicationSeen),
    ]
}

pub(crate) fn read_applied(table: pgrx::spi::SpiTupleTable<'_>) -> SpiResult<Applied> {
    let row = table.first();
    let (matched, applied, audited) = row.get_three::<i32, i32, i32>()?;
    let audited_meters = row.get::<Vec<pgrx::Uuid>>(4)?.unwrap_or_default();
    Ok(Applied {
        matched: matched.unwrap_or(0),
        applied: applied.unwrap_or(0),
        audited: audited.unwrap_or(0),
        audited_meters,
    })
}
