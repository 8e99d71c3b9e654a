//! The outage rows of the areas the worker correlates, kept between its batches. A storm's feeder
//! holds thousands of memberships and sources, and reading them all again for every batch was a
//! quarter of the worker's time in the storm replay (issue 21).
//!
//! Kept: every outage row the worker read or wrote; the memberships, sources and customers of each
//! outage read or made whole; and for each area, the `since` it was read from. An area asked for
//! from then on is answered from here, with the rows `load` would read from the tables.
//!
//! That holds while only the worker writes those tables. Every transaction that writes them leaves
//! its id in `oms_outage_writers` (sql/schema/12_outage_writers.sql): counted before a batch reads
//! anything and after it wrote, and again before the next batch, the rows tell whether anyone else
//! wrote in between. Any aborted (sub)transaction lets everything go too (`kept`). Debug builds
//! check every area answered from here against the tables (`load::read_stored`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use pgrx::spi::{SpiClient, SpiResult};

use super::kept;
use super::load::{self, OutageRead, Read};
use super::model::{
    Area, Device, Id, SourceKey, StoredCustomer, StoredOutage, StoredSource, StoredSpan, Time,
};
use super::write::Written;
use crate::db::execute;

// The writers' table itself (a new one after the extension is made again), how many writers it
// holds, and whether this transaction is one of them.
// Logical replication's apply fires no statement trigger: a worker on a subscriber of these tables
// keeps nothing between batches.
const WRITERS: &str = r#"
SELECT 'oms_outage_writers'::regclass::oid::int8, count(*),
       count(*) FILTER (WHERE w.xid = pg_catalog.txid_current_if_assigned()),
       EXISTS (SELECT FROM pg_catalog.pg_subscription_rel r
               WHERE r.srrelid = ANY ('{oms_outage_events, oms_outage_meters, oms_event_sources,
                                        oms_outage_customers}'::pg_catalog.regclass[]))
FROM oms_outage_writers w
"#;

// Committed writers are known once counted: the worker lets their rows go from time to time. How
// many went: one more than were counted just before committed in between, unseen.
const FORGET_WRITERS: &str =
    "WITH gone AS (DELETE FROM oms_outage_writers RETURNING 1) SELECT count(*) FROM gone";
const MOST_WRITERS: i64 = 1000;

/// The writers' table, its rows, and this transaction's own (0 or 1).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Writers {
    table: i64,
    rows: i64,
    own: i64,
    subscribed: bool,
}

impl Writers {
    /// Other writers than this transaction: as many as at `start`.
    fn none_since(&self, start: &Writers) -> bool {
        start.table == self.table && start.rows - start.own == self.rows - self.own
    }
}

/// Past this many rows the worker starts again: a bound on its memory (a row is a few hundred
/// bytes).
const MOST_ROWS: usize = 2_000_000;

struct KeptOutage {
    row: StoredOutage,
    /// When it merged or was restored, as the row says (`load::OutageRead::ends`).
    ends: Option<Time>,
    /// Its memberships, sources and customers are all here.
    whole: bool,
}

#[derive(Default)]
struct Kept {
    /// The writers' table and its rows as the worker's last batch left them (its own included).
    writers: Option<(i64, i64)>,
    /// As this batch found them, before it read anything.
    batch_start: Option<Writers>,
    aborts: u64,
    outages: HashMap<Id, KeptOutage>,
    // Shared with the batches that read them (`load::Read`): a batch takes counted references,
    // not copies.
    spans: HashMap<Id, BTreeMap<(Id, Time), Rc<StoredSpan>>>,
    sources: HashMap<Id, BTreeMap<SourceKey, Rc<StoredSource>>>,
    customers: HashMap<Id, BTreeMap<Id, Rc<StoredCustomer>>>,
    /// The outages kept of each area (`areas_of`).
    members: HashMap<Area, BTreeSet<Id>>,
    /// Outages spans or sources came from that the tables do not have (as `load` reads them).
    absent: BTreeSet<Id>,
    /// Each area held, and from when: every outage of it that ended since then, or is open.
    held: HashMap<Area, Time>,
    rows: usize,
}

impl Kept {
    /// Lets everything go (`aborts`: the abort count it starts under).
    fn start_again(&mut self, aborts: u64) {
        *self = Kept {
            aborts,
            ..Kept::default()
        };
    }

    /// Whether every outage of `area` that ended at or after `since`, or is open, is kept.
    fn holds(&self, area: Area, since: Time) -> bool {
        self.held.get(&area).is_some_and(|&held| held <= since)
    }
}

impl KeptOutage {
    fn read(&self) -> OutageRead {
        OutageRead {
            area: None,
            outage: self.row.clone(),
            ends: self.ends,
        }
    }
}

thread_local! {
    static KEPT: RefCell<Kept> = RefCell::new(Kept::default());
}

/// Only the worker keeps outage rows: it is the one that drains batch after batch.
pub fn on() -> bool {
    kept::between_drains()
}

/// Before a batch reads any outage row: starts again unless only the worker wrote since its last
/// batch, and no transaction aborted.
pub fn begin(client: &mut SpiClient<'_>) -> SpiResult<()> {
    if !on() {
        return Ok(());
    }
    let mut now = writers(client)?;
    let mut unseen = now.subscribed;
    if now.rows > MOST_WRITERS {
        let forgotten = execute(client, FORGET_WRITERS, &[])?
            .first()
            .get_one::<i64>()?
            .unwrap_or(0);
        unseen |= forgotten != now.rows;
    }
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        let aborts = kept::aborts();
        if unseen
            || aborts != kept.aborts
            || kept.writers != Some((now.table, now.rows))
            || kept.rows > MOST_ROWS
        {
            kept.start_again(aborts);
        }
        if now.rows > MOST_WRITERS {
            // Every row it could see went, its own too: any row counted from here on is a writer
            // after the delete (counting again here could count one it never checked for).
            now.rows = 0;
            now.own = 0;
        }
        kept.batch_start = Some(now);
    });
    Ok(())
}

/// The areas not held from early enough.
pub fn not_held(areas: &[(Area, Time)]) -> Vec<(Area, Time)> {
    KEPT.with(|kept| {
        let kept = kept.borrow();
        areas
            .iter()
            .filter(|&&(area, since)| !kept.holds(area, since))
            .copied()
            .collect()
    })
}

/// Keeps rows just read from the tables.
pub fn keep_read(read: Read) {
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        let kept = &mut *kept;
        for (row, _) in read.outages {
            let id = row.outage.id;
            keep_outage(kept, row, true);
            kept.spans.remove(&id);
            kept.sources.remove(&id);
            kept.customers.remove(&id);
        }
        for row in read.origins {
            keep_outage(kept, row, false);
        }
        kept.absent.extend(read.absent_origins);
        keep_rows(kept, read.spans, read.sources, read.customers);
        for (area, since) in read.areas {
            let held = kept.held.entry(area).or_insert(since);
            *held = (*held).min(since);
        }
    });
}

/// The areas' rows, if all of them are held whole.
pub fn read(areas: &[(Area, Time)]) -> Option<Read> {
    KEPT.with(|kept| {
        let kept = kept.borrow();
        let mut read = Read {
            areas: areas.to_vec(),
            ..Read::default()
        };
        let mut members: BTreeMap<Id, Vec<Area>> = BTreeMap::new();
        for &(area, since) in areas {
            if !kept.holds(area, since) {
                return None;
            }
            for id in kept.members.get(&area).into_iter().flatten() {
                let outage = &kept.outages[id];
                if outage.ends.is_none_or(|ends| ends >= since) {
                    if !outage.whole {
                        return None;
                    }
                    members.entry(*id).or_default().push(area);
                }
            }
        }
        for (id, areas) in members {
            read.outages.push((kept.outages[&id].read(), areas));
            read.spans.extend(
                kept.spans
                    .get(&id)
                    .into_iter()
                    .flat_map(|s| s.values().cloned()),
            );
            read.sources.extend(
                kept.sources
                    .get(&id)
                    .into_iter()
                    .flat_map(|s| s.values().cloned()),
            );
            read.customers.extend(
                kept.customers
                    .get(&id)
                    .into_iter()
                    .flat_map(|c| c.values().cloned()),
            );
        }
        let members: HashSet<Id> = read.outages.iter().map(|(o, _)| o.outage.id).collect();
        for origin in read.origins_outside(|o| members.contains(o)) {
            if kept.absent.contains(&origin) {
                continue;
            }
            read.origins.push(kept.outages.get(&origin)?.read());
        }
        Some(read)
    })
}

/// After a batch wrote: keeps what it wrote, if it was the only writer since it began.
pub fn written(client: &mut SpiClient<'_>, written: Written) -> SpiResult<()> {
    if !on() {
        return Ok(());
    }
    let outages = load::outages_by_id(client, written.outages.iter().copied())?;
    let now = writers(client)?;
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        let only_ours = kept
            .batch_start
            .take()
            .is_some_and(|start| now.none_since(&start));
        if !only_ours {
            let aborts = kept.aborts;
            kept.start_again(aborts);
            return;
        }
        kept.writers = Some((now.table, now.rows));
        let kept = &mut *kept;
        for row in outages {
            let new = written.new_outages.contains(&row.outage.id);
            keep_outage(kept, row, new);
        }
        for (outage, meter, off) in written.spans_gone {
            if let Some(spans) = kept.spans.get_mut(&outage) {
                spans.remove(&(meter, off));
            }
        }
        for (outage, key) in written.sources_gone {
            if let Some(sources) = kept.sources.get_mut(&outage) {
                sources.remove(&key);
            }
        }
        for (outage, customer) in written.customers_gone {
            if let Some(customers) = kept.customers.get_mut(&outage) {
                customers.remove(&customer);
            }
        }
        keep_rows(
            kept,
            written.spans.into_iter().map(Rc::new),
            written.sources.into_iter().map(Rc::new),
            written.customers.into_iter().map(Rc::new),
        );
    });
    Ok(())
}

/// An outage row read or written: whole if it was before, or if `whole` says so (read with all
/// its rows, or new).
fn keep_outage(kept: &mut Kept, row: OutageRead, whole: bool) {
    let id = row.outage.id;
    let was_whole = kept.outages.get(&id).is_some_and(|o| o.whole);
    kept.absent.remove(&id);
    for area in areas_of(&row.outage) {
        kept.members.entry(area).or_default().insert(id);
    }
    kept.outages.insert(
        id,
        KeptOutage {
            row: row.outage,
            ends: row.ends,
            whole: whole || was_whole,
        },
    );
}

fn keep_rows(
    kept: &mut Kept,
    spans: impl IntoIterator<Item = Rc<StoredSpan>>,
    sources: impl IntoIterator<Item = Rc<StoredSource>>,
    customers: impl IntoIterator<Item = Rc<StoredCustomer>>,
) {
    for span in spans {
        kept.rows += 1;
        kept.spans
            .entry(span.outage)
            .or_default()
            .insert((span.meter, span.off), span);
    }
    for source in sources {
        kept.rows += 1;
        kept.sources
            .entry(source.outage)
            .or_default()
            .insert(source.key.clone(), source);
    }
    for customer in customers {
        kept.rows += 1;
        kept.customers
            .entry(customer.outage)
            .or_default()
            .insert(customer.customer, customer);
    }
}

/// The areas an outage is one of (as `load::OUTAGES` reads them). Its device and places never
/// change (only another writer could, and then nothing is kept).
fn areas_of(outage: &StoredOutage) -> Vec<Area> {
    let mut areas: Vec<Area> = outage.feeder.map(Area::Feeder).into_iter().collect();
    areas.extend(outage.substation.map(Area::Substation));
    if areas.is_empty() {
        match (outage.dp, outage.device) {
            (Some(dp), _) => areas.push(Area::Dp(dp)),
            (None, Device::Service(service)) => areas.push(Area::Service(service)),
            _ => {}
        }
    }
    areas
}

/// Whether no other writer has committed since this batch began (debug builds' check of what is
/// kept asks before comparing: a writer in between makes them differ, and `written` lets it all
/// go).
pub fn no_writer_since_begin(client: &mut SpiClient<'_>) -> SpiResult<bool> {
    let now = writers(client)?;
    Ok(KEPT.with(|kept| {
        kept.borrow()
            .batch_start
            .is_some_and(|start| now.none_since(&start))
    }))
}

fn writers(client: &mut SpiClient<'_>) -> SpiResult<Writers> {
    let row = execute(client, WRITERS, &[])?.first();
    Ok(Writers {
        table: row.get::<i64>(1)?.unwrap_or(0),
        rows: row.get::<i64>(2)?.unwrap_or(0),
        own: row.get::<i64>(3)?.unwrap_or(0),
        subscribed: row.get::<bool>(4)?.unwrap_or(false),
    })
}
