//! Bearer tokens: `ALTROOT/etc/zones/zonesd/tokens.json` (0600) holds each token's id, name,
//! role and sha256; the token itself is printed once, at creation, and never stored. The file
//! is read on every request, so a revoked token is refused at once. Writers hold an flock on
//! `tokens.lock` and replace the file atomically (write, fsync, rename).

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token may do: viewer reads; operator also acts on zones (create, update, delete,
/// boot, halt, ...); admin also on images, links and tokens.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// One stored token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Hex sha256 of the token.
    pub sha256: String,
    /// RFC 3339.
    pub created: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a token file ({msg}): fix or remove it")]
    Corrupt { path: String, msg: String },
    #[error("token name '{0}' is taken: choose another --name or revoke it first")]
    NameTaken(String),
    #[error("token name '{0}': use 1-64 letters, digits, '.', '_' or '-'")]
    BadName(String),
    #[error("no token with id or name '{0}' (zonesd token list)")]
    NoSuchToken(String),
}

type Result<T> = std::result::Result<T, TokenError>;

/// The token store of one root.
pub struct TokenStore {
    dir: PathBuf,
}

/// The prefix of every token: recognisable in logs and secret scanners.
const PREFIX: &str = "zsd_";

impl TokenStore {
    pub fn new(root: &Path) -> TokenStore {
        TokenStore {
            dir: root.join("etc/zones/zonesd"),
        }
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join("tokens.json")
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TokenError + '_ {
        move |source| TokenError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// Every stored token (none when the file does not exist).
    pub fn list(&self) -> Result<Vec<TokenEntry>> {
        let path = self.file();
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io(&path)(e)),
        };
        let f: TokenFile = serde_json::from_slice(&text).map_err(|e| TokenError::Corrupt {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        Ok(f.tokens)
    }

    /// The entry of the token `presented`, if one is stored (compared in constant time).
    pub fn verify(&self, presented: &str) -> Result<Option<TokenEntry>> {
        let want = hash(presented);
        let mut found = None;
        for t in self.list()? {
            if ct_eq(t.sha256.as_bytes(), want.as_bytes()) {
                found = Some(t);
            }
        }
        Ok(found)
    }

    /// A new token of `role`: its entry and the token (shown once).
    pub fn create(&self, role: Role, name: Option<&str>) -> Result<(TokenEntry, String)> {
        let _lock = self.lock()?;
        let mut tokens = self.list()?;
        let id = hex(&random::<6>());
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| format!("token-{id}"));
        check_name(&name)?;
        if tokens.iter().any(|t| t.name == name) {
            return Err(TokenError::NameTaken(name));
        }
        let token = format!("{PREFIX}{}", hex(&random::<32>()));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let entry = TokenEntry {
            id,
            name,
            role,
            sha256: hash(&token),
            created: zones_linux::runtime::state::rfc3339(now.as_secs() as i64, 0),
        };
        tokens.push(entry.clone());
        self.write(&tokens)?;
        Ok((entry, token))
    }

    /// Removes the token whose id or name is `which`; its entry.
    pub fn revoke(&self, which: &str) -> Result<TokenEntry> {
        let _lock = self.lock()?;
        let mut tokens = self.list()?;
        let i = tokens
            .iter()
            .position(|t| t.id == which || t.name == which)
            .ok_or_else(|| TokenError::NoSuchToken(which.to_string()))?;
        let gone = tokens.remove(i);
        self.write(&tokens)?;
        Ok(gone)
    }

    fn ensure_dir(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(Self::io(&self.dir))
    }

    fn lock(&self) -> Result<fs::File> {
        self.ensure_dir()?;
        let path = self.dir.join("tokens.lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(Self::io(&path))?;
        // SAFETY: flock on a valid, owned descriptor; the lock is released when `f` closes.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(Self::io(&path)(std::io::Error::last_os_error()));
        }
        Ok(f)
    }

    fn write(&self, tokens: &[TokenEntry]) -> Result<()> {
        let path = self.file();
        let tmp = self.dir.join(".tokens.json.tmp");
        let text = serde_json::to_vec_pretty(&TokenFile {
            tokens: tokens.to_vec(),
        })
        .map_err(|e| TokenError::Corrupt {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(Self::io(&tmp))?;
        f.write_all(&text)
            .and_then(|_| f.write_all(b"\n"))
            .and_then(|_| f.sync_all())
            .map_err(Self::io(&tmp))?;
        fs::rename(&tmp, &path).map_err(Self::io(&path))
    }
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(TokenError::BadName(name.to_string()))
    }
}

/// Hex sha256 of a token.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal without an early exit (no timing hint of how much of a hash matched).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// N bytes from the kernel's CSPRNG.
fn random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    let mut got = 0;
    while got < N {
        // SAFETY: writes at most N - got bytes into `buf` from offset `got`, within its bounds.
        let n = unsafe { libc::getrandom(buf[got..].as_mut_ptr().cast(), N - got, 0) };
        if n > 0 {
            got += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            panic!(
                "zonesd: getrandom failed: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_and_revoked_by_id_or_name() {
        let dir = std::env::temp_dir().join(format!("zonesd-tokens-{}", std::process::id()));
        let s = TokenStore::new(&dir);
        let (e, tok) = s.create(Role::Operator, Some("ci")).unwrap();
        assert!(tok.starts_with(PREFIX));
        let text = fs::read_to_string(s.file()).unwrap();
        assert!(!text.contains(&tok) && text.contains(&hash(&tok)));
        assert_eq!(s.verify(&tok).unwrap().unwrap().role, Role::Operator);
        assert!(s.verify("zsd_nope").unwrap().is_none());
        assert!(matches!(
            s.create(Role::Viewer, Some("ci")),
            Err(TokenError::NameTaken(_))
        ));
        assert!(matches!(
            s.create(Role::Viewer, Some("a b")),
            Err(TokenError::BadName(_))
        ));
        s.revoke(&e.id).unwrap();
        assert!(s.verify(&tok).unwrap().is_none());
        assert!(matches!(s.revoke("ci"), Err(TokenError::NoSuchToken(_))));
        let _ = fs::remove_dir_all(&dir);
    }
}
