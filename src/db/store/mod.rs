//! Writes each source's own tables, as the base `insert_*_from_json` functions do.
//!
//! Every store is idempotent on the source's redelivery key (SPEC §6): a second delivery writes
//! nothing and returns the first delivery's id with `duplicate = true`. Each source's rows go in as
//! one statement, so a delivery is stored whole or not at all.

pub mod callcenter;
pub mod kaifa;
pub mod onu;
pub mod scada;

/// The id a store wrote, or found when the event had been delivered before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<Id> {
    pub id: Id,
    pub duplicate: bool,
    /// The meters this delivery wrote a status event for (none for a redelivery).
    pub signalled: Vec<pgrx::Uuid>,
}

/// Reads the id of the row a store statement inserted, or `None` when it hit the redelivery key.
pub(crate) fn inserted_id<T: pgrx::FromDatum + pgrx::IntoDatum>(
    table: pgrx::spi::SpiTupleTable<'_>,
) -> pgrx::spi::SpiResult<Option<T>> {
    if table.is_empty() {
        Ok(None)
    } else {
        table.first().get_one::<T>()
    }
}
