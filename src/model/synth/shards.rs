//! Shards: which tensors go into which file, and what each file is called (llama.cpp's
//! gguf-split layout and `llama_split_path` naming).

use super::error::SynthError;
use super::tensors::PlannedTensor;
use crate::gguf::SplitName;
use std::path::{Path, PathBuf};

/// Splits the plan into `shards` contiguous groups of about equal bytes, each non-empty
/// (what llama.cpp's gguf-split does with `--split-max-size`).
pub(super) fn split_plan(
    plan: Vec<PlannedTensor>,
    shards: u32,
) -> Result<Vec<Vec<PlannedTensor>>, SynthError> {
    let n = plan.len();
    let want = shards as usize;
    if want == 0 || want > n {
        return Err(SynthError::BadShards { shards, tensors: n });
    }
    let total: u64 = plan.iter().map(PlannedTensor::n_bytes).sum();
    let mut groups: Vec<Vec<PlannedTensor>> = Vec::with_capacity(want);
    let mut cur: Vec<PlannedTensor> = Vec::new();
    let mut acc: u64 = 0;
    for (i, t) in plan.into_iter().enumerate() {
        if !cur.is_empty() && groups.len() + 1 < want {
            let closed = groups.len() as u64;
            let must = n - i == want - groups.len() - 1;
            let full =
                u128::from(acc) * u128::from(shards) >= u128::from(total) * u128::from(closed + 1);
            if must || full {
                groups.push(std::mem::take(&mut cur));
            }
        }
        acc += t.n_bytes();
        cur.push(t);
    }
    groups.push(cur);
    Ok(groups)
}

/// The file names for `count` shards of `out`: `out` itself for one, else
/// `prefix-00001-of-0000N.gguf` beside it (a name that already is a shard name keeps its
/// prefix).
pub(super) fn shard_paths(out: &Path, count: u32) -> Result<Vec<PathBuf>, SynthError> {
    let file_name = out
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| SynthError::BadOutput {
            path: out.to_path_buf(),
            problem: "the output must be a file name (UTF-8), e.g. models/qwen3-8b.gguf".into(),
        })?;
    if count <= 1 {
        return Ok(vec![out.to_path_buf()]);
    }
    let prefix = match SplitName::parse(file_name) {
        Some(s) => s.prefix,
        None => file_name
            .strip_suffix(".gguf")
            .unwrap_or(file_name)
            .to_string(),
    };
    let name = SplitName {
        prefix,
        no: 1,
        count,
    };
    let dir = out.parent().unwrap_or(Path::new(""));
    Ok((1..=count).map(|no| dir.join(name.file_name(no))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgmlType;

    #[test]
    fn split_plan_balances_and_never_leaves_a_shard_empty() {
        let t = |i: usize, n: u64| PlannedTensor {
            name: format!("t{i}"),
            shape: vec![n],
            ggml_type: GgmlType::F32,
        };
        let plan: Vec<_> = (0..10).map(|i| t(i, 100)).collect();
        let groups = split_plan(plan, 4).expect("split");
        assert_eq!(groups.len(), 4);
        assert!(groups.iter().all(|g| !g.is_empty()));
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 10);
        // one huge tensor first still leaves a tensor for every later shard
        let mut plan: Vec<_> = (0..4).map(|i| t(i, 1)).collect();
        plan[0].shape = vec![1_000_000];
        let groups = split_plan(plan, 4).expect("split");
        assert_eq!(
            groups.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, 1, 1, 1]
        );
        assert!(split_plan(vec![t(0, 1)], 2).is_err());
        assert!(split_plan(vec![t(0, 1)], 0).is_err());
    }
}
