//! Typed property values and their validation: sizes (`512m`, `2g`, `1.5g`), CPU counts (`1.5`),
//! CPU ranges (`1-4`), hostids, booleans, zone names, paths, addresses and link names.
//!
//! Every parser takes `what` (the property as the user names it, e.g. `capped-memory physical`)
//! so that the error names the property and the offending value.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ModelError;

/// Longest zone name illumos accepts (ZONENAME_MAX - 1).
pub const ZONENAME_MAX: usize = 64;
/// Longest Linux network interface name (IFNAMSIZ - 1).
pub const LINKNAME_MAX: usize = 15;

pub(crate) fn invalid(what: &str, value: &str, expected: &str) -> ModelError {
    ModelError::InvalidValue {
        what: what.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

/// An amount of memory in bytes. Written like illumos scaled values: `512m`, `2g`, `1.5g`,
/// `1024k`, `1t` or plain bytes; printed in the largest exact unit, upper case (`1536M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(u64);

impl Size {
    const EXPECTED: &'static str = "a size like 512m or 2g";
    const UNITS: [(char, u32); 4] = [('T', 40), ('G', 30), ('M', 20), ('K', 10)];

    /// A size of exactly `bytes` bytes.
    pub fn from_bytes(bytes: u64) -> Size {
        Size(bytes)
    }

    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Parses `text` (must be more than zero bytes); `what` names the property in errors.
    pub fn parse(what: &str, text: &str) -> Result<Size, ModelError> {
        Self::parse_bytes(text)
            .filter(|b| *b > 0)
            .map(Size)
            .ok_or_else(|| invalid(what, text, Self::EXPECTED))
    }

    fn parse_bytes(text: &str) -> Option<u64> {
        let lower = text.trim().to_ascii_lowercase();
        let body = lower.strip_suffix('b').unwrap_or(&lower);
        let (number, shift) = match body.chars().last()? {
            'k' => (&body[..body.len() - 1], 10),
            'm' => (&body[..body.len() - 1], 20),
            'g' => (&body[..body.len() - 1], 30),
            't' => (&body[..body.len() - 1], 40),
            _ => (body, 0),
        };
        let (int, frac) = split_decimal(number)?;
        let mult: u128 = 1 << shift;
        let frac_scale = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
        let frac_value: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        let int_value: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let total = int_value.checked_mul(mult)? + frac_value * mult / frac_scale;
        u64::try_from(total).ok()
    }
}

/// Splits "12.5" into ("12", "5"); accepts "12", "12.", ".5"; refuses anything else.
fn split_decimal(number: &str) -> Option<(&str, &str)> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) || frac.len() > 18 {
        return None;
    }
    Some((int, frac))
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, shift) in Self::UNITS {
            let scale = 1u64 << shift;
            if self.0 >= scale && self.0.is_multiple_of(scale) {
                return write!(f, "{}{}", self.0 / scale, unit);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// A link bandwidth in bits per second, written like dladm's `maxbw`: `10M`, `1.5G`, `500K`,
/// or a plain number of Mbit/s (`100` is 100 Mbit/s, as on illumos). Decimal units (k = 1000).
/// Printed in the largest exact unit (`10M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bandwidth(u64);

impl Bandwidth {
    const EXPECTED: &'static str =
        "a bandwidth like 10M, 1.5G or 500K (bits per second; a plain number is Mbit/s)";
    const UNITS: [(char, u64); 3] = [('G', 1_000_000_000), ('M', 1_000_000), ('K', 1_000)];
    /// The smallest cap a shaper can hold steadily (illumos refuses below 1.2 Mbit/s; we allow 64K).
    pub const MIN: u64 = 64_000;

    /// A bandwidth of exactly `bps` bits per second.
    pub fn from_bps(bps: u64) -> Bandwidth {
        Bandwidth(bps)
    }

    /// Bits per second.
    pub fn bps(self) -> u64 {
        self.0
    }

    /// Parses `text`; `what` names the property in errors.
    pub fn parse(what: &str, text: &str) -> Result<Bandwidth, ModelError> {
        let lower = text.trim().to_ascii_lowercase();
        let body = lower
            .strip_suffix("bps")
            .or_else(|| lower.strip_suffix("bit"))
            .unwrap_or(&lower);
        let (number, mult): (&str, u128) = match body.chars().last() {
            Some('k') => (&body[..body.len() - 1], 1_000),
            Some('m') => (&body[..body.len() - 1], 1_000_000),
            Some('g') => (&body[..body.len() - 1], 1_000_000_000),
            Some('t') => (&body[..body.len() - 1], 1_000_000_000_000),
            _ => (body, 1_000_000),
        };
        let bps = split_decimal(number).and_then(|(int, frac)| {
            let int_value: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
            let frac_value: u128 = if frac.is_empty() {
                0
            } else {
                frac.parse().ok()?
            };
            let frac_scale = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
            let total = int_value.checked_mul(mult)? + frac_value * mult / frac_scale;
            u64::try_from(total).ok()
        });
        match bps {
            Some(b) if b >= Self::MIN => Ok(Bandwidth(b)),
            Some(_) => Err(invalid(what, text, "a bandwidth of at least 64K")),
            None => Err(invalid(what, text, Self::EXPECTED)),
        }
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, scale) in Self::UNITS {
            if self.0 >= scale && self.0.is_multiple_of(scale) {
                return write!(f, "{}{}", self.0 / scale, unit);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// A number of CPUs with two decimals, as `capped-cpu ncpus` takes it (`.75`, `1.5`, `3`).
/// Stored in hundredths, which is also the illumos `zone.cpu-cap` percentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ncpus(u32);

impl Ncpus {
    const EXPECTED: &'static str = "a number of CPUs like 1, 1.5 or .75 (at most two decimals)";

    /// Parses `text`; `what` names the property in errors.
    pub fn parse(what: &str, text: &str) -> Result<Ncpus, ModelError> {
        Self::parse_hundredths(text.trim())
            .filter(|h| *h > 0)
            .map(Ncpus)
            .ok_or_else(|| invalid(what, text, Self::EXPECTED))
    }

    fn parse_hundredths(text: &str) -> Option<u32> {
        let (int, frac) = split_decimal(text)?;
        if frac.len() > 2 {
            return None;
        }
        let int: u32 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let frac: u32 = format!("{frac:0<2}").parse().ok()?;
        int.checked_mul(100)?.checked_add(frac)
    }

    /// The value in hundredths of a CPU (the illumos `zone.cpu-cap` percentage).
    pub fn hundredths(self) -> u32 {
        self.0
    }

    /// From hundredths of a CPU (`150` is 1.5 CPUs).
    pub fn from_hundredths(h: u32) -> Ncpus {
        Ncpus(h)
    }
}

impl fmt::Display for Ncpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{int}"),
            f10 if f10 % 10 == 0 => write!(f, "{int}.{}", f10 / 10),
            _ => write!(f, "{int}.{frac:02}"),
        }
    }
}

/// `dedicated-cpu ncpus`: a count (`2`) or a range (`1-4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CpuRange {
    pub min: u32,
    pub max: u32,
}

impl CpuRange {
    const EXPECTED: &'static str = "a number of CPUs like 2 or a range like 1-4";

    /// Parses `text`; `what` names the property in errors.
    pub fn parse(what: &str, text: &str) -> Result<CpuRange, ModelError> {
        let t = text.trim();
        let (lo, hi) = t.split_once('-').unwrap_or((t, t));
        match (lo.parse::<u32>(), hi.parse::<u32>()) {
            (Ok(min), Ok(max)) if min >= 1 && min <= max => Ok(CpuRange { min, max }),
            _ => Err(invalid(what, text, Self::EXPECTED)),
        }
    }
}

impl fmt::Display for CpuRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

/// The emulated 32-bit hostid (`0` to `fffffffe`, hexadecimal, optional `0x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hostid(pub u32);

impl Hostid {
    /// Parses `text`; `what` names the property in errors.
    pub fn parse(what: &str, text: &str) -> Result<Hostid, ModelError> {
        let t = text.trim();
        let hex = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        match u32::from_str_radix(hex, 16) {
            Ok(v) if v != u32::MAX && !hex.starts_with('+') => Ok(Hostid(v)),
            _ => Err(invalid(
                what,
                text,
                "a hexadecimal number from 0 to fffffffe",
            )),
        }
    }
}

impl fmt::Display for Hostid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

macro_rules! string_serde {
    ($ty:ty, $what:expr) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                <$ty>::parse($what, &text).map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(Size, "size");
string_serde!(Ncpus, "ncpus");
string_serde!(CpuRange, "ncpus");
string_serde!(Hostid, "hostid");
string_serde!(Bandwidth, "maxbw");

/// `true` or `false` (any case).
pub fn parse_bool(what: &str, text: &str) -> Result<bool, ModelError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(what, text, "true or false")),
    }
}

/// A whole number within `min..=max`.
pub fn parse_uint(what: &str, text: &str, min: u64, max: u64) -> Result<u64, ModelError> {
    match text.trim().parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(invalid(
            what,
            text,
            &format!("a whole number from {min} to {max}"),
        )),
    }
}

/// Checks a zone name against the illumos rules: at most 64 characters, starting with a letter
/// or digit, then letters, digits, `_`, `.` and `-`; `global` and `SUNW*` are reserved.
pub fn validate_zone_name(name: &str) -> Result<(), ModelError> {
    let reserved = |why: &str| ModelError::ReservedName {
        value: name.to_string(),
        why: why.to_string(),
    };
    if name == "global" {
        return Err(reserved("is the global zone"));
    }
    if name.starts_with("SUNW") {
        return Err(reserved("names beginning with SUNW are reserved"));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok || name.len() > ZONENAME_MAX {
        return Err(invalid(
            "zonename",
            name,
            "at most 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
        ));
    }
    Ok(())
}

/// A host name (RFC 1123): dot-separated labels of letters, digits and `-`, each 1 to 63
/// characters not starting or ending with `-`; at most 64 characters in all (the UTS limit).
pub fn validate_hostname(what: &str, text: &str) -> Result<(), ModelError> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if text.is_empty() || text.len() > 64 || !text.split('.').all(label_ok) {
        return Err(invalid(
            what,
            text,
            "a host name of letters, digits, '-' and '.' (at most 64 characters)",
        ));
    }
    Ok(())
}

/// An absolute path without `..` components or NUL bytes.
pub fn validate_abs_path(what: &str, text: &str) -> Result<(), ModelError> {
    let ok = text.starts_with('/') && !text.contains('\0') && !text.split('/').any(|c| c == "..");
    if ok {
        Ok(())
    } else {
        Err(invalid(what, text, "an absolute path"))
    }
}

/// An IP address with an optional prefix length: `10.0.0.5`, `10.0.0.5/24`, `fd00::5/64`.
pub fn validate_ip_prefix(what: &str, text: &str) -> Result<(), ModelError> {
    let bad = || invalid(what, text, "an IP address like 10.0.0.5/24");
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip = IpAddr::from_str(addr).map_err(|_| bad())?;
    if let Some(p) = prefix {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match p.parse::<u8>() {
            Ok(len) if len <= max => {}
            _ => return Err(bad()),
        }
    }
    Ok(())
}

/// A plain IP address (`10.0.0.1`).
pub fn validate_ip(what: &str, text: &str) -> Result<(), ModelError> {
    IpAddr::from_str(text)
        .map(|_| ())
        .map_err(|_| invalid(what, text, "an IP address like 10.0.0.1"))
}

/// A datalink (interface) name: 1 to 15 characters, no `/`, `:`, spaces or control characters.
pub fn validate_link_name(what: &str, text: &str) -> Result<(), ModelError> {
    let ok = !text.is_empty()
        && text.len() <= LINKNAME_MAX
        && text != "."
        && text != ".."
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '/' && c != ':');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            what,
            text,
            "a link name of 1 to 15 characters without '/', ':' or spaces",
        ))
    }
}

/// A MAC address `xx:xx:xx:xx:xx:xx` (one or two hex digits per octet), or one of `keywords`.
pub fn validate_mac(what: &str, text: &str, keywords: &[&str]) -> Result<(), ModelError> {
    if keywords.contains(&text) {
        return Ok(());
    }
    let octets: Vec<&str> = text.split(':').collect();
    let ok = octets.len() == 6
        && octets
            .iter()
            .all(|o| (1..=2).contains(&o.len()) && o.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        let mut expected = String::from("a MAC address like 2:8:20:a:b:c");
        for k in keywords {
            expected.push_str(&format!(" or {k}"));
        }
        Err(invalid(what, text, &expected))
    }
}

/// A non-empty value without control characters.
pub fn validate_text(what: &str, text: &str) -> Result<(), ModelError> {
    if text.is_empty() || text.chars().any(|c| c.is_control()) {
        Err(invalid(
            what,
            text,
            "a non-empty value without control characters",
        ))
    } else {
        Ok(())
    }
}

/// Hex-ish random v4 UUID from the kernel's random pool.
pub fn new_uuid() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if read.is_err() {
        // No /dev/urandom (odd chroot): fall back to time and pid, still unique per call.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b[..16].copy_from_slice(&(t ^ (u128::from(std::process::id()) << 64)).to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidths_parse_like_dladm_maxbw() {
        let p = |t| Bandwidth::parse("maxbw", t).map(Bandwidth::bps);
        assert_eq!(p("10M"), Ok(10_000_000));
        assert_eq!(p("10m"), Ok(10_000_000));
        assert_eq!(p("1.5G"), Ok(1_500_000_000));
        assert_eq!(p("500K"), Ok(500_000));
        assert_eq!(p("100"), Ok(100_000_000));
        assert_eq!(Bandwidth::from_bps(10_000_000).to_string(), "10M");
        assert_eq!(Bandwidth::from_bps(1_500_000).to_string(), "1500K");
        let e = Bandwidth::parse("anet maxbw", "10x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"10x\"") && e.contains("10M"), "{e}");
        assert!(Bandwidth::parse("maxbw", "1K").is_err());
    }

    #[test]
    fn hostnames_follow_rfc1123() {
        assert!(validate_hostname("hostname", "web-1.example.com").is_ok());
        for bad in ["", "-a", "a-", "a..b", "a_b", &"x".repeat(65)] {
            assert!(validate_hostname("hostname", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_parse_in_every_unit() {
        let p = |t| Size::parse("x", t).map(Size::bytes);
        assert_eq!(p("512m"), Ok(512 << 20));
        assert_eq!(p("2g"), Ok(2 << 30));
        assert_eq!(p("2G"), Ok(2 << 30));
        assert_eq!(p("1.5g"), Ok(3 << 29));
        assert_eq!(p("1024k"), Ok(1 << 20));
        assert_eq!(p("1t"), Ok(1 << 40));
        assert_eq!(p("512mb"), Ok(512 << 20));
        assert_eq!(p("4096"), Ok(4096));
        assert_eq!(p(".5g"), Ok(1 << 29));
    }

    #[test]
    fn bad_sizes_name_the_property_and_value() {
        for bad in ["12x", "", "g", "-1g", "0", "1.2.3g", "1 g", "99999999999t"] {
            let err = Size::parse("capped-memory physical", bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("capped-memory physical \"{bad}\": expected a size like 512m or 2g")
            );
        }
    }

    #[test]
    fn sizes_print_in_the_largest_exact_unit_and_reparse() {
        for (text, shown) in [
            ("1.5g", "1536M"),
            ("2g", "2G"),
            ("1000", "1000"),
            ("3k", "3K"),
        ] {
            let s = Size::parse("x", text).unwrap();
            assert_eq!(s.to_string(), shown);
            assert_eq!(Size::parse("x", shown).unwrap(), s);
        }
    }

    #[test]
    fn ncpus_take_two_decimals() {
        let p = |t| Ncpus::parse("capped-cpu ncpus", t).map(Ncpus::hundredths);
        assert_eq!(p("1.5"), Ok(150));
        assert_eq!(p(".75"), Ok(75));
        assert_eq!(p("3"), Ok(300));
        assert_eq!(p("0.01"), Ok(1));
        let err = p("1.255").unwrap_err();
        assert_eq!(
            err.to_string(),
            "capped-cpu ncpus \"1.255\": expected a number of CPUs like 1, 1.5 or .75 (at most two decimals)"
        );
        assert!(p("0").is_err());
        assert!(p("abc").is_err());
        assert!(p("-1").is_err());
        for (h, shown) in [(150, "1.5"), (75, "0.75"), (300, "3"), (105, "1.05")] {
            assert_eq!(Ncpus(h).to_string(), shown);
            assert_eq!(Ncpus::parse("x", shown).unwrap(), Ncpus(h));
        }
    }

    #[test]
    fn cpu_ranges() {
        assert_eq!(CpuRange::parse("x", "2").unwrap().to_string(), "2");
        assert_eq!(
            CpuRange::parse("x", "1-4").unwrap(),
            CpuRange { min: 1, max: 4 }
        );
        assert_eq!(CpuRange::parse("x", "1-4").unwrap().to_string(), "1-4");
        for bad in ["0", "4-1", "a", "1-", "1.5"] {
            assert!(CpuRange::parse("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostids() {
        assert_eq!(Hostid::parse("hostid", "0x80f0c086").unwrap().0, 0x80f0c086);
        assert_eq!(
            Hostid::parse("hostid", "80F0C086").unwrap().to_string(),
            "80f0c086"
        );
        assert_eq!(
            Hostid::parse("hostid", "ffffffff").unwrap_err().to_string(),
            "hostid \"ffffffff\": expected a hexadecimal number from 0 to fffffffe"
        );
        assert!(Hostid::parse("hostid", "xyz").is_err());
        assert!(Hostid::parse("hostid", "+1").is_err());
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("autoboot", "true"), Ok(true));
        assert_eq!(parse_bool("autoboot", "FALSE"), Ok(false));
        assert_eq!(
            parse_bool("autoboot", "yes").unwrap_err().to_string(),
            "autoboot \"yes\": expected true or false"
        );
    }

    #[test]
    fn zone_names_follow_illumos_rules() {
        for good in ["a", "web01", "my_zone.x-1", "0zone", &"a".repeat(64)] {
            assert_eq!(validate_zone_name(good), Ok(()), "{good}");
        }
        assert_eq!(
            validate_zone_name("global").unwrap_err().to_string(),
            "zonename \"global\": the name is reserved (is the global zone)"
        );
        assert_eq!(
            validate_zone_name("SUNWfoo").unwrap_err().to_string(),
            "zonename \"SUNWfoo\": the name is reserved (names beginning with SUNW are reserved)"
        );
        let long = "a".repeat(65);
        for bad in ["", "-a", ".a", "a b", "a/b", "zöne", long.as_str()] {
            assert_eq!(
                validate_zone_name(bad).unwrap_err().to_string(),
                format!("zonename \"{bad}\": expected at most 64 letters, digits, '_', '.' or '-', starting with a letter or digit")
            );
        }
    }

    #[test]
    fn paths_addresses_links_and_macs() {
        assert!(validate_abs_path("zonepath", "/zones/a").is_ok());
        assert_eq!(
            validate_abs_path("zonepath", "zones/a")
                .unwrap_err()
                .to_string(),
            "zonepath \"zones/a\": expected an absolute path"
        );
        assert!(validate_abs_path("zonepath", "/zones/../etc").is_err());
        assert!(validate_ip_prefix("a", "10.0.0.5/24").is_ok());
        assert!(validate_ip_prefix("a", "fd00::5/64").is_ok());
        assert!(validate_ip_prefix("a", "10.0.0.5").is_ok());
        assert!(validate_ip_prefix("a", "10.0.0.5/33").is_err());
        assert!(validate_ip_prefix("a", "10.0.0/24").is_err());
        assert!(validate_ip("d", "10.0.0.1").is_ok());
        assert!(validate_ip("d", "10.0.0.1/24").is_err());
        assert!(validate_link_name("p", "vnic0").is_ok());
        assert!(validate_link_name("p", "a/b").is_err());
        assert!(validate_link_name("p", "sixteen-chars-xx").is_err());
        assert!(validate_mac("m", "2:8:20:a:b:c", &[]).is_ok());
        assert!(validate_mac("m", "02:08:20:0a:0b:0c", &[]).is_ok());
        assert!(validate_mac("m", "random", &["random"]).is_ok());
        assert_eq!(
            validate_mac("net mac-addr", "2:8:20", &["random"])
                .unwrap_err()
                .to_string(),
            "net mac-addr \"2:8:20\": expected a MAC address like 2:8:20:a:b:c or random"
        );
    }

    #[test]
    fn uuids_are_v4_and_distinct() {
        let (a, b) = (new_uuid(), new_uuid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
    }
}
