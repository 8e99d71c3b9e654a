//! The outage stream (SPEC §5.8): each outage a batch changed is announced once on channel
//! `oms_outage`, with its state as the batch left it and the list of its changes, delivered at
//! commit. Status changes made by anyone else are announced by a trigger, which asks
//! `engine_is_writing()` so that the correlator's own are announced once.

use std::cell::Cell;

use pgrx::spi::{SpiClient, SpiResult};

use super::decide::reconcile::Announced;
use super::load::pg;
use crate::db::{arg, execute};

thread_local! {
    static ENGINE_WRITING: Cell<u32> = const { Cell::new(0) };
}

/// While alive, the outage changes in this backend are the correlator's (it announces them).
pub struct EngineWrites(());

impl EngineWrites {
    pub fn begin() -> EngineWrites {
        ENGINE_WRITING.with(|w| w.set(w.get() + 1));
        EngineWrites(())
    }
}

impl Drop for EngineWrites {
    fn drop(&mut self) {
        ENGINE_WRITING.with(|w| w.set(w.get().saturating_sub(1)));
    }
}

pub fn engine_is_writing() -> bool {
    ENGINE_WRITING.with(|w| w.get() > 0)
}

// The messages are built by oms_announce_changes() (sql/functions/stream.sql) from the rows as
// the batch left them.
const ANNOUNCE: &str = "SELECT oms_announce_changes($1, $2, $3, $4)";

/// Queues the batch's announcements (PostgreSQL delivers them when the transaction commits).
pub fn announce(client: &mut SpiClient<'_>, announced: &[&Announced]) -> SpiResult<()> {
    if announced.is_empty() {
        return Ok(());
    }
    execute(
        client,
        ANNOUNCE,
        &[
            arg(announced.iter().map(|a| pg(a.outage)).collect::<Vec<_>>()),
            arg(announced
                .iter()
                .map(|a| a.changes.join(","))
                .collect::<Vec<String>>()),
            arg(announced
                .iter()
                .map(|a| a.source.as_ref().map(|s| s.kind.as_str().to_string()))
                .collect::<Vec<Option<String>>>()),
            arg(announced
                .iter()
                .map(|a| a.source.as_ref().map(|s| s.event_id.to_string()))
                .collect::<Vec<Option<String>>>()),
        ],
    )?;
    Ok(())
}
