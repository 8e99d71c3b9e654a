//! SCADA's outage records: a device's outage opened or found, and an outage recorded as already
//! over (SPEC §4.1, §5.3). Meters, sources and counts join through `signals::join_outage!`.
//!
//! "At most one open outage per device" is a partial unique index on the device's key, and opening
//! goes through `INSERT ... ON CONFLICT DO UPDATE` on it, so concurrent alarms for one feeder
//! serialize on that row and the second joins the outage the first opened.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::Uuid;

use crate::db::{arg, execute, new_uuid_v7};
use pgrx::datum::DatumWithOid;

/// The device an outage is recorded against.
pub use crate::db::scada_check::Device;

impl Device {
    /// `oms_outage_events.scope`.
    pub fn scope(&self) -> &'static str {
        if self.feeder.is_some() {
            "feeder"
        } else {
            "substation"
        }
    }

    /// `oms_outage_events.device_key`: one open outage per key.
    pub fn key(&self) -> String {
        match (self.feeder, self.substation) {
            (Some(feeder), _) => format!("feeder:{feeder}"),
            (None, Some(substation)) => format!("substation:{substation}"),
            (None, None) => unreachable!("an outage's device names a feeder or a substation"),
        }
    }
}

/// What a source contributes to an outage.
pub struct Evidence<'a> {
    pub source_type: &'a str,
    pub source_event_id: &'a str,
    pub source_table: &'a str,
    pub at: TimestampWithTimeZone,
    pub severity: Option<&'a str>,
    pub cause: Option<&'a str>,
    pub description: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

// A SCADA alarm's device outage, or the open one the device has (a predicted outage that rolled
// up to the same feeder included: SCADA then confirms it). Authoritative: confirmed at 1.0 from the
// start (SPEC §5.3), its meters joining as they are found (the alarm's own join writes its first
// timeline row).
const OPEN_OR_JOIN: &str = r#"
WITH opened AS (
    INSERT INTO oms_outage_events
        (id, event_id, event_type, status, severity, confidence_score, affected_customers_count, customers_out,
         root_cause, description, event_latitude, event_longitude, substation_id, feeder_id, dp_id,
         first_detected_at, scope, device_key)
    VALUES ($1,
            'OMS_' || upper($2) || '_' || to_char($3 AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS')
                || '_' || substr(replace($1::text, '-', ''), 17, 16),
            'outage', 'confirmed', coalesce(lower($4), 'medium'), 1.0, 0, 0, $5, $6, $7, $8, $9, $10, NULL, $3,
            $11, $12)
    ON CONFLICT (device_key) WHERE status IN ('detected', 'confirmed', 'in_progress')
    DO UPDATE SET last_updated_at = pg_catalog.now()
    RETURNING id, id = $1 AS created, status
)
SELECT id, created FROM opened
"#;

// An outage alarm that arrives after the device's restoration: the outage happened and is over.
// It is recorded, restored, for the reliability record; the meters keep their newer status.
const RECORD_ALREADY_RESTORED: &str = r#"
WITH outage AS (
    INSERT INTO oms_outage_events
        (id, event_id, event_type, status, severity, confidence_score, affected_customers_count, customers_out,
         root_cause, description, event_latitude, event_longitude, substation_id, feeder_id, first_detected_at,
         scope, device_key, actual_restoration_time)
    VALUES ($1,
            'OMS_' || upper($2) || '_' || to_char($3 AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS')
                || '_' || substr(replace($1::text, '-', ''), 17, 16),
            'outage', 'restored', coalesce(lower($4), 'medium'), 1.0, 0, 0,
            $5, $6, $7, $8, $9, $10, $3, $11, $12, $13)
    RETURNING id
), source AS (
    INSERT INTO oms_event_sources
        (outage_event_id, source_type, source_event_id, source_table, correlation_weight, detected_at,
         event_timestamp, confidence_weight)
    SELECT id, $2, $14, 'scada_events', oms_source_weight($2), $3, $3, oms_source_weight($2)
    FROM outage
)
INSERT INTO oms_event_timeline
    (outage_event_id, event_type, status, description, source, "timestamp", event_description,
     event_timestamp, created_by)
SELECT id, step.event_type, 'restored', step.description, $2, step.at, step.description, step.at, 'oms_correlation'
FROM outage, (VALUES ('outage_detected', $6, $3), ('outage_restored', 'Restored before this alarm arrived', $13))
     AS step(event_type, description, at)
RETURNING outage_event_id
"#;

/// Parameters $1-$12 of the statements that write an outage row: its id, then the evidence and
/// the device.
fn outage_args<'a>(id: Uuid, device: Device, evidence: &'a Evidence<'a>) -> Vec<DatumWithOid<'a>> {
    vec![
        arg(id),
        arg(evidence.source_type),
        arg(evidence.at),
        arg(evidence.severity),
        arg(evidence.cause),
        arg(evidence.description.as_str()),
        arg(evidence.latitude),
        arg(evidence.longitude),
        arg(device.substation),
        arg(device.feeder),
        arg(device.scope()),
        arg(device.key()),
    ]
}

/// An open outage for the device: `(id, created)`.
pub fn open_or_join(
    client: &mut SpiClient<'_>,
    device: Device,
    evidence: &Evidence<'_>,
) -> SpiResult<(Uuid, bool)> {
    let candidate = new_uuid_v7();
    let row = execute(
        client,
        OPEN_OR_JOIN,
        &outage_args(candidate, device, evidence),
    )?
    .first();
    let (id, created) = row.get_two::<Uuid, bool>()?;
    Ok((
        id.expect("INSERT ... RETURNING id"),
        created.unwrap_or(false),
    ))
}

/// Records an outage that was already restored when its alarm arrived; returns its id.
pub fn record_already_restored(
    client: &mut SpiClient<'_>,
    device: Device,
    evidence: &Evidence<'_>,
    restored_at: TimestampWithTimeZone,
) -> SpiResult<Uuid> {
    let id = new_uuid_v7();
    let mut args = outage_args(id, device, evidence);
    args.extend([arg(restored_at), arg(evidence.source_event_id)]);
    execute(client, RECORD_ALREADY_RESTORED, &args)?;
    Ok(id)
}

// A restoration ($1) ended these outages ($2) too, and the outages that meters ($3) are back from
// at its time: its check result says so, so that an outage alarm arriving after it finds them
// (`rollup::absorb_restored_by`). For a restoration applied again, and one that ended a late
// power-off's outage (`signals`).
const NOTE_RESTORED_BY: &str = r#"
UPDATE scada_events e
SET check_result = pg_catalog.jsonb_set(e.check_result, '{restored_outages}',
        (SELECT coalesce(pg_catalog.jsonb_agg(DISTINCT r.id), '[]'::jsonb)
         FROM (SELECT pg_catalog.jsonb_array_elements_text(e.check_result -> 'restored_outages')
               UNION SELECT unnest($2::uuid[])::text
               UNION SELECT om.outage_id::text
                     FROM oms_outage_meters om JOIN oms_outage_events o ON o.id = om.outage_id
                     WHERE om.meter_id = ANY ($3) AND om.on_at = e.event_timestamp
                       AND o.status = 'restored' AND o.actual_restoration_time = e.event_timestamp) AS r(id)))
WHERE e.id = $1 AND pg_catalog.jsonb_typeof(e.check_result -> 'restored_outages') = 'array'
"#;

/// Records `outages`, and those `meters` are back from at its time, among the outages a
/// restoration alarm ended.
pub fn note_restored_by(
    client: &mut SpiClient<'_>,
    restoration: Uuid,
    outages: &[Uuid],
    meters: &[Uuid],
) -> SpiResult<()> {
    execute(
        client,
        NOTE_RESTORED_BY,
        &[
            arg(restoration),
            arg(outages.to_vec()),
            arg(meters.to_vec()),
        ],
    )?;
    Ok(())
}
