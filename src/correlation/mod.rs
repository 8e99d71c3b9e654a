//! The correlation engine (SPEC §5). Ingest stores the event, the registry change and the audit
//! row, and queues the power signal in the same transaction (`queue`); one correlator at a time
//! drains the queue in batches (`run`):
//!
//! ```text
//! load    the state the batch's areas need: a few set-based reads          load.rs
//! decide  every input of each area, in event-time order, in plain Rust     decide/
//! write   the differences, a few set-based statements                      write.rs
//! ```
//!
//! - `model`: the vocabulary the three share (devices, areas, inputs, stored rows);
//! - `worker`: the background worker that drains the queue, a batch per transaction;
//! - `scada_alarm`: a SCADA alarm's own call: checked, then applied by the correlator;
//! - `registry_cache`: meters' places and DPs' and feeders' active meters, kept between batches;
//! - `outage_cache`: the worker's areas' outage rows, kept between its batches (`kept`: until
//!   when);
//! - `storm`: storm mode, decided in event time from the power-off signals;
//! - `declaration`: the outage declaration delay between batches (pending areas, momentary
//!   interruptions);
//! - `stream`: the `oms_outage` announcements.

pub mod decide;
pub mod declaration;
mod kept;
pub mod load;
pub mod model;
mod outage_cache;
pub mod queue;
mod registry_cache;
pub mod run;
pub mod scada_alarm;
pub mod scada_result;
pub mod storm;
pub mod stream;
pub mod worker;
pub mod write;
