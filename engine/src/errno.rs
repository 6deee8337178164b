//! Error texts in runc's words. runc is written in Go, whose errno strings are glibc's
//! strerror text with a lower-case first letter ("no such file or directory"); tools that wrap
//! runc match those substrings, so messages that quote an errno use this text.

/// Go's text of `errno`, e.g. 2 → "no such file or directory".
pub fn text(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    // std appends " (os error N)" to strerror's text.
    let s = match s.rfind(" (os error ") {
        Some(i) => &s[..i],
        None => &s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => format!("errno {errno}"),
    }
}

/// Go's text of an io error: its errno's text, or its own message.
pub fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => text(n),
        None => e.to_string(),
    }
}

/// Go's text of a nix errno.
pub fn nix_text(e: nix::Error) -> String {
    text(e as i32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn texts_are_gos() {
        assert_eq!(super::text(libc::ENOENT), "no such file or directory");
        assert_eq!(super::text(libc::EACCES), "permission denied");
        assert_eq!(super::text(libc::ENOEXEC), "exec format error");
        assert_eq!(
            super::nix_text(nix::Error::EPERM),
            "operation not permitted"
        );
    }
}
