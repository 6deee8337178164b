//! Escape attempts against the runtime: runz (as root and with a user namespace) and the exec path zlogin shares.
