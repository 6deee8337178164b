//! The qcow2 header (QEMU's docs/interop/qcow2.txt): read, and checked before a qcow2 file
//! enters the image store.
//!
//! A qcow2 file can name other files that qemu then opens: a backing file (`backing_file_offset`)
//! and an external data file (incompatible feature bit 2, header extension `0x44415441`). A disk
//! image from outside is refused with either, since qemu, opening it as a zone's backing
//! image, would open a path of the zone's (or the host's) choosing; encrypted images are
//! refused too (the zone has no key). [`parse`] reads what is there; [`check_importable`]
//! is the policy.

/// The first four bytes of every qcow2 file.
pub const MAGIC: [u8; 4] = *b"QFI\xfb";
/// The most bytes of a file [`parse`] looks at: the header and its extensions live in the
/// first cluster, and clusters are at most 2 MiB.
pub const MAX_HEADER: u64 = 2 << 20;

const EXT_END: u32 = 0;
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
const EXT_FULL_DISK_ENCRYPTION: u32 = 0x0537_be77;
const EXT_DATA_FILE: u32 = 0x4441_5441;

const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
/// Dirty, corrupt, external data file, compression type, extended L2 entries.
const INCOMPAT_KNOWN: u64 = 0b1_1111;

/// What a qcow2 header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// 2 or 3.
    pub version: u32,
    /// The guest-visible size in bytes.
    pub virtual_size: u64,
    pub cluster_bits: u32,
    /// The backing file's name, as written in the header.
    pub backing_file: Option<String>,
    /// The backing file's format (header extension), when recorded.
    pub backing_format: Option<String>,
    /// The external data file's name (header extension), or "" when only the feature bit says so.
    pub data_file: Option<String>,
    /// `crypt_method` is not 0, or a full-disk-encryption header extension is there.
    pub encrypted: bool,
    /// Incompatible feature bits (always 0 in version 2).
    pub incompatible: u64,
}

fn be32(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes(s.try_into().expect("4 bytes")))
        .ok_or_else(|| format!("truncated header (needs byte {})", at + 4))
}

fn be64(b: &[u8], at: usize) -> Result<u64, String> {
    b.get(at..at + 8)
        .map(|s| u64::from_be_bytes(s.try_into().expect("8 bytes")))
        .ok_or_else(|| format!("truncated header (needs byte {})", at + 8))
}

/// A name stored in the header (`len` bytes at `at`), which must lie in `buf`.
fn name_at(buf: &[u8], at: u64, len: u64, what: &str) -> Result<String, String> {
    let end = at
        .checked_add(len)
        .filter(|e| *e <= buf.len() as u64)
        .ok_or_else(|| format!("the {what} name lies outside the first cluster"))?;
    Ok(String::from_utf8_lossy(&buf[at as usize..end as usize]).into_owned())
}

/// Whether `head` starts with the qcow2 magic.
pub fn is_qcow2(head: &[u8]) -> bool {
    head.starts_with(&MAGIC)
}

/// Read the header from `buf`: the start of the file (up to [`MAX_HEADER`] bytes, or all
/// of a shorter file). Errors say what is malformed.
pub fn parse(buf: &[u8]) -> Result<Header, String> {
    if !is_qcow2(buf) {
        return Err("not a qcow2 image (no QFI\\xfb magic)".into());
    }
    let version = be32(buf, 4)?;
    if version != 2 && version != 3 {
        return Err(format!("qcow2 version {version}: expected 2 or 3"));
    }
    let backing_offset = be64(buf, 8)?;
    let backing_size = be32(buf, 16)?;
    let cluster_bits = be32(buf, 20)?;
    if !(9..=21).contains(&cluster_bits) {
        return Err(format!("cluster_bits {cluster_bits}: expected 9 to 21"));
    }
    let virtual_size = be64(buf, 24)?;
    let crypt_method = be32(buf, 32)?;
    let (incompatible, header_length) = if version == 3 {
        let len = be32(buf, 100)?;
        if len < 104 || len % 8 != 0 {
            return Err(format!(
                "header_length {len}: expected at least 104, a multiple of 8"
            ));
        }
        (be64(buf, 72)?, len)
    } else {
        (0, 72)
    };
    let cluster = 1u64 << cluster_bits;
    let first_cluster = &buf[..buf.len().min(cluster as usize)];
    let mut h = Header {
        version,
        virtual_size,
        cluster_bits,
        backing_file: None,
        backing_format: None,
        data_file: None,
        encrypted: crypt_method != 0,
        incompatible,
    };
    if backing_offset != 0 || backing_size != 0 {
        if backing_size > 1023 {
            return Err(format!(
                "backing file name of {backing_size} bytes: at most 1023"
            ));
        }
        h.backing_file = Some(name_at(
            first_cluster,
            backing_offset,
            backing_size.into(),
            "backing file",
        )?);
    }
    read_extensions(first_cluster, header_length as usize, &mut h)?;
    if incompatible & INCOMPAT_DATA_FILE != 0 && h.data_file.is_none() {
        h.data_file = Some(String::new());
    }
    Ok(h)
}

/// The header extensions from `at` to the end marker, all within the first cluster.
fn read_extensions(buf: &[u8], mut at: usize, h: &mut Header) -> Result<(), String> {
    loop {
        let kind = be32(buf, at)
            .map_err(|_| "header extensions run past the first cluster".to_string())?;
        let len = be32(buf, at + 4)
            .map_err(|_| "header extensions run past the first cluster".to_string())?
            as usize;
        if kind == EXT_END {
            return Ok(());
        }
        let data = at + 8;
        let what = match kind {
            EXT_BACKING_FORMAT => "backing format",
            EXT_DATA_FILE => "external data file",
            _ => "extension",
        };
        let value = name_at(buf, data as u64, len as u64, what)?;
        match kind {
            EXT_BACKING_FORMAT => h.backing_format = Some(value),
            EXT_DATA_FILE => h.data_file = Some(value),
            EXT_FULL_DISK_ENCRYPTION => h.encrypted = true,
            _ => {}
        }
        at = data + len.div_ceil(8) * 8;
    }
}

/// Refuse what must not enter the image store: a backing file, an external data file,
/// encryption, a dirty or corrupt image, features this code does not know, a virtual size of 0.
pub fn check_importable(h: &Header) -> Result<(), String> {
    if let Some(b) = &h.backing_file {
        return Err(format!(
            "has a backing file '{b}': qemu would open that host path; flatten it first (qemu-img convert -O qcow2 IN OUT)"
        ));
    }
    if let Some(d) = &h.data_file {
        return Err(format!(
            "has an external data file '{d}': qemu would open that host path; convert it first (qemu-img convert -O qcow2 IN OUT)"
        ));
    }
    if h.encrypted {
        return Err("is encrypted: import a decrypted image (qemu-img convert)".into());
    }
    if h.incompatible & INCOMPAT_CORRUPT != 0 {
        return Err("is marked corrupt: repair it first (qemu-img check -r all)".into());
    }
    if h.incompatible & INCOMPAT_DIRTY != 0 {
        return Err(
            "is dirty (not closed cleanly): repair it first (qemu-img check -r all)".into(),
        );
    }
    let unknown = h.incompatible & !INCOMPAT_KNOWN;
    if unknown != 0 {
        return Err(format!(
            "has unknown incompatible features {unknown:#x}: convert it with this host's qemu-img"
        ));
    }
    if h.virtual_size == 0 {
        return Err("has a virtual size of 0".into());
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A version-3 header of `size` bytes, 64 KiB clusters, with `ext` (type, data) extensions.
    pub(crate) fn header(size: u64, backing: Option<&str>, ext: &[(u32, &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[..4].copy_from_slice(&MAGIC);
        b[4..8].copy_from_slice(&3u32.to_be_bytes());
        b[20..24].copy_from_slice(&16u32.to_be_bytes());
        b[24..32].copy_from_slice(&size.to_be_bytes());
        b[96..100].copy_from_slice(&4u32.to_be_bytes());
        b[100..104].copy_from_slice(&112u32.to_be_bytes());
        let mut at = 112;
        for (kind, data) in ext {
            b[at..at + 4].copy_from_slice(&kind.to_be_bytes());
            b[at + 4..at + 8].copy_from_slice(&(data.len() as u32).to_be_bytes());
            b[at + 8..at + 8 + data.len()].copy_from_slice(data);
            at += 8 + data.len().div_ceil(8) * 8;
        }
        if let Some(name) = backing {
            let off = 2048u64;
            b[8..16].copy_from_slice(&off.to_be_bytes());
            b[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
            b[off as usize..off as usize + name.len()].copy_from_slice(name.as_bytes());
        }
        b
    }

    #[test]
    fn reads_a_plain_v3_header() {
        let h = parse(&header(1 << 30, None, &[])).unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.virtual_size, 1 << 30);
        assert_eq!(h.cluster_bits, 16);
        assert_eq!(h.backing_file, None);
        check_importable(&h).unwrap();
    }

    #[test]
    fn reads_a_v2_header() {
        let mut b = header(10 << 20, None, &[]);
        b[4..8].copy_from_slice(&2u32.to_be_bytes());
        // Version 2 has no header_length: extensions start at 72 (here: the end marker).
        b[72..80].fill(0);
        let h = parse(&b).unwrap();
        assert_eq!((h.version, h.virtual_size), (2, 10 << 20));
        check_importable(&h).unwrap();
    }

    #[test]
    fn refuses_a_backing_file() {
        let b = header(
            1 << 20,
            Some("/etc/shadow"),
            &[(EXT_BACKING_FORMAT, b"raw")],
        );
        let h = parse(&b).unwrap();
        assert_eq!(h.backing_file.as_deref(), Some("/etc/shadow"));
        assert_eq!(h.backing_format.as_deref(), Some("raw"));
        let e = check_importable(&h).unwrap_err();
        assert!(e.contains("backing file '/etc/shadow'"), "{e}");
    }

    #[test]
    fn refuses_an_external_data_file() {
        let b = header(1 << 20, None, &[(EXT_DATA_FILE, b"/dev/sda")]);
        let e = check_importable(&parse(&b).unwrap()).unwrap_err();
        assert!(e.contains("external data file '/dev/sda'"), "{e}");
        // The feature bit alone (no name) is refused too.
        let mut b = header(1 << 20, None, &[]);
        b[72..80].copy_from_slice(&INCOMPAT_DATA_FILE.to_be_bytes());
        let e = check_importable(&parse(&b).unwrap()).unwrap_err();
        assert!(e.contains("external data file"), "{e}");
    }

    #[test]
    fn refuses_encryption_dirt_and_unknown_features() {
        let mut b = header(1 << 20, None, &[]);
        b[32..36].copy_from_slice(&1u32.to_be_bytes());
        let e = check_importable(&parse(&b).unwrap()).unwrap_err();
        assert!(e.contains("encrypted"), "{e}");
        let b = header(1 << 20, None, &[(EXT_FULL_DISK_ENCRYPTION, &[0; 16])]);
        let e = check_importable(&parse(&b).unwrap()).unwrap_err();
        assert!(e.contains("encrypted"), "{e}");
        for (bits, want) in [
            (INCOMPAT_DIRTY, "dirty"),
            (INCOMPAT_CORRUPT, "corrupt"),
            (1 << 7, "unknown incompatible features 0x80"),
        ] {
            let mut b = header(1 << 20, None, &[]);
            b[72..80].copy_from_slice(&bits.to_be_bytes());
            let e = check_importable(&parse(&b).unwrap()).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        let e = check_importable(&parse(&header(0, None, &[])).unwrap()).unwrap_err();
        assert!(e.contains("virtual size of 0"), "{e}");
    }

    #[test]
    fn malformed_headers_are_errors_not_panics() {
        assert!(parse(b"QFI").unwrap_err().contains("magic"));
        assert!(parse(b"RAW\0data").unwrap_err().contains("magic"));
        let mut b = header(1 << 20, None, &[]);
        b[4..8].copy_from_slice(&4u32.to_be_bytes());
        assert!(parse(&b).unwrap_err().contains("version 4"));
        let b = header(1 << 20, None, &[]);
        assert!(parse(&b[..90]).unwrap_err().contains("truncated"));
        let mut b = header(1 << 20, None, &[]);
        b[20..24].copy_from_slice(&30u32.to_be_bytes());
        assert!(parse(&b).unwrap_err().contains("cluster_bits 30"));
        // A backing name beyond the buffer, an extension that never ends.
        let mut b = header(1 << 20, Some("x"), &[]);
        b[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(parse(&b).unwrap_err().contains("outside the first cluster"));
        let mut b = header(1 << 20, None, &[]);
        b[112..116].copy_from_slice(&0x1234u32.to_be_bytes());
        b[116..120].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse(&b).is_err());
        let b = vec![0xffu8; 4096];
        assert!(parse(&b).is_err());
        let mut b = header(1 << 20, None, &[]);
        for i in (112..4096).step_by(8) {
            b[i..i + 4].copy_from_slice(&7u32.to_be_bytes());
        }
        assert!(parse(&b)
            .unwrap_err()
            .contains("run past the first cluster"));
    }
}
