//! Checks the SDKs of the requested GPU backends and stops the build with one clear
//! message when one is missing (instead of a CMake error deep in llama.cpp's build).
//! It runs alongside llama-cpp-sys-2's build script, so its message comes first.

use std::env;
use std::path::{Path, PathBuf};

fn on_path(program: &str) -> Option<PathBuf> {
    env::var_os("PATH").and_then(|paths| {
        env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

fn fail(backend: &str, missing: &str, install: &str) -> ! {
    eprintln!();
    eprintln!("error: strix-run was built with the `{backend}` feature, but {missing}.");
    eprintln!("       {install}");
    eprintln!(
        "       Or build without it: `cargo build --release` (CPU) or another backend feature."
    );
    eprintln!();
    std::process::exit(1);
}

fn check_hip() {
    println!("cargo:rerun-if-env-changed=ROCM_PATH");
    println!("cargo:rerun-if-env-changed=HIP_PATH");
    let root = env::var_os("ROCM_PATH")
        .or_else(|| env::var_os("HIP_PATH"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/rocm"));
    // llama-cpp-sys-2 links amdhip64, rocblas and hipblas from <root>/lib, and CMake
    // needs a HIP compiler (hipcc / clang with HIP support).
    let lib = root.join("lib");
    let has_lib = |name: &str| {
        std::fs::read_dir(&lib)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(name))
            })
            .unwrap_or(false)
    };
    let missing: Vec<&str> = ["libamdhip64", "librocblas", "libhipblas"]
        .into_iter()
        .filter(|l| !has_lib(l))
        .collect();
    if !missing.is_empty() {
        fail(
            "hip",
            &format!("{} not found in {}", missing.join(", "), lib.display()),
            "Install ROCm >= 7.2 (https://rocm.docs.amd.com; the HIP SDK on Windows) and set ROCM_PATH \
             if it is not in /opt/rocm (llama-cpp-sys-2 links amdhip64, rocblas and hipblas from ROCM_PATH/lib).",
        );
    }
}

fn check_vulkan() {
    println!("cargo:rerun-if-env-changed=VULKAN_SDK");
    let sdk = env::var_os("VULKAN_SDK").map(PathBuf::from);
    let glslc = sdk
        .as_ref()
        .map(|s| s.join("bin/glslc"))
        .filter(|p| p.is_file())
        .or_else(|| on_path("glslc"));
    if glslc.is_none() {
        fail(
            "vulkan",
            "the GLSL compiler `glslc` was not found (VULKAN_SDK/bin or PATH)",
            "Install the Vulkan SDK, or on Debian/Ubuntu: glslc libvulkan-dev spirv-headers.",
        );
    }
    let header = |dir: &Path| dir.join("vulkan/vulkan.hpp").is_file();
    let found = sdk
        .as_ref()
        .map(|s| s.join("include"))
        .filter(|d| header(d))
        .is_some()
        || header(Path::new("/usr/include"))
        || env::var_os("VULKAN_INCLUDE_DIR").is_some_and(|d| header(Path::new(&d)));
    if !found {
        fail(
            "vulkan",
            "the Vulkan C++ headers (vulkan/vulkan.hpp) were not found",
            "Install libvulkan-dev (Debian/Ubuntu) or the Vulkan SDK and set VULKAN_SDK.",
        );
    }
}

fn check_cuda() {
    println!("cargo:rerun-if-env-changed=CUDA_PATH");
    let nvcc = env::var_os("CUDA_PATH")
        .map(|p| PathBuf::from(p).join("bin/nvcc"))
        .filter(|p| p.is_file())
        .or_else(|| on_path("nvcc"))
        .or_else(|| Some(PathBuf::from("/usr/local/cuda/bin/nvcc")).filter(|p| p.is_file()));
    if nvcc.is_none() {
        fail(
            "cuda",
            "the CUDA compiler `nvcc` was not found (CUDA_PATH/bin, PATH or /usr/local/cuda/bin)",
            "Install the CUDA toolkit (https://developer.nvidia.com/cuda-downloads) and put nvcc on PATH.",
        );
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PATH");
    if env::var_os("CARGO_FEATURE_HIP").is_some() {
        check_hip();
    }
    if env::var_os("CARGO_FEATURE_VULKAN").is_some() {
        check_vulkan();
    }
    if env::var_os("CARGO_FEATURE_CUDA").is_some() {
        check_cuda();
    }
}
