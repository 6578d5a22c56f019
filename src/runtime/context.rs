//! llama.cpp's context handle (`llama_context`): the settings a plan gives it, creating
//! one over a [`Model`], and what llama.cpp made of the request. One module per
//! llama.cpp handle; [`super::model`] holds the other.
//!
//! `ContextSettings::llama` is the one place `llama_context_params` are made: for a
//! plan's context here, and for the memory projections and fits of [`super::oracle`].

use super::interrupt::abort_requested;
use super::model::Model;
use crate::planner::Plan;
use llama_cpp_sys_2 as sys;
use serde::Serialize;
use std::ptr::NonNull;

/// llama.cpp's `LLAMA_MAX_SEQ` (src/llama-cparams.h): more sequences are refused.
pub(crate) const LLAMA_MAX_SEQ: u32 = 256;

/// The context parameters a [`Loaded`](super::load::Loaded) context was created with,
/// or that an oracle request ([`super::oracle::LlamaMemoryRequest::context_settings`])
/// asks llama.cpp for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ContextSettings {
    /// Context size requested.
    pub n_ctx: u32,
    /// Logical batch.
    pub n_batch: u32,
    /// Physical batch.
    pub n_ubatch: u32,
    /// Sequences.
    pub n_seq_max: u32,
    /// Generation threads.
    pub n_threads: i32,
    /// Prompt threads.
    pub n_threads_batch: i32,
    /// `llama_flash_attn_type`: -1 auto (oracle requests only), 0 off, 1 on.
    pub flash_attn: i32,
    /// ggml type id of the K cache.
    pub type_k: i32,
    /// ggml type id of the V cache.
    pub type_v: i32,
    /// KV cache and attention on the GPU.
    pub offload_kqv: bool,
    /// Full-size sliding-window cache (always off for a plan).
    pub swa_full: bool,
    /// One KV buffer for all sequences (always off for a plan).
    pub kv_unified: bool,
}

impl ContextSettings {
    /// What `plan` asks of the context.
    pub fn from_plan(plan: &Plan) -> Self {
        ContextSettings {
            n_ctx: plan.n_ctx,
            n_batch: plan.n_batch,
            n_ubatch: plan.n_ubatch,
            n_seq_max: plan.n_seq.max(1),
            n_threads: i32::try_from(plan.n_threads.max(1)).unwrap_or(i32::MAX),
            n_threads_batch: i32::try_from(plan.n_threads_batch.max(1)).unwrap_or(i32::MAX),
            flash_attn: i32::from(plan.flash_attn),
            type_k: plan.type_k.ggml().id() as i32,
            type_v: plan.type_v.ggml().id() as i32,
            offload_kqv: plan.backend.is_gpu(),
            swa_full: false,
            kv_unified: false,
        }
    }

    /// The llama.cpp parameters these settings make.
    pub(crate) fn llama(&self) -> sys::llama_context_params {
        // SAFETY: returns a struct by value.
        let mut c = unsafe { sys::llama_context_default_params() };
        c.n_ctx = self.n_ctx;
        c.n_batch = self.n_batch;
        c.n_ubatch = self.n_ubatch;
        c.n_seq_max = self.n_seq_max;
        c.n_threads = self.n_threads;
        c.n_threads_batch = self.n_threads_batch;
        c.flash_attn_type = self.flash_attn as sys::llama_flash_attn_type;
        c.type_k = self.type_k as sys::ggml_type;
        c.type_v = self.type_v as sys::ggml_type;
        c.offload_kqv = self.offload_kqv;
        c.swa_full = self.swa_full;
        c.kv_unified = self.kv_unified;
        c.no_perf = false;
        c
    }
}

/// A llama.cpp context (`llama_context`), freed on drop. Only reachable through
/// [`super::load::Loaded`], which keeps its model alive longer.
pub struct Context {
    ptr: NonNull<sys::llama_context>,
    pub(crate) settings: ContextSettings,
}

// SAFETY: a llama_context may move between threads; it is not shared (no Sync).
unsafe impl Send for Context {}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: from llama_init_from_model, freed once, before its model.
        unsafe { sys::llama_free(self.ptr.as_ptr()) };
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Context {
    /// The raw `llama_context *` (valid while `self` lives).
    pub fn as_ptr(&self) -> *mut sys::llama_context {
        self.ptr.as_ptr()
    }

    /// What it was created with.
    pub fn settings(&self) -> &ContextSettings {
        &self.settings
    }

    /// Context size llama.cpp uses (`llama_n_ctx`; padded to 256).
    pub fn n_ctx(&self) -> u32 {
        // SAFETY: live context.
        unsafe { sys::llama_n_ctx(self.as_ptr()) }
    }

    /// Logical batch (`llama_n_batch`).
    pub fn n_batch(&self) -> u32 {
        // SAFETY: live context.
        unsafe { sys::llama_n_batch(self.as_ptr()) }
    }

    /// Physical batch (`llama_n_ubatch`).
    pub fn n_ubatch(&self) -> u32 {
        // SAFETY: live context.
        unsafe { sys::llama_n_ubatch(self.as_ptr()) }
    }

    /// Sequences (`llama_n_seq_max`).
    pub fn n_seq_max(&self) -> u32 {
        // SAFETY: live context.
        unsafe { sys::llama_n_seq_max(self.as_ptr()) }
    }

    /// Generation threads (`llama_n_threads`).
    pub fn n_threads(&self) -> i32 {
        // SAFETY: live context.
        unsafe { sys::llama_n_threads(self.as_ptr()) }
    }

    /// Prompt threads (`llama_n_threads_batch`).
    pub fn n_threads_batch(&self) -> i32 {
        // SAFETY: live context.
        unsafe { sys::llama_n_threads_batch(self.as_ptr()) }
    }
}

/// Creates a context over `model` with `settings`; `fault` makes llama.cpp refuse it
/// (the step-down test hook).
pub(crate) fn create_context(
    model: &Model,
    settings: ContextSettings,
    fault: bool,
) -> Result<Context, String> {
    let mut params = settings.llama();
    if fault {
        params.n_seq_max = LLAMA_MAX_SEQ + 1;
    }
    // SAFETY: `model` is a live llama_model; params is a plain struct.
    let raw = unsafe { sys::llama_init_from_model(model.as_ptr(), params) };
    match NonNull::new(raw) {
        Some(ptr) => {
            // SAFETY: live context; the callback only reads a static flag.
            unsafe {
                sys::llama_set_abort_callback(
                    ptr.as_ptr(),
                    Some(abort_requested),
                    std::ptr::null_mut(),
                )
            };
            Ok(Context { ptr, settings })
        }
        None if fault => Err(format!(
            "llama.cpp refused the context (n_seq_max {} > LLAMA_MAX_SEQ: Fault::Context test hook)",
            LLAMA_MAX_SEQ + 1
        )),
        None => Err(
            "llama.cpp could not create the context (KV cache or compute buffers could not be \
             allocated; llama.cpp's log says why: RUST_LOG=llama-cpp-2=info)"
                .to_owned(),
        ),
    }
}
