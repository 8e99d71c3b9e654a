//! What the correlator reads of the registry (`load` reads it), kept in the backend between
//! batches: where each meter hangs (its place) and how many active meters each DP and feeder has
//! (what a roll-up weighs, SPEC §5.3). Reading them again for every batch read the registry of every feeder the
//! batch touched. They are read again only when `oms_registry_generation` has moved (every
//! statement that can change a place or a count moves it, and the move commits with the change:
//! sql/schema/11_registry_generation.sql) and after any aborted transaction or subtransaction,
//! whose uncommitted changes they may hold.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use pgrx::spi::{SpiClient, SpiResult};

use super::kept;
use super::load::{self, DP_ACTIVE, FEEDER_ACTIVE};
use super::model::{Id, Place};
use crate::db::execute;

// The generation's table itself (a new one after the extension is made again) and its value.
// Logical replication's apply fires no statement trigger: a worker on a subscriber of the registry
// keeps nothing (no generation).
const GENERATION: &str = r#"
SELECT 'oms_registry_generation'::regclass::oid::int8, g.generation,
       EXISTS (SELECT FROM pg_catalog.pg_subscription_rel r
               WHERE r.srrelid = ANY ('{oms_meters, network_feeder_meters, network_substation_meters,
                                        network_distribution_points, network_feeders}'::pg_catalog.regclass[]))
FROM oms_registry_generation g WHERE g.id = 1
"#;

#[derive(Default)]
struct Kept {
    generation: Option<(i64, i64)>,
    aborts: u64,
    dp: HashMap<Id, usize>,
    feeder: HashMap<Id, usize>,
    places: HashMap<Id, Place>,
    /// `places` holds every meter of the registry (read at once, in the worker).
    every_place: bool,
    /// Times asked for places at this generation: the worker reads every place at the second, once
    /// the registry has stood still that long (one that changes all the time is read as before).
    asked: u32,
}

/// Past this many places the worker starts again: a bound on its memory (a meter's place is about
/// a hundred bytes).
const MOST_PLACES: usize = 500_000;

thread_local! {
    static KEPT: RefCell<Kept> = RefCell::new(Kept::default());
}

/// At the end of a drain: a backend other than the worker lets go of what it read.
pub fn drain_done() {
    if !kept::between_drains() {
        KEPT.with(|kept| *kept.borrow_mut() = Kept::default());
    }
}

/// Where each of these meters hangs (meters the registry does not have are left out).
pub fn places(client: &mut SpiClient<'_>, meters: &[Id]) -> SpiResult<HashMap<Id, Place>> {
    let generation = generation(client)?;
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        kept.keep_only(generation);
        kept.asked = kept.asked.saturating_add(1);
        // A storm brings meters never seen before in every batch: one read of the whole registry
        // (joined by hash) costs less than reading them a batch at a time (by key).
        if kept::between_drains() && !kept.every_place && kept.asked == 2 {
            if let Some(every) = load::read_every_place(client, MOST_PLACES)? {
                kept.places = every;
                kept.every_place = true;
            }
        }
        // Holding every place, a meter not kept is one the registry does not have.
        if !kept.every_place {
            if kept.places.len() + meters.len() > MOST_PLACES {
                kept.places.clear();
            }
            let missing: Vec<Id> = meters
                .iter()
                .filter(|m| !kept.places.contains_key(m))
                .copied()
                .collect();
            let read = load::read_places(client, &missing)?;
            kept.places.extend(read);
        }
        Ok(meters
            .iter()
            .filter_map(|m| kept.places.get(m).map(|p| (*m, *p)))
            .collect())
    })
}

/// Each DP's and each feeder's active meters (devices with none are left out).
pub fn active(
    client: &mut SpiClient<'_>,
    dps: &BTreeSet<Id>,
    feeders: &BTreeSet<Id>,
) -> SpiResult<(HashMap<Id, usize>, HashMap<Id, usize>)> {
    let generation = generation(client)?;
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        kept.keep_only(generation);
        let kept = &mut *kept;
        let dp = fill(client, DP_ACTIVE, dps, &mut kept.dp)?;
        let feeder = fill(client, FEEDER_ACTIVE, feeders, &mut kept.feeder)?;
        Ok((dp, feeder))
    })
}

impl Kept {
    /// Starts again unless what is kept was read at this generation, and no abort came since.
    fn keep_only(&mut self, generation: Option<(i64, i64)>) {
        let aborts = kept::aborts();
        if aborts != self.aborts || self.generation != generation || generation.is_none() {
            *self = Kept {
                generation,
                aborts,
                ..Kept::default()
            };
        }
    }
}

/// Where the registry generation stands. Read before the registry: a change that commits in
/// between moves it past what is then kept.
fn generation(client: &mut SpiClient<'_>) -> SpiResult<Option<(i64, i64)>> {
    let row = execute(client, GENERATION, &[])?.first();
    if row.get::<bool>(3)?.unwrap_or(false) {
        return Ok(None);
    }
    Ok(match row.get_two::<i64, i64>()? {
        (Some(table), Some(value)) => Some((table, value)),
        _ => None,
    })
}

/// Counts the devices not kept yet, then answers for all of them from what is kept.
fn fill(
    client: &mut SpiClient<'_>,
    sql: &'static str,
    devices: &BTreeSet<Id>,
    kept: &mut HashMap<Id, usize>,
) -> SpiResult<HashMap<Id, usize>> {
    let missing: BTreeSet<Id> = devices
        .iter()
        .filter(|d| !kept.contains_key(d))
        .copied()
        .collect();
    let counted = load::counts(client, sql, &missing)?;
    // A device the count finds no active meter of is kept as 0.
    kept.extend(
        missing
            .iter()
            .map(|d| (*d, counted.get(d).copied().unwrap_or(0))),
    );
    Ok(devices
        .iter()
        .filter_map(|d| kept.get(d).filter(|&&n| n > 0).map(|&n| (*d, n)))
        .collect())
}
