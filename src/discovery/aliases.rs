//! Short names for models (`8b`, `397b`, `gemma3-270m`, and every synthetic preset's
//! name) and how a GGUF file's metadata is matched against them.
//!
//! Matching reads the header, not the file name: `general.architecture` must be one of
//! the alias's architectures; the total size in `general.size_label` (as
//! convert_hf_to_gguf.py writes it: `8B`, `235B-A22B`, `270M`) must equal the alias's
//! or lie within [`SIZE_TOLERANCE`] of it (the converter rounds the parameter count to
//! `8.2B` when the repository name gives no size); without a label the parameter count
//! is compared instead; and `general.basename`, when present, must name the family.

use crate::model::presets::{presets, Preset};
use crate::model::ModelMeta;
use serde::Serialize;

/// How far a size may be from the alias's and still match (relative).
pub const SIZE_TOLERANCE: f64 = 0.06;

/// A short name for a model and the metadata that identifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Alias {
    /// What the user types (case-insensitive).
    pub name: &'static str,
    /// The synthetic preset with this model's shape, for the what-if plan; `None` when
    /// strix-run does not know the shape.
    pub preset: Option<&'static str>,
    /// Accepted `general.architecture` values.
    pub arch: &'static [&'static str],
    /// `general.size_label` as the converter writes it.
    pub size_label: &'static str,
    /// Family names, one of which `general.basename` must contain (compared without
    /// case and punctuation: `Qwen3.5` = `qwen35`, `gemma-3` = `Gemma 3` = `gemma3`).
    pub family: &'static [&'static str],
}

/// The alias table. Preset names (`qwen3-8b`, `micro-moe`, ...) are aliases too
/// ([`find_alias`]).
pub const ALIASES: &[Alias] = &[
    Alias {
        name: "8b",
        preset: Some("qwen3-8b"),
        arch: &["qwen3"],
        size_label: "8B",
        family: &["qwen3"],
    },
    Alias {
        name: "32b",
        preset: Some("qwen3-32b"),
        arch: &["qwen3"],
        size_label: "32B",
        family: &["qwen3"],
    },
    Alias {
        name: "235b",
        preset: Some("qwen3-235b-a22b"),
        arch: &["qwen3moe"],
        size_label: "235B-A22B",
        family: &["qwen3"],
    },
    Alias {
        name: "397b",
        preset: Some("qwen3.5-397b-a17b"),
        arch: &["qwen35moe"],
        size_label: "397B-A17B",
        family: &["qwen35"],
    },
    Alias {
        name: "30b",
        preset: Some("qwen3-30b-a3b"),
        arch: &["qwen3moe"],
        size_label: "30B-A3B",
        family: &["qwen3"],
    },
    Alias {
        name: "gemma3-270m",
        preset: None,
        arch: &["gemma3"],
        size_label: "270M",
        family: &["gemma3"],
    },
    Alias {
        name: "gemma3-1b",
        preset: None,
        arch: &["gemma3"],
        size_label: "1B",
        family: &["gemma3"],
    },
    Alias {
        name: "gemma3-4b",
        preset: None,
        arch: &["gemma3"],
        size_label: "4B",
        family: &["gemma3"],
    },
    Alias {
        name: "gemma3-12b",
        preset: None,
        arch: &["gemma3"],
        size_label: "12B",
        family: &["gemma3"],
    },
    Alias {
        name: "gemma3-27b",
        preset: None,
        arch: &["gemma3"],
        size_label: "27B",
        family: &["gemma3"],
    },
];

/// How well a file matches an alias; lower sorts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchQuality {
    /// Architecture, exact size label and family all agree.
    Exact,
    /// The size is close (a rounded label, or the parameter count), or the file does
    /// not name its family.
    Near,
}

/// The alias called `query` (trimmed, case-insensitive): the table first, then the
/// synthetic presets by name or alias.
pub fn find_alias(query: &str) -> Option<Alias> {
    let q = query.trim();
    if let Some(a) = ALIASES.iter().find(|a| a.name.eq_ignore_ascii_case(q)) {
        return Some(*a);
    }
    presets()
        .iter()
        .find(|p| p.names().any(|n| n.eq_ignore_ascii_case(q)))
        .map(preset_alias)
}

/// A preset as an alias: its own architecture, size label and basename.
fn preset_alias(p: &'static Preset) -> Alias {
    Alias {
        name: p.name,
        preset: Some(p.name),
        arch: std::slice::from_ref(&p.arch),
        size_label: p.size_label,
        family: std::slice::from_ref(&p.basename),
    }
}

/// Every name [`find_alias`] accepts, table first, for messages.
pub fn alias_names() -> Vec<&'static str> {
    ALIASES
        .iter()
        .map(|a| a.name)
        .chain(presets().iter().map(|p| p.name))
        .collect()
}

impl Alias {
    /// The preset with this alias's shape, when strix-run knows it.
    pub fn preset(&self) -> Option<&'static Preset> {
        let name = self.preset?;
        presets().iter().find(|p| p.name == name)
    }

    /// Whether `meta` is this model, and how surely.
    pub fn matches(&self, meta: &ModelMeta) -> Option<MatchQuality> {
        if !self.arch.iter().any(|a| a.eq_ignore_ascii_case(&meta.arch)) {
            return None;
        }
        let size = match &meta.size_label {
            Some(label) if label.trim().eq_ignore_ascii_case(self.size_label) => {
                MatchQuality::Exact
            }
            Some(label) => {
                close(parse_size(label)?, parse_size(self.size_label)?).then_some(())?;
                MatchQuality::Near
            }
            None => {
                close(meta.params as f64, parse_size(self.size_label)?).then_some(())?;
                MatchQuality::Near
            }
        };
        let family = match &meta.basename {
            Some(base) => {
                let base = normalize(base);
                if !self.family.iter().any(|f| base.contains(&normalize(f))) {
                    return None;
                }
                MatchQuality::Exact
            }
            None => MatchQuality::Near,
        };
        Some(size.max(family))
    }
}

fn close(a: f64, b: f64) -> bool {
    b > 0.0 && ((a - b) / b).abs() <= SIZE_TOLERANCE
}

/// The total size of a label (`8B`, `8.2B`, `235B-A22B`, `270M`) in parameters.
pub(crate) fn parse_size(label: &str) -> Option<f64> {
    let total = label.trim().split('-').next()?.trim();
    let unit = total.chars().last()?;
    let scale = match unit.to_ascii_uppercase() {
        'K' => 1e3,
        'M' => 1e6,
        'B' => 1e9,
        'T' => 1e12,
        _ => return None,
    };
    let number: f64 = total[..total.len() - unit.len_utf8()].parse().ok()?;
    (number.is_finite() && number > 0.0).then_some(number * scale)
}

/// Lowercase letters and digits only: `Qwen3.5` → `qwen35`, `gemma-3` → `gemma3`.
pub(crate) fn normalize(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("8B"), Some(8e9));
        assert_eq!(parse_size("235B-A22B"), Some(235e9));
        assert_eq!(parse_size("270M"), Some(270e6));
        assert!(parse_size("8.2B").is_some_and(|n| (n - 8.2e9).abs() < 1.0));
        assert!(close(8.2e9, 8e9) && !close(9e9, 8e9));
        assert_eq!(parse_size("B"), None);
        assert_eq!(parse_size("big"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn aliases_and_presets_are_found() {
        assert_eq!(find_alias(" 8B ").map(|a| a.preset), Some(Some("qwen3-8b")));
        assert_eq!(
            find_alias("qwen3:235b").map(|a| a.name),
            Some("qwen3-235b-a22b")
        );
        assert_eq!(find_alias("gemma3-270m").and_then(|a| a.preset()), None);
        assert!(find_alias("nonsense").is_none());
        for a in ALIASES {
            if let Some(p) = a.preset {
                let preset = a.preset().expect("alias preset exists");
                assert_eq!(preset.name, p);
                assert!(a.arch.contains(&preset.arch), "{}", a.name);
                assert_eq!(a.size_label, preset.size_label, "{}", a.name);
            }
        }
    }

    #[test]
    fn matching_reads_arch_size_and_family() {
        let alias = find_alias("8b").expect("alias");
        let preset = alias.preset().expect("preset");
        let meta = crate::discovery::whatif::preset_meta(preset).expect("meta");
        assert_eq!(alias.matches(&meta), Some(MatchQuality::Exact));
        let mut m = meta.clone();
        m.size_label = Some("8.2B".into());
        assert_eq!(alias.matches(&m), Some(MatchQuality::Near));
        m.size_label = None; // falls back to the parameter count (8.19 B)
        assert_eq!(alias.matches(&m), Some(MatchQuality::Near));
        m.size_label = Some("14B".into());
        assert_eq!(alias.matches(&m), None);
        let mut m = meta.clone();
        m.basename = Some("Llama-3.1".into());
        assert_eq!(alias.matches(&m), None, "another family");
        m.basename = None;
        assert_eq!(alias.matches(&m), Some(MatchQuality::Near));
        let mut m = meta;
        m.arch = "llama".into();
        assert_eq!(alias.matches(&m), None, "another architecture");
    }

    #[test]
    fn normalize_ignores_punctuation() {
        assert_eq!(normalize("Qwen3.5"), "qwen35");
        assert_eq!(normalize("Gemma 3"), normalize("gemma-3"));
    }
}
