//! `zonesd`: the host API daemon (issue 21); its modules follow.

fn main() {}
