//! The zone state machine (illumos `zones(7)`, `zoneadm.c` `sanity_check()`), as a table.
//!
//! [`check`] says whether a verb may run on a zone in a given state, which state the zone is
//! in while the verb works (`during`, e.g. `incomplete` during install) and where it ends
//! (`to`; `None` when the configuration is gone). It is pure: the store records states, the
//! callers (zoneadm, zonecfg, the supervisor) move them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The zone states, in the illumos order (`ZONE_STATE_*`: configured 0 ... down 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneState {
    Configured,
    Incomplete,
    Installed,
    Ready,
    Running,
    ShuttingDown,
    Down,
}

impl ZoneState {
    /// Every state, in order.
    pub const ALL: [ZoneState; 7] = [
        ZoneState::Configured,
        ZoneState::Incomplete,
        ZoneState::Installed,
        ZoneState::Ready,
        ZoneState::Running,
        ZoneState::ShuttingDown,
        ZoneState::Down,
    ];

    /// The illumos state string (`zone_state_str()`): `shutting_down`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneState::Configured => "configured",
            ZoneState::Incomplete => "incomplete",
            ZoneState::Installed => "installed",
            ZoneState::Ready => "ready",
            ZoneState::Running => "running",
            ZoneState::ShuttingDown => "shutting_down",
            ZoneState::Down => "down",
        }
    }

    /// True when the zone has a live platform (ready, running, shutting_down, down).
    pub fn is_active(self) -> bool {
        self >= ZoneState::Ready
    }
}

impl fmt::Display for ZoneState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ZoneState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ZoneState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown zone state \"{s}\""))
    }
}

/// The commands that change (or depend on) a zone's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Install,
    Uninstall,
    Ready,
    Boot,
    Halt,
    Shutdown,
    Reboot,
    /// `zoneadm mark incomplete`.
    MarkIncomplete,
    /// The zone being cloned into (the source is checked with [`check_clone_source`]).
    Clone,
    Attach,
    /// `attach -F`: also recovers an incomplete zone.
    AttachForce,
    Detach,
    Move,
    /// `zonecfg delete`.
    Delete,
    /// `zoneadm verify`.
    Verify,
}

impl Verb {
    /// Every verb.
    pub const ALL: [Verb; 15] = [
        Verb::Install,
        Verb::Uninstall,
        Verb::Ready,
        Verb::Boot,
        Verb::Halt,
        Verb::Shutdown,
        Verb::Reboot,
        Verb::MarkIncomplete,
        Verb::Clone,
        Verb::Attach,
        Verb::AttachForce,
        Verb::Detach,
        Verb::Move,
        Verb::Delete,
        Verb::Verify,
    ];

    /// The command name as messages show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Install => "install",
            Verb::Uninstall => "uninstall",
            Verb::Ready => "ready",
            Verb::Boot => "boot",
            Verb::Halt => "halt",
            Verb::Shutdown => "shutdown",
            Verb::Reboot => "reboot",
            Verb::MarkIncomplete => "mark",
            Verb::Clone => "clone",
            Verb::Attach | Verb::AttachForce => "attach",
            Verb::Detach => "detach",
            Verb::Move => "move",
            Verb::Delete => "delete",
            Verb::Verify => "verify",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An allowed move: from `from`, through `during` while the verb works, to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub verb: Verb,
    pub from: ZoneState,
    /// The state recorded while the work is in progress (`incomplete` during install, so a
    /// crash leaves an incomplete zone, never a half-installed one).
    pub during: Option<ZoneState>,
    /// The final state; `None` when the zone's configuration is deleted.
    pub to: Option<ZoneState>,
}

/// Why a verb may not run now. Prints illumos-style, after the program name:
/// `zoneadm: zone 'web': must be installed before boot.`
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("zone '{zone}': must be {required} before {verb}.")]
    MustBe {
        zone: String,
        required: &'static str,
        verb: Verb,
    },
    #[error("zone '{zone}': is already {state}.")]
    Already { zone: String, state: ZoneState },
    #[error("zone '{zone}': is {state}; it must be halted before {verb}.")]
    MustHalt {
        zone: String,
        state: ZoneState,
        verb: Verb,
    },
    #[error("zone '{zone}': is {state}; it must be uninstalled before {verb}.")]
    MustUninstall {
        zone: String,
        state: ZoneState,
        verb: Verb,
    },
    #[error("zone '{zone}': is {state}; a zone must be installed and halted to be cloned.")]
    BadCloneSource { zone: String, state: ZoneState },
}

use ZoneState as S;

/// The transition table: `(verb, from, during, to)`. Anything absent is refused.
pub const TABLE: &[Transition] = &[
    t(
        Verb::Install,
        S::Configured,
        Some(S::Incomplete),
        Some(S::Installed),
    ),
    t(
        Verb::Uninstall,
        S::Installed,
        Some(S::Incomplete),
        Some(S::Configured),
    ),
    t(
        Verb::Uninstall,
        S::Incomplete,
        Some(S::Incomplete),
        Some(S::Configured),
    ),
    t(Verb::Ready, S::Installed, None, Some(S::Ready)),
    t(
        Verb::Ready,
        S::Running,
        Some(S::ShuttingDown),
        Some(S::Ready),
    ),
    t(Verb::Boot, S::Installed, Some(S::Ready), Some(S::Running)),
    t(Verb::Boot, S::Ready, None, Some(S::Running)),
    t(Verb::Halt, S::Ready, Some(S::Down), Some(S::Installed)),
    t(
        Verb::Halt,
        S::Running,
        Some(S::ShuttingDown),
        Some(S::Installed),
    ),
    t(
        Verb::Halt,
        S::ShuttingDown,
        Some(S::ShuttingDown),
        Some(S::Installed),
    ),
    t(Verb::Halt, S::Down, Some(S::Down), Some(S::Installed)),
    t(
        Verb::Shutdown,
        S::Running,
        Some(S::ShuttingDown),
        Some(S::Installed),
    ),
    t(
        Verb::Reboot,
        S::Running,
        Some(S::ShuttingDown),
        Some(S::Running),
    ),
    t(
        Verb::MarkIncomplete,
        S::Installed,
        None,
        Some(S::Incomplete),
    ),
    t(
        Verb::Clone,
        S::Configured,
        Some(S::Incomplete),
        Some(S::Installed),
    ),
    t(
        Verb::Attach,
        S::Configured,
        Some(S::Incomplete),
        Some(S::Installed),
    ),
    t(
        Verb::AttachForce,
        S::Configured,
        Some(S::Incomplete),
        Some(S::Installed),
    ),
    t(
        Verb::AttachForce,
        S::Incomplete,
        Some(S::Incomplete),
        Some(S::Installed),
    ),
    t(Verb::Detach, S::Installed, None, Some(S::Configured)),
    t(Verb::Move, S::Installed, None, Some(S::Installed)),
    t(Verb::Delete, S::Configured, None, None),
    t(Verb::Verify, S::Configured, None, Some(S::Configured)),
    t(Verb::Verify, S::Installed, None, Some(S::Installed)),
    t(Verb::Verify, S::Ready, None, Some(S::Ready)),
    t(Verb::Verify, S::Running, None, Some(S::Running)),
    t(Verb::Verify, S::ShuttingDown, None, Some(S::ShuttingDown)),
    t(Verb::Verify, S::Down, None, Some(S::Down)),
];

const fn t(
    verb: Verb,
    from: ZoneState,
    during: Option<ZoneState>,
    to: Option<ZoneState>,
) -> Transition {
    Transition {
        verb,
        from,
        during,
        to,
    }
}

/// The transition for `verb` on a zone in state `from`, if the table allows it.
pub fn transition(verb: Verb, from: ZoneState) -> Option<Transition> {
    TABLE
        .iter()
        .copied()
        .find(|t| t.verb == verb && t.from == from)
}

/// May `verb` run on zone `zone` in state `from`? The error names the zone and its state.
pub fn check(zone: &str, from: ZoneState, verb: Verb) -> Result<Transition, StateError> {
    transition(verb, from).ok_or_else(|| refusal(zone, from, verb))
}

/// The source of `zoneadm clone` must be installed (and so not running).
pub fn check_clone_source(zone: &str, state: ZoneState) -> Result<(), StateError> {
    if state == S::Installed {
        Ok(())
    } else {
        Err(StateError::BadCloneSource {
            zone: zone.to_string(),
            state,
        })
    }
}

fn refusal(zone: &str, s: ZoneState, verb: Verb) -> StateError {
    let zone = zone.to_string();
    let must_be = |required| StateError::MustBe {
        zone: zone.clone(),
        required,
        verb,
    };
    let already = |state| StateError::Already {
        zone: zone.clone(),
        state,
    };
    let must_halt = StateError::MustHalt {
        zone: zone.clone(),
        state: s,
        verb,
    };
    let must_uninstall = StateError::MustUninstall {
        zone: zone.clone(),
        state: s,
        verb,
    };
    match (verb, s) {
        (Verb::Delete, _) => must_uninstall,
        (_, S::Incomplete) if verb == Verb::MarkIncomplete => already(s),
        (_, S::Incomplete) => must_uninstall,
        (Verb::Install | Verb::Clone | Verb::Attach | Verb::AttachForce, _) => already(s),
        (Verb::Uninstall, S::Configured) => already(s),
        (Verb::Halt, S::Configured | S::Installed) => must_be("ready or running"),
        (Verb::Shutdown | Verb::Reboot, S::Configured | S::Installed | S::Ready) => {
            must_be("running")
        }
        (Verb::Shutdown | Verb::Reboot, _) => already(s),
        (_, S::Configured) => must_be("installed"),
        (Verb::Ready, S::Ready) | (Verb::Boot, S::Running) => already(s),
        _ => must_halt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected outcome of every verb in every state: `Some(to)` or the refusal text.
    fn expect(verb: Verb, s: ZoneState) -> Result<Option<ZoneState>, String> {
        use Verb as V;
        let ok = |to| Ok(Some(to));
        let err = |m: &str| Err(m.to_string());
        match (verb, s) {
            (V::Install | V::Clone | V::Attach, S::Configured) => ok(S::Installed),
            (V::AttachForce, S::Configured | S::Incomplete) => ok(S::Installed),
            (V::Install | V::Clone | V::Attach | V::AttachForce, st) => {
                if st == S::Incomplete {
                    err("is incomplete; it must be uninstalled before")
                } else {
                    err("is already")
                }
            }
            (V::Uninstall, S::Installed | S::Incomplete) => ok(S::Configured),
            (V::Uninstall, S::Configured) => err("is already configured."),
            (V::Uninstall, _) => err("must be halted before uninstall."),
            (V::Ready, S::Installed | S::Running) => ok(S::Ready),
            (V::Ready, S::Ready) => err("is already ready."),
            (V::Boot, S::Installed | S::Ready) => ok(S::Running),
            (V::Boot, S::Running) => err("is already running."),
            (V::Halt, S::Ready | S::Running | S::ShuttingDown | S::Down) => ok(S::Installed),
            (V::Halt, S::Configured | S::Installed) => err("must be ready or running before halt."),
            (V::Shutdown, S::Running) => ok(S::Installed),
            (V::Reboot, S::Running) => ok(S::Running),
            (V::Shutdown | V::Reboot, S::Configured | S::Installed | S::Ready) => {
                err("must be running before")
            }
            (V::Shutdown | V::Reboot, S::ShuttingDown | S::Down) => err("is already"),
            (V::MarkIncomplete, S::Installed) => ok(S::Incomplete),
            (V::MarkIncomplete, S::Incomplete) => err("is already incomplete."),
            (V::Detach, S::Installed) => ok(S::Configured),
            (V::Move, S::Installed) => ok(S::Installed),
            (V::Delete, S::Configured) => Ok(None),
            (V::Delete, _) => err("must be uninstalled before delete."),
            (V::Verify, S::Incomplete) => {
                err("is incomplete; it must be uninstalled before verify.")
            }
            (V::Verify, st) => ok(st),
            (_, S::Incomplete) => err("is incomplete; it must be uninstalled before"),
            (_, S::Configured) => err("must be installed before"),
            (_, _) => err("must be halted before"),
        }
    }

    #[test]
    fn every_verb_in_every_state() {
        for verb in Verb::ALL {
            for s in ZoneState::ALL {
                let got = check("web", s, verb)
                    .map(|t| t.to)
                    .map_err(|e| e.to_string());
                match (expect(verb, s), got) {
                    (Ok(to), Ok(got)) => assert_eq!(to, got, "{verb} from {s}"),
                    (Err(part), Err(msg)) => {
                        assert!(msg.starts_with("zone 'web': "), "{msg}");
                        assert!(
                            msg.contains(&part),
                            "{verb} from {s}: {msg:?} lacks {part:?}"
                        );
                    }
                    (want, got) => panic!("{verb} from {s}: want {want:?}, got {got:?}"),
                }
            }
        }
    }

    #[test]
    fn exact_messages() {
        let msg = |s, v| check("web", s, v).unwrap_err().to_string();
        assert_eq!(
            msg(S::Configured, Verb::Boot),
            "zone 'web': must be installed before boot."
        );
        assert_eq!(
            msg(S::Running, Verb::Uninstall),
            "zone 'web': is running; it must be halted before uninstall."
        );
        assert_eq!(
            msg(S::Installed, Verb::Install),
            "zone 'web': is already installed."
        );
        assert_eq!(
            msg(S::Incomplete, Verb::Boot),
            "zone 'web': is incomplete; it must be uninstalled before boot."
        );
        assert_eq!(
            msg(S::Installed, Verb::Delete),
            "zone 'web': is installed; it must be uninstalled before delete."
        );
        assert_eq!(
            msg(S::Installed, Verb::Halt),
            "zone 'web': must be ready or running before halt."
        );
        assert_eq!(
            msg(S::Running, Verb::Move),
            "zone 'web': is running; it must be halted before move."
        );
        assert_eq!(
            msg(S::Configured, Verb::MarkIncomplete),
            "zone 'web': must be installed before mark."
        );
    }

    #[test]
    fn install_and_uninstall_pass_through_incomplete() {
        for v in [Verb::Install, Verb::Clone, Verb::Attach, Verb::Uninstall] {
            let from = if v == Verb::Uninstall {
                S::Installed
            } else {
                S::Configured
            };
            assert_eq!(
                check("z", from, v).unwrap().during,
                Some(S::Incomplete),
                "{v}"
            );
        }
        assert_eq!(
            check("z", S::Running, Verb::Shutdown).unwrap().during,
            Some(S::ShuttingDown)
        );
    }

    #[test]
    fn clone_source_must_be_installed() {
        assert!(check_clone_source("src", S::Installed).is_ok());
        assert_eq!(
            check_clone_source("src", S::Running)
                .unwrap_err()
                .to_string(),
            "zone 'src': is running; a zone must be installed and halted to be cloned."
        );
    }

    #[test]
    fn state_strings() {
        for s in ZoneState::ALL {
            assert_eq!(s.as_str().parse::<ZoneState>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(ZoneState::ShuttingDown.to_string(), "shutting_down");
        assert!(ZoneState::Configured < ZoneState::Installed);
        assert!("bogus".parse::<ZoneState>().is_err());
    }
}
