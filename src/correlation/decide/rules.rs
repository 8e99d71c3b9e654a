//! The rules' arithmetic (SPEC §5.2-5.7): noisy-OR confidence, the densest window, roll-up
//! thresholds, flapping, storm mode's windows. Small pure functions the engine calls.

use crate::correlation::model::{Power, SourceKind, Time, HOUR};

/// The settings a batch is decided under (SPEC §8, `oms_correlation_rules`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub rollup: RollUp,
    /// A SCADA outage takes in the predicted outages under its device that began at most this
    /// long before it; older ones are outages of their own.
    pub join_window: Time,
    /// A meter of an outage restored less than this ago that goes off again opens a nested outage.
    pub nested_window: Time,
    /// A meter alone off under its registered DP this close to the start of a DP outage elsewhere
    /// on its feeder is taken into it, suspected mis-mapped (0: never).
    pub mismap_window: Time,
    /// A service outage a meter's own last gasp opened, with nothing stronger behind it, is held
    /// this long before it is declared; back on within it, it was a momentary interruption of the
    /// meter, never an outage (0: declared at once).
    pub declaration_delay: Time,
    /// A call whose meter reports (a communication event) within this after it is
    /// no evidence: the meter had power, the trouble was the customer's (0: never).
    pub call_verify_window: Time,
    pub confirm_confidence: f64,
    pub momentary_window: Time,
    pub flap_threshold: usize,
    pub weights: Weights,
    pub storm: Storm,
}

/// Each source's weight in an outage's confidence (`oms_source_weight()`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub scada: f64,
    pub onu: f64,
    pub kaifa: f64,
    pub call_center: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            scada: 1.0,
            onu: 0.6,
            kaifa: 0.8,
            call_center: 0.4,
        }
    }
}

impl Weights {
    pub fn of(&self, kind: SourceKind) -> f64 {
        match kind {
            SourceKind::Scada => self.scada,
            SourceKind::Onu => self.onu,
            SourceKind::Kaifa => self.kaifa,
            SourceKind::CallCenter => self.call_center,
        }
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            rollup: RollUp::default(),
            join_window: 30 * 60 * 1_000_000,
            nested_window: 10 * 60 * 1_000_000,
            mismap_window: 10 * 1_000_000,
            declaration_delay: 60 * 1_000_000,
            call_verify_window: 15 * 60 * 1_000_000,
            confirm_confidence: 0.8,
            momentary_window: 5 * 60 * 1_000_000,
            flap_threshold: 20,
            weights: Weights::default(),
            storm: Storm::default(),
        }
    }
}

impl Rules {
    /// Where a replay that takes in an input at `at` must start: its own time, but a meter's
    /// report reaches back over `call_verify_window` to the calls it answers (`answered_calls`).
    pub fn replay_from(&self, at: Time, power: Option<Power>) -> Time {
        match power {
            Some(Power::Report) => at - self.call_verify_window.max(0),
            _ => at,
        }
    }

    /// The roll-up window at `at`: wider while storm mode is on.
    pub fn rollup_window(&self, at: Time) -> Time {
        self.storm.widen(self.rollup.window, at)
    }

    pub fn join_window(&self, at: Time) -> Time {
        self.storm.widen(self.join_window, at)
    }

    /// Lookback beyond a batch's first signal that its decisions can reach: the roll-up window
    /// (restored outages it weighs), the nested and join windows, at their widest, and the
    /// mis-mapping window (outages restored in step).
    pub fn lookback(&self) -> Time {
        let widest = |w: Time| (w as f64 * self.storm.multiplier.max(1.0)) as Time;
        widest(self.rollup.window)
            .max(widest(self.nested_window))
            .max(widest(self.join_window))
            .max(self.mismap_window)
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

/// The most times that fall within any one window (inclusive). "Three meters off within five
/// minutes" is this count reaching three, whatever order the signals arrived in.
pub fn most_within_window(times: &[Time], window: Time) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let mut best = 0;
    let mut start = 0;
    for end in 0..sorted.len() {
        while sorted[end] - sorted[start] > window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// The thresholds of SPEC §5.3 (settings `oms_correlation.rollup_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollUp {
    pub window: Time,
    pub min_meters: usize,
    /// The share of a DP's active meters that `min_meters` must also reach: on a big DP, or one
    /// the registry gave a neighbour's meters, a few meters are no DP fault (0: any count).
    pub dp_min_share: f64,
    pub dp_fraction: f64,
    pub min_children: usize,
    pub feeder_fraction: f64,
}

impl Default for RollUp {
    fn default() -> Self {
        RollUp {
            window: 5 * 60 * 1_000_000,
            min_meters: 3,
            dp_min_share: 0.25,
            dp_fraction: 0.5,
            min_children: 2,
            feeder_fraction: 0.3,
        }
    }
}

impl RollUp {
    /// Whether a DP's meters that went off (their off times) roll up into a DP outage: enough
    /// distinct meters within one window (and `dp_min_share` of its active meters), or enough of
    /// the DP's active meters (`dp_fraction`). One service's
    /// meters, however many (a building behind one ONU), are that service's outage (SPEC §5.3: one
    /// last gasp, one outage for the building): a roll-up needs meters of two services at least.
    pub fn dp_rolls_up(
        &self,
        off_times: &[Time],
        window: Time,
        active_meters: usize,
        services: usize,
    ) -> bool {
        if services < 2 {
            return false;
        }
        let within = most_within_window(off_times, window);
        (within >= self.min_meters.max(1)
            && (self.dp_min_share <= 0.0
                || fraction_reached(within, active_meters, self.dp_min_share)))
            || fraction_reached(within, active_meters, self.dp_fraction)
    }

    /// Whether a feeder rolls up: enough of its DPs with outages that began within one window, or
    /// enough of its active meters off within one window, in two outages at least.
    pub fn feeder_rolls_up(
        &self,
        dp_starts: &[Time],
        meters_off: &[Time],
        window: Time,
        active_meters: usize,
        outages: usize,
    ) -> bool {
        most_within_window(dp_starts, window) >= self.min_children.max(1)
            || (outages >= 2
                && fraction_reached(
                    most_within_window(meters_off, window),
                    active_meters,
                    self.feeder_fraction,
                ))
    }

    /// An upper bound of `feeder_rolls_up`, from counts that bound its arguments: DP outages that
    /// began within the window (at least the DPs counted), spans (at least the meters off), and
    /// outages (at least their devices). False only where `feeder_rolls_up` is false.
    pub fn feeder_may_roll_up(
        &self,
        dp_outages: usize,
        spans: usize,
        active_meters: usize,
        outages: usize,
    ) -> bool {
        dp_outages >= self.min_children.max(1)
            || (outages >= 2 && fraction_reached(spans, active_meters, self.feeder_fraction))
    }
}

fn fraction_reached(count: usize, of: usize, fraction: f64) -> bool {
    // count >= fraction * of, with room for the rounding of a fraction like 0.3.
    of > 0 && count > 0 && count as f64 + 1e-9 >= fraction * of as f64
}

/// Whether a meter is flapping at `at` (SPEC §5.7), from the times of its power changes
/// (`oms_meter_is_flapping()`): more than `threshold` changes within an hour, counted since its
/// last quiet hour, the last of them within the hour before `at`.
pub fn is_flapping(changes: &[Time], at: Time, threshold: usize) -> bool {
    let upto = changes.partition_point(|&t| t <= at);
    let times = &changes[..upto];
    let Some(&last) = times.last() else {
        return false;
    };
    if last <= at - HOUR {
        return false;
    }
    // The run since the last quiet hour (a gap of an hour or more between changes).
    let run_start = (1..times.len())
        .rev()
        .find(|&i| times[i] - times[i - 1] >= HOUR)
        .unwrap_or(0);
    let run = &times[run_start..];
    (threshold..run.len()).any(|i| run[i] - run[i - threshold] < HOUR)
}

/// Storm mode (SPEC §5.6) in event time: the intervals during which the correlator's windows are
/// `multiplier` times wider. Decided from the power-off signals' own times (`storm`), so that a
/// replay decides as the first pass did.
#[derive(Debug, Clone, PartialEq)]
pub struct Storm {
    pub multiplier: f64,
    /// Disjoint `[from, until)` intervals, in order; `until` is None while it lasts.
    pub intervals: Vec<(Time, Option<Time>)>,
}

impl Default for Storm {
    fn default() -> Self {
        Storm {
            multiplier: 1.0,
            intervals: Vec::new(),
        }
    }
}

impl Storm {
    pub fn active_at(&self, at: Time) -> bool {
        self.intervals
            .iter()
            .any(|&(from, until)| from <= at && until.is_none_or(|u| at < u))
    }

    pub fn widen(&self, window: Time, at: Time) -> Time {
        if self.multiplier > 1.0 && self.active_at(at) {
            (window as f64 * self.multiplier) as Time
        } else {
            window
        }
    }
}

/// The thresholds of `oms_storm_mode_config`, in signals per `window`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StormThresholds {
    /// Power-off signals (one per meter) within `window` that switch it on (0: never).
    pub enter: u64,
    /// Below this many within `window` for `cooldown`, it switches off.
    pub exit: u64,
    pub window: Time,
    pub cooldown: Time,
}

impl StormThresholds {
    /// From per-minute rates, as `oms_storm_mode_config` states them.
    pub fn per_minute(enter: f64, exit: f64, window: Time, cooldown: Time) -> StormThresholds {
        let per_window = |rate: f64| (rate * window as f64 / 60_000_000.0).ceil().max(0.0) as u64;
        StormThresholds {
            enter: if enter > 0.0 {
                per_window(enter).max(1)
            } else {
                0
            },
            exit: per_window(exit),
            window: window.max(1),
            cooldown: cooldown.max(0),
        }
    }
}

/// Storm mode's intervals from counts of power-off signals per second of event time (sorted,
/// `(second, signals)`), starting off before the first count: on at the first moment whose window
/// holds `enter` signals; off once its window has held fewer than `exit` for `cooldown`. The
/// window empties after the last count, so every storm ends in event time; whether it is over
/// *now* is a question of how far event time has come (`Storm::active_at` the newest signal).
pub fn storm_intervals(counts: &[(Time, u64)], t: &StormThresholds) -> Vec<(Time, Option<Time>)> {
    let mut intervals = Vec::new();
    if t.enter == 0 || counts.is_empty() {
        return intervals;
    }
    // The rate changes only when a second's count enters or leaves the window: evaluate at each
    // count's second, and at each second a window stops holding one.
    let mut moments: Vec<Time> = counts
        .iter()
        .flat_map(|&(s, _)| [s, s + t.window])
        .collect();
    moments.sort_unstable();
    moments.dedup();
    let rate_at = |at: Time| -> u64 {
        let lo = counts.partition_point(|&(s, _)| s <= at - t.window);
        let hi = counts.partition_point(|&(s, _)| s <= at);
        counts[lo..hi].iter().map(|&(_, n)| n).sum()
    };
    let mut on_since: Option<Time> = None;
    // While on: since when the rate has been below the exit threshold.
    let mut low_since: Option<Time> = None;
    for &moment in &moments {
        if let (Some(from), Some(low)) = (on_since, low_since) {
            if moment >= low + t.cooldown {
                intervals.push((from, Some(low + t.cooldown)));
                on_since = None;
                low_since = None;
            }
        }
        let rate = rate_at(moment);
        match on_since {
            None if rate >= t.enter => {
                on_since = Some(moment);
                low_since = None;
            }
            None => {}
            Some(_) if rate >= t.exit.max(1) => low_since = None,
            Some(_) => {
                low_since.get_or_insert(moment);
            }
        }
    }
    // After the last count the window empties: a storm ends a cool-down after its rate fell.
    if let Some(from) = on_since {
        intervals.push((from, low_since.map(|low| low + t.cooldown)));
    }
    intervals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlation::model::{MINUTE, SECOND};

    #[test]
    fn noisy_or_combines_independent_sources() {
        assert!((noisy_or([0.6, 0.4]) - 0.76).abs() < 1e-12);
        assert!((noisy_or([0.8, 0.8, 0.8, 0.4]) - 0.9952).abs() < 1e-12);
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
    fn a_dp_rolls_up_on_three_meters_of_two_services_that_are_a_quarter_of_it_or_half_of_them() {
        let r = RollUp::default();
        let w = 5 * MINUTE;
        assert!(r.dp_rolls_up(&[0, MINUTE, 2 * MINUTE], w, 12, 3));
        // Issue 22 (SPEC §5.3 amended): three of 40 are no DP fault; ten are.
        assert!(!r.dp_rolls_up(&[0, MINUTE, 2 * MINUTE], w, 40, 3));
        assert!(r.dp_rolls_up(&[0; 10], w, 40, 3));
        let any_count = RollUp {
            dp_min_share: 0.0,
            ..RollUp::default()
        };
        assert!(any_count.dp_rolls_up(&[0, MINUTE, 2 * MINUTE], w, 40, 3));
        assert!(!r.dp_rolls_up(&[0, MINUTE], w, 40, 2));
        assert!(r.dp_rolls_up(&[0, MINUTE], w, 4, 2));
        assert!(!r.dp_rolls_up(&[0, 6 * MINUTE, 12 * MINUTE], w, 40, 3));
        assert!(!r.dp_rolls_up(&[0, 0, 0, 0], w, 40, 1));
    }

    #[test]
    fn a_feeder_rolls_up_on_two_dps_or_thirty_percent_of_its_meters() {
        let r = RollUp::default();
        let w = 5 * MINUTE;
        assert!(r.feeder_rolls_up(&[0, 3 * MINUTE], &[], w, 100, 2));
        assert!(!r.feeder_rolls_up(&[0, 9 * MINUTE], &[], w, 100, 2));
        let thirty: Vec<Time> = (0..30).map(|i| i * SECOND).collect();
        assert!(r.feeder_rolls_up(&[0], &thirty, w, 100, 2));
        assert!(!r.feeder_rolls_up(&[0], &thirty[..29], w, 100, 2));
        assert!(!r.feeder_rolls_up(&[0], &thirty, w, 100, 1));
    }

    #[test]
    fn the_feeder_bound_never_says_no_where_the_feeder_rolls_up() {
        // Every small case, with the counts the engine passes: DP outages in the window, spans,
        // outages (each at least what feeder_rolls_up counts).
        let w = 5 * MINUTE;
        let times = [0, MINUTE, 4 * MINUTE, 6 * MINUTE, 12 * MINUTE];
        let mut said_no = 0;
        for min_children in 1..=3 {
            for fraction in [0.1, 0.3, 0.5] {
                let r = RollUp {
                    min_children,
                    feeder_fraction: fraction,
                    ..RollUp::default()
                };
                for starts in 0..=times.len() {
                    for offs in 0..=times.len() {
                        for active in [0, 3, 10, 40] {
                            for outages in 0..=3 {
                                let (starts, offs) = (&times[..starts], &times[..offs]);
                                let may =
                                    r.feeder_may_roll_up(starts.len(), offs.len(), active, outages);
                                if r.feeder_rolls_up(starts, offs, w, active, outages) {
                                    assert!(may, "{min_children} {fraction} {starts:?} {offs:?} {active} {outages}");
                                }
                                said_no += usize::from(!may);
                            }
                        }
                    }
                }
            }
        }
        assert!(said_no > 0, "a bound that never says no saves nothing");
    }

    #[test]
    fn flapping_needs_more_changes_than_the_threshold_within_an_hour() {
        let m = |n: i64| n * MINUTE;
        let changes = [m(0), m(2), m(4), m(6)];
        // Threshold 2: the third change makes it flap.
        assert!(!is_flapping(&changes, m(3), 2));
        assert!(is_flapping(&changes, m(4), 2));
        assert!(is_flapping(&changes, m(11), 2));
        // An hour after its last change it counts again.
        assert!(!is_flapping(&changes, m(66), 2));
        // A quiet hour starts the count again.
        let later = [m(0), m(2), m(4), m(70), m(72)];
        assert!(!is_flapping(&later, m(72), 2));
        assert!(!is_flapping(&changes, m(11), 20));
    }

    #[test]
    fn storm_intervals_follow_the_rate_with_a_cool_down() {
        let t = StormThresholds {
            enter: 10,
            exit: 3,
            window: 5 * SECOND,
            cooldown: 2 * SECOND,
        };
        // Ten signals in the first second: on at once.
        let mut counts = vec![(0, 10)];
        assert_eq!(storm_intervals(&counts, &t), vec![(0, Some(7 * SECOND))]);
        // A steady trickle of 3 a second keeps it on.
        counts.extend((1..20).map(|s| (s * SECOND, 3)));
        let intervals = storm_intervals(&counts, &t);
        assert_eq!(intervals.len(), 1);
        assert_eq!(intervals[0].0, 0);
        assert!(intervals[0].1.unwrap() >= 20 * SECOND);
        assert!(storm_intervals(&[(0, 9)], &t).is_empty());
        let never = StormThresholds { enter: 0, ..t };
        assert!(storm_intervals(&counts, &never).is_empty());
    }

    #[test]
    fn storm_mode_widens_windows_while_it_lasts() {
        let storm = Storm {
            multiplier: 2.0,
            intervals: vec![(10, Some(20))],
        };
        assert_eq!(storm.widen(5, 9), 5);
        assert_eq!(storm.widen(5, 10), 10);
        assert_eq!(storm.widen(5, 20), 5);
    }
}
