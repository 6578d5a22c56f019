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
    // llama-cpp-sys-2 links amdhip64, rocblas and hipblas (from <root>/lib, besides the
    // linker's own directories), and CMake needs a HIP compiler (hipcc / clang with HIP
    // support). Distribution packages (Debian, Ubuntu: ROCM_PATH=/usr) put the
    // libraries in the multiarch directory, <root>/lib/<triple>.
    let lib = root.join("lib");
    let mut dirs = vec![lib.clone(), root.join("lib64")];
    if let Ok(entries) = std::fs::read_dir(&lib) {
        dirs.extend(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().contains("-linux-"))
                .map(|e| e.path()),
        );
    }
    let has_lib = |name: &str| {
        dirs.iter().any(|dir| {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .any(|e| e.file_name().to_string_lossy().starts_with(name))
                })
                .unwrap_or(false)
        })
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
             if it is not in /opt/rocm (llama-cpp-sys-2 links amdhip64, rocblas and hipblas from ROCM_PATH/lib). \
             With Debian's packages (sid) set HIP_PATH=/usr instead, as scripts/check-hip-build does.",
        );
    }
}

/// Whether CMake's find_package(SPIRV-Headers CONFIG) can find the package under
/// `prefix` (the usual locations of a package's CMake files).
fn has_spirv_headers(prefix: &Path) -> bool {
    let config = |dir: PathBuf| {
        dir.join("SPIRV-Headers/SPIRV-HeadersConfig.cmake")
            .is_file()
    };
    let mut dirs = vec![
        prefix.join("share/cmake"),
        prefix.join("lib/cmake"),
        prefix.join("lib64/cmake"),
    ];
    if let Ok(entries) = std::fs::read_dir(prefix.join("lib")) {
        dirs.extend(entries.flatten().map(|e| e.path().join("cmake")));
    }
    dirs.into_iter().any(config)
}

fn check_vulkan() {
    println!("cargo:rerun-if-env-changed=VULKAN_SDK");
    println!("cargo:rerun-if-env-changed=VULKAN_INCLUDE_DIR");
    println!("cargo:rerun-if-env-changed=CMAKE_PREFIX_PATH");
    const DEBIAN: &str = "On Debian/Ubuntu run scripts/setup-vulkan (it installs glslc, the loader and Mesa's \
         drivers, and puts newer headers in .deps/vulkan, which .cargo/config.toml points VULKAN_SDK at); \
         elsewhere install the Vulkan SDK (https://vulkan.lunarg.com) and set VULKAN_SDK.";
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
            DEBIAN,
        );
    }
    // The headers CMake will use: VULKAN_SDK's first (FindVulkan's hint), then the
    // system's.
    let header = |dir: &Path| dir.join("vulkan/vulkan.hpp").is_file();
    let include = sdk
        .as_ref()
        .map(|s| s.join("include"))
        .filter(|d| header(d))
        .or_else(|| {
            env::var_os("VULKAN_INCLUDE_DIR")
                .map(PathBuf::from)
                .filter(|d| header(d))
        })
        .or_else(|| Some(PathBuf::from("/usr/include")).filter(|d| header(d)));
    let Some(include) = include else {
        fail(
            "vulkan",
            "the Vulkan C++ headers (vulkan/vulkan.hpp) were not found",
            DEBIAN,
        );
    };
    // The pinned llama.cpp uses vk::LayerSettingEXT (VK_EXT_layer_settings), which
    // Debian 12's headers (1.3.239) lack.
    let core = std::fs::read_to_string(include.join("vulkan/vulkan_core.h")).unwrap_or_default();
    if !core.contains("VkLayerSettingEXT") {
        fail(
            "vulkan",
            &format!(
                "the Vulkan headers in {} are too old for the pinned llama.cpp (no VK_EXT_layer_settings)",
                include.display()
            ),
            DEBIAN,
        );
    }
    let mut prefixes: Vec<PathBuf> = sdk.into_iter().collect();
    if let Some(paths) = env::var_os("CMAKE_PREFIX_PATH") {
        prefixes.extend(env::split_paths(&paths));
    }
    prefixes.extend(["/usr", "/usr/local"].map(PathBuf::from));
    if !prefixes.iter().any(|p| has_spirv_headers(p)) {
        fail(
            "vulkan",
            "SPIRV-Headers (its CMake package, SPIRV-HeadersConfig.cmake) were not found",
            DEBIAN,
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
