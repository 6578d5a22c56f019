//! Ollama's model store: manifests that point to content-addressed blobs.
//!
//! Layout (ollama `server/modelpath.go`: `GetManifestPath`, `GetBlobsPath`):
//! `{models}/manifests/{registry}/{namespace}/{model}/{tag}` is a JSON image manifest
//! (Docker's "Image Manifest V2, Schema 2" shape, ollama `server/manifest.go`):
//!
//! ```json
//! {"schemaVersion": 2,
//!  "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:…"},
//!  "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:abc…", "size": 5027784544},
//!             {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:…"}]}
//! ```
//!
//! The layer of media type `application/vnd.ollama.image.model` is the GGUF (a
//! vision model's projector is a separate `application/vnd.ollama.image.projector`
//! layer). Its digest `sha256:abc…` is stored as `{models}/blobs/sha256-abc…` (older
//! versions kept the colon: `sha256:abc…`). Ollama shows models of the default
//! registry `registry.ollama.ai` and namespace `library` as `model:tag`.

use super::walk::walk;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The media type of the GGUF layer (ollama `server/images.go`).
pub const MODEL_MEDIA_TYPE: &str = "application/vnd.ollama.image.model";
/// Ollama's default registry and namespace, left out of displayed names.
const DEFAULT_REGISTRY: &str = "registry.ollama.ai";
const DEFAULT_NAMESPACE: &str = "library";
/// Manifests are small; anything bigger is not one.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
}

/// A model in the Ollama store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OllamaModel {
    /// `model:tag` (or `namespace/model:tag`, `registry/namespace/model:tag`).
    pub name: String,
    /// The GGUF blob.
    pub blob: PathBuf,
}

/// What the Ollama store holds, and what could not be read.
#[derive(Debug, Default)]
pub(crate) struct OllamaScan {
    /// Models whose blob exists.
    pub models: Vec<OllamaModel>,
    /// Unreadable manifests, missing blobs.
    pub problems: Vec<String>,
    /// Manifest files looked at.
    pub manifests_seen: usize,
}

/// Reads every manifest below `{models}/manifests`.
pub(crate) fn scan(models: &Path, max_depth: usize) -> OllamaScan {
    let manifests = models.join("manifests");
    let mut out = OllamaScan::default();
    if !manifests.is_dir() {
        return out;
    }
    let walked = walk(&manifests, max_depth, |name| !name.starts_with('.'));
    out.problems = walked.problems;
    for file in walked.files {
        out.manifests_seen += 1;
        match read_manifest(models, &manifests, &file) {
            Ok(Some(model)) => out.models.push(model),
            Ok(None) => {}
            Err(problem) => out.problems.push(format!("{}: {problem}", file.display())),
        }
    }
    out
}

/// One manifest: `Ok(None)` when it has no model layer (e.g. an embedding-less
/// adapter), `Err` with a message when it cannot be used.
fn read_manifest(
    models: &Path,
    manifests: &Path,
    file: &Path,
) -> Result<Option<OllamaModel>, String> {
    let size = std::fs::metadata(file).map_err(|e| e.to_string())?.len();
    if size > MAX_MANIFEST_BYTES {
        return Err(format!("{size} bytes is too large for an Ollama manifest"));
    }
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read: {e}"))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| format!("not an Ollama manifest: {e}"))?;
    let Some(layer) = manifest
        .layers
        .iter()
        .find(|l| l.media_type == MODEL_MEDIA_TYPE)
    else {
        return Ok(None);
    };
    let blob = blob_path(models, &layer.digest)
        .ok_or_else(|| format!("model layer has an invalid digest '{}'", layer.digest))?;
    if !blob.is_file() {
        return Err(format!(
            "model blob {} is missing (an interrupted `ollama pull`?)",
            blob.display()
        ));
    }
    let rel = file.strip_prefix(manifests).unwrap_or(file);
    Ok(Some(OllamaModel {
        name: display_name(rel),
        blob,
    }))
}

/// `sha256:<64 hex>` → `{models}/blobs/sha256-<hex>` (or the older `sha256:<hex>` name
/// when only that exists). Anything but hex digits is refused, so a manifest cannot
/// point outside the blob folder.
pub(crate) fn blob_path(models: &Path, digest: &str) -> Option<PathBuf> {
    let (algo, hex) = digest.split_once(':')?;
    let valid = algo == "sha256" && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return None;
    }
    let blobs = models.join("blobs");
    let dashed = blobs.join(format!("sha256-{hex}"));
    let colon = blobs.join(format!("sha256:{hex}"));
    Some(if !dashed.exists() && colon.exists() {
        colon
    } else {
        dashed
    })
}

/// The name Ollama shows for a manifest at `registry/namespace/model/tag`.
fn display_name(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [registry, namespace, model, tag] => {
            if registry == DEFAULT_REGISTRY && namespace == DEFAULT_NAMESPACE {
                format!("{model}:{tag}")
            } else if registry == DEFAULT_REGISTRY {
                format!("{namespace}/{model}:{tag}")
            } else {
                format!("{registry}/{namespace}/{model}:{tag}")
            }
        }
        _ => parts.join("/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_ollama_list() {
        let n = |p: &str| display_name(Path::new(p));
        assert_eq!(n("registry.ollama.ai/library/qwen3/8b"), "qwen3:8b");
        assert_eq!(n("registry.ollama.ai/someone/m/latest"), "someone/m:latest");
        assert_eq!(
            n("hf.co/unsloth/Qwen3-8B-GGUF/Q4_K_M"),
            "hf.co/unsloth/Qwen3-8B-GGUF:Q4_K_M"
        );
    }

    #[test]
    fn digests_cannot_escape_the_blob_folder() {
        let m = Path::new("/m");
        assert_eq!(
            blob_path(m, &format!("sha256:{}", "a".repeat(64))),
            Some(PathBuf::from(format!("/m/blobs/sha256-{}", "a".repeat(64))))
        );
        assert_eq!(blob_path(m, "sha256:../../etc/passwd"), None);
        assert_eq!(blob_path(m, "md5:abc"), None);
        assert_eq!(blob_path(m, "nocolon"), None);
    }
}
