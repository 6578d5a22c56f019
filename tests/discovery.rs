//! Model discovery and resolution against fake home folders: the layouts of the
//! Hugging Face cache, LM Studio and Ollama, split models, broken files, metadata
//! matching, aliases without a local file and the errors. Pure Rust (runs with
//! `--no-default-features`); the model files are sparse synthetic GGUFs, a few MB on
//! disk each.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use strix_run::discovery::{
    discover, find_alias, resolve, whatif, DiscoveryConfig, DiscoveryError, Resolved, RootKind,
};
use strix_run::gguf::{GgmlType, GgufValue, GgufWriter, TensorData};
use strix_run::model::synth::{synth, SynthRequest};

/// Writes a sparse synthetic model of `preset` at `out` (creating folders).
fn model(preset: &str, out: &Path, shards: u32) -> Vec<PathBuf> {
    let req = SynthRequest {
        preset: preset.into(),
        quant: None,
        out: out.to_path_buf(),
        sparse: true,
        shards,
        seed: 0,
        existing: strix_run::files::Existing::Replace,
    };
    synth(&req).expect("synth").files
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// A config that sees only `home` (no environment).
fn cfg(home: &Path) -> DiscoveryConfig {
    DiscoveryConfig::with_home(home)
}

#[cfg(unix)]
fn symlink(target: impl AsRef<Path>, link: &Path) {
    fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink(target, link).expect("symlink");
}

/// The Hugging Face hub cache: the snapshot file is a relative link into `blobs/`.
#[cfg(unix)]
fn hf_model(home: &Path, preset: &str, repo: &str, file: &str) -> PathBuf {
    let repo_dir = home
        .join(".cache/huggingface/hub")
        .join(format!("models--{}", repo.replace('/', "--")));
    let blob = repo_dir.join("blobs").join("4f2b9c0e7d1a");
    model(preset, &blob, 1);
    fs::create_dir_all(repo_dir.join("refs")).expect("refs");
    fs::write(repo_dir.join("refs/main"), "0123abcd").expect("ref");
    let link = repo_dir.join("snapshots/0123abcd").join(file);
    symlink(Path::new("../../blobs/4f2b9c0e7d1a"), &link);
    link
}

/// Ollama's store: a manifest naming a model blob (plus a template layer).
fn ollama_model(home: &Path, preset: &str, model_name: &str, tag: &str) -> PathBuf {
    let store = home.join(".ollama/models");
    let hex = "ab".repeat(32);
    let blob = store.join("blobs").join(format!("sha256-{hex}"));
    model(preset, &blob, 1);
    fs::write(
        store
            .join("blobs")
            .join(format!("sha256-{}", "cd".repeat(32))),
        "{{ .Prompt }}",
    )
    .expect("template blob");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": format!("sha256:{}", "ef".repeat(32)), "size": 100},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.template",
             "digest": format!("sha256:{}", "cd".repeat(32)), "size": 13},
            {"mediaType": "application/vnd.ollama.image.model",
             "digest": format!("sha256:{hex}"), "size": 1000},
        ]
    });
    let path = store
        .join("manifests/registry.ollama.ai/library")
        .join(model_name)
        .join(tag);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(&path, manifest.to_string()).expect("manifest");
    blob
}

#[test]
#[cfg(unix)]
fn hugging_face_snapshot_links_are_followed_and_named_by_repo() {
    let h = home();
    let link = hf_model(
        h.path(),
        "micro-dense",
        "Qwen/Micro-GGUF",
        "Micro-Q4_K_M.gguf",
    );
    let found = discover(&cfg(h.path()));
    assert_eq!(found.models.len(), 1, "{:?}", found.problems);
    let m = &found.models[0];
    assert_eq!(m.path, link, "the snapshot path, not the blob");
    assert_eq!(m.source_label, "Hugging Face cache");
    assert_eq!(m.display_name, "Qwen/Micro-GGUF/Micro-Q4_K_M.gguf");
    assert_eq!(m.meta.arch, "qwen3");
    assert!(found.problems.is_empty(), "{:?}", found.problems);
}

#[test]
#[cfg(unix)]
fn alias_8b_finds_qwen3_8b_in_the_hugging_face_cache_by_metadata() {
    let h = home();
    let link = hf_model(
        h.path(),
        "qwen3-8b",
        "Qwen/Qwen3-8B-GGUF",
        "Qwen3-8B-Q4_K_M.gguf",
    );
    // A qwen3 model of another size must not match.
    model("micro-dense", &h.path().join("models/other.gguf"), 1);
    match resolve("8b", &cfg(h.path())).expect("resolves") {
        Resolved::Local { model, candidates } => {
            assert_eq!(model.path, link);
            assert_eq!(model.meta.size_label.as_deref(), Some("8B"));
            assert!(candidates.is_empty(), "{candidates:?}");
        }
        other => panic!("expected a local model, got {other:?}"),
    }
}

#[test]
fn a_renamed_file_matches_its_alias_by_metadata_not_name() {
    let h = home();
    let file = h.path().join("models/downloads/mystery-weights.gguf");
    model("qwen3-8b", &file, 1);
    let Resolved::Local { model, .. } = resolve("8B", &cfg(h.path())).expect("resolves") else {
        panic!("expected a local model")
    };
    assert_eq!(model.path, file);
    assert_eq!(model.display_name, "downloads/mystery-weights.gguf");
    // The preset name is an alias too, and a fragment of general.name finds it.
    assert!(matches!(
        resolve("qwen3-8b", &cfg(h.path())),
        Ok(Resolved::Local { .. })
    ));
    let Resolved::Local { model, .. } = resolve("qwen3 8b", &cfg(h.path())).expect("fragment")
    else {
        panic!("expected a local model")
    };
    assert_eq!(model.path, file);
    // The alias of another size does not take it.
    assert!(matches!(
        resolve("32b", &cfg(h.path())),
        Ok(Resolved::KnownShapeOnly { .. })
    ));
}

#[test]
fn lm_studio_layout_is_found_and_named_publisher_repo_file() {
    let h = home();
    let file = h
        .path()
        .join(".lmstudio/models/lmstudio-community/Micro-MoE-GGUF/Micro-MoE-Q4_K_M.gguf");
    model("micro-moe", &file, 1);
    let old = h
        .path()
        .join(".cache/lm-studio/models/someone/old/old.gguf");
    model("micro-dense", &old, 1);
    let found = discover(&cfg(h.path()));
    let names: Vec<(&str, &str)> = found
        .models
        .iter()
        .map(|m| (m.display_name.as_str(), m.source_label))
        .collect();
    assert_eq!(
        names,
        [
            (
                "lmstudio-community/Micro-MoE-GGUF/Micro-MoE-Q4_K_M.gguf",
                "LM Studio"
            ),
            ("someone/old/old.gguf", "LM Studio"),
        ]
    );
    // Fragments match general.name case-insensitively, with or without punctuation.
    for query in ["micro moe", "MICRO-MOE", "Micro MoE"] {
        let Resolved::Local { model, .. } = resolve(query, &cfg(h.path())).expect(query) else {
            panic!("{query}: expected a local model")
        };
        assert_eq!(model.path, file, "{query}");
    }
}

#[test]
fn ollama_manifests_lead_to_blobs_named_model_colon_tag() {
    let h = home();
    let blob = ollama_model(h.path(), "micro-dense", "micro", "latest");
    let found = discover(&cfg(h.path()));
    assert_eq!(found.models.len(), 1, "{:?}", found.problems);
    assert_eq!(found.models[0].display_name, "micro:latest");
    assert_eq!(found.models[0].path, blob);
    assert_eq!(found.models[0].source_label, "Ollama");
    let ollama = found
        .searched
        .iter()
        .find(|s| s.label == "Ollama")
        .expect("root");
    assert!(ollama.exists);
    assert_eq!(ollama.files_seen, 1);
    let Resolved::Local { model, .. } = resolve("micro:latest", &cfg(h.path())).expect("name")
    else {
        panic!("expected a local model")
    };
    assert_eq!(model.path, blob);
}

#[test]
fn broken_ollama_manifests_are_problems_not_failures() {
    let h = home();
    ollama_model(h.path(), "micro-dense", "micro", "latest");
    let manifests = h
        .path()
        .join(".ollama/models/manifests/registry.ollama.ai/library");
    fs::create_dir_all(manifests.join("junk")).expect("mkdir");
    fs::write(manifests.join("junk/latest"), "not json").expect("write");
    let gone = serde_json::json!({"layers": [{"mediaType": "application/vnd.ollama.image.model",
        "digest": format!("sha256:{}", "99".repeat(32))}]});
    fs::create_dir_all(manifests.join("gone")).expect("mkdir");
    fs::write(manifests.join("gone/7b"), gone.to_string()).expect("write");
    let evil = serde_json::json!({"layers": [{"mediaType": "application/vnd.ollama.image.model",
        "digest": "sha256:../../../../etc/passwd"}]});
    fs::create_dir_all(manifests.join("evil")).expect("mkdir");
    fs::write(manifests.join("evil/x"), evil.to_string()).expect("write");
    let found = discover(&cfg(h.path()));
    assert_eq!(found.models.len(), 1);
    let problems = found.problems.join("\n");
    assert!(
        problems.contains("junk/latest") && problems.contains("not an Ollama manifest"),
        "{problems}"
    );
    assert!(
        problems.contains("gone/7b") && problems.contains("is missing"),
        "{problems}"
    );
    assert!(problems.contains("invalid digest"), "{problems}");
}

#[test]
fn split_models_are_listed_once_by_their_first_shard() {
    let h = home();
    let files = model("micro-moe", &h.path().join("models/moe/micro-moe.gguf"), 3);
    assert_eq!(files.len(), 3);
    let found = discover(&cfg(h.path()));
    assert_eq!(
        found.models.len(),
        1,
        "{:?}",
        found.models.iter().map(|m| &m.path).collect::<Vec<_>>()
    );
    assert_eq!(found.models[0].path, files[0]);
    assert_eq!(found.models[0].meta.shards, files);
    assert_eq!(found.searched[0].files_seen, 3);
    // An explicit path to a later shard opens the whole set.
    let Resolved::Local { model, candidates } =
        resolve(files[2].to_str().expect("utf-8"), &cfg(h.path())).expect("path")
    else {
        panic!("expected a local model")
    };
    assert_eq!(model.source_label, "path");
    assert_eq!(model.meta.shards, files);
    assert!(candidates.is_empty());
}

#[test]
fn a_split_model_missing_its_first_shard_is_a_problem() {
    let h = home();
    let files = model("micro-moe", &h.path().join("models/moe.gguf"), 2);
    fs::remove_file(&files[0]).expect("rm");
    let found = discover(&cfg(h.path()));
    assert!(found.models.is_empty());
    assert!(
        found.problems.iter().any(|p| p.contains("missing")),
        "{:?}",
        found.problems
    );
}

#[test]
fn truncated_and_garbage_files_are_problems_and_discovery_goes_on() {
    let h = home();
    let good = h.path().join("models/b-good.gguf");
    model("micro-dense", &good, 1);
    let truncated = h.path().join("models/a-truncated.gguf");
    let bytes = fs::read(&good).expect("read");
    fs::write(&truncated, &bytes[..4096]).expect("write");
    let garbage = h.path().join("models/c-garbage.gguf");
    fs::write(&garbage, b"this is not a model at all").expect("write");
    fs::write(h.path().join("models/empty.gguf"), b"").expect("write");
    let found = discover(&cfg(h.path()));
    assert_eq!(found.models.len(), 1);
    assert_eq!(found.models[0].path, good);
    let problems = found.problems.join("\n");
    for bad in [&truncated, &garbage] {
        assert!(problems.contains(&bad.display().to_string()), "{problems}");
    }
    assert!(problems.contains("not a GGUF file"), "{problems}");
    assert_eq!(found.problems.len(), 3, "{problems}");
}

#[test]
fn projectors_are_skipped_not_listed() {
    let h = home();
    model("micro-dense", &h.path().join("models/m.gguf"), 1);
    let mut w = GgufWriter::new();
    w.set("general.architecture", GgufValue::String("clip".into()));
    w.set("general.type", GgufValue::String("mmproj".into()));
    w.add_tensor("v.patch_embd.weight", GgmlType::F16, &[14, 14, 3, 64])
        .expect("tensor");
    let proj = h.path().join("models/mmproj-m-f16.gguf");
    w.write(&proj, TensorData::Sparse).expect("write");
    let found = discover(&cfg(h.path()));
    assert_eq!(found.models.len(), 1);
    assert_eq!(found.skipped.len(), 1);
    assert_eq!(found.skipped[0].path, proj);
    assert!(found.skipped[0].reason.contains("projector"));
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    // Named explicitly, it is refused with the reason.
    let err = resolve(proj.to_str().expect("utf-8"), &cfg(h.path())).expect_err("not a model");
    assert!(matches!(err, DiscoveryError::NotAModel { .. }), "{err}");
}

#[test]
#[cfg(unix)]
fn symlink_loops_and_duplicate_roots_do_not_repeat_models() {
    let h = home();
    let file = h.path().join("models/m.gguf");
    model("micro-dense", &file, 1);
    symlink(h.path().join("models"), &h.path().join("models/loop"));
    symlink(
        h.path().join("models"),
        &h.path().join(".lmstudio/models/linked"),
    );
    symlink(
        h.path().join("nowhere.gguf"),
        &h.path().join("models/dangling.gguf"),
    );
    let mut c = cfg(h.path());
    c.env_models = Some(h.path().join("models"));
    let found = discover(&c);
    assert_eq!(
        found.models.len(),
        1,
        "{:?}",
        found.models.iter().map(|m| &m.path).collect::<Vec<_>>()
    );
    assert_eq!(found.models[0].source_label, "$STRIX_MODELS");
    // Each real folder is entered once: the loop adds no second sighting.
    assert_eq!(found.searched[0].files_seen, 1, "{:?}", found.searched);
    assert!(
        found.problems.iter().any(|p| p.contains("dangling.gguf")),
        "{:?}",
        found.problems
    );
}

#[test]
fn models_dirs_come_first_and_other_matches_are_candidates() {
    let h = home();
    let extra = tempfile::tempdir().expect("tempdir");
    let in_home = h.path().join("models/micro.gguf");
    let in_lms = h.path().join(".lmstudio/models/p/r/micro.gguf");
    let in_dir = extra.path().join("z/micro.gguf");
    for f in [&in_home, &in_lms, &in_dir] {
        model("micro-dense", f, 1);
    }
    let mut c = cfg(h.path());
    c.models_dirs.push(extra.path().to_path_buf());
    for query in ["micro-dense", "micro"] {
        let Resolved::Local { model, candidates } = resolve(query, &c).expect(query) else {
            panic!("expected a local model")
        };
        assert_eq!(model.path, in_dir, "{query}");
        assert_eq!(model.source_label, "--models-dir");
        assert_eq!(candidates, [in_home.clone(), in_lms.clone()], "{query}");
    }
}

#[test]
fn a_known_alias_without_a_local_file_gives_its_shape_and_where_it_looked() {
    let h = home();
    model("micro-dense", &h.path().join("models/m.gguf"), 1);
    let Resolved::KnownShapeOnly {
        alias,
        preset,
        searched,
    } = resolve("397b", &cfg(h.path())).expect("resolves")
    else {
        panic!("expected the known shape")
    };
    assert_eq!(alias, "397b");
    assert_eq!(preset.name, "qwen3.5-397b-a17b");
    let labels: Vec<&str> = searched.iter().map(|s| s.label).collect();
    assert_eq!(
        labels,
        [
            "~/models",
            "llama.cpp cache",
            "Hugging Face cache",
            "LM Studio",
            "LM Studio",
            "Ollama"
        ]
    );
    assert!(searched[0].exists && !searched[1].exists);
    // The what-if model: the shape synth writes, built in memory.
    let meta = whatif::preset_meta(preset).expect("what-if meta");
    assert_eq!(meta.arch, "qwen35moe");
    assert_eq!(meta.n_layer_offloadable, 61);
    assert_eq!(meta.shards.len(), 4);
    let gib = meta.file_bytes as f64 / (1u64 << 30) as f64;
    assert!((gib - 107.37).abs() < 0.1, "{gib} GiB");
}

#[test]
fn the_what_if_model_equals_the_synthetic_file() {
    let h = home();
    let preset = find_alias("tiny-moe")
        .and_then(|a| a.preset())
        .expect("preset");
    let files = model("tiny-moe", &h.path().join("t.gguf"), 0);
    let on_disk = strix_run::model::ModelMeta::open(&files[0]).expect("open");
    let in_memory = whatif::preset_meta(preset).expect("what-if");
    assert_eq!(in_memory.file_bytes, on_disk.file_bytes);
    assert_eq!(in_memory.tensor_bytes, on_disk.tensor_bytes);
    assert_eq!(in_memory.blocks, on_disk.blocks);
    assert_eq!(in_memory.n_vocab, on_disk.n_vocab);
}

#[test]
fn an_alias_without_a_known_shape_says_so() {
    let h = home();
    let err = resolve("gemma3-270m", &cfg(h.path())).expect_err("no local gemma");
    let msg = err.to_string();
    assert!(
        matches!(err, DiscoveryError::AliasWithoutShape { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("no built-in shape") && msg.contains("looked in"),
        "{msg}"
    );
    assert!(
        msg.contains(&h.path().join("models").display().to_string()),
        "{msg}"
    );
}

#[test]
fn an_unknown_fragment_lists_the_roots_and_the_aliases() {
    let h = home();
    model("micro-dense", &h.path().join("models/m.gguf"), 1);
    let err = resolve("llama-4-maverick", &cfg(h.path())).expect_err("nothing matches");
    let msg = err.to_string();
    assert!(matches!(err, DiscoveryError::NotFound { .. }), "{msg}");
    for needle in [
        "llama-4-maverick",
        "looked in",
        "~/models",
        "Ollama",
        "1 GGUF files",
        "does not exist",
        "8b",
        "397b",
        "gemma3-270m",
    ] {
        assert!(msg.contains(needle), "missing {needle:?} in {msg}");
    }
    assert!(
        msg.contains(&h.path().join(".ollama/models").display().to_string()),
        "{msg}"
    );
}

#[test]
fn a_path_that_does_not_exist_is_named_in_the_error() {
    let h = home();
    let missing = h.path().join("models/not-here.gguf");
    let err = resolve(missing.to_str().expect("utf-8"), &cfg(h.path())).expect_err("missing");
    assert!(matches!(err, DiscoveryError::PathNotFound { .. }), "{err}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    // ~ expands to the configured home.
    let err = resolve("~/models/not-here.gguf", &cfg(h.path())).expect_err("missing");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    // A folder is not a model file.
    fs::create_dir_all(h.path().join("models")).expect("mkdir");
    let err = resolve(
        &format!("{}/", h.path().join("models").display()),
        &cfg(h.path()),
    )
    .expect_err("folder");
    assert!(matches!(err, DiscoveryError::NotAFile { .. }), "{err}");
}

#[test]
fn roots_follow_the_environment_in_priority_order() {
    let vars = |name: &str| -> Option<OsString> {
        match name {
            "HOME" => Some("/home/u".into()),
            "STRIX_MODELS" => Some("/srv/models".into()),
            "HF_HOME" => Some("/data/hf".into()),
            "XDG_CACHE_HOME" => Some("/xdg".into()),
            "OLLAMA_MODELS" => Some("/var/ollama".into()),
            "LLAMA_CACHE" => Some("".into()), // empty: unset
            _ => None,
        }
    };
    let c = DiscoveryConfig::from_vars(vec!["/a".into(), "/srv/models".into()], vars);
    let roots: Vec<(&str, String, RootKind)> = c
        .roots()
        .into_iter()
        .map(|r| (r.label, r.path.display().to_string(), r.kind))
        .collect();
    assert_eq!(
        roots,
        [
            ("--models-dir", "/a".to_string(), RootKind::Folder),
            ("--models-dir", "/srv/models".to_string(), RootKind::Folder),
            ("~/models", "/home/u/models".to_string(), RootKind::Folder),
            (
                "llama.cpp cache",
                "/xdg/llama.cpp".to_string(),
                RootKind::Folder
            ),
            (
                "Hugging Face cache",
                "/data/hf/hub".to_string(),
                RootKind::HuggingFace
            ),
            (
                "LM Studio",
                "/home/u/.lmstudio/models".to_string(),
                RootKind::Folder
            ),
            (
                "LM Studio",
                "/home/u/.cache/lm-studio/models".to_string(),
                RootKind::Folder
            ),
            ("Ollama", "/var/ollama".to_string(), RootKind::Ollama),
        ],
        "$STRIX_MODELS equal to a --models-dir is searched once"
    );
    let no_home = DiscoveryConfig::from_vars(Vec::new(), |_| None);
    assert!(no_home.roots().is_empty());
    let err = discover(&no_home);
    assert!(err.models.is_empty() && err.searched.is_empty());
}
