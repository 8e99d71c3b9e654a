//! The outage declaration delay between batches (issue 22). A weak outage (a service outage only
//! its meters' own last gasps speak for) is not written until `declaration_delay` has passed; the
//! decision part holds it (`engine::Declaration`), and this part keeps what the next batches need:
//!
//! - `oms_correlation_pending`: each area holding pending outages, from when (`since`: the next
//!   replay of the area starts there and makes them again) and when they fall due: in event time
//!   (`due_at`, against the newest event time correlated), or on the wall clock (`declare_by`, for
//!   a quiet network where event time stands still);
//! - `oms_momentary_interruptions`: the interruptions that were never outages, for MAIFI.

use std::collections::HashMap;

use pgrx::spi::{SpiClient, SpiResult};

use super::decide::reconcile::Decision;
use super::load::{pg, time, ts};
use super::model::{Area, Time};
use crate::db::{arg, execute};

/// An area holding pending outages, as a batch finds it.
#[derive(Debug, Clone)]
pub struct PendingArea {
    pub area: Area,
    pub since: Time,
    /// Its earliest pending outage's delay has passed in event time: replay it now.
    pub due: bool,
    /// ... or on the wall clock: replay it now, declaring every pending outage it holds.
    pub overdue: bool,
    pub declare_by: Time,
}

const PENDING: &str = r#"
SELECT area, since, due_at <= $1, declare_by <= pg_catalog.clock_timestamp(), declare_by
FROM oms_correlation_pending
"#;

/// Every area holding pending outages; `clock`: where event time has come to.
pub fn pending(client: &mut SpiClient<'_>, clock: Time) -> SpiResult<Vec<PendingArea>> {
    let mut areas = Vec::new();
    for row in execute(client, PENDING, &[arg(ts(clock))])? {
        let Some(area) = row.get::<String>(1)?.as_deref().and_then(Area::parse) else {
            continue;
        };
        let stamp = |i| -> SpiResult<Time> {
            Ok(row
                .get::<pgrx::datum::TimestampWithTimeZone>(i)?
                .map(time)
                .unwrap_or(Time::MAX))
        };
        areas.push(PendingArea {
            area,
            since: stamp(2)?,
            due: row.get::<bool>(3)?.unwrap_or(false),
            overdue: row.get::<bool>(4)?.unwrap_or(false),
            declare_by: stamp(5)?,
        });
    }
    Ok(areas)
}

const EVENT_CLOCK: &str = "SELECT newest_event_at FROM oms_correlation_state WHERE id = 1";

/// Where event time has come to: the newest event time correlated.
pub fn event_clock(client: &mut SpiClient<'_>) -> SpiResult<Time> {
    Ok(execute(client, EVENT_CLOCK, &[])?
        .first()
        .get_one::<pgrx::datum::TimestampWithTimeZone>()?
        .map(time)
        .unwrap_or(Time::MIN))
}

/// Whether any area holds outages the declaration delay has not let out yet.
pub fn any_held(client: &mut SpiClient<'_>) -> SpiResult<bool> {
    Ok(execute(
        client,
        "SELECT EXISTS (SELECT FROM oms_correlation_pending)",
        &[],
    )?
    .first()
    .get_one::<bool>()?
    .unwrap_or(false))
}

/// Whether an area's pending outages fall due, with no signal queued to bring it.
pub fn any_due(client: &mut SpiClient<'_>) -> SpiResult<bool> {
    let clock = event_clock(client)?;
    Ok(pending(client, clock)?.iter().any(|p| p.due || p.overdue))
}

// Every decided area's rows go (its own, and its logs' when it was replayed as a whole
// substation), but those still holding pending outages, which are set anew. The wall-clock
// deadline stays while the earliest held outage is the same one (a busy area must not push it on);
// a newer one gets its own.
const RECORD_PENDING: &str = r#"
WITH gone AS (DELETE FROM oms_correlation_pending WHERE area = ANY ($1) AND area <> ALL ($2))
INSERT INTO oms_correlation_pending AS p (area, since, due_at, declare_by)
SELECT n.area, n.since, n.since + pg_catalog.make_interval(secs => $4),
       coalesce(n.declare_by, pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => $4))
FROM unnest($2::text[], $3::timestamptz[], $5::timestamptz[]) AS n(area, since, declare_by)
ON CONFLICT (area) DO UPDATE
SET since = EXCLUDED.since, due_at = EXCLUDED.due_at,
    declare_by = CASE WHEN p.since = EXCLUDED.since THEN least(p.declare_by, EXCLUDED.declare_by)
                      ELSE pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => $4) END
"#;

/// Records which decided areas hold pending outages now. `found`: the rows the batch read.
pub fn record_pending(
    client: &mut SpiClient<'_>,
    decisions: &[Decision],
    found: &[PendingArea],
    delay: Time,
) -> SpiResult<()> {
    let mut cleared: Vec<String> = Vec::new();
    let (mut areas, mut since, mut declare_by) = (Vec::new(), Vec::new(), Vec::new());
    for d in decisions {
        let Some(area) = d.area else { continue };
        let own: Vec<Area> = std::iter::once(area)
            .chain(d.replayed.iter().copied())
            .collect();
        cleared.extend(own.iter().map(|a| a.to_string()));
        if let Some(t) = d.pending_since {
            areas.push(area.to_string());
            since.push(ts(t));
            // The same earliest held outage keeps its deadline (under whichever of its logs).
            declare_by.push(
                found
                    .iter()
                    .filter(|p| own.contains(&p.area) && p.since == t)
                    .map(|p| p.declare_by)
                    .min()
                    .map(ts),
            );
        }
    }
    // Nothing was held and nothing is: no row to touch.
    if cleared.is_empty() || (found.is_empty() && areas.is_empty()) {
        return Ok(());
    }
    execute(
        client,
        RECORD_PENDING,
        &[
            arg(cleared),
            arg(areas),
            arg(since),
            arg(delay as f64 / 1e6),
            arg(declare_by),
        ],
    )?;
    Ok(())
}

// By each area's key (`oms_momentary_interruptions_area_restored`; as `load::INPUTS` reads the
// log): a join with the areas read the whole table, which is kept for good.
const CLEAR_INTERRUPTIONS: &str = r#"
DELETE FROM oms_momentary_interruptions m
WHERE m.id = ANY (ARRAY(SELECT i.id FROM unnest($1::text[], $2::timestamptz[]) AS r(area, since)
                        CROSS JOIN LATERAL (SELECT x.id FROM oms_momentary_interruptions x
                                            WHERE x.area = r.area AND x.restored_at >= r.since
                                              AND x.restored_at <= 'infinity' OFFSET 0) AS i))
"#;

const INSERT_INTERRUPTIONS: &str = r#"
INSERT INTO oms_momentary_interruptions
    (meter_id, customer_id, dp_id, feeder_id, substation_id, area, interrupted_at, restored_at,
     source_type, source_event_id, onu_id)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[],
                     $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[], $11::int[])
ON CONFLICT (meter_id, interrupted_at) DO UPDATE
SET restored_at = EXCLUDED.restored_at, area = EXCLUDED.area,
    source_type = EXCLUDED.source_type, source_event_id = EXCLUDED.source_event_id
"#;

/// The replays' momentary interruptions replace the stored ones of what they replayed (those they
/// read, and those they made again: over since `interruptions_from`).
pub fn write_interruptions(client: &mut SpiClient<'_>, decisions: &[Decision]) -> SpiResult<()> {
    let (mut areas, mut t0s) = (Vec::new(), Vec::new());
    for d in decisions {
        for area in &d.replayed {
            areas.push(area.to_string());
            t0s.push(ts(d.interruptions_from));
        }
    }
    if !areas.is_empty() {
        execute(client, CLEAR_INTERRUPTIONS, &[arg(areas), arg(t0s)])?;
    }
    let all: Vec<_> = decisions.iter().flat_map(|d| &d.interruptions).collect();
    if all.is_empty() {
        return Ok(());
    }
    let uuid = |f: &dyn Fn(&super::decide::reconcile::Interruption) -> Option<super::model::Id>| {
        all.iter().map(|i| f(i).map(pg)).collect::<Vec<_>>()
    };
    execute(
        client,
        INSERT_INTERRUPTIONS,
        &[
            arg(uuid(&|i| Some(i.meter))),
            arg(uuid(&|i| i.place.customer)),
            arg(uuid(&|i| i.place.dp)),
            arg(uuid(&|i| i.place.feeder)),
            arg(uuid(&|i| i.place.substation)),
            arg(all
                .iter()
                .map(|i| i.place.area().to_string())
                .collect::<Vec<_>>()),
            arg(all.iter().map(|i| ts(i.off)).collect::<Vec<_>>()),
            arg(all.iter().map(|i| ts(i.on)).collect::<Vec<_>>()),
            arg(all
                .iter()
                .map(|i| i.source.kind.as_str().to_string())
                .collect::<Vec<_>>()),
            arg(all
                .iter()
                .map(|i| i.source.event_id.to_string())
                .collect::<Vec<_>>()),
            arg(all.iter().map(|i| i.place.onu).collect::<Vec<_>>()),
        ],
    )?;
    Ok(())
}

/// Each decided area's declaration clock: where event time has come to, or the end of time for an
/// area whose wall-clock deadline passed.
pub fn clocks(
    targets: impl IntoIterator<Item = (Area, Vec<Area>)>,
    found: &[PendingArea],
    clock: Time,
) -> HashMap<Area, Time> {
    targets
        .into_iter()
        .map(|(area, logs)| {
            let overdue = found
                .iter()
                .any(|p| p.overdue && (p.area == area || logs.contains(&p.area)));
            (area, if overdue { Time::MAX } else { clock })
        })
        .collect()
}
