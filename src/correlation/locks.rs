//! The device locks that serialize outage work (SPEC §5.3, concurrency).
//!
//! Every ingest that can change outages takes, before it touches a meter, the transaction-level
//! advisory lock of each device its meters hang from: the feeder, else the substation, else the
//! DP, else the meter's own service. A SCADA alarm takes its device's locks the same way (a
//! substation alarm: the substation and every feeder of it), all in one statement, in the order of
//! the locks' identity. So the order is always device locks, then meter rows, then outage rows,
//! and nothing waits in a circle (before them a SCADA alarm takes its substation's lock of
//! another class, which only SCADA alarms take): opening, joining, rolling up, merging and
//! restoring around one feeder happen one transaction at a time, and outcomes depend on event
//! times only.

use pgrx::spi::{SpiClient, SpiResult};
use pgrx::Uuid;

use crate::canonical::MeterSelector;
use crate::db::{arg, execute};

/// The advisory lock class of outage devices (`pg_locks.classid`).
const DEVICE_LOCK_CLASS: i32 = 1869440367;

/// A meter's place in the topology, for statements that name their meters in a CTE `target(id)`:
/// its feeder as SPEC §3 scopes it (its own column, else the mapping tables), else its DP's
/// feeder; its substation (its own column, else its feeder's, else the mapping table). Columns: meter_id, customer_key (the customer, or the meter when it has
/// none), customer_id, dp_id, onu_id, last_event_at (of its newest applied event), feeder_id,
/// substation_id.
macro_rules! located_meters {
    () => {
        r#"
SELECT m.id AS meter_id, coalesce(m.customer_id, m.id) AS customer_key, m.customer_id, m.dp_id, m.onu_id,
       m.last_event_at, t.feeder_id, t.substation_id
FROM target s
JOIN oms_meters m ON m.id = s.id
LEFT JOIN network_distribution_points dp ON dp.id = m.dp_id
CROSS JOIN LATERAL (
    SELECT coalesce(m.feeder_id,
                    (SELECT fm.feeder_id FROM network_feeder_meters fm WHERE fm.meter_id = m.id
                     ORDER BY fm.priority NULLS LAST, fm.feeder_id LIMIT 1),
                    (SELECT sm.feeder_id FROM network_substation_meters sm
                     WHERE sm.meter_id = m.id AND sm.feeder_id IS NOT NULL
                     ORDER BY sm.priority NULLS LAST, sm.feeder_id LIMIT 1),
                    dp.feeder_id) AS feeder_id) AS f0
LEFT JOIN network_feeders f ON f.id = f0.feeder_id
CROSS JOIN LATERAL (
    SELECT f0.feeder_id,
           coalesce(m.substation_id, f.substation_id,
                    (SELECT sm.substation_id FROM network_substation_meters sm WHERE sm.meter_id = m.id
                     ORDER BY sm.priority NULLS LAST, sm.substation_id LIMIT 1)) AS substation_id) AS t
"#
    };
}
pub(crate) use located_meters;

// The lock keys of the meters a source event names ($1 ONU, $2 meter numbers, $3 asset mRIDs,
// $4 usage-point mRIDs). `lock_all` puts them in lock order.
const METER_LOCK_KEYS: &str = concat!(
    r#"
WITH target AS (
    SELECT id FROM oms_meters WHERE onu_id = $1
    UNION SELECT id FROM oms_meters WHERE meter_number = ANY ($2)
    UNION SELECT id FROM oms_meters WHERE asset_mrid = ANY ($3)
    UNION SELECT id FROM oms_meters WHERE usage_point_mrid = ANY ($4)
), located AS ("#,
    located_meters!(),
    r#")
SELECT coalesce('feeder:' || feeder_id, 'substation:' || substation_id, 'dp:' || dp_id,
                'service:meter:' || meter_id) AS key
FROM located
"#
);

// A SCADA device's lock keys: the substation and each of its feeders, or the one feeder.
const SCADA_LOCK_KEYS: &str = r#"
SELECT 'substation:' || $1::uuid WHERE $2::uuid IS NULL AND $1::uuid IS NOT NULL
UNION ALL
SELECT 'feeder:' || f.id FROM network_feeders f WHERE $2::uuid IS NULL AND f.substation_id = $1
UNION ALL
SELECT 'feeder:' || $2::uuid WHERE $2::uuid IS NOT NULL
"#;

// The locks of keys ($2) in the order of their identity, the key's hash: two sessions can then never
// hold each other's next lock, even when two keys hash alike (they are one lock). The lock calls
// run after the sort (PostgreSQL evaluates a volatile target list after ORDER BY).
const LOCK_ALL: &str = r#"
SELECT pg_catalog.pg_advisory_xact_lock($1, h)
FROM (SELECT DISTINCT pg_catalog.hashtext(k) AS h FROM unnest($2::text[]) AS k) AS keys
ORDER BY h
"#;

/// Takes the device locks of the meters a signal names, before it touches them.
pub fn lock_devices_of(client: &mut SpiClient<'_>, selector: &MeterSelector) -> SpiResult<()> {
    let none: &[String] = &[];
    let (onu, meter_numbers, asset_mrids, usage_point_mrids) = match selector {
        MeterSelector::BehindOnu {
            onu_id,
            meter_numbers,
        } => (Some(*onu_id), &meter_numbers[..], none, none),
        MeterSelector::ByMrid {
            asset_mrids,
            usage_point_mrids,
        } => {
            // A meter number equal to an asset mRID names the meter too (SPEC §4.3).
            (
                None,
                &asset_mrids[..],
                &asset_mrids[..],
                &usage_point_mrids[..],
            )
        }
        MeterSelector::ReportedMeter(number) => (None, std::slice::from_ref(number), none, none),
    };
    let mut keys = Vec::new();
    for row in execute(
        client,
        METER_LOCK_KEYS,
        &[
            arg(onu),
            arg(meter_numbers.to_vec()),
            arg(asset_mrids.to_vec()),
            arg(usage_point_mrids.to_vec()),
        ],
    )? {
        if let Some(key) = row.get::<String>(1)? {
            keys.push(key);
        }
    }
    lock_all(client, &keys)
}

/// Takes the device locks of a SCADA alarm's device.
pub fn lock_scada_device(
    client: &mut SpiClient<'_>,
    substation: Option<Uuid>,
    feeder: Option<Uuid>,
) -> SpiResult<()> {
    let mut keys = Vec::new();
    for row in execute(client, SCADA_LOCK_KEYS, &[arg(substation), arg(feeder)])? {
        if let Some(key) = row.get::<String>(1)? {
            keys.push(key);
        }
    }
    lock_all(client, &keys)
}

fn lock_all(client: &mut SpiClient<'_>, keys: &[String]) -> SpiResult<()> {
    if !keys.is_empty() {
        execute(
            client,
            LOCK_ALL,
            &[arg(DEVICE_LOCK_CLASS), arg(keys.to_vec())],
        )?;
    }
    Ok(())
}
