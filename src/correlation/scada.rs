//! SCADA as a producer of outage evidence (SPEC §4.1 steps 3-4, §5.3): an outage alarm marks its
//! device's meters and opens (or joins) the device's outage, authoritative and confirmed even when
//! no meter reads as off yet; it absorbs the predicted outages under the device, and its affected
//! meters join it. A restoration restores the device's open outages and turns their meters back
//! on; an outage alarm that arrives after a newer restoration of its device has been handled does
//! what an in-order delivery would have done. The caller holds the device's locks (`locks`).

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::Uuid;
use serde_json::{json, Value};

use super::locks::located_meters;
use super::rollup::{self, outages_restoration_still_ends};
use super::signals::{self, join_outage, next_power_on, restore_if_all_back};
use super::store::{self, Device, Evidence};
use super::stream::{Announcements, Change};
use crate::db::registry::registry_ctes;
use crate::db::scada_check::{self, bulk_statement, CheckSettings, ScopeCounts, Writes};
use crate::db::{arg, execute};
use crate::error::Source;
use crate::gucs::{self, ScadaScope};

// The device's first restoration already stored that is newer than $3 (answered by the partial
// index scada_events_restorations): an outage alarm older than it was over then, and a restoration
// older than it takes back the outages it restored that began before the older one.
const FIRST_NEWER_RESTORATION: &str = r#"
SELECT newer.event_timestamp, newer.id
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT event_timestamp, id FROM scada_events
    WHERE substation_id = $1 AND (feeder_id = $2 OR (feeder_id IS NULL AND $2 IS NULL)) AND event_timestamp > $3
      AND (check_result ->> 'classification') = 'restoration'
    ORDER BY event_timestamp LIMIT 1
) AS newer ON true
"#;

/// What the outage and restoration paths need to know about the alarm.
pub struct AlarmContext<'a> {
    pub scada_event_id: Uuid,
    pub at: TimestampWithTimeZone,
    pub device: Device,
    /// The device as the alarm named it, which is how alarms of one device find each other.
    pub substation_code: &'a str,
    pub feeder_code: Option<&'a str>,
    pub description: String,
    pub severity: Option<&'a str>,
    pub cause: Option<&'a str>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub metadata: Value,
}

impl<'a> AlarmContext<'a> {
    /// What this alarm contributes to an outage record.
    pub fn evidence<'e>(&'e self, source_event_id: &'e str, description: String) -> Evidence<'e> {
        Evidence {
            source_type: "scada",
            source_event_id,
            source_table: "scada_events",
            at: self.at,
            severity: self.severity,
            cause: self.cause,
            description,
            latitude: self.latitude,
            longitude: self.longitude,
        }
    }
}

/// What an outage alarm did.
#[derive(Debug, Clone, Default)]
pub struct OutageCheck {
    pub counts: ScopeCounts,
    /// The device's outage it opened or joined.
    pub outage_id: Option<Uuid>,
    pub created: bool,
    /// A newer restoration of the device had been handled before it arrived.
    pub superseded: bool,
    /// Meters that newer restoration turned back on (superseded alarms only).
    pub restored_meters: i32,
}

// The alarm's affected meters ($9, the alarm), each with its on time (`$on_at`, over the located
// meters `l`), as the CTE `incoming` of `join_outage!` ($1 the outage, $2 the alarm's time). A
// meter the outage already holds for the same span of power loss is no new member: one whose
// membership there holds the alarm's time, or one whose membership there began later and ends
// at the same power-on (that membership starts at the alarm's time instead, as for any earlier
// word, unless another outage holds the meter then). Without this every late alarm of a device
// added its meters again, one overlapping membership each.
//
// Each test goes meter by meter, by key (see `join_outage!`). A generic plan that took the alarm
// for one meter re-ran "held" as a join of all the told meters for each of them: 32 ms an alarm
// of 150 meters, against one outage of a few thousand memberships.
macro_rules! alarm_meters {
    ($on_at:expr) => {
        concat!(
            "WITH target AS (SELECT meter_id AS id FROM scada_event_affected_meters WHERE scada_event_id = $9),",
            " located AS (",
            located_meters!(),
            "), told AS (SELECT l.meter_id, l.customer_key, l.customer_id, l.dp_id, l.feeder_id, l.substation_id, ",
            $on_at,
            r#" AS on_at FROM located l
), later AS (
    SELECT t.meter_id, s.off_at FROM told t
    CROSS JOIN LATERAL (SELECT min(om.off_at) AS off_at FROM oms_outage_meters om
                        WHERE om.outage_id = $1 AND om.meter_id = t.meter_id AND om.off_at > $2
                          AND om.on_at IS NOT DISTINCT FROM t.on_at) AS s
    WHERE s.off_at IS NOT NULL
), earlier AS (
    UPDATE oms_outage_meters om SET off_at = $2
    FROM later s
    WHERE om.outage_id = $1 AND om.meter_id = s.meter_id AND om.off_at = s.off_at
      AND NOT EXISTS (SELECT FROM oms_outage_meters x
                      WHERE x.meter_id = s.meter_id AND x.off_at <= $2 AND coalesce(x.on_at, 'infinity') > $2)
), incoming AS (
    SELECT t.* FROM told t
    WHERE NOT EXISTS (SELECT FROM oms_outage_meters om
                      WHERE om.outage_id = $1 AND om.meter_id = t.meter_id
                        AND om.off_at <= $2 AND coalesce(om.on_at, 'infinity') > $2 OFFSET 0)
      AND NOT EXISTS (SELECT FROM later s WHERE s.meter_id = t.meter_id)
), "#,
            join_outage!()
        )
    };
}

// The alarm's affected meters join its outage (`join_outage!`, $1-$8; $9 the alarm).
const JOIN_ALARM_METERS: &str = alarm_meters!(next_power_on!());

// The same for an alarm recorded after its restoration ($10): its meters were out until then.
const RECORD_ALARM_METERS_RESTORED: &str = alarm_meters!("$10::timestamptz");

// The restored outages ($1) that were over within the momentary window ($2 seconds) of their start.
const MOMENTARY_AMONG: &str = r#"
SELECT coalesce(array_agg(id), '{}') FROM oms_outage_events
WHERE id = ANY ($1) AND actual_restoration_time - first_detected_at <= pg_catalog.make_interval(secs => $2)
"#;

fn momentary_among(client: &mut SpiClient<'_>, restored: &[Uuid]) -> SpiResult<Vec<Uuid>> {
    if restored.is_empty() {
        return Ok(Vec::new());
    }
    let window = gucs::engine().momentary_window_seconds;
    Ok(execute(
        client,
        MOMENTARY_AMONG,
        &[arg(restored.to_vec()), arg(window)],
    )?
    .first()
    .get_one::<Vec<Uuid>>()?
    .unwrap_or_default())
}

/// Step 3 of SPEC §4.1 with §5.3: check every meter in scope and mark the affected ones off; open
/// or join the device's outage, absorb the predicted outages under it, and add the meters.
pub fn check_outage(
    client: &mut SpiClient<'_>,
    alarm: &AlarmContext<'_>,
    announcements: &mut Announcements,
) -> SpiResult<OutageCheck> {
    let newer = execute(
        client,
        FIRST_NEWER_RESTORATION,
        &[
            arg(alarm.substation_code),
            arg(alarm.feeder_code),
            arg(alarm.at),
        ],
    )?
    .first()
    .get_two::<TimestampWithTimeZone, Uuid>()?;
    if let (Some(restored_at), Some(restoration)) = newer {
        return record_superseded(client, alarm, restored_at, restoration, announcements);
    }
    let counts = mark_affected(client, alarm)?;
    let source_event_id = alarm.scada_event_id.to_string();
    let evidence = alarm.evidence(
        &source_event_id,
        format!(
            "{}: {} meter(s) affected",
            alarm.description, counts.affected
        ),
    );
    let (outage_id, created) = open_device_outage(
        client,
        alarm.device,
        alarm.scada_event_id,
        &evidence,
        announcements,
    )?;
    Ok(OutageCheck {
        counts,
        outage_id: Some(outage_id),
        created,
        ..OutageCheck::default()
    })
}

/// The device's outage opened or joined by an outage alarm (`evidence`, alarm `scada_event_id`):
/// the predicted outages under the device absorbed, the alarm's affected meters joined.
/// Returns `(outage, created)`.
fn open_device_outage(
    client: &mut SpiClient<'_>,
    device: Device,
    scada_event_id: Uuid,
    evidence: &Evidence<'_>,
    announcements: &mut Announcements,
) -> SpiResult<(Uuid, bool)> {
    let (outage_id, created) = store::open_or_join(client, device, evidence)?;
    if created {
        announcements.push(outage_id, Change::Opened);
    }
    let settings = gucs::engine();
    rollup::absorb_predicted_under(
        client,
        &settings,
        outage_id,
        device.substation,
        device.feeder,
        evidence.at,
        announcements,
    )?;
    let row = execute(
        client,
        JOIN_ALARM_METERS,
        &[
            arg(outage_id),
            arg(evidence.at),
            arg("scada"),
            arg(evidence.source_event_id),
            arg("scada_events"),
            arg(settings.confirm_confidence),
            arg(evidence.description.as_str()),
            arg(Some(if created {
                "outage_detected"
            } else {
                "source_joined"
            })),
            arg(scada_event_id),
        ],
    )?
    .first();
    let (meters_added, source_added) = (
        row.get::<i32>(1)?.unwrap_or(0),
        row.get::<i32>(2)?.unwrap_or(0),
    );
    let meters_out = row.get::<i32>(3)?.unwrap_or(0);
    if !created && (meters_added > 0 || source_added > 0) {
        announcements.push(outage_id, Change::Joined);
    }
    if row.get::<bool>(4)? == Some(true) && !created {
        announcements.push(outage_id, Change::Confirmed);
    }
    if meters_added > 0 && meters_out == 0 {
        restore_if_all_back(client, outage_id, "scada", announcements)?;
    }
    Ok((outage_id, created))
}

// Outage alarms newer than a restoration ($2) that are sources of the outages it restored ($1):
// handled before the restoration arrived, they joined an outage that, in time order, was over
// before they happened. Each with its time, event type, severity, device, reason and place.
const NEWER_ALARMS_OF: &str = r#"
SELECT e.id, e.event_timestamp, e.event_type, e.severity, o.substation_id,
       CASE WHEN o.scope = 'feeder' THEN o.feeder_id END, e.reason, e.latitude::float8, e.longitude::float8
FROM scada_events e JOIN oms_outage_events o ON o.id = e.outage_event_id
WHERE e.outage_event_id = ANY ($1) AND e.event_timestamp > $2
  AND (e.check_result ->> 'classification') = 'outage' AND o.scope IN ('feeder', 'substation')
ORDER BY e.event_timestamp, e.id
"#;

// Alarm $1 (its id as text $2) is a source of outage $3 now, no longer of the restored ones ($4).
const MOVE_ALARM: &str = r#"
WITH moved AS (
    DELETE FROM oms_event_sources
    WHERE outage_event_id = ANY ($4) AND source_type = 'scada' AND source_event_id = $2
)
UPDATE scada_events SET outage_event_id = $3 WHERE id = $1
"#;

/// An outage alarm of `NEWER_ALARMS_OF`.
struct NewerAlarm {
    id: Uuid,
    at: TimestampWithTimeZone,
    event_type: String,
    severity: Option<String>,
    device: Device,
    reason: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

/// A device outage opened (or joined) again by a newer alarm after a late restoration.
struct Reopened {
    alarm: String,
    outage: Uuid,
    device: Device,
    at: TimestampWithTimeZone,
}

/// After a restoration at `at` of `restored`: the device's outage alarms newer than it open (or
/// join) the device's next outage again, in time order, as they would have on time.
fn reopen_for_newer_alarms(
    client: &mut SpiClient<'_>,
    restored: &[Uuid],
    at: TimestampWithTimeZone,
    announcements: &mut Announcements,
) -> SpiResult<Vec<Reopened>> {
    if restored.is_empty() {
        return Ok(Vec::new());
    }
    let mut alarms = Vec::new();
    for row in execute(client, NEWER_ALARMS_OF, &[arg(restored.to_vec()), arg(at)])? {
        alarms.push(NewerAlarm {
            id: row.get::<Uuid>(1)?.expect("scada_events.id"),
            at: row
                .get::<TimestampWithTimeZone>(2)?
                .expect("event_timestamp is NOT NULL"),
            event_type: row.get::<String>(3)?.unwrap_or_default(),
            severity: row.get::<String>(4)?,
            device: Device {
                substation: row.get::<Uuid>(5)?,
                feeder: row.get::<Uuid>(6)?,
            },
            reason: row.get::<String>(7)?,
            latitude: row.get::<f64>(8)?,
            longitude: row.get::<f64>(9)?,
        });
    }
    let mut replayed = Vec::with_capacity(alarms.len());
    for alarm in alarms {
        let source_event_id = alarm.id.to_string();
        let evidence = Evidence {
            source_type: Source::Scada.as_str(),
            source_event_id: &source_event_id,
            source_table: "scada_events",
            at: alarm.at,
            severity: alarm.severity.as_deref(),
            cause: alarm.reason.as_deref(),
            description: format!(
                "SCADA {}, after a late restoration of its device",
                alarm.event_type
            ),
            latitude: alarm.latitude,
            longitude: alarm.longitude,
        };
        let (outage, _) =
            open_device_outage(client, alarm.device, alarm.id, &evidence, announcements)?;
        execute(
            client,
            MOVE_ALARM,
            &[
                arg(alarm.id),
                arg(source_event_id.as_str()),
                arg(outage),
                arg(restored.to_vec()),
            ],
        )?;
        replayed.push(Reopened {
            alarm: source_event_id,
            outage,
            device: alarm.device,
            at: alarm.at,
        });
    }
    Ok(replayed)
}

// The device's ($3, its key) outage that a restoration alarm ($1) restored and still ends, begun
// by $2.
const DEVICE_OUTAGE_RESTORED_BY: &str = concat!(
    "SELECT o.id ",
    outages_restoration_still_ends!(),
    r#"
  AND o.device_key = $3 AND o.first_detected_at <= $2
ORDER BY o.first_detected_at
LIMIT 1"#
);

/// An outage alarm older than a restoration already handled for its device. What happened is
/// what an in-order delivery would have done: the alarm marks its meters off as of its own time
/// and the restoration turns them back on as of its time, each through the ordering gate, so a
/// meter ends as its newest event says whatever the arrival order. The outage is recorded as
/// over, with its meters out from the alarm to the restoration, so the reliability record still
/// counts it; the outages that restoration restored merge into it, so it counts once. When the
/// device's own outage that restoration ended had begun by the alarm's time, the alarm joins it
/// instead, as it would have on time.
fn record_superseded(
    client: &mut SpiClient<'_>,
    alarm: &AlarmContext<'_>,
    restored_at: TimestampWithTimeZone,
    restoration: Uuid,
    announcements: &mut Announcements,
) -> SpiResult<OutageCheck> {
    let counts = mark_affected(client, alarm)?;
    let restored_meters = scada_check::restore_alarm_meters(
        client,
        alarm.device,
        alarm.scada_event_id,
        restoration,
        restored_at,
        gucs::confidence_scada(),
        json!({"restores_late_alarm": alarm.scada_event_id.to_string()}),
    )?;
    let source_event_id = alarm.scada_event_id.to_string();
    let evidence = alarm.evidence(
        &source_event_id,
        format!("{} (arrived after its restoration)", alarm.description),
    );
    // The device's outage that restoration ended, if it had begun by the alarm's time: in time the
    // alarm would have joined it, adding only what it does not hold already.
    let found = execute(
        client,
        DEVICE_OUTAGE_RESTORED_BY,
        &[arg(restoration), arg(alarm.at), arg(alarm.device.key())],
    )?;
    let ongoing = match found.is_empty() {
        true => None,
        false => found.first().get_one::<Uuid>()?,
    };
    let (outage_id, created) = match ongoing {
        Some(outage) => (outage, false),
        None => (
            store::record_already_restored(client, alarm.device, &evidence, restored_at)?,
            true,
        ),
    };
    execute(
        client,
        RECORD_ALARM_METERS_RESTORED,
        &[
            arg(outage_id),
            arg(alarm.at),
            arg("scada"),
            arg(source_event_id.as_str()),
            arg("scada_events"),
            arg(gucs::engine().confirm_confidence),
            arg(evidence.description.as_str()),
            arg(Some("source_joined")),
            arg(alarm.scada_event_id),
            arg(restored_at),
        ],
    )?;
    announcements.push(
        outage_id,
        if created {
            Change::RecordedRestored
        } else {
            Change::Joined
        },
    );
    rollup::absorb_restored_by(
        client,
        &gucs::engine(),
        outage_id,
        restoration,
        alarm.at,
        announcements,
    )?;
    Ok(OutageCheck {
        counts,
        outage_id: Some(outage_id),
        created,
        superseded: true,
        restored_meters,
    })
}

/// What a restoration alarm did.
pub struct RestorationOutcome {
    pub counts: ScopeCounts,
    pub restored: Restoration,
}

/// Step 4 of SPEC §4.1: restore the device's open outages and turn their meters back on.
pub fn restore(
    client: &mut SpiClient<'_>,
    alarm: &AlarmContext<'_>,
    announcements: &mut Announcements,
) -> SpiResult<RestorationOutcome> {
    let counts = count_scope(client, alarm)?;
    let restoring = Restoring {
        scada_event_id: alarm.scada_event_id,
        at: alarm.at,
        device: alarm.device,
        substation_code: alarm.substation_code,
        feeder_code: alarm.feeder_code,
        metadata: alarm.metadata.clone(),
        applied_again: false,
    };
    let restored = restore_device(client, &restoring, announcements)?;
    Ok(RestorationOutcome { counts, restored })
}

/// A restoration of a device, as it arrived or applied again.
struct Restoring<'a> {
    scada_event_id: Uuid,
    at: TimestampWithTimeZone,
    device: Device,
    substation_code: &'a str,
    feeder_code: Option<&'a str>,
    metadata: Value,
    /// Applied again, after an older restoration that arrived late took outages back from it:
    /// the meters it turned back on are on in the registry already.
    applied_again: bool,
}

/// The device's first restoration newer than one being applied, already handled.
#[derive(Clone, Copy)]
struct NewerRestoration {
    scada_event_id: Uuid,
    at: TimestampWithTimeZone,
}

fn restore_device(
    client: &mut SpiClient<'_>,
    restoring: &Restoring<'_>,
    announcements: &mut Announcements,
) -> SpiResult<Restoration> {
    // A newer restoration already handled has restored the outages this one should have: it
    // takes them back, and the newer one is applied again to what follows this one.
    let newer = match execute(
        client,
        FIRST_NEWER_RESTORATION,
        &[
            arg(restoring.substation_code),
            arg(restoring.feeder_code),
            arg(restoring.at),
        ],
    )?
    .first()
    .get_two::<TimestampWithTimeZone, Uuid>()?
    {
        (Some(at), Some(scada_event_id)) => Some(NewerRestoration { scada_event_id, at }),
        _ => None,
    };
    let device = restoring.device;
    let restoration = restore_outages(
        client,
        &OutagesRestored {
            scada_event_id: restoring.scada_event_id,
            device,
            at: restoring.at,
            confidence: gucs::confidence_scada(),
            metadata: restoring.metadata.clone(),
            taking_back_from: newer,
            applied_again: restoring.applied_again,
        },
    )?;
    // A restoration that arrives late ends only what began before it: spans that began after it
    // leave the outages it restored, the device's newer alarms open its next outage, and the
    // power-offs told after it are correlated again, those that came while their meters were still
    // out here too (the newer alarms' own spans came back with them); the predicted outages they
    // open under the device are then absorbed, as the alarm would have on time.
    let later =
        signals::detach_spans_after_restoration(client, &restoration.outage_ids, restoring.at)?;
    let detached_meters: Vec<Uuid> = later.iter().flat_map(|s| s.meters.clone()).collect();
    let reopened =
        reopen_for_newer_alarms(client, &restoration.outage_ids, restoring.at, announcements)?;
    let later = later
        .into_iter()
        .filter(|spans| {
            !(spans.source == Source::Scada
                && reopened.iter().any(|r| r.alarm == spans.source_event_id))
        })
        .collect();
    let replay = signals::take_back_later_power_offs(
        client,
        &restoration.outage_ids,
        restoring.at,
        &detached_meters,
        later,
    )?;
    signals::correlate_later_spans(client, replay)?;
    let settings = gucs::engine();
    for outage in &reopened {
        rollup::absorb_predicted_under(
            client,
            &settings,
            outage.outage,
            outage.device.substation,
            outage.device.feeder,
            outage.at,
            announcements,
        )?;
    }
    for id in &restoration.outage_ids {
        announcements.push(*id, Change::Restored);
    }
    for id in momentary_among(client, &restoration.outage_ids)? {
        announcements.push(id, Change::Momentary);
    }
    if let (Some(newer), false) = (newer, restoration.taken_back.is_empty()) {
        let again = Restoring {
            scada_event_id: newer.scada_event_id,
            at: newer.at,
            metadata: json!({"applied_again_after": restoring.scada_event_id.to_string()}),
            applied_again: true,
            ..*restoring
        };
        let restored_again = restore_device(client, &again, announcements)?;
        store::note_restored_by(
            client,
            newer.scada_event_id,
            &restored_again.outage_ids,
            &[],
        )?;
    }
    Ok(restoration)
}

/// The check of SPEC §4.1 step 3: every meter in scope judged, the affected ones marked off.
fn mark_affected(client: &mut SpiClient<'_>, alarm: &AlarmContext<'_>) -> SpiResult<ScopeCounts> {
    let settings = CheckSettings {
        fresh_window_seconds: gucs::comm_fresh_window(),
        affect_whole_scope: gucs::scada_scope() == ScadaScope::Topology,
        confidence: gucs::confidence_scada(),
    };
    scada_check::check_and_mark_affected(
        client,
        alarm.scada_event_id,
        alarm.device.substation,
        alarm.device.feeder,
        alarm.at,
        &settings,
        alarm.metadata.clone(),
    )
}

/// Verdict counts of the alarm's scope, without changing anything.
fn count_scope(client: &mut SpiClient<'_>, alarm: &AlarmContext<'_>) -> SpiResult<ScopeCounts> {
    scada_check::count_verdicts(
        client,
        alarm.device.substation,
        alarm.device.feeder,
        alarm.at,
        gucs::comm_fresh_window(),
    )
}

/// Restores the device's open outages detected before the restoration (an older restoration that
/// arrives late never ends a newer outage), and takes back those its first newer restoration, already
/// handled ($14 its id as text, $15 its time), restored though they began before this one; ends
/// their meters' memberships and turns the meters back on, in one statement. Applied again ($16),
/// it also restores what replayed power-ons restored at its time already, and leaves the meters it
/// turned on before alone.
/// $10/$11 as in the scope; $12 is the restoring SCADA event's id as text, $13 the same as uuid.
/// The restored meters are the restoring event's affected meters, before off and after on.
const RESTORE_OUTAGES: &str = concat!(
    r#"WITH previous AS (
    SELECT o.id, o.actual_restoration_time AS was_restored_at FROM oms_outage_events o
    WHERE (o.status IN ('detected', 'confirmed', 'in_progress')
           OR (o.status = 'restored' AND o.actual_restoration_time = $15)
           -- A reopened outage whose replayed meters were all back at this restoration's time
           -- (`restore_if_all_back`) is over already, but this restoration is its source.
           OR ($16 AND o.status = 'restored' AND o.actual_restoration_time = $1
               AND NOT EXISTS (SELECT FROM oms_event_sources es
                               WHERE es.outage_event_id = o.id AND es.source_type = 'scada'
                                 AND es.source_event_id = $12)))
      AND o.first_detected_at <= $1
      AND (($11::uuid IS NOT NULL AND o.feeder_id = $11) OR ($11::uuid IS NULL AND o.substation_id = $10))
), restored AS (
    UPDATE oms_outage_events o SET status = 'restored', actual_restoration_time = $1, customers_out = 0,
                                   last_updated_at = pg_catalog.now()
    FROM previous p
    WHERE o.id = p.id
    RETURNING o.id, o.event_id, p.was_restored_at IS NOT DISTINCT FROM $15 AS taken_back
), newer_source AS (
    -- The newer restoration is no source of the outages this one took back from it.
    DELETE FROM oms_event_sources es USING restored r
    WHERE r.taken_back AND es.outage_event_id = r.id AND es.source_type = 'scada' AND es.source_event_id = $14
), target AS (
    SELECT om.meter_id AS id FROM oms_outage_meters om
    WHERE om.outage_id IN (SELECT id FROM restored) AND om.on_at IS NULL AND om.off_at <= $1
    UNION
    -- Applied again, the alarms' meters were its own to turn on before.
    SELECT a.meter_id
    FROM scada_events e JOIN scada_event_affected_meters a ON a.scada_event_id = e.id
    WHERE e.outage_event_id IN (SELECT id FROM restored) AND NOT $16
), memberships_end AS (
    -- Every span that began before $1 ends at $1, also one a later power-on that arrived first had
    -- ended after it; spans that began after $1 leave (`signals::detach_spans_after_restoration`).
    UPDATE oms_outage_meters SET on_at = $1
    WHERE outage_id IN (SELECT id FROM restored) AND off_at <= $1 AND (on_at IS NULL OR on_at > $1)
),"#,
    registry_ctes!(),
    r#", sources AS (
    INSERT INTO oms_event_sources
        (outage_event_id, source_type, source_event_id, source_table, correlation_weight, detected_at,
         event_timestamp, confidence_weight)
    -- A power-on is no evidence of an outage: no weight (a roll-up weighing this outage later must
    -- not read it as SCADA-reported).
    SELECT id, 'scada', $12, 'scada_events', NULL::numeric, $1, $1, NULL::numeric
    FROM restored
    ON CONFLICT (outage_event_id, source_type, source_event_id) DO NOTHING
), timeline AS (
    INSERT INTO oms_event_timeline
        (outage_event_id, event_type, status, description, source, "timestamp", metadata, event_description,
         event_timestamp, created_by)
    SELECT r.id, 'outage_restored', 'restored', d.description, 'scada', $1, $5, d.description, $1, 'oms_correlation'
    FROM restored r,
         (SELECT 'Restored by SCADA: ' || (SELECT count(*) FROM changed) || ' meter(s) back on' AS description) AS d
), customers_back AS (
    UPDATE oms_outage_customers SET restored_at = $1
    WHERE outage_id IN (SELECT id FROM restored) AND (restored_at IS NULL OR restored_at > $1)
), affected AS (
    INSERT INTO scada_event_affected_meters (scada_event_id, meter_id, meter_status_before, meter_status_after)
    -- `changed` took exactly the locked meters with `applied`.
    SELECT $13, l.id, l.power_status, CASE WHEN l.applied THEN 'on' ELSE l.power_status END
    FROM locked l
)
SELECT ARRAY(SELECT id FROM restored), ARRAY(SELECT event_id::text FROM restored),
       (SELECT count(*) FROM changed)::int4, ARRAY(SELECT id FROM restored WHERE taken_back)"#
);

/// Outages restored and meters turned back on by a restoration alarm.
pub struct Restoration {
    pub outage_ids: Vec<Uuid>,
    pub outage_event_ids: Vec<String>,
    pub meters_restored: i32,
    /// Of those, the ones the device's first newer restoration had restored.
    pub taken_back: Vec<Uuid>,
}

/// What `restore_outages` restores, when, and by which alarm.
struct OutagesRestored {
    scada_event_id: Uuid,
    device: Device,
    at: TimestampWithTimeZone,
    confidence: f64,
    metadata: serde_json::Value,
    /// The device's first restoration newer than this one, already handled: the outages it
    /// restored that began before this one are this one's to restore.
    taking_back_from: Option<NewerRestoration>,
    /// See `Restoring::applied_again`.
    applied_again: bool,
}

fn restore_outages(
    client: &mut SpiClient<'_>,
    restoring: &OutagesRestored,
) -> SpiResult<Restoration> {
    let Device { substation, feeder } = restoring.device;
    let id = restoring.scada_event_id;
    let newer = restoring.taking_back_from;
    let mut args = scada_check::restoration_args(
        id,
        restoring.at,
        restoring.confidence,
        restoring.metadata.clone(),
    );
    args.extend([
        arg(substation),
        arg(feeder),
        arg(id.to_string()),
        arg(id),
        arg(newer.map(|n| n.scada_event_id.to_string())),
        arg(newer.map(|n| n.at)),
        arg(restoring.applied_again),
    ]);
    let row = bulk_statement(
        client,
        RESTORE_OUTAGES,
        &args,
        Writes::MetersOf(restoring.device),
    )?
    .first();
    let (ids, event_ids, restored) = row.get_three::<Vec<Uuid>, Vec<String>, i32>()?;
    Ok(Restoration {
        outage_ids: ids.unwrap_or_default(),
        outage_event_ids: event_ids.unwrap_or_default(),
        meters_restored: restored.unwrap_or(0),
        taken_back: row.get::<Vec<Uuid>>(4)?.unwrap_or_default(),
    })
}
