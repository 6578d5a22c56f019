//! `measurements/gpu-kit`: the folder that takes the GPU plan check to a machine with no Rust
//! and no network. Without llama.cpp built in (`--no-default-features`), this test's
//! strix-run is the kind the kit needs: the kit is made (without llama-bench, whose
//! CUDA build takes a quarter of an hour) and each part is checked against its source.
//! With llama.cpp built in, the kit must refuse the binary and say why.

use std::path::Path;
use std::process::Command;

fn kit() -> Command {
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("measurements/gpu-kit"))
}

fn stderr_of(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("measurements/gpu-kit runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Lists a .tar.gz.
#[cfg(not(feature = "runtime"))]
fn tar_list(archive: &Path) -> String {
    let out = Command::new("tar")
        .arg("-tzf")
        .arg(archive)
        .output()
        .expect("tar runs");
    assert!(
        out.status.success(),
        "{} is not a gzip tar",
        archive.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn impossible_arguments_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, err) = stderr_of(kit().args(["--cuda", "hopper", "--out"]).arg(dir.path()));
    assert!(
        !ok && err.contains("'hopper' is not a CUDA architecture"),
        "{err}"
    );
    let (ok, err) = stderr_of(
        kit()
            .args(["--profile-from", "measurements/results/none.json", "--out"])
            .arg(dir.path()),
    );
    assert!(
        !ok && err.contains("measurements/results/none.json"),
        "{err}"
    );
    let (ok, err) = stderr_of(kit().arg("--frobnicate"));
    assert!(!ok && err.contains("--frobnicate"), "{err}");
}

#[cfg(feature = "runtime")]
#[test]
fn a_strix_run_with_llama_cpp_built_in_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, err) = stderr_of(
        kit()
            .args([
                "--no-llama-bench",
                "--strix",
                env!("CARGO_BIN_EXE_strix-run"),
            ])
            .arg("--out")
            .arg(dir.path()),
    );
    assert!(!ok, "the kit took a strix-run with llama.cpp inside");
    assert!(err.contains("--no-default-features"), "{err}");
}

#[cfg(not(feature = "runtime"))]
#[test]
fn the_kit_holds_this_strix_run_the_pinned_sources_and_the_run_profile() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    let results = "measurements/results/2026-11-26-nvidia-h200-qwen3-30b.json";
    let out = kit()
        .args([
            "--no-llama-bench",
            "--strix",
            env!("CARGO_BIN_EXE_strix-run"),
        ])
        .args(["--profile-from", results, "--out"])
        .arg(dir.path())
        .output()
        .expect("measurements/gpu-kit runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "measurements/gpu-kit failed:\n{err}");
    let kit_dir = dir.path().canonicalize().expect("kit dir");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        kit_dir.to_str().expect("utf-8"),
        "stdout is the kit's folder"
    );

    // The binary is this build's, and runs.
    let copied = std::fs::read(kit_dir.join("strix-run")).expect("strix-run in the kit");
    let ours = std::fs::read(env!("CARGO_BIN_EXE_strix-run")).expect("our binary");
    assert!(copied == ours, "the kit's strix-run is not this build's");
    let version = Command::new(kit_dir.join("strix-run"))
        .arg("--version")
        .output()
        .expect("the kit's strix-run runs");
    assert!(String::from_utf8_lossy(&version.stdout).contains("llama.cpp: none"));

    // The profile is the run's, value for value.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join(results)).expect("results"))
            .expect("JSON");
    let profile: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(kit_dir.join("profile.json")).expect("profile.json"),
    )
    .expect("profile JSON");
    assert_eq!(profile, doc["hardware_profile"]);

    // The pinned llama.cpp tree and llama-bench's sources.
    let tree = tar_list(&kit_dir.join("llama.cpp.tar.gz"));
    for path in ["llama.cpp/include/llama.h", "llama.cpp/ggml/src/ggml-cuda/"] {
        assert!(tree.lines().any(|l| l.starts_with(path)), "no {path}");
    }
    let peer = tar_list(&kit_dir.join("peer-src.tar.gz"));
    assert!(
        peer.lines()
            .any(|l| l == "peer-src/llama-bench/llama-bench.cpp"),
        "no llama-bench.cpp in peer-src.tar.gz"
    );
    assert!(!kit_dir.join("llama-bench.xz").exists());

    // What was built from what.
    let manifest = std::fs::read_to_string(kit_dir.join("kit.txt")).expect("kit.txt");
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).expect("Cargo.lock");
    let sys_version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"llama-cpp-sys-2\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .and_then(|v| v.strip_suffix('"'))
        .expect("llama-cpp-sys-2 in Cargo.lock");
    assert!(
        manifest.contains(&format!(
            "llama-cpp-sys-2 {sys_version}, CUDA architecture 90"
        )),
        "{manifest}"
    );
    assert!(manifest.contains(results), "{manifest}");
    assert!(manifest.contains("strix-run: commit "), "{manifest}");
}
