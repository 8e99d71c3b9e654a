//! The correlator (SPEC §5): one at a time, it drains the queue in batches. A batch logs its
//! signals under their areas, loads the areas (`load`), decides them in memory (`decide`), writes
//! the differences (`write`), turns on the meters SCADA restorations ended, and announces each
//! changed outage once. Who runs it: the background worker, a SCADA alarm's own call,
//! `oms_correlate_events`, `oms_correlate_pending()`, and each ingest call in `immediate` mode.
//!
//! The single writer is the row of `oms_correlation_state`, taken FOR UPDATE for the transaction:
//! under READ COMMITTED a second correlator waits and then sees the first one's outages; under
//! REPEATABLE READ a correlator whose snapshot is older than another's batch fails to serialize
//! (SQLSTATE 40001) rather than decide from stale rows.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use pgrx::pg_sys::panic::CaughtError;
use pgrx::spi::{SpiClient, SpiResult};

use super::decide::decide;
use super::decide::reconcile::{Announced, Decision};
use super::decide::rules::Rules;
use super::declaration;
use super::load::{self, pg, ts, AreaStart, Batch};
use super::model::{Area, Device, Id, Power, SourceKey, Time};
use super::outage_cache;
use super::queue::{self, Queued};
use super::registry_cache;
use super::storm;
use super::stream::{announce, EngineWrites};
use super::write::write;
use crate::db::{arg, execute, scada_check, subtransaction};
use crate::gucs;

/// Who is draining the queue (`oms_correlation_status.last_batch_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Worker,
    Scada,
    Pending,
    Immediate,
    CorrelateEvents,
}

impl By {
    fn as_str(self) -> &'static str {
        match self {
            By::Worker => "worker",
            By::Scada => "scada",
            By::Pending => "oms_correlate_pending",
            By::Immediate => "immediate",
            By::CorrelateEvents => "oms_correlate_events",
        }
    }
}

/// A SCADA alarm applied in its own call, after the queue is drained.
#[derive(Debug, Clone)]
pub struct AlarmRun {
    pub id: Id,
    pub at: Time,
    pub restoration: bool,
    /// `Device::Feeder` or `Device::Substation`.
    pub device: Device,
    pub substation: Option<Id>,
    pub affected: Vec<Id>,
}

/// What a drain did.
#[derive(Debug, Clone, Default)]
pub struct Drained {
    pub batches: usize,
    pub signals: usize,
    pub set_aside: usize,
    pub outages_changed: usize,
    /// For an alarm: the outage it opened or joined (or the first it restored), whether its run
    /// opened it, the outages it restored, and the meters it turned back on.
    pub alarm_outage: Option<Id>,
    pub alarm_opened: bool,
    pub alarm_restored: Vec<Id>,
    pub alarm_turned_on: i32,
    /// Meters other restorations turned back on in the alarm's batch (a late trip's meters, over
    /// at a newer restoration).
    pub turned_on_by_others: i32,
}

const LOCK: &str = "SELECT 1 FROM oms_correlation_state WHERE id = 1 FOR UPDATE";
const TRY_LOCK: &str = "SELECT 1 FROM oms_correlation_state WHERE id = 1 FOR UPDATE SKIP LOCKED";

/// Becomes the correlator for the rest of the transaction, waiting for another one to finish.
/// Every caller takes it before its call writes or locks anything (its event's row, a meter): a
/// call that waited for it while holding a row another session waits for could close a cycle
/// through the correlator, which may in turn wait for that session (a deadlock).
pub fn lock(client: &mut SpiClient<'_>) -> SpiResult<()> {
    execute(client, LOCK, &[])?;
    Ok(())
}

/// Becomes the correlator unless another one is; whether it did.
pub fn try_lock(client: &mut SpiClient<'_>) -> SpiResult<bool> {
    Ok(!execute(client, TRY_LOCK, &[])?.is_empty())
}

const STATE: &str = "SELECT log_start FROM oms_correlation_state WHERE id = 1";

const RECORD_BATCH: &str = r#"
UPDATE oms_correlation_state SET batches = batches + 1, signals = signals + $1, last_batch_at = pg_catalog.clock_timestamp(),
       last_batch_signals = $1, last_batch_ms = $2, last_batch_by = $3,
       last_batch_lag_ms = 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - $5),
       newest_event_at = CASE WHEN newest_event_at IS NULL OR newest_event_at < $4 THEN $4 ELSE newest_event_at END
WHERE id = 1
RETURNING newest_event_at
"#;

/// Drains the queue, `limit` signals a batch (the caller holds the lock, `lock`), then applies the
/// alarm, if any, in a batch of its own. `once`: one batch only (the worker commits each).
pub fn drain(
    client: &mut SpiClient<'_>,
    by: By,
    alarm: Option<AlarmRun>,
    limit: i64,
    once: bool,
) -> SpiResult<Drained> {
    let _writes = EngineWrites::begin();
    let log_start = execute(client, STATE, &[])?
        .first()
        .get_one::<pgrx::datum::TimestampWithTimeZone>()?
        .map(load::time)
        .unwrap_or(Time::MIN);
    let mut drained = Drained::default();
    let mut size = limit.max(1);
    // With the queue empty, areas whose pending outages fell due are replayed once.
    let mut due_done = false;
    loop {
        // A batch that fails is taken back whole (its rows return to the queue) and tried again in
        // halves, down to the one signal that fails, which is set aside with its error.
        let outcome = subtransaction::run(|| -> SpiResult<Option<BatchOutcome>> {
            let signals = queue::take(client, size)?;
            if signals.is_empty() && (due_done || !declaration::any_due(client)?) {
                return Ok(None);
            }
            batch(client, by, &signals, None, log_start).map(Some)
        });
        match outcome {
            Ok(Ok(None)) => break,
            Ok(Ok(Some(done))) => {
                due_done |= done.signals == 0 && done.set_aside == 0;
                drained.batches += 1;
                drained.signals += done.signals;
                drained.set_aside += done.set_aside;
                drained.outages_changed += done.outages_changed;
                size = limit.max(1);
                if once {
                    break;
                }
            }
            Ok(Err(e)) if size > 1 => {
                pgrx::log!("oms_correlation: a batch of {size} failed ({e}); trying it in halves");
                size /= 2;
            }
            Err(e) if size > 1 => {
                pgrx::log!(
                    "oms_correlation: a batch of {size} failed ({}); trying it in halves",
                    describe(&e)
                );
                size /= 2;
            }
            Ok(Err(e)) => {
                set_aside_first(client, None, &e.to_string())?;
                drained.set_aside += 1;
            }
            Err(e) => {
                let (sqlstate, message) = report(&e);
                set_aside_first(client, sqlstate.as_deref(), &message)?;
                drained.set_aside += 1;
            }
        }
    }
    if let Some(alarm) = alarm {
        let done = batch(client, by, &[], Some(&alarm), log_start)?;
        drained.batches += 1;
        drained.outages_changed += done.outages_changed;
        if let Some(decision) = done.alarm {
            drained.alarm_outage = decision.outage;
            drained.alarm_opened = decision.opened;
            drained.alarm_restored = decision.restored;
            drained.alarm_turned_on = decision.turned_on;
            drained.turned_on_by_others = decision.turned_on_by_others;
        }
    }
    registry_cache::drain_done();
    Ok(drained)
}

fn describe(e: &CaughtError) -> String {
    report(e).1
}

fn report(e: &CaughtError) -> (Option<String>, String) {
    match e {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => (
            Some(crate::db::sqlstate(r.sql_error_code())),
            r.message().to_string(),
        ),
        CaughtError::RustPanic { ereport, .. } => (
            Some(crate::db::sqlstate(ereport.sql_error_code())),
            ereport.message().to_string(),
        ),
    }
}

/// Sets aside the oldest queued signal, which fails alone.
fn set_aside_first(
    client: &mut SpiClient<'_>,
    sqlstate: Option<&str>,
    error: &str,
) -> SpiResult<()> {
    if let Some(signal) = queue::take(client, 1)?.first() {
        pgrx::warning!(
            "oms_correlation: {} {} could not be correlated and is set aside in oms_correlation_set_aside: {error}",
            signal.source.kind.as_str(),
            signal.source.event_id
        );
        queue::set_aside(client, signal, sqlstate, error)?;
    }
    Ok(())
}

struct AlarmDecision {
    outage: Option<Id>,
    opened: bool,
    restored: Vec<Id>,
    turned_on: i32,
    turned_on_by_others: i32,
}

struct BatchOutcome {
    signals: usize,
    set_aside: usize,
    outages_changed: usize,
    alarm: Option<AlarmDecision>,
}

/// A logged input: what `oms_correlation_inputs` holds.
struct Logged {
    area: Area,
    at: Time,
    kind: &'static str,
    source: SourceKey,
    meters: Vec<Id>,
    /// When ingest queued it (an alarm is not queued).
    enqueued_at: Option<Time>,
}

// Meters travel as array literals ($6), one per row: a two-dimensional array must be rectangular.
// An ONU or call-center power signal is logged once: its event id is the key ingest keeps it
// once by, and a batch takes it out of the queue. Anything else may already be logged and is
// looked up: a meter's report (queued again by each call about the meter), an alarm (checked
// again by `process_scada_event_meters`), a Kaifa signal (two messages, one keyed by its
// message_id and one by its event_id, can carry the same id). ON CONFLICT on every row cost a
// tenth of a backlog's drain: a speculative insertion, with its lock, per row.
const LOG: &str = r#"
INSERT INTO oms_correlation_inputs (area, at, kind, source_type, source_event_id, meters, enqueued_at, batch)
SELECT i.area, i.at, i.kind, i.source_type, i.source_event_id, i.meters::uuid[], i.enqueued_at,
       (SELECT s.batches + 1 FROM oms_correlation_state s WHERE s.id = 1)
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
    AS i(area, at, kind, source_type, source_event_id, meters, enqueued_at)
WHERE (i.kind IN ('off', 'on') AND i.source_type IN ('onu', 'call_center'))
   OR NOT EXISTS (SELECT FROM oms_correlation_inputs l
                  WHERE l.area = i.area AND l.at = i.at AND l.source_type = i.source_type
                    AND l.source_event_id = i.source_event_id AND l.kind = i.kind)
"#;

// The substations whose own SCADA alarms or outages are in play for a replay from `since`: their
// feeders are replayed together, as one area.
const HOT_SUBSTATIONS: &str = r#"
SELECT s.id FROM unnest($1::uuid[], $2::timestamptz[]) AS s(id, since)
-- Each in its index's order, the outages' end bounded as `load::INPUTS` bounds the log's time: as an
-- EXISTS the planner expected an early match in a scan of the whole table, which read it all when
-- there was none (most batches), and both are kept for good. Unbounded, an adopted legacy database's
-- own index on substation_id was preferred, reading the substation's whole history.
WHERE (SELECT o.id FROM oms_outage_events o
       WHERE o.substation_id = s.id AND o.scope = 'substation'
         AND coalesce(o.merged_at, o.actual_restoration_time, 'infinity'::timestamptz) >= s.since
         AND coalesce(o.merged_at, o.actual_restoration_time, 'infinity'::timestamptz) <= 'infinity'
       ORDER BY o.substation_id, coalesce(o.merged_at, o.actual_restoration_time, 'infinity'::timestamptz)
       LIMIT 1) IS NOT NULL
   OR (SELECT i.at FROM oms_correlation_inputs i WHERE i.area = 'substation:' || s.id AND i.at >= s.since
       ORDER BY i.area, i.at LIMIT 1) IS NOT NULL
"#;

const FEEDERS_OF: &str =
    "SELECT f.substation_id, f.id FROM network_feeders f WHERE f.substation_id = ANY ($1)";

// Which alarms' outages and restored outages changed: the alarm rows say so.
const LINK_ALARMS: &str = r#"
UPDATE scada_events e SET outage_event_id = u.outage,
       check_result = CASE WHEN u.restored IS NULL OR pg_catalog.jsonb_typeof(e.check_result -> 'restored_outages') IS NULL
                           THEN e.check_result
                           ELSE pg_catalog.jsonb_set(e.check_result, '{restored_outages}', pg_catalog.to_jsonb(string_to_array(u.restored, ',')))
                      END
FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS u(alarm, outage, restored)
WHERE e.id = u.alarm
  AND (e.outage_event_id IS DISTINCT FROM u.outage
       OR (u.restored IS NOT NULL AND e.check_result -> 'restored_outages' IS DISTINCT FROM
                                      pg_catalog.to_jsonb(string_to_array(u.restored, ','))))
"#;

fn batch(
    client: &mut SpiClient<'_>,
    by: By,
    signals: &[Queued],
    alarm: Option<&AlarmRun>,
    log_start: Time,
) -> SpiResult<BatchOutcome> {
    let started = Instant::now();
    let meters: Vec<Id> = signals
        .iter()
        .flat_map(|s| s.meters.iter().copied())
        .collect();
    let mut phases = Phases::new();
    let places = registry_cache::places(client, &meters)?;
    phases.done("places");
    let mut set_aside = 0;
    let mut logged: Vec<Logged> = Vec::new();
    for signal in signals {
        if signal.at < log_start {
            queue::set_aside(
                client,
                signal,
                None,
                "dated before this database's correlation log began (oms_correlation_state.log_start): \
                 stored and audited, not correlated",
            )?;
            set_aside += 1;
            continue;
        }
        let mut by_area: BTreeMap<Area, Vec<Id>> = BTreeMap::new();
        for meter in &signal.meters {
            if let Some(place) = places.get(meter) {
                by_area.entry(place.area()).or_default().push(*meter);
            }
        }
        for (area, meters) in by_area {
            logged.push(Logged {
                area,
                at: signal.at,
                kind: signal.power.as_str(),
                source: signal.source.clone(),
                meters,
                enqueued_at: Some(signal.enqueued_at),
            });
        }
    }
    if let Some(alarm) = alarm {
        logged.push(Logged {
            area: match alarm.device {
                Device::Feeder(f) => Area::Feeder(f),
                Device::Substation(s) => Area::Substation(s),
                _ => unreachable!("an alarm names a feeder or a substation"),
            },
            at: alarm.at,
            kind: if alarm.restoration {
                "restoration"
            } else {
                "trip"
            },
            source: SourceKey::new(super::model::SourceKind::Scada, alarm.id.to_string()),
            meters: alarm.affected.clone(),
            enqueued_at: None,
        });
    }
    // Each input once (two calls about one meter queue its report twice).
    let mut seen = HashSet::with_capacity(logged.len());
    logged.retain(|l| seen.insert((l.area, l.at, l.kind, l.source.clone())));
    if !logged.is_empty() {
        execute(
            client,
            LOG,
            &[
                arg(logged
                    .iter()
                    .map(|l| l.area.to_string())
                    .collect::<Vec<_>>()),
                arg(logged.iter().map(|l| ts(l.at)).collect::<Vec<_>>()),
                arg(logged.iter().map(|l| l.kind).collect::<Vec<_>>()),
                arg(logged
                    .iter()
                    .map(|l| l.source.kind.as_str())
                    .collect::<Vec<_>>()),
                arg(logged
                    .iter()
                    .map(|l| l.source.event_id.to_string())
                    .collect::<Vec<_>>()),
                arg(logged
                    .iter()
                    .map(|l| {
                        format!(
                            "{{{}}}",
                            l.meters
                                .iter()
                                .map(|m| m.to_string())
                                .collect::<Vec<_>>()
                                .join(",")
                        )
                    })
                    .collect::<Vec<_>>()),
                arg(logged
                    .iter()
                    .map(|l| l.enqueued_at.map(ts))
                    .collect::<Vec<_>>()),
            ],
        )?;
    }
    phases.done("log");
    let correlated = signals.len() - set_aside;
    let oldest_enqueued = signals.iter().map(|s| s.enqueued_at).min();
    // Where event time has come to (the declaration delay's clock), and the areas holding
    // pending outages: those that fall due are replayed even with no signal of theirs.
    let clock = declaration::event_clock(client)?
        .max(logged.iter().map(|l| l.at).max().unwrap_or(Time::MIN));
    let pending = declaration::pending(client, clock)?;
    let due: Vec<&declaration::PendingArea> =
        pending.iter().filter(|p| p.due || p.overdue).collect();
    if logged.is_empty() && due.is_empty() {
        record_batch(client, by, correlated, started, None, oldest_enqueued)?;
        return Ok(BatchOutcome {
            signals: correlated,
            set_aside,
            outages_changed: 0,
            alarm: None,
        });
    }

    // Storm mode, from the power-off signals' own times.
    let power_offs: Vec<(Time, usize)> = logged
        .iter()
        .filter(|l| l.kind == "off")
        .map(|l| (l.at, l.meters.len()))
        .collect();
    storm::count(client, &power_offs)?;
    phases.done("storm count");
    let mut rules = rules(client)?;
    // Where each signal's replay starts; never before the log began: outages opened before it have
    // no inputs to replay.
    let replay_starts: Vec<Time> = logged
        .iter()
        .map(|l| rules.replay_from(l.at, Power::parse(l.kind)).max(log_start))
        .collect();
    let earliest = replay_starts
        .iter()
        .copied()
        .chain(due.iter().map(|p| p.since))
        .min()
        .unwrap_or(0);
    let newest = logged.iter().map(|l| l.at).max().unwrap_or(clock);
    let config = storm::config(client)?;
    rules.storm = storm::storm(client, &config, earliest - rules.lookback(), newest)?;

    // The areas, and where each replay starts.
    let lookback = rules.lookback();
    let mut starts: BTreeMap<Area, Time> = BTreeMap::new();
    let mut narrated: HashMap<Area, BTreeSet<SourceKey>> = HashMap::new();
    let mut substation_of: HashMap<Area, Id> = HashMap::new();
    for (l, &from) in logged.iter().zip(&replay_starts) {
        let t0 = starts.entry(l.area).or_insert(from);
        *t0 = (*t0).min(from);
        narrated.entry(l.area).or_default().insert(l.source.clone());
        if let Area::Feeder(_) = l.area {
            if let Some(s) = l
                .meters
                .iter()
                .find_map(|m| places.get(m).and_then(|p| p.substation))
            {
                substation_of.insert(l.area, s);
            }
        }
    }
    // An area's pending outages have no rows: its replay starts where they began.
    for p in &pending {
        match starts.get_mut(&p.area) {
            Some(t0) => *t0 = (*t0).min(p.since),
            None if p.due || p.overdue => {
                starts.insert(p.area, p.since);
            }
            None => {}
        }
    }
    if let (Some(alarm), Some(s)) = (alarm, alarm.and_then(|a| a.substation)) {
        if let Device::Feeder(f) = alarm.device {
            substation_of.insert(Area::Feeder(f), s);
        }
    }
    let mut whole: BTreeSet<Id> = starts
        .keys()
        .filter_map(|a| match a {
            Area::Substation(s) => Some(*s),
            _ => None,
        })
        .collect();
    let candidates: BTreeMap<Id, Time> = substation_of
        .iter()
        .filter(|(area, _)| starts.contains_key(area))
        .fold(BTreeMap::new(), |mut acc, (area, s)| {
            let t0 = starts[area];
            let since = acc.entry(*s).or_insert(t0);
            *since = (*since).min(t0);
            acc
        });
    if !candidates.is_empty() {
        for row in execute(
            client,
            HOT_SUBSTATIONS,
            &[
                arg(candidates.keys().map(|s| pg(*s)).collect::<Vec<_>>()),
                arg(candidates
                    .values()
                    .map(|t| ts(t - lookback))
                    .collect::<Vec<_>>()),
            ],
        )? {
            whole.insert(load::id(row.get::<pgrx::Uuid>(1)?.expect("substation")));
        }
    }
    let mut feeders_of: BTreeMap<Id, Vec<Id>> = BTreeMap::new();
    if !whole.is_empty() {
        for row in execute(
            client,
            FEEDERS_OF,
            &[arg(whole.iter().map(|s| pg(*s)).collect::<Vec<_>>())],
        )? {
            let substation = load::id(row.get::<pgrx::Uuid>(1)?.expect("substation"));
            feeders_of
                .entry(substation)
                .or_default()
                .push(load::id(row.get::<pgrx::Uuid>(2)?.expect("feeder")));
        }
    }
    let mut areas: BTreeMap<Area, AreaStart> = BTreeMap::new();
    let mut area_narrated: HashMap<Area, BTreeSet<SourceKey>> = HashMap::new();
    for (area, t0) in &starts {
        let target = match (area, substation_of.get(area)) {
            (Area::Feeder(_), Some(s)) if whole.contains(s) => Area::Substation(*s),
            _ => *area,
        };
        let logs = match target {
            Area::Substation(s) => std::iter::once(Area::Substation(s))
                .chain(
                    feeders_of
                        .get(&s)
                        .into_iter()
                        .flatten()
                        .map(|f| Area::Feeder(*f)),
                )
                .collect(),
            other => vec![other],
        };
        let start = areas.entry(target).or_insert(AreaStart {
            area: target,
            logs,
            t0: *t0,
        });
        start.t0 = start.t0.min(*t0);
        area_narrated
            .entry(target)
            .or_default()
            .extend(narrated.remove(area).unwrap_or_default());
    }
    // A feeder replayed within its whole substation (or the reverse) still holds its own pending
    // outages: the replay starts where any of its logs' began.
    for start in areas.values_mut() {
        for p in pending
            .iter()
            .filter(|p| p.area == start.area || start.logs.contains(&p.area))
        {
            start.t0 = start.t0.min(p.since);
        }
    }
    phases.done("storm and areas");
    let clocks = declaration::clocks(
        areas.values().map(|a| (a.area, a.logs.clone())),
        &pending,
        clock,
    );
    let inputs = load::areas(
        client,
        &Batch {
            clocks,
            starts: areas.into_values().collect(),
            narrated: area_narrated,
            lookback,
            flap_threshold: rules.flap_threshold,
            known: &places,
        },
    )?;
    phases.done("load");
    let decisions: Vec<Decision> = inputs.iter().map(|input| decide(input, &rules)).collect();
    phases.done("decide");
    // An alarm's own batch whose one area is the alarm's device: its check locked all of its meters.
    let alarm_locked = alarm.is_some_and(|a| {
        let own = match a.device {
            Device::Feeder(f) => Area::Feeder(f),
            Device::Substation(s) => Area::Substation(s),
            _ => return false,
        };
        inputs.iter().all(|i| i.area == Some(own))
    });
    let written = write(client, &decisions, alarm_locked, outage_cache::on())?;
    outage_cache::written(client, written)?;
    declaration::write_interruptions(client, &decisions)?;
    declaration::record_pending(client, &decisions, &pending, rules.declaration_delay)?;
    phases.done("write");
    let (turned_on, turned_on_by_others) = turn_on(client, &decisions, alarm.map(|a| a.id))?;
    link_alarms(client, &decisions)?;
    let mut announced: Vec<&Announced> =
        decisions.iter().flat_map(|d| d.announced.iter()).collect();
    announced.sort_by_key(|a| (a.first_change, a.outage));
    announce(client, &announced)?;
    phases.done("announce");
    let now = record_batch(
        client,
        by,
        correlated,
        started,
        Some(newest),
        oldest_enqueued,
    )?;
    phases.report(signals.len(), inputs.iter().map(|i| i.inputs.len()).sum());
    storm::record(client, &config, &rules.storm, now.unwrap_or(newest))?;

    let alarm = alarm.map(|a| {
        let outage = decisions.iter().find_map(|d| {
            d.alarm_outages
                .iter()
                .find(|(alarm, _)| *alarm == a.id)
                .map(|(_, outage)| *outage)
        });
        AlarmDecision {
            outage,
            opened: outage.is_some_and(|o| {
                decisions
                    .iter()
                    .any(|d| d.outages.iter().any(|r| r.id == o && r.is_new))
            }),
            restored: decisions
                .iter()
                .find_map(|d| {
                    d.alarm_restored
                        .iter()
                        .find(|(alarm, _)| *alarm == a.id)
                        .map(|(_, ids)| ids.clone())
                })
                .unwrap_or_default(),
            turned_on,
            turned_on_by_others,
        }
    });
    Ok(BatchOutcome {
        signals: correlated,
        set_aside,
        outages_changed: decisions.iter().map(|d| d.announced.len()).sum(),
        alarm,
    })
}

/// Where a batch's time went, at DEBUG1 (`SET log_min_messages = debug1` for the session that
/// drains, or `ALTER DATABASE ... SET log_min_messages = debug1` for the worker).
struct Phases {
    at: Instant,
    spent: Vec<(&'static str, f64)>,
}

impl Phases {
    fn new() -> Self {
        Phases {
            at: Instant::now(),
            spent: Vec::new(),
        }
    }

    fn done(&mut self, phase: &'static str) {
        self.spent
            .push((phase, self.at.elapsed().as_secs_f64() * 1000.0));
        self.at = Instant::now();
    }

    fn report(&self, signals: usize, replayed: usize) {
        let parts: Vec<String> = self
            .spent
            .iter()
            .map(|(p, ms)| format!("{p} {ms:.1}"))
            .collect();
        pgrx::debug1!(
            "oms_correlation: a batch of {signals} signals ({replayed} inputs replayed), ms: {}",
            parts.join(", ")
        );
    }
}

fn record_batch(
    client: &mut SpiClient<'_>,
    by: By,
    signals: usize,
    started: Instant,
    newest: Option<Time>,
    oldest_enqueued: Option<Time>,
) -> SpiResult<Option<Time>> {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(execute(
        client,
        RECORD_BATCH,
        &[
            arg(i64::try_from(signals).unwrap_or(i64::MAX)),
            arg(ms),
            arg(by.as_str()),
            arg(newest.map(ts)),
            arg(oldest_enqueued.map(ts)),
        ],
    )?
    .first()
    .get_one::<pgrx::datum::TimestampWithTimeZone>()?
    .map(load::time))
}

/// Meters SCADA restorations turned back on: the registry learns it, each meter once per
/// restoration, through the ordering gate. Returns how many `alarm` turned on, and how many the
/// others did.
fn turn_on(
    client: &mut SpiClient<'_>,
    decisions: &[Decision],
    alarm: Option<Id>,
) -> SpiResult<(i32, i32)> {
    let mut by_alarm: BTreeMap<(Id, Time), BTreeSet<Id>> = BTreeMap::new();
    for d in decisions {
        for t in &d.turned_on {
            by_alarm.entry((t.alarm, t.at)).or_default().insert(t.meter);
        }
    }
    let (mut for_alarm, mut others) = (0, 0);
    for ((restoration, at), meters) in by_alarm {
        let meters: Vec<pgrx::Uuid> = meters.into_iter().map(pg).collect();
        let changed = scada_check::turn_on_as_restored(
            client,
            &meters,
            pg(restoration),
            ts(at),
            gucs::confidence_scada(),
        )?;
        if Some(restoration) == alarm {
            for_alarm += changed;
        } else {
            others += changed;
        }
    }
    Ok((for_alarm, others))
}

fn link_alarms(client: &mut SpiClient<'_>, decisions: &[Decision]) -> SpiResult<()> {
    let mut links: BTreeMap<Id, (Id, Option<String>)> = BTreeMap::new();
    for d in decisions {
        for (alarm, outage) in &d.alarm_outages {
            links.insert(*alarm, (*outage, None));
        }
        for (alarm, restored) in &d.alarm_restored {
            if let Some(link) = links.get_mut(alarm) {
                link.1 = Some(
                    restored
                        .iter()
                        .map(|id| id.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
        }
    }
    if links.is_empty() {
        return Ok(());
    }
    execute(
        client,
        LINK_ALARMS,
        &[
            arg(links.keys().map(|a| pg(*a)).collect::<Vec<_>>()),
            arg(links.values().map(|(o, _)| pg(*o)).collect::<Vec<_>>()),
            arg(links
                .values()
                .map(|(_, r)| r.clone())
                .collect::<Vec<Option<String>>>()),
        ],
    )?;
    Ok(())
}

/// The rules a batch is decided under: the settings of the session that drains, and the
/// sources' weights from `oms_correlation_rules`.
fn rules(client: &mut SpiClient<'_>) -> SpiResult<Rules> {
    let settings = gucs::engine();
    let mut weights = super::decide::rules::Weights::default();
    for row in execute(client, WEIGHTS, &[])? {
        let weight = row.get::<f64>(2)?.unwrap_or(0.0);
        match row.get::<String>(1)?.as_deref() {
            Some("scada") => weights.scada = weight,
            Some("onu") => weights.onu = weight,
            Some("kaifa") => weights.kaifa = weight,
            Some("call_center") => weights.call_center = weight,
            _ => {}
        }
    }
    Ok(Rules {
        rollup: settings.rollup,
        join_window: i64::from(settings.join_window_seconds) * 1_000_000,
        nested_window: i64::from(settings.nested_window_seconds) * 1_000_000,
        mismap_window: i64::from(settings.mismap_window_seconds) * 1_000_000,
        declaration_delay: i64::from(settings.declaration_delay_seconds) * 1_000_000,
        call_verify_window: i64::from(settings.call_verify_window_seconds) * 1_000_000,
        confirm_confidence: settings.confirm_confidence,
        momentary_window: i64::from(settings.momentary_window_seconds) * 1_000_000,
        flap_threshold: settings.flap_threshold.max(1) as usize,
        weights,
        storm: Default::default(),
    })
}

const WEIGHTS: &str = r#"
SELECT s.source, oms_source_weight(s.source)::float8
FROM unnest(ARRAY['scada', 'onu', 'kaifa', 'call_center']) AS s(source)
"#;
