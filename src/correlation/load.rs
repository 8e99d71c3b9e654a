//! What a batch reads (SPI): for each area it touches, the stored outages the replay may change,
//! their spans, sources and customers, and every input of the area from the batch's earliest
//! signal on, with the grid around them. A few statements for the whole batch, each over arrays of
//! areas; `decide` does the rest in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};
use rustc_hash::{FxHashMap, FxHashSet};

use super::decide::AreaInput;
use super::model::{
    Alarm, Area, Device, Id, Input, MeterSignal, Place, Power, SourceKey, SourceKind,
    StoredCustomer, StoredInterruption, StoredOutage, StoredSource, StoredSpan, StoredStatus, Time,
};
use super::outage_cache;
use crate::db::topology::located_meters;
use crate::db::{arg, execute};

pub fn pg(id: Id) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*id.as_bytes())
}

pub fn id(uuid: pgrx::Uuid) -> Id {
    Id::from_bytes(*uuid)
}

pub fn ts(at: Time) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(at).unwrap_or_else(|_| {
        TimestampWithTimeZone::try_from(if at < 0 { i64::MIN + 1 } else { i64::MAX - 1 })
            .expect("an infinite timestamp")
    })
}

pub fn time(at: TimestampWithTimeZone) -> Time {
    at.into_inner()
}

fn ids(list: impl IntoIterator<Item = Id>) -> Vec<pgrx::Uuid> {
    list.into_iter().map(pg).collect()
}

// The meters ($1) where they hang.
const PLACES: &str = concat!(
    "WITH target AS (SELECT DISTINCT unnest($1::uuid[]) AS id), located AS (",
    located_meters!(),
    ")\nSELECT meter_id, customer_id, onu_id, dp_id, feeder_id, substation_id FROM located"
);

/// Where the meters hang, as the registry says now (`registry_cache::places` keeps them between
/// batches).
pub(super) fn read_places(
    client: &mut SpiClient<'_>,
    meters: &[Id],
) -> SpiResult<HashMap<Id, Place>> {
    let mut places = HashMap::with_capacity(meters.len());
    if meters.is_empty() {
        return Ok(places);
    }
    // Many meters (a feeder's trip): planned for the array at hand, which the planner then sizes
    // and joins by hash (100,000 meters: 1.2 s by key one at a time); few: the prepared plan.
    let args = [arg(ids(meters.iter().copied()))];
    let rows = if meters.len() > 2000 {
        crate::db::execute_planned_for_values(client, PLACES, &args)?
    } else {
        execute(client, PLACES, &args)?
    };
    for row in rows {
        let meter = id(row.get::<pgrx::Uuid>(1)?.expect("meter id"));
        places.insert(meter, place_at(&row, meter, 2)?);
    }
    Ok(places)
}

// Every meter where it hangs.
const EVERY_PLACE: &str = concat!(
    "WITH target AS (SELECT id FROM oms_meters), located AS (",
    located_meters!(),
    ")\nSELECT meter_id, customer_id, onu_id, dp_id, feeder_id, substation_id FROM located"
);

const METERS: &str = "SELECT count(*) FROM oms_meters";

/// Where every meter of the registry hangs, unless it has more than `most` meters.
pub(super) fn read_every_place(
    client: &mut SpiClient<'_>,
    most: usize,
) -> SpiResult<Option<HashMap<Id, Place>>> {
    let meters = execute(client, METERS, &[])?
        .first()
        .get_one::<i64>()?
        .unwrap_or(0);
    if usize::try_from(meters).map_or(true, |n| n > most) {
        return Ok(None);
    }
    let mut places = HashMap::with_capacity(meters as usize);
    for row in execute(client, EVERY_PLACE, &[])? {
        let meter = id(row.get::<pgrx::Uuid>(1)?.expect("meter id"));
        places.insert(meter, place_at(&row, meter, 2)?);
    }
    Ok(Some(places))
}

/// The areas of a batch and where each one's replay starts.
#[derive(Debug, Clone)]
pub struct AreaStart {
    pub area: Area,
    /// The input logs it reads: its own, and for a whole substation each of its feeders'.
    pub logs: Vec<Area>,
    pub t0: Time,
}

/// The columns of an outage row a batch reads (`read_outages`), from `o`.
macro_rules! outage_columns {
    () => {
        "o.id, o.event_id::text, o.device_key::text, o.dp_id, o.feeder_id, o.substation_id, \
     o.status::text, o.operator_closed_at IS NOT NULL, o.first_detected_at, coalesce(o.opened_at, o.first_detected_at), \
     o.actual_restoration_time, o.merged_into, \
     CASE WHEN o.status = 'merged' THEN coalesce(o.merged_at, o.last_updated_at, o.first_detected_at) END, \
     o.parent_outage_id, coalesce(o.confidence_score, 0)::float8, coalesce(o.affected_customers_count, 0), \
     coalesce(o.customers_out, 0), o.description, coalesce(o.merged_at, o.actual_restoration_time)"
    };
}

// The outages each area's replay may change: those that ended (were restored or merged) at or after
// its `since` (its start less the look-back), or are open (`outage_cache::areas_of` says the same).
// A feeder's ($1, $2 since); a whole substation's ($3, $4); a DP's on no feeder ($5, $6); a
// service's placed nowhere ($7, $8). First column: the area.
// Outages are kept for good: a feeder's and a whole substation's are read by their `(device, end)`
// indexes, as `INPUTS` reads the log (a join read the whole table with a hash).
const OUTAGES: &str = concat!(
    r#"
WITH feeders AS (SELECT * FROM unnest($1::uuid[], $2::timestamptz[]) AS a(feeder, since)),
     substations AS (SELECT * FROM unnest($3::uuid[], $4::timestamptz[]) AS a(substation, since)),
     dps AS (SELECT * FROM unnest($5::uuid[], $6::timestamptz[]) AS a(dp, since)),
     services AS (SELECT * FROM unnest($7::text[], $8::timestamptz[]) AS a(device_key, since))
SELECT 'feeder:' || a.feeder, "#,
    outage_columns!(),
    r#"
FROM feeders a CROSS JOIN LATERAL (
    SELECT * FROM oms_outage_events o
    WHERE o.feeder_id = a.feeder AND o.device_key IS NOT NULL
      AND coalesce(o.merged_at, o.actual_restoration_time, 'infinity'::timestamptz) >= a.since
      AND coalesce(o.merged_at, o.actual_restoration_time, 'infinity'::timestamptz) <= 'infinity' OFFSET 0) o
UNION ALL
SELECT 'substation:' || a.substation, "#,
    outage_columns!(),
    r#"
FROM substations a CROSS JOIN LATERAL (
    SELECT * FROM oms_outage_events o
    WHERE o.substation_id = a.substation AND o.device_key IS NOT NULL
      AND coalesce(o.merged_at, o.actual_restoration_time, 'infinity'::timestamptz) >= a.since
      AND coalesce(o.merged_at, o.actual_restoration_time, 'infinity'::timestamptz) <= 'infinity' OFFSET 0) o
UNION ALL
SELECT 'dp:' || a.dp, "#,
    outage_columns!(),
    r#"
FROM dps a JOIN oms_outage_events o
  ON o.dp_id = a.dp AND o.feeder_id IS NULL AND o.substation_id IS NULL AND o.device_key IS NOT NULL
 AND coalesce(o.merged_at, o.actual_restoration_time, 'infinity'::timestamptz) >= a.since
UNION ALL
SELECT a.device_key, "#,
    outage_columns!(),
    r#"
FROM services a JOIN oms_outage_events o
  ON o.device_key = a.device_key AND o.feeder_id IS NULL AND o.substation_id IS NULL AND o.dp_id IS NULL
 AND coalesce(o.merged_at, o.actual_restoration_time, 'infinity'::timestamptz) >= a.since
"#
);

// Outages by id (the merged ones spans and sources came from).
const OUTAGES_BY_ID: &str = concat!(
    "SELECT NULL::text, ",
    outage_columns!(),
    " FROM oms_outage_events o WHERE o.id = ANY ($1) AND o.device_key IS NOT NULL"
);

/// The columns of a membership row a batch reads (`span`), from `om`; `write` has them returned.
macro_rules! span_columns {
    () => {
        "om.outage_id, coalesce(om.origin_outage_id, om.outage_id), om.meter_id, om.off_at, om.on_at, \
         om.first_source::text, coalesce(om.first_source_event_id, '')::text, om.customer_id, om.dp_id, \
         om.feeder_id, om.substation_id, om.suspected_mismapped"
    };
}
pub(super) use span_columns;

/// The columns of a source row (`source`), from `es`.
macro_rules! source_columns {
    () => {
        "es.outage_event_id, coalesce(es.origin_outage_id, es.outage_event_id), es.source_type::text, \
         es.source_event_id::text, coalesce(es.event_timestamp, es.detected_at), es.correlation_weight::float8"
    };
}
pub(super) use source_columns;

/// The columns of a customer row (`customer`), from `c`.
macro_rules! customer_columns {
    () => {
        "c.outage_id, c.customer_id, c.linked_at, c.restored_at"
    };
}
pub(super) use customer_columns;

const SPANS: &str = concat!(
    "SELECT ",
    span_columns!(),
    " FROM oms_outage_meters om WHERE om.outage_id = ANY ($1)"
);

const SOURCES: &str = concat!(
    "SELECT ",
    source_columns!(),
    " FROM oms_event_sources es WHERE es.outage_event_id = ANY ($1)"
);

const CUSTOMERS: &str = concat!(
    "SELECT ",
    customer_columns!(),
    " FROM oms_outage_customers c WHERE c.outage_id = ANY ($1)"
);

// Each area's inputs from its start: ($1 the area, $2 the log it reads, $3 from when). A whole
// substation reads its own log and each of its feeders'.
// The log and the interruptions are kept for good, and the planner guesses a third of a table for
// `at >= t0`: as a plain join it read the whole log with a hash join, every batch, and more each
// day. Each area's rows are read by its key instead: OFFSET 0 keeps the subquery a loop per area
// (not a join the planner may flatten), and the bound `<= 'infinity'`, always true, makes the
// time a range, which the planner guesses at 0.5 % rather than a third (so a big feeder's share
// of the log is not read whole either). tests/integration/test_growing_history.py holds them to it.
const INPUTS: &str = r#"
SELECT a.area, i.at, i.kind::text, i.source_type::text, i.source_event_id::text, i.meters, a.log_area
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS a(area, log_area, t0)
CROSS JOIN LATERAL (SELECT l.at, l.kind, l.source_type, l.source_event_id, l.meters
                    FROM oms_correlation_inputs l
                    WHERE l.area = a.log_area AND l.at >= a.t0 AND l.at <= 'infinity' OFFSET 0) AS i
"#;

// Each area's momentary interruptions begun before its start and over within the lookback ($4,
// microseconds): the weak outages they were have no rows.
const INTERRUPTIONS: &str = r#"
SELECT a.area, i.meter_id, i.customer_id, i.onu_id, i.dp_id, i.feeder_id, i.substation_id,
       i.interrupted_at, i.restored_at, i.source_type::text, i.source_event_id::text
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS a(area, log_area, t0)
CROSS JOIN LATERAL (SELECT * FROM oms_momentary_interruptions m
                    WHERE m.area = a.log_area AND m.restored_at >= a.t0 - $4 * interval '1 microsecond'
                      AND m.restored_at <= 'infinity' OFFSET 0) AS i
WHERE i.interrupted_at < a.t0
"#;

/// Each area's input logs with its replay's start, as `unnest` arrays ($1 area, $2 log, $3 t0):
/// what `INPUTS` and `INTERRUPTIONS` read by.
fn area_logs(
    starts: &BTreeMap<Area, AreaStart>,
) -> (Vec<String>, Vec<String>, Vec<TimestampWithTimeZone>) {
    let (mut areas, mut logs, mut t0s) = (Vec::new(), Vec::new(), Vec::new());
    for start in starts.values() {
        for log in &start.logs {
            areas.push(area_key(&start.area));
            logs.push(area_key(log));
            t0s.push(ts(start.t0));
        }
    }
    (areas, logs, t0s)
}

/// A meter's place from a row's `customer, onu, dp, feeder, substation` columns, from `first` on.
fn place_at(row: &pgrx::spi::SpiHeapTupleData<'_>, meter: Id, first: usize) -> SpiResult<Place> {
    Ok(Place {
        meter,
        customer: row.get::<pgrx::Uuid>(first)?.map(id),
        onu: row.get::<i32>(first + 1)?,
        dp: row.get::<pgrx::Uuid>(first + 2)?.map(id),
        feeder: row.get::<pgrx::Uuid>(first + 3)?.map(id),
        substation: row.get::<pgrx::Uuid>(first + 4)?.map(id),
    })
}

/// The interruptions each area's replay weighs (`INTERRUPTIONS`).
fn read_interruptions(
    client: &mut SpiClient<'_>,
    starts: &BTreeMap<Area, AreaStart>,
    lookback: Time,
) -> SpiResult<HashMap<Area, Vec<StoredInterruption>>> {
    let (areas, logs, t0s) = area_logs(starts);
    let mut out: HashMap<Area, Vec<StoredInterruption>> = HashMap::new();
    let args = [arg(areas), arg(logs), arg(t0s), arg(lookback)];
    for row in execute(client, INTERRUPTIONS, &args)? {
        let Some(area) = row.get::<String>(1)?.as_deref().and_then(Area::parse) else {
            continue;
        };
        let Some(kind) = row
            .get::<String>(10)?
            .as_deref()
            .and_then(SourceKind::parse)
        else {
            continue;
        };
        let meter = id(row.get::<pgrx::Uuid>(2)?.expect("meter_id"));
        out.entry(area).or_default().push(StoredInterruption {
            place: place_at(&row, meter, 3)?,
            off: time(
                row.get::<TimestampWithTimeZone>(8)?
                    .expect("interrupted_at"),
            ),
            on: time(row.get::<TimestampWithTimeZone>(9)?.expect("restored_at")),
            source: SourceKey::new(kind, row.get::<String>(11)?.unwrap_or_default()),
        });
    }
    Ok(out)
}

// What an alarm's outage says of it.
const ALARMS: &str = r#"
SELECT e.id, lower(e.severity), e.reason::text, e.event_type::text, e.substation_id::text, e.feeder_id::text,
       (SELECT s.id FROM network_substations s WHERE s.substation_id = e.substation_id),
       e.latitude::float8, e.longitude::float8
FROM scada_events e WHERE e.id = ANY ($1)
"#;

// The feeders ($1) whose breakers report to SCADA.
const MONITORED: &str =
    "SELECT f.id, 1::int8 FROM network_feeders f WHERE f.id = ANY ($1) AND f.scada_monitored";

pub(super) const DP_ACTIVE: &str = r#"
SELECT m.dp_id, count(*)::int8 FROM oms_meters m
WHERE m.dp_id = ANY ($1) AND m.status = 'active' GROUP BY m.dp_id
"#;

// A feeder's active meters: its own, those mapped to it, and its DPs' that name no feeder. Each
// part in one pass over all the feeders asked for (a subquery per feeder read the meters thrice).
pub(super) const FEEDER_ACTIVE: &str = r#"
WITH own AS (
    SELECT m.feeder_id AS id, count(*) AS n FROM oms_meters m
    WHERE m.feeder_id = ANY ($1) AND m.status = 'active' GROUP BY 1
), mapped AS (
    SELECT fm.feeder_id AS id, count(*) AS n FROM network_feeder_meters fm JOIN oms_meters m ON m.id = fm.meter_id
    WHERE fm.feeder_id = ANY ($1) AND m.feeder_id IS NULL AND m.status = 'active' GROUP BY 1
), through_dp AS (
    SELECT dp.feeder_id AS id, count(*) AS n FROM network_distribution_points dp JOIN oms_meters m ON m.dp_id = dp.id
    WHERE dp.feeder_id = ANY ($1) AND m.feeder_id IS NULL AND m.status = 'active'
      AND NOT EXISTS (SELECT FROM network_feeder_meters fm WHERE fm.meter_id = m.id)
    GROUP BY 1
)
SELECT f.id, (coalesce(own.n, 0) + coalesce(mapped.n, 0) + coalesce(through_dp.n, 0))::int8
FROM unnest($1::uuid[]) AS f(id)
LEFT JOIN own ON own.id = f.id LEFT JOIN mapped ON mapped.id = f.id LEFT JOIN through_dp ON through_dp.id = f.id
"#;

// Each meter's power changes since $2, for flapping (SPEC §5.7), where there are more than $3 (the
// meters of $1 distinct, $3 not negative: an aggregate with no GROUP BY gives every meter a row). Read
// meter by meter through its index: over `meter_id = ANY ($1)` the planner read the whole history
// (a guessed third of it since $2), or walked the index once per element of the array.
const POWER_CHANGES: &str = r#"
SELECT m.id, c.times
FROM unnest($1::uuid[]) AS m(id)
CROSS JOIN LATERAL (SELECT array_agg(e.event_timestamp ORDER BY e.event_timestamp) AS times, count(*) AS n
                    FROM oms_meter_status_events e
                    WHERE e.meter_id = m.id AND e.event_type IN ('power_on', 'power_off') AND e.event_timestamp > $2) AS c
WHERE c.n > $3
"#;

fn status(status: &str, operator_closed: bool) -> StoredStatus {
    match status {
        _ if operator_closed => StoredStatus::Closed,
        "detected" => StoredStatus::Open {
            confirmed: false,
            in_progress: false,
        },
        "confirmed" => StoredStatus::Open {
            confirmed: true,
            in_progress: false,
        },
        "in_progress" => StoredStatus::Open {
            confirmed: true,
            in_progress: true,
        },
        "restored" => StoredStatus::Restored,
        "merged" => StoredStatus::Merged,
        _ => StoredStatus::Closed,
    }
}

/// An outage row as read (`outage_columns`, after a first column naming its area).
#[derive(Clone)]
pub(super) struct OutageRead {
    pub area: Option<String>,
    pub outage: StoredOutage,
    /// When it merged or was restored, as the row says: what `OUTAGES` compares with `since`.
    pub ends: Option<Time>,
}

/// Outages by id, as a batch reads them (those with no device are left out).
pub(super) fn outages_by_id(
    client: &mut SpiClient<'_>,
    outages: impl IntoIterator<Item = Id>,
) -> SpiResult<Vec<OutageRead>> {
    let outages = ids(outages);
    if outages.is_empty() {
        return Ok(Vec::new());
    }
    read_outages(execute(client, OUTAGES_BY_ID, &[arg(outages)])?)
}

/// Outage rows (after the first column, the area) into stored outages.
fn read_outages(table: pgrx::spi::SpiTupleTable<'_>) -> SpiResult<Vec<OutageRead>> {
    let mut outages = Vec::new();
    for row in table {
        let Some(device) = row.get::<String>(4)?.as_deref().and_then(Device::parse) else {
            continue;
        };
        let status_text = row.get::<String>(8)?.unwrap_or_default();
        outages.push(OutageRead {
            area: row.get::<String>(1)?,
            outage: StoredOutage {
                id: id(row.get::<pgrx::Uuid>(2)?.expect("outage id")),
                event_id: row.get::<String>(3)?.unwrap_or_default(),
                device,
                dp: row.get::<pgrx::Uuid>(5)?.map(id),
                feeder: row.get::<pgrx::Uuid>(6)?.map(id),
                substation: row.get::<pgrx::Uuid>(7)?.map(id),
                status: status(&status_text, row.get::<bool>(9)?.unwrap_or(false)),
                start: time(
                    row.get::<TimestampWithTimeZone>(10)?
                        .expect("first_detected_at"),
                ),
                opened_at: time(row.get::<TimestampWithTimeZone>(11)?.expect("opened_at")),
                restored_at: row.get::<TimestampWithTimeZone>(12)?.map(time),
                merged_into: row.get::<pgrx::Uuid>(13)?.map(id),
                merged_at: row.get::<TimestampWithTimeZone>(14)?.map(time),
                parent: row.get::<pgrx::Uuid>(15)?.map(id),
                confidence: row.get::<f64>(16)?.unwrap_or(0.0),
                affected_customers: row.get::<i32>(17)?.unwrap_or(0),
                customers_out: row.get::<i32>(18)?.unwrap_or(0),
                description: row.get::<String>(19)?,
            },
            ends: row.get::<TimestampWithTimeZone>(20)?.map(time),
        });
    }
    Ok(outages)
}

/// A membership row (`span_columns`).
pub(super) fn span(row: &pgrx::spi::SpiHeapTupleData<'_>) -> SpiResult<StoredSpan> {
    let meter = id(row.get::<pgrx::Uuid>(3)?.expect("meter_id"));
    let kind = row
        .get::<String>(6)?
        .as_deref()
        .and_then(SourceKind::parse)
        .unwrap_or(SourceKind::Scada);
    Ok(StoredSpan {
        outage: id(row.get::<pgrx::Uuid>(1)?.expect("outage_id")),
        origin: id(row.get::<pgrx::Uuid>(2)?.expect("origin")),
        meter,
        off: time(row.get::<TimestampWithTimeZone>(4)?.expect("off_at")),
        on: row.get::<TimestampWithTimeZone>(5)?.map(time),
        first_source: SourceKey::new(kind, row.get::<String>(7)?.unwrap_or_default()),
        place: Place {
            meter,
            customer: row.get::<pgrx::Uuid>(8)?.map(id),
            onu: None,
            dp: row.get::<pgrx::Uuid>(9)?.map(id),
            feeder: row.get::<pgrx::Uuid>(10)?.map(id),
            substation: row.get::<pgrx::Uuid>(11)?.map(id),
        },
        suspected: row.get::<bool>(12)?.unwrap_or(false),
    })
}

/// A source row (`source_columns`); None for a source type the engine does not know.
pub(super) fn source(row: &pgrx::spi::SpiHeapTupleData<'_>) -> SpiResult<Option<StoredSource>> {
    let Some(kind) = row.get::<String>(3)?.as_deref().and_then(SourceKind::parse) else {
        return Ok(None);
    };
    Ok(Some(StoredSource {
        outage: id(row.get::<pgrx::Uuid>(1)?.expect("outage_event_id")),
        origin: id(row.get::<pgrx::Uuid>(2)?.expect("origin")),
        key: SourceKey::new(kind, row.get::<String>(4)?.unwrap_or_default()),
        at: time(row.get::<TimestampWithTimeZone>(5)?.expect("detected_at")),
        weight: row.get::<f64>(6)?,
    }))
}

/// A customer row (`customer_columns`).
pub(super) fn customer(row: &pgrx::spi::SpiHeapTupleData<'_>) -> SpiResult<StoredCustomer> {
    Ok(StoredCustomer {
        outage: id(row.get::<pgrx::Uuid>(1)?.expect("outage_id")),
        customer: id(row.get::<pgrx::Uuid>(2)?.expect("customer_id")),
        linked_at: row.get::<TimestampWithTimeZone>(3)?.map(time),
        restored_at: row.get::<TimestampWithTimeZone>(4)?.map(time),
    })
}

/// The area an outage row belongs to, as the loader names areas.
fn area_key(area: &Area) -> String {
    area.to_string()
}

/// What the batch knows before reading: each area's new inputs.
pub struct Batch<'a> {
    pub starts: Vec<AreaStart>,
    /// Sources new in this batch, per area.
    pub narrated: HashMap<Area, BTreeSet<SourceKey>>,
    pub lookback: Time,
    /// More power changes than this in an hour make a meter flapping: a meter with no more in
    /// all it is read for cannot be, and is not read.
    pub flap_threshold: usize,
    /// The places of the batch's own meters, read already: only older inputs' meters are read here.
    pub known: &'a HashMap<Id, Place>,
    /// Each area's declaration clock (`AreaInput::clock`).
    pub clocks: HashMap<Area, Time>,
}

/// Reads every area of the batch. An area's start moves earlier when a span or source it holds
/// was placed, before that start, in an outage that was never written (opened and merged in one
/// batch): the replay must begin before it was placed, where its outage can be rebuilt.
pub fn areas(client: &mut SpiClient<'_>, batch: &Batch) -> SpiResult<Vec<AreaInput>> {
    outage_cache::begin(client)?;
    let mut starts: BTreeMap<Area, AreaStart> =
        batch.starts.iter().map(|s| (s.area, s.clone())).collect();
    let mut stored = read_stored(client, &starts, batch.lookback)?;
    for _ in 0..4 {
        let mut moved = false;
        for (area, start) in starts.iter_mut() {
            let Some(rows) = stored.get(area) else {
                continue;
            };
            // Only outages opened from the start on can be such: most batches meet none, and
            // skip the area's thousands of spans.
            let opened: HashMap<Id, Time> = rows
                .outages
                .iter()
                .filter(|o| o.opened_at >= start.t0)
                .map(|o| (o.id, o.opened_at))
                .collect();
            if opened.is_empty() {
                continue;
            }
            let placed_early = rows
                .spans
                .iter()
                .filter(|s| {
                    s.off < start.t0 && opened.get(&s.origin).is_some_and(|&o| o >= start.t0)
                })
                .map(|s| s.off)
                .chain(
                    rows.sources
                        .iter()
                        .filter(|s| {
                            s.at < start.t0 && opened.get(&s.origin).is_some_and(|&o| o >= start.t0)
                        })
                        .map(|s| s.at),
                )
                .min();
            if let Some(earlier) = placed_early {
                start.t0 = earlier;
                moved = true;
            }
        }
        if !moved {
            break;
        }
        stored = read_stored(client, &starts, batch.lookback)?;
    }
    let inputs = read_inputs(client, &starts)?;
    let mut interruptions = read_interruptions(client, &starts, batch.lookback)?;
    let mut meters: BTreeSet<Id> = BTreeSet::new();
    // Meters that go off: the only ones a flapping or DP roll-up check asks about.
    let mut off_meters: BTreeSet<Id> = BTreeSet::new();
    for list in inputs.values() {
        for input in list {
            match input {
                Input::Meter(m) => {
                    meters.extend(m.meters.iter().copied());
                    if m.power == Power::Off {
                        off_meters.extend(m.meters.iter().copied());
                    }
                }
                Input::Alarm(a) => meters.extend(a.affected.iter().copied()),
            }
        }
    }
    let unknown: Vec<Id> = meters
        .iter()
        .filter(|m| !batch.known.contains_key(m))
        .copied()
        .collect();
    let mut places = super::registry_cache::places(client, &unknown)?;
    places.extend(
        meters
            .iter()
            .filter_map(|m| batch.known.get(m).map(|p| (*m, *p))),
    );
    let dps: BTreeSet<Id> = off_meters
        .iter()
        .filter_map(|m| places.get(m).and_then(|p| p.dp))
        .collect();
    let feeders: BTreeSet<Id> = places.values().filter_map(|p| p.feeder).collect();
    let (dp_active, feeder_active) = super::registry_cache::active(client, &dps, &feeders)?;
    let monitored: BTreeSet<Id> = counts(client, MONITORED, &feeders)?.into_keys().collect();
    let earliest = starts.values().map(|s| s.t0).min().unwrap_or(0);
    let power_changes = power_changes(
        client,
        &off_meters,
        earliest - 24 * super::model::HOUR,
        batch.flap_threshold,
    )?;
    let mut out = Vec::with_capacity(starts.len());
    for (area, start) in starts {
        let rows = stored.remove(&area).unwrap_or_default();
        let inputs = inputs.get(&area).cloned().unwrap_or_default();
        let mut area_meters: BTreeSet<Id> = BTreeSet::new();
        for input in &inputs {
            match input {
                Input::Meter(m) => area_meters.extend(m.meters.iter().copied()),
                Input::Alarm(a) => area_meters.extend(a.affected.iter().copied()),
            }
        }
        out.push(AreaInput {
            area: Some(area),
            interruptions: interruptions.remove(&area).unwrap_or_default(),
            logs: start.logs.clone(),
            clock: batch.clocks.get(&area).copied(),
            t0: start.t0,
            outages: rows.outages,
            spans: rows.spans,
            sources: rows.sources,
            customers: rows.customers,
            narrated: batch.narrated.get(&area).cloned().unwrap_or_default(),
            places: area_meters
                .iter()
                .filter_map(|m| places.get(m).map(|p| (*m, *p)))
                .collect(),
            dp_active: dp_active.clone(),
            feeder_active: feeder_active.clone(),
            monitored: monitored.clone(),
            power_changes: area_meters
                .iter()
                .filter_map(|m| power_changes.get(m).map(|t| (*m, t.clone())))
                .collect(),
            inputs,
        });
    }
    Ok(out)
}

/// One area's stored rows, as `decide` reads them.
#[derive(Default, Debug, Clone, PartialEq)]
struct StoredRows {
    outages: Vec<StoredOutage>,
    spans: Vec<Rc<StoredSpan>>,
    sources: Vec<Rc<StoredSource>>,
    customers: Vec<Rc<StoredCustomer>>,
}

/// The stored rows of some areas, as read (from the tables, or from what the worker keeps).
#[derive(Default, Clone)]
pub(super) struct Read {
    /// Each area read, and from when (`since`: its start less the look-back).
    pub areas: Vec<(Area, Time)>,
    /// The outages of the areas, each with the areas it belongs to.
    pub outages: Vec<(OutageRead, Vec<Area>)>,
    /// Every membership, source and customer row of those outages: shared with what the worker
    /// keeps (`outage_cache`), not copied.
    pub spans: Vec<Rc<StoredSpan>>,
    pub sources: Vec<Rc<StoredSource>>,
    pub customers: Vec<Rc<StoredCustomer>>,
    /// The other outages their spans and sources came from (merged since), read by id, and those
    /// asked for that the tables do not have (with no device).
    pub origins: Vec<OutageRead>,
    pub absent_origins: Vec<Id>,
}

impl Read {
    /// The outages the spans and sources came from that are not among `read` ones.
    pub fn origins_outside(&self, read: impl Fn(&Id) -> bool) -> BTreeSet<Id> {
        self.spans
            .iter()
            .map(|s| s.origin)
            .chain(self.sources.iter().map(|s| s.origin))
            .filter(|o| !read(o))
            .collect()
    }
}

/// Each area's stored rows. The worker keeps what it read and wrote (`outage_cache`): only the
/// areas it does not hold from early enough are read from the tables.
fn read_stored(
    client: &mut SpiClient<'_>,
    starts: &BTreeMap<Area, AreaStart>,
    lookback: Time,
) -> SpiResult<FxHashMap<Area, StoredRows>> {
    let areas: Vec<(Area, Time)> = starts
        .values()
        .map(|s| (s.area, s.t0.saturating_sub(lookback)))
        .collect();
    if !outage_cache::on() {
        return Ok(by_area(read_sql(client, &areas)?));
    }
    let missing = outage_cache::not_held(&areas);
    if !missing.is_empty() {
        outage_cache::keep_read(read_sql(client, &missing)?);
    }
    let Some(kept) = outage_cache::read(&areas) else {
        // Something an area needs is not held whole: read it all, and keep it from now on.
        let read = read_sql(client, &areas)?;
        let rows = by_area(read.clone());
        outage_cache::keep_read(read);
        return Ok(rows);
    };
    pgrx::debug1!(
        "oms_correlation: {} areas answered from kept outage rows, {} read first",
        areas.len(),
        missing.len()
    );
    let rows = by_area(kept);
    if cfg!(debug_assertions) {
        let stored = by_area(read_sql(client, &areas)?);
        if outage_cache::no_writer_since_begin(client)? {
            check_kept(&rows, stored);
        }
    }
    Ok(rows)
}

/// Debug builds (the tests) check every batch the worker decides from what it keeps against the
/// tables (unless another writer committed in between: then nothing kept is used again).
fn check_kept(kept: &FxHashMap<Area, StoredRows>, stored: FxHashMap<Area, StoredRows>) {
    let areas: BTreeSet<Area> = kept.keys().chain(stored.keys()).copied().collect();
    for area in areas {
        let stored = stored.get(&area).cloned().unwrap_or_default();
        let kept = kept.get(&area).cloned().unwrap_or_default();
        if kept != stored {
            pgrx::error!(
                "oms_correlation: the outage rows kept for {area} differ from the stored ones\nkept: {kept:?}\nstored: {stored:?}"
            );
        }
    }
}

/// Reads the areas' stored rows from the tables.
fn read_sql(client: &mut SpiClient<'_>, areas: &[(Area, Time)]) -> SpiResult<Read> {
    let (mut f, mut fsince) = (Vec::new(), Vec::new());
    let (mut s, mut ssince) = (Vec::new(), Vec::new());
    let (mut d, mut dsince) = (Vec::new(), Vec::new());
    let (mut u, mut usince) = (Vec::new(), Vec::new());
    for &(area, since) in areas {
        let since = ts(since);
        match area {
            Area::Feeder(feeder) => {
                f.push(pg(feeder));
                fsince.push(since);
            }
            Area::Substation(substation) => {
                s.push(pg(substation));
                ssince.push(since);
            }
            Area::Dp(dp) => {
                d.push(pg(dp));
                dsince.push(since);
            }
            Area::Service(service) => {
                u.push(Device::Service(service).to_string());
                usince.push(since);
            }
        }
    }
    let mut read = Read {
        areas: areas.to_vec(),
        ..Read::default()
    };
    let rows = read_outages(execute(
        client,
        OUTAGES,
        &[
            arg(f),
            arg(fsince),
            arg(s),
            arg(ssince),
            arg(d),
            arg(dsince),
            arg(u),
            arg(usince),
        ],
    )?)?;
    let mut index: HashMap<Id, usize> = HashMap::new();
    for row in rows {
        let Some(area) = row.area.as_deref().and_then(Area::parse) else {
            continue;
        };
        match index.get(&row.outage.id) {
            Some(&i) => read.outages[i].1.push(area),
            None => {
                index.insert(row.outage.id, read.outages.len());
                read.outages.push((row, vec![area]));
            }
        }
    }
    if read.outages.is_empty() {
        return Ok(read);
    }
    let loaded = || arg(ids(read.outages.iter().map(|(o, _)| o.outage.id)));
    for row in execute(client, SPANS, &[loaded()])? {
        read.spans.push(Rc::new(span(&row)?));
    }
    for row in execute(client, SOURCES, &[loaded()])? {
        read.sources.extend(source(&row)?.map(Rc::new));
    }
    for row in execute(client, CUSTOMERS, &[loaded()])? {
        read.customers.push(Rc::new(customer(&row)?));
    }
    let origins = read.origins_outside(|o| index.contains_key(o));
    read.origins = outages_by_id(client, origins.iter().copied())?;
    let found: BTreeSet<Id> = read.origins.iter().map(|o| o.outage.id).collect();
    read.absent_origins = origins.difference(&found).copied().collect();
    Ok(read)
}

/// Each area's rows: its outages, their spans, sources and customers, and the outages its spans
/// and sources came from.
fn by_area(read: Read) -> FxHashMap<Area, StoredRows> {
    let mut by_area: FxHashMap<Area, StoredRows> = FxHashMap::default();
    let mut area_of: FxHashMap<Id, Vec<Area>> = FxHashMap::default();
    for (row, areas) in read.outages {
        let id = row.outage.id;
        give(&mut by_area, &areas, &mut vec![row.outage], |r| {
            &mut r.outages
        });
        area_of.insert(id, areas);
    }
    // The areas of the outages outside the read that spans and sources came from (most rows
    // came from the outage that holds them: nothing to note).
    let outside: FxHashSet<Id> = read
        .origins
        .iter()
        .map(|o| o.outage.id)
        .filter(|id| !area_of.contains_key(id))
        .collect();
    let mut origins: FxHashMap<Id, BTreeSet<Area>> = FxHashMap::default();
    let areas_of = |outage: Id| area_of.get(&outage).map(Vec::as_slice).unwrap_or(&[]);
    if !outside.is_empty() {
        let spans = read.spans.iter().map(|s| (s.outage, s.origin));
        for (outage, origin) in spans.chain(read.sources.iter().map(|s| (s.outage, s.origin))) {
            if outside.contains(&origin) {
                origins.entry(origin).or_default().extend(areas_of(outage));
            }
        }
    }
    give_grouped(
        &mut by_area,
        read.spans,
        |s| s.outage,
        &areas_of,
        |r| &mut r.spans,
    );
    give_grouped(
        &mut by_area,
        read.sources,
        |s| s.outage,
        &areas_of,
        |r| &mut r.sources,
    );
    give_grouped(
        &mut by_area,
        read.customers,
        |c| c.outage,
        &areas_of,
        |r| &mut r.customers,
    );
    for row in read.origins {
        if area_of.contains_key(&row.outage.id) {
            continue;
        }
        let areas: Vec<Area> = origins
            .get(&row.outage.id)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        give(&mut by_area, &areas, &mut vec![row.outage], |r| {
            &mut r.outages
        });
    }
    // In one order whichever way they were read: the tables give theirs as stored. Ids compare
    // as integers (as bytes, they were a call to memcmp each).
    for rows in by_area.values_mut() {
        rows.outages.sort_by_key(|o| o.id.as_u128());
        rows.spans
            .sort_by_key(|s| (s.outage.as_u128(), s.meter.as_u128(), s.off));
        rows.sources
            .sort_by(|a, b| (a.outage.as_u128(), &a.key).cmp(&(b.outage.as_u128(), &b.key)));
        rows.customers
            .sort_by_key(|c| (c.outage.as_u128(), c.customer.as_u128()));
    }
    by_area
}

/// Gives rows to each of their areas: copies to all but the last, which takes them (most rows have
/// one area). `rows` is left empty.
fn give<T: Clone>(
    by_area: &mut FxHashMap<Area, StoredRows>,
    areas: &[Area],
    rows: &mut Vec<T>,
    list: fn(&mut StoredRows) -> &mut Vec<T>,
) {
    if let Some((last, others)) = areas.split_last() {
        for area in others {
            list(by_area.entry(*area).or_default()).extend(rows.iter().cloned());
        }
        list(by_area.entry(*last).or_default()).append(rows);
    }
    rows.clear();
}

/// Gives each row to the areas of its outage. Rows come grouped by outage (as the tables and the
/// kept rows give them), so each run of one outage's rows finds its areas' lists once, not once a
/// row (a storm batch: 160,000 spans, a few hundred outages).
fn give_grouped<'a, T: Clone>(
    by_area: &mut FxHashMap<Area, StoredRows>,
    rows: Vec<T>,
    outage_of: fn(&T) -> Id,
    areas_of: &impl Fn(Id) -> &'a [Area],
    list: fn(&mut StoredRows) -> &mut Vec<T>,
) {
    let mut rows = rows.into_iter().peekable();
    let mut run = Vec::new();
    while let Some(first) = rows.next() {
        let outage = outage_of(&first);
        run.push(first);
        while let Some(row) = rows.next_if(|r| outage_of(r) == outage) {
            run.push(row);
        }
        give(by_area, areas_of(outage), &mut run, list);
    }
}

fn read_inputs(
    client: &mut SpiClient<'_>,
    starts: &BTreeMap<Area, AreaStart>,
) -> SpiResult<HashMap<Area, Vec<Input>>> {
    let (areas, logs, t0s) = area_logs(starts);
    let mut inputs: HashMap<Area, Vec<Input>> = HashMap::new();
    // (area, time, kind, alarm, affected meters, its device: the area it was logged under)
    let mut alarms: Vec<(Area, Time, String, Id, Vec<Id>, Device)> = Vec::new();
    for row in execute(client, INPUTS, &[arg(areas), arg(logs), arg(t0s)])? {
        let Some(area) = row.get::<String>(1)?.as_deref().and_then(Area::parse) else {
            continue;
        };
        let at = time(row.get::<TimestampWithTimeZone>(2)?.expect("at"));
        let kind = row.get::<String>(3)?.unwrap_or_default();
        let Some(source) = row.get::<String>(4)?.as_deref().and_then(SourceKind::parse) else {
            continue;
        };
        let event_id = row.get::<String>(5)?.unwrap_or_default();
        let meters: Vec<Id> = row
            .get::<Vec<pgrx::Uuid>>(6)?
            .unwrap_or_default()
            .into_iter()
            .map(id)
            .collect();
        match kind.as_str() {
            "off" | "on" | "report" => {
                inputs
                    .entry(area)
                    .or_default()
                    .push(Input::Meter(MeterSignal {
                        at,
                        source: SourceKey::new(source, event_id),
                        power: Power::parse(&kind).expect("matched"),
                        meters,
                    }))
            }
            _ => {
                let Ok(alarm) = Id::parse_str(&event_id) else {
                    continue;
                };
                let device = match row.get::<String>(7)?.as_deref().and_then(Area::parse) {
                    Some(Area::Feeder(feeder)) => Device::Feeder(feeder),
                    Some(Area::Substation(substation)) => Device::Substation(substation),
                    _ => continue,
                };
                alarms.push((area, at, kind, alarm, meters, device));
            }
        }
    }
    if alarms.is_empty() {
        return Ok(inputs);
    }
    let mut details: HashMap<Id, AlarmDetails> = HashMap::new();
    let alarm_ids: BTreeSet<Id> = alarms.iter().map(|a| a.3).collect();
    for row in execute(client, ALARMS, &[arg(ids(alarm_ids))])? {
        details.insert(
            id(row.get::<pgrx::Uuid>(1)?.expect("scada_events.id")),
            AlarmDetails {
                severity: row.get::<String>(2)?,
                cause: row.get::<String>(3)?,
                event_type: row.get::<String>(4)?.unwrap_or_default(),
                substation_code: row.get::<String>(5)?.unwrap_or_default(),
                feeder_code: row.get::<String>(6)?,
                substation: row.get::<pgrx::Uuid>(7)?.map(id),
                latitude: row.get::<f64>(8)?,
                longitude: row.get::<f64>(9)?,
            },
        );
    }
    for (area, at, kind, alarm, affected, device) in alarms {
        let d = details.get(&alarm).cloned().unwrap_or_default();
        let description = match device {
            Device::Feeder(_) => format!(
                "SCADA {} on feeder {}",
                d.event_type,
                d.feeder_code.unwrap_or_default()
            ),
            _ => format!("SCADA {} on substation {}", d.event_type, d.substation_code),
        };
        inputs.entry(area).or_default().push(Input::Alarm(Alarm {
            at,
            id: alarm,
            restoration: kind == "restoration",
            device,
            substation: d.substation,
            affected,
            severity: d.severity,
            cause: d.cause,
            description,
            latitude: d.latitude,
            longitude: d.longitude,
        }));
    }
    Ok(inputs)
}

/// What an alarm's outage takes from its `scada_events` row.
#[derive(Debug, Clone, Default)]
struct AlarmDetails {
    severity: Option<String>,
    cause: Option<String>,
    event_type: String,
    substation_code: String,
    feeder_code: Option<String>,
    substation: Option<Id>,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

pub(super) fn counts(
    client: &mut SpiClient<'_>,
    sql: &'static str,
    devices: &BTreeSet<Id>,
) -> SpiResult<HashMap<Id, usize>> {
    let mut counts = HashMap::new();
    if devices.is_empty() {
        return Ok(counts);
    }
    for row in execute(client, sql, &[arg(ids(devices.iter().copied()))])? {
        let device = id(row.get::<pgrx::Uuid>(1)?.expect("device id"));
        counts.insert(device, row.get::<i64>(2)?.unwrap_or(0).max(0) as usize);
    }
    Ok(counts)
}

fn power_changes(
    client: &mut SpiClient<'_>,
    meters: &BTreeSet<Id>,
    since: Time,
    flap_threshold: usize,
) -> SpiResult<HashMap<Id, Vec<Time>>> {
    let mut changes = HashMap::new();
    if meters.is_empty() {
        return Ok(changes);
    }
    for row in execute(
        client,
        POWER_CHANGES,
        &[
            arg(ids(meters.iter().copied())),
            arg(ts(since)),
            arg(i64::try_from(flap_threshold).unwrap_or(i64::MAX)),
        ],
    )? {
        let meter = id(row.get::<pgrx::Uuid>(1)?.expect("meter_id"));
        let times = row
            .get::<Vec<TimestampWithTimeZone>>(2)?
            .unwrap_or_default()
            .into_iter()
            .map(time)
            .collect();
        changes.insert(meter, times);
    }
    Ok(changes)
}
