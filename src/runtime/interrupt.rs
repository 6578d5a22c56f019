//! Ctrl-C for llama.cpp: a process-wide flag that stops the decode in progress, read by
//! llama.cpp's abort callback (set on every context) and by the sampling loop.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set from anywhere (a Ctrl-C handler) to stop the generation in progress, the
/// prompt evaluation included: llama.cpp polls it between graph nodes through its
/// abort callback (`llama_set_abort_callback`), and the sampling loop checks it per
/// token. Cleared when a generation starts.
pub static INTERRUPT: AtomicBool = AtomicBool::new(false);

/// llama.cpp's abort callback: true stops the `llama_decode` in progress.
pub(crate) unsafe extern "C" fn abort_requested(_: *mut std::os::raw::c_void) -> bool {
    INTERRUPT.load(Ordering::Relaxed)
}
