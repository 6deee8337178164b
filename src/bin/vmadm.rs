fn main() {
    // vmadm puts processes into zones: it runs from a read-only clone of its binary, so that no
    // zone process can rewrite it through /proc/self/exe (CVE-2019-5736).
    if let Err(e) = zones_linux::runtime::exeseal::ensure_sealed() {
        eprintln!("vmadm: cannot protect the vmadm binary: {e}");
        std::process::exit(1);
    }
    std::process::exit(zones_linux::cli::vmadm::main());
}
