//! `customer_metadata.user-script`, run once per zone, at its first boot (SmartOS's
//! `svc:/smartdc/mdata:execute` runs it at every boot; scripts are written for the first).
//!
//! The host never writes into the zone's root for this: once the zone runs, a shell is started
//! inside it (the zlogin path: every namespace, the zone's cgroup, caps and seccomp) that does
//! the work with the zone's own rights:
//! - nothing happens when the marker `/var/svc/mdata-user-script.done` exists, or when the zone
//!   has no `user-script` key (`/.zonecontrol/mdata-get` exits 1);
//! - otherwise the script is fetched to `/var/svc/mdata-user-script` (SmartOS's path), the
//!   marker is made, and the script runs in the background with its output in
//!   `/var/svc/log/mdata-user-script.log`; so it runs once even if it fails or the zone
//!   reboots while it runs.
//!
//! Called after `zoneadm provision` / `vmadm create` boot the zone and after `vmadm start` and
//! `vmadm reboot` (where the marker makes it a no-op once the script ran).

use zones::store::Store;

use super::login::{self, LoginError, LoginOpts};

/// The marker, in the zone, of a user-script that was started.
pub const MARKER: &str = "/var/svc/mdata-user-script.done";
/// Where the script is put, in the zone.
pub const SCRIPT: &str = "/var/svc/mdata-user-script";
/// Its output, in the zone.
pub const LOG: &str = "/var/svc/log/mdata-user-script.log";

/// The shell program run in the zone (see the module comment). Exit status 0: nothing to do
/// or started; other: the script could not be put in place.
fn program() -> String {
    format!(
        "exec </dev/null >/dev/null 2>&1; \
         [ -e {MARKER} ] && exit 0; \
         md=/.zonecontrol/mdata-get; [ -x $md ] || exit 0; \
         $md user-script >/dev/null || exit 0; \
         mkdir -p /var/svc/log || exit 3; \
         $md user-script > {SCRIPT} || exit 4; \
         chmod 0700 {SCRIPT} || exit 5; \
         : > {MARKER} || exit 6; \
         ( {SCRIPT} > {LOG} 2>&1 & ) ; exit 0"
    )
}

/// Starts zone `name`'s user-script inside it when it has one that never ran (the zone must
/// be running).
pub fn start(store: &Store, name: &str) -> Result<(), LoginError> {
    let opts = LoginOpts {
        zone: name.to_string(),
        user: None,
        command: vec![program()],
        safe: true,
    };
    match login::login(store, &opts)? {
        0 => Ok(()),
        code => Err(LoginError::Other(format!(
            "the in-zone shell that puts the script in {SCRIPT} exited {code}"
        ))),
    }
}
