//! Pulling an image over the OCI distribution API (`docker://host[:port]/repo:tag` or
//! `@sha256:...`): the manifest (an index or manifest list picks linux/<this arch>), the
//! config, and a reader per layer blob. Authentication follows the registry's
//! `WWW-Authenticate` challenge: `Basic` (credentials sent as they are) or `Bearer` (a token
//! from the realm's token endpoint, asked with the credentials if any, else anonymously).
//!
//! HTTP is ureq (synchronous, rustls): no async runtime in the engine's processes. Every
//! manifest and config is checked against its digest before it is trusted; layer blobs are
//! hashed while they stream (see `ImageStore::pull`).

use std::io::Read;
use std::time::Duration;

use serde_json::Value;

use super::digest::Digest;
use super::source::{self, Descriptor};
use super::{ImageConfig, ImageError};

/// Manifests and configs larger than this are refused (they are JSON of a few KiB).
const JSON_LIMIT: u64 = 4 << 20;
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// `docker://REGISTRY/REPO[:TAG][@DIGEST]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`.
    pub registry: String,
    pub repo: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parse a `docker://` reference. A first component without a dot or a port (and not
    /// `localhost`) is a Docker Hub repository, as docker reads it.
    pub fn parse(text: &str) -> Result<Reference, ImageError> {
        let bad = |why: &str| ImageError::BadReference {
            reference: text.to_string(),
            why: why.to_string(),
        };
        let rest = text
            .strip_prefix("docker://")
            .ok_or_else(|| bad("expected docker://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]"))?;
        let (rest, digest) = match rest.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d)?)),
            None => (rest, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        let (first, path) = name.split_once('/').unwrap_or(("", name));
        let (registry, repo) = if first.contains('.') || first.contains(':') || first == "localhost"
        {
            (first.to_string(), path.to_string())
        } else if first.is_empty() {
            (
                "registry-1.docker.io".to_string(),
                format!("library/{path}"),
            )
        } else {
            ("registry-1.docker.io".to_string(), name.to_string())
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        };
        if repo.is_empty() || !repo.split('/').all(component_ok) {
            return Err(bad(
                "the repository must be lowercase letters, digits, '.', '_', '-' and '/'",
            ));
        }
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                return Err(bad("a tag is letters, digits, '.', '_' and '-'"));
            }
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repo,
            tag,
            digest,
        })
    }

    /// What the manifest is asked for by: the digest when given, else the tag.
    fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repo)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Plain http instead of https.
    pub insecure: bool,
    /// `USER:PASSWORD` for basic auth or the token endpoint.
    pub creds: Option<String>,
}

/// One layer to fetch.
#[derive(Debug, Clone)]
pub struct RemoteLayer {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub diff_id: Option<Digest>,
}

/// A resolved remote image.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The manifest's digest: the image id (the same as importing its OCI layout).
    pub id: Digest,
    pub layers: Vec<RemoteLayer>,
    pub config: ImageConfig,
    pub os: Option<String>,
    pub architecture: Option<String>,
}

/// A session with one repository of one registry.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    reference: Reference,
    creds: Option<String>,
    /// The `Authorization` header that the last challenge called for.
    authz: Option<String>,
}

impl Client {
    pub fn new(reference: &Reference, opts: &PullOptions) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Blob storage behind a redirect (another host) gets no credentials; the
            // registry itself (same host) keeps them.
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .user_agent(concat!("imgadm/", env!("CARGO_PKG_VERSION")))
            .build();
        let scheme = if opts.insecure { "http" } else { "https" };
        Client {
            agent: config.into(),
            base: format!("{scheme}://{}", reference.registry),
            reference: reference.clone(),
            creds: opts.creds.clone(),
            authz: None,
        }
    }

    fn err(&self, url: &str, why: impl Into<String>) -> ImageError {
        ImageError::Registry {
            url: url.to_string(),
            why: why.into(),
        }
    }

    /// GET `path` (below `/v2/<repo>/`), answering one authentication challenge.
    fn get(
        &mut self,
        path: &str,
        accept: &str,
    ) -> Result<ureq::http::Response<ureq::Body>, ImageError> {
        let url = format!("{}/v2/{}/{path}", self.base, self.reference.repo);
        let mut answered = false;
        loop {
            let mut req = self.agent.get(&url).header("Accept", accept);
            if let Some(a) = &self.authz {
                req = req.header("Authorization", a);
            }
            let mut resp = req.call().map_err(|e| self.transport(&url, e))?;
            let status = resp.status().as_u16();
            if status == 401 && !answered {
                let challenge = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                self.authz = Some(self.answer(&url, &challenge)?);
                answered = true;
                continue;
            }
            if (200..300).contains(&status) {
                return Ok(resp);
            }
            let detail = error_detail(resp.body_mut());
            return Err(match status {
                401 | 403 => ImageError::Unauthorized {
                    registry: self.reference.registry.clone(),
                    why: format!(
                        "{status} for {url}{detail}: {}",
                        if self.creds.is_some() {
                            "the registry refused these credentials"
                        } else {
                            "the registry wants credentials: give --creds USER:PASSWORD (or set IMGADM_CREDS)"
                        }
                    ),
                },
                404 => self.err(
                    &url,
                    format!("404 not found{detail}: no such repository, tag or blob; check the reference"),
                ),
                s => self.err(&url, format!("HTTP {s}{detail}")),
            });
        }
    }

    fn transport(&self, url: &str, e: ureq::Error) -> ImageError {
        let hint = if self.base.starts_with("https") {
            "; is the registry up, and does it speak https? (a plain-http registry needs --insecure)"
        } else {
            "; is the registry up?"
        };
        self.err(url, format!("{e}{hint}"))
    }

    /// The `Authorization` header for a `WWW-Authenticate` challenge.
    fn answer(&mut self, url: &str, challenge: &str) -> Result<String, ImageError> {
        let (scheme, params) = parse_challenge(challenge);
        let basic = self
            .creds
            .as_ref()
            .map(|c| format!("Basic {}", base64(c.as_bytes())));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => basic.ok_or_else(|| ImageError::Unauthorized {
                registry: self.reference.registry.clone(),
                why: format!(
                    "401 for {url}: the registry wants basic auth: give --creds USER:PASSWORD (or set IMGADM_CREDS)"
                ),
            }),
            "bearer" => {
                let realm = param(&params, "realm")
                    .ok_or_else(|| self.err(url, format!("a Bearer challenge without a realm: {challenge}")))?;
                let scope = param(&params, "scope")
                    .unwrap_or_else(|| format!("repository:{}:pull", self.reference.repo));
                let mut token_url = format!("{realm}?scope={}", urlencode(&scope));
                if let Some(s) = param(&params, "service") {
                    token_url.push_str(&format!("&service={}", urlencode(&s)));
                }
                let mut req = self.agent.get(&token_url);
                if let Some(b) = &basic {
                    req = req.header("Authorization", b);
                }
                let mut resp = req.call().map_err(|e| self.transport(&token_url, e))?;
                let status = resp.status().as_u16();
                if status != 200 {
                    let detail = error_detail(resp.body_mut());
                    return Err(ImageError::Unauthorized {
                        registry: self.reference.registry.clone(),
                        why: format!(
                            "the token endpoint {realm} answered {status}{detail}{}",
                            if basic.is_some() {
                                ": the credentials were refused"
                            } else {
                                ": give --creds USER:PASSWORD (or set IMGADM_CREDS)"
                            }
                        ),
                    });
                }
                let body: Value = read_json(resp.body_mut())
                    .map_err(|why| self.err(&token_url, format!("token response: {why}")))?;
                let token = body["token"]
                    .as_str()
                    .or(body["access_token"].as_str())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| self.err(&token_url, "the token response has no token"))?;
                Ok(format!("Bearer {token}"))
            }
            _ => Err(ImageError::Unauthorized {
                registry: self.reference.registry.clone(),
                why: format!("401 for {url} with an unsupported challenge '{challenge}'"),
            }),
        }
    }

    /// A manifest or index by tag or digest, checked against the digest it was asked by.
    fn manifest(&mut self, reference: &str) -> Result<(Value, String, Digest), ImageError> {
        let mut resp = self.get(&format!("manifests/{reference}"), ACCEPT)?;
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let announced = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok());
        let what = format!("manifest {}@{reference}", self.reference.repo);
        let data = read_small(resp.body_mut()).map_err(|e| self.err(&what, e))?;
        let digest = Digest::of_bytes(&data);
        // Asked by digest: that one. By tag: the one the registry announces, if it does.
        if let Some(want) = Digest::parse(reference).ok().or(announced) {
            if want != digest {
                return Err(ImageError::DigestMismatch {
                    what,
                    expected: want.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let v: Value = serde_json::from_slice(&data)
            .map_err(|e| self.err(&what, format!("not valid JSON: {e}")))?;
        // OCI manifests may leave mediaType out; a server may answer with plain JSON.
        let media_type = match v["mediaType"].as_str() {
            Some(t) => t.to_string(),
            None if ctype.is_empty() || ctype == "application/json" => {
                if v["manifests"].is_array() {
                    source::OCI_INDEX.to_string()
                } else if v["config"].is_object() && v["schemaVersion"] == 2 {
                    source::OCI_MANIFEST.to_string()
                } else {
                    ctype
                }
            }
            None => ctype,
        };
        Ok((v, media_type, digest))
    }

    /// Resolve the reference to one manifest (through an index if need be), its config and
    /// its layers.
    pub fn resolve(&mut self) -> Result<Remote, ImageError> {
        let (mut manifest, mut media_type, mut id) =
            self.manifest(&self.reference.manifest_ref())?;
        for _ in 0..4 {
            match media_type.as_str() {
                source::OCI_MANIFEST | source::DOCKER_MANIFEST => break,
                source::OCI_INDEX | source::DOCKER_LIST => {
                    let desc = source::pick_from(&manifest)
                        .map_err(|why| self.err(&format!("index {id}"), why))?;
                    (manifest, media_type, id) = self.manifest(&desc.digest)?;
                }
                other => {
                    return Err(ImageError::MediaType {
                        what: format!("manifest {id}"),
                        media_type: other.to_string(),
                    })
                }
            }
        }
        let config_desc: Descriptor = serde_json::from_value(manifest["config"].clone())
            .map_err(|e| self.err(&format!("manifest {id}"), format!("config: {e}")))?;
        if !source::CONFIG_TYPES.contains(&config_desc.media_type.as_str()) {
            return Err(ImageError::MediaType {
                what: format!("config {}", config_desc.digest),
                media_type: config_desc.media_type,
            });
        }
        let config = self.config(&config_desc.digest)?;
        let descs: Vec<Descriptor> = serde_json::from_value(manifest["layers"].clone())
            .map_err(|e| self.err(&format!("manifest {id}"), format!("layers: {e}")))?;
        let diff_ids = source::diff_ids(&config);
        let mut layers = Vec::new();
        for (i, l) in descs.into_iter().enumerate() {
            if !source::LAYER_TYPES.contains(&l.media_type.as_str()) {
                return Err(ImageError::MediaType {
                    what: format!("layer {}", l.digest),
                    media_type: l.media_type,
                });
            }
            layers.push(RemoteLayer {
                digest: Digest::parse(&l.digest)?,
                size: l.size,
                media_type: l.media_type,
                diff_id: diff_ids.get(i).cloned(),
            });
        }
        Ok(Remote {
            id,
            layers,
            os: config["os"].as_str().map(str::to_string),
            architecture: config["architecture"].as_str().map(str::to_string),
            config: ImageConfig::from_json(&config["config"]),
        })
    }

    fn config(&mut self, digest: &str) -> Result<Value, ImageError> {
        let want = Digest::parse(digest)?;
        let what = format!("config {want}");
        let mut resp = self.get(&format!("blobs/{want}"), "*/*")?;
        let data = read_small(resp.body_mut()).map_err(|e| self.err(&what, e))?;
        let got = Digest::of_bytes(&data);
        if got != want {
            return Err(ImageError::DigestMismatch {
                what,
                expected: want.to_string(),
                actual: got.to_string(),
            });
        }
        serde_json::from_slice(&data).map_err(|e| self.err(&what, format!("not valid JSON: {e}")))
    }

    /// The blob's bytes as they arrive (not yet verified: the caller hashes them).
    pub fn blob(&mut self, digest: &Digest) -> Result<impl Read + 'static, ImageError> {
        let resp = self.get(&format!("blobs/{digest}"), "*/*")?;
        Ok(resp.into_body().into_reader())
    }
}

/// `: CODE message` from a registry's JSON error body, or nothing.
fn error_detail(body: &mut ureq::Body) -> String {
    let Ok(v) = read_json(body) else {
        return String::new();
    };
    v["errors"][0]["message"]
        .as_str()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default()
}

/// The bytes of a JSON document's body (a manifest, a config, an error), at most JSON_LIMIT.
fn read_small(body: &mut ureq::Body) -> Result<Vec<u8>, String> {
    body.with_config()
        .limit(JSON_LIMIT)
        .read_to_vec()
        .map_err(|e| e.to_string())
}

fn read_json(body: &mut ureq::Body) -> Result<Value, String> {
    let data = read_small(body)?;
    serde_json::from_slice(&data).map_err(|e| format!("not valid JSON: {e}"))
}

/// `Bearer realm="...",service="..."` → ("Bearer", [(realm, ...), (service, ...)]).
pub fn parse_challenge(text: &str) -> (String, Vec<(String, String)>) {
    let text = text.trim();
    let (scheme, mut rest) = text.split_once(' ').unwrap_or((text, ""));
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = &rest[eq + 1..];
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &q[end.min(q.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        params.push((key, value));
    }
    (scheme.to_string(), params)
}

fn param(params: &[(String, String)], key: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 with padding (for the Basic header).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_like_docker() {
        let r = Reference::parse("docker://127.0.0.1:5000/runz/busybox:v1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repo, "runz/busybox");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.to_string(), "127.0.0.1:5000/runz/busybox:v1");
        let r = Reference::parse("docker://localhost/a").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.tag.as_deref()),
            ("localhost", Some("latest"))
        );
        let r = Reference::parse("docker://busybox").unwrap();
        assert_eq!(r.registry, "registry-1.docker.io");
        assert_eq!(r.repo, "library/busybox");
        let d = Digest::of_bytes(b"x");
        let r = Reference::parse(&format!("docker://reg.example:1/x/y@{d}")).unwrap();
        assert_eq!((r.tag, r.digest), (None, Some(d)));
        for bad in [
            "reg/x",
            "docker://reg.example/",
            "docker://reg.example/UP",
            "docker://h.x/a:b@sha256:12",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
        let e = Reference::parse("docker://h.x/Bad")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("docker://h.x/Bad") && e.contains("lowercase"),
            "{e}"
        );
    }

    #[test]
    fn challenges_parse_with_quotes_and_commas() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(param(&p, "realm").unwrap(), "https://auth.example/token");
        assert_eq!(param(&p, "service").unwrap(), "reg");
        assert_eq!(param(&p, "scope").unwrap(), "repository:a/b:pull,push");
        let (s, p) = parse_challenge(r#"Basic realm="basic-realm""#);
        assert_eq!(
            (s.as_str(), param(&p, "realm").unwrap().as_str()),
            ("Basic", "basic-realm")
        );
    }

    #[test]
    fn base64_and_urlencode() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(
            urlencode("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}
