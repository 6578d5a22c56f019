//! Display names of found files: where they came from, in the words of the tool that
//! downloaded them.

use super::config::{RootKind, SearchRoot};
use std::path::Path;

/// The name to list `file` under: for the Hugging Face cache `org/repo/file.gguf`
/// (from `models--{org}--{repo}/snapshots/{revision}/file.gguf`, the hub cache layout),
/// elsewhere the path below the root (`publisher/repo/file.gguf` in LM Studio).
pub(crate) fn display_name(root: &SearchRoot, file: &Path) -> String {
    let rel = file.strip_prefix(&root.path).unwrap_or(file);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if root.kind == RootKind::HuggingFace {
        if let [repo_dir, snapshots, _revision, rest @ ..] = parts.as_slice() {
            if let (Some(repo), "snapshots", false) = (
                repo_dir.strip_prefix("models--"),
                snapshots.as_str(),
                rest.is_empty(),
            ) {
                // Repository ids cannot contain "--", so the first one separates the
                // owner from the name (huggingface_hub `repo_folder_name`).
                let repo = repo.replacen("--", "/", 1);
                return format!("{repo}/{}", rest.join("/"));
            }
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn hugging_face_names_are_repo_and_file() {
        let root = SearchRoot {
            label: "Hugging Face cache",
            path: PathBuf::from("/h"),
            kind: RootKind::HuggingFace,
        };
        assert_eq!(
            display_name(
                &root,
                Path::new("/h/models--Qwen--Qwen3-8B-GGUF/snapshots/abc/Qwen3-8B-Q4_K_M.gguf")
            ),
            "Qwen/Qwen3-8B-GGUF/Qwen3-8B-Q4_K_M.gguf"
        );
        assert_eq!(
            display_name(&root, Path::new("/h/odd/x.gguf")),
            "odd/x.gguf"
        );
    }
}
