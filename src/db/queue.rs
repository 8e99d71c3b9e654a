//! The correlation queue's SQL that ingest statements share (`correlation::queue` drains it).

/// The queue's row for a statement's status events, as a CTE named `queued`: one row for the
/// source event with its meters (`$from`, a CTE with a `meter_id` column), when `$power` (an SQL
/// expression) says it is a power signal, 'off' or 'on'. Expects $1 time, $2 source type, $3
/// source event id, as every registry statement has them (`db::registry`).
macro_rules! enqueue {
    ($from:literal, $power:literal) => {
        concat!(
            "queued AS (\n    INSERT INTO oms_correlation_queue (at, power, source_type, source_event_id, meters)\n    SELECT $1, ",
            $power,
            ", $2, $3, q.meters\n    FROM (SELECT array_agg(meter_id) AS meters FROM ",
            $from,
            ") AS q\n    WHERE q.meters IS NOT NULL AND ",
            $power,
            " IS NOT NULL\n)"
        )
    };
}
pub(crate) use enqueue;
