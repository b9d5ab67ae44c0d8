-- Network lists (src/lists.rs, docs/network-lists.md): tables of networks users maintain,
-- registered under a name and looked up with ip_list_match() and ip_list_contains().

CREATE TABLE @extschema@.ip_inventory_lists (
    list_name     text PRIMARY KEY CHECK (list_name ~ '^[a-z][a-z0-9_]{0,62}$'),
    list_table    regclass NOT NULL,
    description   text,
    registered_by text NOT NULL,
    registered_at timestamptz NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory_lists', '');
COMMENT ON TABLE @extschema@.ip_inventory_lists IS
    'Registered network lists (ip_list_register): the name ip_list_match() takes and the table holding the networks. Written by ip_list_register/ip_list_unregister only.';
COMMENT ON COLUMN @extschema@.ip_inventory_lists.list_name IS 'The list''s name (a lowercase identifier).';
COMMENT ON COLUMN @extschema@.ip_inventory_lists.list_table IS 'Its table: a network column (cidr or inet), optionally label (text), any other columns as attributes.';
COMMENT ON COLUMN @extschema@.ip_inventory_lists.description IS 'What the list holds.';
COMMENT ON COLUMN @extschema@.ip_inventory_lists.registered_by IS 'The role that registered it.';
COMMENT ON COLUMN @extschema@.ip_inventory_lists.registered_at IS 'When it was registered.';
GRANT SELECT ON @extschema@.ip_inventory_lists TO PUBLIC;

-- The statement trigger ip_list_register puts on a list table (src/lists.rs): marks the lists
-- changed, for every backend once the transaction commits. It reads and writes nothing.
CREATE FUNCTION @extschema@._ip_inventory_list_changed() RETURNS trigger
LANGUAGE c SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ip_inventory_list_changed_wrapper';
COMMENT ON FUNCTION @extschema@._ip_inventory_list_changed() IS
    'Statement trigger on registered list tables: lists are rebuilt in every session after the change commits (internal).';
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_list_changed() FROM PUBLIC;

COMMENT ON FUNCTION @extschema@.ip_list_match(inet, text) IS
    'The most specific network of the list holding the address, with its label and attributes (ip_list_hit); NULL when none does. Needs SELECT on the list''s table.';
COMMENT ON FUNCTION @extschema@.ip_list_contains(inet, text) IS
    'Whether a network of the list holds the address. Needs SELECT on the list''s table.';
COMMENT ON FUNCTION @extschema@.ip_list_register(text, regclass, text) IS
    'Registers a table of networks (network cidr|inet, optional label text, other columns as attributes) as a network list; the caller must own the table.';
COMMENT ON FUNCTION @extschema@.ip_list_unregister(text) IS
    'Forgets a network list; its table stays. The caller must own the table.';
COMMENT ON FUNCTION @extschema@._ip_inventory_list_stats(text) IS
    'Networks, duplicates, ranges and bytes this session holds for a list (internal).';
-- Registering names a list for everyone: for the roles docs/network-lists.md names.
REVOKE ALL ON FUNCTION @extschema@.ip_list_register(text, regclass, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_list_unregister(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_list_stats(text) FROM PUBLIC;
