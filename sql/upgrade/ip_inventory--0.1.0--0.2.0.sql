-- ip_inventory 0.1.0 -> 0.2.0, run by ALTER EXTENSION ip_inventory UPDATE.
--
-- Every schema change of 0.2.0 is here, in the order it was made; pg_tests/sql/upgrade.sql
-- proves that an upgraded database equals a fresh 0.2.0 install (every function, table,
-- column, constraint, index, view, type, grant and comment) and that no row is lost.
-- Objects that hold no data (functions, views) are replaced; tables are altered in place.
\echo Use "ALTER EXTENSION ip_inventory UPDATE TO '0.2.0'" to load this file. \quit
