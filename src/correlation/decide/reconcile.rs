//! From a replayed area to what must be written: the replay's new outages take the ids of the
//! stored outages they are (same device, overlapping in time), and every row is compared with its
//! stored self, so that only what changed is written and announced.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

// Maps over a batch's spans and rows, keyed by ids and times: a fast hash.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use super::engine::{
    Change, Declaration, Fold, Life, Note, Outage, Placement, Span, Src, TurnedOn,
};
use crate::correlation::model::{
    Area, Device, Id, Place, SourceKey, StoredCustomer, StoredOutage, StoredSource, StoredSpan,
    StoredStatus, Time,
};

/// An outage row as the batch leaves it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutageRow {
    pub id: Id,
    /// Set for a new row; an existing row keeps its own.
    pub event_id: Option<String>,
    pub status: &'static str,
    pub severity: Option<String>,
    pub cause: Option<String>,
    pub description: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Rounded to the column's two places.
    pub confidence: f64,
    pub affected_customers: i32,
    pub customers_out: i32,
    pub device: Device,
    pub dp: Option<Id>,
    pub feeder: Option<Id>,
    pub substation: Option<Id>,
    pub start: Time,
    pub opened_at: Time,
    pub restored_at: Option<Time>,
    pub merged_into: Option<Id>,
    pub merged_at: Option<Time>,
    pub parent: Option<Id>,
    pub placement: Placement,
    pub is_new: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpanRow {
    pub outage: Id,
    pub origin: Id,
    pub meter: Id,
    pub off: Time,
    pub on: Option<Time>,
    pub first_source: SourceKey,
    pub place: Place,
    pub suspected: bool,
}

/// A stored span that changes: found by its stored key.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanUpdate {
    pub stored_outage: Id,
    pub row: SpanRow,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    pub outage: Id,
    pub origin: Id,
    pub key: SourceKey,
    pub at: Time,
    pub weight: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceUpdate {
    pub stored_outage: Id,
    pub row: SourceRow,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRow {
    pub outage: Id,
    pub customer: Id,
    pub linked_at: Time,
    pub restored_at: Option<Time>,
}

/// A row of `oms_event_timeline`.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRow {
    pub outage: Id,
    pub event_type: &'static str,
    pub status: &'static str,
    pub description: String,
    pub source: String,
    pub at: Time,
    pub metadata: serde_json::Value,
}

/// One outage's announcement of a batch: its final state and its changes, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Announced {
    pub outage: Id,
    pub changes: Vec<&'static str>,
    pub source: Option<SourceKey>,
    /// When the batch first changed it: announcements go out in this order.
    pub first_change: Time,
}

/// A stored outage the replay no longer has: it went into `into` (merged), or nowhere
/// (withdrawn, `cancelled`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retired {
    pub id: Id,
    pub into: Option<Id>,
    /// Why a withdrawn one was never an outage, where the replay knows.
    pub why: Option<Withdrawal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// Its meters came back within the declaration delay: a momentary interruption.
    Momentary,
    /// It rested on a call whose meter reported after it (the meter-report veto).
    CallAnswered,
}

/// A meter's momentary interruption that was never an outage (issue 22): a weak outage whose
/// meters all came back within `declaration_delay`. Counted in MAIFI.
#[derive(Debug, Clone, PartialEq)]
pub struct Interruption {
    pub meter: Id,
    pub place: Place,
    pub off: Time,
    pub on: Time,
    pub source: SourceKey,
}

/// Everything an area's batch writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub outages: Vec<OutageRow>,
    pub retired: Vec<Retired>,
    pub span_inserts: Vec<SpanRow>,
    pub span_updates: Vec<SpanUpdate>,
    /// (outage, meter, off) of stored spans that go.
    pub span_deletes: Vec<(Id, Id, Time)>,
    pub source_inserts: Vec<SourceRow>,
    pub source_updates: Vec<SourceUpdate>,
    pub source_deletes: Vec<(Id, SourceKey)>,
    pub customer_upserts: Vec<CustomerRow>,
    pub customer_deletes: Vec<(Id, Id)>,
    pub timeline: Vec<TimelineRow>,
    pub announced: Vec<Announced>,
    pub turned_on: Vec<TurnedOn>,
    /// Each alarm of the batch's replay, and the outage it belongs to.
    pub alarm_outages: Vec<(Id, Id)>,
    pub alarm_restored: Vec<(Id, Vec<Id>)>,
    /// The replay's momentary interruptions: they replace the stored ones of the replayed logs
    /// (`replayed`) over since `interruptions_from`.
    pub interruptions: Vec<Interruption>,
    /// The earliest start of the area's pending outages: the next replay of the area starts there,
    /// so that it makes them again (they have no rows to start from).
    pub pending_since: Option<Time>,
    /// The area decided and the input logs it replayed (set by `decide`).
    pub area: Option<Area>,
    pub replayed: Vec<Area>,
    /// The replay's interruptions replace the stored ones of its logs over since then (the ones
    /// it read, and the ones it made again).
    pub interruptions_from: Time,
}

/// What was stored before the batch, for the comparison.
pub struct Stored<'a> {
    pub t0: Time,
    pub outages: &'a [StoredOutage],
    pub spans: &'a [Rc<StoredSpan>],
    pub sources: &'a [Rc<StoredSource>],
    pub customers: &'a [Rc<StoredCustomer>],
}

fn status(o: &Outage) -> &'static str {
    match o.life {
        Life::Merged { .. } => "merged",
        Life::Restored(_) => "restored",
        Life::Open if o.in_progress => "in_progress",
        Life::Open if o.confirmed => "confirmed",
        Life::Open => "detected",
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The stored outages the replay made again (opened from `t0` on): each new outage of the fold
/// takes the id of the stored one on its device that opened at the same time, else of the one it
/// overlaps most. Returns new id -> stored id.
fn match_identities(fold: &Fold<'_>, stored: &Stored<'_>) -> BTreeMap<Id, Id> {
    let mut candidates: BTreeMap<Device, Vec<&StoredOutage>> = BTreeMap::new();
    for o in stored.outages {
        if o.opened_at >= stored.t0 && o.status != StoredStatus::Closed {
            candidates.entry(o.device).or_default().push(o);
        }
    }
    let mut fresh: BTreeMap<Device, Vec<&Outage>> = BTreeMap::new();
    for o in fold.outages.values().filter(|o| !o.existed) {
        fresh.entry(o.device).or_default().push(o);
    }
    let end_of = |life: Life| match life {
        Life::Open => Time::MAX,
        Life::Restored(at) | Life::Merged { at, .. } => at,
    };
    let mut taken: BTreeSet<Id> = BTreeSet::new();
    let mut mapping = BTreeMap::new();
    for (device, news) in &mut fresh {
        let Some(olds) = candidates.get(device) else {
            continue;
        };
        news.sort_by_key(|o| (o.opened_at, o.id));
        for new in news.iter() {
            if let Some(old) = olds
                .iter()
                .find(|old| old.opened_at == new.opened_at && !taken.contains(&old.id))
            {
                taken.insert(old.id);
                mapping.insert(new.id, old.id);
            }
        }
        let unmatched: Vec<&&Outage> = news
            .iter()
            .filter(|n| !mapping.contains_key(&n.id))
            .collect();
        for new in unmatched {
            let (new_from, new_until) = (new.start, end_of(new.life));
            let best = olds
                .iter()
                .filter(|old| !taken.contains(&old.id))
                .map(|old| {
                    let until = old.merged_at.or(old.restored_at).unwrap_or(Time::MAX);
                    let overlap = new_until.min(until).saturating_sub(new_from.max(old.start));
                    (overlap, old)
                })
                .filter(|(overlap, _)| *overlap > 0)
                .max_by_key(|(overlap, old)| (*overlap, std::cmp::Reverse(old.opened_at)));
            if let Some((_, old)) = best {
                taken.insert(old.id);
                mapping.insert(new.id, old.id);
            }
        }
    }
    mapping
}

/// Turns a replayed fold into the area's writes.
pub fn reconcile(mut fold: Fold<'_>, stored: &Stored<'_>) -> Decision {
    let mapping = match_identities(&fold, stored);
    // Weak outages not (yet) declared are not written: a pending one until its delay passes (one
    // written already stays), a momentary one never (one written before its meter's power-on came
    // late is withdrawn); its meters' interruptions are recorded instead.
    let answered = std::mem::take(&mut fold.answered);
    let mut hidden: BTreeSet<Id> = BTreeSet::new();
    let mut interruptions = Vec::new();
    let mut pending_since: Option<Time> = None;
    for o in fold.outages.values() {
        match fold.declaration(o) {
            Declaration::Pending if !mapping.contains_key(&o.id) => {
                hidden.insert(o.id);
                pending_since = Some(pending_since.map_or(o.start, |t| t.min(o.start)));
            }
            Declaration::Momentary => {
                hidden.insert(o.id);
                for &i in &o.spans {
                    let span = &fold.spans[i];
                    interruptions.push(Interruption {
                        meter: span.meter,
                        place: span.place,
                        off: span.off,
                        on: span.on.unwrap_or(span.off),
                        source: span.first_source.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    let remap = |id: Id| mapping.get(&id).copied().unwrap_or(id);
    let hidden_rows: BTreeSet<Id> = hidden.iter().map(|&id| remap(id)).collect();
    let stored_ids: BTreeSet<Id> = stored
        .outages
        .iter()
        .filter(|o| o.status != StoredStatus::Closed)
        .map(|o| o.id)
        .collect();
    // Outages opened and merged within this batch are never written: whatever pointed at them
    // points at what they went into.
    let mut unwritten: BTreeMap<Id, Id> = BTreeMap::new();
    for o in fold.outages.values() {
        if let (false, Life::Merged { into, .. }) =
            (o.existed || mapping.contains_key(&o.id), o.life)
        {
            unwritten.insert(o.id, into);
        }
    }
    let settle = |mut id: Id| {
        for _ in 0..64 {
            match unwritten.get(&id) {
                Some(&into) => id = into,
                None => break,
            }
        }
        remap(id)
    };
    let outages: BTreeMap<Id, Outage> = std::mem::take(&mut fold.outages)
        .into_values()
        .filter(|o| !unwritten.contains_key(&o.id) && !hidden.contains(&o.id))
        .map(|mut o| {
            o.id = remap(o.id);
            o.parent = o.parent.filter(|p| !hidden.contains(p)).map(settle);
            if let Life::Merged { into, at } = o.life {
                o.life = Life::Merged {
                    into: settle(into),
                    at,
                };
            }
            for src in o.sources.values_mut() {
                src.origin = settle(src.origin);
            }
            for note in &mut o.notes {
                if let Change::Merged { into } = &mut note.change {
                    *into = settle(*into);
                }
                if let Change::Absorbed { victims, .. } = &mut note.change {
                    victims.retain(|v| !unwritten.contains_key(v));
                    for v in victims.iter_mut() {
                        *v = remap(*v);
                    }
                }
            }
            // Taking in only outages that were never written is nothing to tell.
            o.notes.retain(
                |n| !matches!(&n.change, Change::Absorbed { victims, .. } if victims.is_empty()),
            );
            (o.id, o)
        })
        .collect();
    // The fold's own spans, settled where their outages went (no copy: the fold is done with them).
    let mut spans: Vec<Span> = std::mem::take(&mut fold.spans);
    spans.retain(|s| !hidden.contains(&s.outage));
    for span in &mut spans {
        span.outage = settle(span.outage);
        span.origin = settle(span.origin);
    }
    // The replay's spans of each meter: only a retired outage asks (most batches retire none).
    let by_meter: std::cell::OnceCell<HashMap<Id, Vec<&Span>>> = std::cell::OnceCell::new();
    let by_meter = || {
        by_meter.get_or_init(|| {
            let mut by_meter: HashMap<Id, Vec<&Span>> = HashMap::default();
            for span in &spans {
                by_meter.entry(span.meter).or_default().push(span);
            }
            by_meter
        })
    };
    let mut decision = Decision {
        turned_on: fold.turned_on.clone(),
        alarm_outages: fold
            .alarm_outage
            .iter()
            .map(|(&alarm, &outage)| (alarm, settle(outage)))
            .collect(),
        alarm_restored: fold
            .alarm_restored
            .iter()
            .map(|(&alarm, ids)| {
                let written = ids.iter().filter(|id| !hidden.contains(id));
                (alarm, written.map(|&id| settle(id)).collect())
            })
            .collect(),
        interruptions,
        pending_since,
        ..Decision::default()
    };

    // Spans. One the fold read from a stored row is compared with that row; one the replay made
    // is looked up, by (meter, off) (a meter is out in one span at a time), among the stored rows
    // no span was read from. A storm's outages hold thousands of rows the replay never touches:
    // they are checked in place, not hashed.
    let read_from = |span: &Span| {
        span.row.filter(|&i| {
            stored
                .spans
                .get(i)
                .is_some_and(|old| old.meter == span.meter && old.off == span.off)
        })
    };
    let mut read_back = vec![false; stored.spans.len()];
    for i in spans.iter().filter_map(read_from) {
        read_back[i] = true;
    }
    // What the shortcut rests on, checked in debug builds (the tests): no two of the fold's spans
    // share a meter and a time off, so a span read back is the only one its row could match.
    if cfg!(debug_assertions) {
        let mut keys: HashSet<(Id, Time)> = HashSet::default();
        for span in &spans {
            assert!(
                keys.insert((span.meter, span.off)),
                "two spans of the replay share meter {} and time off {}",
                span.meter,
                span.off
            );
        }
    }
    let mut stored_spans: HashMap<(Id, Time), &StoredSpan> = HashMap::default();
    stored_spans.extend(
        stored
            .spans
            .iter()
            .enumerate()
            .filter(|&(i, s)| !read_back[i] && stored_ids.contains(&s.outage))
            .map(|(_, s)| ((s.meter, s.off), &**s)),
    );
    let mut kept: HashSet<(Id, Time)> = HashSet::default();
    let mut touched: BTreeSet<Id> = BTreeSet::new();
    let row_of = |span: &Span| SpanRow {
        outage: span.outage,
        origin: span.origin,
        meter: span.meter,
        off: span.off,
        on: span.on,
        first_source: span.first_source.clone(),
        place: span.place,
        suspected: span.suspected,
    };
    for span in &spans {
        let old = match read_from(span) {
            Some(i) => {
                debug_assert!(stored_ids.contains(&stored.spans[i].outage));
                Some(&*stored.spans[i])
            }
            None => {
                kept.insert((span.meter, span.off));
                stored_spans.get(&(span.meter, span.off)).copied()
            }
        };
        match old {
            Some(old) => {
                if old.outage != span.outage
                    || old.origin != span.origin
                    || old.on != span.on
                    || old.first_source != span.first_source
                    || old.suspected != span.suspected
                {
                    touched.insert(old.outage);
                    touched.insert(span.outage);
                    decision.span_updates.push(SpanUpdate {
                        stored_outage: old.outage,
                        row: row_of(span),
                    });
                }
            }
            None => {
                touched.insert(span.outage);
                decision.span_inserts.push(row_of(span));
            }
        }
    }
    for (key, old) in &stored_spans {
        if !kept.contains(key) {
            touched.insert(old.outage);
            decision.span_deletes.push((old.outage, old.meter, old.off));
        }
    }
    // In one order, not the hash table's (which its growth decides).
    decision
        .span_deletes
        .sort_unstable_by_key(|&(outage, meter, off)| (outage.as_u128(), meter.as_u128(), off));

    // Sources, by (outage, key): a stored row whose source now belongs to another outage moves
    // there (an update), rather than being deleted and added. One still in the outage of the row
    // the fold read it from is compared with that row, as spans are.
    let source_read_from = |outage: Id, key: &SourceKey, src: &Src| {
        src.row.filter(|&i| {
            stored
                .sources
                .get(i)
                .is_some_and(|old| old.outage == outage && old.key == *key)
        })
    };
    let mut sources_read_back = vec![false; stored.sources.len()];
    for o in outages.values().filter(|o| stored_ids.contains(&o.id)) {
        for (key, src) in &o.sources {
            if let Some(i) = source_read_from(o.id, key, src) {
                sources_read_back[i] = true;
            }
        }
    }
    let mut stored_sources: HashMap<(Id, &SourceKey), &StoredSource> = HashMap::default();
    stored_sources.extend(
        stored
            .sources
            .iter()
            .enumerate()
            .filter(|&(i, s)| !sources_read_back[i] && stored_ids.contains(&s.outage))
            .map(|(_, s)| ((s.outage, &s.key), &**s)),
    );
    let mut to_place: BTreeMap<SourceKey, Vec<SourceRow>> = BTreeMap::new();
    let mut kept_sources: HashSet<(Id, &SourceKey)> = HashSet::default();
    for o in outages.values() {
        let in_stored = stored_ids.contains(&o.id);
        for (key, src) in &o.sources {
            let row = SourceRow {
                outage: o.id,
                origin: src.origin,
                key: key.clone(),
                at: src.at,
                weight: src.weight,
            };
            let read_back = if in_stored {
                source_read_from(o.id, key, src)
            } else {
                None
            };
            let old = match read_back {
                Some(i) => Some(&*stored.sources[i]),
                None => stored_sources.get(&(o.id, key)).copied().inspect(|old| {
                    kept_sources.insert((o.id, &old.key));
                }),
            };
            match old {
                Some(old) => {
                    if old.origin != row.origin
                        || old.at != row.at
                        || !same_weight(old.weight, row.weight)
                    {
                        decision.source_updates.push(SourceUpdate {
                            stored_outage: old.outage,
                            row,
                        });
                    }
                }
                None => {
                    touched.insert(o.id);
                    to_place.entry(key.clone()).or_default().push(row);
                }
            }
        }
    }
    let mut to_remove: BTreeMap<SourceKey, Vec<Id>> = BTreeMap::new();
    // In (outage, key) order, as `load` gives the stored rows.
    let mut removed: Vec<(Id, &SourceKey)> = stored_sources
        .keys()
        .filter(|k| !kept_sources.contains(k))
        .copied()
        .collect();
    removed.sort_unstable();
    for (outage, key) in removed {
        touched.insert(outage);
        to_remove.entry(key.clone()).or_default().push(outage);
    }
    for (key, rows) in to_place {
        let mut freed = to_remove.remove(&key).unwrap_or_default();
        for row in rows {
            match freed.pop() {
                Some(stored_outage) => decision
                    .source_updates
                    .push(SourceUpdate { stored_outage, row }),
                None => decision.source_inserts.push(row),
            }
        }
        for outage in freed {
            decision.source_deletes.push((outage, key.clone()));
        }
    }
    for (key, outages) in to_remove {
        for outage in outages {
            decision.source_deletes.push((outage, key.clone()));
        }
    }

    // Outage rows.
    let stored_rows: HashMap<Id, &StoredOutage> =
        stored.outages.iter().map(|o| (o.id, o)).collect();
    // Each outage's spans, by customer key: counted and folded into customer rows in one pass
    // each (an outage of a storm holds thousands).
    let mut by_outage: HashMap<Id, Vec<(u128, &Span)>> = outages
        .values()
        .map(|o| (o.id, Vec::with_capacity(o.spans.len())))
        .collect();
    for span in &spans {
        let key = span.place.customer_key().as_u128();
        by_outage.entry(span.outage).or_default().push((key, span));
    }
    for list in by_outage.values_mut() {
        list.sort_unstable_by_key(|&(key, _)| key);
    }
    let mut changed: BTreeSet<Id> = BTreeSet::new();
    for o in outages.values() {
        let own = by_outage.get(&o.id).map(Vec::as_slice).unwrap_or(&[]);
        let keys = distinct_in_order(own.iter().map(|&(key, _)| key));
        let out = distinct_in_order(
            own.iter()
                .filter(|(_, s)| s.on.is_none())
                .map(|&(key, _)| key),
        );
        let affected = o.merged_customers.unwrap_or(keys);
        let row = OutageRow {
            id: o.id,
            event_id: None,
            status: status(o),
            severity: o.severity.clone(),
            cause: o.cause.clone(),
            description: (!o.description.is_empty()).then(|| o.description.clone()),
            latitude: o.latitude,
            longitude: o.longitude,
            confidence: round2(o.confidence()),
            affected_customers: i32::try_from(affected).unwrap_or(i32::MAX),
            customers_out: if o.is_open() { out as i32 } else { 0 },
            device: o.device,
            dp: o.dp,
            feeder: o.feeder,
            substation: o.substation,
            start: o.start,
            opened_at: o.opened_at,
            restored_at: match o.life {
                Life::Restored(at) => Some(at),
                Life::Merged { .. } => stored_rows.get(&o.id).and_then(|s| s.restored_at),
                Life::Open => None,
            },
            merged_into: match o.life {
                Life::Merged { into, .. } => Some(into),
                _ => None,
            },
            merged_at: match o.life {
                Life::Merged { at, .. } => Some(at),
                _ => None,
            },
            parent: o.parent,
            placement: o.placement,
            is_new: !stored_rows.contains_key(&o.id),
        };
        let differs = match stored_rows.get(&o.id) {
            None => true,
            Some(old) => row_differs(old, &row),
        };
        if differs {
            changed.insert(o.id);
            let mut row = row;
            if row.is_new {
                row.event_id = Some(event_id(o, o.id));
            }
            decision.outages.push(row);
        }
    }
    // Stored outages the replay did not make again: merged, from their opening on, into the
    // outage that holds their meters now (a merged one keeps its survivor when its meters cannot
    // be followed, unless the replay withdraws that one too), else withdrawn. From their opening
    // on: a later replay must not find them open.
    let withdrawn_too = |target: &Id| {
        !outages.contains_key(target)
            && most_spans_now_in(*target, stored.spans, by_meter()).is_none()
            && stored.outages.iter().any(|o| {
                o.id == *target
                    && !matches!(o.status, StoredStatus::Closed | StoredStatus::Merged)
                    && o.opened_at >= stored.t0
            })
    };
    for old in stored.outages {
        let momentary = hidden_rows.contains(&old.id);
        if old.status == StoredStatus::Closed
            || outages.contains_key(&old.id)
            || (old.opened_at < stored.t0 && !momentary)
        {
            continue;
        }
        // Evidence it had that the replay still weighs: a row only answered calls spoke for
        // (the meter-report veto) was never an outage, wherever it merged.
        let own_sources: Vec<&StoredSource> = stored
            .sources
            .iter()
            .filter(|s| (s.outage == old.id || s.origin == old.id) && s.weight.is_some())
            .map(|s| &**s)
            .collect();
        let answered_only =
            !own_sources.is_empty() && own_sources.iter().all(|s| answered.contains_key(&s.key));
        let into = if answered_only {
            None
        } else {
            most_spans_now_in(old.id, stored.spans, by_meter()).or_else(|| match old.status {
                StoredStatus::Merged => old.merged_into.filter(|t| !withdrawn_too(t)),
                _ => None,
            })
        };
        if old.status == StoredStatus::Merged
            && into == old.merged_into
            && old.merged_at == Some(old.opened_at)
        {
            continue;
        }
        decision.retired.push(Retired {
            id: old.id,
            into,
            why: if momentary {
                Some(Withdrawal::Momentary)
            } else if own_sources.iter().any(|s| answered.contains_key(&s.key)) {
                Some(Withdrawal::CallAnswered)
            } else {
                None
            },
        });
        changed.insert(old.id);
    }

    // Customers of every outage whose spans changed.
    let stored_customers: HashMap<(Id, Id), &StoredCustomer> = stored
        .customers
        .iter()
        .map(|c| ((c.outage, c.customer), &**c))
        .collect();
    let mut customers_of: HashMap<Id, Vec<&StoredCustomer>> = HashMap::default();
    for c in stored.customers {
        customers_of.entry(c.outage).or_default().push(&**c);
    }
    let affected_outages: BTreeSet<Id> = touched
        .iter()
        .chain(decision.retired.iter().map(|r| &r.id))
        .copied()
        .collect();
    for &outage in &affected_outages {
        // Each customer's row, folded from its spans (in customer order: see `by_outage`).
        let spans_of = by_outage.get(&outage).map(Vec::as_slice).unwrap_or(&[]);
        let mut customers: Vec<CustomerRow> = Vec::with_capacity(spans_of.len());
        for (customer, off, on) in spans_of
            .iter()
            .filter_map(|(_, span)| Some((span.place.customer?, span.off, span.on)))
        {
            match customers.last_mut() {
                Some(row) if row.customer == customer => {
                    row.linked_at = row.linked_at.min(off);
                    row.restored_at = match (row.restored_at, on) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    };
                }
                _ => customers.push(CustomerRow {
                    outage,
                    customer,
                    linked_at: off,
                    restored_at: on,
                }),
            }
        }
        for row in &customers {
            match stored_customers.get(&(outage, row.customer)) {
                Some(old) if old.restored_at == row.restored_at => {}
                _ => decision.customer_upserts.push(row.clone()),
            }
        }
        for c in customers_of.get(&outage).into_iter().flatten() {
            if customers
                .binary_search_by_key(&c.customer, |row| row.customer)
                .is_err()
            {
                decision.customer_deletes.push((outage, c.customer));
            }
        }
    }

    let starts: HashMap<Id, Time> = stored.outages.iter().map(|o| (o.id, o.start)).collect();
    let retired = decision.retired.clone();
    narrate(&outages, &changed, &retired, &starts, &mut decision);
    decision
}

/// How many distinct keys a sorted sequence holds.
fn distinct_in_order(keys: impl Iterator<Item = u128>) -> usize {
    let mut last = None;
    keys.filter(|&k| last.replace(k) != Some(k)).count()
}

fn same_weight(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 0.005,
        (None, None) => true,
        _ => false,
    }
}

fn row_differs(old: &StoredOutage, row: &OutageRow) -> bool {
    let old_status = match old.status {
        StoredStatus::Open {
            in_progress: true, ..
        } => "in_progress",
        StoredStatus::Open {
            confirmed: true, ..
        } => "confirmed",
        StoredStatus::Open { .. } => "detected",
        StoredStatus::Restored => "restored",
        StoredStatus::Merged => "merged",
        StoredStatus::Closed => "closed",
    };
    old_status != row.status
        || (old.confidence - row.confidence).abs() > 0.004
        || old.affected_customers != row.affected_customers
        || old.customers_out != row.customers_out
        || old.start != row.start
        || old.opened_at != row.opened_at
        || old.restored_at != row.restored_at
        || old.merged_into != row.merged_into
        || old.merged_at != row.merged_at
        || old.parent != row.parent
}

/// The outage that now holds most of the spans a retired outage held or was first given (a merged
/// outage's spans moved to its survivor).
/// `by_meter`: the replay's spans of each meter, in the fold's order.
fn most_spans_now_in(
    retired: Id,
    stored: &[Rc<StoredSpan>],
    by_meter: &HashMap<Id, Vec<&Span>>,
) -> Option<Id> {
    let mut counts: BTreeMap<Id, usize> = BTreeMap::new();
    for old in stored
        .iter()
        .filter(|s| s.outage == retired || s.origin == retired)
    {
        let holder =
            by_meter.get(&old.meter).into_iter().flatten().find(|s| {
                s.off <= old.on.unwrap_or(Time::MAX) && s.on.unwrap_or(Time::MAX) >= old.off
            });
        if let Some(holder) = holder {
            *counts.entry(holder.outage).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(id, n)| (n, std::cmp::Reverse(id)))
        .map(|(id, _)| id)
}

/// `OMS_<tag>_<start, UTC>_<16 hex digits of the id>`, as the engine has always named outages.
pub fn event_id(outage: &Outage, id: Id) -> String {
    let tag = match outage.placement {
        Placement::DpRollUp => "DP",
        Placement::FeederRollUp => "FEEDER",
        _ => outage.opened_by.tag(),
    };
    let hex = id.simple().to_string();
    format!("OMS_{tag}_{}_{}", compact_utc(outage.start), &hex[16..32])
}

/// `YYYYMMDDTHHMMSS` in UTC.
pub fn compact_utc(at: Time) -> String {
    chrono::DateTime::from_timestamp_micros(at + 946_684_800_000_000)
        .map(|t| t.format("%Y%m%dT%H%M%S").to_string())
        .unwrap_or_default()
}

/// The timeline rows and announcements of the batch's changes (SPEC §5.8).
fn narrate(
    outages: &BTreeMap<Id, Outage>,
    changed: &BTreeSet<Id>,
    retired: &[Retired],
    starts: &HashMap<Id, Time>,
    decision: &mut Decision,
) {
    let written: BTreeSet<Id> = decision.outages.iter().map(|o| o.id).collect();
    let new_rows: BTreeSet<Id> = decision
        .outages
        .iter()
        .filter(|o| o.is_new)
        .map(|o| o.id)
        .collect();
    for o in outages.values() {
        // A new row's whole story is news; an existing one's, what this batch's inputs did.
        let told = |n: &&Note| n.news || new_rows.contains(&o.id);
        let audible: Vec<&Note> = o
            .notes
            .iter()
            .filter(told)
            .filter(|n| !matches!(n.change, Change::Joined { quiet: true, .. }))
            .collect();
        let final_status = status(o);
        for note in &audible {
            if let Some(row) = timeline_row(o, note, final_status, outages) {
                decision.timeline.push(row);
            }
        }
        // Only word in a storm about meters already out: a source, no timeline row, no message.
        if audible.is_empty() && (!changed.contains(&o.id) || o.notes.iter().any(|n| n.news)) {
            continue;
        }
        if !written.contains(&o.id) && audible.is_empty() {
            continue;
        }
        let mut changes: Vec<&'static str> = Vec::new();
        for note in &audible {
            let change = note.change.as_str();
            if !changes.contains(&change) {
                changes.push(change);
            }
        }
        if changes.is_empty() {
            changes.push("recorrelated");
            decision.timeline.push(TimelineRow {
                outage: o.id,
                event_type: "recorrelated",
                status: final_status,
                description: "Correlated again after a late signal".into(),
                source: "oms_correlation".into(),
                at: o.start,
                metadata: serde_json::json!({"reason": "late_signal"}),
            });
        }
        decision.announced.push(Announced {
            outage: o.id,
            changes,
            source: audible.last().map(|n| n.source.clone()),
            first_change: audible.first().map(|n| n.at).unwrap_or(o.start),
        });
    }
    for r in retired {
        decision.timeline.push(TimelineRow {
            outage: r.id,
            event_type: if r.into.is_some() {
                "merged"
            } else {
                "withdrawn"
            },
            status: if r.into.is_some() {
                "merged"
            } else {
                "cancelled"
            },
            description: match r.into {
                Some(_) => {
                    "Merged on correlating a late signal: its meters are in another outage".into()
                }
                None if r.why == Some(Withdrawal::Momentary) => {
                    "Withdrawn: its meters came back within the declaration delay (a momentary interruption)".into()
                }
                None if r.why == Some(Withdrawal::CallAnswered) => {
                    "Withdrawn: a call it rested on was answered by its meter reporting within oms_correlation.call_verify_window (the meter had power; the trouble was on the customer's side)".into()
                }
                None => "Withdrawn on correlating a late signal: none of its meters was out".into(),
            },
            source: "oms_correlation".into(),
            at: starts.get(&r.id).copied().unwrap_or_default(),
            metadata: serde_json::json!({"merged_into": r.into}),
        });
        decision.announced.push(Announced {
            outage: r.id,
            changes: vec![if r.into.is_some() {
                "merged"
            } else {
                "withdrawn"
            }],
            source: None,
            first_change: Time::MAX,
        });
    }
    decision
        .announced
        .sort_by_key(|a| (a.first_change, a.outage));
}

fn timeline_row(
    o: &Outage,
    note: &Note,
    status: &'static str,
    outages: &BTreeMap<Id, Outage>,
) -> Option<TimelineRow> {
    let source = note.source.kind.as_str().to_string();
    let who = format!(
        "{} {}",
        super::engine::label(note.source.kind),
        note.source.event_id
    );
    let (event_type, description, metadata) = match &note.change {
        Change::Opened => (
            "outage_detected",
            o.description.clone(),
            serde_json::json!({"scope": o.scope().as_str(), "rule": o.placement.as_str(), "nested_in": o.parent}),
        ),
        Change::Joined { meters, .. } => (
            "source_joined",
            note.text
                .clone()
                .unwrap_or_else(|| format!("{who}: {meters} meter(s) off")),
            serde_json::json!({"meters_joined": meters}),
        ),
        Change::Absorbed { victims, reason } => {
            let names: Vec<String> = victims
                .iter()
                .map(|v| outages.get(v).map(|o| o.id.to_string()).unwrap_or_default())
                .collect();
            (
                "outages_merged",
                format!("{} outage(s) merged in ({reason})", victims.len()),
                serde_json::json!({"merged": names, "reason": reason}),
            )
        }
        Change::Merged { into } => (
            "merged",
            format!("Merged into outage {into}"),
            serde_json::json!({"merged_into": into}),
        ),
        Change::PartiallyRestored {
            meters_back,
            customers_back,
            customers_out,
        } => (
            "partially_restored",
            format!("{meters_back} meter(s) back on; {customers_out} customer(s) still out"),
            serde_json::json!({"meters_back": meters_back, "customers_back": customers_back,
                               "customers_out": customers_out}),
        ),
        Change::Restored => (
            "outage_restored",
            "Every meter is back on".to_string(),
            serde_json::Value::Null,
        ),
        Change::RestoredByScada { meters } => (
            "outage_restored",
            format!("Restored by SCADA: {meters} meter(s) back on"),
            serde_json::json!({"meters_back": meters}),
        ),
        Change::Confirmed | Change::Momentary => return None,
    };
    Some(TimelineRow {
        outage: o.id,
        event_type,
        status,
        description,
        source,
        at: note.at,
        metadata,
    })
}
