//! Active meters per DP and per feeder (what a roll-up weighs, SPEC §5.3), kept in the backend
//! between batches. Counting them read the registry of every feeder a batch touched, on every
//! batch. They are counted again only when `oms_registry_generation` has moved (every statement
//! that can change a count moves it: sql/schema/11_registry_generation.sql) and after any
//! aborted transaction or subtransaction, whose uncommitted changes they may have counted.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use pgrx::pg_sys;
use pgrx::spi::{SpiClient, SpiResult};

use super::load::{id, pg};
use super::model::Id;
use crate::db::{arg, execute};

const DP_ACTIVE: &str = r#"
SELECT m.dp_id, count(*)::int8 FROM oms_meters m
WHERE m.dp_id = ANY ($1) AND m.status = 'active' GROUP BY m.dp_id
"#;

// A feeder's active meters: its own, those mapped to it, and its DPs' that name no feeder. Each
// part in one pass over all the feeders asked for (a subquery per feeder read the meters thrice).
const FEEDER_ACTIVE: &str = r#"
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

// The sequence itself (a new one after the extension is made again) and where it stands.
const GENERATION: &str = r#"
SELECT 'oms_registry_generation'::regclass::oid::int8, last_value, is_called FROM oms_registry_generation
"#;

#[derive(Default)]
struct Counts {
    generation: Option<(i64, i64, bool)>,
    dp: HashMap<Id, usize>,
    feeder: HashMap<Id, usize>,
}

thread_local! {
    static KEPT: RefCell<Counts> = RefCell::new(Counts::default());
    static CALLBACKS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Each DP's and each feeder's active meters (devices with none are left out).
pub fn active(
    client: &mut SpiClient<'_>,
    dps: &BTreeSet<Id>,
    feeders: &BTreeSet<Id>,
) -> SpiResult<(HashMap<Id, usize>, HashMap<Id, usize>)> {
    forget_on_abort();
    // Read before counting: a change that commits in between moves it past what is kept.
    let generation = execute(client, GENERATION, &[])?
        .first()
        .get_three::<i64, i64, bool>()?;
    let generation = match generation {
        (Some(oid), Some(value), Some(called)) => Some((oid, value, called)),
        _ => None,
    };
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.generation != generation || generation.is_none() {
            *kept = Counts {
                generation,
                ..Counts::default()
            };
        }
        let kept = &mut *kept;
        let dp = fill(client, DP_ACTIVE, dps, &mut kept.dp)?;
        let feeder = fill(client, FEEDER_ACTIVE, feeders, &mut kept.feeder)?;
        Ok((dp, feeder))
    })
}

/// Counts the devices not kept yet, then answers for all of them from what is kept.
fn fill(
    client: &mut SpiClient<'_>,
    sql: &'static str,
    devices: &BTreeSet<Id>,
    kept: &mut HashMap<Id, usize>,
) -> SpiResult<HashMap<Id, usize>> {
    let missing: Vec<Id> = devices
        .iter()
        .filter(|d| !kept.contains_key(d))
        .copied()
        .collect();
    if !missing.is_empty() {
        // A device the count finds no active meter of is kept as 0.
        kept.extend(missing.iter().map(|&d| (d, 0)));
        let missing: Vec<pgrx::Uuid> = missing.into_iter().map(pg).collect();
        for row in execute(client, sql, &[arg(missing)])? {
            let device = id(row.get::<pgrx::Uuid>(1)?.expect("device id"));
            kept.insert(device, row.get::<i64>(2)?.unwrap_or(0).max(0) as usize);
        }
    }
    Ok(devices
        .iter()
        .filter_map(|d| kept.get(d).filter(|&&n| n > 0).map(|&n| (*d, n)))
        .collect())
}

fn forget() {
    KEPT.with(|kept| *kept.borrow_mut() = Counts::default());
}

/// Registers, once per backend, the callbacks that drop the counts when a transaction or
/// subtransaction aborts.
fn forget_on_abort() {
    if CALLBACKS.with(|c| c.replace(true)) {
        return;
    }
    unsafe {
        pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
    }
}

unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _: *mut std::ffi::c_void) {
    if matches!(
        event,
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
    ) {
        forget();
    }
}

unsafe extern "C-unwind" fn on_subxact(
    event: pg_sys::SubXactEvent::Type,
    _: pg_sys::SubTransactionId,
    _: pg_sys::SubTransactionId,
    _: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        forget();
    }
}
