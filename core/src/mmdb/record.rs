//! Typed, borrowing decoders for the fields ip_inventory returns.
//!
//! Only the fields we need are decoded; strings borrow from the mapped file and only the
//! first subdivision is kept, so decoding a City record does not allocate. Everything else
//! (unknown fields, the names in languages nobody asked for, the continent's and registered
//! country's names) is skipped without being decoded: on a GeoLite2 City record that halves
//! the cost of `enrich_ip` (docs/benchmarks.md).

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

thread_local! {
    /// The language the `names` maps being decoded on this thread are read in. Serde's
    /// derived decoders cannot pass context down to nested fields, so `decode_names_in`
    /// sets it around one decode.
    static LANGUAGE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `decode` with `names` maps read in `language` (English as the fallback).
pub(crate) fn decode_names_in<R>(language: &str, decode: impl FnOnce() -> R) -> R {
    LANGUAGE.with(|l| {
        let mut l = l.borrow_mut();
        if *l != language {
            l.clear();
            l.push_str(language);
        }
    });
    decode()
}

/// A `names` map (language → name), of which only the wanted language and English are
/// decoded.
#[derive(Default, Clone, Copy)]
pub(crate) struct Names<'a> {
    wanted: Option<&'a str>,
    english: Option<&'a str>,
}

impl<'a> Names<'a> {
    /// The name in the wanted language, else in English, else none.
    fn get(&self) -> Option<&'a str> {
        self.wanted.or(self.english)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Names<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NamesVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for NamesVisitor<'a> {
            type Value = Names<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of language codes to names")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Names<'a>, M::Error> {
                let mut names = Names::default();
                while let Some(lang) = map.next_key::<&'de str>()? {
                    let wanted = LANGUAGE.with(|l| *l.borrow() == lang);
                    if wanted {
                        names.wanted = Some(map.next_value::<&'de str>()?);
                    } else if lang == "en" {
                        names.english = Some(map.next_value::<&'de str>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(names)
            }
        }
        deserializer.deserialize_map(NamesVisitor(PhantomData))
    }
}

/// The first element of an array; the rest are skipped.
pub(crate) struct First<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FirstVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstVisitor<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<First<T>, S::Error> {
                let first = seq.next_element::<T>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }
        deserializer.deserialize_seq(FirstVisitor(PhantomData))
    }
}

/// A country, subdivision or city: its code and its name.
#[derive(Deserialize, Default)]
pub(crate) struct Place<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: Names<'a>,
}

/// A place of which only the code is returned (continent, registered country); its names
/// are skipped unread.
#[derive(Deserialize, Default)]
struct Coded<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
    #[serde(borrow)]
    code: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Location<'a> {
    latitude: Option<f64>,
    longitude: Option<f64>,
    accuracy_radius: Option<u16>,
    #[serde(borrow)]
    time_zone: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Postal<'a> {
    #[serde(borrow)]
    code: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Traits {
    is_anonymous_proxy: Option<bool>,
    is_satellite_provider: Option<bool>,
    is_anycast: Option<bool>,
}

/// The parts of a GeoIP2/GeoLite2 City (or Country, Enterprise) record we use.
#[derive(Deserialize)]
pub(crate) struct CityRecord<'a> {
    #[serde(borrow)]
    city: Option<Place<'a>>,
    #[serde(borrow)]
    continent: Option<Coded<'a>>,
    #[serde(borrow)]
    country: Option<Place<'a>>,
    #[serde(borrow)]
    registered_country: Option<Coded<'a>>,
    #[serde(borrow)]
    subdivisions: Option<First<Place<'a>>>,
    #[serde(borrow)]
    location: Option<Location<'a>>,
    #[serde(borrow)]
    postal: Option<Postal<'a>>,
    traits: Option<Traits>,
}

/// The flat City fields `enrich_ip` returns, `None` where the record has no value. Strings
/// are `S`: borrowed from the mapped file in [`CityFields`], or their positions in it in the
/// record cache, which thereby keeps exactly these fields.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CityFieldsOf<S> {
    pub country_code: Option<S>,
    pub country_name: Option<S>,
    pub continent_code: Option<S>,
    pub registered_country_code: Option<S>,
    pub subdivision_code: Option<S>,
    pub subdivision_name: Option<S>,
    pub city: Option<S>,
    pub postal_code: Option<S>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub accuracy_radius: Option<u16>,
    pub time_zone: Option<S>,
    pub is_anonymous_proxy: Option<bool>,
    pub is_satellite_provider: Option<bool>,
    pub is_anycast: Option<bool>,
}

/// The City fields with strings borrowed from the mapped file.
pub type CityFields<'a> = CityFieldsOf<&'a str>;

/// How many string fields [`CityFieldsOf`] has.
pub(crate) const CITY_STRINGS: usize = 9;

impl<S: Copy> CityFieldsOf<S> {
    /// The string fields, in declaration order (what the pre-decoded records store, in this
    /// order).
    pub fn strings(&self) -> [Option<S>; CITY_STRINGS] {
        [
            self.country_code,
            self.country_name,
            self.continent_code,
            self.registered_country_code,
            self.subdivision_code,
            self.subdivision_name,
            self.city,
            self.postal_code,
            self.time_zone,
        ]
    }
}

impl<S> CityFieldsOf<S> {
    /// The same fields with every string converted by `convert`; `None` if any conversion
    /// fails.
    #[inline]
    pub(crate) fn try_map_strings<T>(
        self,
        mut convert: impl FnMut(S) -> Option<T>,
    ) -> Option<CityFieldsOf<T>> {
        let mut string = |v: Option<S>| match v {
            None => Some(None),
            Some(v) => convert(v).map(Some),
        };
        Some(CityFieldsOf {
            country_code: string(self.country_code)?,
            country_name: string(self.country_name)?,
            continent_code: string(self.continent_code)?,
            registered_country_code: string(self.registered_country_code)?,
            subdivision_code: string(self.subdivision_code)?,
            subdivision_name: string(self.subdivision_name)?,
            city: string(self.city)?,
            postal_code: string(self.postal_code)?,
            latitude: self.latitude,
            longitude: self.longitude,
            accuracy_radius: self.accuracy_radius,
            time_zone: string(self.time_zone)?,
            is_anonymous_proxy: self.is_anonymous_proxy,
            is_satellite_provider: self.is_satellite_provider,
            is_anycast: self.is_anycast,
        })
    }
}

impl<'a> CityRecord<'a> {
    /// The flat fields; names are in the language the record was decoded in
    /// ([`decode_names_in`]).
    pub(crate) fn flatten(self) -> CityFields<'a> {
        let country = self.country.unwrap_or_default();
        let subdivision = self.subdivisions.and_then(|s| s.0).unwrap_or_default();
        let location = self.location.unwrap_or_default();
        let traits = self.traits.unwrap_or_default();
        CityFields {
            country_code: country.iso_code,
            country_name: country.names.get(),
            continent_code: self.continent.and_then(|c| c.code),
            registered_country_code: self.registered_country.and_then(|c| c.iso_code),
            subdivision_code: subdivision.iso_code,
            subdivision_name: subdivision.names.get(),
            city: self.city.and_then(|c| c.names.get()),
            postal_code: self.postal.and_then(|p| p.code),
            latitude: location.latitude,
            longitude: location.longitude,
            accuracy_radius: location.accuracy_radius,
            time_zone: location.time_zone,
            is_anonymous_proxy: traits.is_anonymous_proxy,
            is_satellite_provider: traits.is_satellite_provider,
            is_anycast: traits.is_anycast,
        }
    }
}

/// The parts of a GeoLite2-ASN / GeoIP2-ISP record we use.
#[derive(Deserialize)]
pub(crate) struct AsnRecord<'a> {
    autonomous_system_number: Option<u32>,
    #[serde(borrow)]
    autonomous_system_organization: Option<&'a str>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AsnFields<'a> {
    pub number: Option<u32>,
    pub organization: Option<&'a str>,
    /// The record names its AS in a form that is no AS number (an IPinfo `asn` that is not
    /// `AS<digits>` within 32 bits): `number` is `None`, and the caller counts it.
    pub malformed: bool,
}

impl<'a> From<AsnRecord<'a>> for AsnFields<'a> {
    fn from(r: AsnRecord<'a>) -> Self {
        AsnFields {
            number: r.autonomous_system_number,
            organization: r.autonomous_system_organization,
            malformed: false,
        }
    }
}

/// The AS number of a record alone (the `ip_asn` hot path).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AsnNumber {
    pub number: Option<u32>,
    /// As [`AsnFields::malformed`].
    pub malformed: bool,
}

impl AsnNumber {
    /// From an IPinfo `asn` string: `"AS174"` is 174; anything else is malformed.
    pub(crate) fn from_ipinfo(asn: Option<&str>) -> AsnNumber {
        match asn {
            None => AsnNumber::default(),
            Some(s) => {
                let number = parse_as_number(s);
                AsnNumber {
                    number,
                    malformed: number.is_none(),
                }
            }
        }
    }
}

/// `AS` followed by the decimal AS number (at most 32 bits, no sign, no spaces), as IPinfo
/// writes it; `None` for anything else.
pub(crate) fn parse_as_number(s: &str) -> Option<u32> {
    let digits = s.strip_prefix("AS")?;
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// An IPinfo Lite record: flat, English only. `country` is the country's name; `asn` is the
/// AS as text (`"AS174"`). `continent` and `as_domain` are not returned by the typed
/// functions (`mmdb_lookup` has them).
#[derive(Deserialize)]
pub(crate) struct IpinfoLiteRecord<'a> {
    #[serde(borrow)]
    country_code: Option<&'a str>,
    #[serde(borrow)]
    country: Option<&'a str>,
    #[serde(borrow)]
    continent_code: Option<&'a str>,
    #[serde(borrow)]
    asn: Option<&'a str>,
    #[serde(borrow)]
    as_name: Option<&'a str>,
}

impl<'a> IpinfoLiteRecord<'a> {
    /// The City fields it has: country code and name, continent code.
    pub(crate) fn city(&self) -> CityFields<'a> {
        CityFields {
            country_code: self.country_code,
            country_name: self.country,
            continent_code: self.continent_code,
            ..CityFields::default()
        }
    }

    pub(crate) fn asn(&self) -> AsnFields<'a> {
        let n = AsnNumber::from_ipinfo(self.asn);
        AsnFields {
            number: n.number,
            organization: self.as_name,
            malformed: n.malformed,
        }
    }
}

/// The anonymizer flags of an Anonymous-IP (or Anonymous Plus) record, or of the `traits` of
/// an Enterprise record.
#[derive(Deserialize, Default, Clone, Copy)]
struct AnonymousTraits {
    is_anonymous: Option<bool>,
    is_anonymous_vpn: Option<bool>,
    is_hosting_provider: Option<bool>,
    is_public_proxy: Option<bool>,
    is_residential_proxy: Option<bool>,
    is_tor_exit_node: Option<bool>,
}

/// An Anonymous-IP record (flags at the top) or an Enterprise record (flags in `traits`).
#[derive(Deserialize)]
pub(crate) struct AnonymousRecord {
    is_anonymous: Option<bool>,
    is_anonymous_vpn: Option<bool>,
    is_hosting_provider: Option<bool>,
    is_public_proxy: Option<bool>,
    is_residential_proxy: Option<bool>,
    is_tor_exit_node: Option<bool>,
    traits: Option<AnonymousTraits>,
}

/// What `ip_anonymous` returns for a record carrying at least one anonymizer flag: a flag the
/// record does not carry is false, as MaxMind's readers answer it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AnonymousFlags {
    pub is_anonymous: bool,
    pub is_anonymous_vpn: bool,
    pub is_hosting_provider: bool,
    pub is_public_proxy: bool,
    pub is_residential_proxy: bool,
    pub is_tor_exit_node: bool,
}

impl AnonymousRecord {
    /// The flags, `None` when the record carries none (an empty record, or an Enterprise
    /// record of an address that is no anonymizer): no anonymizer data for the address.
    pub(crate) fn flags(self) -> Option<AnonymousFlags> {
        let t = self.traits.unwrap_or_default();
        let r = self;
        let any = [
            r.is_anonymous.or(t.is_anonymous),
            r.is_anonymous_vpn.or(t.is_anonymous_vpn),
            r.is_hosting_provider.or(t.is_hosting_provider),
            r.is_public_proxy.or(t.is_public_proxy),
            r.is_residential_proxy.or(t.is_residential_proxy),
            r.is_tor_exit_node.or(t.is_tor_exit_node),
        ]
        .iter()
        .any(Option::is_some);
        if !any {
            return None;
        }
        let flag = |top: Option<bool>, traits: Option<bool>| top.or(traits).unwrap_or(false);
        Some(AnonymousFlags {
            is_anonymous: flag(r.is_anonymous, t.is_anonymous),
            is_anonymous_vpn: flag(r.is_anonymous_vpn, t.is_anonymous_vpn),
            is_hosting_provider: flag(r.is_hosting_provider, t.is_hosting_provider),
            is_public_proxy: flag(r.is_public_proxy, t.is_public_proxy),
            is_residential_proxy: flag(r.is_residential_proxy, t.is_residential_proxy),
            is_tor_exit_node: flag(r.is_tor_exit_node, t.is_tor_exit_node),
        })
    }
}

/// The ISP fields of an ISP record, or of the `traits` of an Enterprise record.
#[derive(Deserialize, Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct IspFields<'a> {
    #[serde(borrow)]
    pub isp: Option<&'a str>,
    #[serde(borrow)]
    pub organization: Option<&'a str>,
    pub autonomous_system_number: Option<u32>,
    #[serde(borrow)]
    pub autonomous_system_organization: Option<&'a str>,
    #[serde(borrow)]
    pub mobile_country_code: Option<&'a str>,
    #[serde(borrow)]
    pub mobile_network_code: Option<&'a str>,
}

/// An ISP record (fields at the top) or an Enterprise record (fields in `traits`).
#[derive(Deserialize)]
pub(crate) struct IspRecord<'a> {
    #[serde(borrow)]
    isp: Option<&'a str>,
    #[serde(borrow)]
    organization: Option<&'a str>,
    autonomous_system_number: Option<u32>,
    #[serde(borrow)]
    autonomous_system_organization: Option<&'a str>,
    #[serde(borrow)]
    mobile_country_code: Option<&'a str>,
    #[serde(borrow)]
    mobile_network_code: Option<&'a str>,
    #[serde(borrow)]
    traits: Option<IspFields<'a>>,
}

impl<'a> IspRecord<'a> {
    /// The fields, `None` when the record carries none (an empty record): no ISP data.
    pub(crate) fn fields(self) -> Option<IspFields<'a>> {
        let t = self.traits.unwrap_or_default();
        let r = self;
        let f = IspFields {
            isp: r.isp.or(t.isp),
            organization: r.organization.or(t.organization),
            autonomous_system_number: r.autonomous_system_number.or(t.autonomous_system_number),
            autonomous_system_organization: r
                .autonomous_system_organization
                .or(t.autonomous_system_organization),
            mobile_country_code: r.mobile_country_code.or(t.mobile_country_code),
            mobile_network_code: r.mobile_network_code.or(t.mobile_network_code),
        };
        (f != IspFields::default()).then_some(f)
    }
}

#[derive(Deserialize, Default)]
struct ConnectionTypeTraits<'a> {
    #[serde(borrow)]
    connection_type: Option<&'a str>,
}

/// A Connection-Type record, or an Enterprise record (`traits.connection_type`).
#[derive(Deserialize)]
pub(crate) struct ConnectionTypeRecord<'a> {
    #[serde(borrow)]
    connection_type: Option<&'a str>,
    #[serde(borrow)]
    traits: Option<ConnectionTypeTraits<'a>>,
}

impl<'a> ConnectionTypeRecord<'a> {
    pub(crate) fn get(self) -> Option<&'a str> {
        self.connection_type
            .or(self.traits.and_then(|t| t.connection_type))
    }
}
