//! `onus`, `onu_events`. The redelivery key is `eventId`, or the ONU, type and time (SPEC §6).

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};

use super::{inserted_id, Stored};
use crate::api::jsonb::RawJsonb;
use crate::db::{arg, execute};
use crate::payload::onu::OnuEvent;

// Unknown ONUs get a stub row, as the legacy functions did; a stub's missing serial is filled in
// by the first event that carries one (an ONU row is locked only then, so events for one ONU do
// not queue behind each other). The event links the first of its meters by meter number.
const INSERT: &str = r#"
WITH onu AS (
    INSERT INTO onus (id, onu_serial_no, location_lat, location_lng)
    VALUES ($2, $9, $10, $11)
    ON CONFLICT (id) DO NOTHING
), serial AS (
    UPDATE onus SET onu_serial_no = $9, updated_at = pg_catalog.now()
    WHERE id = $2 AND onu_serial_no IS NULL AND $9 IS NOT NULL
)
INSERT INTO onu_events
    (event_id, onu_id, event_type, "timestamp", alarm_category, alarm_type, parcel_code, serial_number,
     location_lat, location_lng, nms_type, raw_payload, meter_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, $11, $12, $13,
        (SELECT id FROM (SELECT id, meter_number FROM oms_meters WHERE onu_id = $2 AND status = 'active'
                         UNION ALL
                         SELECT id, meter_number FROM oms_meters WHERE meter_number = ANY($14) AND status = 'active')
                        AS behind_onu
          ORDER BY meter_number LIMIT 1))
ON CONFLICT DO NOTHING
RETURNING id
"#;

const FIND_ORIGINAL: &str = r#"
SELECT id FROM (
    SELECT id FROM onu_events WHERE event_id = $1
    UNION ALL
    SELECT id FROM onu_events WHERE onu_id = $2 AND event_type = $3 AND "timestamp" = $4
) AS original
LIMIT 1
"#;

pub fn store(
    client: &mut SpiClient<'_>,
    event: &OnuEvent,
    event_id: &str,
    at: TimestampWithTimeZone,
    raw_payload: RawJsonb,
) -> SpiResult<Stored<i32>> {
    let inserted = inserted_id::<i32>(execute(
        client,
        INSERT,
        &[
            arg(event_id),
            arg(event.onu_id),
            arg(event.event_type.as_str()),
            arg(at),
            arg(event.alarm.category.as_deref()),
            arg(event.alarm.alarm_type.as_deref()),
            arg(event.alarm.parcel.as_deref()),
            arg(event.alarm.serial.as_deref()),
            arg(event.onu_serial.as_deref()),
            arg(event.location.lat),
            arg(event.location.lng),
            arg(event.nms_type.as_deref()),
            arg(raw_payload),
            arg(event.associated_meters.clone()),
        ],
    )?)?;
    if let Some(id) = inserted {
        return Ok(Stored {
            id,
            duplicate: false,
        });
    }
    let original = execute(
        client,
        FIND_ORIGINAL,
        &[
            arg(event_id),
            arg(event.onu_id),
            arg(event.event_type.as_str()),
            arg(at),
        ],
    )?;
    let id = original
        .first()
        .get_one::<i32>()?
        .expect("the conflicting ONU event is visible once its inserter committed");
    Ok(Stored {
        id,
        duplicate: true,
    })
}

/// The id stored for an event that came without `eventId`: stable across redeliveries, since it
/// is built from the ONU, the time and the type.
pub fn stable_event_id(event: &OnuEvent, at: TimestampWithTimeZone) -> String {
    let event_type: String = event.event_type.chars().take(40).collect();
    format!("onu-{}-{}-{}", event.onu_id, at.into_inner(), event_type)
}
