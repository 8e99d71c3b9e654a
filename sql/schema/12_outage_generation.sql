-- The correlator's worker keeps the outage rows it has read and written between batches
-- (src/correlation/outage_cache.rs) instead of reading every outage of a storm's feeder again for
-- each batch. What it keeps is good only while nothing else writes these tables: an operator's
-- status, a SCADA alarm's call, another session draining the queue, a DBA's DELETE.
--
-- Every transaction that writes them moves the generation once, and names itself as the writer.
-- The worker reads the row before a batch reads the tables, and after the batch wrote them: if only
-- its own transaction moved it in between, what it keeps is what is stored. A row, not a sequence,
-- so that the move commits with the change (as oms_registry_generation, and for the same reason).
-- Writers wait for each other here until the first commits; the worker commits every batch.
CREATE TABLE @extschema@.oms_outage_generation (
    id          integer PRIMARY KEY CHECK (id = 1),
    generation  bigint NOT NULL,
    writer      bigint
);
INSERT INTO @extschema@.oms_outage_generation VALUES (1, 0, NULL);

-- Runs as the extension's owner: an operator who may set an outage's status need not have rights on
-- the extension's own tables.
CREATE FUNCTION @extschema@.oms_outages_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_catalog, pg_temp AS $$
BEGIN
    UPDATE @extschema@.oms_outage_generation
    SET generation = generation + 1, writer = pg_catalog.txid_current()
    WHERE id = 1 AND writer IS DISTINCT FROM pg_catalog.txid_current();
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
-- Replica mode (logical replication's apply, a restore run in it) writes them too.
ALTER TABLE @extschema@.oms_outage_events ENABLE ALWAYS TRIGGER oms_outages_changed;
ALTER TABLE @extschema@.oms_outage_meters ENABLE ALWAYS TRIGGER oms_outages_changed;
ALTER TABLE @extschema@.oms_event_sources ENABLE ALWAYS TRIGGER oms_outages_changed;
ALTER TABLE @extschema@.oms_outage_customers ENABLE ALWAYS TRIGGER oms_outages_changed;
