//! llama.cpp's model handle (`llama_model`): loading one with a plan's placement (GPU
//! devices, `n_gpu_layers`, the `--n-cpu-moe` overrides, mmap or not) and what it says
//! of itself. One module per llama.cpp handle; [`super::context`] holds the other.

use crate::hardware::Backend;
use crate::planner::Plan;
use indicatif::ProgressBar;
use llama_cpp_sys_2 as sys;
use std::ffi::{c_void, CStr, CString};
use std::ptr::NonNull;

/// What decides the model load (a model is reused across attempts when this is equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ModelKey {
    backend: Backend,
    n_gpu_layers: u32,
    n_cpu_moe: u32,
    use_mmap: bool,
}

impl ModelKey {
    pub(crate) fn of(plan: &Plan) -> Self {
        ModelKey {
            backend: plan.backend,
            n_gpu_layers: plan.n_gpu_layers,
            n_cpu_moe: plan.n_cpu_moe,
            use_mmap: plan.use_mmap,
        }
    }
}

/// The `--n-cpu-moe` override patterns for `n` blocks, as llama.cpp's `common/arg.cpp`
/// writes them.
pub fn n_cpu_moe_patterns(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| format!("blk\\.{i}\\.ffn_(up|down|gate|gate_up)_(ch|)exps"))
        .collect()
}

/// Load-progress state handed to llama.cpp's callback.
struct Progress {
    bar: ProgressBar,
    abort: bool,
}

unsafe extern "C" fn progress_callback(progress: f32, user_data: *mut c_void) -> bool {
    if user_data.is_null() {
        return true;
    }
    // SAFETY: `user_data` is the `Progress` boxed in the model's `Owned`, alive for the
    // model's lifetime; llama.cpp calls this only from the loading thread.
    let state = unsafe { &mut *user_data.cast::<Progress>() };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if state.abort {
            return false;
        }
        state
            .bar
            .set_position((progress.clamp(0.0, 1.0) * 1000.0) as u64);
        true
    }))
    .unwrap_or(false)
}

/// Memory llama.cpp keeps pointers into while the model exists: the override patterns
/// and list, the device list, the progress state.
struct Owned {
    _patterns: Vec<CString>,
    overrides: Vec<sys::llama_model_tensor_buft_override>,
    devices: Vec<sys::ggml_backend_dev_t>,
    progress: Box<Progress>,
}

/// A loaded llama.cpp model (`llama_model`), freed on drop.
pub struct Model {
    ptr: NonNull<sys::llama_model>,
    _owned: Box<Owned>,
    overrides: Vec<String>,
}

// SAFETY: a loaded llama_model is read-only; llama.cpp allows using it from any thread
// (llama-cpp-2's LlamaModel is Send + Sync too).
unsafe impl Send for Model {}
// SAFETY: as above.
unsafe impl Sync for Model {}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the pointer came from llama_model_load_from_file and is freed once;
        // contexts borrowing it are dropped first (Loaded's field order).
        unsafe { sys::llama_model_free(self.ptr.as_ptr()) };
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("desc", &self.desc())
            .field("overrides", &self.overrides)
            .finish()
    }
}

impl Model {
    /// The raw `llama_model *` (valid while `self` lives).
    pub fn as_ptr(&self) -> *mut sys::llama_model {
        self.ptr.as_ptr()
    }

    /// llama.cpp's short description (`llama_model_desc`), e.g. `gemma3 270M Q4_K - Medium`.
    pub fn desc(&self) -> String {
        let mut buf = vec![0u8; 256];
        // SAFETY: buffer valid for its length; llama.cpp NUL-terminates.
        let n = unsafe { sys::llama_model_desc(self.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        buf.truncate(usize::try_from(n).unwrap_or(0).min(255));
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Parameters (`llama_model_n_params`).
    pub fn n_params(&self) -> u64 {
        // SAFETY: live model.
        unsafe { sys::llama_model_n_params(self.as_ptr()) }
    }

    /// Bytes of all weights (`llama_model_size`).
    pub fn size(&self) -> u64 {
        // SAFETY: live model.
        unsafe { sys::llama_model_size(self.as_ptr()) }
    }

    /// The model's own chat template (`tokenizer.chat_template`), if it has one.
    pub fn chat_template(&self) -> Option<String> {
        // SAFETY: live model; the returned string lives as long as the model.
        let p = unsafe { sys::llama_model_chat_template(self.as_ptr(), std::ptr::null()) };
        (!p.is_null()).then(|| {
            // SAFETY: NUL-terminated string owned by the model.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        })
    }

    /// The tensor buffer-type override patterns the model was loaded with.
    pub fn overrides(&self) -> &[String] {
        &self.overrides
    }

    pub(crate) fn vocab(&self) -> *const sys::llama_vocab {
        // SAFETY: live model; the vocab lives as long as the model.
        unsafe { sys::llama_model_get_vocab(self.as_ptr()) }
    }
}

/// The GPUs of `backend` among llama.cpp's devices (none for the CPU backend).
fn backend_devices(backend: Backend) -> Vec<sys::ggml_backend_dev_t> {
    if !backend.is_gpu() {
        return Vec::new();
    }
    let mut out = Vec::new();
    // SAFETY: ggml's device registry is initialised (llama_backend) and static.
    unsafe {
        for i in 0..sys::ggml_backend_dev_count() {
            let dev = sys::ggml_backend_dev_get(i);
            let kind = sys::ggml_backend_dev_type(dev);
            if kind != sys::GGML_BACKEND_DEVICE_TYPE_GPU
                && kind != sys::GGML_BACKEND_DEVICE_TYPE_IGPU
            {
                continue;
            }
            let name_ptr = sys::ggml_backend_dev_name(dev);
            if name_ptr.is_null() {
                continue;
            }
            let name = CStr::from_ptr(name_ptr)
                .to_string_lossy()
                .to_ascii_lowercase();
            let of = if name.starts_with("vulkan") {
                Some(Backend::Vulkan)
            } else if name.starts_with("rocm") || name.starts_with("hip") {
                Some(Backend::Hip)
            } else if name.starts_with("cuda") {
                Some(Backend::Cuda)
            } else {
                None
            };
            if of == Some(backend) {
                out.push(dev);
            }
        }
    }
    out
}

/// How llama.cpp lays out weights in memory, beyond the plan's placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightLayout {
    /// Let llama.cpp repack CPU weights for its faster multi-row kernels (llama.cpp's
    /// default, `use_extra_bufts`). Those kernels sum in another order for batches of
    /// several rows than for one, so with repacking a sequence decoded beside others
    /// (a server's continuous batching) can give slightly different logits, and a
    /// different greedy text, than decoded alone. Off: every answer is the same alone
    /// or batched, prompts run slower on the CPU.
    pub repack_cpu_weights: bool,
}

impl Default for WeightLayout {
    fn default() -> Self {
        WeightLayout {
            repack_cpu_weights: true,
        }
    }
}

/// Loads the model at `path` with `plan`'s placement; `abort` aborts it through the
/// progress callback (the step-down test hook).
pub(crate) fn load_model(
    path: &CStr,
    plan: &Plan,
    weights: WeightLayout,
    bar: ProgressBar,
    abort: bool,
) -> Result<Model, String> {
    let patterns: Vec<CString> = n_cpu_moe_patterns(plan.n_cpu_moe)
        .into_iter()
        .map(|p| CString::new(p).expect("patterns have no NUL"))
        .collect();
    let mut owned = Box::new(Owned {
        overrides: Vec::new(),
        devices: backend_devices(plan.backend),
        progress: Box::new(Progress { bar, abort }),
        _patterns: Vec::new(),
    });
    // SAFETY: the CPU buffer type is a static of ggml.
    let cpu_buft = unsafe { sys::ggml_backend_cpu_buffer_type() };
    owned.overrides = patterns
        .iter()
        .map(|p| sys::llama_model_tensor_buft_override {
            pattern: p.as_ptr(),
            buft: cpu_buft,
        })
        .collect();
    owned.overrides.push(sys::llama_model_tensor_buft_override {
        pattern: std::ptr::null(),
        buft: std::ptr::null_mut(),
    });
    owned._patterns = patterns;
    // NULL-terminated; an empty list (just the NULL) means "no GPU", a NULL pointer
    // would mean "every device".
    owned.devices.push(std::ptr::null_mut());

    // SAFETY: returns a struct by value.
    let mut mp = unsafe { sys::llama_model_default_params() };
    mp.n_gpu_layers = i32::try_from(plan.n_gpu_layers).unwrap_or(i32::MAX);
    mp.use_extra_bufts = weights.repack_cpu_weights;
    mp.load_mode = if plan.use_mmap {
        sys::LLAMA_LOAD_MODE_MMAP
    } else {
        sys::LLAMA_LOAD_MODE_NONE
    };
    mp.devices = owned.devices.as_mut_ptr();
    mp.tensor_buft_overrides = if plan.n_cpu_moe > 0 {
        owned.overrides.as_ptr()
    } else {
        std::ptr::null()
    };
    mp.progress_callback = Some(progress_callback);
    mp.progress_callback_user_data = std::ptr::from_mut(&mut *owned.progress).cast();

    // SAFETY: every pointer in `mp` points into `owned`, which the Model keeps (boxed,
    // never mutated again) as long as the llama_model exists.
    let raw = unsafe { sys::llama_model_load_from_file(path.as_ptr(), mp) };
    owned.progress.bar.finish_and_clear();
    match NonNull::new(raw) {
        Some(ptr) => Ok(Model {
            ptr,
            overrides: owned
                ._patterns
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            _owned: owned,
        }),
        None if abort => Err(
            "aborted through the load-progress callback (Fault::ModelLoad test hook)".to_owned(),
        ),
        None => Err(
            "llama.cpp could not load the model (allocation failed or the file is not loadable; \
             llama.cpp's log says why: RUST_LOG=llama-cpp-2=info)"
                .to_owned(),
        ),
    }
}
