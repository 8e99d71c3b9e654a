//! `onus`, `onu_events`. The redelivery key is `eventId`, or the ONU, type and time (SPEC §6).

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};

use pgrx::{JsonB, Uuid};

use super::Stored;
use crate::canonical::MeterSignal;
use crate::db::jsonb::RawJsonb;
use crate::db::queue::enqueue;
use crate::db::registry::{change_args, registry_ctes};
use crate::db::{arg, execute};
use crate::payload::onu::OnuEvent;

// Unknown ONUs get a stub row, as the legacy functions did; a stub's missing serial is filled in
// by the first event that carries one (an ONU row is locked only then, so events for one ONU do
// not queue behind each other). The event links the first of its meters by meter number.
//
// Parameters follow the registry statements' numbering (`db::registry`), so that storing and
// applying can be one statement: $1 event time, $3 event id, $10 ONU, $11 associated meter
// numbers, $12 type, $13 alarm category, $14 alarm type, $15 parcel, $16 serial, $17 ONU serial,
// $18/$19 location, $20 NMS type, $21 the raw payload. $2 and $4-$9 are the registry's.
macro_rules! store_ctes {
    () => {
        r#"
onu AS (
    INSERT INTO onus (id, onu_serial_no, location_lat, location_lng, stub)
    SELECT $10, $17, $18, $19, true WHERE NOT EXISTS (SELECT FROM onus WHERE id = $10)
    ON CONFLICT (id) DO NOTHING
), serial AS (
    UPDATE onus SET onu_serial_no = $17, updated_at = pg_catalog.now()
    -- Not `onu_serial_no IS NULL`: the kept generic plan could then read every serial-less ONU
    -- through onus_serial_idx instead of this one by its key. An empty serial is a missing one.
    WHERE id = $10 AND coalesce(onu_serial_no, '') = '' AND $17 IS NOT NULL
), event AS (
    INSERT INTO onu_events
        (event_id, onu_id, event_type, "timestamp", alarm_category, alarm_type, parcel_code, serial_number,
         location_lat, location_lng, nms_type, raw_payload, meter_id)
    VALUES ($3, $10, $12, $1, $13, $14, $15, $16, $18, $19, $20, $21,
            (SELECT id FROM (SELECT id, meter_number FROM oms_meters WHERE onu_id = $10 AND status = 'active'
                             UNION ALL
                             SELECT id, meter_number FROM oms_meters WHERE meter_number = ANY($11) AND status = 'active')
                            AS behind_onu
              ORDER BY meter_number LIMIT 1))
    ON CONFLICT DO NOTHING
    RETURNING id
)"#
    };
}

const STORE: &str = concat!(
    "WITH",
    store_ctes!(),
    "\nSELECT id, '{}'::uuid[] FROM event"
);

/// Stores the event, applies its signal to the meters behind the ONU and queues it for the
/// correlator, in one statement; a redelivery (no row in `event`) reaches no meter.
const STORE_AND_APPLY: &str = concat!(
    "WITH",
    store_ctes!(),
    r#", target AS (
    SELECT id FROM oms_meters WHERE onu_id = $10 AND EXISTS (SELECT 1 FROM event)
    UNION
    SELECT id FROM oms_meters WHERE meter_number = ANY($11) AND EXISTS (SELECT 1 FROM event)
),"#,
    registry_ctes!(),
    ",",
    enqueue!(
        "audited",
        "CASE $6 WHEN 'power_off' THEN 'off' WHEN 'power_on' THEN 'on' END"
    ),
    "\nSELECT id, ARRAY(SELECT meter_id FROM audited) FROM event"
);

const FIND_ORIGINAL: &str = r#"
SELECT id FROM (
    SELECT id FROM onu_events WHERE event_id = $1
    UNION ALL
    SELECT id FROM onu_events WHERE onu_id = $2 AND event_type = $3 AND "timestamp" = $4
) AS original
LIMIT 1
"#;

/// Stores the event; with a signal, also applies it to the meters behind the ONU (the signal must
/// select them with `MeterSelector::BehindOnu`).
pub fn store(
    client: &mut SpiClient<'_>,
    event: &OnuEvent,
    event_id: &str,
    at: TimestampWithTimeZone,
    raw_payload: RawJsonb,
    signal: Option<&MeterSignal>,
) -> SpiResult<Stored<i32>> {
    let mut args = match signal {
        Some(signal) => {
            let mut args = vec![
                arg(at),
                arg(signal.source.as_str()),
                arg(event_id),
                arg(signal.confidence),
                arg(JsonB(signal.metadata.clone())),
            ];
            args.extend(change_args(signal.change));
            args
        }
        None => vec![
            arg(at),
            arg(Option::<&str>::None),
            arg(event_id),
            arg(Option::<f64>::None),
            arg(Option::<JsonB>::None),
            arg(Option::<&str>::None),
            arg(Option::<&str>::None),
            arg(Option::<&str>::None),
            arg(Option::<bool>::None),
        ],
    };
    args.extend([
        arg(event.onu_id),
        arg(event.associated_meters.clone()),
        arg(event.event_type.as_str()),
        arg(event.alarm.category.as_deref()),
        arg(event.alarm.alarm_type.as_deref()),
        arg(event.alarm.parcel.as_deref()),
        arg(event.alarm.serial.as_deref()),
        arg(event.onu_serial.as_deref()),
        arg(event.location.lat),
        arg(event.location.lng),
        arg(event.nms_type.as_deref()),
        arg(raw_payload),
    ]);
    let sql = if signal.is_some() {
        STORE_AND_APPLY
    } else {
        STORE
    };
    let inserted = execute(client, sql, &args)?;
    if !inserted.is_empty() {
        let (id, signalled) = inserted.first().get_two::<i32, Vec<Uuid>>()?;
        return Ok(Stored {
            id: id.expect("INSERT ... RETURNING id"),
            duplicate: false,
            signalled: signalled.unwrap_or_default(),
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
        signalled: Vec::new(),
    })
}

/// The id stored for an event that came without `eventId`: stable across redeliveries, since it
/// is built from the ONU, the time and the type.
pub fn stable_event_id(event: &OnuEvent, at: TimestampWithTimeZone) -> String {
    let event_type: String = event.event_type.chars().take(40).collect();
    format!("onu-{}-{}-{}", event.onu_id, at.into_inner(), event_type)
}
