//! The correlation engine (SPEC §5): every power signal, from every source, correlated inside the
//! ingest call that brings it into the outage records (`oms_outage_events`, `oms_outage_meters`,
//! `oms_event_sources`, `oms_event_timeline`, `oms_outage_customers`), and announced.
//!
//! - `rules`: the rules as plain Rust (devices, noisy-OR, roll-up thresholds);
//! - `locks`: the device locks every outage change is serialized by;
//! - `signals`: meter signals (ONU, Kaifa, call center) joining, opening and restoring outages;
//! - `rollup`: service outages rolling up to the DP and the feeder; merges;
//! - `scada_alarm`: one SCADA alarm, classified, its device resolved and locked, checked, recorded,
//!   into its `scada_result`;
//! - `scada`, `store`: SCADA alarms as authoritative outages of their device;
//! - `storm`: storm mode, switched by the rate of power-off signals;
//! - `stream`: the `oms_outage` notifications.

pub mod locks;
pub mod rollup;
pub mod rules;
pub mod scada;
pub mod scada_alarm;
pub mod scada_result;
pub mod signals;
pub mod store;
pub mod storm;
pub mod stream;

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::Uuid;

use crate::canonical::{MeterSignal, StatusChange};

/// Correlates a source event's meter signal, once its status events are written for `meters`.
/// Signals that say nothing about power (a meter that merely spoke) change no outage.
pub fn correlate_meter_signal(
    client: &mut SpiClient<'_>,
    signal: &MeterSignal,
    source_table: &str,
    at: TimestampWithTimeZone,
    meters: Vec<Uuid>,
) -> SpiResult<()> {
    let power = match signal.change {
        StatusChange::LastGasp | StatusChange::FeederDeenergized | StatusChange::CustomerReport => {
            signals::Power::Off
        }
        StatusChange::PowerRestored | StatusChange::FeederEnergized => signals::Power::On,
        StatusChange::CommunicationSeen => return Ok(()),
    };
    signals::correlate(
        client,
        &signals::Signal {
            power,
            source: signal.source,
            source_event_id: &signal.source_event_id,
            source_table,
            at,
            meters,
        },
    )
}
