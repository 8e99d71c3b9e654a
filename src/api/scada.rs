//! SCADA: `insert_scada_event_from_json` and `insert_scada_event_with_meter_check` (SPEC §4.1).

use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::{JsonB, Uuid};
use serde_json::{json, Value};

use super::scada_result::ScadaResult;

use crate::db::jsonb::RawJsonb;
use super::{event_time, ingest, IngestError, Payload};
use crate::canonical::scada_vocabulary::{self, AlarmClass};
use crate::db::outage::{self, Device, Evidence};
use crate::db::scada_check::{self, CheckSettings, ScopeCounts};
use crate::db::store::scada::{store, StoredAlarm};
use crate::db::{arg, execute};
use crate::error::Source;
use crate::gucs::{self, ScadaScope};
use crate::payload::scada::{self as payload, ScadaAlarm};

/// Stores the alarm only; no meter work.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn insert_scada_event_from_json(json_data: Option<RawJsonb>) -> Option<Uuid> {
    ingest(
        "insert_scada_event_from_json",
        Source::Scada,
        json_data,
        |client, received| Ok(decode_and_store(client, received)?.1.stored.id),
    )
}

/// Stores the alarm, checks the meters in scope, and opens, joins or restores the outage.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn insert_scada_event_with_meter_check(json_data: Option<RawJsonb>) -> Option<JsonB> {
    ingest(
        "insert_scada_event_with_meter_check",
        Source::Scada,
        json_data,
        |client, received| {
            let (alarm, stored) = decode_and_store(client, received)?;
            let id = stored.stored.id;
            if stored.stored.duplicate {
                let result = match stored.previous_result {
                    Some(previous) => ScadaResult::redelivered(previous),
                    None => never_checked(client, id, &alarm)?,
                };
                return Ok(JsonB(result.to_json()));
            }
            let at = event_time(Source::Scada, "timestamp", alarm.timestamp)?;
            Ok(JsonB(check_alarm(client, id, &alarm, at)?.to_json()))
        },
    )
}

/// A redelivery of an alarm whose first delivery was stored without a check (by
/// `insert_scada_event_from_json`, or by the legacy functions before adoption): redeliveries
/// change nothing, so it is not checked now either.
fn never_checked(client: &mut SpiClient<'_>, id: Uuid, alarm: &ScadaAlarm) -> SpiResult<ScadaResult> {
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

pub(crate) fn scada_scope_name() -> &'static str {
    match gucs::scada_scope() {
        ScadaScope::Topology => "topology",
        ScadaScope::Evidence => "evidence",
    }
}

fn decode_and_store(
    client: &mut SpiClient<'_>,
    received: &Payload,
) -> Result<(ScadaAlarm, StoredAlarm), IngestError> {
    let alarm = payload::decode(&received.value)?;
    let at = event_time(Source::Scada, "timestamp", alarm.timestamp)?;
    let stored = store(client, &alarm, at, received.raw)?;
    Ok((alarm, stored))
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

// The newest restoration already stored for the device, if newer than this alarm (answered by the
// partial index scada_events_restorations).
const NEWER_RESTORATION: &str = r#"
SELECT newest.event_timestamp, newest.id
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT event_timestamp, id FROM scada_events
    WHERE substation_id = $1 AND (feeder_id = $2 OR (feeder_id IS NULL AND $2 IS NULL)) AND event_timestamp > $3
      AND (check_result ->> 'classification') = 'restoration'
    ORDER BY event_timestamp DESC LIMIT 1
) AS newest ON true
"#;

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
/// takes the substation's SCADA lock until the end of the transaction.
pub(crate) fn resolve_device(
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
    Ok(match (substation, feeder) {
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
    })
}

/// Classifies the alarm and does the meter and outage work; returns the SPEC §4.1 result.
pub(crate) fn check_alarm(
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
    match classification.class {
        AlarmClass::Restoration => restore(client, &context, &mut result)?,
        _ => {
            check_outage(client, &context, &mut result)?;
        }
    }
    Ok(result)
}

/// What the outage and restoration paths need to know about the alarm.
pub(crate) struct AlarmContext<'a> {
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
    fn evidence<'e>(&'e self, source_event_id: &'e str, description: String) -> Evidence<'e> {
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

/// Step 3 of SPEC §4.1: check every meter in scope, mark the affected ones off, and open or join
/// the device's outage when any is affected. Fills the counts and outage id into `result`.
pub(crate) fn check_outage(
    client: &mut SpiClient<'_>,
    alarm: &AlarmContext<'_>,
    result: &mut ScadaResult,
) -> SpiResult<(ScopeCounts, Option<Uuid>)> {
    let newer = execute(
        client,
        NEWER_RESTORATION,
        &[
            arg(alarm.substation_code),
            arg(alarm.feeder_code),
            arg(alarm.at),
        ],
    )?
    .first()
    .get_two::<TimestampWithTimeZone, Uuid>()?;
    if let (Some(restored_at), Some(restoration)) = newer {
        return record_superseded(client, alarm, restored_at, restoration, result);
    }
    let counts = mark_affected(client, alarm)?;
    fill_counts(result, &counts);
    result.affected_meters = counts.affected;
    if counts.affected == 0 {
        record_check(client, alarm.scada_event_id, Some(0), None, result)?;
        return Ok((counts, None));
    }
    let source_event_id = alarm.scada_event_id.to_string();
    let evidence = alarm.evidence(
        &source_event_id,
        format!(
            "{}: {} meter(s) affected",
            alarm.description, counts.affected
        ),
    );
    let (outage_id, created) = outage::open_or_join(client, alarm.device, &evidence)?;
    result.outage_event_id = Some(outage_id.to_string());
    result.outage_created = created;
    // The outage's affected-customer count reads the link, so it is written first.
    record_check(
        client,
        alarm.scada_event_id,
        Some(counts.affected),
        Some(outage_id),
        result,
    )?;
    outage::record_evidence(
        client,
        outage_id,
        created,
        &evidence,
        counts.affected,
        json!({"affected_meters": counts.affected}),
    )?;
    outage::link_alarm_customers(client, outage_id, alarm.scada_event_id, alarm.at)?;
    Ok((counts, Some(outage_id)))
}

/// An outage alarm older than a restoration already handled for its device. What happened is
/// what an in-order delivery would have done: the alarm marks its meters off as of its own time
/// and the restoration turns them back on as of its time, each through the ordering gate, so a
/// meter ends as its newest event says whatever the arrival order. The outage is recorded as
/// over, so the reliability record still counts it.
fn record_superseded(
    client: &mut SpiClient<'_>,
    alarm: &AlarmContext<'_>,
    restored_at: TimestampWithTimeZone,
    restoration: Uuid,
    result: &mut ScadaResult,
) -> SpiResult<(ScopeCounts, Option<Uuid>)> {
    let counts = mark_affected(client, alarm)?;
    fill_counts(result, &counts);
    result.affected_meters = counts.affected;
    result.restored_meters = scada_check::restore_alarm_meters(
        client,
        alarm.scada_event_id,
        restoration,
        restored_at,
        gucs::confidence_scada(),
        json!({"restores_late_alarm": alarm.scada_event_id.to_string()}),
    )?;
    result.superseded = true;
    result.reason = Some(
        "a newer restoration of this device was already handled: the outage is recorded as over".into(),
    );
    let source_event_id = alarm.scada_event_id.to_string();
    let evidence = alarm.evidence(
        &source_event_id,
        format!("{} (arrived after its restoration)", alarm.description),
    );
    let outage_id = outage::record_already_restored(client, alarm.device, &evidence, restored_at)?;
    result.outage_event_id = Some(outage_id.to_string());
    result.outage_created = true;
    record_check(
        client,
        alarm.scada_event_id,
        Some(counts.affected),
        Some(outage_id),
        result,
    )?;
    Ok((counts, Some(outage_id)))
}

/// Step 4 of SPEC §4.1: restore the device's open outages and turn their meters back on.
fn restore(
    client: &mut SpiClient<'_>,
    alarm: &AlarmContext<'_>,
    result: &mut ScadaResult,
) -> SpiResult<()> {
    count_scope(client, alarm, result)?;
    let device = alarm.device;
    let restoration = scada_check::restore_outages(
        client,
        alarm.scada_event_id,
        device.substation,
        device.feeder,
        alarm.at,
        gucs::confidence_scada(),
        alarm.metadata.clone(),
    )?;
    result.restored_meters = restoration.meters_restored;
    result.restored_outages = restoration
        .outage_ids
        .iter()
        .map(|id| id.to_string())
        .collect();
    for (id, event_id) in restoration
        .outage_ids
        .iter()
        .zip(&restoration.outage_event_ids)
    {
        outage::announce(
            client,
            json!({
                "outage_event_id": id.to_string(),
                "event_id": event_id,
                "change": "restored",
                "status": "restored",
                "restored_meters": restoration.meters_restored,
                "source_type": "scada",
                "source_event_id": alarm.scada_event_id.to_string(),
            }),
        )?;
    }
    let outage_id = restoration.outage_ids.first().copied();
    result.outage_event_id = outage_id.map(|id| id.to_string());
    record_check(
        client,
        alarm.scada_event_id,
        Some(restoration.meters_restored),
        outage_id,
        result,
    )
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

/// Verdict counts of the alarm's scope, without changing anything, filled into `result`.
fn count_scope(
    client: &mut SpiClient<'_>,
    alarm: &AlarmContext<'_>,
    result: &mut ScadaResult,
) -> SpiResult<ScopeCounts> {
    let counts = scada_check::count_verdicts(
        client,
        alarm.device.substation,
        alarm.device.feeder,
        alarm.at,
        gucs::comm_fresh_window(),
    )?;
    fill_counts(result, &counts);
    Ok(counts)
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
