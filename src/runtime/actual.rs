//! What llama.cpp really allocated for a loaded model and context, and llama.cpp's own
//! greedy decode loop as a reference for the tests. Safe wrappers over the runtime part
//! of the shim (`shim/strix_shim.h`).
//!
//! - [`actual_memory`]: `llama_get_memory_breakdown` (llama.cpp's `src/llama-ext.h`, the
//!   data behind `llama_memory_breakdown_print`): the bytes of every buffer llama.cpp
//!   allocated, per buffer type, split into model (weights), context (KV cache /
//!   recurrent state) and compute (the scheduler's graph buffers). Grouped per device
//!   like llama.cpp's own print, with one difference: CPU "extra" buffer types (the
//!   weight-repacking `CPU_REPACK`, AMX) are host memory and are counted in the host
//!   entry here, where llama.cpp's `common_get_device_memory_data` drops them (see
//!   [`super::oracle`]). Not counted by llama.cpp: the output (logits) buffer.
//! - [`tensor_buffer_types`]: which buffer type each weight tensor went to (shows that
//!   tensor buffer-type overrides such as `--n-cpu-moe` took effect).
//! - [`reference_greedy`]: llama.cpp's `examples/simple` decode loop in C++ against
//!   `llama.h` only, the reference [`super::session::Session`] is tested against.

use super::context::Context;
use super::ffi;
use super::model::Model;
use serde::Serialize;
use std::ffi::{c_char, CString};
use std::path::{Path, PathBuf};

const ERR_CAP: usize = 1024;

/// Errors of the calls in this module.
#[derive(Debug, thiserror::Error)]
pub enum ActualError {
    /// llama.cpp (or the shim) reported an error.
    #[error("llama.cpp: {0}")]
    Llama(String),
    /// A path or prompt cannot be passed to llama.cpp (contains NUL).
    #[error("{0} cannot be passed to llama.cpp (contains NUL)")]
    Nul(&'static str),
    /// The model file does not exist.
    #[error("model {0} not found")]
    ModelNotFound(PathBuf),
}

/// One buffer type's allocated bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualBuffer {
    /// ggml's buffer-type name (`CPU`, `CPU_REPACK`, `Vulkan0`, `Vulkan_Host`, ...).
    pub buft: String,
    /// ggml's name of the buffer type's device (`CPU`, `Vulkan0`, ...); empty if none.
    pub device: String,
    /// That device's description.
    pub description: String,
    /// Plain host memory (`ggml_backend_buft_is_host`).
    pub is_host: bool,
    /// The device is the CPU: host memory even when not a host buffer type (repacking).
    pub is_cpu_device: bool,
    /// Index of the device among the model's devices, when it is one of them.
    pub model_device: Option<usize>,
    /// Weights.
    pub model: u64,
    /// KV cache / recurrent state.
    pub context: u64,
    /// Compute buffers.
    pub compute: u64,
}

/// One device's memory as llama.cpp reports it: model, context and compute bytes,
/// either allocated ([`actual_memory`]) or projected without allocating
/// ([`super::oracle::llama_memory_breakdown`]). The fields only one of the two reports
/// are `None` in the other and left out of its JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceMemory {
    /// ggml's device name (`Vulkan0`, `ROCm0`, ...); for the host entry `Host` when
    /// allocated, `CPU` when projected.
    pub name: String,
    /// ggml's device description (GPU or CPU model); projections only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Host (system) memory; always the last entry.
    pub is_host: bool,
    /// Memory size the backend reports; projections only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    /// Free memory the backend reports; projections only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free: Option<i64>,
    /// The buffer types summed here; allocations only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer_types: Option<Vec<String>>,
    /// Weights.
    pub model: u64,
    /// KV cache / recurrent state.
    pub context: u64,
    /// Compute buffers.
    pub compute: u64,
}

impl DeviceMemory {
    /// model + context + compute.
    pub fn used(&self) -> u64 {
        self.model + self.context + self.compute
    }

    /// An allocation entry with nothing counted yet.
    fn allocated(name: String, is_host: bool) -> Self {
        DeviceMemory {
            name,
            description: None,
            is_host,
            total: None,
            free: None,
            buffer_types: Some(Vec::new()),
            model: 0,
            context: 0,
            compute: 0,
        }
    }
}

/// What llama.cpp allocated for a loaded model and context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualMemory {
    /// Per device: the model's devices in order, then the host entry (always present).
    pub devices: Vec<DeviceMemory>,
    /// Per buffer type, as llama.cpp reports it.
    pub buffers: Vec<ActualBuffer>,
}

impl ActualMemory {
    /// The host entry.
    pub fn host(&self) -> &DeviceMemory {
        self.devices
            .last()
            .expect("ActualMemory always has a host entry")
    }

    /// The GPU (non-host) entries.
    pub fn gpus(&self) -> &[DeviceMemory] {
        &self.devices[..self.devices.len().saturating_sub(1)]
    }

    fn from_buffers(buffers: Vec<ActualBuffer>) -> Self {
        let mut devices: Vec<(Option<usize>, DeviceMemory)> = Vec::new();
        let mut host = DeviceMemory::allocated("Host".to_owned(), true);
        for b in &buffers {
            let target = if b.is_host || b.is_cpu_device || b.device.is_empty() {
                &mut host
            } else {
                let i = match devices.iter().position(|(_, d)| d.name == b.device) {
                    Some(i) => i,
                    None => {
                        devices.push((
                            b.model_device,
                            DeviceMemory::allocated(b.device.clone(), false),
                        ));
                        devices.len() - 1
                    }
                };
                &mut devices[i].1
            };
            target
                .buffer_types
                .get_or_insert_with(Vec::new)
                .push(b.buft.clone());
            target.model += b.model;
            target.context += b.context;
            target.compute += b.compute;
        }
        devices.sort_by_key(|(i, _)| i.unwrap_or(usize::MAX));
        let mut devices: Vec<DeviceMemory> = devices.into_iter().map(|(_, d)| d).collect();
        devices.push(host);
        ActualMemory { devices, buffers }
    }
}

/// Which buffer type a weight tensor went to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorBuffer {
    /// Tensor name (`blk.0.ffn_up_exps.weight`).
    pub name: String,
    /// ggml's buffer-type name (`CPU`, `CPU_REPACK`, `Vulkan0`, ...).
    pub buft: String,
    /// Bytes.
    pub bytes: u64,
}

fn c_chars_to_string(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn check(rc: i32, err: &[c_char]) -> Result<(), ActualError> {
    if rc == ffi::STRIX_OK as i32 {
        Ok(())
    } else {
        let msg = c_chars_to_string(err);
        Err(ActualError::Llama(if msg.is_empty() {
            format!("shim error {rc}")
        } else {
            msg
        }))
    }
}

/// Calls a shim function that fills an output array of `cap` entries and reports how
/// many it has (possibly more than `cap`: then it is called again with room for all).
fn fill_growing<T: Default + Clone>(
    mut cap: usize,
    mut call: impl FnMut(&mut [T], &mut usize, &mut [c_char]) -> i32,
) -> Result<Vec<T>, ActualError> {
    loop {
        let mut out = vec![T::default(); cap];
        let mut n_out = 0usize;
        let mut err: Vec<c_char> = vec![0; ERR_CAP];
        let rc = call(&mut out, &mut n_out, &mut err);
        check(rc, &err)?;
        if n_out > cap {
            cap = n_out;
            continue;
        }
        out.truncate(n_out);
        return Ok(out);
    }
}

/// What llama.cpp allocated for `ctx` and its model, per buffer type and per device.
pub fn actual_memory(ctx: &Context) -> Result<ActualMemory, ActualError> {
    let out = fill_growing(16, |out: &mut [ffi::strix_buft_mem], n_out, err| {
        // SAFETY: `ctx.as_ptr()` is a live llama_context (owned by `ctx`); the buffers
        // are valid for the lengths passed; the shim catches C++ exceptions.
        unsafe {
            ffi::strix_context_memory(
                ctx.as_ptr().cast(),
                out.as_mut_ptr(),
                out.len(),
                n_out,
                err.as_mut_ptr(),
                err.len(),
            )
        }
    })?;
    let buffers = out
        .iter()
        .map(|b| ActualBuffer {
            buft: c_chars_to_string(&b.buft),
            device: c_chars_to_string(&b.device),
            description: c_chars_to_string(&b.description),
            is_host: b.is_host,
            is_cpu_device: b.is_cpu_device,
            model_device: usize::try_from(b.model_device).ok(),
            model: b.model,
            context: b.context,
            compute: b.compute,
        })
        .collect();
    Ok(ActualMemory::from_buffers(buffers))
}

/// The buffer type of every weight tensor of `model`, in llama.cpp's order.
pub fn tensor_buffer_types(model: &Model) -> Result<Vec<TensorBuffer>, ActualError> {
    let out = fill_growing(1024, |out: &mut [ffi::strix_tensor_buft], n_out, err| {
        // SAFETY: `model.as_ptr()` is a live llama_model; buffers valid for their lengths.
        unsafe {
            ffi::strix_model_tensor_bufts(
                model.as_ptr().cast(),
                out.as_mut_ptr(),
                out.len(),
                n_out,
                err.as_mut_ptr(),
                err.len(),
            )
        }
    })?;
    Ok(out
        .iter()
        .map(|t| TensorBuffer {
            name: c_chars_to_string(&t.name),
            buft: c_chars_to_string(&t.buft),
            bytes: t.bytes,
        })
        .collect())
}

/// Parameters of [`reference_greedy`]; llama.cpp's meanings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceParams {
    /// Layers on the GPU.
    pub n_gpu_layers: i32,
    /// mmap the weights.
    pub use_mmap: bool,
    /// Context size.
    pub n_ctx: u32,
    /// Logical batch.
    pub n_batch: u32,
    /// Physical batch.
    pub n_ubatch: u32,
    /// Generation threads.
    pub n_threads: i32,
    /// Prompt threads.
    pub n_threads_batch: i32,
    /// Flash attention: -1 auto, 0 off, 1 on.
    pub flash_attn: i32,
    /// ggml type id of the K cache.
    pub type_k: i32,
    /// ggml type id of the V cache.
    pub type_v: i32,
    /// KV cache on the GPU.
    pub offload_kqv: bool,
    /// Full-size sliding-window cache.
    pub swa_full: bool,
}

/// What [`reference_greedy`] produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferenceOutput {
    /// The prompt's tokens (BOS added, special tokens parsed).
    pub prompt_tokens: Vec<i32>,
    /// The generated tokens, without the end-of-generation token.
    pub tokens: Vec<i32>,
}

/// llama.cpp's own greedy decode loop (its `examples/simple`, in C++ against `llama.h`
/// only): loads `model` afresh with `p`, generates up to `n_predict` tokens after
/// `prompt`, frees everything.
pub fn reference_greedy(
    model: &Path,
    p: &ReferenceParams,
    prompt: &str,
    n_predict: u32,
) -> Result<ReferenceOutput, ActualError> {
    if !model.exists() {
        return Err(ActualError::ModelNotFound(model.to_path_buf()));
    }
    let path = CString::new(model.to_string_lossy().as_bytes())
        .map_err(|_| ActualError::Nul("model path"))?;
    let prompt_c = CString::new(prompt).map_err(|_| ActualError::Nul("prompt"))?;
    super::llama_backend();
    let params = ffi::strix_ref_params {
        n_gpu_layers: p.n_gpu_layers,
        use_mmap: p.use_mmap,
        n_ctx: p.n_ctx,
        n_batch: p.n_batch,
        n_ubatch: p.n_ubatch,
        n_threads: p.n_threads,
        n_threads_batch: p.n_threads_batch,
        flash_attn: p.flash_attn,
        type_k: p.type_k,
        type_v: p.type_v,
        offload_kqv: p.offload_kqv,
        swa_full: p.swa_full,
    };
    let n_predict = i32::try_from(n_predict).unwrap_or(i32::MAX);
    let prompt_cap = prompt.len() + 16;
    let mut prompt_tokens = vec![0i32; prompt_cap];
    let mut tokens = vec![0i32; usize::try_from(n_predict).unwrap_or(0)];
    let (mut n_prompt, mut n_out) = (0usize, 0usize);
    let mut err: Vec<c_char> = vec![0; ERR_CAP];
    // SAFETY: strings are NUL-terminated; buffers valid for the capacities passed (a
    // prompt has at most one token per byte plus the special ones added); the shim
    // frees what it creates and catches C++ exceptions.
    let rc = unsafe {
        ffi::strix_reference_greedy(
            path.as_ptr(),
            &params,
            prompt_c.as_ptr(),
            n_predict,
            prompt_tokens.as_mut_ptr(),
            prompt_tokens.len(),
            &mut n_prompt,
            tokens.as_mut_ptr(),
            tokens.len(),
            &mut n_out,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    check(rc, &err)?;
    prompt_tokens.truncate(n_prompt.min(prompt_cap));
    tokens.truncate(n_out.min(tokens.len()));
    Ok(ReferenceOutput {
        prompt_tokens,
        tokens,
    })
}
