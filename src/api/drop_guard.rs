//! The DROP guard (README, "Upgrades, and what DROP EXTENSION does"): an event trigger at
//! `ddl_command_start` that refuses a statement which would drop the extension, and with it its
//! tables, while they hold outage history.
//!
//! It decides from the statement's own parse tree, not from the text the client sent: a string of
//! several statements (as `psql -c`, psycopg2 and migration tools send) reaches it one statement
//! at a time, and `DROP SCHEMA other CASCADE` names no object of ours. An `sql_drop` trigger cannot
//! do this job: the drop takes the extension's own event trigger with it, which then never fires.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use crate::correlation::worker;
use crate::gucs;

/// What a DROP statement names, as far as the extension is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropTarget {
    Extensions(Vec<String>),
    /// Schemas, and whether CASCADE takes their contents (the extension) with them.
    Schemas {
        names: Vec<String>,
        cascade: bool,
    },
    /// `DROP OWNED BY` these roles: it drops every object they own, the extension included.
    OwnedBy(Vec<pg_sys::Oid>),
    Other,
}

impl DropTarget {
    /// Whether the statement drops the extension installed in `schema` and owned by `owner`.
    pub fn drops_extension(&self, schema: &str, owner: pg_sys::Oid) -> bool {
        match self {
            DropTarget::Extensions(names) => names.iter().any(|n| n == "oms_correlation"),
            DropTarget::Schemas { names, cascade } => *cascade && names.iter().any(|n| n == schema),
            DropTarget::OwnedBy(roles) => roles.contains(&owner),
            DropTarget::Other => false,
        }
    }
}

/// Reads what a parse tree drops.
///
/// # Safety
/// `parsetree` is the statement the event trigger fires for.
unsafe fn drop_target(parsetree: *mut pg_sys::Node) -> DropTarget {
    unsafe {
        if parsetree.is_null() {
            return DropTarget::Other;
        }
        match (*parsetree).type_ {
            pg_sys::NodeTag::T_DropStmt => {
                let stmt = parsetree as *mut pg_sys::DropStmt;
                let names = || {
                    list_items((*stmt).objects)
                        .map(|n| string_value(n))
                        .collect()
                };
                match (*stmt).removeType {
                    pg_sys::ObjectType::OBJECT_EXTENSION => DropTarget::Extensions(names()),
                    pg_sys::ObjectType::OBJECT_SCHEMA => DropTarget::Schemas {
                        names: names(),
                        cascade: (*stmt).behavior == pg_sys::DropBehavior::DROP_CASCADE,
                    },
                    _ => DropTarget::Other,
                }
            }
            pg_sys::NodeTag::T_DropOwnedStmt => {
                let stmt = parsetree as *mut pg_sys::DropOwnedStmt;
                DropTarget::OwnedBy(
                    list_items((*stmt).roles)
                        .map(|role| pg_sys::get_rolespec_oid(role as *const pg_sys::RoleSpec, true))
                        .collect(),
                )
            }
            _ => DropTarget::Other,
        }
    }
}

/// The pointers of a `List`.
unsafe fn list_items(list: *mut pg_sys::List) -> impl Iterator<Item = *mut pg_sys::Node> {
    let (elements, length) = if list.is_null() {
        (std::ptr::null_mut(), 0)
    } else {
        unsafe { ((*list).elements, (*list).length as usize) }
    };
    (0..length).map(move |i| unsafe { (*elements.add(i)).ptr_value as *mut pg_sys::Node })
}

/// A `String` node's text (the names a DROP lists).
unsafe fn string_value(node: *mut pg_sys::Node) -> String {
    unsafe {
        if node.is_null() || (*node).type_ != pg_sys::NodeTag::T_String {
            return String::new();
        }
        let sval = (*(node as *mut pg_sys::String)).sval;
        CStr::from_ptr(sval).to_string_lossy().into_owned()
    }
}

const EXTENSION: &str = "SELECT n.nspname::text, e.extowner FROM pg_catalog.pg_extension e \
     JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'oms_correlation'";

/// `ddl_command_start` for DROP EXTENSION, DROP SCHEMA and DROP OWNED (sql/functions/drop_guard.sql).
#[pg_extern(sql = false)]
fn oms_guard_drop(fcinfo: pg_sys::FunctionCallInfo) {
    let target = unsafe {
        let context = (*fcinfo).context;
        if context.is_null() || (*context).type_ != pg_sys::NodeTag::T_EventTriggerData {
            ErrorReport::new(
                PgSqlErrorCode::ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED,
                "oms_guard_drop() is an event trigger",
                "oms_guard_drop",
            )
            .report(PgLogLevel::ERROR);
        }
        drop_target((*(context as *mut pg_sys::EventTriggerData)).parsetree)
    };
    if target == DropTarget::Other {
        return;
    }
    let (schema, owner) = Spi::get_two::<String, pg_sys::Oid>(EXTENSION)
        .unwrap_or_else(|e| panic!("oms_guard_drop: {e}"));
    let (Some(schema), Some(owner)) = (schema, owner) else {
        return;
    };
    if !target.drops_extension(&schema, owner) {
        return;
    }
    // The setting is superuser-only; the library defining it (which running this loaded) discards
    // a placeholder value a non-superuser set, and a non-superuser is refused here anyway.
    if gucs::allow_drop_with_data() && unsafe { pg_sys::superuser() } {
        worker::stop();
        return;
    }
    let (outages, status_events) =
        Spi::get_two::<i64, i64>("SELECT outages, status_events FROM oms_data_at_stake()")
            .unwrap_or_else(|e| panic!("oms_guard_drop: {e}"));
    let (outages, status_events) = (outages.unwrap_or(0), status_events.unwrap_or(0));
    if outages > 0 || status_events > 0 {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
            format!(
                "DROP would delete the oms_correlation tables with {outages} outage records and {status_events} meter status events"
            ),
            "oms_guard_drop",
        )
        .set_hint(
            "SELECT oms_keep_data_on_drop(); first keeps the tables, or a superuser's \
             SET oms_correlation.allow_drop_with_data = on deletes them.",
        )
        .report(PgLogLevel::ERROR);
    }
    worker::stop();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_statements_naming_the_extension_or_cascading_its_schema_drop_it() {
        let owner = pg_sys::Oid::from(10);
        let other = pg_sys::Oid::from(20);
        let schema = |names: &[&str], cascade| DropTarget::Schemas {
            names: names.iter().map(|n| n.to_string()).collect(),
            cascade,
        };
        assert!(
            DropTarget::Extensions(vec!["x".into(), "oms_correlation".into()])
                .drops_extension("public", owner)
        );
        assert!(!DropTarget::Extensions(vec!["postgis".into()]).drops_extension("public", owner));
        assert!(schema(&["other", "public"], true).drops_extension("public", owner));
        assert!(!schema(&["public"], false).drops_extension("public", owner));
        assert!(!schema(&["other"], true).drops_extension("public", owner));
        assert!(DropTarget::OwnedBy(vec![other, owner]).drops_extension("public", owner));
        assert!(!DropTarget::OwnedBy(vec![other]).drops_extension("public", owner));
        assert!(!DropTarget::Other.drops_extension("public", owner));
    }
}
