//! llama.cpp's `common_sampler` (`common/sampling.h`), set up as llama-server sets it up:
//! the sampler chain of [`SamplingOptions`] plus a grammar (from a chat template, a JSON
//! schema or the caller), lazily applied from its triggers on, with the generation
//! prompt fed to it first. Goes through the C++ shim (`shim/strix_shim.h`).

use super::chat::{err_text, GrammarKind, GrammarTrigger, ERR_CAP};
use super::context::Context;
use super::ffi;
use super::model::Model;
use super::session::{SamplingError, SamplingOptions};
use llama_cpp_sys_2 as sys;
use serde::Serialize;
use std::ffi::{c_char, CString};
use std::ptr::NonNull;

/// What the sampler does: the sampling settings and the grammar with what goes with it
/// (for a chat, copy those from [`super::chat::ChatParams`]: [`SamplerSpec::for_chat`]).
#[derive(Debug, Clone, Default)]
pub struct SamplerSpec {
    /// Temperature, top-k/p, min-p, seed, repeat penalty; `greedy` means temperature 0
    /// (llama.cpp then keeps the most likely token).
    pub sampling: SamplingOptions,
    /// A GBNF grammar ("" for none).
    pub grammar: String,
    /// Where the grammar comes from (whether the generation prompt is fed to it).
    pub grammar_kind: GrammarKind,
    /// The grammar applies only from a trigger on.
    pub grammar_lazy: bool,
    /// The lazy grammar's triggers.
    pub grammar_triggers: Vec<GrammarTrigger>,
    /// Texts of tokens to keep as tokens (and render as text).
    pub preserved_tokens: Vec<String>,
    /// The text that opened the assistant's turn at the end of the prompt.
    pub generation_prompt: String,
}

impl SamplerSpec {
    /// `sampling` with the grammar, triggers, preserved tokens and generation prompt of
    /// an applied chat template (the extra stop strings are the caller's to watch).
    pub fn for_chat(sampling: SamplingOptions, params: &super::chat::ChatParams) -> Self {
        SamplerSpec {
            sampling,
            grammar: params.grammar.clone(),
            grammar_kind: params.grammar_kind,
            grammar_lazy: params.grammar_lazy,
            grammar_triggers: params.grammar_triggers.clone(),
            preserved_tokens: params.preserved_tokens.clone(),
            generation_prompt: params.generation_prompt.clone(),
        }
    }
}

/// Why a sampler could not be made or could not sample.
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    /// A sampling value is impossible.
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    /// llama.cpp refused the sampler (a grammar that does not parse, a lazy grammar
    /// without triggers, a trigger word that is not a preserved token, ...).
    #[error("llama.cpp could not create the sampler: {0}")]
    Init(String),
    /// Sampling failed (no logits at that batch index, a context of another model, a
    /// grammar error).
    #[error("sampling failed: {0}")]
    Sample(String),
    /// Tokens given to the sampler are not in the vocabulary.
    #[error("the sampler refused the tokens: {0}")]
    Accept(String),
}

#[derive(Serialize)]
struct Params<'a> {
    temperature: f32,
    top_k: i32,
    top_p: f32,
    min_p: f32,
    seed: u32,
    repeat_penalty: f32,
    repeat_last_n: i32,
    grammar: &'a str,
    grammar_type: GrammarKind,
    grammar_lazy: bool,
    grammar_triggers: &'a [GrammarTrigger],
    preserved_tokens: &'a [String],
    generation_prompt: &'a str,
}

/// llama.cpp's `common_sampler` with the ids of its preserved tokens, freed on drop.
///
/// It refers to the vocabulary of the model it was made for: drop it before that model
/// (sampling with a context of another model is refused).
pub struct CommonSampler {
    ptr: NonNull<ffi::strix_sampler>,
    /// What `sample` returns when llama.cpp fails: the model's end of generation.
    end_token: i32,
}

// SAFETY: the sampler is owned C++ data, used by one thread at a time (&mut self).
unsafe impl Send for CommonSampler {}

impl Drop for CommonSampler {
    fn drop(&mut self) {
        // SAFETY: from strix_sampler_init, freed once.
        unsafe { ffi::strix_sampler_free(self.ptr.as_ptr()) };
    }
}

impl std::fmt::Debug for CommonSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommonSampler").finish_non_exhaustive()
    }
}

impl CommonSampler {
    /// A sampler for `model` as llama-server builds one (`common_sampler_init`). A
    /// preserved token that is one token of the vocabulary is kept by id (others are
    /// dropped); a trigger word that is one token becomes a token trigger (and must be a
    /// preserved token); `repeat_last_n` -1 means the model's training context.
    pub fn new(model: &Model, spec: &SamplerSpec) -> Result<Self, SamplerError> {
        let s = &spec.sampling;
        s.validate()?;
        let params = Params {
            temperature: if s.greedy { 0.0 } else { s.temperature },
            top_k: s.top_k,
            top_p: s.top_p,
            min_p: s.min_p,
            seed: s.seed,
            repeat_penalty: s.repeat_penalty,
            repeat_last_n: s.repeat_last_n,
            grammar: &spec.grammar,
            grammar_type: spec.grammar_kind,
            grammar_lazy: spec.grammar_lazy,
            grammar_triggers: &spec.grammar_triggers,
            preserved_tokens: &spec.preserved_tokens,
            generation_prompt: &spec.generation_prompt,
        };
        let text = serde_json::to_string(&params).map_err(|e| SamplerError::Init(e.to_string()))?;
        // serde_json escapes NUL, so the JSON has none.
        let json = CString::new(text).map_err(|_| SamplerError::Init("NUL in the JSON".into()))?;
        let mut err: Vec<c_char> = vec![0; ERR_CAP];
        // SAFETY: live model; the JSON outlives the call; err valid for its length; the
        // shim catches C++ exceptions.
        let raw = unsafe {
            ffi::strix_sampler_init(
                model.as_ptr().cast(),
                json.as_ptr(),
                err.as_mut_ptr(),
                err.len(),
            )
        };
        let ptr = NonNull::new(raw).ok_or_else(|| SamplerError::Init(err_text(&err)))?;
        let vocab = model.vocab();
        // SAFETY: live vocab.
        let end_token = unsafe {
            let eos = sys::llama_vocab_eos(vocab);
            if eos >= 0 {
                eos
            } else {
                sys::llama_vocab_eot(vocab)
            }
        };
        Ok(CommonSampler {
            ptr,
            end_token: end_token.max(0),
        })
    }

    /// Samples at batch index `idx` of the last decode of `context` (-1: its last
    /// output), and accepts it (`common_sampler_sample` + `common_sampler_accept(..,
    /// true)`: the grammar advances).
    ///
    /// When llama.cpp fails (no logits at `idx`, a context of another model, a grammar
    /// error) the error is logged and the model's end-of-generation token comes back, so
    /// a generation loop stops; [`CommonSampler::try_sample`] returns the error instead.
    pub fn sample(&mut self, context: &Context, idx: i32) -> i32 {
        match self.try_sample(context, idx) {
            Ok(token) => token,
            Err(e) => {
                tracing::error!("{e}; ending the generation");
                self.end_token
            }
        }
    }

    /// [`CommonSampler::sample`], with llama.cpp's error as an error.
    pub fn try_sample(&mut self, context: &Context, idx: i32) -> Result<i32, SamplerError> {
        let mut err: Vec<c_char> = vec![0; ERR_CAP];
        // SAFETY: live sampler and context (the shim checks the context's model and that
        // logits exist at idx); err valid for its length.
        let token = unsafe {
            ffi::strix_sampler_sample(
                self.ptr.as_ptr(),
                context.as_ptr().cast(),
                idx,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if token < 0 {
            return Err(SamplerError::Sample(err_text(&err)));
        }
        Ok(token)
    }

    /// Feeds tokens that were not sampled (the prompt) to the sampler's history, for the
    /// repeat penalty, as llama-server does before generating
    /// (`common_sampler_accept(.., false)`: the grammar does not see them).
    pub fn accept_prompt(&mut self, tokens: &[i32]) -> Result<(), SamplerError> {
        let mut err: Vec<c_char> = vec![0; ERR_CAP];
        // SAFETY: live sampler; tokens and err valid for their lengths.
        let rc = unsafe {
            ffi::strix_sampler_accept(
                self.ptr.as_ptr(),
                tokens.as_ptr(),
                tokens.len(),
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc == ffi::STRIX_OK as i32 {
            Ok(())
        } else {
            Err(SamplerError::Accept(err_text(&err)))
        }
    }

    /// Whether `token` is one of the preserved tokens: render it as text (special or
    /// not) for the reply parser, as llama-server does.
    pub fn is_preserved(&self, token: i32) -> bool {
        // SAFETY: live sampler; a lookup.
        unsafe { ffi::strix_sampler_is_preserved(self.ptr.as_ptr(), token) != 0 }
    }
}
