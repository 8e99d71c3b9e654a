//! Roll-up and merge (SPEC §5.3): when enough of a DP's meters went off within the window, its
//! service outages merge into one DP outage; when enough of a feeder's DPs have outages (or
//! enough of its meters went off), everything under it merges into one feeder outage. A SCADA
//! outage absorbs the predicted outages under its device the same way.
//!
//! The thresholds are decided in `rules::RollUp` from event times, so the outcome does not depend
//! on the order the signals arrived in. The caller holds the DP's lock and the feeder's, shared; a
//! feeder roll-up needs the feeder's exclusively (`locks`).

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::Uuid;

use super::locks;
use super::rules::{DeviceKey, Scope};
use super::signals::{open_predicted, restore_if_all_back, Located, Predicted, Signal};
use super::stream::{Announcements, Change};
use crate::db::{arg, execute};
use crate::gucs::EngineSettings;

/// The DPs and feeders whose predicted outages gained meters: where a roll-up may now be due.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    dps: Vec<Uuid>,
    feeders: Vec<Uuid>,
}

impl Touched {
    /// Notes meters placed in an outage of `scope`: a service outage gaining meters may roll its
    /// DP up, and a service or DP outage its feeder.
    pub fn note(&mut self, meters: &[&Located], scope: Option<Scope>) {
        for meter in meters {
            if scope == Some(Scope::Service) {
                if let Some(dp) = meter.dp {
                    push_new(&mut self.dps, dp);
                }
            }
            if matches!(scope, Some(Scope::Service | Scope::DistributionPoint)) {
                if let Some(feeder) = meter.feeder {
                    push_new(&mut self.feeders, feeder);
                }
            }
        }
    }
}

pub(crate) fn push_new(list: &mut Vec<Uuid>, id: Uuid) {
    if !list.contains(&id) {
        list.push(id);
    }
}

// The outages a roll-up weighs: the open ones, and those restored whose start is within the
// window ($3 seconds) of the signal ($2), so that meters that went off together roll up together
// even when their power-ons arrived first. Merged, cleared and cancelled outages never count.
macro_rules! weighed {
    () => {
        "(o.status IN ('detected', 'confirmed', 'in_progress') OR (o.status = 'restored' \
          AND o.first_detected_at BETWEEN $2 - pg_catalog.make_interval(secs => $3) \
                                      AND $2 + pg_catalog.make_interval(secs => $3)))"
    };
}

// Outage `o` has a meter that went off within the window ($3 seconds) of the signal ($2): an outage
// open since earlier is another outage, not evidence about this one, and not merged into it.
macro_rules! meter_off_in_window {
    () => {
        "EXISTS (SELECT FROM oms_outage_meters om WHERE om.outage_id = o.id \
           AND om.off_at BETWEEN $2 - pg_catalog.make_interval(secs => $3) \
                             AND $2 + pg_catalog.make_interval(secs => $3))"
    };
}

// A DP ($1): its active meters; when each meter of its weighed service outages went off; those
// outages; the DP's feeder and substation, and its code. Only outages where a meter of the DP went
// off within the window of the signal ($2, $3 seconds) are weighed, as `meter_off_in_window!` has
// it, found from those memberships (oms_outage_meters_dp_idx): the check reads the signal's
// neighbourhood in time, not every outage the DP has had (0.10 -> 0.05 ms on a DP with a year's 55).
const DP_STATE: &str = concat!(
    r#"
WITH weighed AS (
    SELECT o.id, o.feeder_id, o.substation_id, o.device_key FROM oms_outage_events o
    WHERE o.id IN (SELECT om.outage_id FROM oms_outage_meters om
                   WHERE om.dp_id = $1 AND om.off_at BETWEEN $2 - pg_catalog.make_interval(secs => $3)
                                                         AND $2 + pg_catalog.make_interval(secs => $3))
      AND o.dp_id = $1 AND o.scope = 'service' AND "#,
    weighed!(),
    r#"
)
SELECT (SELECT count(*) FROM oms_meters m WHERE m.dp_id = $1 AND m.status = 'active')::int4,
       ARRAY(SELECT min(om.off_at) FROM oms_outage_meters om WHERE om.outage_id IN (SELECT id FROM weighed)
             GROUP BY om.meter_id),
       ARRAY(SELECT id FROM weighed ORDER BY id),
       (SELECT count(DISTINCT device_key) FROM weighed)::int4,
       coalesce(dp.feeder_id, (SELECT feeder_id FROM weighed WHERE feeder_id IS NOT NULL LIMIT 1)),
       (SELECT substation_id FROM weighed WHERE substation_id IS NOT NULL LIMIT 1),
       dp.dp_id::text
FROM network_distribution_points dp WHERE dp.id = $1
"#
);

// A feeder ($1) around a signal ($2, window $3 seconds): when its weighed DP outages that began
// within the window of the signal began, when each meter of its weighed service and DP outages
// that went off within it went off, how many outages those meters are in (one service alone is no
// feeder's outage), whether it has any open service or DP outage, and its substation and code.
// Only the signal's neighbourhood in time is read (by index), so the check costs the same on a
// feeder with a year of history.
const FEEDER_STATE: &str = concat!(
    r#"
SELECT ARRAY(SELECT min(o.first_detected_at) FROM oms_outage_events o
             WHERE o.feeder_id = $1 AND o.scope = 'distribution_point'
               AND o.first_detected_at BETWEEN $2 - pg_catalog.make_interval(secs => $3)
                                           AND $2 + pg_catalog.make_interval(secs => $3)
               AND "#,
    weighed!(),
    r#"
             -- One start per DP: a DP out twice in the window is still one child.
             GROUP BY o.dp_id),
       ARRAY(SELECT min(om.off_at) FROM oms_outage_meters om JOIN oms_outage_events o ON o.id = om.outage_id
             WHERE om.feeder_id = $1
               AND om.off_at BETWEEN $2 - pg_catalog.make_interval(secs => $3) AND $2 + pg_catalog.make_interval(secs => $3)
               AND o.scope IN ('service', 'distribution_point') AND "#,
    weighed!(),
    r#"
             GROUP BY om.meter_id),
       (SELECT count(DISTINCT o.device_key) FROM oms_outage_meters om JOIN oms_outage_events o ON o.id = om.outage_id
        WHERE om.feeder_id = $1
          AND om.off_at BETWEEN $2 - pg_catalog.make_interval(secs => $3) AND $2 + pg_catalog.make_interval(secs => $3)
          AND o.scope IN ('service', 'distribution_point') AND "#,
    weighed!(),
    r#")::int4,
       EXISTS (SELECT FROM oms_outage_events o
               WHERE o.feeder_id = $1 AND o.scope IN ('service', 'distribution_point')
                 AND o.status IN ('detected', 'confirmed', 'in_progress')),
       f.substation_id, f.feeder_id::text
FROM network_feeders f WHERE f.id = $1
"#
);

// What a feeder roll-up merges ($1 feeder, $2 signal, $3 window): the service and DP outages under
// it that it weighed, with a meter off within the window of the signal (`meter_off_in_window!`):
// merged, an older outage would date the feeder's outage from its own start.
const FEEDER_VICTIMS: &str = concat!(
    r#"
SELECT ARRAY(SELECT o.id FROM oms_outage_events o
             WHERE o.feeder_id = $1 AND o.scope IN ('service', 'distribution_point') AND "#,
    weighed!(),
    r#"
               AND "#,
    meter_off_in_window!(),
    r#"
             ORDER BY o.id)
"#
);

// Whether a feeder ($1) has fewer than $2 active meters, but some: its own, those mapped to it, and
// its DPs' that have no feeder of their own (a feeder with none counted is not known well enough to
// roll up by fraction). Counting stops at $2, so a storm on a feeder of 100,000 meters reads only
// as many as the fraction needs.
const FEWER_ACTIVE_METERS_THAN: &str = r#"
SELECT count(*) > 0 AND count(*) < $2 FROM (
    SELECT 1 FROM oms_meters m WHERE m.feeder_id = $1 AND m.status = 'active'
    UNION ALL
    SELECT 1 FROM network_feeder_meters fm JOIN oms_meters m ON m.id = fm.meter_id
    WHERE fm.feeder_id = $1 AND m.feeder_id IS NULL AND m.status = 'active'
    UNION ALL
    SELECT 1 FROM network_distribution_points dp JOIN oms_meters m ON m.dp_id = dp.id
    WHERE dp.feeder_id = $1 AND m.feeder_id IS NULL AND m.status = 'active'
      AND NOT EXISTS (SELECT FROM network_feeder_meters fm WHERE fm.meter_id = m.id)
    -- One limit over the three: once the meters named with the feeder reach it, the other two
    -- (a scan of every DP's meters on a large feeder) are never started.
    LIMIT $2
) AS active
"#;

/// The values of a SQL array, its NULLs (and a NULL array) dropped.
fn present<T>(array: Option<Vec<Option<T>>>) -> Vec<T> {
    array.unwrap_or_default().into_iter().flatten().collect()
}

fn micros(times: Option<Vec<Option<TimestampWithTimeZone>>>) -> Vec<i64> {
    present(times).into_iter().map(|t| t.into_inner()).collect()
}

/// Rolls up what the power-off signal touched: its DPs first, then their feeders.
pub(crate) fn after_power_off(
    client: &mut SpiClient<'_>,
    settings: &EngineSettings,
    touched: &Touched,
    signal: &Signal<'_>,
    announcements: &mut Announcements,
) -> SpiResult<()> {
    let mut feeders = touched.feeders.clone();
    for dp in &touched.dps {
        if let Some(feeder) = roll_up_dp(client, settings, *dp, signal, announcements)? {
            push_new(&mut feeders, feeder);
        }
    }
    locks::lock_feeder_checks(client, &feeders)?;
    for feeder in feeders {
        roll_up_feeder(client, settings, feeder, signal, announcements)?;
    }
    Ok(())
}

fn window_seconds(settings: &EngineSettings) -> i32 {
    i32::try_from(settings.rollup.window_micros / 1_000_000).unwrap_or(i32::MAX)
}

/// Merges the DP's service outages into a DP outage when the DP rolls up; returns its feeder.
fn roll_up_dp(
    client: &mut SpiClient<'_>,
    settings: &EngineSettings,
    dp: Uuid,
    signal: &Signal<'_>,
    announcements: &mut Announcements,
) -> SpiResult<Option<Uuid>> {
    let table = execute(
        client,
        DP_STATE,
        &[arg(dp), arg(signal.at), arg(window_seconds(settings))],
    )?;
    if table.is_empty() {
        return Ok(None);
    }
    let row = table.first();
    let active = row.get::<i32>(1)?.unwrap_or(0).max(0) as usize;
    let off_times = micros(row.get::<Vec<Option<TimestampWithTimeZone>>>(2)?);
    let services = present(row.get::<Vec<Option<Uuid>>>(3)?);
    let distinct_services = row.get::<i32>(4)?.unwrap_or(0).max(0) as usize;
    let feeder = row.get::<Uuid>(5)?;
    let substation = row.get::<Uuid>(6)?;
    let code = row.get::<String>(7)?.unwrap_or_default();
    if services.is_empty()
        || !settings
            .rollup
            .dp_rolls_up(&off_times, active, distinct_services)
    {
        return Ok(None);
    }
    let target = RollUpTarget {
        device: DeviceKey::DistributionPoint(dp.to_string()),
        tag: "dp",
        dp: Some(dp),
        feeder,
        substation,
        description: format!(
            "Predicted at DP {code}: {} meter(s) of {active} off within the roll-up window",
            off_times.len()
        ),
        reason: format!("rolled up to DP {code}"),
    };
    roll_up_into(client, target, &services, signal, settings, announcements)?;
    Ok(feeder)
}

/// Merges the feeder's service and DP outages into a feeder outage when the feeder rolls up.
fn roll_up_feeder(
    client: &mut SpiClient<'_>,
    settings: &EngineSettings,
    feeder: Uuid,
    signal: &Signal<'_>,
    announcements: &mut Announcements,
) -> SpiResult<()> {
    let table = execute(
        client,
        FEEDER_STATE,
        &[arg(feeder), arg(signal.at), arg(window_seconds(settings))],
    )?;
    if table.is_empty() {
        return Ok(());
    }
    let row = table.first();
    let dp_starts = micros(row.get::<Vec<Option<TimestampWithTimeZone>>>(1)?);
    let off_times = micros(row.get::<Vec<Option<TimestampWithTimeZone>>>(2)?);
    let outages_off = row.get::<i32>(3)?.unwrap_or(0).max(0) as usize;
    let any_open = row.get::<bool>(4)?.unwrap_or(false);
    let substation = row.get::<Uuid>(5)?;
    let code = row.get::<String>(6)?.unwrap_or_default();
    if !any_open && dp_starts.is_empty() && off_times.is_empty() {
        return Ok(());
    }
    let rolls_up = settings.rollup.feeder_children_roll_up(&dp_starts)
        || outages_off >= 2
            && match settings
                .rollup
                .most_active_meters_for_the_feeder_fraction(&off_times)
            {
                Some(most) => {
                    let limit = i64::try_from(most).unwrap_or(i64::MAX).saturating_add(1);
                    execute(client, FEWER_ACTIVE_METERS_THAN, &[arg(feeder), arg(limit)])?
                        .first()
                        .get_one::<bool>()?
                        .unwrap_or(false)
                }
                None => false,
            };
    if !rolls_up {
        return Ok(());
    }
    let outages = outage_list(execute(
        client,
        FEEDER_VICTIMS,
        &[arg(feeder), arg(signal.at), arg(window_seconds(settings))],
    )?)?;
    if outages.is_empty() {
        return Ok(());
    }
    if !locks::holds_feeder_exclusively(feeder)
        && !locks::try_take_feeder_exclusively(client, feeder)?
    {
        if locks::earlier_ingest_holds_locks() {
            // Another transaction holds the feeder, and this one holds it shared from an earlier
            // ingest: waiting for it exclusively could wait for a transaction waiting for us. The
            // next signal of the feeder finds the roll-up due and makes it.
            pgrx::log!("oms_correlation: feeder {code} roll-up left to the next signal (a multi-event transaction)");
            return Ok(());
        }
        locks::escalate(feeder);
    }
    let target = RollUpTarget {
        device: DeviceKey::Feeder(feeder.to_string()),
        tag: "feeder",
        dp: None,
        feeder: Some(feeder),
        substation,
        description: format!(
            "Predicted at feeder {code}: {} DP outage(s), {} meter(s) off within the roll-up window",
            dp_starts.len(),
            off_times.len()
        ),
        reason: format!("rolled up to feeder {code}"),
    };
    roll_up_into(client, target, &outages, signal, settings, announcements)
}

/// The device outage that a roll-up merges its victims into.
struct RollUpTarget<'a> {
    device: DeviceKey,
    tag: &'a str,
    dp: Option<Uuid>,
    feeder: Option<Uuid>,
    substation: Option<Uuid>,
    description: String,
    reason: String,
}

/// Opens the device's outage (or finds its open one), dated from its earliest victim, and merges
/// the victims into it.
fn roll_up_into(
    client: &mut SpiClient<'_>,
    target: RollUpTarget<'_>,
    victims: &[Uuid],
    signal: &Signal<'_>,
    settings: &EngineSettings,
    announcements: &mut Announcements,
) -> SpiResult<()> {
    let predicted = Predicted {
        device: &target.device,
        start: start_of(client, victims)?,
        tag: target.tag,
        dp: target.dp,
        feeder: target.feeder,
        substation: target.substation,
        description: target.description,
        meters: Vec::new(),
    };
    let (survivor, _) = open_predicted(client, &predicted, settings, announcements)?;
    merge(
        client,
        &Merge {
            survivor,
            victims,
            reason: target.reason,
            source: signal.source.as_str(),
            at: signal.at,
        },
        settings,
        announcements,
    )
}

const START_OF: &str = "SELECT min(first_detected_at) FROM oms_outage_events WHERE id = ANY ($1)";

fn start_of(client: &mut SpiClient<'_>, outages: &[Uuid]) -> SpiResult<TimestampWithTimeZone> {
    Ok(execute(client, START_OF, &[arg(outages.to_vec())])?
        .first()
        .get_one::<TimestampWithTimeZone>()?
        .expect("the outages being merged exist"))
}

// The open outages a SCADA outage ($1) absorbs: the predicted ones under its device ($2: the
// feeder, or the substation of an alarm that names none), lower in scope, that no SCADA alarm
// reported.
const PREDICTED_UNDER_FEEDER: &str = r#"
SELECT ARRAY(
    SELECT o.id FROM oms_outage_events o
    WHERE o.feeder_id = $2 AND o.status IN ('detected', 'confirmed', 'in_progress') AND o.id <> $1
      AND o.scope IN ('service', 'distribution_point')
      AND NOT EXISTS (SELECT FROM oms_event_sources es WHERE es.outage_event_id = o.id AND es.source_type = 'scada')
    ORDER BY o.id)
"#;

const PREDICTED_UNDER_SUBSTATION: &str = r#"
SELECT ARRAY(
    SELECT o.id FROM oms_outage_events o
    WHERE o.substation_id = $2 AND o.status IN ('detected', 'confirmed', 'in_progress') AND o.id <> $1
      AND o.scope IN ('service', 'distribution_point', 'feeder')
      AND NOT EXISTS (SELECT FROM oms_event_sources es WHERE es.outage_event_id = o.id AND es.source_type = 'scada')
    ORDER BY o.id)
"#;

/// A SCADA outage absorbs the predicted outages under its device (SPEC §5.3).
pub(crate) fn absorb_predicted_under(
    client: &mut SpiClient<'_>,
    settings: &EngineSettings,
    survivor: Uuid,
    substation: Option<Uuid>,
    feeder: Option<Uuid>,
    at: TimestampWithTimeZone,
    announcements: &mut Announcements,
) -> SpiResult<()> {
    // Two statements rather than one with an OR: each keeps a plan on its own open-outage index.
    let (under, device) = match (feeder, substation) {
        (Some(feeder), _) => (PREDICTED_UNDER_FEEDER, feeder),
        (None, Some(substation)) => (PREDICTED_UNDER_SUBSTATION, substation),
        (None, None) => return Ok(()),
    };
    let victims = outage_list(execute(client, under, &[arg(survivor), arg(device)])?)?;
    absorb(
        client,
        settings,
        survivor,
        &victims,
        "absorbed by the SCADA outage of its device",
        at,
        announcements,
    )
}

/// The outages of a statement's one array column.
fn outage_list(table: pgrx::spi::SpiTupleTable<'_>) -> SpiResult<Vec<Uuid>> {
    Ok(present(table.first().get_one::<Vec<Option<Uuid>>>()?))
}

/// A SCADA outage takes the victims in.
fn absorb(
    client: &mut SpiClient<'_>,
    settings: &EngineSettings,
    survivor: Uuid,
    victims: &[Uuid],
    reason: &str,
    at: TimestampWithTimeZone,
    announcements: &mut Announcements,
) -> SpiResult<()> {
    if victims.is_empty() {
        return Ok(());
    }
    merge(
        client,
        &Merge {
            survivor,
            victims,
            reason: reason.into(),
            source: "scada",
            at,
        },
        settings,
        announcements,
    )
}

/// The outages a restoration alarm ($1) restored, as its check recorded them, that it still ends
/// (an older restoration that arrived later may have taken one back: `scada::restore_device`), as
/// rows `o` of oms_outage_events.
macro_rules! outages_restoration_still_ends {
    () => {
        r#"FROM scada_events e
CROSS JOIN LATERAL jsonb_array_elements_text(e.check_result -> 'restored_outages') AS r(id)
JOIN oms_outage_events o ON o.id = r.id::uuid
WHERE e.id = $1 AND o.status = 'restored' AND o.actual_restoration_time = e.event_timestamp"#
    };
}
pub(crate) use outages_restoration_still_ends;

const RESTORED_BY_ALARM: &str = concat!(
    "SELECT ARRAY(SELECT o.id ",
    outages_restoration_still_ends!(),
    " ORDER BY o.id)"
);

/// A SCADA outage alarm that arrived after its device's restoration takes in the outages that
/// restoration restored: they were the same interruption, told first by other sources, and each
/// customer counts once in it.
pub(crate) fn absorb_restored_by(
    client: &mut SpiClient<'_>,
    settings: &EngineSettings,
    survivor: Uuid,
    restoration_alarm: Uuid,
    at: TimestampWithTimeZone,
    announcements: &mut Announcements,
) -> SpiResult<()> {
    let victims = outage_list(execute(
        client,
        RESTORED_BY_ALARM,
        &[arg(restoration_alarm)],
    )?)?;
    absorb(
        client,
        settings,
        survivor,
        &victims,
        "restored by the restoration of this alarm's device, which arrived first",
        at,
        announcements,
    )
}

/// Outages going into one.
struct Merge<'a> {
    survivor: Uuid,
    victims: &'a [Uuid],
    reason: String,
    source: &'a str,
    /// When the signal that made it happen was.
    at: TimestampWithTimeZone,
}

// The victims ($2) still open (or restored, when a roll-up weighed them), locked and closed as
// merged into $1; each one's timeline says so ($3, written by $4 at $5). Returns them, their
// event ids, their earliest start and whether any was confirmed.
const MARK_MERGED: &str = r#"
WITH victims AS (
    SELECT o.id, o.status, o.first_detected_at FROM oms_outage_events o
    WHERE o.id = ANY ($2) AND o.id <> $1 AND o.status IN ('detected', 'confirmed', 'in_progress', 'restored')
    ORDER BY o.id
    FOR UPDATE
), marked AS (
    UPDATE oms_outage_events o SET status = 'merged', merged_into = $1, customers_out = 0,
                                   last_updated_at = pg_catalog.now()
    FROM victims v WHERE o.id = v.id
    RETURNING o.id, o.event_id
), timeline AS (
    INSERT INTO oms_event_timeline
        (outage_event_id, event_type, status, description, source, "timestamp", metadata,
         event_description, event_timestamp, created_by)
    SELECT m.id, 'merged', 'merged', d.text, $4, $5,
           pg_catalog.jsonb_build_object('merged_into', $1), d.text, $5, 'oms_correlation'
    FROM marked m,
         LATERAL (SELECT 'Merged into ' || (SELECT event_id FROM oms_outage_events WHERE id = $1) || ': ' || $3
                  AS text) AS d
)
SELECT ARRAY(SELECT id FROM marked ORDER BY id), ARRAY(SELECT event_id::text FROM marked ORDER BY id),
       (SELECT min(first_detected_at) FROM victims), coalesce((SELECT bool_or(status IN ('confirmed', 'in_progress')) FROM victims), false)
"#;

// What the merged outages ($2) had moves to the survivor ($1): meters, sources, customers, crews
// and notifications. A row the survivor already has, or another victim's that moves (the same
// meter and off time, or a meter's time off that the survivor's covers; the same source event; the
// same customer), is dropped instead; a customer still out in a victim is still out in the survivor.
const MOVE_TO_SURVIVOR: &str = r#"
WITH meters_kept AS (
    -- One row per meter and off time: two victims may hold the same one (a signal that joined both).
    SELECT DISTINCT ON (om.meter_id, om.off_at) om.outage_id, om.meter_id, om.off_at
    FROM oms_outage_meters om
    WHERE om.outage_id = ANY ($2)
      -- Looked up in the survivor by key (OFFSET 0, see `join_outage!`): it may be a feeder outage.
      AND NOT EXISTS (SELECT FROM oms_outage_meters s
                      WHERE s.outage_id = $1 AND s.meter_id = om.meter_id
                        AND (s.off_at = om.off_at
                             OR s.off_at <= om.off_at
                                AND coalesce(s.on_at, 'infinity') >= coalesce(om.on_at, 'infinity'))
                      OFFSET 0)
    ORDER BY om.meter_id, om.off_at, om.on_at DESC NULLS FIRST
), moved_meters AS (
    UPDATE oms_outage_meters om SET outage_id = $1
    FROM meters_kept k
    WHERE om.outage_id = k.outage_id AND om.meter_id = k.meter_id AND om.off_at = k.off_at
    RETURNING 1
), dropped_meters AS (
    DELETE FROM oms_outage_meters om
    WHERE om.outage_id = ANY ($2)
      AND NOT EXISTS (SELECT FROM meters_kept k
                      WHERE k.outage_id = om.outage_id AND k.meter_id = om.meter_id AND k.off_at = om.off_at)
), sources_kept AS (
    SELECT DISTINCT ON (es.source_type, es.source_event_id) es.id FROM oms_event_sources es
    WHERE es.outage_event_id = ANY ($2)
      AND NOT EXISTS (SELECT FROM oms_event_sources s
                      WHERE s.outage_event_id = $1 AND s.source_type = es.source_type
                        AND s.source_event_id = es.source_event_id OFFSET 0)
    ORDER BY es.source_type, es.source_event_id, es.detected_at
), moved_sources AS (
    UPDATE oms_event_sources SET outage_event_id = $1 WHERE id IN (SELECT id FROM sources_kept)
), dropped_sources AS (
    DELETE FROM oms_event_sources WHERE outage_event_id = ANY ($2) AND id NOT IN (SELECT id FROM sources_kept)
), customers_kept AS (
    SELECT DISTINCT ON (c.customer_id) c.id FROM oms_outage_customers c
    WHERE c.outage_id = ANY ($2)
      AND NOT EXISTS (SELECT FROM oms_outage_customers s WHERE s.outage_id = $1 AND s.customer_id = c.customer_id
                      OFFSET 0)
    ORDER BY c.customer_id, c.restored_at DESC NULLS FIRST
), moved_customers AS (
    UPDATE oms_outage_customers SET outage_id = $1 WHERE id IN (SELECT id FROM customers_kept)
), dropped_customers AS (
    DELETE FROM oms_outage_customers c
    WHERE c.outage_id = ANY ($2) AND c.id NOT IN (SELECT id FROM customers_kept)
    RETURNING c.customer_id, c.restored_at
), still_out AS (
    UPDATE oms_outage_customers c SET restored_at = NULL
    FROM dropped_customers d
    WHERE c.outage_id = $1 AND c.customer_id = d.customer_id AND d.restored_at IS NULL
), crews AS (
    UPDATE oms_crew_assignments SET outage_event_id = $1 WHERE outage_event_id = ANY ($2)
), notices AS (
    UPDATE oms_customer_notifications SET outage_event_id = $1 WHERE outage_event_id = ANY ($2)
)
SELECT (SELECT count(*) FROM moved_meters)::int4
"#;

// The survivor ($1) recounted from what it now holds: customers affected (never fewer than it
// had) and still out, confidence by noisy-OR over its weighted sources (SCADA: certain), the
// earliest start ($2), confirmed when a victim was ($3) or the confidence reaches $4; and the
// merge on its timeline ($5 reason, $6 the merged outages' event ids, $7 source, $8 time).
const RECOUNT_SURVIVOR: &str = r#"
WITH counts AS (
    SELECT count(DISTINCT customer_key)::int4 AS affected,
           count(DISTINCT customer_key) FILTER (WHERE on_at IS NULL)::int4 AS still_out
    FROM oms_outage_meters WHERE outage_id = $1
), weights AS (
    SELECT coalesce(bool_or(source_type = 'scada'), false) AS scada,
           coalesce(CASE WHEN bool_or(correlation_weight >= 1) THEN 1
                         ELSE 1 - exp(sum(ln(1 - least(correlation_weight, 0.9999)))) END, 0) AS confidence
    FROM oms_event_sources WHERE outage_event_id = $1 AND correlation_weight IS NOT NULL
), before AS (
    SELECT status FROM oms_outage_events WHERE id = $1
), updated AS (
    UPDATE oms_outage_events o SET
        affected_customers_count = greatest(coalesce(o.affected_customers_count, 0), c.affected),
        customers_out = c.still_out,
        confidence_score = round(CASE WHEN w.scada THEN 1 ELSE w.confidence END, 2),
        status = CASE WHEN o.status = 'detected' AND ($3 OR w.scada OR w.confidence >= $4) THEN 'confirmed'
                      ELSE o.status END,
        first_detected_at = LEAST(o.first_detected_at, $2),
        last_updated_at = pg_catalog.now()
    FROM counts c, weights w
    WHERE o.id = $1
    RETURNING o.status, o.affected_customers_count, o.customers_out
), timeline AS (
    INSERT INTO oms_event_timeline
        (outage_event_id, event_type, status, description, source, "timestamp", metadata,
         event_description, event_timestamp, created_by)
    SELECT $1, 'outages_merged', u.status, d.text, $7, $8,
           pg_catalog.jsonb_build_object('merged', $6, 'affected_customers_count', u.affected_customers_count,
                                         'customers_out', u.customers_out),
           d.text, $8, 'oms_correlation'
    FROM updated u,
         LATERAL (SELECT cardinality($6) || ' outage(s) merged in (' || $5 || ')' AS text) AS d
)
SELECT (SELECT status = 'confirmed' FROM updated) AND (SELECT status IS DISTINCT FROM 'confirmed' FROM before)
"#;

fn merge(
    client: &mut SpiClient<'_>,
    merge: &Merge<'_>,
    settings: &EngineSettings,
    announcements: &mut Announcements,
) -> SpiResult<()> {
    let row = execute(
        client,
        MARK_MERGED,
        &[
            arg(merge.survivor),
            arg(merge.victims.to_vec()),
            arg(merge.reason.as_str()),
            arg(merge.source),
            arg(merge.at),
        ],
    )?
    .first();
    let merged = present(row.get::<Vec<Option<Uuid>>>(1)?);
    if merged.is_empty() {
        return Ok(());
    }
    let event_ids = present(row.get::<Vec<Option<String>>>(2)?);
    let earliest = row.get::<TimestampWithTimeZone>(3)?;
    let any_confirmed = row.get::<bool>(4)?.unwrap_or(false);
    execute(
        client,
        MOVE_TO_SURVIVOR,
        &[arg(merge.survivor), arg(merged.clone())],
    )?;
    let confirmed_now = execute(
        client,
        RECOUNT_SURVIVOR,
        &[
            arg(merge.survivor),
            arg(earliest),
            arg(any_confirmed),
            arg(settings.confirm_confidence),
            arg(merge.reason.as_str()),
            arg(event_ids),
            arg(merge.source),
            arg(merge.at),
        ],
    )?
    .first()
    .get_one::<bool>()?;
    for victim in merged {
        announcements.push(victim, Change::Merged);
    }
    announcements.push(merge.survivor, Change::Absorbed);
    if confirmed_now == Some(true) {
        announcements.push(merge.survivor, Change::Confirmed);
    }
    // Every meter it took in may be back already (a roll-up of outages that were over).
    restore_if_all_back(client, merge.survivor, merge.source, announcements)?;
    Ok(())
}
