//! Interface names, MAC addresses and IP prefixes: checked before anything is created.

use std::net::IpAddr;

use crate::{NetError, Result};

/// The kernel's limit: IFNAMSIZ (16) less the terminating NUL.
pub const MAX_IFNAME: usize = 15;

/// A name the kernel accepts for an interface (dev_valid_name), and no more.
pub fn check_ifname(name: &str) -> Result<()> {
    let bad = |why| {
        Err(NetError::BadName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_IFNAME {
        return bad("longer than 15 bytes (the kernel's IFNAMSIZ)");
    }
    if name == "." || name == ".." {
        return bad("reserved");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return bad("contains '/', ':' or white space");
    }
    Ok(())
}

/// A 6-byte unicast, non-zero MAC written as `xx:xx:xx:xx:xx:xx` (one-digit bytes allowed).
pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let bad = || NetError::BadMac(text.to_string());
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 2 {
            return Err(bad());
        }
        mac[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 != 0 || mac == [0; 6] {
        return Err(bad());
    }
    Ok(mac)
}

pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A locally administered unicast MAC derived from `seed` (stable for the same seed).
pub fn mac_from_seed(seed: &str) -> [u8; 6] {
    let h = fnv1a(seed.as_bytes());
    let b = h.to_be_bytes();
    [0x02, b[3], b[4], b[5], b[6], b[7]]
}

/// FNV-1a, 64 bit: stable names and MACs from zone and link names.
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `10.0.0.5/24` (the prefix length is required).
pub fn parse_prefix(text: &str) -> Result<(IpAddr, u8)> {
    let bad = || NetError::BadAddress(text.to_string());
    let (a, l) = text.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    let len: u8 = l.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(bad());
    }
    Ok((addr, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        assert!(check_ifname("net0").is_ok());
        assert!(check_ifname("a23456789012345").is_ok());
        let e = check_ifname("a234567890123456").unwrap_err().to_string();
        assert_eq!(
            e,
            "interface name 'a234567890123456': longer than 15 bytes (the kernel's IFNAMSIZ)"
        );
        assert!(check_ifname("").is_err());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("a b").is_err());
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("2:8:20:ab:cd:ef").unwrap(),
            [2, 8, 0x20, 0xab, 0xcd, 0xef]
        );
        assert_eq!(
            format_mac(&[2, 8, 0x20, 0xab, 0xcd, 0xef]),
            "02:08:20:ab:cd:ef"
        );
        for bad in [
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "02:08:20:ab:cd",
            "zz:08:20:ab:cd:ef",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
        let m = mac_from_seed("web/net0");
        assert_eq!(m[0], 0x02);
        assert_eq!(m, mac_from_seed("web/net0"));
        assert_ne!(m, mac_from_seed("db/net0"));
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            parse_prefix("10.0.0.5/24").unwrap(),
            ("10.0.0.5".parse().unwrap(), 24)
        );
        assert_eq!(parse_prefix("fd00::1/64").unwrap().1, 64);
        for bad in ["10.0.0.5", "10.0.0.5/33", "10.0.0.300/24", "x/1"] {
            assert!(parse_prefix(bad).is_err(), "{bad}");
        }
    }
}
