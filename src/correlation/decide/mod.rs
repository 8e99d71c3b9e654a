//! Deciding an area's outages (SPEC §5), in plain Rust, with no SPI and no PostgreSQL types.
//!
//! `load` reads what an area's batch needs; [`decide`] rebuilds the area as it stood just before
//! the batch's earliest signal (`engine::Fold::at`), applies every input from then on in event-time
//! order (`engine`), and compares the result with what was stored (`reconcile`); `write` writes the
//! difference. Because every decision is taken at its input's own time, the outcome depends on the
//! inputs' times only: batch sizes, arrival order and late signals change how much is replayed,
//! never what comes out (the property tests in `tests` hold it to that).

pub mod engine;
pub mod reconcile;
pub mod rules;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use crate::correlation::model::{
    Area, Id, Input, Place, SourceKey, StoredCustomer, StoredInterruption, StoredOutage,
    StoredSource, StoredSpan, Time,
};
use engine::{Fold, Grid};
use reconcile::{reconcile, Decision, Stored};
use rules::Rules;

/// Everything one area's batch is decided from.
#[derive(Debug, Clone, Default)]
pub struct AreaInput {
    pub area: Option<Area>,
    /// The input logs it replays: its own, and for a whole substation each of its feeders'.
    pub logs: Vec<Area>,
    /// The earliest input that is new to the area: the replay starts here.
    pub t0: Time,
    /// Stored outages the replay may change (open, recently restored, or opened from `t0` on),
    /// and the merged ones their spans came from. Their rows are shared, not copied: the worker
    /// keeps them between batches, and a storm's feeder holds thousands.
    pub outages: Vec<StoredOutage>,
    pub spans: Vec<Rc<StoredSpan>>,
    pub sources: Vec<Rc<StoredSource>>,
    pub customers: Vec<Rc<StoredCustomer>>,
    /// Momentary interruptions begun before `t0` and over within the lookback: they have no rows,
    /// so the replay makes again the weak outages they were (a roll-up still weighs them).
    pub interruptions: Vec<StoredInterruption>,
    /// Every input of the area from `t0` on, old and new.
    pub inputs: Vec<Input>,
    /// The inputs this batch brings: their changes are announced and written to the timeline.
    pub narrated: BTreeSet<SourceKey>,
    pub places: HashMap<Id, Place>,
    pub dp_active: HashMap<Id, usize>,
    pub feeder_active: HashMap<Id, usize>,
    /// Feeders whose breakers report to SCADA: never predicted out.
    pub monitored: BTreeSet<Id>,
    pub power_changes: HashMap<Id, Vec<Time>>,
    /// Where event time has come to, for declaring weak outages (`Time::MAX`: declare them all,
    /// their wall-clock delay has passed); None: no outage is held.
    pub clock: Option<Time>,
}

/// Decides an area's batch: what to write.
pub fn decide(input: &AreaInput, rules: &Rules) -> Decision {
    let grid = Grid {
        places: &input.places,
        dp_active: &input.dp_active,
        feeder_active: &input.feeder_active,
        monitored: &input.monitored,
        power_changes: &input.power_changes,
    };
    let mut fold = Fold::at(
        rules,
        grid,
        input.t0,
        &input.outages,
        &input.spans,
        &input.sources,
    );
    fold.clock = input.clock;
    fold.restore_interruptions(&input.interruptions);
    let mut inputs = input.inputs.clone();
    fold.apply(&mut inputs, &input.narrated);
    let mut decision = reconcile(
        fold,
        &Stored {
            t0: input.t0,
            outages: &input.outages,
            spans: &input.spans,
            sources: &input.sources,
            customers: &input.customers,
        },
    );
    decision.area = input.area;
    decision.replayed = input.logs.clone();
    decision.interruptions_from = input.t0.saturating_sub(rules.lookback());
    decision
}
