fn main() {
    std::process::exit(zones_linux::cli::zonetrace::main());
}
