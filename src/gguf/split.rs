//! Split models: `name-00001-of-00004.gguf` … `name-00004-of-00004.gguf`, each shard
//! carrying `split.no` (0-based), `split.count` and, in every shard,
//! `split.tensors.count` (llama.cpp's `llama_split_path` / `LLM_KV_SPLIT_*` in
//! `src/llama-arch.cpp`, written by its `gguf-split` tool).

use super::error::GgufError;
use super::reader::{read_file, GgufHeader, ReadStats, TensorInfo};
use super::types::GgmlType;
use super::value::{GgufArray, GgufValue};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// `LLM_KV_SPLIT_NO`
pub const KEY_SPLIT_NO: &str = "split.no";
/// `LLM_KV_SPLIT_COUNT`
pub const KEY_SPLIT_COUNT: &str = "split.count";
/// `LLM_KV_SPLIT_TENSORS_COUNT`
pub const KEY_SPLIT_TENSORS_COUNT: &str = "split.tensors.count";

/// The fewest tensor roles whose types must contradict the reference shard's before a
/// later shard is refused as another quantisation (the rule is described at
/// [`GgufModel::from_shards`]).
const MIN_CONTRADICTING_ROLES: usize = 3;

/// How many contradicting roles per agreeing role refuse a later shard, as a ratio
/// (5 to 2; the rule is described at [`GgufModel::from_shards`]).
const CONTRADICTING_PER_AGREEING: (usize, usize) = (5, 2);

/// One file of a model.
#[derive(Debug, Clone)]
pub struct Shard {
    /// Where it is.
    pub path: PathBuf,
    /// Its header.
    pub header: GgufHeader,
    /// How much of it was read.
    pub stats: ReadStats,
}

/// A model's GGUF files: one, or all shards of a split model in order.
#[derive(Debug, Clone)]
pub struct GgufModel {
    /// The files, first shard first.
    pub shards: Vec<Shard>,
}

/// The parts of a shard file name: `prefix-NNNNN-of-MMMMM.gguf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitName {
    /// Everything before `-NNNNN-of-MMMMM.gguf`.
    pub prefix: String,
    /// 1-based shard number.
    pub no: u32,
    /// Number of shards.
    pub count: u32,
}

impl SplitName {
    /// Parses a file name (not a path) of the form llama.cpp's `llama_split_path` makes.
    pub fn parse(file_name: &str) -> Option<SplitName> {
        let stem = file_name.strip_suffix(".gguf")?;
        let (rest, count) = stem.rsplit_once("-of-")?;
        let (prefix, no) = rest.rsplit_once('-')?;
        let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(no) || !digits(count) || prefix.is_empty() {
            return None;
        }
        Some(SplitName {
            prefix: prefix.to_string(),
            no: no.parse().ok()?,
            count: count.parse().ok()?,
        })
    }

    /// The file name of shard `no` (1-based) of this set.
    pub fn file_name(&self, no: u32) -> String {
        format!("{}-{:05}-of-{:05}.gguf", self.prefix, no, self.count)
    }
}

fn split_value(header: &GgufHeader, key: &str, path: &Path) -> Result<Option<u64>, GgufError> {
    match header.get(key) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| GgufError::BadKey {
            path: path.to_path_buf(),
            key: key.to_string(),
            problem: format!("must be a non-negative integer, found {v}"),
        }),
    }
}

impl GgufModel {
    /// Opens a model from any of its files. For a split model every shard is found
    /// beside it, read, and checked to belong to the same set ([`GgufModel::from_shards`]).
    pub fn open(path: &Path) -> Result<GgufModel, GgufError> {
        let (header, stats) = read_file(path)?;
        let count = split_value(&header, KEY_SPLIT_COUNT, path)?.unwrap_or(1);
        if count <= 1 {
            return Ok(GgufModel {
                shards: vec![Shard {
                    path: path.to_path_buf(),
                    header,
                    stats,
                }],
            });
        }
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let name = SplitName::parse(file_name).ok_or_else(|| {
            mismatch(
                path,
                format!("split.count is {count} but the file name does not end in -NNNNN-of-{count:05}.gguf, so the other shards cannot be found"),
            )
        })?;
        if u64::from(name.count) != count {
            return Err(mismatch(
                path,
                format!(
                    "file name says {} shards but split.count is {count}",
                    name.count
                ),
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut opened = Some((header, stats));
        let mut shards = Vec::with_capacity(name.count as usize);
        for no in 1..=name.count {
            let shard_path = dir.join(name.file_name(no));
            let (header, stats) = if no == name.no {
                match opened.take() {
                    Some(h) => h,
                    None => read_file(&shard_path)?,
                }
            } else {
                if !shard_path.exists() {
                    return Err(GgufError::MissingShard {
                        path: path.to_path_buf(),
                        no,
                        count: name.count,
                        expected: shard_path,
                    });
                }
                read_file(&shard_path)?
            };
            shards.push(Shard {
                path: shard_path,
                header,
                stats,
            });
        }
        GgufModel::from_shards(shards)
    }

    /// A model from shards read elsewhere, first shard first, after checking that they
    /// form one set. One shard without `split.count` (or with 1) is a plain model.
    /// Every refusal is a [`GgufError::ShardMismatch`] naming the shard at fault:
    ///
    /// 1. every shard's `split.count` is the number of shards and its `split.no` its
    ///    position (0-based), as llama.cpp's loader requires;
    /// 2. every shard that carries `split.tensors.count` carries the same value, and
    ///    the shards together hold exactly that many tensors, no name twice;
    /// 3. all shards have one byte order, and a metadata key that a later shard shares
    ///    with the first (gguf-split writes the model's metadata only into the first,
    ///    other tools into every shard) has the same value in both;
    /// 4. the tensor types of every later shard fit those of the reference shard (the
    ///    first that holds tensors; gguf-split's `--no-tensor-first-split` leaves the
    ///    first empty), see below.
    ///
    /// A shard's size against the tensor data its header describes is checked when each
    /// file is read ([`read_file`]): a shorter shard is refused there as truncated.
    ///
    /// # The tensor-type rule
    ///
    /// Tensors are grouped by *role*: the name with its numeric parts replaced by `*`
    /// (`blk.7.ffn_down_exps.weight` → `blk.*.ffn_down_exps.weight`). For a role held by
    /// both shards (leaving out roles that are F32 on both sides, such as norms, which
    /// every quantisation keeps F32) the role *agrees* when some type occurs on both
    /// sides, and *contradicts* when each side holds a single type and the two differ.
    /// A later shard is refused when at least three roles contradict and they outnumber
    /// the agreeing roles by at least 5 to 2.
    ///
    /// Why not refuse one differing role: llama.cpp's own quantisations pick types per
    /// layer for some roles (`attn_v` and `ffn_down` take more bits in the first and
    /// last layers; IQ3_XS gives the gate and up projections of the middle layers
    /// IQ3_XXS, the others IQ3_S), and dynamic quantisations (Unsloth's UD-\*) choose
    /// the experts' types per layer. When a shard boundary falls on such a layer
    /// boundary, those roles are uniform on each side with different types although the
    /// set is consistent. Replaying llama.cpp's rules (every preset, every
    /// quantisation, 2 to 40 shards split by size or by tensor count) gives at most 4
    /// such roles with 2 agreeing, or 2 with none; the roles quantised alike in every
    /// layer (attention, most often) still agree. A shard of another quantisation
    /// changes those too: Q8_0 beside Q4_K_M agrees in no role, Q6_K beside Q4_K_M
    /// contradicts in 5 roles with 2 agreeing (`attn_v` and `ffn_down`, Q6_K in some
    /// layers of both).
    ///
    /// The limit: types alone cannot tell apart quantisations that give most roles the
    /// same type (Q4_K_S and Q4_K_M differ only in `attn_v` and `ffn_down`), nor find a
    /// shard that shares fewer than three quantised roles with the reference (a shard
    /// holding only the output layer), nor tell a dynamic quantisation that changes
    /// most roles exactly at a shard boundary from a mixed set (such a set would be
    /// refused). A shard of another quantisation split by size usually also breaks
    /// check 2 (its tensors start or end elsewhere); split by tensor count
    /// (gguf-split's default) only the types show it.
    pub fn from_shards(shards: Vec<Shard>) -> Result<GgufModel, GgufError> {
        let Some(first) = shards.first() else {
            return Err(GgufError::ShardMismatch {
                path: PathBuf::new(),
                problem: "no shards were given".into(),
            });
        };
        let count = split_value(&first.header, KEY_SPLIT_COUNT, &first.path)?.unwrap_or(1);
        if count <= 1 && shards.len() == 1 {
            return Ok(GgufModel { shards });
        }
        for (i, shard) in shards.iter().enumerate() {
            check_position(shard, i, shards.len())?;
        }
        tensor_count_key(&shards)?;
        check_metadata(&shards)?;
        check_types(&shards)?;
        check_names(&shards)?;
        Ok(GgufModel { shards })
    }

    /// A one-file model from a header read elsewhere (e.g. from memory).
    pub fn single(path: &Path, header: GgufHeader) -> GgufModel {
        GgufModel {
            shards: vec![Shard {
                path: path.to_path_buf(),
                header,
                stats: ReadStats { bytes_read: 0 },
            }],
        }
    }

    /// The first shard's header (it carries the model's metadata).
    pub fn header(&self) -> &GgufHeader {
        &self.shards[0].header
    }

    /// A metadata value from the first shard.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.header().get(key)
    }

    /// All tensors of all shards, in order.
    pub fn tensors(&self) -> impl Iterator<Item = &TensorInfo> {
        self.shards.iter().flat_map(|s| s.header.tensors.iter())
    }

    /// Sum of the shards' file sizes.
    pub fn file_bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.header.file_size).sum()
    }

    /// Bytes read from disk to open the model.
    pub fn bytes_read(&self) -> u64 {
        self.shards.iter().map(|s| s.stats.bytes_read).sum()
    }

    /// The paths of all shards.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.shards.iter().map(|s| s.path.clone()).collect()
    }
}

fn mismatch(path: &Path, problem: String) -> GgufError {
    GgufError::ShardMismatch {
        path: path.to_path_buf(),
        problem,
    }
}

/// A shard's file name, for messages that name a second shard besides the one at fault.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// `split.count` and `split.no` of the shard at 0-based `position` of `total`.
fn check_position(shard: &Shard, position: usize, total: usize) -> Result<(), GgufError> {
    let path = &shard.path;
    match split_value(&shard.header, KEY_SPLIT_COUNT, path)? {
        None => {
            return Err(mismatch(
                path,
                format!(
                    "it has no split.count, so it is no shard of a split model of {total} shards"
                ),
            ))
        }
        Some(c) if c != total as u64 => {
            return Err(mismatch(
                path,
                format!("split.count is {c}, but the set has {total} shards"),
            ))
        }
        Some(_) => {}
    }
    let no = split_value(&shard.header, KEY_SPLIT_NO, path)?;
    if no != Some(position as u64) {
        let found = no.map_or_else(|| "missing".to_string(), |n| n.to_string());
        return Err(mismatch(
            path,
            format!(
                "split.no is {found}, expected {position} for shard {} of {total}",
                position + 1
            ),
        ));
    }
    Ok(())
}

/// Every `split.tensors.count` present has one value; the value (if any).
fn tensor_count_key(shards: &[Shard]) -> Result<Option<(u64, &Path)>, GgufError> {
    let mut expected: Option<(u64, &Path)> = None;
    for shard in shards {
        let Some(n) = split_value(&shard.header, KEY_SPLIT_TENSORS_COUNT, &shard.path)? else {
            continue;
        };
        match expected {
            None => expected = Some((n, &shard.path)),
            Some((e, at)) if e != n => {
                return Err(mismatch(
                    &shard.path,
                    format!(
                        "split.tensors.count is {n} here but {e} in {}",
                        file_name(at)
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(expected)
}

/// Integer values of any width, for comparing values written with different types.
fn integer(v: &GgufValue) -> Option<i128> {
    Some(match v {
        GgufValue::U8(x) => i128::from(*x),
        GgufValue::I8(x) => i128::from(*x),
        GgufValue::U16(x) => i128::from(*x),
        GgufValue::I16(x) => i128::from(*x),
        GgufValue::U32(x) => i128::from(*x),
        GgufValue::I32(x) => i128::from(*x),
        GgufValue::U64(x) => i128::from(*x),
        GgufValue::I64(x) => i128::from(*x),
        _ => return None,
    })
}

/// Floats compare by bits, so that a NaN equals itself.
fn same_array(a: &GgufArray, b: &GgufArray) -> bool {
    match (a, b) {
        (GgufArray::F32(x), GgufArray::F32(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
        }
        (GgufArray::F64(x), GgufArray::F64(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
        }
        (GgufArray::Array(x), GgufArray::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_array(p, q))
        }
        _ => a == b,
    }
}

/// Whether two metadata values say the same thing: equal, or the same integer written
/// with different widths, or the same float (a NaN equals a NaN).
fn same_value(a: &GgufValue, b: &GgufValue) -> bool {
    match (a, b) {
        (GgufValue::Array(x), GgufValue::Array(y)) => same_array(x, y),
        (GgufValue::F32(_) | GgufValue::F64(_), GgufValue::F32(_) | GgufValue::F64(_)) => {
            match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
                _ => false,
            }
        }
        _ => a == b || matches!((integer(a), integer(b)), (Some(x), Some(y)) if x == y),
    }
}

/// A value for a message, cut to a readable length.
fn shown(v: &GgufValue) -> String {
    let s = v.to_string();
    if s.chars().count() <= 60 {
        return s;
    }
    let cut: String = s.chars().take(57).collect();
    format!("{cut}...")
}

/// One byte order, and every metadata key a later shard shares with the first has the
/// same value in both (`split.no` aside).
fn check_metadata(shards: &[Shard]) -> Result<(), GgufError> {
    let first = &shards[0];
    for shard in &shards[1..] {
        if shard.header.byte_order != first.header.byte_order {
            return Err(mismatch(
                &shard.path,
                format!(
                    "it is {:?}-endian but {} is {:?}-endian",
                    shard.header.byte_order,
                    file_name(&first.path),
                    first.header.byte_order
                )
                .to_lowercase(),
            ));
        }
        for (key, value) in &shard.header.metadata {
            if key == KEY_SPLIT_NO {
                continue;
            }
            if let Some(first_value) = first.header.get(key) {
                if !same_value(first_value, value) {
                    return Err(mismatch(
                        &shard.path,
                        format!(
                            "metadata key '{key}' is {} here but {} in the first shard {}",
                            shown(value),
                            shown(first_value),
                            file_name(&first.path)
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A tensor's role: its name with every numeric part replaced by `*`
/// (`blk.7.ffn_down_exps.weight` → `blk.*.ffn_down_exps.weight`).
fn tensor_role(name: &str) -> String {
    name.split('.')
        .map(|part| {
            if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                "*"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The types each role's tensors have in one shard.
fn role_types(header: &GgufHeader) -> BTreeMap<String, BTreeSet<GgmlType>> {
    let mut roles: BTreeMap<String, BTreeSet<GgmlType>> = BTreeMap::new();
    for t in &header.tensors {
        roles
            .entry(tensor_role(&t.name))
            .or_default()
            .insert(t.ggml_type);
    }
    roles
}

/// The types of every later shard fit the reference shard's (the rule is described at
/// [`GgufModel::from_shards`]).
fn check_types(shards: &[Shard]) -> Result<(), GgufError> {
    let Some(at) = shards.iter().position(|s| !s.header.tensors.is_empty()) else {
        return Ok(());
    };
    let reference = &shards[at];
    let reference_roles = role_types(&reference.header);
    let f32_only = BTreeSet::from([GgmlType::F32]);
    for shard in &shards[at + 1..] {
        let mut agree = 0usize;
        let mut contradict: Vec<(String, GgmlType, GgmlType)> = Vec::new();
        for (role, types) in role_types(&shard.header) {
            let Some(ref_types) = reference_roles.get(&role) else {
                continue;
            };
            if types == f32_only && *ref_types == f32_only {
                continue;
            }
            if !types.is_disjoint(ref_types) {
                agree += 1;
            } else if let (1, 1, Some(&here), Some(&there)) = (
                types.len(),
                ref_types.len(),
                types.first(),
                ref_types.first(),
            ) {
                contradict.push((role, here, there));
            }
        }
        let (per, agreeing) = CONTRADICTING_PER_AGREEING;
        if contradict.len() >= MIN_CONTRADICTING_ROLES && contradict.len() * agreeing >= agree * per
        {
            let shown: Vec<String> = contradict
                .iter()
                .take(3)
                .map(|(role, here, there)| format!("{role} is {here} here but {there} there"))
                .collect();
            let more = contradict.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(", and {more} more")
            } else {
                String::new()
            };
            let agreement = match agree {
                0 => "no kind of tensor agrees".to_string(),
                1 => "1 kind of tensor agrees".to_string(),
                n => format!("{n} kinds of tensor agree"),
            };
            return Err(mismatch(
                &shard.path,
                format!(
                    "its tensor types do not fit those of {} ({}{more}; {agreement}): one of \
                     the two comes from another quantisation of the model",
                    file_name(&reference.path),
                    shown.join(", "),
                ),
            ));
        }
    }
    Ok(())
}

/// No tensor name in two shards, and the shards hold the number of tensors
/// `split.tensors.count` announces.
fn check_names(shards: &[Shard]) -> Result<(), GgufError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, shard) in shards.iter().enumerate() {
        for t in &shard.header.tensors {
            if let Some(&earlier) = seen.get(t.name.as_str()) {
                return Err(mismatch(
                    &shard.path,
                    format!(
                        "tensor '{}' is also in {}",
                        t.name,
                        file_name(&shards[earlier].path)
                    ),
                ));
            }
            seen.insert(&t.name, i);
        }
    }
    if let Some((expected, at)) = tensor_count_key(shards)? {
        let found = seen.len() as u64;
        if found != expected {
            let per_shard: Vec<String> = shards
                .iter()
                .map(|s| s.header.tensors.len().to_string())
                .collect();
            return Err(mismatch(
                at,
                format!(
                    "split.tensors.count is {expected} but the shards hold {found} tensors ({})",
                    per_shard.join(" + ")
                ),
            ));
        }
    }
    Ok(())
}
