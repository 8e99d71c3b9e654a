//! `scada_events`. The redelivery key is the alarm's identity: substation, feeder, `eventType`,
//! `alarmType` and time (SPEC §6).

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::{JsonB, Uuid};

use super::{inserted_id, Stored};
use crate::db::jsonb::RawJsonb;
use crate::db::{arg, execute};
use crate::payload::scada::ScadaAlarm;

// The payload as received goes to scada_raw_messages with it, as the legacy functions kept it; a
// redelivery writes neither.
const INSERT: &str = r#"
WITH alarm AS (
    INSERT INTO scada_events
        (id, event_type, substation_id, feeder_id, main_station_id, alarm_type, event_timestamp,
         voltage, severity, reason, latitude, longitude, source)
    VALUES (oms_uuid_v7(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (substation_id, feeder_id, event_type, alarm_type, event_timestamp) DO NOTHING
    RETURNING id
), raw AS (
    INSERT INTO scada_raw_messages (raw_payload, scada_event_id) SELECT $13, id FROM alarm
)
SELECT id FROM alarm
"#;

const FIND_ORIGINAL: &str = r#"
SELECT id, check_result FROM scada_events
WHERE substation_id = $1 AND event_type = $3 AND event_timestamp = $5
  AND feeder_id IS NOT DISTINCT FROM $2 AND alarm_type IS NOT DISTINCT FROM $4
"#;

/// The stored alarm, and for a redelivery what the first delivery's check returned.
pub struct StoredAlarm {
    pub stored: Stored<Uuid>,
    pub previous_result: Option<serde_json::Value>,
}

pub fn store(
    client: &mut SpiClient<'_>,
    alarm: &ScadaAlarm,
    at: TimestampWithTimeZone,
    raw_payload: RawJsonb,
) -> SpiResult<StoredAlarm> {
    let inserted = inserted_id::<Uuid>(execute(
        client,
        INSERT,
        &[
            arg(alarm.event_type.as_str()),
            arg(alarm.substation_id.as_str()),
            arg(alarm.feeder_id.as_deref()),
            arg(alarm.main_station_id.as_deref()),
            arg(alarm.alarm_type.as_deref()),
            arg(at),
            arg(alarm.voltage),
            arg(alarm.severity.as_deref()),
            arg(alarm.reason.as_deref()),
            arg(alarm.coordinates.lat),
            arg(alarm.coordinates.lng),
            arg(alarm.source.as_deref()),
            arg(raw_payload),
        ],
    )?)?;
    if let Some(id) = inserted {
        return Ok(StoredAlarm {
            stored: Stored {
                id,
                duplicate: false,
                signalled: Vec::new(),
            },
            previous_result: None,
        });
    }
    let original = execute(
        client,
        FIND_ORIGINAL,
        &[
            arg(alarm.substation_id.as_str()),
            arg(alarm.feeder_id.as_deref()),
            arg(alarm.event_type.as_str()),
            arg(alarm.alarm_type.as_deref()),
            arg(at),
        ],
    )?
    .first();
    let (id, result) = original.get_two::<Uuid, JsonB>()?;
    Ok(StoredAlarm {
        stored: Stored {
            id: id.expect("the conflicting alarm is visible once its inserter committed"),
            duplicate: true,
            signalled: Vec::new(),
        },
        previous_result: result.map(|j| j.0),
    })
}
