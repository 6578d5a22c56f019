//! The CLI and library under hostile and careless use: full disks, FIFOs, devices,
//! symlink loops, cut models, mixed shard sets, implausible calibration, existing files,
//! impossible values, Ctrl-C at every stage. Inputs that are wrong in the ways users
//! meet them are refused at once with a message that names the thing and says what to
//! do; nothing panics or hangs. Each test failed against the behaviour before its fix.
//!
//! A module of the integration test binary (`tests/integration.rs`); its modules live in
//! `tests/hardening/`.

use crate::support;

#[path = "hardening/calibration.rs"]
mod calibration;
#[path = "hardening/common.rs"]
mod common;
#[path = "hardening/files.rs"]
mod files;
#[cfg(feature = "runtime")]
#[path = "hardening/interactive.rs"]
mod interactive;
#[path = "hardening/kinds.rs"]
mod kinds;
#[path = "hardening/output.rs"]
mod output;
#[path = "hardening/split.rs"]
mod split;
#[path = "hardening/values.rs"]
mod values;
#[path = "hardening/writes.rs"]
mod writes;
