//! `--sweep` specifications: a grid of planner pins.
//!
//! Syntax: comma-separated items; `KEY=VALUE` starts a dimension, a bare `VALUE`
//! adds to the current one. A numeric value is a number `N`, or an inclusive range
//! `A..B` (step 1) or `A..B:STEP` (`0..61:4` is 0, 4, ..., 60). Examples:
//!
//! - `threads=1,2,4,8`
//! - `ngl=0..61:4,threads=4,8,12,16,ubatch=256,512`
//! - `fa=on,off,ctk=f16,q8_0`
//!
//! Keys: `ngl`, `ncmoe`, `threads`, `threads-batch`, `batch`, `ubatch`, `ctx` (numbers),
//! `fa`, `mmap` (`on`/`off`, also `1`/`0`), `ctk`, `ctv` (`f16`, `q8_0`, `q4_0`).
//! The grid is the cartesian product, the first dimension varying slowest.

use crate::planner::{KvType, Pinned, Request};
use serde::Serialize;
use std::fmt;

/// The syntax, for error messages and `--help`.
pub const SYNTAX: &str = "KEY=V[,V...][,KEY=V...] where V is N, A..B or A..B:STEP \
(inclusive) for ngl, ncmoe, threads, threads-batch, batch, ubatch, ctx; on/off for fa, mmap; \
f16/q8_0/q4_0 for ctk, ctv. Example: ngl=0..61:4,threads=4,8,12,16,ubatch=256,512";

/// Most grid points a sweep may have.
pub const MAX_POINTS: usize = 10_000;

/// A swept parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SweepKey {
    /// n_gpu_layers.
    Ngl,
    /// --n-cpu-moe.
    Ncmoe,
    /// Generation threads (prompt threads follow unless swept separately).
    Threads,
    /// Prompt threads.
    ThreadsBatch,
    /// Logical batch.
    Batch,
    /// Physical batch.
    Ubatch,
    /// Context length.
    Ctx,
    /// Flash attention.
    Fa,
    /// K cache type.
    Ctk,
    /// V cache type.
    Ctv,
    /// mmap loading.
    Mmap,
}

impl SweepKey {
    /// All keys.
    pub const ALL: [SweepKey; 11] = [
        SweepKey::Ngl,
        SweepKey::Ncmoe,
        SweepKey::Threads,
        SweepKey::ThreadsBatch,
        SweepKey::Batch,
        SweepKey::Ubatch,
        SweepKey::Ctx,
        SweepKey::Fa,
        SweepKey::Ctk,
        SweepKey::Ctv,
        SweepKey::Mmap,
    ];

    /// The name used in specs and output.
    pub fn name(self) -> &'static str {
        match self {
            SweepKey::Ngl => "ngl",
            SweepKey::Ncmoe => "ncmoe",
            SweepKey::Threads => "threads",
            SweepKey::ThreadsBatch => "threads-batch",
            SweepKey::Batch => "batch",
            SweepKey::Ubatch => "ubatch",
            SweepKey::Ctx => "ctx",
            SweepKey::Fa => "fa",
            SweepKey::Ctk => "ctk",
            SweepKey::Ctv => "ctv",
            SweepKey::Mmap => "mmap",
        }
    }

    fn parse(s: &str) -> Option<SweepKey> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        let alias = match s.as_str() {
            "n-gpu-layers" => "ngl",
            "n-cpu-moe" | "cmoe" => "ncmoe",
            "t" => "threads",
            "tb" => "threads-batch",
            "b" => "batch",
            "ub" => "ubatch",
            "c" | "n-ctx" => "ctx",
            "flash-attn" => "fa",
            "cache-type-k" => "ctk",
            "cache-type-v" => "ctv",
            other => other,
        };
        SweepKey::ALL.into_iter().find(|k| k.name() == alias)
    }

    fn kind(self) -> ValueKind {
        match self {
            SweepKey::Fa | SweepKey::Mmap => ValueKind::Switch,
            SweepKey::Ctk | SweepKey::Ctv => ValueKind::Kv,
            _ => ValueKind::Number,
        }
    }
}

impl fmt::Display for SweepKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy)]
enum ValueKind {
    Number,
    Switch,
    Kv,
}

/// One value of a swept parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SweepValue {
    /// A count.
    Number(u32),
    /// On or off.
    Switch(bool),
    /// A KV cache type.
    Kv(KvType),
}

impl SweepValue {
    /// The value on a numeric axis (switches are 0/1, KV types their bits per value).
    pub fn as_f64(self) -> f64 {
        match self {
            SweepValue::Number(n) => f64::from(n),
            SweepValue::Switch(b) => f64::from(u8::from(b)),
            SweepValue::Kv(KvType::F16) => 16.0,
            SweepValue::Kv(KvType::Q8_0) => 8.0,
            SweepValue::Kv(KvType::Q4_0) => 4.0,
        }
    }
}

impl fmt::Display for SweepValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SweepValue::Number(n) => write!(f, "{n}"),
            SweepValue::Switch(b) => f.write_str(if *b { "on" } else { "off" }),
            SweepValue::Kv(k) => write!(f, "{k}"),
        }
    }
}

/// A bad `--sweep`: which part, why, and the syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad --sweep part '{part}': {reason}\n  syntax: {SYNTAX}")]
pub struct SweepError {
    /// The offending item of the spec.
    pub part: String,
    /// What is wrong with it.
    pub reason: String,
}

fn err(part: &str, reason: impl Into<String>) -> SweepError {
    SweepError {
        part: part.to_string(),
        reason: reason.into(),
    }
}

/// One swept parameter and its values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dimension {
    /// The parameter.
    pub key: SweepKey,
    /// Its values, in the order given.
    pub values: Vec<SweepValue>,
}

/// A parsed `--sweep`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepSpec {
    /// The dimensions, slowest-varying first.
    pub dims: Vec<Dimension>,
}

/// One grid point: a value per dimension, in [`SweepSpec::dims`] order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridPoint(pub Vec<(SweepKey, SweepValue)>);

impl GridPoint {
    /// The value of `key`, if swept.
    pub fn get(&self, key: SweepKey) -> Option<SweepValue> {
        self.0.iter().find(|(k, _)| *k == key).map(|&(_, v)| v)
    }

    /// Pins this point's values in `request` (over whatever was pinned).
    pub fn apply(&self, request: &mut Request) {
        for &(key, value) in &self.0 {
            apply_one(&mut request.pinned, &mut request.n_ctx, key, value);
        }
    }
}

impl fmt::Display for GridPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&parts.join(" "))
    }
}

fn apply_one(p: &mut Pinned, n_ctx: &mut Option<u32>, key: SweepKey, value: SweepValue) {
    match (key, value) {
        (SweepKey::Ngl, SweepValue::Number(n)) => p.n_gpu_layers = Some(n),
        (SweepKey::Ncmoe, SweepValue::Number(n)) => p.n_cpu_moe = Some(n),
        (SweepKey::Threads, SweepValue::Number(n)) => p.threads = Some(n),
        (SweepKey::ThreadsBatch, SweepValue::Number(n)) => p.threads_batch = Some(n),
        (SweepKey::Batch, SweepValue::Number(n)) => p.n_batch = Some(n),
        (SweepKey::Ubatch, SweepValue::Number(n)) => p.n_ubatch = Some(n),
        (SweepKey::Ctx, SweepValue::Number(n)) => *n_ctx = Some(n),
        (SweepKey::Fa, SweepValue::Switch(b)) => p.flash_attn = Some(b),
        (SweepKey::Mmap, SweepValue::Switch(b)) => p.use_mmap = Some(b),
        (SweepKey::Ctk, SweepValue::Kv(k)) => p.type_k = Some(k),
        (SweepKey::Ctv, SweepValue::Kv(k)) => p.type_v = Some(k),
        // The parser only builds values of the key's kind.
        _ => {}
    }
}

fn parse_number(part: &str, s: &str) -> Result<u32, SweepError> {
    s.trim()
        .parse::<u32>()
        .map_err(|_| err(part, format!("'{}' is not a whole number", s.trim())))
}

fn parse_values(part: &str, key: SweepKey, v: &str) -> Result<Vec<SweepValue>, SweepError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(err(part, format!("no value for {key}")));
    }
    match key.kind() {
        ValueKind::Switch => match v.to_ascii_lowercase().as_str() {
            "on" | "1" | "true" | "yes" => Ok(vec![SweepValue::Switch(true)]),
            "off" | "0" | "false" | "no" => Ok(vec![SweepValue::Switch(false)]),
            _ => Err(err(part, format!("{key} takes on or off, not '{v}'"))),
        },
        ValueKind::Kv => v
            .parse::<KvType>()
            .map(|k| vec![SweepValue::Kv(k)])
            .map_err(|e| err(part, e)),
        ValueKind::Number => {
            let Some((a, rest)) = v.split_once("..") else {
                return Ok(vec![SweepValue::Number(parse_number(part, v)?)]);
            };
            let (b, step) = match rest.split_once(':') {
                Some((b, s)) => (b, parse_number(part, s)?),
                None => (rest, 1),
            };
            let (a, b) = (parse_number(part, a)?, parse_number(part, b)?);
            if step == 0 {
                return Err(err(part, "the step must be at least 1"));
            }
            if a > b {
                return Err(err(
                    part,
                    format!("the range {a}..{b} is empty (start > end)"),
                ));
            }
            let n = (b - a) / step + 1;
            if n as usize > MAX_POINTS {
                return Err(err(part, format!("{n} values is too many")));
            }
            Ok((0..n).map(|i| SweepValue::Number(a + i * step)).collect())
        }
    }
}

impl SweepSpec {
    /// Parses a spec (see the module docs).
    pub fn parse(spec: &str) -> Result<SweepSpec, SweepError> {
        let mut dims: Vec<Dimension> = Vec::new();
        if spec.trim().is_empty() {
            return Err(err(spec, "the sweep is empty"));
        }
        for part in spec.split(',') {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => {
                    let key = SweepKey::parse(k).ok_or_else(|| {
                        let keys: Vec<&str> = SweepKey::ALL.iter().map(|k| k.name()).collect();
                        err(
                            part,
                            format!("unknown key '{}' (keys: {})", k.trim(), keys.join(", ")),
                        )
                    })?;
                    if dims.iter().any(|d| d.key == key) {
                        return Err(err(part, format!("{key} is swept twice")));
                    }
                    dims.push(Dimension {
                        key,
                        values: Vec::new(),
                    });
                    (key, v)
                }
                None => match dims.last() {
                    Some(d) => (d.key, part),
                    None => return Err(err(part, "a sweep starts with KEY=")),
                },
            };
            let values = parse_values(part, key, value)?;
            let dim = dims.last_mut().expect("a dimension was pushed above");
            for v in values {
                if !dim.values.contains(&v) {
                    dim.values.push(v);
                }
            }
        }
        let spec = SweepSpec { dims };
        let n = spec.len();
        if n > MAX_POINTS {
            return Err(err(
                "(whole sweep)",
                format!("{n} grid points; at most {MAX_POINTS}"),
            ));
        }
        Ok(spec)
    }

    /// Number of grid points.
    pub fn len(&self) -> usize {
        self.dims
            .iter()
            .map(|d| d.values.len())
            .fold(1usize, |a, n| a.saturating_mul(n))
    }

    /// Whether the grid is empty (never, for a parsed spec).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The grid points, first dimension slowest.
    pub fn points(&self) -> Vec<GridPoint> {
        let mut out = vec![GridPoint(Vec::new())];
        for d in &self.dims {
            out = out
                .into_iter()
                .flat_map(|p| {
                    d.values.iter().map(move |&v| {
                        let mut q = p.0.clone();
                        q.push((d.key, v));
                        GridPoint(q)
                    })
                })
                .collect();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nums(d: &Dimension) -> Vec<u32> {
        d.values
            .iter()
            .map(|v| match v {
                SweepValue::Number(n) => *n,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_issue_example() {
        let s = SweepSpec::parse("ngl=0..61:4,threads=4,8,12,16,ubatch=256,512").unwrap();
        assert_eq!(s.dims.len(), 3);
        assert_eq!(s.dims[0].key, SweepKey::Ngl);
        assert_eq!(
            nums(&s.dims[0]),
            vec![0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60]
        );
        assert_eq!(nums(&s.dims[1]), vec![4, 8, 12, 16]);
        assert_eq!(nums(&s.dims[2]), vec![256, 512]);
        assert_eq!(s.len(), 16 * 4 * 2);
        let points = s.points();
        assert_eq!(points.len(), 128);
        assert_eq!(points[0].to_string(), "ngl=0 threads=4 ubatch=256");
        assert_eq!(points[1].to_string(), "ngl=0 threads=4 ubatch=512");
        assert_eq!(points[2].to_string(), "ngl=0 threads=8 ubatch=256");
        assert_eq!(points[127].to_string(), "ngl=60 threads=16 ubatch=512");
    }

    #[test]
    fn ranges_lists_and_switches() {
        let s = SweepSpec::parse("threads=1..3,fa=on,off,ctk=f16,q8_0,mmap=0").unwrap();
        assert_eq!(nums(&s.dims[0]), vec![1, 2, 3]);
        assert_eq!(
            s.dims[1].values,
            vec![SweepValue::Switch(true), SweepValue::Switch(false)]
        );
        assert_eq!(
            s.dims[2].values,
            vec![SweepValue::Kv(KvType::F16), SweepValue::Kv(KvType::Q8_0)]
        );
        assert_eq!(s.dims[3].values, vec![SweepValue::Switch(false)]);
        // a range and a list mixed, duplicates once
        let s = SweepSpec::parse("ub=64,128..256:64,128").unwrap();
        assert_eq!(s.dims[0].key, SweepKey::Ubatch);
        assert_eq!(nums(&s.dims[0]), vec![64, 128, 192, 256]);
    }

    #[test]
    fn points_pin_the_request() {
        let s = SweepSpec::parse("ngl=3,ncmoe=2,threads=5,threads-batch=6,batch=7,ubatch=8,ctx=900,fa=off,ctk=q8_0,ctv=q4_0,mmap=on").unwrap();
        let mut r = Request::default();
        s.points()[0].apply(&mut r);
        let p = &r.pinned;
        assert_eq!(p.n_gpu_layers, Some(3));
        assert_eq!(p.n_cpu_moe, Some(2));
        assert_eq!(p.threads, Some(5));
        assert_eq!(p.threads_batch, Some(6));
        assert_eq!(p.n_batch, Some(7));
        assert_eq!(p.n_ubatch, Some(8));
        assert_eq!(r.n_ctx, Some(900));
        assert_eq!(p.flash_attn, Some(false));
        assert_eq!(p.type_k, Some(KvType::Q8_0));
        assert_eq!(p.type_v, Some(KvType::Q4_0));
        assert_eq!(p.use_mmap, Some(true));
    }

    #[test]
    fn errors_name_the_part_and_show_the_syntax() {
        let cases = [
            ("threads=4,x", "'x'", "not a whole number"),
            ("4,8", "'4'", "starts with KEY="),
            ("gpu=1", "'gpu=1'", "unknown key 'gpu'"),
            ("ngl=5..1", "'ngl=5..1'", "empty"),
            ("ngl=0..8:0", "'ngl=0..8:0'", "step"),
            ("fa=maybe", "'fa=maybe'", "on or off"),
            ("ctk=q3", "'ctk=q3'", "unknown KV cache type"),
            ("threads=1,threads=2", "'threads=2'", "swept twice"),
            ("threads=", "'threads='", "no value"),
            ("", "''", "empty"),
            ("ngl=0..9000,threads=1..2", "(whole sweep)", "at most"),
        ];
        for (spec, part, why) in cases {
            let e = SweepSpec::parse(spec).unwrap_err().to_string();
            assert!(e.contains(part), "{spec}: {e}");
            assert!(e.contains(why), "{spec}: {e}");
            assert!(e.contains("syntax: KEY=V"), "{spec}: {e}");
        }
    }
}
