//! cgroup management.
