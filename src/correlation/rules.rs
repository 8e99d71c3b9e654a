//! The engine's rules as plain Rust (SPEC §5.2-5.4): devices and their keys, noisy-OR confidence,
//! the roll-up thresholds. No SPI here: the statements in `store` and `engine` apply what these
//! decide, and the unit tests below hold the rules on their own.

use std::fmt;

/// The level an outage sits at (`oms_outage_events.scope`), lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

    pub fn parse(text: &str) -> Option<Scope> {
        [
            Scope::Service,
            Scope::DistributionPoint,
            Scope::Feeder,
            Scope::Substation,
        ]
        .into_iter()
        .find(|scope| scope.as_str() == text)
    }
}

/// The device an outage sits on; its key (`oms_outage_events.device_key`) admits one open outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceKey {
    /// The meters behind an ONU: one building, one service outage.
    ServiceOnu(i32),
    /// One meter with no ONU.
    ServiceMeter(String),
    DistributionPoint(String),
    Feeder(String),
    Substation(String),
}

impl DeviceKey {
    pub fn scope(&self) -> Scope {
        match self {
            DeviceKey::ServiceOnu(_) | DeviceKey::ServiceMeter(_) => Scope::Service,
            DeviceKey::DistributionPoint(_) => Scope::DistributionPoint,
            DeviceKey::Feeder(_) => Scope::Feeder,
            DeviceKey::Substation(_) => Scope::Substation,
        }
    }

    /// The service a meter belongs to: its ONU's building when it has one, else itself.
    pub fn service_of(meter: &str, onu: Option<i32>) -> DeviceKey {
        match onu {
            Some(onu) => DeviceKey::ServiceOnu(onu),
            None => DeviceKey::ServiceMeter(meter.to_string()),
        }
    }
}

impl fmt::Display for DeviceKey {
    /// The stored form. The SQL statements build the same strings (`'dp:' || dp_id`, ...).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceKey::ServiceOnu(onu) => write!(f, "service:onu:{onu}"),
            DeviceKey::ServiceMeter(meter) => write!(f, "service:meter:{meter}"),
            DeviceKey::DistributionPoint(dp) => write!(f, "dp:{dp}"),
            DeviceKey::Feeder(feeder) => write!(f, "feeder:{feeder}"),
            DeviceKey::Substation(substation) => write!(f, "substation:{substation}"),
        }
    }
}

/// Confidence from the weights of an outage's distinct source events (SPEC §5.2):
/// 1 - Π(1 - wᵢ). A weight of 1 (SCADA) makes it certain.
pub fn noisy_or(weights: impl IntoIterator<Item = f64>) -> f64 {
    1.0 - weights
        .into_iter()
        .map(|w| 1.0 - w.clamp(0.0, 1.0))
        .product::<f64>()
}

/// The most signals that fall within any one window of `window_micros` (inclusive), for times in
/// microseconds. "Three meters off within five minutes" is this count reaching three, whatever
/// order the signals arrived in.
pub fn most_within_window(times: &[i64], window_micros: i64) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let mut best = 0;
    let mut start = 0;
    for end in 0..sorted.len() {
        while sorted[end] - sorted[start] > window_micros {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// The thresholds of SPEC §5.3 (settings `oms_correlation.rollup_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollUp {
    pub window_micros: i64,
    pub min_meters: usize,
    pub dp_fraction: f64,
    pub min_children: usize,
    pub feeder_fraction: f64,
}

impl RollUp {
    /// Whether the DP's meters that went off (their off times) roll up into a DP outage: enough
    /// distinct meters within one window, or enough of the DP's active meters.
    /// One service's meters, however many (a building behind one ONU), are that service's outage
    /// (SPEC §5.3: one last gasp, one outage for the building): a roll-up needs meters of two
    /// services at least.
    pub fn dp_rolls_up(&self, off_times: &[i64], active_meters: usize, services: usize) -> bool {
        if services < 2 {
            return false;
        }
        let within = most_within_window(off_times, self.window_micros);
        within >= self.min_meters.max(1)
            || fraction_reached(within, active_meters, self.dp_fraction)
    }

    /// Whether a feeder rolls up: enough of its DPs with outages that began within one window, or
    /// enough of its active meters off within one window.
    pub fn feeder_rolls_up(
        &self,
        dp_outage_starts: &[i64],
        meters_off: &[i64],
        active_meters: usize,
        outages: usize,
    ) -> bool {
        self.feeder_children_roll_up(dp_outage_starts)
            || (outages >= 2
                && active_meters > 0
                && self
                    .most_active_meters_for_the_feeder_fraction(meters_off)
                    .is_some_and(|most| active_meters <= most))
    }

    /// Enough of a feeder's DPs have outages that began within one window.
    pub fn feeder_children_roll_up(&self, dp_outage_starts: &[i64]) -> bool {
        most_within_window(dp_outage_starts, self.window_micros) >= self.min_children.max(1)
    }

    /// The most active meters a feeder may have for these meters off to be its roll-up fraction
    /// (none when no meter is off), so that a caller counts a large feeder's meters only that far.
    pub fn most_active_meters_for_the_feeder_fraction(&self, meters_off: &[i64]) -> Option<usize> {
        let within = most_within_window(meters_off, self.window_micros);
        if within == 0 {
            return None;
        }
        if self.feeder_fraction <= 0.0 {
            return Some(usize::MAX);
        }
        // count >= fraction * active, with room for the rounding of a fraction like 0.3.
        Some((within as f64 / self.feeder_fraction + 1e-9).floor() as usize)
    }
}

fn fraction_reached(count: usize, of: usize, fraction: f64) -> bool {
    of > 0 && count > 0 && count as f64 >= fraction * of as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000_000;

    fn rollup() -> RollUp {
        RollUp {
            window_micros: 5 * MINUTE,
            min_meters: 3,
            dp_fraction: 0.5,
            min_children: 2,
            feeder_fraction: 0.3,
        }
    }

    #[test]
    fn device_keys_are_stored_as_the_statements_build_them() {
        assert_eq!(
            DeviceKey::service_of("m1", Some(3230316)).to_string(),
            "service:onu:3230316"
        );
        assert_eq!(
            DeviceKey::service_of("m1", None).to_string(),
            "service:meter:m1"
        );
        assert_eq!(DeviceKey::DistributionPoint("d".into()).to_string(), "dp:d");
        assert_eq!(DeviceKey::Feeder("f".into()).scope().as_str(), "feeder");
        assert!(Scope::Service < Scope::DistributionPoint && Scope::Feeder < Scope::Substation);
    }

    #[test]
    fn noisy_or_combines_independent_sources() {
        assert!((noisy_or([0.6, 0.4]) - 0.76).abs() < 1e-12);
        assert!((noisy_or([0.8, 0.6, 0.4]) - 0.952).abs() < 1e-12);
        assert_eq!(noisy_or([1.0, 0.4]), 1.0);
        assert_eq!(noisy_or([]), 0.0);
    }

    #[test]
    fn the_window_counts_the_densest_stretch_in_any_order() {
        let t = |m: i64| m * MINUTE;
        assert_eq!(most_within_window(&[t(12), t(0), t(4)], 5 * MINUTE), 2);
        assert_eq!(most_within_window(&[t(5), t(0), t(4)], 5 * MINUTE), 3);
        assert_eq!(most_within_window(&[t(0), t(6), t(12)], 5 * MINUTE), 1);
        assert_eq!(most_within_window(&[], 5 * MINUTE), 0);
    }

    #[test]
    fn a_dp_rolls_up_on_three_meters_or_half_of_them() {
        let r = rollup();
        assert!(r.dp_rolls_up(&[0, MINUTE, 2 * MINUTE], 40, 3));
        assert!(!r.dp_rolls_up(&[0, MINUTE], 40, 2));
        // Two of a DP's four meters are half of them.
        assert!(r.dp_rolls_up(&[0, MINUTE], 4, 2));
        // Three meters, but not within five minutes of each other.
        assert!(!r.dp_rolls_up(&[0, 6 * MINUTE, 12 * MINUTE], 40, 3));
        // Four meters of one building are its service outage, not the DP's.
        assert!(!r.dp_rolls_up(&[0, 0, 0, 0], 40, 1));
    }

    #[test]
    fn a_feeder_rolls_up_on_two_dps_or_thirty_percent_of_its_meters() {
        let r = rollup();
        assert!(r.feeder_rolls_up(&[0, 3 * MINUTE], &[], 100, 2));
        assert!(!r.feeder_rolls_up(&[0, 9 * MINUTE], &[], 100, 2));
        let thirty: Vec<i64> = (0..30).map(|i| i * 1_000_000).collect();
        assert!(r.feeder_rolls_up(&[0], &thirty, 100, 2));
        assert!(!r.feeder_rolls_up(&[0], &thirty[..29], 100, 2));
        assert!(!r.feeder_rolls_up(&[0], &thirty, 100, 1));
    }
}
