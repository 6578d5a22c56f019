//! llama.cpp as an oracle for the planner: what llama.cpp itself projects a model and
//! context to need on each device, and how llama.cpp itself would fit them.
//!
//! Both come from llama.cpp's `common` library (`common/fit.h`):
//! - [`llama_memory_breakdown`] wraps `common_get_device_memory_data` (through the shim,
//!   `strix_device_memory`): llama.cpp loads the model with `no_alloc` (reads metadata
//!   only, allocates no weights), creates a context, and sums each buffer's size per
//!   device into model / context / compute bytes. Nothing is allocated; a call costs
//!   about as much as parsing the GGUF header and building the graph once.
//! - [`llama_fit`] wraps `common_fit_params` (llama-cpp-sys-2's `llama_rs_fit_params`,
//!   called through the shim, `strix_fit_params`, for exception safety): llama.cpp's
//!   `--fit`, which lowers the context and/or moves layers and MoE experts to host
//!   memory until every device keeps its margin free.
//!
//! What llama.cpp counts, as read from `common/fit.cpp` and `src/llama-model.cpp`:
//! - Buffers of a *host* buffer type (`ggml_backend_buft_is_host`: plain CPU memory and
//!   the GPU backends' pinned host buffers) all go to the last entry, the host. Weights
//!   kept on the CPU are counted there whether or not they would be mmap'ed: the
//!   measurement always loads with `load_mode = NONE`, so `use_mmap` does not change the
//!   result (the planner decides whether host weights are page cache or anonymous).
//! - Buffers of a device buffer type go to that device's entry, but only for devices the
//!   model uses. CPU "extra" buffer types (the weight-repacking `CPU_REPACK`, AMX, ...)
//!   are neither host types nor a model device, so llama.cpp drops them: on a CPU-only
//!   machine with repacking, host `model` bytes are smaller than the weights. Set
//!   [`LlamaMemoryRequest::use_extra_bufts`] to `false` to count every weight.
//! - `compute` is the scheduler's reserved graph memory for an `n_ubatch`-token batch;
//!   it includes the `n_ubatch` x vocabulary logits of the output layer (512 MiB of the
//!   525 MiB for Gemma 3's 262k vocabulary at `n_ubatch` 512).
//! - Not counted: the context's output buffer (host memory for the logits/embeddings
//!   returned to the caller; it starts at `n_seq_max` rows and grows with the outputs a
//!   batch requests).
//! - `total`/`free` are what the backend reports (`ggml_backend_dev_memory`); for the host
//!   entry that is system memory.

use super::actual::DeviceMemory;
use super::context::ContextSettings;
use crate::gguf::GgmlType;
use crate::runtime::{ffi, llama_backend};
use serde::Serialize;
use std::ffi::{c_char, CString};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How llama.cpp should use flash attention (`enum llama_flash_attn_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum FlashAttn {
    /// llama.cpp decides when it creates the context (its default).
    #[default]
    Auto,
    /// Off.
    Disabled,
    /// On.
    Enabled,
}

impl From<bool> for FlashAttn {
    fn from(on: bool) -> Self {
        if on {
            FlashAttn::Enabled
        } else {
            FlashAttn::Disabled
        }
    }
}

impl FlashAttn {
    fn ffi(self) -> i32 {
        match self {
            FlashAttn::Auto => -1,
            FlashAttn::Disabled => 0,
            FlashAttn::Enabled => 1,
        }
    }
}

/// How llama.cpp splits a model over several GPUs (`enum llama_split_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum SplitMode {
    /// One GPU ([`LlamaMemoryRequest::main_gpu`]).
    None,
    /// Whole layers per GPU (llama.cpp's default).
    #[default]
    Layer,
    /// Rows of each tensor across GPUs.
    Row,
}

impl SplitMode {
    fn ffi(self) -> i32 {
        match self {
            SplitMode::None => 0,
            SplitMode::Layer => 1,
            SplitMode::Row => 2,
        }
    }
}

/// The parameters that decide how much memory llama.cpp needs for a model and context.
///
/// Field meanings and defaults follow llama.cpp's command line (`common_params`), which
/// differ from `llama_context_default_params()` in `n_ctx` and `swa_full`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlamaMemoryRequest {
    /// Layers in GPU memory, counting the output layer (0..=n_layer+1); negative = all
    /// (`-ngl`; llama.cpp's default -1, which is also what lets [`llama_fit`] choose).
    pub n_gpu_layers: i32,
    /// Keep the MoE expert weights of the first N layers in host memory (`--n-cpu-moe`).
    pub n_cpu_moe: u32,
    /// mmap the weights (`load_mode` MMAP) or read them (NONE). Does not change the
    /// projection (see the module docs) but is passed through.
    pub use_mmap: bool,
    /// Context size in tokens (`-c`); 0 = the model's training context.
    pub n_ctx: u32,
    /// Logical batch size (`-b`).
    pub n_batch: u32,
    /// Physical batch size (`-ub`); sizes the compute buffers.
    pub n_ubatch: u32,
    /// Parallel sequences (`-np`).
    pub n_seq_max: u32,
    /// K cache type (`-ctk`).
    pub type_k: GgmlType,
    /// V cache type (`-ctv`).
    pub type_v: GgmlType,
    /// Flash attention (`-fa`).
    pub flash_attn: FlashAttn,
    /// Keep the KV cache and attention ops on the GPU (`--no-kv-offload` clears it).
    pub offload_kqv: bool,
    /// Full-size cache for sliding-window-attention layers (`--swa-full`).
    pub swa_full: bool,
    /// One KV buffer shared by all sequences (`--kv-unified`).
    pub kv_unified: bool,
    /// Bypass host buffer types so extra buffer types can be used (`--no-host`).
    pub no_host: bool,
    /// Allow CPU extra buffer types such as weight repacking (`--no-repack` clears it).
    pub use_extra_bufts: bool,
    /// GPU used with [`SplitMode::None`] (`-mg`).
    pub main_gpu: i32,
    /// Multi-GPU split (`-sm`).
    pub split_mode: SplitMode,
}

impl Default for LlamaMemoryRequest {
    fn default() -> Self {
        Self {
            n_gpu_layers: -1,
            n_cpu_moe: 0,
            use_mmap: true,
            n_ctx: 4096,
            n_batch: 2048,
            n_ubatch: 512,
            n_seq_max: 1,
            type_k: GgmlType::F16,
            type_v: GgmlType::F16,
            flash_attn: FlashAttn::Auto,
            offload_kqv: true,
            swa_full: false,
            kv_unified: false,
            no_host: false,
            use_extra_bufts: true,
            main_gpu: 0,
            split_mode: SplitMode::Layer,
        }
    }
}

impl LlamaMemoryRequest {
    /// The context settings this request asks llama.cpp for: the same
    /// [`ContextSettings`] a loaded plan's context is created from, so that one function
    /// (`ContextSettings::llama`) decides every `llama_context_params` field of both.
    /// The thread counts are llama.cpp's defaults (they do not change memory).
    ///
    /// Fails when a batch size or the sequence count is 0, or a cache type is not a
    /// usable ggml type.
    pub fn context_settings(&self) -> Result<ContextSettings, OracleError> {
        let type_id = |t: GgmlType, which: &str| {
            i32::try_from(t.id())
                .ok()
                .filter(|_| t.traits().is_some())
                .ok_or_else(|| {
                    OracleError::InvalidRequest(format!("{which} {t} is not a usable ggml type"))
                })
        };
        if self.n_batch == 0 || self.n_ubatch == 0 || self.n_seq_max == 0 {
            return Err(OracleError::InvalidRequest(
                "n_batch, n_ubatch and n_seq_max must be positive".to_owned(),
            ));
        }
        // SAFETY: returns a struct by value.
        let defaults = unsafe { llama_cpp_sys_2::llama_context_default_params() };
        Ok(ContextSettings {
            n_ctx: self.n_ctx,
            n_batch: self.n_batch,
            n_ubatch: self.n_ubatch,
            n_seq_max: self.n_seq_max,
            n_threads: defaults.n_threads,
            n_threads_batch: defaults.n_threads_batch,
            flash_attn: self.flash_attn.ffi(),
            type_k: type_id(self.type_k, "type_k")?,
            type_v: type_id(self.type_v, "type_v")?,
            offload_kqv: self.offload_kqv,
            swa_full: self.swa_full,
            kv_unified: self.kv_unified,
        })
    }

    /// The shim's parameters: the model side from this request, the context side
    /// copied from the `llama_context_params` that [`ContextSettings::llama`] builds.
    fn ffi(&self) -> Result<ffi::strix_mem_params, OracleError> {
        let c = self.context_settings()?.llama();
        Ok(ffi::strix_mem_params {
            n_gpu_layers: self.n_gpu_layers,
            n_cpu_moe: self.n_cpu_moe,
            use_mmap: self.use_mmap,
            no_host: self.no_host,
            use_extra_bufts: self.use_extra_bufts,
            main_gpu: self.main_gpu,
            split_mode: self.split_mode.ffi(),
            n_ctx: c.n_ctx,
            n_batch: c.n_batch,
            n_ubatch: c.n_ubatch,
            n_seq_max: c.n_seq_max,
            type_k: c.type_k as i32,
            type_v: c.type_v as i32,
            flash_attn: c.flash_attn_type,
            offload_kqv: c.offload_kqv,
            swa_full: c.swa_full,
            kv_unified: c.kv_unified,
        })
    }
}

/// llama.cpp's projection for one model and [`LlamaMemoryRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LlamaMemoryBreakdown {
    /// One entry per device the model uses, then the host entry.
    pub devices: Vec<DeviceMemory>,
    /// Repeating layers of the model; `n_gpu_layers` ranges over 0..=n_layer+1.
    pub n_layer: u32,
    /// Training context of the model.
    pub n_ctx_train: u32,
    /// Experts per MoE layer; 0 for dense models.
    pub n_expert: u32,
}

impl LlamaMemoryBreakdown {
    /// The host (system memory) entry.
    pub fn host(&self) -> &DeviceMemory {
        self.devices
            .last()
            .expect("llama.cpp always reports a host entry")
    }

    /// The device (GPU) entries, without the host.
    pub fn gpus(&self) -> &[DeviceMemory] {
        &self.devices[..self.devices.len().saturating_sub(1)]
    }
}

/// Options of [`llama_fit`] (llama.cpp's `--fit-target` and `--fit-ctx`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FitOptions {
    /// Bytes to leave free per device, in device order; the last value repeats. With no
    /// GPU, the first applies to host memory. Empty = llama.cpp's default (1 GiB each).
    pub margins: Vec<u64>,
    /// Smallest context the fit may choose when the request's `n_ctx` is 0.
    pub n_ctx_min: u32,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            margins: Vec::new(),
            // common_params::fit_params_min_ctx
            n_ctx_min: 4096,
        }
    }
}

/// Whether llama.cpp found parameters projected to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum FitStatus {
    /// Projected to fit (possibly without changes).
    Fits,
    /// No allocation found that is projected to fit; the parameters are whatever the fit
    /// had reached (or what was given, when it refused to change them).
    DoesNotFit,
}

/// A tensor buffer-type override (`-ot PATTERN=BUFT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorOverride {
    /// Regex over tensor names.
    pub pattern: String,
    /// Buffer type name, e.g. `CPU`.
    pub buft: String,
}

/// The outcome of [`llama_fit`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlamaFit {
    /// Whether it fits.
    pub status: FitStatus,
    /// Layers in GPU memory afterwards.
    pub n_gpu_layers: i32,
    /// Context size afterwards.
    pub n_ctx: u32,
    /// Proportion per device (only written for several GPUs; all zero otherwise).
    pub tensor_split: Vec<f32>,
    /// Buffer-type overrides in effect afterwards (the request's `--n-cpu-moe` ones, or
    /// the ones the fit chose).
    pub overrides: Vec<TensorOverride>,
}

/// Errors of the oracle; each names the model file.
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    /// The model file does not exist.
    #[error("model {path} not found")]
    ModelNotFound {
        /// The model path.
        path: PathBuf,
    },
    /// The path cannot be passed to llama.cpp (contains NUL).
    #[error("model path {path} cannot be passed to llama.cpp")]
    BadPath {
        /// The model path.
        path: PathBuf,
    },
    /// The request is not something llama.cpp accepts.
    #[error("invalid llama.cpp memory request: {0}")]
    InvalidRequest(String),
    /// llama.cpp failed (for example could not load the model or create the context).
    #[error("llama.cpp could not project memory for {path}: {message}")]
    Llama {
        /// The model path.
        path: PathBuf,
        /// What llama.cpp reported.
        message: String,
    },
    /// llama.cpp's fit hit a hard error (details in the llama.cpp log, see the
    /// `runtime` module docs).
    #[error("llama.cpp's fit failed with an error for {path} (see the llama.cpp log)")]
    FitError {
        /// The model path.
        path: PathBuf,
    },
}

/// llama.cpp's measurement swaps the global llama logger while it runs and the fit is
/// documented as not thread safe, so every call goes through this lock.
static LLAMA_LOCK: Mutex<()> = Mutex::new(());

const ERR_CAP: usize = 1024;

fn c_path(model: &Path) -> Result<CString, OracleError> {
    if !model.is_file() {
        return Err(OracleError::ModelNotFound {
            path: model.to_path_buf(),
        });
    }
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        model.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = model
        .to_str()
        .ok_or_else(|| OracleError::BadPath {
            path: model.to_path_buf(),
        })?
        .as_bytes()
        .to_vec();
    CString::new(bytes).map_err(|_| OracleError::BadPath {
        path: model.to_path_buf(),
    })
}

fn c_chars_to_string(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn shim_error(model: &Path, rc: i32, err: &[c_char]) -> OracleError {
    let message = c_chars_to_string(err);
    if rc == ffi::STRIX_ERR_INVALID_ARGUMENT as i32 {
        OracleError::InvalidRequest(message)
    } else {
        OracleError::Llama {
            path: model.to_path_buf(),
            message,
        }
    }
}

/// llama.cpp's projected memory per device for `model` with `req`, without allocating.
///
/// Returns one entry per device the model uses, then the host entry (see the module
/// docs for what is counted where).
pub fn llama_memory_breakdown(
    model: &Path,
    req: &LlamaMemoryRequest,
) -> Result<LlamaMemoryBreakdown, OracleError> {
    let path = c_path(model)?;
    let params = req.ffi()?;
    llama_backend();
    let _guard = LLAMA_LOCK.lock().unwrap_or_else(|e| e.into_inner());

    let mut cap = 8usize;
    loop {
        let mut out = vec![ffi::strix_device_mem::default(); cap];
        let mut n_out = 0usize;
        let mut info = ffi::strix_model_info::default();
        let mut err: Vec<c_char> = vec![0; ERR_CAP];
        // SAFETY: every pointer is valid for the capacity passed with it; the shim
        // catches all C++ exceptions and writes at most `cap` entries / ERR_CAP bytes.
        let rc = unsafe {
            ffi::strix_device_memory(
                path.as_ptr(),
                &params,
                out.as_mut_ptr(),
                cap,
                &mut n_out,
                &mut info,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc != ffi::STRIX_OK as i32 {
            return Err(shim_error(model, rc, &err));
        }
        if n_out > cap {
            cap = n_out;
            continue;
        }
        out.truncate(n_out);
        let devices: Vec<DeviceMemory> = out
            .iter()
            .map(|d| DeviceMemory {
                name: c_chars_to_string(&d.name),
                description: Some(c_chars_to_string(&d.description)),
                is_host: d.is_host,
                total: Some(d.total),
                free: Some(d.free),
                buffer_types: None,
                model: d.model,
                context: d.context,
                compute: d.compute,
            })
            .collect();
        if devices.last().map(|d| d.is_host) != Some(true) {
            return Err(OracleError::Llama {
                path: model.to_path_buf(),
                message: "llama.cpp reported no host entry".to_owned(),
            });
        }
        let breakdown = LlamaMemoryBreakdown {
            devices,
            n_layer: info.n_layer,
            n_ctx_train: info.n_ctx_train,
            n_expert: info.n_expert,
        };
        tracing::debug!(model = %model.display(), ?req, ?breakdown, "llama.cpp memory breakdown");
        return Ok(breakdown);
    }
}

/// llama.cpp's own fit (`--fit`) of `req` to the free memory of each device.
///
/// llama.cpp only changes what is still at its default: `n_gpu_layers` -1 (it then
/// chooses layers and MoE expert overrides; needs `n_cpu_moe` 0), `n_ctx` 0 (it then
/// chooses a context between `opts.n_ctx_min` and the training context). With no GPU it
/// can only lower the context.
pub fn llama_fit(
    model: &Path,
    req: &LlamaMemoryRequest,
    opts: &FitOptions,
) -> Result<LlamaFit, OracleError> {
    let path = c_path(model)?;
    let params = req.ffi()?;
    llama_backend();
    let _guard = LLAMA_LOCK.lock().unwrap_or_else(|e| e.into_inner());

    // SAFETY: a pure getter of a llama.cpp constant.
    let mut cap = unsafe { llama_cpp_sys_2::llama_max_tensor_buft_overrides() } + 1;
    loop {
        let mut result = ffi::strix_fit_result::default();
        let mut overrides = vec![ffi::strix_fit_override::default(); cap];
        let mut n_overrides = 0usize;
        let mut err: Vec<c_char> = vec![0; ERR_CAP];
        // SAFETY: as in llama_memory_breakdown; margins is read for its length.
        let rc = unsafe {
            ffi::strix_fit_params(
                path.as_ptr(),
                &params,
                opts.margins.as_ptr(),
                opts.margins.len(),
                opts.n_ctx_min,
                // GGML_LOG_LEVEL_WARN: lower llama.cpp logs during the fit become debug.
                3,
                &mut result,
                overrides.as_mut_ptr(),
                cap,
                &mut n_overrides,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc != ffi::STRIX_OK as i32 {
            return Err(shim_error(model, rc, &err));
        }
        if n_overrides > cap {
            cap = n_overrides;
            continue;
        }
        let status = match result.status {
            0 => FitStatus::Fits,
            1 => FitStatus::DoesNotFit,
            _ => {
                return Err(OracleError::FitError {
                    path: model.to_path_buf(),
                })
            }
        };
        let n_dev = result.n_devices.min(result.tensor_split.len());
        let fit = LlamaFit {
            status,
            n_gpu_layers: result.n_gpu_layers,
            n_ctx: result.n_ctx,
            tensor_split: result.tensor_split[..n_dev].to_vec(),
            overrides: overrides[..n_overrides]
                .iter()
                .map(|o| TensorOverride {
                    pattern: c_chars_to_string(&o.pattern),
                    buft: c_chars_to_string(&o.buft),
                })
                .collect(),
        };
        tracing::debug!(model = %model.display(), ?req, ?opts, ?fit, "llama.cpp fit");
        return Ok(fit);
    }
}
