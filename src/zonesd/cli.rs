//! `zonesd`'s command line: serve (the default), or manage tokens (`zonesd token ...`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use super::listen::{self, TlsFiles};
use super::tokens::{Role, TokenStore};
use super::App;

#[derive(Parser, Debug)]
#[command(
    name = "zonesd",
    about = "The host's zone API: REST/JSON over a Unix socket (and loopback TCP or TLS when asked)",
    after_help = "Examples:\n  zonesd token create --role admin --name ops\n  zonesd --socket /run/zones/zonesd.sock\n  zonesd --listen 127.0.0.1:9443\n  zonesd --listen 127.0.0.1:9443 --cors-origin http://127.0.0.1:9444\n  zonesd --listen 0.0.0.0:9443 --tls-cert cert.pem --tls-key key.pem\n  curl --unix-socket /run/zones/zonesd.sock -H \"Authorization: Bearer $TOKEN\" http://zonesd/api/zones\n\nExit status: 0 success, 1 error, 2 usage error.",
    disable_version_flag = true
)]
struct Cli {
    /// Alternate root: all zone state lives under it.
    #[arg(short = 'R', global = true, value_name = "ALTROOT")]
    altroot: Option<PathBuf>,
    /// The Unix socket (default ALTROOT/run/zones/zonesd.sock), made 0600.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Also serve TCP on ADDR:PORT: loopback, or any address with --tls-cert and --tls-key.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// PEM certificate chain: TCP is served over TLS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Let pages from ORIGIN (scheme://host[:port]) call /api: another zonesd serving the
    /// web console. Repeatable; none by default. Requests still need their bearer token.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origin: Vec<String>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Bearer tokens: create (printed once, stored hashed), list, revoke.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCmd {
    /// A new token; it is printed on the last line, and only now.
    #[command(after_help = "Examples:\n  zonesd token create --role viewer --name dashboard")]
    Create {
        /// viewer: reads; operator: also zone actions, create, update, delete; admin: also
        /// images, links and tokens.
        #[arg(long, value_enum)]
        role: Role,
        /// A name for the token (default token-ID): 1-64 letters, digits, '.', '_', '-'.
        #[arg(long)]
        name: Option<String>,
    },
    /// The tokens: ID NAME ROLE CREATED (-j: JSON).
    List {
        #[arg(short = 'j', long = "json")]
        json: bool,
    },
    /// Revoke a token by id or name: refused at once from its next request.
    Revoke {
        /// The token's id or name.
        token: String,
    },
}

pub fn main() -> i32 {
    zones_linux::cli::run_main("zonesd", run)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(r) = &cli.altroot {
        anyhow::ensure!(r.is_absolute(), "-R {}: give an absolute path", r.display());
    }
    let root = cli.altroot.clone().unwrap_or_else(|| PathBuf::from("/"));
    match cli.command {
        Some(Cmd::Token { cmd }) => token(&TokenStore::new(&root), cmd),
        None => serve(cli),
    }
}

fn token(store: &TokenStore, cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create { role, name } => {
            let (e, token) = store.create(role, name.as_deref())?;
            println!("id {} name {} role {}", e.id, e.name, e.role.name());
            println!("{token}");
        }
        TokenCmd::List { json } => {
            let all = store.list()?;
            if json {
                let docs: Vec<serde_json::Value> = all
                    .iter()
                    .map(|t| serde_json::json!({"id": t.id, "name": t.name, "role": t.role, "created": t.created}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&docs)?);
            } else {
                println!("{:<12} {:<24} {:<8} CREATED", "ID", "NAME", "ROLE");
                for t in all {
                    println!(
                        "{:<12} {:<24} {:<8} {}",
                        t.id,
                        t.name,
                        t.role.name(),
                        t.created
                    );
                }
            }
        }
        TokenCmd::Revoke { token } => {
            let gone = store.revoke(&token)?;
            println!("revoked {} ({})", gone.id, gone.name);
        }
    }
    Ok(())
}

fn serve(cli: Cli) -> anyhow::Result<()> {
    let tls = match (cli.tls_cert, cli.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        _ => return Err(listen::ListenError::HalfTls.into()),
    };
    listen::check(&cli.listen, tls.as_ref())?;
    let cors = super::cors::Origins::parse(&cli.cors_origin)?;
    let acceptor = tls.as_ref().map(listen::tls_acceptor).transpose()?;
    let root = cli.altroot.clone().unwrap_or_else(|| PathBuf::from("/"));
    let socket = cli
        .socket
        .unwrap_or_else(|| root.join("run/zones/zonesd.sock"));
    // zonesd's own files (socket, tokens, audit log) are private; the tools it runs get the
    // umask it was started with.
    // SAFETY: umask(2) only swaps the process's file mode mask; no thread runs yet.
    let old = unsafe { libc::umask(0o077) };
    super::tools::set_child_umask(old);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        let mut app = App::new(cli.altroot);
        app.cors = Arc::new(cors);
        let app = Arc::new(app);
        let router = super::api::router(app);
        let mut listeners = vec![listen::bind_unix(&socket)?];
        for addr in &cli.listen {
            listeners.push(listen::bind_tcp(*addr, acceptor.clone()).await?);
        }
        // Before it says it serves: a SIGTERM right after (a service manager's stop) must find
        // the handler, not the default action (which would leave the socket behind).
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let mut names = vec![socket.display().to_string()];
        names.extend(cli.listen.iter().map(|a| {
            format!(
                "{}{a}",
                if acceptor.is_some() {
                    "https://"
                } else {
                    "http://"
                }
            )
        }));
        eprintln!("zonesd: serving on {}", names.join(", "));
        for l in listeners {
            tokio::spawn(listen::accept_loop(l, router.clone()));
        }
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = std::fs::remove_file(&socket);
        eprintln!("zonesd: stopped");
        anyhow::Ok(())
    })
}
