//! The outage stream (SPEC §5.8): every change to an outage is announced on channel `oms_outage`,
//! delivered at commit. An ingest collects its changes and announces them together at its end;
//! status changes made by anyone else are announced by a trigger, which asks
//! `engine_is_writing()` so that the engine's own are announced once.

use std::cell::Cell;

use pgrx::spi::{SpiClient, SpiResult};
use pgrx::Uuid;

use crate::db::{arg, execute};

/// What happened to an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Opened,
    /// A source or meters joined it.
    Joined,
    /// Other outages merged into it (roll-up, or absorption by SCADA).
    Absorbed,
    /// It merged into another outage (`merged_into`).
    Merged,
    Confirmed,
    /// Some of its meters are back.
    PartiallyRestored,
    Restored,
    /// Restored within the momentary window of its start (IEEE 1366): a momentary interruption.
    Momentary,
    /// Recorded already restored (an alarm that arrived after its restoration).
    RecordedRestored,
}

thread_local! {
    static ENGINE_WRITING: Cell<u32> = const { Cell::new(0) };
}

/// While alive, the outage changes in this backend are the engine's (it announces them itself).
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

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Opened => "opened",
            Change::Joined => "joined",
            Change::Absorbed => "absorbed",
            Change::Merged => "merged",
            Change::Confirmed => "confirmed",
            Change::PartiallyRestored => "partially_restored",
            Change::Restored => "restored",
            Change::Momentary => "momentary",
            Change::RecordedRestored => "recorded_restored",
        }
    }
}

// The message is built by oms_announce_outages() (sql/functions/stream.sql), which the status
// trigger for operators' changes shares.
const ANNOUNCE: &str = "SELECT oms_announce_outages($1, $2, $3, $4)";

/// The changes of one ingest call, announced together at its end.
#[derive(Debug, Default)]
pub struct Announcements {
    changes: Vec<(Uuid, Change)>,
}

impl Announcements {
    pub fn push(&mut self, outage: Uuid, change: Change) {
        if !self.changes.contains(&(outage, change)) {
            self.changes.push((outage, change));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Queues the messages (PostgreSQL delivers them when the transaction commits).
    pub fn send(
        self,
        client: &mut SpiClient<'_>,
        source_type: &str,
        source_event_id: &str,
    ) -> SpiResult<()> {
        if self.changes.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = self.changes.iter().map(|(id, _)| *id).collect();
        let kinds: Vec<&str> = self.changes.iter().map(|(_, c)| c.as_str()).collect();
        execute(
            client,
            ANNOUNCE,
            &[arg(ids), arg(kinds), arg(source_type), arg(source_event_id)],
        )?;
        Ok(())
    }
}
