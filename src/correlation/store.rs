//! Outage records: open or join, record evidence, announce (SPEC §3, §4.1, §5).
//!
//! "At most one open outage per device" is a partial unique index on the device's key, and opening
//! goes through `INSERT ... ON CONFLICT DO UPDATE` on it, so concurrent alarms for one feeder
//! serialize on that row and the second joins the outage the first opened.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::{JsonB, Uuid};
use serde_json::json;

use crate::db::{arg, execute, new_uuid_v7};
use pgrx::datum::DatumWithOid;

/// The device an outage is recorded against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub substation: Option<Uuid>,
    pub feeder: Option<Uuid>,
}

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

const OPEN_OR_JOIN: &str = r#"
INSERT INTO oms_outage_events
    (id, event_id, event_type, status, severity, root_cause, description, event_latitude,
     event_longitude, substation_id, feeder_id, dp_id, first_detected_at, scope, device_key)
VALUES ($1,
        'OMS_' || upper($2) || '_' || to_char($3 AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS')
            || '_' || substr(replace($1::text, '-', ''), 25, 8),
        'outage', 'detected', coalesce(lower($4), 'medium'), $5, $6, $7, $8, $9, $10, NULL, $3, $11, $12)
ON CONFLICT (device_key) WHERE status IN ('detected', 'confirmed', 'in_progress')
DO UPDATE SET last_updated_at = pg_catalog.now()
RETURNING id, id = $1
"#;

// Confidence combines the weights of every contributing source as 1 - prod(1 - w) (SPEC §5).
const RECORD_EVIDENCE: &str = r#"
WITH weight AS (
    SELECT oms_source_weight($2) AS w
), source AS (
    INSERT INTO oms_event_sources
        (outage_event_id, source_type, source_event_id, source_table, correlation_weight, detected_at,
         event_timestamp, confidence_weight, event_data)
    SELECT $1, $2, $3, $4, w, $5, $5, w, $8 FROM weight
    ON CONFLICT (outage_event_id, source_type, source_event_id) DO NOTHING
    RETURNING correlation_weight
), timeline AS (
    INSERT INTO oms_event_timeline
        (outage_event_id, event_type, status, description, source, "timestamp", metadata,
         event_description, event_timestamp, created_by)
    SELECT $1, $6, o.status, $7, $2, $5, $8, $7, $5, 'oms_correlation' FROM oms_outage_events o WHERE o.id = $1
)
UPDATE oms_outage_events o SET
    -- The largest set of meters one of its alarms found affected: repeated alarms of a device see
    -- the same meters, and recounting every alarm's rows would grow with the outage.
    affected_customers_count = GREATEST(o.affected_customers_count, $9),
    confidence_score = (
        -- least() keeps ln() defined: aggregates are computed whichever CASE branch is taken.
        SELECT CASE WHEN bool_or(w >= 1) THEN 1 ELSE 1 - exp(sum(ln(1 - least(w, 0.9999)))) END
        FROM (SELECT correlation_weight AS w FROM oms_event_sources
               WHERE outage_event_id = o.id AND correlation_weight IS NOT NULL
              UNION ALL SELECT correlation_weight FROM source WHERE correlation_weight IS NOT NULL) AS weights),
    last_updated_at = pg_catalog.now()
WHERE o.id = $1
RETURNING o.event_id, o.status, o.affected_customers_count
"#;

// An outage alarm that arrives after the device's restoration: the outage happened and is over.
// It is recorded, restored, for the reliability record; the meters keep their newer status.
const RECORD_ALREADY_RESTORED: &str = r#"
WITH outage AS (
    INSERT INTO oms_outage_events
        (id, event_id, event_type, status, severity, confidence_score, root_cause, description,
         event_latitude, event_longitude, substation_id, feeder_id, first_detected_at, scope, device_key,
         actual_restoration_time)
    VALUES ($1,
            'OMS_' || upper($2) || '_' || to_char($3 AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS')
                || '_' || substr(replace($1::text, '-', ''), 25, 8),
            'outage', 'restored', coalesce(lower($4), 'medium'), oms_source_weight($2),
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

// The customers of the meters an alarm found affected, for the operations API (SPEC §5.1).
const LINK_ALARM_CUSTOMERS: &str = r#"
INSERT INTO oms_outage_customers (outage_id, customer_id, linked_at)
SELECT DISTINCT $1::uuid, m.customer_id, $3::timestamptz
FROM scada_event_affected_meters a JOIN oms_meters m ON m.id = a.meter_id
WHERE a.scada_event_id = $2 AND a.meter_status_after = 'off' AND m.customer_id IS NOT NULL
ON CONFLICT (outage_id, customer_id) DO NOTHING
"#;

const NOTIFY: &str = "SELECT pg_catalog.pg_notify('oms_outage', $1)";

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

/// Adds the source to the outage, writes the timeline entry, refreshes the outage's counts and
/// confidence, and announces the change on channel `oms_outage`.
pub fn record_evidence(
    client: &mut SpiClient<'_>,
    outage_id: Uuid,
    created: bool,
    evidence: &Evidence<'_>,
    affected_meters: i32,
    metadata: serde_json::Value,
) -> SpiResult<()> {
    let timeline_event = if created {
        "outage_detected"
    } else {
        "source_joined"
    };
    let row = execute(
        client,
        RECORD_EVIDENCE,
        &[
            arg(outage_id),
            arg(evidence.source_type),
            arg(evidence.source_event_id),
            arg(evidence.source_table),
            arg(evidence.at),
            arg(timeline_event),
            arg(evidence.description.as_str()),
            arg(JsonB(metadata)),
            arg(affected_meters),
        ],
    )?
    .first();
    let (event_id, status, affected) = row.get_three::<String, String, i32>()?;
    announce(
        client,
        json!({
            "outage_event_id": outage_id.to_string(),
            "event_id": event_id,
            "change": if created { "created" } else { "joined" },
            "status": status,
            "affected_customers_count": affected,
            "source_type": evidence.source_type,
            "source_event_id": evidence.source_event_id,
        }),
    )
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
    announce(
        client,
        json!({"outage_event_id": id.to_string(), "change": "recorded_restored", "status": "restored",
               "source_type": evidence.source_type, "source_event_id": evidence.source_event_id}),
    )?;
    Ok(id)
}

/// Links the customers of the meters a SCADA alarm marked off to the outage.
pub fn link_alarm_customers(
    client: &mut SpiClient<'_>,
    outage_id: Uuid,
    scada_event_id: Uuid,
    at: TimestampWithTimeZone,
) -> SpiResult<()> {
    execute(
        client,
        LINK_ALARM_CUSTOMERS,
        &[arg(outage_id), arg(scada_event_id), arg(at)],
    )?;
    Ok(())
}

pub fn announce(client: &mut SpiClient<'_>, message: serde_json::Value) -> SpiResult<()> {
    execute(client, NOTIFY, &[arg(message.to_string())])?;
    Ok(())
}
