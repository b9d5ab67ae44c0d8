//! Lookup speed of the core alone (no Postgres): the tree walk, the City decode (decoded,
//! through the record cache, from the pre-decoded records) and the ASN decode over uniformly
//! random public IPv4 addresses. Used by `make bench` and for
//! profiling (`valgrind --tool=callgrind`):
//!
//!     cargo run --release --example lookup_speed -- CITY.mmdb ASN.mmdb [COUNT]
//!
//! Prints one JSON object: nanoseconds per address for each step (each step includes the
//! tree walk, `walk_*` is the walk alone), and how concentrated the City records are.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Instant;

use ip_inventory_core::classify::classify;
use ip_inventory_core::mmdb::decoded::DecodedCity;
use ip_inventory_core::mmdb::{CityCache, Database, DbKind};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: lookup_speed CITY.mmdb ASN.mmdb [COUNT]");
        std::process::exit(2);
    }
    let city = Database::open(Path::new(&args[1]), DbKind::City).unwrap_or_else(|e| fail(e));
    let asn = Database::open(Path::new(&args[2]), DbKind::Asn).unwrap_or_else(|e| fail(e));
    let count: usize = args.get(3).map_or(1_000_000, |c| c.parse().expect("COUNT"));

    // xorshift64: reproducible addresses without a dependency.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut ips = Vec::with_capacity(count);
    while ips.len() < count {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let ip = IpAddr::V4(Ipv4Addr::from(state as u32));
        if classify(ip).is_public() {
            ips.push(ip);
        }
    }

    let time = |f: &mut dyn FnMut(IpAddr) -> bool| {
        let start = Instant::now();
        let found = ips.iter().filter(|&&ip| f(ip)).count();
        (start.elapsed().as_nanos() as f64 / count as f64, found)
    };
    let (walk_city, found) = time(&mut |ip| city.lookup(ip).unwrap().is_some_and(|h| h.has_data()));
    let (walk_asn, _) = time(&mut |ip| asn.lookup(ip).unwrap().is_some());
    let (country, _) = time(&mut |ip| {
        let hit = city.lookup(ip).unwrap().unwrap();
        city.country_code(&hit).unwrap().is_some()
    });
    let (city_fields, _) = time(&mut |ip| {
        let hit = city.lookup(ip).unwrap().unwrap();
        city.city_fields(&hit, "en").unwrap().country_code.is_some()
    });
    let mut cache = CityCache::default();
    let (city_cached, _) = time(&mut |ip| {
        let hit = city.lookup(ip).unwrap().unwrap();
        let f = city.city_fields_cached(&hit, "en", &mut cache).unwrap();
        f.country_code.is_some()
    });
    let (hits, misses) = cache.counts();
    // The pre-decoded records (as the store builds them), through the same call.
    let start = Instant::now();
    let bytes = DecodedCity::build(&city, "en", &[0; 32], &|| false)
        .unwrap_or_else(|e| fail(e))
        .expect("a City database gets pre-decoded records");
    let build_ms = start.elapsed().as_millis();
    let file = std::env::temp_dir().join(format!("lookup_speed-{}.decoded", std::process::id()));
    std::fs::write(&file, &bytes).unwrap_or_else(|e| fail(e));
    let mut city = city;
    city.attach_decoded(DecodedCity::open(&file, &[0; 32], "en").expect("just written"));
    let _ = std::fs::remove_file(&file);
    let (country_predecoded, _) = time(&mut |ip| {
        let hit = city.lookup(ip).unwrap().unwrap();
        let d = city.decoded().unwrap();
        hit.record_offset()
            .and_then(|o| d.country_code(o))
            .flatten()
            .is_some()
    });
    // ip_country's path: the country map, else the walk and the slot.
    let (country_map, _) = time(&mut |ip| match city.country_v4(ip) {
        Some((code, _)) => code.is_some(),
        None => {
            let hit = city.lookup(ip).unwrap().unwrap();
            city.country_code(&hit).unwrap().is_some()
        }
    });
    let mapped = ips
        .iter()
        .filter(|&&ip| city.country_v4(ip).is_some())
        .count();
    let (city_predecoded, _) = time(&mut |ip| {
        let hit = city.lookup(ip).unwrap().unwrap();
        let f = city.city_fields_cached(&hit, "en", &mut cache).unwrap();
        f.country_code.is_some()
    });
    let (asn_fields, _) = time(&mut |ip| {
        let hit = asn.lookup(ip).unwrap().unwrap();
        asn.asn_fields(&hit).unwrap().number.is_some()
    });

    // How concentrated the answers are: the share of addresses the most used records serve.
    let mut offsets: Vec<usize> = ips
        .iter()
        .filter_map(|&ip| city.lookup(ip).unwrap().and_then(|h| h.record_offset()))
        .collect();
    offsets.sort_unstable();
    let mut uses: Vec<usize> = offsets
        .chunk_by(|a, b| a == b)
        .map(<[usize]>::len)
        .collect();
    uses.sort_unstable_by(|a, b| b.cmp(a));
    let share = |k: usize| uses.iter().take(k).sum::<usize>() as f64 / offsets.len() as f64;

    println!(
        "{{\"addresses\": {count}, \"city_found\": {found}, \"distinct_city_records\": {}, \
         \"share_of_top_1024_records\": {:.3}, \"share_of_top_8192_records\": {:.3}, \
         \"city_cache_hit_rate\": {:.3}, \"ns_per_address\": {{\"walk_city\": {walk_city:.1}, \
         \"walk_asn\": {walk_asn:.1}, \"country_code\": {country:.1}, \
         \"city_fields\": {city_fields:.1}, \"city_fields_cached\": {city_cached:.1}, \
         \"city_fields_predecoded\": {city_predecoded:.1}, \
         \"country_code_predecoded\": {country_predecoded:.1}, \
         \"country_code_map\": {country_map:.1}, \"asn_fields\": {asn_fields:.1}}}, \
         \"answered_by_country_map\": {mapped}, \
         \"predecoded_bytes\": {}, \"predecoded_build_ms\": {build_ms}}}",
        uses.len(),
        share(1024),
        share(8192),
        hits as f64 / (hits + misses).max(1) as f64,
        bytes.len(),
    );
}

fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("lookup_speed: {e}");
    std::process::exit(1);
}
