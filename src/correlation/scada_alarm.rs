//! One SCADA alarm through the engine (SPEC §4.1 steps 2-4): classified by the stored vocabulary,
//! its device resolved and locked, its meters checked and its outage opened, joined or restored,
//! and the check recorded on the alarm, as the result the ingest function returns.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::{JsonB, Uuid};
use serde_json::json;

use super::locks;
use super::scada::{self as outages, AlarmContext, OutageCheck};
use super::scada_result::ScadaResult;
use super::store::Device;
use super::stream::Announcements;
use crate::canonical::scada_vocabulary::{self, AlarmClass};
use crate::db::scada_check::ScopeCounts;
use crate::db::{arg, execute};
use crate::error::Source;
use crate::gucs::{self, ScadaScope};
use crate::payload::scada::ScadaAlarm;

/// A redelivery of an alarm whose first delivery was stored without a check (by
/// `insert_scada_event_from_json`, or by the legacy functions before adoption): redeliveries
/// change nothing, so it is not checked now either.
pub fn never_checked(
    client: &mut SpiClient<'_>,
    id: Uuid,
    alarm: &ScadaAlarm,
) -> SpiResult<ScadaResult> {
    let classification = classify(client, alarm)?;
    Ok(ScadaResult {
        scada_event_id: id.to_string(),
        duplicate: true,
        classification: classification.class.as_str().into(),
        scada_scope: scada_scope_name().into(),
        reason: Some(
            "a redelivery of an alarm stored without a meter check; redeliveries change nothing, so it is not checked now"
                .into(),
        ),
        ..ScadaResult::default()
    })
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

// SCADA alarms of one substation are handled one at a time: a check and a restoration of the same
// feeder would otherwise lock the outage and its meters in opposite orders.
const SERIALIZE_SUBSTATION: &str =
    "SELECT pg_catalog.pg_advisory_xact_lock(1869440365, pg_catalog.hashtext($1))";

const RECORD_CHECK: &str = r#"
UPDATE scada_events
SET affected_meter_count = $2, meters_checked_at = pg_catalog.now(), outage_event_id = $3, check_result = $4
WHERE id = $1
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

/// Resolves the scope: the feeder when `feederId` names a known feeder, else the substation; and
/// takes the substation's SCADA lock, then the device's outage locks (`correlation::locks`), until
/// the end of the transaction.
pub fn resolve_device(
    client: &mut SpiClient<'_>,
    substation_code: &str,
    feeder_code: Option<&str>,
) -> SpiResult<Option<(Device, &'static str)>> {
    execute(client, SERIALIZE_SUBSTATION, &[arg(substation_code)])?;
    let row = execute(
        client,
        RESOLVE_DEVICE,
        &[arg(substation_code), arg(feeder_code)],
    )?
    .first();
    let (substation, feeder, feeder_substation) = row.get_three::<Uuid, Uuid, Uuid>()?;
    let resolved = match (substation, feeder) {
        (_, Some(feeder)) => Some((
            Device {
                substation: substation.or(feeder_substation),
                feeder: Some(feeder),
            },
            "feeder",
        )),
        (Some(substation), None) => Some((
            Device {
                substation: Some(substation),
                feeder: None,
            },
            "substation",
        )),
        (None, None) => None,
    };
    if let Some((device, _)) = &resolved {
        locks::lock_scada_device(client, device.substation, device.feeder)?;
    }
    Ok(resolved)
}

/// Classifies the alarm and does the meter and outage work; returns the SPEC §4.1 result.
pub fn check_alarm(
    client: &mut SpiClient<'_>,
    scada_event_id: Uuid,
    alarm: &ScadaAlarm,
    at: TimestampWithTimeZone,
) -> SpiResult<ScadaResult> {
    let classification = classify(client, alarm)?;
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
    let Some((device, scope)) =
        resolve_device(client, &alarm.substation_id, alarm.feeder_id.as_deref())?
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
    let device_name = match scope {
        "feeder" => alarm.feeder_id.as_deref().unwrap_or_default(),
        _ => alarm.substation_id.as_str(),
    };
    let context = AlarmContext {
        scada_event_id,
        at,
        device,
        substation_code: &alarm.substation_id,
        feeder_code: alarm.feeder_id.as_deref(),
        description: format!("SCADA {} on {scope} {device_name}", alarm.event_type),
        severity: alarm.severity.as_deref(),
        cause: alarm.reason.as_deref(),
        latitude: alarm.coordinates.lat,
        longitude: alarm.coordinates.lng,
        metadata: json!({
            "scada_event_type": alarm.event_type,
            "alarm_type": alarm.alarm_type,
            "classified_by": classification.matched_term,
        }),
    };
    result.meters_checked = true;
    result.scope = Some(scope.into());
    let mut announcements = Announcements::default();
    match classification.class {
        AlarmClass::Restoration => {
            let outcome = outages::restore(client, &context, &mut announcements)?;
            fill_counts(&mut result, &outcome.counts);
            result.restored_meters = outcome.restored.meters_restored;
            result.restored_outages = outcome
                .restored
                .outage_ids
                .iter()
                .map(|id| id.to_string())
                .collect();
            let first = outcome.restored.outage_ids.first().copied();
            result.outage_event_id = first.map(|id| id.to_string());
            record_check(
                client,
                scada_event_id,
                Some(result.restored_meters),
                first,
                &result,
            )?;
        }
        _ => {
            check_outage(client, &context, &mut result, &mut announcements)?;
        }
    }
    announcements.send(client, Source::Scada.as_str(), &scada_event_id.to_string())?;
    Ok(result)
}

/// The outage check of an alarm (SPEC §4.1 step 3) into its result, recorded on the alarm.
pub fn check_outage(
    client: &mut SpiClient<'_>,
    context: &AlarmContext<'_>,
    result: &mut ScadaResult,
    announcements: &mut Announcements,
) -> SpiResult<OutageCheck> {
    let check = outages::check_outage(client, context, announcements)?;
    fill_counts(result, &check.counts);
    result.affected_meters = check.counts.affected;
    result.outage_event_id = check.outage_id.map(|id| id.to_string());
    result.outage_created = check.created;
    if check.superseded {
        result.superseded = true;
        result.restored_meters = check.restored_meters;
        result.reason = Some(
            "a newer restoration of this device was already handled: the outage is recorded as over".into(),
        );
    }
    record_check(
        client,
        context.scada_event_id,
        Some(check.counts.affected),
        check.outage_id,
        result,
    )?;
    Ok(check)
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
