-- Privileges and descriptions (psql's \df+) of the functions written in Rust.

-- Reloading affects every session of the cluster; verifying reads server files.
REVOKE ALL ON FUNCTION maxmind_reload() FROM PUBLIC;
REVOKE ALL ON FUNCTION maxmind_verify(text, text) FROM PUBLIC;

COMMENT ON FUNCTION ip_class(inet) IS
    'IANA special-purpose class of an address: public, private, loopback, link_local, cgnat, multicast, documentation, benchmarking, reserved, ... (IPv4-mapped addresses by their IPv4 address).';
COMMENT ON FUNCTION ip_country(inet) IS
    'ISO 3166 country code from the MaxMind City database; NULL when unknown or the address is not public.';
COMMENT ON FUNCTION ip_asn(inet) IS
    'Autonomous system number from the MaxMind ASN database; NULL when unknown or the address is not public.';
COMMENT ON FUNCTION ip_asn_org(inet) IS
    'Autonomous system organisation from the MaxMind ASN database; NULL when unknown or the address is not public.';
COMMENT ON FUNCTION enrich_ip(inet) IS
    'MaxMind City and ASN enrichment as one ip_enrichment value. Use FROM t, LATERAL enrich_ip(t.ip) e. An inet with a netmask is looked up by its address.';
COMMENT ON FUNCTION mmdb_lookup(inet, text) IS
    'Whole record of any MaxMind DB file as {"network", "data"}: database is city, asn, a name from ip_inventory.databases, or an absolute path (superusers and pg_read_server_files only).';
COMMENT ON FUNCTION maxmind_reload() IS
    'Validate every configured database in full, then make every backend switch to it at its next lookup; on failure nothing changes. Needs shared_preload_libraries.';
COMMENT ON FUNCTION maxmind_info() IS
    'One row per configured database as this session has it in service: path, type, build time, age, tree size, generation, status, error.';
COMMENT ON FUNCTION maxmind_age() IS
    'Age of the loaded MaxMind data from the databases'' build_epoch metadata: the older of City and ASN.';
COMMENT ON FUNCTION maxmind_verify(text, text) IS
    'Fully verify a MaxMind DB file without installing it; kind is city, asn or any.';
COMMENT ON FUNCTION ip_inventory_maxmind(inet) IS
    'enrich_ip() for recording observations: a database that is not configured or cannot be used leaves its fields and build time NULL (one WARNING per session) instead of raising.';
COMMENT ON FUNCTION ip_inventory_ttl(text) IS
    'How long an answer of cymru, greynoise or rdns stays fresh (ip_inventory.<source>_ttl).';
COMMENT ON FUNCTION ip_canonical(inet) IS
    'The address as ip_inventory keys it: IPv4-mapped IPv6 as IPv4, netmask dropped.';
COMMENT ON FUNCTION ip_anonymize(inet, int, int) IS
    'The network an address falls in, truncated to prefix_v4 (default 24) or prefix_v6 (default 48) bits, with its prefix length: 81.2.69.160 -> 81.2.69.0/24. IPv4-mapped addresses are truncated as IPv4.';
COMMENT ON FUNCTION ip_pseudonymize(inet, text) IS
    'A keyed hash of the address (HMAC-SHA256, 32 hex digits), the same for the same address and salt. Without a salt argument, the salt named by ip_inventory.pseudonymize_salt (superusers only can read it).';
