//! `zonesd`: the host's zone API daemon (src/zonesd/). Its modules are compiled into this
//! binary only, so tokio, hyper and axum reach no other binary.

#[path = "../zonesd/mod.rs"]
mod zonesd;

fn main() {
    std::process::exit(zonesd::cli::main());
}
