-- Types the Rust functions return. Emitted first (bootstrap): functions refer to them.

CREATE TYPE ip_enrichment AS (
    ip_class                text,
    network                 cidr,
    country_code            text,
    country_name            text,
    continent_code          text,
    registered_country_code text,
    subdivision_code        text,
    subdivision_name        text,
    city                    text,
    postal_code             text,
    latitude                double precision,
    longitude               double precision,
    accuracy_radius         integer,
    time_zone               text,
    is_anonymous_proxy      boolean,
    is_satellite_provider   boolean,
    is_anycast              boolean,
    asn                     bigint,
    asn_org                 text,
    asn_network             cidr,
    maxmind_build           timestamptz,
    asn_build               timestamptz
);

COMMENT ON TYPE ip_enrichment IS
    'Result of enrich_ip(): IANA class, MaxMind City fields (network = matched City prefix) and ASN fields (asn_network = matched ASN prefix); maxmind_build/asn_build are the build times of the City/ASN databases consulted. Non-public addresses carry only ip_class.';

CREATE TYPE ip_list_hit AS (
    network    cidr,
    label      text,
    attributes jsonb
);

COMMENT ON TYPE ip_list_hit IS
    'Result of ip_list_match(): the most specific network of a network list holding the address, its label and its other columns as attributes.';

CREATE TYPE ip_anonymizer AS (
    is_anonymous         boolean,
    is_anonymous_vpn     boolean,
    is_hosting_provider  boolean,
    is_public_proxy      boolean,
    is_residential_proxy boolean,
    is_tor_exit_node     boolean
);

COMMENT ON TYPE ip_anonymizer IS
    'Result of ip_anonymous(): the MaxMind anonymizer flags of an address (a flag the database does not set is false).';

CREATE TYPE ip_isp_data AS (
    isp                            text,
    organization                   text,
    autonomous_system_number       bigint,
    autonomous_system_organization text,
    mobile_country_code            text,
    mobile_network_code            text
);

COMMENT ON TYPE ip_isp_data IS
    'Result of ip_isp(): the MaxMind ISP fields of an address.';
