//! `mdata-get KEY`, `mdata-list`: read the zone's customer metadata from its supervisor, over
//! `/.zonecontrol/metadata.sock` (the protocol is in zoneops/src/metadata.rs). `mdata-put` and
//! `mdata-delete` exist to say no: metadata is read-only inside a zone.
//!
//! Exit codes: 0 found, 1 not found or refused or no service, 2 usage.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

const SOCK: &str = "/.zonecontrol/metadata.sock";

fn usage(prog: &str) -> ExitCode {
    eprintln!(
        "usage: mdata-get KEY | mdata-list | mdata-put KEY VALUE | mdata-delete KEY\n\
         ({prog}: reads this zone's customer metadata; set with zoneadm update on the host)"
    );
    ExitCode::from(2)
}

/// One request, the whole answer.
fn ask(sock: &str, request: &str) -> std::io::Result<Vec<u8>> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request.as_bytes())?;
    s.write_all(b"\n")?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let prog = args
        .first()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or("mdata-get")
        .to_string();
    let rest = &args[args.len().min(1)..];
    if rest.first().is_some_and(|a| a == "-h" || a == "--help") {
        usage(&prog);
        return ExitCode::SUCCESS;
    }
    let request = match (prog.as_str(), rest) {
        ("mdata-list", []) => "KEYS".to_string(),
        ("mdata-put", [k, v]) => format!("PUT {k} {v}"),
        ("mdata-delete", [k]) => format!("DELETE {k}"),
        (_, [k]) if !prog.starts_with("mdata-list") => format!("GET {k}"),
        _ => return usage(&prog),
    };
    if request.contains('\n') {
        return usage(&prog);
    }
    let sock = std::env::var("MDATA_SOCK").unwrap_or_else(|_| SOCK.to_string());
    let answer = match ask(&sock, &request) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{prog}: {sock}: {e} (is this a zone with a metadata service?)");
            return ExitCode::from(1);
        }
    };
    let (status, body) = match answer.iter().position(|b| *b == b'\n') {
        Some(i) => (&answer[..i], &answer[i + 1..]),
        None => (answer.as_slice(), &[][..]),
    };
    let status = String::from_utf8_lossy(status);
    match status.split_once(' ').map_or(status.as_ref(), |(s, _)| s) {
        "SUCCESS" => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(body);
            if !body.is_empty() && !body.ends_with(b"\n") {
                let _ = out.write_all(b"\n");
            }
            ExitCode::SUCCESS
        }
        "NOTFOUND" => {
            eprintln!("{prog}: no metadata for '{}'", rest[0]);
            ExitCode::from(1)
        }
        _ => {
            eprintln!("{prog}: {status}");
            ExitCode::from(1)
        }
    }
}
