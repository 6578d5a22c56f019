//! The tokenizer of a synthetic model: a valid byte-level BPE vocabulary of the preset's
//! size, with its merges and special tokens.

use super::error::SynthError;
use crate::model::presets::Preset;

/// `llama_token_type` (include/llama.h).
const TOKEN_NORMAL: i32 = 1;
const TOKEN_CONTROL: i32 = 3;
const TOKEN_USER_DEFINED: i32 = 4;
const TOKEN_UNUSED: i32 = 5;

/// GPT-2's byte-to-unicode table (`bytes_to_unicode` of the GPT-2 encoder, which
/// byte-level BPE tokenizers and llama.cpp's `unicode_byte_to_utf8` share), in GPT-2's
/// vocabulary order: printable bytes first, then the rest mapped to U+0100 upward.
fn byte_symbols() -> Vec<String> {
    let printable = |b: u32| {
        (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    let mut out: Vec<String> = (0u32..256)
        .filter(|&b| printable(b))
        .filter_map(char::from_u32)
        .map(String::from)
        .collect();
    let mut n = 0;
    for b in 0u32..256 {
        if !printable(b) {
            if let Some(c) = char::from_u32(256 + n) {
                out.push(String::from(c));
            }
            n += 1;
        }
    }
    out
}

/// A valid byte-level BPE vocabulary: tokens, their types, merges, special token ids.
pub(super) struct Vocab {
    /// Token texts, by id.
    pub(super) tokens: Vec<String>,
    /// `llama_token_type` of each token.
    pub(super) types: Vec<i32>,
    /// BPE merges (`left right`), highest priority first.
    pub(super) merges: Vec<String>,
    /// Id of the beginning-of-sequence token.
    pub(super) bos: u32,
    /// Id of the end-of-sequence token.
    pub(super) eos: u32,
    /// Id of the padding token.
    pub(super) pad: u32,
}

/// The preset's vocabulary: byte tokens, merged tokens up to the special tokens' base id,
/// the special tokens, then unused padding tokens up to the vocabulary size.
pub(super) fn build_vocab(p: &Preset) -> Result<Vocab, SynthError> {
    let t = &p.tokenizer;
    let bad = |problem: String| SynthError::InvalidPreset {
        preset: p.name.to_string(),
        problem,
    };
    let n_normal = t.special_base as usize;
    let n_vocab = p.n_vocab as usize;
    if n_normal < 256 || n_normal + t.specials.len() > n_vocab {
        return Err(bad(format!(
            "{} ordinary + {} special tokens do not fit a vocabulary of {n_vocab} with 256 byte tokens",
            n_normal,
            t.specials.len()
        )));
    }
    let symbols = byte_symbols();
    let mut tokens = Vec::with_capacity(n_vocab);
    let mut merges = Vec::with_capacity(n_normal.saturating_sub(256));
    tokens.extend(symbols.iter().cloned());
    // Ordinary tokens: every pair of byte symbols, then symbol triples, each with the
    // merge that makes it, so every token is reachable and every merge yields a token.
    let mut level: Vec<String> = symbols.clone();
    'outer: while tokens.len() < n_normal {
        let mut next = Vec::new();
        for left in &level {
            for right in &symbols {
                if tokens.len() >= n_normal {
                    break 'outer;
                }
                let joined = format!("{left}{right}");
                merges.push(format!("{left} {right}"));
                tokens.push(joined.clone());
                next.push(joined);
            }
        }
        level = next;
    }
    let mut types = vec![TOKEN_NORMAL; tokens.len()];
    for s in t.specials {
        tokens.push((*s).to_string());
        types.push(if s.starts_with("<|") {
            TOKEN_CONTROL
        } else {
            TOKEN_USER_DEFINED
        });
    }
    while tokens.len() < n_vocab {
        tokens.push(format!("[PAD{}]", tokens.len()));
        types.push(TOKEN_UNUSED);
    }
    let id = |s: &str| {
        t.specials
            .iter()
            .position(|x| *x == s)
            .map(|i| t.special_base + i as u32)
            .ok_or_else(|| bad(format!("special token '{s}' is not among the specials")))
    };
    Ok(Vocab {
        bos: id(t.bos)?,
        eos: id(t.eos)?,
        pad: id(t.pad)?,
        tokens,
        types,
        merges,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_symbols_are_gpt2s() {
        let s = byte_symbols();
        assert_eq!(s.len(), 256);
        assert_eq!(s[0], "!");
        // the space byte (0x20) maps to 'Ġ' (U+0120)
        assert!(s.contains(&"Ġ".to_string()));
        let mut sorted = s.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
    }
}
