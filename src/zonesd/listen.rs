//! Where zonesd listens: its Unix socket (0600; the default and, unless told, the only one),
//! loopback TCP with `--listen 127.0.0.1:PORT`, and TCP beyond loopback only over TLS
//! (`--tls-cert FILE --tls-key FILE`, rustls with the ring provider; TLS may serve loopback
//! too). Each connection is served by hyper's HTTP/1.1 on the one runtime thread; headers
//! must arrive within [`HEADER_TIMEOUT`] and a TLS handshake within [`HANDSHAKE_TIMEOUT`].

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::TlsAcceptor;

pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("--listen {0}: not a loopback address; serving beyond loopback needs TLS: give --tls-cert FILE and --tls-key FILE")]
    NeedsTls(SocketAddr),
    #[error("--tls-cert and --tls-key go together: give both")]
    HalfTls,
    #[error("{path}: {msg}")]
    Tls { path: String, msg: String },
    #[error(
        "zonesd: socket {0}: another zonesd is serving it (stop it, or give another --socket)"
    )]
    InUse(String),
    #[error("{what} {addr}: {source}")]
    Io {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// The TLS files, as given.
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener, Option<TlsAcceptor>),
}

/// The checks of the flags, before anything is bound: TCP beyond loopback only with TLS.
pub fn check(addrs: &[SocketAddr], tls: Option<&TlsFiles>) -> Result<(), ListenError> {
    match addrs.iter().find(|a| !a.ip().is_loopback()) {
        Some(a) if tls.is_none() => Err(ListenError::NeedsTls(*a)),
        _ => Ok(()),
    }
}

/// The rustls acceptor of a certificate chain and key in PEM files.
pub fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ListenError> {
    let bad = |p: &Path, msg: String| ListenError::Tls {
        path: p.display().to_string(),
        msg,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| bad(&files.cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&files.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(&files.cert, "no PEM certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| bad(&files.key, format!("no PEM private key in it ({e})")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&files.cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad(&files.key, format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Binds the Unix socket at `path` (0600): a stale socket is replaced, a live one refused.
pub fn bind_unix(path: &Path) -> Result<Listener, ListenError> {
    let io = |source| ListenError::Io {
        what: "socket",
        addr: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ListenError::InUse(path.display().to_string()));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            std::fs::remove_file(path).map_err(io)?
        }
        Ok(_) => {
            return Err(io(std::io::Error::other(
                "exists and is not a socket (remove it, or give another --socket)",
            )))
        }
        Err(_) => {}
    }
    // The process umask is 077 (main), so the socket is made 0600; set it again to be sure.
    let l = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(Listener::Unix(l))
}

pub async fn bind_tcp(addr: SocketAddr, tls: Option<TlsAcceptor>) -> Result<Listener, ListenError> {
    let l = TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError::Io {
            what: "--listen",
            addr: addr.to_string(),
            source,
        })?;
    Ok(Listener::Tcp(l, tls))
}

/// Serves one connection with hyper's HTTP/1.1.
async fn serve_conn<S>(stream: S, app: Router)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), svc)
        // A zone's console is a WebSocket: the connection is handed over after the 101.
        .with_upgrades();
    let _ = conn.await;
}

/// Accepts on `l` for ever.
pub async fn accept_loop(l: Listener, app: Router) {
    match l {
        Listener::Unix(l) => loop {
            match l.accept().await {
                Ok((s, _)) => {
                    tokio::spawn(serve_conn(s, app.clone()));
                }
                Err(e) => accept_failed(e).await,
            }
        },
        Listener::Tcp(l, tls) => loop {
            match l.accept().await {
                Ok((s, _)) => {
                    let _ = s.set_nodelay(true);
                    let app = app.clone();
                    match tls.clone() {
                        None => {
                            tokio::spawn(serve_conn(s, app));
                        }
                        Some(acc) => {
                            tokio::spawn(async move {
                                if let Ok(Ok(s)) =
                                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acc.accept(s)).await
                                {
                                    serve_conn(s, app).await;
                                }
                            });
                        }
                    }
                }
                Err(e) => accept_failed(e).await,
            }
        },
    }
}

/// Out of descriptors or the like: say so and pause rather than spin.
async fn accept_failed(e: std::io::Error) {
    eprintln!("zonesd: accept: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_loopback_needs_tls() {
        let lo: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:1".parse().unwrap();
        assert!(check(&[lo], None).is_ok());
        assert!(matches!(
            check(&[lo, any], None),
            Err(ListenError::NeedsTls(_))
        ));
        let files = TlsFiles {
            cert: "c".into(),
            key: "k".into(),
        };
        assert!(check(&[any], Some(&files)).is_ok());
    }
}
