//! Where discovery looks: [`DiscoveryConfig`] and its search roots, in priority order.
//!
//! Path conventions, with their sources:
//! - llama.cpp's download cache (`-hf`, `-mu`): `$LLAMA_CACHE`, else
//!   `$XDG_CACHE_HOME/llama.cpp`, else `~/.cache/llama.cpp` on Linux
//!   (`fs_get_cache_directory` in llama.cpp's `common/common.cpp`).
//! - The Hugging Face hub cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
//!   `~/.cache/huggingface/hub`, holding `models--{org}--{name}/snapshots/{revision}/…`
//!   whose files are symlinks into `../../blobs/` (huggingface_hub docs, "Understand
//!   caching": <https://huggingface.co/docs/huggingface_hub/guides/manage-cache>, and
//!   "Environment variables":
//!   <https://huggingface.co/docs/huggingface_hub/package_reference/environment_variables>).
//! - LM Studio: `~/.lmstudio/models/{publisher}/{repo}/{file}.gguf` (LM Studio docs,
//!   "Import Models": <https://lmstudio.ai/docs/app/advanced/import-model>); versions
//!   before 0.3 used `~/.cache/lm-studio/models` with the same layout.
//! - Ollama: `$OLLAMA_MODELS`, else `~/.ollama/models`, holding
//!   `manifests/{registry}/{namespace}/{model}/{tag}` and `blobs/sha256-{hex}`
//!   (ollama `server/modelpath.go`, `GetManifestPath` / `GetBlobsPath`; see
//!   [`super::ollama`]).

use serde::Serialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// How deep below a root discovery walks by default. The Hugging Face layout needs 4
/// (`models--o--n/snapshots/rev/file`), LM Studio 3; the rest is room for user folders.
pub const DEFAULT_MAX_DEPTH: usize = 8;

/// How a root's files are laid out, which decides how they are found and named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootKind {
    /// A folder of `.gguf` files, walked recursively.
    Folder,
    /// A Hugging Face hub cache (`models--{org}--{name}/snapshots/{rev}/…`).
    HuggingFace,
    /// Ollama's store (`manifests/…` pointing into `blobs/`).
    Ollama,
}

/// One place discovery looks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchRoot {
    /// Where the path came from: `--models-dir`, `$STRIX_MODELS`, `~/models`,
    /// `llama.cpp cache`, `Hugging Face cache`, `LM Studio` or `Ollama`.
    pub label: &'static str,
    /// The folder.
    pub path: PathBuf,
    /// Its layout.
    pub kind: RootKind,
}

/// What discovery searches. Build it with [`DiscoveryConfig::from_env`] for the real
/// machine, or [`DiscoveryConfig::with_home`] for a fake home (tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// `--models-dir` folders (repeatable), searched first in the order given.
    pub models_dirs: Vec<PathBuf>,
    /// The home folder (`$HOME`); `None` leaves out every `~/…` root.
    pub home: Option<PathBuf>,
    /// `$STRIX_MODELS`.
    pub env_models: Option<PathBuf>,
    /// llama.cpp's cache when set explicitly (`$LLAMA_CACHE`, or `$XDG_CACHE_HOME/llama.cpp`).
    pub llama_cache: Option<PathBuf>,
    /// The Hugging Face hub cache when set explicitly (`$HF_HUB_CACHE`, `$HF_HOME/hub`).
    pub hf_cache: Option<PathBuf>,
    /// Ollama's model store when set explicitly (`$OLLAMA_MODELS`).
    pub ollama_models: Option<PathBuf>,
    /// How deep below each root to walk.
    pub max_depth: usize,
}

impl DiscoveryConfig {
    /// Only the home-based roots of `home` (and no environment variables).
    pub fn with_home(home: impl Into<PathBuf>) -> Self {
        DiscoveryConfig {
            models_dirs: Vec::new(),
            home: Some(home.into()),
            env_models: None,
            llama_cache: None,
            hf_cache: None,
            ollama_models: None,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    /// The real machine: `cli_dirs` (from `--models-dir`) and the environment
    /// (`HOME`, `STRIX_MODELS`, `LLAMA_CACHE`, `XDG_CACHE_HOME`, `HF_HUB_CACHE`,
    /// `HF_HOME`, `OLLAMA_MODELS`).
    pub fn from_env(cli_dirs: Vec<PathBuf>) -> Self {
        Self::from_vars(cli_dirs, |name| std::env::var_os(name))
    }

    /// Like [`DiscoveryConfig::from_env`] with the variables read through `var`.
    pub fn from_vars(cli_dirs: Vec<PathBuf>, var: impl Fn(&str) -> Option<OsString>) -> Self {
        let path = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let llama_cache =
            path("LLAMA_CACHE").or_else(|| path("XDG_CACHE_HOME").map(|c| c.join("llama.cpp")));
        let hf_cache = path("HF_HUB_CACHE").or_else(|| path("HF_HOME").map(|h| h.join("hub")));
        DiscoveryConfig {
            models_dirs: cli_dirs,
            home: path("HOME"),
            env_models: path("STRIX_MODELS"),
            llama_cache,
            hf_cache,
            ollama_models: path("OLLAMA_MODELS"),
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    /// Expands a leading `~/` (or a lone `~`) with the home folder.
    pub fn expand_home(&self, path: &str) -> PathBuf {
        match (&self.home, path.strip_prefix('~')) {
            (Some(home), Some("")) => home.clone(),
            (Some(home), Some(rest)) if rest.starts_with(['/', '\\']) => home.join(&rest[1..]),
            _ => PathBuf::from(path),
        }
    }

    /// The search roots in priority order: `--models-dir`, `$STRIX_MODELS`,
    /// `~/models`, llama.cpp's cache, the Hugging Face cache, LM Studio (new, then
    /// old location), Ollama. A path listed twice is searched once, under its first
    /// label.
    pub fn roots(&self) -> Vec<SearchRoot> {
        let mut roots: Vec<SearchRoot> = Vec::new();
        let mut add = |label: &'static str, path: PathBuf, kind: RootKind| {
            if !roots.iter().any(|r| same_path(&r.path, &path)) {
                roots.push(SearchRoot { label, path, kind });
            }
        };
        for dir in &self.models_dirs {
            add("--models-dir", dir.clone(), RootKind::Folder);
        }
        if let Some(dir) = &self.env_models {
            add("$STRIX_MODELS", dir.clone(), RootKind::Folder);
        }
        let home = self.home.as_deref();
        let from_home = |rel: &str| home.map(|h| h.join(rel));
        if let Some(dir) = from_home("models") {
            add("~/models", dir, RootKind::Folder);
        }
        if let Some(dir) = self
            .llama_cache
            .clone()
            .or_else(|| from_home(".cache/llama.cpp"))
        {
            add("llama.cpp cache", dir, RootKind::Folder);
        }
        if let Some(dir) = self
            .hf_cache
            .clone()
            .or_else(|| from_home(".cache/huggingface/hub"))
        {
            add("Hugging Face cache", dir, RootKind::HuggingFace);
        }
        for rel in [".lmstudio/models", ".cache/lm-studio/models"] {
            if let Some(dir) = from_home(rel) {
                add("LM Studio", dir, RootKind::Folder);
            }
        }
        if let Some(dir) = self
            .ollama_models
            .clone()
            .or_else(|| from_home(".ollama/models"))
        {
            add("Ollama", dir, RootKind::Ollama);
        }
        roots
    }
}

/// Whether two paths name the same folder (by their canonical form when both exist).
fn same_path(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
