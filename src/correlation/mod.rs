//! The correlation engine (SPEC §5): every power signal, from every source, correlated inside the
//! ingest call that brings it into the outage records (`oms_outage_events`, `oms_event_sources`,
//! `oms_event_timeline`, `oms_outage_customers`).
//!
//! - `store`: the only code that writes the outage tables;
//! - `scada`: SCADA alarms as outage evidence: device outages, restorations.

pub mod rules;
pub mod scada;
pub mod store;
