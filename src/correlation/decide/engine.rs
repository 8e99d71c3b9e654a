//! The event-time fold (SPEC §5.1-5.5): an area's outages as they stood just before `t0`, rebuilt
//! from the stored rows, then every input from `t0` on applied in event-time order.
//!
//! Each decision is taken at an input's own time and reads only what came before it (the rules look
//! back, never ahead), so the outages an area ends with are a function of its inputs' times:
//! replaying from any `t0` at or before the earliest input that changed gives what one replay of
//! everything would. Late signals, batch boundaries and arrival order are all just replays.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

// The fold's own maps are keyed by ids and times: a fast hash, not one made to resist chosen keys.
use rustc_hash::FxHashMap as HashMap;
use smallvec::SmallVec;

use super::rules::{is_flapping, noisy_or, Rules};
use crate::correlation::model::{
    Alarm, Device, Id, Input, MeterSignal, Place, Power, Scope, Service, SourceKey, SourceKind,
    StoredInterruption, StoredOutage, StoredSpan, StoredStatus, Time,
};

/// What an outage is at a moment of the fold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Life {
    Open,
    Restored(Time),
    Merged { into: Id, at: Time },
}

/// Why an outage sits on its device (the rule that placed it, for its explanation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A power-off no open outage covered: its service.
    Service,
    /// Enough meters of a DP off within the window.
    DpRollUp,
    /// Enough DPs (or meters) of a feeder out within the window.
    FeederRollUp,
    /// A SCADA outage alarm of the device.
    Scada,
    /// As stored before this batch (its rule is not re-derived).
    Stored,
}

impl Placement {
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Service => "service",
            Placement::DpRollUp => "dp_rollup",
            Placement::FeederRollUp => "feeder_rollup",
            Placement::Scada => "scada",
            Placement::Stored => "stored",
        }
    }
}

/// A source event of an outage.
#[derive(Debug, Clone, PartialEq)]
pub struct Src {
    pub at: Time,
    /// None for a power-on, which is no evidence of the outage.
    pub weight: Option<f64>,
    pub origin: Id,
    /// The stored row it was read from (its index in what `Fold::at` was given); None for one the
    /// replay added. `reconcile` compares a row read back with that row, not by looking it up.
    pub row: Option<usize>,
}

/// A span of a meter's power loss, in the outage that holds it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub outage: Id,
    pub origin: Id,
    pub meter: Id,
    pub off: Time,
    pub on: Option<Time>,
    pub first_source: SourceKey,
    pub place: Place,
    /// Taken into an outage at a DP other than its registered one (suspected mis-mapping).
    pub suspected: bool,
    /// The stored row it was read from, as for `Src::row`.
    pub row: Option<usize>,
}

/// A change to an outage made by an input of this batch: its announcement and timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub at: Time,
    pub source: SourceKey,
    pub change: Change,
    /// Said by an input this batch brings. Changes an old input makes again in a replay were told
    /// when it first came, unless the outage they change is new.
    pub news: bool,
    /// What the timeline says of it, where the change alone does not (a SCADA alarm's own words).
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Opened,
    Joined {
        meters: usize,
        quiet: bool,
    },
    Confirmed,
    Absorbed {
        victims: Vec<Id>,
        reason: &'static str,
    },
    Merged {
        into: Id,
    },
    PartiallyRestored {
        meters_back: usize,
        customers_back: usize,
        customers_out: usize,
    },
    Restored,
    /// A SCADA restoration ended it, with its meters still out.
    RestoredByScada {
        meters: usize,
    },
    Momentary,
}

impl Change {
    pub fn as_str(&self) -> &'static str {
        match self {
            Change::Opened => "opened",
            Change::Joined { .. } => "joined",
            Change::Confirmed => "confirmed",
            Change::Absorbed { .. } => "absorbed",
            Change::Merged { .. } => "merged",
            Change::PartiallyRestored { .. } => "partially_restored",
            Change::Restored | Change::RestoredByScada { .. } => "restored",
            Change::Momentary => "momentary",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Outage {
    pub id: Id,
    pub device: Device,
    pub dp: Option<Id>,
    pub feeder: Option<Id>,
    pub substation: Option<Id>,
    pub start: Time,
    pub opened_at: Time,
    pub life: Life,
    pub confirmed: bool,
    /// An operator's `in_progress`, kept while the outage is open.
    pub in_progress: bool,
    /// A SCADA alarm reported it: authoritative, certain.
    pub scada: bool,
    pub parent: Option<Id>,
    pub sources: BTreeMap<SourceKey, Src>,
    /// Indexes into `Fold::spans`.
    pub spans: Vec<usize>,
    pub open_spans: usize,
    /// Its open spans by customer key: the customers still out, kept as spans open and close
    /// (counting them over every span on each power-on made a big outage's batch quadratic).
    pub open_customers: HashMap<Id, usize>,
    pub placement: Placement,
    pub opened_by: SourceKind,
    pub description: String,
    pub severity: Option<String>,
    pub cause: Option<String>,
    /// Where its SCADA alarm placed it.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub notes: Vec<Note>,
    /// Customers it had when it merged (a merged outage holds no meters).
    pub merged_customers: Option<usize>,
    /// It existed before `t0`: its id is the stored one.
    pub existed: bool,
    /// A service outage only its meters' own last gasps speak for (no call, no SCADA, no
    /// roll-up): weak evidence, held for `declaration_delay` before it is declared.
    pub weak: bool,
}

impl Outage {
    pub fn scope(&self) -> Scope {
        self.device.scope()
    }

    pub fn is_open(&self) -> bool {
        self.life == Life::Open
    }

    /// Noisy-OR over its weighted sources; SCADA makes it certain.
    pub fn confidence(&self) -> f64 {
        if self.scada {
            return 1.0;
        }
        noisy_or(self.sources.values().filter_map(|s| s.weight))
    }

    /// One more of its spans is open: a meter of `customer` is out in it.
    fn span_opened(&mut self, customer: Id) {
        self.open_spans += 1;
        *self.open_customers.entry(customer).or_insert(0) += 1;
    }

    /// One of its open spans closed or left it.
    fn span_closed(&mut self, customer: Id) {
        self.open_spans -= 1;
        if let Some(n) = self.open_customers.get_mut(&customer) {
            *n -= 1;
            if *n == 0 {
                self.open_customers.remove(&customer);
            }
        }
    }

    fn note(&mut self, news: bool, at: Time, source: &SourceKey, change: Change) {
        self.notes.push(Note {
            at,
            source: source.clone(),
            change,
            news,
            text: None,
        });
    }

    fn note_text(
        &mut self,
        news: bool,
        at: Time,
        source: &SourceKey,
        change: Change,
        text: String,
    ) {
        self.note(news, at, source, change);
        self.notes.last_mut().expect("just noted").text = Some(text);
    }
}

/// A meter a SCADA restoration turned back on: the registry learns it too (SPEC §4.1 step 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TurnedOn {
    pub meter: Id,
    pub at: Time,
    pub alarm: Id,
}

/// What the fold reads besides the outages: the grid around the inputs.
pub struct Grid<'a> {
    pub places: &'a std::collections::HashMap<Id, Place>,
    pub dp_active: &'a std::collections::HashMap<Id, usize>,
    pub feeder_active: &'a std::collections::HashMap<Id, usize>,
    /// Feeders whose breakers report to SCADA: telemetry says whether they are out, so no
    /// prediction does (Oracle NMS's rule): their meters' outages never roll up to them.
    pub monitored: &'a BTreeSet<Id>,
    /// Each input meter's power changes (`oms_meter_status_events`), sorted: for flapping.
    pub power_changes: &'a std::collections::HashMap<Id, Vec<Time>>,
}

/// The outages of an area through a replay.
pub struct Fold<'a> {
    rules: &'a Rules,
    grid: Grid<'a>,
    pub outages: BTreeMap<Id, Outage>,
    pub spans: Vec<Span>,
    /// Each meter's open span.
    open_span: HashMap<Id, usize>,
    /// Each meter's spans, oldest first (most meters have one or two: kept inline, not allocated).
    meter_spans: HashMap<Id, SmallVec<[usize; 2]>>,
    /// Operator-closed outages own their meters' time: inputs inside it change nothing.
    frozen: HashMap<Id, Vec<(Time, Option<Time>)>>,
    by_device: HashMap<Device, Vec<Id>>,
    by_dp: HashMap<Id, Vec<Id>>,
    by_feeder: HashMap<Id, Vec<Id>>,
    by_substation: HashMap<Id, Vec<Id>>,
    pub turned_on: Vec<TurnedOn>,
    /// Each alarm's outage: the one it opened or joined, or the first it restored.
    pub alarm_outage: BTreeMap<Id, Id>,
    /// Every restoration alarm's restored outages, in order.
    pub alarm_restored: BTreeMap<Id, Vec<Id>>,
    opened: HashMap<(Device, Time), u32>,
    /// Spans taken in as suspected mis-mapped, by the DP the registry names (some may have closed
    /// or been released since: checked where read).
    suspected_by_dp: HashMap<Id, Vec<usize>>,
    /// Where event time has come to for declaring weak outages (`declaration`): None declares
    /// every open one, as if their delay had passed.
    pub clock: Option<Time>,
    /// Where the replay starts.
    t0: Time,
    /// Calls whose meters reported within `call_verify_window` after them, and those meters:
    /// no evidence of an outage (`answered_calls`).
    pub answered: BTreeMap<SourceKey, BTreeSet<Id>>,
    /// Restored call-only outages (`restored_call_only`), by feeder: what a DP outage's meters
    /// coming back may find in step with them (some may have merged since: checked where read).
    calls_back: HashMap<Id, Vec<Id>>,
}

/// Whether an outage is on the operators' list (issue 22, the outage declaration delay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declaration {
    Declared,
    /// Weak, open, and its delay has not passed: not written yet.
    Pending,
    /// Weak, and every meter came back within the delay: a momentary interruption of its meters
    /// (for MAIFI), never an outage row.
    Momentary,
}

/// Each meter's first power-off among these (meter, off) pairs, in the meters' order: what a
/// roll-up counts (a meter may be in more than one span).
fn first_offs(spans: impl Iterator<Item = (Id, Time)>) -> Vec<Time> {
    let mut offs: Vec<(Id, Time)> = spans.collect();
    offs.sort_unstable();
    offs.dedup_by_key(|&mut (meter, _)| meter);
    offs.into_iter().map(|(_, off)| off).collect()
}

/// A new outage's id, from what it is: the same outage replayed gets the same id. Time-ordered
/// like a UUID v7 (its first 48 bits are the opening time in Unix milliseconds).
pub fn outage_id(device: Device, opened_at: Time, salt: u32) -> Id {
    let unix_ms = (opened_at + 946_684_800_000_000).div_euclid(1000).max(0) as u64;
    let text = format!("{device}@{opened_at}#{salt}");
    let hash = |seed: u64| {
        text.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let (a, b) = (hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4));
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&[&a.to_be_bytes()[..], &b.to_be_bytes()[..2]].concat());
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Id::from_bytes(bytes)
}

impl<'a> Fold<'a> {
    /// The area as it stood just before `t0`, from its stored rows. `outages` holds every stored
    /// outage the replay may touch, and the merged ones its spans came from.
    pub fn at(
        rules: &'a Rules,
        grid: Grid<'a>,
        t0: Time,
        outages: &[StoredOutage],
        spans: &[Rc<StoredSpan>],
        sources: &[Rc<crate::correlation::model::StoredSource>],
    ) -> Fold<'a> {
        let mut fold = Fold {
            rules,
            grid,
            outages: BTreeMap::new(),
            spans: Vec::new(),
            open_span: HashMap::default(),
            meter_spans: HashMap::default(),
            frozen: HashMap::default(),
            by_device: HashMap::default(),
            by_dp: HashMap::default(),
            by_feeder: HashMap::default(),
            by_substation: HashMap::default(),
            turned_on: Vec::new(),
            alarm_outage: BTreeMap::new(),
            alarm_restored: BTreeMap::new(),
            opened: HashMap::default(),
            suspected_by_dp: HashMap::default(),
            clock: None,
            t0,
            answered: BTreeMap::new(),
            calls_back: HashMap::default(),
        };
        let stored: HashMap<Id, &StoredOutage> = outages.iter().map(|o| (o.id, o)).collect();
        fold.spans.reserve(spans.len());
        fold.meter_spans.reserve(spans.len());
        fold.open_span.reserve(spans.len());
        for o in outages {
            if o.status == StoredStatus::Closed || o.opened_at >= t0 {
                continue;
            }
            let life = match (o.merged_at, o.merged_into, o.restored_at) {
                (Some(at), Some(into), _) if at < t0 => Life::Merged { into, at },
                (_, _, Some(at)) if at < t0 => Life::Restored(at),
                _ => Life::Open,
            };
            let in_progress = matches!(
                o.status,
                StoredStatus::Open {
                    in_progress: true,
                    ..
                }
            );
            fold.insert(Outage {
                id: o.id,
                device: o.device,
                dp: o.dp,
                feeder: o.feeder,
                substation: o.substation,
                start: o.opened_at,
                opened_at: o.opened_at,
                life,
                confirmed: false,
                in_progress: in_progress && life == Life::Open,
                scada: false,
                parent: o.parent,
                sources: BTreeMap::new(),
                spans: Vec::new(),
                open_spans: 0,
                // Sized once: a storm's outage holds thousands of customers (no more than the
                // spans read: the column is anyone's to write).
                open_customers: HashMap::with_capacity_and_hasher(
                    (o.customers_out.max(0) as usize).min(spans.len()),
                    Default::default(),
                ),
                placement: Placement::Stored,
                opened_by: tag_kind(&o.event_id),
                description: o.description.clone().unwrap_or_default(),
                severity: None,
                cause: None,
                latitude: None,
                longitude: None,
                notes: Vec::new(),
                merged_customers: match life {
                    Life::Merged { .. } => Some(o.affected_customers.max(0) as usize),
                    _ => None,
                },
                existed: true,
                weak: false,
            });
        }
        // The outage a span or source belonged to at t0: where its origin had merged by then, if
        // the fold holds it. Found once per stored outage: thousands of rows share a few origins.
        let holders: HashMap<Id, Id> = stored
            .keys()
            .filter_map(|&origin| {
                let mut id = origin;
                for _ in 0..64 {
                    let o = stored.get(&id)?;
                    match (o.merged_at, o.merged_into) {
                        (Some(at), Some(into)) if at < t0 => id = into,
                        _ => return fold.outages.contains_key(&id).then_some((origin, id)),
                    }
                }
                None
            })
            .collect();
        let holder_at = |origin: Id| holders.get(&origin).copied();
        // Rows come outage by outage, most from the outage that holds them: each (outage, origin)
        // is looked up once per run of rows, not once per row.
        let mut last: Option<((Id, Id), (Option<&StoredOutage>, Option<Id>))> = None;
        for (row, span) in spans.iter().enumerate() {
            let (stored_outage, holder) = match last {
                Some((key, found)) if key == (span.outage, span.origin) => found,
                _ => {
                    let found = (stored.get(&span.outage).copied(), holder_at(span.origin));
                    last = Some(((span.outage, span.origin), found));
                    found
                }
            };
            if stored_outage.is_some_and(|o| o.status == StoredStatus::Closed) {
                fold.frozen
                    .entry(span.meter)
                    .or_default()
                    .push((span.off, span.on));
                continue;
            }
            if span.off >= t0 {
                continue;
            }
            let Some(holder) = holder else {
                continue;
            };
            let on = span.on.filter(|&on| on < t0);
            // Marked when it was taken into another DP's outage: not yet, if at t0 it is still in
            // an outage of its own service (the take-in comes in the replay, or does not).
            let suspected = span.suspected && fold.outages[&holder].scope() != Scope::Service;
            fold.add_span(Span {
                outage: holder,
                origin: span.origin,
                meter: span.meter,
                off: span.off,
                on,
                first_source: span.first_source.clone(),
                place: span.place,
                suspected,
                row: stored_outage.is_some().then_some(row),
            });
        }
        // Each holder's sources, the first of each key kept, built into its map at once: one
        // insert at a time compared keys byte by byte a dozen times each.
        let mut sources_of: HashMap<Id, Vec<(SourceKey, Src)>> = HashMap::default();
        let mut last_origin: Option<(Id, Option<Id>)> = None;
        for (row, source) in sources.iter().enumerate() {
            if source.at >= t0 {
                continue;
            }
            let holder = match last_origin {
                Some((origin, holder)) if origin == source.origin => holder,
                _ => {
                    let holder = holder_at(source.origin);
                    last_origin = Some((source.origin, holder));
                    holder
                }
            };
            let Some(holder) = holder else {
                continue;
            };
            sources_of.entry(holder).or_default().push((
                source.key.clone(),
                Src {
                    at: source.at,
                    weight: source.weight,
                    origin: source.origin,
                    row: Some(row),
                },
            ));
        }
        for (holder, mut list) in sources_of {
            let outage = fold
                .outages
                .get_mut(&holder)
                .expect("holder is in the fold");
            if list
                .iter()
                .any(|(key, src)| key.kind == SourceKind::Scada && src.weight.is_some())
            {
                outage.scada = true;
            }
            list.sort_by(|a, b| a.0.cmp(&b.0));
            list.dedup_by(|later, first| later.0 == first.0);
            outage.sources = list.into_iter().collect();
        }
        let calls_back: Vec<Id> = fold
            .outages
            .keys()
            .copied()
            .filter(|&id| fold.restored_call_only(id).is_some())
            .collect();
        for id in calls_back {
            fold.note_call_back(id);
        }
        let threshold = rules.confirm_confidence;
        for outage in fold.outages.values_mut() {
            // Written, but still only its meters' last gasps behind it: a power-on within the
            // delay that comes late still makes it a momentary interruption.
            outage.weak = outage.scope() == Scope::Service
                && is_last_gasp(outage.opened_by)
                && outage
                    .sources
                    .iter()
                    .all(|(key, src)| src.weight.is_none() || is_last_gasp(key.kind));
            let spans_start = outage
                .spans
                .iter()
                .map(|&i| fold.spans[i].off)
                .min()
                .unwrap_or(outage.opened_at);
            outage.start = outage.opened_at.min(spans_start);
            outage.confirmed = outage.scada || outage.confidence() + 1e-9 >= threshold;
        }
        fold
    }

    /// Momentary interruptions begun before `t0` have no rows: the weak outages they were are made
    /// again, restored (or still out at `t0`, when their power-on is in the replay), so that the
    /// replay weighs them as the first play did, and a late call or roll-up can still take them.
    pub fn restore_interruptions(&mut self, interruptions: &[StoredInterruption]) {
        let mut groups: BTreeMap<(Service, Time), Vec<&StoredInterruption>> = BTreeMap::new();
        for i in interruptions.iter().filter(|i| i.off < self.t0) {
            groups
                .entry((i.place.service(), i.off))
                .or_default()
                .push(i);
        }
        for ((service, off), list) in groups {
            if list
                .iter()
                .any(|i| self.open_span.contains_key(&i.place.meter))
            {
                continue;
            }
            let places: Vec<Place> = list.iter().map(|i| i.place).collect();
            let source = list[0].source.clone();
            let id = self.open_service(
                service,
                &representative(&places),
                off,
                off,
                &source,
                places.len(),
            );
            self.outages.get_mut(&id).expect("just opened").note(
                false,
                off,
                &source,
                Change::Opened,
            );
            for i in &list {
                self.add_span(Span {
                    outage: id,
                    origin: id,
                    meter: i.place.meter,
                    off,
                    on: Some(i.on).filter(|&on| on < self.t0),
                    first_source: i.source.clone(),
                    place: i.place,
                    suspected: false,
                    row: None,
                });
            }
            let weight = Some(self.rules.weights.of(source.kind));
            self.add_source(id, &source, off, weight);
            let threshold = self.rules.confirm_confidence;
            let o = self.outages.get_mut(&id).expect("just opened");
            o.confirmed = o.confidence() + 1e-9 >= threshold;
            if o.open_spans == 0 {
                let end = list.iter().map(|i| i.on).max().unwrap_or(off);
                o.life = Life::Restored(end);
            }
        }
    }

    fn insert(&mut self, outage: Outage) {
        let id = outage.id;
        self.by_device.entry(outage.device).or_default().push(id);
        if let Some(dp) = outage.dp.filter(|_| outage.scope() == Scope::Service) {
            self.by_dp.entry(dp).or_default().push(id);
        }
        if let Some(feeder) = outage.feeder {
            self.by_feeder.entry(feeder).or_default().push(id);
        }
        if let Some(substation) = outage.substation {
            self.by_substation.entry(substation).or_default().push(id);
        }
        self.outages.insert(id, outage);
    }

    fn add_span(&mut self, span: Span) -> usize {
        let index = self.spans.len();
        let outage = self
            .outages
            .get_mut(&span.outage)
            .expect("a span's outage is in the fold");
        outage.spans.push(index);
        if span.on.is_none() {
            outage.span_opened(span.place.customer_key());
            self.open_span.insert(span.meter, index);
        }
        if span.suspected && span.on.is_none() {
            if let Some(dp) = span.place.dp {
                self.suspected_by_dp.entry(dp).or_default().push(index);
            }
        }
        let list = self.meter_spans.entry(span.meter).or_default();
        let at = list.partition_point(|&i| self.spans[i].off <= span.off);
        list.insert(at, index);
        self.spans.push(span);
        index
    }

    fn open_on(&self, device: Device) -> Option<Id> {
        self.by_device
            .get(&device)?
            .iter()
            .copied()
            .find(|id| self.outages[id].is_open())
    }

    /// The highest open outage whose device covers the meter: its substation's, feeder's, DP's or
    /// service's.
    fn cover(&self, place: &Place) -> Option<Id> {
        [
            place.substation.map(Device::Substation),
            place.feeder.map(Device::Feeder),
            place.dp.map(Device::Dp),
            Some(Device::Service(place.service())),
        ]
        .into_iter()
        .flatten()
        .find_map(|device| self.open_on(device))
    }

    fn is_frozen(&self, meter: Id, at: Time) -> bool {
        self.frozen.get(&meter).is_some_and(|spans| {
            spans
                .iter()
                .any(|&(off, on)| off <= at && on.is_none_or(|on| at <= on))
        })
    }

    fn flapping(&self, meter: Id, at: Time) -> bool {
        self.grid
            .power_changes
            .get(&meter)
            .is_some_and(|changes| is_flapping(changes, at, self.rules.flap_threshold))
    }

    /// Adds a source to an outage; whether it was new there.
    fn add_source(&mut self, outage: Id, key: &SourceKey, at: Time, weight: Option<f64>) -> bool {
        let o = self.outages.get_mut(&outage).expect("outage in the fold");
        if o.sources.contains_key(key) {
            return false;
        }
        o.sources.insert(
            key.clone(),
            Src {
                at,
                weight,
                origin: outage,
                row: None,
            },
        );
        if key.kind == SourceKind::Scada && weight.is_some() {
            o.scada = true;
        }
        // A call or SCADA is evidence enough to declare it at once.
        if weight.is_some() && !is_last_gasp(key.kind) {
            o.weak = false;
        }
        true
    }

    /// Whether the outage is declared, pending, or was a momentary interruption (issue 22): a weak
    /// outage is declared once `declaration_delay` has passed in event time (`clock`) with a meter
    /// still out; back on within it, it was momentary. Whatever was written stays declared.
    pub fn declaration(&self, o: &Outage) -> Declaration {
        let delay = self.rules.declaration_delay;
        if !o.weak || delay <= 0 {
            return Declaration::Declared;
        }
        match o.life {
            // A written outage restored before the replay is decided; one restored in it is not.
            Life::Restored(at) if at - o.start <= delay && (!o.existed || at >= self.t0) => {
                Declaration::Momentary
            }
            Life::Open if !o.existed && self.clock.is_some_and(|clock| o.start + delay > clock) => {
                Declaration::Pending
            }
            _ => Declaration::Declared,
        }
    }

    fn confirm(&mut self, outage: Id, narrate: bool, at: Time, source: &SourceKey) {
        let threshold = self.rules.confirm_confidence;
        let o = self.outages.get_mut(&outage).expect("outage in the fold");
        if !o.confirmed && (o.scada || o.confidence() + 1e-9 >= threshold) {
            o.confirmed = true;
            o.note(narrate, at, source, Change::Confirmed);
        }
    }

    fn new_outage(&mut self, device: Device, place: Option<&Place>, at: Time, start: Time) -> Id {
        let salt = self.opened.entry((device, at)).or_insert(0);
        let id = outage_id(device, at, *salt);
        *salt += 1;
        let (dp, feeder, substation) = match (device, place) {
            (Device::Substation(s), _) => (None, None, Some(s)),
            (Device::Feeder(f), p) => (None, Some(f), p.and_then(|p| p.substation)),
            (Device::Dp(d), p) => (
                Some(d),
                p.and_then(|p| p.feeder),
                p.and_then(|p| p.substation),
            ),
            (Device::Service(_), p) => (
                p.and_then(|p| p.dp),
                p.and_then(|p| p.feeder),
                p.and_then(|p| p.substation),
            ),
        };
        self.insert(Outage {
            id,
            device,
            dp,
            feeder,
            substation,
            start,
            opened_at: at,
            life: Life::Open,
            confirmed: false,
            in_progress: false,
            scada: false,
            parent: None,
            sources: BTreeMap::new(),
            spans: Vec::new(),
            open_spans: 0,
            open_customers: HashMap::default(),
            placement: Placement::Service,
            opened_by: SourceKind::Scada,
            description: String::new(),
            severity: None,
            cause: None,
            latitude: None,
            longitude: None,
            notes: Vec::new(),
            merged_customers: None,
            existed: false,
            weak: false,
        });
        id
    }

    /// A service outage predicted from `source`'s report of `meters` meter(s) off, opened at `at`
    /// and begun at `start`: weak while only a last gasp speaks for it.
    fn open_service(
        &mut self,
        service: Service,
        place: &Place,
        at: Time,
        start: Time,
        source: &SourceKey,
        meters: usize,
    ) -> Id {
        let id = self.new_outage(Device::Service(service), Some(place), at, start);
        let o = self.outages.get_mut(&id).expect("just opened");
        o.opened_by = source.kind;
        o.weak = is_last_gasp(source.kind);
        o.description = format!(
            "Predicted from {} {}: {meters} meter(s) off",
            label(source.kind),
            source.event_id
        );
        id
    }

    /// Applies the inputs in event-time order; `narrated` says which are this batch's own (their
    /// changes are announced and written to the timeline).
    pub fn apply(&mut self, inputs: &mut [Input], narrated: &BTreeSet<SourceKey>) {
        inputs.sort_by_key(Input::order_key);
        self.answered = answered_calls(inputs, self.rules.call_verify_window);
        for input in inputs.iter() {
            let narrate = narrated.contains(&input.source());
            match input {
                Input::Meter(signal) if signal.power == Power::Off => {
                    match self.answered.get(&signal.source) {
                        Some(reported) => {
                            let mut signal = signal.clone();
                            signal.meters.retain(|m| !reported.contains(m));
                            if !signal.meters.is_empty() {
                                self.power_off(&signal, narrate);
                            }
                        }
                        None => self.power_off(signal, narrate),
                    }
                }
                // Weighed before the fold (`answered_calls`).
                Input::Meter(signal) if signal.power == Power::Report => {}
                Input::Meter(signal) => self.power_on(signal, narrate),
                Input::Alarm(alarm) if alarm.restoration => self.restoration(alarm, narrate),
                Input::Alarm(alarm) => self.trip(alarm, narrate),
            }
        }
    }

    fn power_off(&mut self, signal: &MeterSignal, narrate: bool) {
        let at = signal.at;
        let key = &signal.source;
        let weight = Some(self.rules.weights.of(key.kind));
        let quiet = self.rules.storm.active_at(at);
        let mut meters = signal.meters.clone();
        meters.sort_unstable();
        meters.dedup();
        let mut joined: BTreeMap<Id, usize> = BTreeMap::new();
        let mut opens: BTreeMap<Service, Vec<Place>> = BTreeMap::new();
        let mut dps = BTreeSet::new();
        let mut feeders = BTreeSet::new();
        // The outage each service's covered meters went into (a building behind one ONU).
        let mut covering: BTreeMap<Service, Id> = BTreeMap::new();
        // The meters about to open outages, by registered DP: together they may show it has a
        // fault of its own.
        let mut uncovered: BTreeMap<Id, Vec<Place>> = BTreeMap::new();
        for meter in meters {
            let Some(place) = self.grid.places.get(&meter).copied() else {
                continue;
            };
            if self.is_frozen(meter, at) || self.flapping(meter, at) {
                continue;
            }
            if let Some(&span) = self.open_span.get(&meter) {
                // Already out: one more source of the outage it is out in.
                joined.entry(self.spans[span].outage).or_insert(0);
                continue;
            }
            match self.cover(&place) {
                Some(outage) => {
                    covering.entry(place.service()).or_insert(outage);
                    self.add_span(Span {
                        outage,
                        origin: outage,
                        meter,
                        off: at,
                        on: None,
                        first_source: key.clone(),
                        place,
                        suspected: false,
                        row: None,
                    });
                    *joined.entry(outage).or_insert(0) += 1;
                    match self.outages[&outage].scope() {
                        Scope::Service => {
                            dps.extend(place.dp);
                            feeders.extend(place.feeder);
                        }
                        Scope::DistributionPoint => {
                            feeders.extend(place.feeder);
                        }
                        _ => {}
                    }
                }
                None => {
                    if let Some(dp) = place.dp {
                        uncovered.entry(dp).or_default().push(place);
                    }
                    opens.entry(place.service()).or_default().push(place)
                }
            }
        }
        for (dp, places) in uncovered {
            self.release_suspected(dp, &places, at, key, narrate);
        }
        self.join_building(&mut opens, &covering, &mut joined, &mut feeders, at, key);
        self.join_mismapped(&mut opens, &mut joined, &mut feeders, at, key);
        let mut joined_dps = Vec::new();
        for (outage, added) in joined {
            if added > 0 && self.outages[&outage].scope() == Scope::DistributionPoint {
                joined_dps.push(outage);
            }
            let new_source = self.add_source(outage, key, at, weight);
            if added > 0 || new_source {
                let quiet = quiet && added == 0;
                let o = self.outages.get_mut(&outage).expect("outage in the fold");
                o.note(
                    narrate,
                    at,
                    key,
                    Change::Joined {
                        meters: added,
                        quiet,
                    },
                );
            }
            self.confirm(outage, narrate, at, key);
        }
        // Meters of a DP outage's own DP went off now: lone meters elsewhere on the feeder gone
        // just before, in step with them, are its mis-mapped meters (as those gone after are).
        for outage in joined_dps {
            self.take_in_mismapped(outage, at, key, narrate, true);
        }
        for (service, places) in opens {
            // A building's meters may be registered under different DPs: its outage stands under
            // the DP most of them are, so that it counts toward that DP's roll-up.
            let first = representative(&places);
            let parent = self.nested_parent(places.iter().map(|p| p.meter), at);
            let id = self.open_service(service, &first, at, at, key, places.len());
            {
                let o = self.outages.get_mut(&id).expect("just opened");
                o.parent = parent;
                o.note(narrate, at, key, Change::Opened);
            }
            for place in &places {
                self.add_span(Span {
                    outage: id,
                    origin: id,
                    meter: place.meter,
                    off: at,
                    on: None,
                    first_source: key.clone(),
                    place: *place,
                    suspected: false,
                    row: None,
                });
            }
            self.add_source(id, key, at, weight);
            self.confirm(id, narrate, at, key);
            dps.extend(first.dp);
            feeders.extend(first.feeder);
        }
        for dp in dps {
            if let Some(feeder) = self.roll_up_dp(dp, at, key, narrate) {
                feeders.insert(feeder);
            }
        }
        for feeder in feeders {
            self.roll_up_feeder(feeder, at, key, narrate);
        }
    }

    /// A building's meters lose power together: those of a service whose other meters went into
    /// an outage go there too, wherever the registry puts them (suspected mis-mapped when that is
    /// another DP's outage), rather than open an outage of their own.
    fn join_building(
        &mut self,
        opens: &mut BTreeMap<Service, Vec<Place>>,
        covering: &BTreeMap<Service, Id>,
        joined: &mut BTreeMap<Id, usize>,
        feeders: &mut BTreeSet<Id>,
        at: Time,
        key: &SourceKey,
    ) {
        for (service, &outage) in covering {
            let Some(places) = opens.remove(service) else {
                continue;
            };
            let at_dp = match self.outages[&outage].scope() {
                Scope::DistributionPoint => self.outages[&outage].dp,
                _ => None,
            };
            for place in places {
                let suspected = at_dp.is_some() && place.dp != at_dp;
                self.join_from_elsewhere(outage, place, suspected, joined, feeders, at, key);
            }
        }
    }

    /// A meter that would have opened an outage of its own goes into `outage` instead.
    #[allow(clippy::too_many_arguments)]
    fn join_from_elsewhere(
        &mut self,
        outage: Id,
        place: Place,
        suspected: bool,
        joined: &mut BTreeMap<Id, usize>,
        feeders: &mut BTreeSet<Id>,
        at: Time,
        key: &SourceKey,
    ) {
        self.add_span(Span {
            outage,
            origin: outage,
            meter: place.meter,
            off: at,
            on: None,
            first_source: key.clone(),
            place,
            suspected,
            row: None,
        });
        *joined.entry(outage).or_insert(0) += 1;
        feeders.extend(place.feeder);
    }

    /// Suspected mapping errors (issue 22): a meter that would open a service outage alone under
    /// its registered DP, within `mismap_window` of the start of a DP outage elsewhere on its
    /// feeder, is out in that outage: its span joins it, marked suspected, and opens nothing.
    fn join_mismapped(
        &mut self,
        opens: &mut BTreeMap<Service, Vec<Place>>,
        joined: &mut BTreeMap<Id, usize>,
        feeders: &mut BTreeSet<Id>,
        at: Time,
        key: &SourceKey,
    ) {
        // A last gasp is sent as power goes; a call comes minutes later: only the first is in step.
        if self.rules.mismap_window <= 0 || !is_last_gasp(key.kind) {
            return;
        }
        let mut per_dp: BTreeMap<Id, usize> = BTreeMap::new();
        for place in opens.values().flatten() {
            if let Some(dp) = place.dp {
                *per_dp.entry(dp).or_insert(0) += 1;
            }
        }
        let lone: Vec<(Service, Place)> = opens
            .iter()
            .filter(|(_, places)| places.len() == 1)
            .map(|(service, places)| (*service, places[0]))
            .filter(|(_, place)| place.dp.is_some_and(|dp| per_dp.get(&dp) == Some(&1)))
            .collect();
        for (service, place) in lone {
            let Some(outage) = self.mismapped_into(&place, at, None) else {
                continue;
            };
            opens.remove(&service);
            self.join_from_elsewhere(outage, place, true, joined, feeders, at, key);
        }
    }

    /// Meters of `dp` (one signal's `places`) go off while others of `dp` sit in another DP's
    /// outage as suspected mis-mapped, and together they roll `dp` up: `dp` has a fault of its own,
    /// so they were not mis-mapped after all. Each goes back to an outage of its own, opened at its own time,
    /// so that `dp`'s meters count together (and roll it up) whatever order they came in.
    fn release_suspected(
        &mut self,
        dp: Id,
        places: &[Place],
        at: Time,
        key: &SourceKey,
        narrate: bool,
    ) {
        // As `registered_dp_rolls_up` counts them.
        let window = self.rules.rollup.window;
        let Some(list) = self.suspected_by_dp.get(&dp) else {
            return;
        };
        let release: Vec<usize> = list
            .iter()
            .copied()
            .filter(|&i| {
                let span = &self.spans[i];
                span.suspected
                    && span.on.is_none()
                    && places.iter().all(|p| p.meter != span.meter)
                    && span.place.dp == Some(dp)
                    && (span.off - at).abs() <= window
                    && self.open_span.get(&span.meter) == Some(&i)
            })
            .collect();
        if release.is_empty() {
            return;
        }
        // Only if together they roll their DP up: fewer are mapping errors as well.
        if !self.registered_dp_rolls_up(dp, at, places, None) {
            return;
        }
        self.suspected_by_dp
            .get_mut(&dp)
            .expect("listed")
            .retain(|i| !release.contains(i));
        for i in release {
            let span = self.spans[i].clone();
            let from = span.outage;
            let customer = span.place.customer_key();
            {
                let o = self.outages.get_mut(&from).expect("outage in the fold");
                o.spans.retain(|&j| j != i);
                o.span_closed(customer);
            }
            // The event leaves the outage with its meter, unless it brought others there too.
            let shared = self.outages[&from]
                .spans
                .iter()
                .any(|&j| self.spans[j].first_source == span.first_source);
            if !shared {
                self.outages
                    .get_mut(&from)
                    .expect("outage in the fold")
                    .sources
                    .remove(&span.first_source);
            }
            // Opened now (a replay from before now rebuilds it), begun when the meter went.
            let id = self.open_service(
                span.place.service(),
                &span.place,
                at,
                span.off,
                &span.first_source,
                1,
            );
            {
                let o = self.outages.get_mut(&id).expect("just opened");
                o.note(narrate, at, key, Change::Opened);
                o.spans.push(i);
                o.span_opened(customer);
            }
            let s = &mut self.spans[i];
            s.outage = id;
            s.origin = id;
            s.suspected = false;
            let weight = Some(self.rules.weights.of(span.first_source.kind));
            self.add_source(id, &span.first_source, span.off, weight);
            self.confirm(id, narrate, at, key);
        }
    }

    /// The DP outage a meter alone off at `at` under its registered DP is in, if it is suspected
    /// mis-mapped: open, on its feeder, at another DP, begun within `mismap_window` of `at` (the
    /// nearest). `own`: the meter's own service outage, if it has one, which does not count
    /// against its being alone.
    fn mismapped_into(&self, place: &Place, at: Time, own: Option<Id>) -> Option<Id> {
        let window = self.rules.mismap_window;
        let (feeder, dp) = (place.feeder?, place.dp?);
        // Its registered DP's meters out with it would not roll that DP up (two meters of ten are
        // no fault of that DP's: a DP's fault takes its meters together).
        if self.registered_dp_rolls_up(dp, at, &[*place], own) {
            return None;
        }
        self.by_feeder
            .get(&feeder)?
            .iter()
            .copied()
            .filter(|id| {
                let o = &self.outages[id];
                o.is_open()
                    && o.scope() == Scope::DistributionPoint
                    && o.dp.is_some_and(|d| d != dp)
            })
            .filter_map(|id| Some((self.in_step(&self.outages[&id], at, window)?, id)))
            .min()
            .map(|(_, id)| id)
    }

    /// How near `at` (within `window`) a DP outage's own meters went off: its start, or a meter
    /// registered under its DP that joined it later (a DP outage open since earlier takes in a
    /// second fault of its DP, and the mis-mapped meters of that fault go with it).
    fn in_step(&self, o: &Outage, at: Time, window: Time) -> Option<Time> {
        let own_offs = o
            .spans
            .iter()
            .map(|&i| &self.spans[i])
            .filter(|span| !span.suspected && span.place.dp == o.dp)
            .map(|span| span.off);
        std::iter::once(o.start)
            .chain(own_offs)
            .map(|off| (off - at).abs())
            .filter(|&distance| distance <= window)
            .min()
    }

    /// Whether the meters of `dp` gone within the roll-up window of `at` (in outages of their own
    /// under it that a roll-up weighs, but `own`, or suspected in another DP's), with `more`, gone
    /// at `at`, roll `dp` up, as its own roll-up would count them: then they are `dp`'s own fault,
    /// not mapping errors.
    fn registered_dp_rolls_up(&self, dp: Id, at: Time, more: &[Place], own: Option<Id>) -> bool {
        let window = self.rules.rollup_window(at);
        let near = |i: usize| (self.spans[i].off - at).abs() <= window;
        let mut group: BTreeMap<Id, (Time, Service)> = BTreeMap::new();
        for id in self.by_dp.get(&dp).into_iter().flatten() {
            if Some(*id) == own || !self.weighed(id, at, window) {
                continue;
            }
            for &i in self.outages[id].spans.iter().filter(|&&i| near(i)) {
                let span = &self.spans[i];
                group.insert(span.meter, (span.off, span.place.service()));
            }
        }
        // A meter suspected in another DP's outage went in step with that one: it counts toward its
        // own DP's fault only within the plain roll-up window, which storm mode does not widen (in a
        // storm, DP faults minutes apart each bring their mis-mapped meters).
        let suspected_near = |i: usize| (self.spans[i].off - at).abs() <= self.rules.rollup.window;
        for &i in self.suspected_by_dp.get(&dp).into_iter().flatten() {
            let span = &self.spans[i];
            if span.suspected && span.place.dp == Some(dp) && suspected_near(i) {
                group.insert(span.meter, (span.off, span.place.service()));
            }
        }
        for place in more {
            group.insert(place.meter, (at, place.service()));
        }
        let offs: Vec<Time> = group.values().map(|(off, _)| *off).collect();
        let services: BTreeSet<_> = group.values().map(|(_, service)| *service).collect();
        let active = self.grid.dp_active.get(&dp).copied().unwrap_or(0);
        self.rules
            .rollup
            .dp_rolls_up(&offs, window, active, services.len())
    }

    /// After a DP roll-up, or its own meters joining it (`joined_now`): the lone service outages
    /// elsewhere on the feeder in step with it (opened before it was there, or before those meters
    /// went) are taken in, suspected mis-mapped, as a later signal of theirs would have been.
    fn take_in_mismapped(
        &mut self,
        survivor: Id,
        at: Time,
        key: &SourceKey,
        narrate: bool,
        joined_now: bool,
    ) {
        let window = self.rules.mismap_window;
        if window <= 0 {
            return;
        }
        let Some(feeder) = self.outages[&survivor].feeder else {
            return;
        };
        let lone: Vec<Id> = self
            .by_feeder
            .get(&feeder)
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| {
                let o = &self.outages[id];
                o.is_open()
                    && o.scope() == Scope::Service
                    && o.spans.len() == 1
                    && o.open_spans == 1
                    && is_last_gasp(self.spans[o.spans[0]].first_source.kind)
                    // After a join at `at`, only those gone near `at` can be newly in step.
                    && (!joined_now || (self.spans[o.spans[0]].off - at).abs() <= window)
            })
            .filter(|id| {
                let span = &self.spans[self.outages[id].spans[0]];
                self.mismapped_into(&span.place, span.off, Some(*id)) == Some(survivor)
            })
            .collect();
        self.take_in_suspected(
            survivor,
            &lone,
            at,
            key,
            narrate,
            "suspected mis-mapping: in step with this DP's outage",
        );
    }

    /// Merges `lone` into the DP outage `survivor`, their meters marked suspected mis-mapped.
    fn take_in_suspected(
        &mut self,
        survivor: Id,
        lone: &[Id],
        at: Time,
        key: &SourceKey,
        narrate: bool,
        reason: &'static str,
    ) {
        if lone.is_empty() {
            return;
        }
        let moved: Vec<usize> = lone
            .iter()
            .flat_map(|id| self.outages[id].spans.clone())
            .collect();
        self.merge(survivor, lone, at, key, narrate, reason);
        self.mark_suspected(moved);
    }

    /// Marks spans suspected mis-mapped, each under the DP the registry names.
    fn mark_suspected(&mut self, spans: Vec<usize>) {
        for i in spans {
            self.spans[i].suspected = true;
            if let Some(dp) = self.spans[i].place.dp {
                self.suspected_by_dp.entry(dp).or_default().push(i);
            }
        }
    }

    /// A call-only service outage of one meter, restored: its meter's place, its start and when
    /// the meter came back. A call comes minutes after power goes, so its start is never in step
    /// with anything; the power-on that ends it is the first time its meter can be.
    fn restored_call_only(&self, id: Id) -> Option<(Place, Time, Time)> {
        let o = &self.outages[&id];
        if o.scope() != Scope::Service || o.spans.len() != 1 || !matches!(o.life, Life::Restored(_))
        {
            return None;
        }
        if o.sources
            .iter()
            .any(|(key, src)| src.weight.is_some() && key.kind != SourceKind::CallCenter)
        {
            return None;
        }
        let span = &self.spans[o.spans[0]];
        Some((span.place, o.start, span.on?))
    }

    /// The DP outage a restored call-only outage (`restored_call_only`) was out in, if its meter
    /// is suspected mis-mapped: its meter came back within `mismap_window` of that outage's own
    /// meters, on its feeder, at another DP, open when the call came; the only DP outage so (two
    /// back together leave it where it is), and unless a meter out under its registered DP came
    /// back in step before it (that DP's own restoration).
    fn restored_in_step(&self, victim: Id) -> Option<Id> {
        let window = self.rules.mismap_window;
        let (place, start, on) = self.restored_call_only(victim)?;
        let (feeder, dp) = (place.feeder?, place.dp?);
        let near = |span: &Span| span.on.is_some_and(|back| (back - on).abs() <= window);
        let own_back = |o: &Outage| {
            o.spans.iter().any(|&i| {
                let span = &self.spans[i];
                !span.suspected && span.place.dp == o.dp && span.meter != place.meter && near(span)
            })
        };
        let merged = |id: &Id| matches!(self.outages[id].life, Life::Merged { .. });
        let registered_back = self
            .by_dp
            .get(&dp)
            .into_iter()
            .flatten()
            .chain(self.by_device.get(&Device::Dp(dp)).into_iter().flatten())
            .any(|id| *id != victim && !merged(id) && own_back(&self.outages[id]));
        if registered_back {
            return None;
        }
        let mut in_step = self.by_feeder.get(&feeder)?.iter().copied().filter(|id| {
            let o = &self.outages[id];
            !merged(id)
                && o.scope() == Scope::DistributionPoint
                && o.dp.is_some_and(|d| d != dp)
                && o.start <= start + window
                && !matches!(o.life, Life::Restored(end) if end < start)
                && own_back(o)
        });
        let only = in_step.next()?;
        in_step.next().is_none().then_some(only)
    }

    /// Remembers a restored call-only outage under its feeder (`calls_back`).
    fn note_call_back(&mut self, id: Id) {
        if let Some(feeder) = self.outages[&id].feeder {
            self.calls_back.entry(feeder).or_default().push(id);
        }
    }

    /// Meters came back at `at`: restored call-only outages (`restored` among them) and the DP
    /// outages whose own meters came back (`dps`) meet, in whichever order their power-ons
    /// came. A call-only outage whose meter came back in step with a DP outage elsewhere on its
    /// feeder is taken into it, suspected mis-mapped. The DP outage keeps its own end: a merge
    /// after it does not move it (a replay from between the two could not tell).
    fn take_in_restored_in_step(
        &mut self,
        restored: &[Id],
        dps: &[Id],
        at: Time,
        key: &SourceKey,
        narrate: bool,
    ) {
        if self.rules.mismap_window <= 0 {
            return;
        }
        let window = self.rules.mismap_window;
        for &id in restored {
            if self.restored_call_only(id).is_some() {
                self.note_call_back(id);
            }
        }
        let mut takes: BTreeMap<Id, BTreeSet<Id>> = BTreeMap::new();
        for &victim in restored {
            if let Some(survivor) = self.restored_in_step(victim) {
                takes.entry(survivor).or_default().insert(victim);
            }
        }
        for &survivor in dps {
            let Some(feeder) = self.outages[&survivor].feeder else {
                continue;
            };
            for &victim in self.calls_back.get(&feeder).into_iter().flatten() {
                let back_near = self
                    .restored_call_only(victim)
                    .is_some_and(|(_, _, on)| on <= at && at - on <= window);
                if back_near && self.restored_in_step(victim) == Some(survivor) {
                    takes.entry(survivor).or_default().insert(victim);
                }
            }
        }
        for (survivor, victims) in takes {
            let victims: Vec<Id> = victims.into_iter().collect();
            self.take_in_suspected(
                survivor,
                &victims,
                at,
                key,
                narrate,
                "suspected mis-mapping: its meter came back in step with this DP's outage",
            );
        }
    }

    /// The outage a meter was in that was restored less than the nested window before `at`
    /// (SPEC §5.4): the newest such, over any of the meters.
    fn nested_parent(&self, meters: impl Iterator<Item = Id>, at: Time) -> Option<Id> {
        let window = self.rules.nested_window;
        meters
            .flat_map(|m| self.meter_spans.get(&m).into_iter().flatten())
            .filter_map(|&i| match self.outages[&self.spans[i].outage].life {
                Life::Restored(r) if r <= at && r > at - window => Some((r, self.spans[i].outage)),
                _ => None,
            })
            .max()
            .map(|(_, id)| id)
    }

    /// Outages a roll-up at `at` weighs: open, or restored and begun within the window.
    fn weighed(&self, id: &Id, at: Time, window: Time) -> bool {
        let o = &self.outages[id];
        match o.life {
            Life::Open => true,
            Life::Restored(_) => o.start >= at - window,
            Life::Merged { .. } => false,
        }
    }

    /// Whether the outage has a meter that went off within the window before `at`: an outage open
    /// since earlier is another outage, not evidence about this one.
    fn off_in_window(&self, id: &Id, at: Time, window: Time) -> bool {
        self.outages[id]
            .spans
            .iter()
            .any(|&i| self.spans[i].off >= at - window && self.spans[i].off <= at)
    }

    /// A roll-up's outages (its evidence), and with them every other open outage under the device
    /// that began within the join window before the earliest of them (SPEC §5.3: the open outages
    /// under the device merge). Each is one a signal of the new outage would join (§5.2); an older
    /// one is a fault of its own, and stays.
    fn with_open_within_join_window(
        &self,
        mut evidence: Vec<Id>,
        device: Device,
        at: Time,
    ) -> Vec<Id> {
        let start = evidence
            .iter()
            .map(|id| self.outages[id].start)
            .min()
            .expect("evidence");
        let earliest = start - self.rules.join_window(at);
        let (under, scopes): (Option<&Vec<Id>>, &[Scope]) = match device {
            Device::Dp(dp) => (self.by_dp.get(&dp), &[Scope::Service]),
            Device::Feeder(f) => (
                self.by_feeder.get(&f),
                &[Scope::Service, Scope::DistributionPoint],
            ),
            _ => (None, &[]),
        };
        for id in under.into_iter().flatten() {
            let o = &self.outages[id];
            if o.is_open()
                && scopes.contains(&o.scope())
                && o.start >= earliest
                && !evidence.contains(id)
            {
                evidence.push(*id);
            }
        }
        // A building the registry splits stands under the DP most of its meters are under; one of
        // its meters under this DP ties it here too (as `join_building` does once the DP is out).
        if let Device::Dp(dp) = device {
            let feeder = evidence.iter().find_map(|id| self.outages[id].feeder);
            for id in feeder
                .and_then(|f| self.by_feeder.get(&f))
                .into_iter()
                .flatten()
            {
                let o = &self.outages[id];
                if o.is_open()
                    && o.scope() == Scope::Service
                    && o.dp != Some(dp)
                    && o.start >= earliest
                    && o.spans.iter().any(|&i| self.spans[i].place.dp == Some(dp))
                    && !evidence.contains(id)
                {
                    evidence.push(*id);
                }
            }
        }
        evidence
    }

    /// Rolls the DP's service outages up into a DP outage when enough of its meters went off within
    /// the window (SPEC §5.3); returns its feeder when it did.
    fn roll_up_dp(&mut self, dp: Id, at: Time, key: &SourceKey, narrate: bool) -> Option<Id> {
        if self.open_on(Device::Dp(dp)).is_some() {
            return None;
        }
        let window = self.rules.rollup_window(at);
        let victims: Vec<Id> = self
            .by_dp
            .get(&dp)
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| self.weighed(id, at, window) && self.off_in_window(id, at, window))
            .collect();
        if victims.is_empty() {
            return None;
        }
        let offs = first_offs(victims.iter().flat_map(|id| {
            self.outages[id]
                .spans
                .iter()
                .map(|&i| (self.spans[i].meter, self.spans[i].off))
        }));
        let services: BTreeSet<Device> = victims.iter().map(|id| self.outages[id].device).collect();
        let active = self.grid.dp_active.get(&dp).copied().unwrap_or(0);
        if !self
            .rules
            .rollup
            .dp_rolls_up(&offs, window, active, services.len())
        {
            return None;
        }
        let sample = self.spans[self.outages[&victims[0]].spans[0]].place;
        let victims = self.with_open_within_join_window(victims, Device::Dp(dp), at);
        let start = victims
            .iter()
            .map(|id| self.outages[id].start)
            .min()
            .expect("victims");
        let survivor = self.new_outage(Device::Dp(dp), Some(&sample), at, start);
        {
            let o = self.outages.get_mut(&survivor).expect("just opened");
            o.placement = Placement::DpRollUp;
            o.opened_by = key.kind;
            o.description = format!(
                "Predicted at a DP: {} meter(s) of {active} off within the roll-up window",
                offs.len()
            );
            o.note(narrate, at, key, Change::Opened);
        }
        self.merge(survivor, &victims, at, key, narrate, "rolled up to its DP");
        // Meters of a split building that the registry puts under other DPs.
        let elsewhere: Vec<usize> = self.outages[&survivor]
            .spans
            .iter()
            .copied()
            .filter(|&i| {
                !self.spans[i].suspected && self.spans[i].place.dp.is_some_and(|d| d != dp)
            })
            .collect();
        self.mark_suspected(elsewhere);
        self.take_in_mismapped(survivor, at, key, narrate, false);
        sample.feeder
    }

    /// Rolls a feeder's service and DP outages up into a feeder outage when enough of its DPs
    /// went out, or enough of its meters, within the window (SPEC §5.3).
    fn roll_up_feeder(&mut self, feeder: Id, at: Time, key: &SourceKey, narrate: bool) {
        if self.open_on(Device::Feeder(feeder)).is_some() || self.grid.monitored.contains(&feeder) {
            return;
        }
        let window = self.rules.rollup_window(at);
        let candidates: Vec<Id> = self
            .by_feeder
            .get(&feeder)
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| {
                matches!(
                    self.outages[id].scope(),
                    Scope::Service | Scope::DistributionPoint
                ) && self.weighed(id, at, window)
                    && self.off_in_window(id, at, window)
            })
            .collect();
        if candidates.is_empty() {
            return;
        }
        let in_window = |t: Time| t >= at - window && t <= at;
        let active = self.grid.feeder_active.get(&feeder).copied().unwrap_or(0);
        // A bound first, from counts alone: the exact test reads every span of the candidates, on
        // every power-off of the feeder, and most of a storm's power-offs are far from rolling it
        // up (reading them made a backlog's correlation quadratic in a feeder's meters).
        let dp_outages_in_window = candidates
            .iter()
            .filter(|id| {
                let o = &self.outages[*id];
                o.scope() == Scope::DistributionPoint && o.dp.is_some() && in_window(o.start)
            })
            .count();
        let spans: usize = candidates
            .iter()
            .map(|id| self.outages[id].spans.len())
            .sum();
        if !self.rules.rollup.feeder_may_roll_up(
            dp_outages_in_window,
            spans,
            active,
            candidates.len(),
        ) {
            return;
        }
        let mut dp_starts: BTreeMap<Id, Time> = BTreeMap::new();
        for id in &candidates {
            let o = &self.outages[id];
            if let (Scope::DistributionPoint, Some(dp)) = (o.scope(), o.dp) {
                if in_window(o.start) {
                    let start = dp_starts.entry(dp).or_insert(o.start);
                    *start = (*start).min(o.start);
                }
            }
        }
        let starts: Vec<Time> = dp_starts.values().copied().collect();
        let offs = first_offs(candidates.iter().flat_map(|id| {
            self.outages[id]
                .spans
                .iter()
                .map(|&i| (self.spans[i].meter, self.spans[i].off))
                .filter(|&(_, off)| in_window(off))
        }));
        let devices: BTreeSet<Device> = candidates
            .iter()
            .map(|id| self.outages[id].device)
            .collect();
        if !self
            .rules
            .rollup
            .feeder_rolls_up(&starts, &offs, window, active, devices.len())
        {
            return;
        }
        let sample = self.spans[self.outages[&candidates[0]].spans[0]].place;
        let candidates = self.with_open_within_join_window(candidates, Device::Feeder(feeder), at);
        let start = candidates
            .iter()
            .map(|id| self.outages[id].start)
            .min()
            .expect("candidates");
        let survivor = self.new_outage(Device::Feeder(feeder), Some(&sample), at, start);
        {
            let o = self.outages.get_mut(&survivor).expect("just opened");
            o.placement = Placement::FeederRollUp;
            o.opened_by = key.kind;
            o.description = format!(
                "Predicted at a feeder: {} DP outage(s), {} meter(s) off within the roll-up window",
                starts.len(),
                offs.len()
            );
            o.note(narrate, at, key, Change::Opened);
        }
        self.merge(
            survivor,
            &candidates,
            at,
            key,
            narrate,
            "rolled up to its feeder",
        );
    }

    /// The victims go into the survivor: their spans and sources move, each merged outage keeps its
    /// row and points to the survivor (SPEC §5.3).
    fn merge(
        &mut self,
        survivor: Id,
        victims: &[Id],
        at: Time,
        key: &SourceKey,
        narrate: bool,
        reason: &'static str,
    ) {
        let mut merged = Vec::new();
        let mut victims_confirmed = false;
        for &victim in victims {
            if victim == survivor {
                continue;
            }
            let mut v = self.outages.remove(&victim).expect("victim in the fold");
            if matches!(v.life, Life::Merged { .. }) {
                self.outages.insert(victim, v);
                continue;
            }
            let customers: BTreeSet<Id> = v
                .spans
                .iter()
                .map(|&i| self.spans[i].place.customer_key())
                .collect();
            v.merged_customers = Some(customers.len());
            v.life = Life::Merged { into: survivor, at };
            v.note(narrate, at, key, Change::Merged { into: survivor });
            let spans = std::mem::take(&mut v.spans);
            let sources = std::mem::take(&mut v.sources);
            let open = std::mem::replace(&mut v.open_spans, 0);
            let open_customers = std::mem::take(&mut v.open_customers);
            let s = self
                .outages
                .get_mut(&survivor)
                .expect("survivor in the fold");
            for &i in &spans {
                self.spans[i].outage = survivor;
            }
            s.spans.extend(spans);
            s.open_spans += open;
            for (customer, n) in open_customers {
                *s.open_customers.entry(customer).or_insert(0) += n;
            }
            for (k, src) in sources {
                match s.sources.get(&k) {
                    Some(kept) if kept.at <= src.at => {}
                    _ => {
                        s.sources.insert(k, src);
                    }
                }
            }
            s.scada |= v.scada;
            victims_confirmed |= v.confirmed;
            s.start = s.start.min(v.start);
            merged.push(victim);
            self.outages.insert(victim, v);
        }
        if merged.is_empty() {
            return;
        }
        let s = self.outages.get_mut(&survivor).expect("survivor");
        s.note(
            narrate,
            at,
            key,
            Change::Absorbed {
                victims: merged,
                reason,
            },
        );
        // A survivor is confirmed when a victim was (SPEC §5.3), or when its sources reach it.
        if victims_confirmed && !s.confirmed {
            s.confirmed = true;
            s.note(narrate, at, key, Change::Confirmed);
        }
        self.confirm(survivor, narrate, at, key);
        // Every meter it took in may be back already (a roll-up weighs outages that were over).
        let s = &self.outages[&survivor];
        if s.open_spans == 0 && !s.spans.is_empty() && s.is_open() {
            let end = s
                .spans
                .iter()
                .filter_map(|&i| self.spans[i].on)
                .max()
                .unwrap_or(at);
            self.restore(survivor, end, key, narrate);
        }
    }

    fn restore(&mut self, outage: Id, at: Time, key: &SourceKey, narrate: bool) {
        self.restore_as(outage, at, key, narrate, Change::Restored);
    }

    fn restore_as(&mut self, outage: Id, at: Time, key: &SourceKey, narrate: bool, change: Change) {
        let momentary = self.rules.momentary_window;
        let o = self.outages.get_mut(&outage).expect("outage in the fold");
        o.life = Life::Restored(at);
        o.in_progress = false;
        o.note(narrate, at, key, change);
        if at - o.start <= momentary {
            o.note(narrate, at, key, Change::Momentary);
        }
    }

    fn close_span(&mut self, index: usize, at: Time) {
        let span = &mut self.spans[index];
        span.on = Some(at);
        self.open_span.remove(&span.meter);
        let outage = span.outage;
        let customer = span.place.customer_key();
        self.outages
            .get_mut(&outage)
            .expect("outage in the fold")
            .span_closed(customer);
    }

    fn power_on(&mut self, signal: &MeterSignal, narrate: bool) {
        let at = signal.at;
        let key = &signal.source;
        let mut back: BTreeMap<Id, Vec<usize>> = BTreeMap::new();
        let mut meters = signal.meters.clone();
        meters.sort_unstable();
        meters.dedup();
        for meter in meters {
            if self.is_frozen(meter, at) {
                continue;
            }
            if let Some(&index) = self.open_span.get(&meter) {
                if self.spans[index].off <= at {
                    back.entry(self.spans[index].outage)
                        .or_default()
                        .push(index);
                }
            }
        }
        let mut dps_back = Vec::new();
        let mut restored = Vec::new();
        for (outage, spans) in back {
            for &index in &spans {
                self.close_span(index, at);
            }
            let own_back = spans.iter().any(|&i| {
                !self.spans[i].suspected && self.spans[i].place.dp == self.outages[&outage].dp
            });
            if own_back && self.outages[&outage].scope() == Scope::DistributionPoint {
                dps_back.push(outage);
            }
            self.add_source(outage, key, at, None);
            let o = &self.outages[&outage];
            let back_keys: BTreeSet<Id> = spans
                .iter()
                .map(|&i| self.spans[i].place.customer_key())
                .filter(|k| !o.open_customers.contains_key(k))
                .collect();
            let change = Change::PartiallyRestored {
                meters_back: spans.len(),
                customers_back: back_keys.len(),
                customers_out: o.open_customers.len(),
            };
            let all_back = o.open_spans == 0 && o.scope() != Scope::Substation;
            self.outages
                .get_mut(&outage)
                .expect("outage")
                .note(narrate, at, key, change);
            if all_back {
                self.restore(outage, at, key, narrate);
                restored.push(outage);
            }
        }
        self.take_in_restored_in_step(&restored, &dps_back, at, key, narrate);
    }

    fn trip(&mut self, alarm: &Alarm, narrate: bool) {
        let at = alarm.at;
        let key = alarm.source();
        let (outage, opened) = match self.open_on(alarm.device) {
            Some(open) => (open, false),
            None => {
                let id = self.new_outage(alarm.device, None, at, at);
                self.outages.get_mut(&id).expect("just opened").substation = alarm.substation;
                if let Some(substation) = alarm.substation {
                    self.by_substation.entry(substation).or_default().push(id);
                }
                (id, true)
            }
        };
        {
            let o = self.outages.get_mut(&outage).expect("outage");
            if opened {
                o.placement = Placement::Scada;
                o.opened_by = SourceKind::Scada;
                o.description = format!(
                    "{}: {} meter(s) affected",
                    alarm.description,
                    alarm.affected.len()
                );
                o.latitude = alarm.latitude;
                o.longitude = alarm.longitude;
                o.note(narrate, at, &key, Change::Opened);
            }
            if o.severity.is_none() {
                o.severity = alarm.severity.clone();
            }
            if o.cause.is_none() {
                o.cause = alarm.cause.clone();
            }
        }
        let new_source = self.add_source(outage, &key, at, Some(self.rules.weights.scada.max(1.0)));
        self.outages.get_mut(&outage).expect("outage").scada = true;
        let said = format!(
            "{}: {} meter(s) affected",
            alarm.description,
            alarm.affected.len()
        );
        if new_source && !opened {
            self.outages.get_mut(&outage).expect("outage").note_text(
                narrate,
                at,
                &key,
                Change::Joined {
                    meters: 0,
                    quiet: false,
                },
                said.clone(),
            );
        }
        self.confirm(outage, narrate, at, &key);
        self.alarm_outage.insert(alarm.id, outage);
        // SPEC §5.3: it takes in the predicted outages under it, those begun within the join window.
        let earliest = at - self.rules.join_window(at);
        let (under, scopes): (Option<&Vec<Id>>, &[Scope]) = match alarm.device {
            Device::Feeder(f) => (
                self.by_feeder.get(&f),
                &[Scope::Service, Scope::DistributionPoint],
            ),
            Device::Substation(s) => (
                self.by_substation.get(&s),
                &[Scope::Service, Scope::DistributionPoint, Scope::Feeder],
            ),
            _ => (None, &[]),
        };
        let victims: Vec<Id> = under
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| {
                let o = &self.outages[id];
                *id != outage
                    && o.is_open()
                    && !o.scada
                    && scopes.contains(&o.scope())
                    && o.start >= earliest
            })
            .collect();
        self.merge(
            outage,
            &victims,
            at,
            &key,
            narrate,
            "absorbed by the SCADA outage of its device",
        );
        let mut affected = alarm.affected.clone();
        affected.sort_unstable();
        affected.dedup();
        let mut added = 0;
        for meter in affected {
            let Some(place) = self.grid.places.get(&meter).copied() else {
                continue;
            };
            if self.open_span.contains_key(&meter) || self.is_frozen(meter, at) {
                continue;
            }
            self.add_span(Span {
                outage,
                origin: outage,
                meter,
                off: at,
                on: None,
                first_source: key.clone(),
                place,
                suspected: false,
                row: None,
            });
            added += 1;
        }
        if added > 0 && !opened && !new_source {
            self.outages.get_mut(&outage).expect("outage").note_text(
                narrate,
                at,
                &key,
                Change::Joined {
                    meters: added,
                    quiet: false,
                },
                said,
            );
        }
    }

    fn restoration(&mut self, alarm: &Alarm, narrate: bool) {
        let at = alarm.at;
        let key = alarm.source();
        let under: Vec<Id> = match alarm.device {
            Device::Feeder(f) => self.by_feeder.get(&f).cloned().unwrap_or_default(),
            Device::Substation(s) => self.by_substation.get(&s).cloned().unwrap_or_default(),
            _ => Vec::new(),
        };
        let mut restored: Vec<Id> = under
            .into_iter()
            .filter(|id| self.outages[id].is_open() && self.outages[id].start <= at)
            .collect();
        // The device's own outage first: the one the alarm's result names.
        restored.sort_by_key(|id| {
            (
                self.outages[id].device != alarm.device,
                self.outages[id].start,
                *id,
            )
        });
        for &outage in &restored {
            let open: Vec<usize> = self.outages[&outage]
                .spans
                .iter()
                .copied()
                .filter(|&i| self.spans[i].on.is_none())
                .collect();
            let meters = open.len();
            for index in open {
                self.close_span(index, at);
                self.turned_on.push(TurnedOn {
                    meter: self.spans[index].meter,
                    at,
                    alarm: alarm.id,
                });
            }
            self.add_source(outage, &key, at, None);
            self.restore_as(
                outage,
                at,
                &key,
                narrate,
                Change::RestoredByScada { meters },
            );
        }
        if let Some(&first) = restored.first() {
            self.alarm_outage.insert(alarm.id, first);
        }
        self.alarm_restored.insert(alarm.id, restored);
    }
}

/// The place of a service's meters whose DP most of them share (ties: the first such).
fn representative(places: &[Place]) -> Place {
    let mut counts: HashMap<Option<Id>, usize> = HashMap::default();
    for p in places {
        *counts.entry(p.dp).or_insert(0) += 1;
    }
    let most = counts.values().copied().max().unwrap_or(0);
    *places
        .iter()
        .find(|p| counts[&p.dp] == most)
        .expect("a service has a meter")
}

/// The meter-report veto (issue 22): a meter a customer called about that spoke (a communication
/// event) within `window` after the call had power then; the trouble was on the customer's side
/// (their own breaker), so the call is no evidence of an outage of the network's. Decided before
/// the fold, with hindsight, on the call and the report alone: a report makes its area replay from
/// `window` before it (`Rules::replay_from`), so every replay that holds the call holds the report
/// too, and the outcome does not depend on which came first. (A meter's own last gasp or power-on
/// between them is not weighed against the report: a replay from a late one of those would not
/// hold the call. Its last gasp still opens its outage.) Returns each such call and its meters.
pub fn answered_calls(inputs: &[Input], window: Time) -> BTreeMap<SourceKey, BTreeSet<Id>> {
    let mut answered: BTreeMap<SourceKey, BTreeSet<Id>> = BTreeMap::new();
    if window <= 0 {
        return answered;
    }
    let mut reports: HashMap<Id, Vec<Time>> = HashMap::default();
    for input in inputs {
        if let Input::Meter(signal) = input {
            if signal.power == Power::Report {
                for meter in &signal.meters {
                    reports.entry(*meter).or_default().push(signal.at);
                }
            }
        }
    }
    if reports.is_empty() {
        return answered;
    }
    for input in inputs {
        let Input::Meter(call) = input else {
            continue;
        };
        if call.power != Power::Off || call.source.kind != SourceKind::CallCenter {
            continue;
        }
        for meter in &call.meters {
            let spoke = reports.get(meter).is_some_and(|times| {
                times
                    .iter()
                    .any(|&at| at > call.at && at - call.at <= window)
            });
            if spoke {
                answered
                    .entry(call.source.clone())
                    .or_default()
                    .insert(*meter);
            }
        }
    }
    answered
}

/// A meter's own report of losing power (Kaifa, ONU): sent as power goes, and repeated by a
/// meter that flaps.
fn is_last_gasp(kind: SourceKind) -> bool {
    matches!(kind, SourceKind::Kaifa | SourceKind::Onu)
}

/// A source's name in descriptions.
pub fn label(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Scada => "SCADA alarm",
        SourceKind::Onu => "ONU event",
        SourceKind::Kaifa => "Kaifa message",
        SourceKind::CallCenter => "call-center ticket",
    }
}

/// The source kind an outage's `event_id` names (`OMS_KAIFA_...`).
fn tag_kind(event_id: &str) -> SourceKind {
    let tag = event_id.strip_prefix("OMS_").unwrap_or(event_id);
    [
        SourceKind::CallCenter,
        SourceKind::Kaifa,
        SourceKind::Onu,
        SourceKind::Scada,
    ]
    .into_iter()
    .find(|kind| tag.starts_with(kind.tag()))
    .unwrap_or(SourceKind::Scada)
}
