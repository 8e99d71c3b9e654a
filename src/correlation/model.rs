//! The correlator's vocabulary, as plain Rust shared by `load`, `decide` and `write` (no pgrx):
//! devices, sources, the inputs a batch replays, and the outage records as they are stored.

use std::fmt;

/// A point in time: microseconds since 2000-01-01 UTC, as PostgreSQL stores a `timestamptz`.
pub type Time = i64;
pub type Id = uuid::Uuid;

pub const SECOND: Time = 1_000_000;
pub const MINUTE: Time = 60 * SECOND;
pub const HOUR: Time = 60 * MINUTE;

/// Who said it (`oms_event_sources.source_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    Scada,
    Onu,
    Kaifa,
    CallCenter,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Scada => "scada",
            SourceKind::Onu => "onu",
            SourceKind::Kaifa => "kaifa",
            SourceKind::CallCenter => "call_center",
        }
    }

    pub fn parse(text: &str) -> Option<SourceKind> {
        [
            SourceKind::Scada,
            SourceKind::Onu,
            SourceKind::Kaifa,
            SourceKind::CallCenter,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }

    /// The table its events are stored in (`oms_event_sources.source_table`).
    pub fn table(self) -> &'static str {
        match self {
            SourceKind::Scada => "scada_events",
            SourceKind::Onu => "onu_events",
            SourceKind::Kaifa => "kaifa_events",
            SourceKind::CallCenter => "callcenter_tickets",
        }
    }

    /// The prefix of the `event_id` of an outage it opens (`OMS_KAIFA_...`).
    pub fn tag(self) -> &'static str {
        match self {
            SourceKind::Scada => "SCADA",
            SourceKind::Onu => "ONU",
            SourceKind::Kaifa => "KAIFA",
            SourceKind::CallCenter => "CALL_CENTER",
        }
    }
}

/// One source event: the key of `oms_event_sources` within an outage. Shared, not copied: every
/// span and source of a storm's feeder carries one, through every batch that replays it.
#[derive(Debug, Clone, Eq, PartialOrd, Ord)]
pub struct SourceKey {
    pub kind: SourceKind,
    pub event_id: std::sync::Arc<str>,
}

/// Equal text, as derived; a key compared with its own copy (the replay's rows against the stored
/// ones they were made from, thousands a batch) is known equal without reading the text.
impl PartialEq for SourceKey {
    fn eq(&self, other: &SourceKey) -> bool {
        self.kind == other.kind
            && (std::sync::Arc::ptr_eq(&self.event_id, &other.event_id)
                || self.event_id == other.event_id)
    }
}

impl std::hash::Hash for SourceKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.event_id.hash(state);
    }
}

impl SourceKey {
    pub fn new(kind: SourceKind, event_id: impl Into<std::sync::Arc<str>>) -> SourceKey {
        SourceKey {
            kind,
            event_id: event_id.into(),
        }
    }
}

/// The level an outage sits at (`oms_outage_events.scope`), lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// The meters behind one ONU (a building), or one meter.
    Service,
    DistributionPoint,
    Feeder,
    Substation,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Service => "service",
            Scope::DistributionPoint => "distribution_point",
            Scope::Feeder => "feeder",
            Scope::Substation => "substation",
        }
    }
}

/// A service: the meters behind one ONU (a building), or one meter without an ONU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Onu(i32),
    Meter(Id),
}

/// The device an outage sits on. Its key (`oms_outage_events.device_key`) admits one open outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Device {
    Service(Service),
    Dp(Id),
    Feeder(Id),
    Substation(Id),
}

impl Device {
    pub fn scope(self) -> Scope {
        match self {
            Device::Service(_) => Scope::Service,
            Device::Dp(_) => Scope::DistributionPoint,
            Device::Feeder(_) => Scope::Feeder,
            Device::Substation(_) => Scope::Substation,
        }
    }

    pub fn parse(key: &str) -> Option<Device> {
        let uuid = |text: &str| Id::parse_str(text).ok();
        if let Some(onu) = key.strip_prefix("service:onu:") {
            return onu
                .parse()
                .ok()
                .map(|onu| Device::Service(Service::Onu(onu)));
        }
        if let Some(meter) = key.strip_prefix("service:meter:") {
            return uuid(meter).map(|m| Device::Service(Service::Meter(m)));
        }
        if let Some(dp) = key.strip_prefix("dp:") {
            return uuid(dp).map(Device::Dp);
        }
        if let Some(feeder) = key.strip_prefix("feeder:") {
            return uuid(feeder).map(Device::Feeder);
        }
        key.strip_prefix("substation:")
            .and_then(uuid)
            .map(Device::Substation)
    }
}

impl fmt::Display for Device {
    /// The stored form, `oms_outage_events.device_key`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Service(Service::Onu(onu)) => write!(f, "service:onu:{onu}"),
            Device::Service(Service::Meter(meter)) => write!(f, "service:meter:{meter}"),
            Device::Dp(dp) => write!(f, "dp:{dp}"),
            Device::Feeder(feeder) => write!(f, "feeder:{feeder}"),
            Device::Substation(substation) => write!(f, "substation:{substation}"),
        }
    }
}

/// The correlator works area by area: a feeder and everything under it; a whole substation (its
/// feeders, and its meters on no feeder) while a SCADA alarm of the substation itself is in play;
/// a DP or a service placed on no feeder or substation. Roll-ups never cross a feeder, so an area's
/// outages are decided from its own inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Area {
    Feeder(Id),
    Substation(Id),
    Dp(Id),
    Service(Service),
}

impl fmt::Display for Area {
    /// The stored form, `oms_correlation_inputs.area`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Area::Feeder(feeder) => write!(f, "{}", Device::Feeder(*feeder)),
            Area::Substation(substation) => write!(f, "{}", Device::Substation(*substation)),
            Area::Dp(dp) => write!(f, "{}", Device::Dp(*dp)),
            Area::Service(service) => write!(f, "{}", Device::Service(*service)),
        }
    }
}

impl Area {
    pub fn parse(key: &str) -> Option<Area> {
        Some(match Device::parse(key)? {
            Device::Feeder(feeder) => Area::Feeder(feeder),
            Device::Substation(substation) => Area::Substation(substation),
            Device::Dp(dp) => Area::Dp(dp),
            Device::Service(service) => Area::Service(service),
        })
    }
}

/// Where a meter hangs, and whom it serves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Place {
    pub meter: Id,
    pub customer: Option<Id>,
    pub onu: Option<i32>,
    pub dp: Option<Id>,
    pub feeder: Option<Id>,
    pub substation: Option<Id>,
}

impl Place {
    /// A meter with no customer counts as one customer (SPEC §5.1): its own key.
    pub fn customer_key(&self) -> Id {
        self.customer.unwrap_or(self.meter)
    }

    pub fn service(&self) -> Service {
        match self.onu {
            Some(onu) => Service::Onu(onu),
            None => Service::Meter(self.meter),
        }
    }

    /// The area its signals are logged under (a substation's alarms bring a feeder's area into
    /// its substation's for a replay).
    pub fn area(&self) -> Area {
        match (self.feeder, self.substation, self.dp) {
            (Some(feeder), _, _) => Area::Feeder(feeder),
            (None, Some(substation), _) => Area::Substation(substation),
            (None, None, Some(dp)) => Area::Dp(dp),
            (None, None, None) => Area::Service(self.service()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Power {
    Off,
    On,
    /// The meter spoke (a communication event): it had power then. Queued only where it can
    /// matter, a meter a customer called about (issue 22, the meter-report veto).
    Report,
}

impl Power {
    /// Its name in the queue and the input log.
    pub fn as_str(self) -> &'static str {
        match self {
            Power::Off => "off",
            Power::On => "on",
            Power::Report => "report",
        }
    }

    pub fn parse(text: &str) -> Option<Power> {
        [Power::Off, Power::On, Power::Report]
            .into_iter()
            .find(|power| power.as_str() == text)
    }
}

/// A power signal about meters (ONU, Kaifa, call center): a `power_off` or `power_on` status event
/// of each, told by one source event.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterSignal {
    pub at: Time,
    pub source: SourceKey,
    pub power: Power,
    pub meters: Vec<Id>,
}

/// A SCADA alarm on a feeder or a substation, with the meters its check found affected.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub at: Time,
    pub id: Id,
    pub restoration: bool,
    /// `Device::Feeder` or `Device::Substation`.
    pub device: Device,
    /// The substation of the device (a feeder's outage names it too).
    pub substation: Option<Id>,
    pub affected: Vec<Id>,
    pub severity: Option<String>,
    /// The alarm's reason (`root_cause` of the outage it opens).
    pub cause: Option<String>,
    pub description: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

impl Alarm {
    pub fn source(&self) -> SourceKey {
        SourceKey::new(SourceKind::Scada, self.id.to_string())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Meter(MeterSignal),
    Alarm(Alarm),
}

impl Input {
    pub fn at(&self) -> Time {
        match self {
            Input::Meter(signal) => signal.at,
            Input::Alarm(alarm) => alarm.at,
        }
    }

    pub fn source(&self) -> SourceKey {
        match self {
            Input::Meter(signal) => signal.source.clone(),
            Input::Alarm(alarm) => alarm.source(),
        }
    }

    /// The order inputs apply in: by time; at one instant, what ends power first (a restoration,
    /// then a meter's power-on), then a trip, then a meter's power-off, which then finds the
    /// trip's outage to join; ties by source, so that the order never depends on arrival.
    pub fn order_key(&self) -> (Time, u8, SourceKey) {
        let rank = match self {
            Input::Alarm(alarm) if alarm.restoration => 0,
            Input::Meter(signal) if signal.power != Power::Off => 1,
            Input::Alarm(_) => 2,
            Input::Meter(_) => 3,
        };
        (self.at(), rank, self.source())
    }
}

/// How an outage row stands, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredStatus {
    /// detected, confirmed or in_progress.
    Open {
        confirmed: bool,
        in_progress: bool,
    },
    Restored,
    Merged,
    /// Closed by an operator (cleared, cancelled, or restored by hand): the correlator leaves it
    /// and its meters' spans as they are.
    Closed,
}

/// An outage row of the engine's, as loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredOutage {
    pub id: Id,
    pub event_id: String,
    pub device: Device,
    pub dp: Option<Id>,
    pub feeder: Option<Id>,
    pub substation: Option<Id>,
    pub status: StoredStatus,
    pub start: Time,
    pub opened_at: Time,
    pub restored_at: Option<Time>,
    pub merged_into: Option<Id>,
    pub merged_at: Option<Time>,
    pub parent: Option<Id>,
    pub confidence: f64,
    pub affected_customers: i32,
    pub customers_out: i32,
    pub description: Option<String>,
}

/// A span of a meter's power loss in an outage (`oms_outage_meters`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSpan {
    pub outage: Id,
    /// The outage the span was first placed in; merges move it, never this.
    pub origin: Id,
    pub meter: Id,
    pub off: Time,
    pub on: Option<Time>,
    pub first_source: SourceKey,
    pub place: Place,
    /// Taken into an outage at a DP other than its registered one: a suspected mapping error.
    pub suspected: bool,
}

/// A momentary interruption recorded instead of an outage (`oms_momentary_interruptions`): a
/// meter's weak outage that was over within the declaration delay.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInterruption {
    pub place: Place,
    pub off: Time,
    pub on: Time,
    pub source: SourceKey,
}

/// A source event of an outage (`oms_event_sources`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSource {
    pub outage: Id,
    pub origin: Id,
    pub key: SourceKey,
    pub at: Time,
    /// None for a power-on: no evidence of the outage.
    pub weight: Option<f64>,
}

/// A customer of an outage (`oms_outage_customers`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCustomer {
    pub outage: Id,
    pub customer: Id,
    pub linked_at: Option<Time>,
    pub restored_at: Option<Time>,
}

#[cfg(test)]
mod tests {
    use super::{SourceKey, SourceKind};
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    use std::sync::Arc;

    fn hash(key: &SourceKey) -> u64 {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        h.finish()
    }

    #[test]
    fn a_source_key_is_equal_by_its_text_whether_or_not_it_is_the_same_copy() {
        let shared: Arc<str> = Arc::from("ONU-EVT-1");
        let a = SourceKey::new(SourceKind::Onu, shared.clone());
        let same_copy = SourceKey::new(SourceKind::Onu, shared.clone());
        let other_copy = SourceKey::new(SourceKind::Onu, "ONU-EVT-1");
        assert_eq!(a, same_copy);
        assert_eq!(a, other_copy);
        assert_eq!(hash(&a), hash(&other_copy));
        assert_eq!(a.cmp(&other_copy), std::cmp::Ordering::Equal);
        assert_ne!(a, SourceKey::new(SourceKind::Kaifa, shared));
        assert_ne!(a, SourceKey::new(SourceKind::Onu, "ONU-EVT-2"));
    }
}
