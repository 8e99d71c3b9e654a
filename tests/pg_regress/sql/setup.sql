-- Runs once on a fresh database: the extension and the demo grid (the users' runbook scenario).
CREATE EXTENSION oms_correlation;
\set ECHO none
\set QUIET on
\i ../../demo/grid.sql
\set QUIET off
\set ECHO all
SELECT count(*) AS active_meters FROM oms_meters WHERE status = 'active';
