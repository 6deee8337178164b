//! Giving back what zoneadmd no longer needs once its zone is up.
//!
//! zoneadmd is a fork of zoneadm that sets the zone up (storage, network, spec, the engine's
//! create and start) and then only waits in poll(2). Setting up touches megabytes of code
//! (the binary is mapped with the kernel's 64 KiB fault-around) and leaves freed heap and a
//! deep stack behind, all still counted in its RSS. [`shed`] drops them:
//! - freed heap goes back to the kernel (`malloc_trim`);
//! - clean, read-only file mappings (code and constants of zoneadm and the libraries whose
//!   pages were never copied on write: smaps says `Anonymous: 0 kB`) are unmapped from the
//!   page tables with `MADV_DONTNEED`; they stay in the page cache and fault back in when the
//!   event loop runs them, so only its working set stays resident;
//! - the part of the main stack below the current frame is released the same way.
//!
//! Nothing that holds data is touched: writable mappings and mappings with private copies are
//! left alone, so this changes what is resident, never what the process sees.

use std::fs;

/// One mapping of /proc/self/smaps with the fields [`shed`] decides on.
#[derive(Debug, Default, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    path: String,
    rss_kib: u64,
    anonymous_kib: u64,
}

impl Mapping {
    /// A file mapping whose resident pages are all page-cache pages: unmapping them loses
    /// nothing.
    fn clean_file_backed(&self) -> bool {
        self.path.starts_with('/') && !self.writable && self.anonymous_kib == 0 && self.rss_kib > 0
    }
}

fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(first) = f.next() else { continue };
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                let perms = f.next().unwrap_or("");
                let path = f.nth(3).unwrap_or("").to_string();
                out.push(Mapping {
                    start,
                    end,
                    writable: perms.contains('w'),
                    path,
                    ..Default::default()
                });
                continue;
            }
        }
        let value = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        if let Some(m) = out.last_mut() {
            match first {
                "Rss:" => m.rss_kib = value,
                "Anonymous:" => m.anonymous_kib = value,
                _ => {}
            }
        }
    }
    out
}

/// The most file mappings [`shed`] drops (a static zoneadm has two, a dynamic one a few per
/// library); any beyond stay resident.
const MAX_RANGES: usize = 32;

/// Drop freed heap, clean file pages and the unused stack from this process's RSS (see the
/// module docs). Call it just before blocking: every code page touched after it (including
/// a measurement of the result) faults back in, 64 KiB at a time.
pub fn shed() {
    // SAFETY: malloc_trim only returns free memory of glibc's heap to the kernel.
    unsafe { libc::malloc_trim(0) };
    let Ok(text) = fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let maps = parse_smaps(&text);
    drop(text);
    // Decide everything before the first madvise: from there on, each 64 KiB block of code
    // or constants this function reaches faults back in, so after it runs only this loop,
    // madvise and the stack release (no string compares, no free, no constants).
    let mut ranges = [(0usize, 0usize); MAX_RANGES];
    let mut n = 0;
    for m in maps
        .iter()
        .filter(|m| m.clean_file_backed())
        .take(MAX_RANGES)
    {
        ranges[n] = (m.start, m.end - m.start);
        n += 1;
    }
    let stack = maps
        .iter()
        .find(|m| m.path == "[stack]")
        .map(|m| (m.start, m.end));
    drop(maps);
    for &(start, len) in &ranges[..n] {
        // SAFETY: the range is one whole read-only file mapping without private copies, so
        // after MADV_DONTNEED its pages fault back in from the file with the same contents.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    }
    if let Some((start, end)) = stack {
        release_stack_below_here(start, end);
    }
}

/// The stack grows down: everything more than a safety margin below this frame is unused.
/// Only on the main thread's stack (`[stack_start, stack_end)` holds this frame). Inlined
/// into [`shed`], so that no other code block is reached after its madvise.
#[inline(always)]
fn release_stack_below_here(stack_start: usize, stack_end: usize) {
    const PAGE: usize = 4096;
    /// Room for the frames below this one while madvise runs (a few hundred bytes), and more.
    const MARGIN: usize = 4 * PAGE;
    let marker = 0u8;
    let here = std::ptr::addr_of!(marker) as usize;
    if !(stack_start..stack_end).contains(&here) {
        return;
    }
    let top = (here & !(PAGE - 1)).saturating_sub(MARGIN);
    if top > stack_start {
        // SAFETY: [stack_start, top) lies below every live frame (the stack grows down and
        // callees of this function use far less than MARGIN), so it holds no live data; it
        // reads as zeros if touched again.
        unsafe {
            libc::madvise(
                stack_start as *mut libc::c_void,
                top - stack_start,
                libc::MADV_DONTNEED,
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5651a10e7000-5651a1415000 r-xp 000e7000 fe:00 5818633                    /usr/sbin/zoneadm
Size:               3256 kB
Rss:                2304 kB
Anonymous:             0 kB
5651a1415000-5651a1446000 r--p 00414000 fe:00 5818633                    /usr/sbin/zoneadm
Rss:                 196 kB
Anonymous:             8 kB
5651a1446000-5651a1448000 rw-p 00444000 fe:00 5818633                    /usr/sbin/zoneadm
Rss:                   8 kB
Anonymous:             0 kB
7fffc65a6000-7fffc65c7000 rw-p 00000000 00:00 0                          [stack]
Rss:                  76 kB
Anonymous:            76 kB
7fc122d21000-7fc122d23000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   4 kB
Anonymous:             0 kB
";

    #[test]
    fn only_clean_read_only_file_mappings_are_dropped() {
        let maps = parse_smaps(SMAPS);
        assert_eq!(maps.len(), 5);
        assert_eq!(maps[0].start, 0x5651a10e7000);
        assert_eq!(maps[0].rss_kib, 2304);
        let clean: Vec<bool> = maps.iter().map(Mapping::clean_file_backed).collect();
        // text: yes; relro with copied pages: no; data: no (writable); stack, vdso: no.
        assert_eq!(clean, [true, false, false, false, false]);
        assert_eq!(maps[3].path, "[stack]");
    }

    #[test]
    fn shedding_keeps_the_process_working() {
        let data: Vec<u64> = (0..10_000).collect();
        // What shed unmaps: the file mappings' resident pages (the whole RSS would also
        // count the heap of the tests running beside this one).
        let file_rss = || {
            let text = fs::read_to_string("/proc/self/smaps").expect("/proc readable");
            parse_smaps(&text)
                .iter()
                .filter(|m| m.path.starts_with('/'))
                .map(|m| m.rss_kib)
                .sum::<u64>()
        };
        let before = file_rss();
        shed();
        let after = file_rss();
        assert!(after <= before + 256, "{before} -> {after} KiB");
        // Code, constants and heap are all still there.
        assert_eq!(data.iter().sum::<u64>(), 49_995_000);
        assert!(format!("{:?}", parse_smaps(SMAPS)[0]).contains("zoneadm"));
    }
}
