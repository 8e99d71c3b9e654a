//! One SCADA alarm (SPEC §4.1 steps 2-5): classified by the stored vocabulary, its device
//! resolved, its meters checked, and then applied by the correlator in the same call (the queue is
//! drained first, so the alarm meets every signal committed before it), into the result the
//! ingest function returns.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::{JsonB, Uuid};
use serde_json::json;

use super::load::{id, pg, time};
use super::model::Device;
use super::run::{self, AlarmRun, By, Drained};
use super::scada_result::ScadaResult;
use crate::canonical::scada_vocabulary::{self, AlarmClass};
use crate::db::scada_check::{self, CheckSettings, ScopeCounts};
use crate::db::{arg, execute};
use crate::gucs::{self, ScadaScope};
use crate::payload::scada::ScadaAlarm;

/// A redelivery of an alarm whose first delivery was stored without a check (by
/// `insert_scada_event_from_json`, or by the legacy functions before adoption): redeliveries
/// change nothing, so it is not checked now either.
pub fn never_checked(id: Uuid, classification: &scada_vocabulary::Classification) -> ScadaResult {
    ScadaResult {
        scada_event_id: id.to_string(),
        duplicate: true,
        classification: classification.class.as_str().into(),
        scada_scope: scada_scope_name().into(),
        reason: Some(
            "a redelivery of an alarm stored without a meter check; redeliveries change nothing, so it is not checked now"
                .into(),
        ),
        ..ScadaResult::default()
    }
}

/// Classifies the alarm before anything of it is written and, when it is an outage or a
/// restoration, makes this call the correlator for the rest of the transaction. Taken first, the
/// lock is never waited for while this call holds a row: a redelivered copy waiting for this
/// alarm's key would otherwise close a cycle through the correlator (a deadlock).
pub fn classify_and_lock(
    client: &mut SpiClient<'_>,
    alarm: &ScadaAlarm,
) -> SpiResult<scada_vocabulary::Classification> {
    let classification = classify(client, alarm)?;
    if classification.class != AlarmClass::Informational {
        run::lock(client)?;
    }
    Ok(classification)
}

pub fn scada_scope_name() -> &'static str {
    match gucs::scada_scope() {
        ScadaScope::Topology => "topology",
        ScadaScope::Evidence => "evidence",
    }
}

const VOCABULARY: &str = "SELECT term::text, classification::text FROM scada_alarm_vocabulary";

const RESOLVE_DEVICE: &str = r#"
SELECT (SELECT id FROM network_substations WHERE substation_id = $1),
       f.id, f.substation_id
FROM (SELECT 1) AS one
LEFT JOIN network_feeders f ON f.feeder_id = $2
"#;

// An outage or restoration alarm that names a feeder shows its breaker reports to SCADA: from now
// on the correlator never predicts it out (SPEC §5.3). Written once per feeder.
const MONITORED: &str =
    "UPDATE network_feeders SET scada_monitored = true WHERE id = $1 AND NOT scada_monitored";

const RECORD_CHECK: &str = r#"
UPDATE scada_events
SET affected_meter_count = $2, meters_checked_at = pg_catalog.now(), outage_event_id = $3, check_result = $4
WHERE id = $1
"#;

const AFFECTED: &str = "SELECT coalesce(array_agg(meter_id), '{}') FROM scada_event_affected_meters WHERE scada_event_id = $1";

// Whether the alarm's outage is already over at a restoration newer than the alarm.
const SUPERSEDED: &str = r#"
SELECT o.actual_restoration_time > $2 FROM oms_outage_events o WHERE o.id = $1 AND o.status = 'restored'
"#;

fn classify(
    client: &mut SpiClient<'_>,
    alarm: &ScadaAlarm,
) -> SpiResult<scada_vocabulary::Classification> {
    let mut vocabulary: Vec<(String, AlarmClass)> = Vec::new();
    for row in execute(client, VOCABULARY, &[])? {
        let term = row.get::<String>(1)?.unwrap_or_default();
        if let Some(class) = row.get::<String>(2)?.as_deref().and_then(AlarmClass::parse) {
            vocabulary.push((term, class));
        }
    }
    Ok(scada_vocabulary::classify(
        &alarm.event_type,
        alarm.alarm_type.as_deref(),
        vocabulary.iter().map(|(t, c)| (t.as_str(), *c)),
    ))
}

/// The alarm's device: the feeder when `feederId` names a known feeder, else the substation.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    pub substation: Option<Uuid>,
    pub feeder: Option<Uuid>,
}

impl Resolved {
    pub fn scope(&self) -> &'static str {
        if self.feeder.is_some() {
            "feeder"
        } else {
            "substation"
        }
    }

    fn device(&self) -> Device {
        match (self.feeder, self.substation) {
            (Some(feeder), _) => Device::Feeder(id(feeder)),
            (None, Some(substation)) => Device::Substation(id(substation)),
            (None, None) => unreachable!("a resolved device names a feeder or a substation"),
        }
    }
}

pub fn resolve_device(
    client: &mut SpiClient<'_>,
    substation_code: &str,
    feeder_code: Option<&str>,
) -> SpiResult<Option<Resolved>> {
    let row = execute(
        client,
        RESOLVE_DEVICE,
        &[arg(substation_code), arg(feeder_code)],
    )?
    .first();
    let (substation, feeder, feeder_substation) = row.get_three::<Uuid, Uuid, Uuid>()?;
    Ok(match (substation, feeder) {
        (_, Some(feeder)) => Some(Resolved {
            substation: substation.or(feeder_substation),
            feeder: Some(feeder),
        }),
        (Some(substation), None) => Some(Resolved {
            substation: Some(substation),
            feeder: None,
        }),
        (None, None) => None,
    })
}

/// Does the meter and outage work of a classified alarm (`classify_and_lock`); returns the SPEC
/// §4.1 result.
pub fn check_alarm(
    client: &mut SpiClient<'_>,
    scada_event_id: Uuid,
    alarm: &ScadaAlarm,
    classification: &scada_vocabulary::Classification,
    at: TimestampWithTimeZone,
) -> SpiResult<ScadaResult> {
    let mut result = ScadaResult {
        scada_event_id: scada_event_id.to_string(),
        classification: classification.class.as_str().into(),
        scada_scope: scada_scope_name().into(),
        ..ScadaResult::default()
    };
    if classification.class == AlarmClass::Informational {
        result.reason = Some(format!(
            "informational alarm: eventType {:?} / alarmType {:?} names no outage or restoration term",
            alarm.event_type,
            alarm.alarm_type.as_deref().unwrap_or("")
        ));
        record_check(client, scada_event_id, None, None, &result)?;
        return Ok(result);
    }
    let Some(device) = resolve_device(client, &alarm.substation_id, alarm.feeder_id.as_deref())?
    else {
        result.reason = Some(format!(
            "unknown substation {:?}{}: event stored, no meters checked",
            alarm.substation_id,
            alarm
                .feeder_id
                .as_ref()
                .map(|f| format!(" and unknown feeder {f:?}"))
                .unwrap_or_default()
        ));
        record_check(client, scada_event_id, None, None, &result)?;
        return Ok(result);
    };
    if let Some(feeder) = device.feeder {
        execute(client, MONITORED, &[arg(feeder)])?;
    }
    result.meters_checked = true;
    result.scope = Some(device.scope().into());
    let metadata = json!({
        "scada_event_type": alarm.event_type,
        "alarm_type": alarm.alarm_type,
        "classified_by": classification.matched_term,
    });
    match classification.class {
        AlarmClass::Restoration => {
            let counts = scada_check::count_verdicts(
                client,
                device.substation,
                device.feeder,
                at,
                gucs::comm_fresh_window(),
            )?;
            fill_counts(&mut result, &counts);
            let drained = correlate(client, scada_event_id, device, at, true, Vec::new())?;
            result.restored_meters = drained.alarm_turned_on;
            result.restored_outages = drained
                .alarm_restored
                .iter()
                .map(|o| o.to_string())
                .collect();
            result.outage_event_id = drained.alarm_restored.first().map(|o| o.to_string());
            let first = drained.alarm_restored.first().map(|o| pg(*o));
            record_check(
                client,
                scada_event_id,
                Some(result.restored_meters),
                first,
                &result,
            )?;
        }
        _ => {
            let outage = check_outage(client, scada_event_id, device, at, metadata, &mut result)?;
            record_check(
                client,
                scada_event_id,
                Some(result.affected_meters),
                outage,
                &result,
            )?;
        }
    }
    Ok(result)
}

/// The outage check (SPEC §4.1 step 3): every meter in scope judged, the affected ones marked
/// off, then the alarm applied by the correlator. Fills the result; returns the alarm's outage.
pub fn check_outage(
    client: &mut SpiClient<'_>,
    scada_event_id: Uuid,
    device: Resolved,
    at: TimestampWithTimeZone,
    metadata: serde_json::Value,
    result: &mut ScadaResult,
) -> SpiResult<Option<Uuid>> {
    let settings = CheckSettings {
        fresh_window_seconds: gucs::comm_fresh_window(),
        affect_whole_scope: gucs::scada_scope() == ScadaScope::Topology,
        confidence: gucs::confidence_scada(),
    };
    let counts = scada_check::check_and_mark_affected(
        client,
        scada_event_id,
        device.substation,
        device.feeder,
        at,
        &settings,
        metadata,
    )?;
    fill_counts(result, &counts);
    result.affected_meters = counts.affected;
    let affected: Vec<Uuid> = execute(client, AFFECTED, &[arg(scada_event_id)])?
        .first()
        .get_one::<Vec<Uuid>>()?
        .unwrap_or_default();
    let drained = correlate(
        client,
        scada_event_id,
        device,
        at,
        false,
        affected.into_iter().map(id).collect(),
    )?;
    let outage = drained.alarm_outage.map(pg);
    result.outage_event_id = outage.map(|o| o.to_string());
    result.outage_created = drained.alarm_opened;
    if let Some(outage) = outage {
        let superseded = execute(client, SUPERSEDED, &[arg(outage), arg(at)])?;
        if !superseded.is_empty() && superseded.first().get_one::<bool>()? == Some(true) {
            result.superseded = true;
            result.restored_meters = drained.turned_on_by_others;
            result.reason = Some(
                "a newer restoration of this device was already handled: the outage is recorded as over".into(),
            );
        }
    }
    Ok(outage)
}

fn correlate(
    client: &mut SpiClient<'_>,
    scada_event_id: Uuid,
    device: Resolved,
    at: TimestampWithTimeZone,
    restoration: bool,
    affected: Vec<super::model::Id>,
) -> SpiResult<Drained> {
    run::lock(client)?;
    run::drain(
        client,
        By::Scada,
        Some(AlarmRun {
            id: id(scada_event_id),
            at: time(at),
            restoration,
            device: device.device(),
            substation: device.substation.map(id),
            affected,
        }),
        gucs::batch_size(),
        false,
    )
}

fn fill_counts(result: &mut ScadaResult, counts: &ScopeCounts) {
    result.total_meters = counts.total;
    result.offline_meters = counts.offline;
    result.online_meters = counts.online;
    result.unknown_meters = counts.unknown;
}

fn record_check(
    client: &mut SpiClient<'_>,
    scada_event_id: Uuid,
    affected: Option<i32>,
    outage_id: Option<Uuid>,
    result: &ScadaResult,
) -> SpiResult<()> {
    execute(
        client,
        RECORD_CHECK,
        &[
            arg(scada_event_id),
            arg(affected),
            arg(outage_id),
            arg(JsonB(result.to_json())),
        ],
    )?;
    Ok(())
}
