//! The SCADA meter check (SPEC §4.1, steps 2-4), set-based from the first line: the scope, the
//! verdict for every meter, the registry update, the audit and the affected-meter rows are one
//! statement, whatever the feeder's size. Nothing per meter passes through Rust.
//!
//! Unlike the other statements these are planned for each alarm: whether to read a feeder through
//! its index or sequentially depends on its size, which a generic plan cannot know.

use std::ffi::CStr;

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::spi::{SpiClient, SpiResult, SpiTupleTable};
use pgrx::{JsonB, Uuid};

use super::registry::{apply_and_audit, change_args, locked_columns, registry_ctes};
use super::{arg, execute, execute_planned_for_values};
use crate::canonical::StatusChange;

/// The feeders of the alarm's device: the feeder ($11) when given, else the substation's ($10).
macro_rules! scope_feeders {
    () => {
        "(CASE WHEN $11::uuid IS NOT NULL THEN ARRAY[$11::uuid]
      ELSE ARRAY(SELECT f.id FROM network_feeders f WHERE f.substation_id = $10) END)"
    };
}

/// The meters of the alarm's device (the condition of `oms_meter_scope` in
/// `sql/functions/scope.sql`, inline so that the planner sees one indexed scan of `oms_meters`;
/// a #[pg_test] keeps the two equal). Parameters: $10 substation id, $11 feeder id (when given,
/// the scope is the feeder).
macro_rules! in_scope {
    () => {
        concat!(
            "\n(m.feeder_id = ANY ",
            scope_feeders!(),
            r#"
 OR m.substation_id = CASE WHEN $11::uuid IS NULL THEN $10 END
 OR m.id = ANY (ARRAY(SELECT fm.meter_id FROM network_feeder_meters fm
                      WHERE fm.feeder_id = ANY "#,
            scope_feeders!(),
            r#"))
 OR m.id = ANY (ARRAY(SELECT sm.meter_id FROM network_substation_meters sm
                      WHERE ($11::uuid IS NOT NULL AND sm.feeder_id = $11)
                         OR ($11::uuid IS NULL AND sm.substation_id = $10))))
"#
        )
    };
}

/// SPEC §4.1 step 3: offline is power off, communication offline, or silent for longer than the
/// freshness window ($12 seconds) before the alarm ($1).
macro_rules! is_offline {
    () => {
        r#"(m.power_status = 'off' OR m.communication_status = 'offline' OR m.last_communication IS NULL
            OR m.last_communication < $1 - pg_catalog.make_interval(secs => $12))"#
    };
}

/// `checked`: every active meter in scope with its verdict.
macro_rules! scope_verdicts {
    () => {
        concat!(
            "\nchecked AS (\n    SELECT m.id, CASE WHEN ",
            is_offline!(),
            " THEN 'offline' WHEN m.power_status = 'on' AND m.communication_status = 'online' THEN 'online' ",
            "ELSE 'unknown' END AS verdict\n    FROM oms_meters m\n    WHERE m.status = 'active' AND ",
            in_scope!(),
            ")\n"
        )
    };
}

macro_rules! verdict_counts {
    () => {
        r#"
SELECT count(*)::int4,
       (count(*) FILTER (WHERE verdict = 'offline'))::int4,
       (count(*) FILTER (WHERE verdict = 'online'))::int4,
       (count(*) FILTER (WHERE verdict = 'unknown'))::int4
"#
    };
}

/// The outage check: $13 true affects every meter in scope (`scada_scope = topology`), false only
/// the offline ones; $14 is the SCADA event. The affected meters are read and locked in id order
/// straight from `oms_meters` (a second indexed scan is cheaper than joining back to `checked`),
/// and their affected-meter rows come from the status events' RETURNING.
const CHECK_AND_MARK_AFFECTED: &str = concat!(
    "WITH",
    scope_verdicts!(),
    ", locked AS (\n    SELECT ",
    locked_columns!(),
    "\n    FROM oms_meters m\n",
    "    WHERE m.status = 'active' AND ($13 OR ",
    is_offline!(),
    ") AND ",
    in_scope!(),
    "    ORDER BY m.id\n    FOR NO KEY UPDATE OF m\n),",
    apply_and_audit!(),
    r#", affected AS (
    INSERT INTO scada_event_affected_meters (scada_event_id, meter_id, meter_status_before, meter_status_after)
    SELECT $14, meter_id, previous_status, CASE WHEN applied THEN 'off' ELSE previous_status END
    FROM audited
    RETURNING 1
)"#,
    verdict_counts!(),
    ", (SELECT count(*) FROM affected)::int4, (SELECT count(*) FROM changed)::int4 FROM checked"
);

/// Verdict counts alone. It keeps the scope's parameter numbers; $2-$9 are declared and unused.
const COUNT_VERDICTS: &str = concat!(
    "WITH",
    scope_verdicts!(),
    verdict_counts!(),
    ", 0::int4, 0::int4 FROM checked"
);

/// A restoration's effect on meters it would have turned on, had their news come in time (SPEC §6,
/// ordering): the meters of `$target` go back on as of the restoration ($1), audited against it
/// ($3 as text, $11 as uuid), each through the ordering gate, and count among its meters.
macro_rules! restore_as_of_restoration {
    ($target:literal) => {
        concat!(
            "WITH target AS (",
            $target,
            "),",
            registry_ctes!(),
            r#", affected AS (
    INSERT INTO scada_event_affected_meters (scada_event_id, meter_id, meter_status_before, meter_status_after)
    SELECT $11, l.id, l.power_status, CASE WHEN l.applied THEN 'on' ELSE l.power_status END
    FROM locked l
    ON CONFLICT (scada_event_id, meter_id) DO NOTHING
)
SELECT (SELECT count(*) FROM changed)::int4"#
        )
    };
}

/// Meters ($10) a restoration ($11) turned back on that it has not turned on before (a replay
/// finds the same ones again).
const TURN_ON: &str = restore_as_of_restoration!(
    "SELECT t.id FROM unnest($10::uuid[]) AS t(id)
     WHERE NOT EXISTS (SELECT FROM oms_meter_status_events e
                       WHERE e.meter_id = t.id AND e.event_type = 'power_on' AND e.source_event_id = $3)"
);

/// Verdict counts over the meters in scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeCounts {
    pub total: i32,
    pub offline: i32,
    pub online: i32,
    pub unknown: i32,
    /// Meters the check marked as affected (outage checks only).
    pub affected: i32,
    /// Affected meters whose registry row took the new status.
    pub applied: i32,
}

pub struct CheckSettings {
    pub fresh_window_seconds: i32,
    pub affect_whole_scope: bool,
    pub confidence: f64,
}

/// Checks every meter in scope and marks the affected ones off, audited against the SCADA event.
pub fn check_and_mark_affected(
    client: &mut SpiClient<'_>,
    scada_event_id: Uuid,
    substation: Option<Uuid>,
    feeder: Option<Uuid>,
    at: TimestampWithTimeZone,
    settings: &CheckSettings,
    metadata: serde_json::Value,
) -> SpiResult<ScopeCounts> {
    let mut args = vec![
        arg(at),
        arg("scada"),
        arg(scada_event_id.to_string()),
        arg(settings.confidence),
        arg(JsonB(metadata)),
    ];
    args.extend(change_args(StatusChange::FeederDeenergized));
    args.extend([
        arg(substation),
        arg(feeder),
        arg(settings.fresh_window_seconds),
        arg(settings.affect_whole_scope),
        arg(scada_event_id),
    ]);
    read_counts(bulk_statement(
        client,
        CHECK_AND_MARK_AFFECTED,
        &args,
        Writes::MetersOf(Device { substation, feeder }),
    )?)
}

/// Counts verdicts without changing anything (used before a restoration).
pub fn count_verdicts(
    client: &mut SpiClient<'_>,
    substation: Option<Uuid>,
    feeder: Option<Uuid>,
    at: TimestampWithTimeZone,
    fresh_window_seconds: i32,
) -> SpiResult<ScopeCounts> {
    let mut args = vec![arg(at)];
    args.extend((2..=9).map(|_| arg(Option::<&str>::None)));
    args.extend([arg(substation), arg(feeder), arg(fresh_window_seconds)]);
    read_counts(bulk_statement(
        client,
        COUNT_VERDICTS,
        &args,
        Writes::Nothing,
    )?)
}

/// $1-$9 of a statement that turns meters on as a SCADA restoration does: $1 its time, $3 its id,
/// $4 the confidence, $5 the status events' metadata, $6-$9 the change (`db::registry`).
pub(crate) fn restoration_args<'a>(
    restoration_id: Uuid,
    restored_at: TimestampWithTimeZone,
    confidence: f64,
    metadata: serde_json::Value,
) -> Vec<pgrx::datum::DatumWithOid<'a>> {
    let mut args = vec![
        arg(restored_at),
        arg("scada"),
        arg(restoration_id.to_string()),
        arg(confidence),
        arg(JsonB(metadata)),
    ];
    args.extend(change_args(StatusChange::FeederEnergized));
    args
}

/// Turns meters back on as of a SCADA restoration that ended their spans (SPEC §4.1 step 4),
/// each once, through the ordering gate; returns how many took the new status.
pub fn turn_on_as_restored(
    client: &mut SpiClient<'_>,
    meters: &[Uuid],
    restoration_id: Uuid,
    restored_at: TimestampWithTimeZone,
    confidence: f64,
) -> SpiResult<i32> {
    let metadata = serde_json::json!({"restored_by": restoration_id.to_string()});
    let mut args = restoration_args(restoration_id, restored_at, confidence, metadata);
    args.extend([arg(meters.to_vec()), arg(restoration_id)]);
    let row = execute(client, TURN_ON, &args)?.first();
    Ok(row.get_one::<i32>()?.unwrap_or(0))
}

/// Whether the tables the bulk statements write are free of triggers and rules of a DBA's own
/// (PostgreSQL's foreign-key checks and the extension's per-statement ones are redundant here, as
/// said below; the extension's other triggers do not fire on what these statements write), and
/// replica mode is not already someone's choice.
const NO_USER_TRIGGERS_ON_WRITTEN_TABLES: &str = r#"
SELECT pg_catalog.current_setting('session_replication_role') = 'origin'
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                   WHERE t.tgrelid = ANY (written.tables) AND NOT t.tgisinternal
                     AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                                     WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                                       AND d.objid = t.tgfoid AND d.deptype = 'e'
                                       AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass))
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_rewrite WHERE ev_class = ANY (written.tables))
FROM (SELECT ARRAY['oms_meters', 'oms_meter_status_events', 'scada_event_affected_meters', 'oms_outage_events',
                   'oms_event_sources', 'oms_event_timeline', 'oms_outage_meters',
                   'oms_outage_customers']::pg_catalog.regclass[] AS tables) AS written
"#;

/// Runs one of the check's bulk statements (up to a feeder's every meter written at once) with
/// settings of its own, undone when it returns:
/// - `jit = off`: the plan runs once, and compiling it took 0.4 s of a 100,000-meter check;
/// - `work_mem = 64MB` and `random_page_cost = 1.1` (below);
/// - `session_replication_role = replica`, which skips the foreign keys' per-row triggers, 40 % of
///   a check on stale meters. They are redundant in these statements: each meter row they refer to
///   is locked by the statement itself (FOR NO KEY UPDATE, which DELETE waits for), and each outage
///   and SCADA event they refer to is this transaction's own or locked by its UPDATE. Keys, checks
///   and NOT NULL still hold. Taken only when the extension's owner is a superuser (the setting
///   needs it) and no written table has a trigger or rule of a DBA's, which replica mode would
///   skip too.
///
/// Switching replica mode resets the backend's plan cache, so every statement of the engine is
/// planned again, in this call and in the backend's next one: it is taken only for a device of at
/// least `REPLICA_MODE_MIN_METERS` meters, whose writes it speeds up by more than that costs. A
/// statement that writes nothing has no foreign-key triggers to skip, and never takes it.
pub(crate) fn bulk_statement<'conn>(
    client: &mut SpiClient<'conn>,
    sql: &'static str,
    args: &[pgrx::datum::DatumWithOid<'_>],
    writes: Writes,
) -> SpiResult<SpiTupleTable<'conn>> {
    let skip_fk_triggers = match writes {
        Writes::Nothing => false,
        Writes::MetersOf(Device { substation, feeder }) => {
            let superuser = unsafe { pg_sys::superuser() };
            let mut size_args = vec![arg(REPLICA_MODE_MIN_METERS)];
            size_args.extend((2..=9).map(|_| arg(Option::<&str>::None)));
            size_args.extend([arg(substation), arg(feeder)]);
            superuser
                && execute_planned_for_values(client, DEVICE_HAS_AT_LEAST, &size_args)?
                    .first()
                    .get_one::<bool>()?
                    .unwrap_or(false)
                && execute(client, NO_USER_TRIGGERS_ON_WRITTEN_TABLES, &[])?
                    .first()
                    .get_one::<bool>()?
                    .unwrap_or(false)
        }
    };
    // Like a function's SET clause: an error unwinds them with the event's subtransaction.
    let nest_level = unsafe { pg_sys::NewGUCNestLevel() };
    set_for_statement(c"jit", c"off", pg_sys::GucContext::PGC_USERSET);
    // Its sorts (meters in lock order) then stay in memory; one statement, one backend.
    set_for_statement(c"work_mem", c"64MB", pg_sys::GucContext::PGC_USERSET);
    // The registry is hot in memory: priced as such, the planner updates a feeder's meters by
    // their key instead of hashing the whole registry (10,000 meters: 176 -> 125 ms).
    set_for_statement(c"random_page_cost", c"1.1", pg_sys::GucContext::PGC_USERSET);
    if skip_fk_triggers {
        set_for_statement(
            c"session_replication_role",
            c"replica",
            pg_sys::GucContext::PGC_SUSET,
        );
    }
    let result = execute_planned_for_values(client, sql, args);
    unsafe { pg_sys::AtEOXact_GUC(true, nest_level) };
    result
}

/// Runs `statement` with the foreign keys' per-row triggers skipped, for the memberships a SCADA
/// alarm's own batch writes: its check locked every meter of the area (FOR NO KEY UPDATE, which
/// DELETE waits for), and each outage they name is the batch's own or updated by it. Under the
/// conditions `bulk_statement` takes replica mode, and for `rows` of at least
/// `REPLICA_MODE_MIN_METERS` (a 100,000-meter trip's memberships: 2.4 s of triggers).
pub(crate) fn without_fk_triggers(
    client: &mut SpiClient<'_>,
    rows: usize,
    statement: impl FnOnce(&mut SpiClient<'_>) -> SpiResult<()>,
) -> SpiResult<()> {
    let skip = i64::try_from(rows).unwrap_or(i64::MAX) >= REPLICA_MODE_MIN_METERS
        && unsafe { pg_sys::superuser() }
        && execute(client, NO_USER_TRIGGERS_ON_WRITTEN_TABLES, &[])?
            .first()
            .get_one::<bool>()?
            .unwrap_or(false);
    if !skip {
        return statement(client);
    }
    let nest_level = unsafe { pg_sys::NewGUCNestLevel() };
    set_for_statement(
        c"session_replication_role",
        c"replica",
        pg_sys::GucContext::PGC_SUSET,
    );
    let result = statement(client);
    unsafe { pg_sys::AtEOXact_GUC(true, nest_level) };
    result
}

/// A SCADA alarm's device: its feeder, else its substation (`correlation::store` records outages
/// against it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub substation: Option<Uuid>,
    pub feeder: Option<Uuid>,
}

/// Whether a bulk statement writes rows, and about which device's meters (see `bulk_statement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writes {
    MetersOf(Device),
    Nothing,
}

/// Below this many meters on the device, the foreign-key triggers a check's writes fire cost less
/// than planning the engine's statements again. Without the switch the SCADA pgbench on a feeder
/// of 150 meters went from 247 to 590 alarms a second; 40 % of a check that writes 100,000 meters
/// is those triggers.
const REPLICA_MODE_MIN_METERS: i64 = 500;

// Whether the alarm's device ($10 substation, $11 feeder, as in the check) has at least $1 active
// meters in scope (`in_scope!`). Planned for the device, as the check is: a generic plan of
// `in_scope!` reads the whole registry (24 alarms a second on a 150-meter feeder).
const DEVICE_HAS_AT_LEAST: &str = concat!(
    "SELECT count(*) >= $1 FROM (SELECT FROM oms_meters m WHERE m.status = 'active' AND ",
    in_scope!(),
    " LIMIT $1) AS device"
);

fn set_for_statement(name: &CStr, value: &CStr, context: pg_sys::GucContext::Type) {
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            context,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            pg_sys::PGERROR as i32,
            false,
        );
    }
}

fn read_counts(table: pgrx::spi::SpiTupleTable<'_>) -> SpiResult<ScopeCounts> {
    let row = table.first();
    let get = |i| row.get::<i32>(i).map(|v| v.unwrap_or(0));
    Ok(ScopeCounts {
        total: get(1)?,
        offline: get(2)?,
        online: get(3)?,
        unknown: get(4)?,
        affected: get(5)?,
        applied: get(6)?,
    })
}
