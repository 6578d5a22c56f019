//! The plan as llama.cpp command-line arguments, for users who run llama.cpp's own
//! tools. Flag names from the pinned llama.cpp's `common/arg.cpp` (llama-server) and
//! llama-bench's usage text.

use super::Plan;

/// Which llama.cpp tool the arguments are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitTarget {
    /// `llama-server` / `llama-cli` (common arguments).
    LlamaServer,
    /// `llama-bench`.
    LlamaBench,
}

/// The arguments (without the program name and model path).
pub fn args(plan: &Plan, target: EmitTarget) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |k: &str, v: String| {
        a.push(k.to_string());
        a.push(v);
    };
    match target {
        EmitTarget::LlamaServer => {
            push("-ngl", plan.n_gpu_layers.to_string());
            if plan.n_cpu_moe > 0 {
                push("--n-cpu-moe", plan.n_cpu_moe.to_string());
            }
            push("-t", plan.n_threads.to_string());
            push("-tb", plan.n_threads_batch.to_string());
            push("-c", plan.n_ctx.to_string());
            push("-b", plan.n_batch.to_string());
            push("-ub", plan.n_ubatch.to_string());
            push(
                "-fa",
                if plan.flash_attn { "on" } else { "off" }.to_string(),
            );
            push("-ctk", plan.type_k.to_string());
            push("-ctv", plan.type_v.to_string());
            push(
                "--load-mode",
                if plan.use_mmap { "mmap" } else { "none" }.to_string(),
            );
            // The placement is already decided; llama.cpp's own fitting crashed on
            // Strix Halo (seed README, "Critical flags": -fit off).
            push("--fit", "off".to_string());
        }
        EmitTarget::LlamaBench => {
            push("-ngl", plan.n_gpu_layers.to_string());
            if plan.n_cpu_moe > 0 {
                push("-ncmoe", plan.n_cpu_moe.to_string());
            }
            push("-t", plan.n_threads.to_string());
            push("-b", plan.n_batch.to_string());
            push("-ub", plan.n_ubatch.to_string());
            push("-fa", u8::from(plan.flash_attn).to_string());
            push("-ctk", plan.type_k.to_string());
            push("-ctv", plan.type_v.to_string());
            // The pinned llama-bench's `--load-mode` (`-mmp` is deprecated there).
            push(
                "-lm",
                if plan.use_mmap { "mmap" } else { "none" }.to_string(),
            );
        }
    }
    a
}
