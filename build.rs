//! Build script.
//!
//! Always: records what this build carries, as compile-time environment variables the
//! crate reads with `env!`:
//! - `STRIX_BACKENDS`: the llama.cpp backends compiled in, e.g. `cpu` or `cpu,vulkan`
//!   (`none` without the `runtime` feature: planning only, no llama.cpp);
//! - `STRIX_HIP_TARGETS`: the HIP GPU targets (`CMAKE_HIP_ARCHITECTURES`, default `gfx1151`);
//! - `STRIX_LLAMA_CPP`: the llama.cpp this build uses (`llama-cpp-sys-2 0.1.161`, or `none`).
//!
//! With the `runtime` feature only: compiles `shim/strix_shim.cpp` (C++17, crate `cc`)
//! against the llama.cpp sources bundled in llama-cpp-sys-2 and generates Rust bindings
//! for `shim/strix_shim.h` (crate `bindgen`) into `$OUT_DIR/strix_shim.rs`. The shim only
//! covers what llama-cpp-2's public API lacks; see the header. Without the feature the
//! script does nothing expensive, so the pure-Rust build stays fast.

use std::env;

/// The llama.cpp binding this crate pins in Cargo.toml (`llama-cpp-sys-2 = "=0.1.161"`).
const LLAMA_CPP_SYS: &str = "llama-cpp-sys-2";
const LLAMA_CPP_SYS_VERSION: &str = "0.1.161";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CMAKE_HIP_ARCHITECTURES");

    let runtime = env::var_os("CARGO_FEATURE_RUNTIME").is_some();

    let backends = if runtime {
        let mut b = vec!["cpu"];
        for (feature, name) in [
            ("CARGO_FEATURE_VULKAN", "vulkan"),
            ("CARGO_FEATURE_HIP", "hip"),
            ("CARGO_FEATURE_CUDA", "cuda"),
        ] {
            if env::var_os(feature).is_some() {
                b.push(name);
            }
        }
        b.join(",")
    } else {
        "none".to_owned()
    };
    println!("cargo:rustc-env=STRIX_BACKENDS={backends}");

    let hip_targets = env::var("CMAKE_HIP_ARCHITECTURES")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "gfx1151".to_owned());
    println!("cargo:rustc-env=STRIX_HIP_TARGETS={hip_targets}");

    let llama = if runtime {
        format!("{LLAMA_CPP_SYS} {LLAMA_CPP_SYS_VERSION}")
    } else {
        "none".to_owned()
    };
    println!("cargo:rustc-env=STRIX_LLAMA_CPP={llama}");

    #[cfg(feature = "runtime")]
    shim::build();
}

#[cfg(feature = "runtime")]
mod shim {
    use super::{LLAMA_CPP_SYS, LLAMA_CPP_SYS_VERSION};
    use std::env;
    use std::path::{Path, PathBuf};

    /// Overrides where the llama.cpp sources (the folder with `include/`, `common/`) are.
    const SRC_OVERRIDE: &str = "STRIX_LLAMA_CPP_SRC";

    pub fn build() {
        println!("cargo:rerun-if-changed=shim/strix_shim.cpp");
        println!("cargo:rerun-if-changed=shim/strix_shim.h");
        println!("cargo:rerun-if-env-changed={SRC_OVERRIDE}");
        println!("cargo:rerun-if-env-changed=DEP_LLAMA_ROOT");

        let llama_src = find_llama_src();
        // llama-cpp-sys-2's own crate folder: holds wrapper_common.h (llama_rs_fit_params).
        let sys_root = llama_src
            .parent()
            .expect("llama.cpp source folder has a parent")
            .to_path_buf();
        if !sys_root.join("wrapper_common.h").is_file() {
            panic!(
                "strix-run build: {} has no wrapper_common.h; the shim needs the llama.cpp \
                 bundled in {LLAMA_CPP_SYS} {LLAMA_CPP_SYS_VERSION} (set {SRC_OVERRIDE} to its \
                 llama.cpp/ folder)",
                sys_root.display()
            );
        }

        // Same include set as llama-cpp-sys-2 uses for its own wrapper_common.cpp.
        let mut build = cc::Build::new();
        build
            .cpp(true)
            .std("c++17")
            .file("shim/strix_shim.cpp")
            .include("shim")
            .include(&sys_root)
            .include(&llama_src)
            .include(llama_src.join("common"))
            .include(llama_src.join("include"))
            .include(llama_src.join("ggml/include"))
            .include(llama_src.join("vendor"))
            .warnings(true)
            .pic(true);
        // Links the static `strix_shim` into this crate. Its undefined symbols
        // (common_get_device_memory_data, llama_rs_fit_params, common_log_*, llama_*,
        // ggml_*) resolve against the static libraries llama-cpp-sys-2 links
        // (llama-common, llama_cpp_sys_2_common_wrapper, llama, ggml*), which come after
        // this crate on the final link line because this crate depends on it.
        build.compile("strix_shim");

        let bindings = bindgen::Builder::default()
            .header("shim/strix_shim.h")
            .allowlist_function("strix_.*")
            .allowlist_type("strix_.*")
            .allowlist_var("STRIX_.*")
            .derive_default(true)
            .derive_debug(true)
            .use_core()
            .layout_tests(false)
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
            .generate()
            .expect("strix-run build: bindgen failed on shim/strix_shim.h (libclang is needed)");
        let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
        bindings
            .write_to_file(out.join("strix_shim.rs"))
            .expect("strix-run build: writing the shim bindings");
    }

    /// The llama.cpp source folder of llama-cpp-sys-2, in order of preference:
    /// 1. `$STRIX_LLAMA_CPP_SRC`;
    /// 2. from llama-cpp-sys-2's build output (`links = "llama"`; the `cmake` crate it uses
    ///    emits `cargo:root=<OUT_DIR>`, which reaches us as `DEP_LLAMA_ROOT`): CMake's
    ///    cache there records the source folder as `CMAKE_HOME_DIRECTORY`;
    /// 3. the Cargo registry: `$CARGO_HOME/registry/src/*/llama-cpp-sys-2-<version>/llama.cpp`.
    fn find_llama_src() -> PathBuf {
        let ok = |p: &Path| p.join("common/fit.h").is_file() && p.join("include/llama.h").is_file();

        if let Some(p) = env::var_os(SRC_OVERRIDE).map(PathBuf::from) {
            if ok(&p) {
                return p;
            }
            panic!(
                "strix-run build: {SRC_OVERRIDE}={} has no common/fit.h and include/llama.h",
                p.display()
            );
        }

        let mut tried = Vec::new();
        if let Some(root) = env::var_os("DEP_LLAMA_ROOT").map(PathBuf::from) {
            let cache = root.join("build/CMakeCache.txt");
            if let Ok(text) = std::fs::read_to_string(&cache) {
                for line in text.lines() {
                    if let Some(dir) = line.strip_prefix("CMAKE_HOME_DIRECTORY:INTERNAL=") {
                        let p = PathBuf::from(dir.trim());
                        if ok(&p) {
                            return p;
                        }
                        tried.push(p);
                    }
                }
            } else {
                tried.push(cache);
            }
        } else {
            tried.push(PathBuf::from("$DEP_LLAMA_ROOT (unset)"));
        }

        let cargo_home = env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
        if let Some(home) = cargo_home {
            let registry = home.join("registry/src");
            if let Ok(entries) = std::fs::read_dir(&registry) {
                for e in entries.flatten() {
                    let p = e
                        .path()
                        .join(format!("{LLAMA_CPP_SYS}-{LLAMA_CPP_SYS_VERSION}"))
                        .join("llama.cpp");
                    if ok(&p) {
                        return p;
                    }
                    tried.push(p);
                }
            } else {
                tried.push(registry);
            }
        }

        panic!(
            "strix-run build: cannot find the llama.cpp sources of {LLAMA_CPP_SYS} \
             {LLAMA_CPP_SYS_VERSION} (needed to compile shim/strix_shim.cpp). Tried: {}. \
             Check that {LLAMA_CPP_SYS} built (`cargo build -p {LLAMA_CPP_SYS}`) and that its \
             source is in the Cargo registry (`cargo fetch`), or set {SRC_OVERRIDE} to its \
             llama.cpp/ folder.",
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
