-- The correlator's worker keeps the outage rows it has read and written between batches
-- (src/correlation/outage_cache.rs) instead of reading every outage of a storm's feeder again for
-- each batch. What it keeps is good only while nothing else writes these tables: an operator's
-- status, a SCADA alarm's call, another session draining the queue, a DBA's DELETE.
--
-- Every transaction that writes them leaves its id here, once. The worker counts the rows before a
-- batch reads the tables and after it wrote them: a row it does not know of, once committed, is a
-- writer it did not see. Rows, not a counter in one row: writers never wait for each other here.
-- The worker deletes them from time to time (a writer still open then is counted when it commits).
CREATE TABLE @extschema@.oms_outage_writers (
    xid  bigint PRIMARY KEY
);

-- Runs as the extension's owner: an operator who may set an outage's status need not have rights on
-- the extension's own tables.
CREATE FUNCTION @extschema@.oms_outages_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO @extschema@.oms_outage_writers (xid) VALUES (pg_catalog.txid_current()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
-- Only the owner makes triggers with it (firing one needs no right).
REVOKE ALL ON FUNCTION @extschema@.oms_outages_changed() FROM PUBLIC;

CREATE TRIGGER oms_outages_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE
    ON @extschema@.oms_outage_events FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_outages_changed();
CREATE TRIGGER oms_outages_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE
    ON @extschema@.oms_outage_meters FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_outages_changed();
CREATE TRIGGER oms_outages_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE
    ON @extschema@.oms_event_sources FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_outages_changed();
CREATE TRIGGER oms_outages_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE
    ON @extschema@.oms_outage_customers FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_outages_changed();
-- A session in replica mode (a restore run in it) writes them too. Logical replication's apply fires
-- no statement triggers at all: a worker on a subscriber of these tables keeps nothing
-- (src/correlation/outage_cache.rs asks pg_subscription_rel).
ALTER TABLE @extschema@.oms_outage_events ENABLE ALWAYS TRIGGER oms_outages_changed;
ALTER TABLE @extschema@.oms_outage_meters ENABLE ALWAYS TRIGGER oms_outages_changed;
ALTER TABLE @extschema@.oms_event_sources ENABLE ALWAYS TRIGGER oms_outages_changed;
ALTER TABLE @extschema@.oms_outage_customers ENABLE ALWAYS TRIGGER oms_outages_changed;
