//! `#[pg_test]`s: behaviour inside one backend, one file per area. Each file's tests sit in a
//! `#[pg_schema] mod tests`, the schema pgrx's test runner calls them in.

mod bulk_statement;
mod ingest;
mod schema;
mod timestamps;
