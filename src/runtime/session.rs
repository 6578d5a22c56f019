//! Text generation over a [`Loaded`] model and context.
//!
//! [`Session::generate`] tokenizes a prompt (BOS added, special tokens parsed, as
//! llama.cpp's tools do), decodes it in `n_batch` chunks, then samples and decodes one
//! token at a time, streaming text through a callback, until an end-of-generation token,
//! `max_tokens`, a stop string, a full context, or the callback says stop. Each call
//! starts from an empty KV cache (the whole prompt is evaluated again), so calls are
//! independent. [`Session::chat`] formats messages with the model's own chat template
//! (`llama_chat_apply_template`); for a model without one, llama.cpp's built-in template
//! for its architecture, else ChatML.

use super::context::Context;
use super::load::Loaded;
use super::model::Model;
use llama_cpp_sys_2 as sys;
use serde::Serialize;
use std::ffi::CString;
use std::ops::ControlFlow;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// How to pick each token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SamplingOptions {
    /// Temperature; 0 or less means greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    pub top_k: i32,
    /// Keep the smallest set with this much probability (1 = off).
    pub top_p: f32,
    /// Drop tokens below this fraction of the top token's probability (0 = off).
    pub min_p: f32,
    /// Random seed (`u32::MAX`: llama.cpp picks one).
    pub seed: u32,
    /// Penalty for repeated tokens (1 = off).
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at (0 = off, -1 = the context).
    pub repeat_last_n: i32,
    /// Always the most likely token (ignores the other settings but the penalty).
    pub greedy: bool,
}

impl Default for SamplingOptions {
    /// llama.cpp's defaults (`common_params_sampling`).
    fn default() -> Self {
        SamplingOptions {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            seed: u32::MAX,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            greedy: false,
        }
    }
}

/// A sampling value outside what it can mean.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} {value} is impossible: it must be {range}")]
pub struct SamplingError {
    /// The setting, as the command line names it (`temp`, `top-p`, ...).
    pub field: &'static str,
    /// The value given.
    pub value: String,
    /// The valid range, in words.
    pub range: &'static str,
}

impl SamplingOptions {
    /// Refuses values that mean nothing: a negative, infinite or NaN temperature, top-p
    /// or min-p outside 0..1, a negative top-k, a repeat penalty that is not a positive
    /// number (0 divides the logits by zero: llama.cpp then repeats one token forever).
    pub fn validate(&self) -> Result<(), SamplingError> {
        let bad = |field, value: String, range| {
            Err(SamplingError {
                field,
                value,
                range,
            })
        };
        let t = self.temperature;
        if !t.is_finite() || t < 0.0 {
            return bad("temp", t.to_string(), "a number of at least 0 (0: greedy)");
        }
        if self.top_k < 0 {
            return bad("top-k", self.top_k.to_string(), "at least 0 (0: off)");
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return bad("top-p", self.top_p.to_string(), "between 0 and 1 (1: off)");
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min-p", self.min_p.to_string(), "between 0 and 1 (0: off)");
        }
        let r = self.repeat_penalty;
        if !r.is_finite() || r <= 0.0 {
            return bad(
                "repeat-penalty",
                r.to_string(),
                "a number above 0 (1: off; above 1 penalises repeats)",
            );
        }
        if self.repeat_last_n < -1 {
            return bad(
                "repeat-last-n",
                self.repeat_last_n.to_string(),
                "-1 (the whole context), 0 (off) or a positive count",
            );
        }
        Ok(())
    }

    /// Greedy sampling, no penalty.
    pub fn greedy() -> Self {
        SamplingOptions {
            greedy: true,
            ..SamplingOptions::default()
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerateOptions {
    /// At most this many tokens.
    pub max_tokens: u32,
    /// Sampling.
    pub sampling: SamplingOptions,
    /// Stop when the output contains one of these (the stop string is not emitted).
    pub stop: Vec<String>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            sampling: SamplingOptions::default(),
            stop: Vec::new(),
        }
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    EndOfGeneration,
    /// `max_tokens` reached.
    MaxTokens,
    /// The output contained this stop string.
    StopString(String),
    /// The callback returned `Break`.
    Cancelled,
    /// The context is full.
    ContextFull,
}

/// Numbers of one generation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerateStats {
    /// Prompt tokens evaluated.
    pub prompt_tokens: usize,
    /// Tokens sampled (the end-of-generation token not counted).
    pub generated_tokens: usize,
    /// Seconds evaluating the prompt.
    pub prompt_seconds: f64,
    /// Seconds sampling and evaluating the generated tokens.
    pub generation_seconds: f64,
    /// Prompt tokens per second.
    pub pp_tok_s: f64,
    /// Generated tokens per second.
    pub tg_tok_s: f64,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// The generated token ids.
    pub token_ids: Vec<i32>,
    /// The text passed to the callback, all of it.
    pub text: String,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Which template formatted a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateSource {
    /// The model's own (`tokenizer.chat_template`).
    Model,
    /// The model has none (or llama.cpp does not recognise it): llama.cpp's built-in
    /// template of this name for the model's architecture (`gemma` for Gemma models).
    Builtin(String),
    /// ChatML, llama.cpp's own fallback: no template for the architecture either.
    FallbackChatml,
}

/// llama.cpp's built-in chat template (`src/llama-chat.cpp`, `LLM_CHAT_TEMPLATES`) for a
/// model architecture whose models all use that format, for GGUFs without a template.
/// Architectures not listed get ChatML (the Qwen families' own format).
pub fn builtin_template_for_arch(arch: &str) -> Option<&'static str> {
    match arch {
        a if a.starts_with("gemma") => Some("gemma"),
        "phi3" => Some("phi3"),
        "llama4" => Some("llama4"),
        "gpt-oss" => Some("gpt-oss"),
        "command-r" | "cohere2" => Some("command-r"),
        "exaone" => Some("exaone3"),
        "exaone4" => Some("exaone4"),
        "granite" | "granitemoe" => Some("granite"),
        _ => None,
    }
}

/// A formatted chat prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatPrompt {
    /// The prompt text, ending with the assistant's turn opened.
    pub text: String,
    /// Which template made it.
    pub template: TemplateSource,
}

/// Why a session call failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The text cannot be passed to llama.cpp.
    #[error("{0} contains a NUL byte")]
    Nul(&'static str),
    /// Tokenization failed.
    #[error("llama.cpp could not tokenize the text")]
    Tokenize,
    /// Nothing to evaluate.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// A sampling value is impossible.
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    /// The prompt does not fit the context.
    #[error("the prompt has {tokens} tokens; the context holds {n_ctx}")]
    PromptTooLong {
        /// Prompt tokens.
        tokens: usize,
        /// Context size.
        n_ctx: u32,
    },
    /// `llama_decode` failed.
    #[error("llama_decode failed with {code} ({what})")]
    Decode {
        /// llama.cpp's return code.
        code: i32,
        /// Its meaning.
        what: &'static str,
    },
    /// The chat template could not be applied.
    #[error("applying the chat template failed: {0}")]
    ChatTemplate(String),
    /// llama.cpp refused to build a sampler.
    #[error("llama.cpp could not create the sampler")]
    Sampler,
}

/// A llama.cpp sampler chain, freed on drop.
struct Sampler(NonNull<sys::llama_sampler>);

impl Drop for Sampler {
    fn drop(&mut self) {
        // SAFETY: from llama_sampler_chain_init, freed once (frees the chained samplers).
        unsafe { sys::llama_sampler_free(self.0.as_ptr()) };
    }
}

impl Sampler {
    fn new(opts: &SamplingOptions, n_vocab: i32) -> Result<Self, SessionError> {
        // SAFETY: plain constructors; each sampler added is owned by the chain.
        unsafe {
            let chain = sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params());
            let chain = Sampler(NonNull::new(chain).ok_or(SessionError::Sampler)?);
            let add = |s: *mut sys::llama_sampler| -> Result<(), SessionError> {
                if s.is_null() {
                    return Err(SessionError::Sampler);
                }
                sys::llama_sampler_chain_add(chain.0.as_ptr(), s);
                Ok(())
            };
            if opts.repeat_penalty != 1.0 && opts.repeat_last_n != 0 {
                add(sys::llama_sampler_init_penalties(
                    n_vocab,
                    opts.repeat_last_n,
                    opts.repeat_penalty,
                    0.0,
                    0.0,
                ))?;
            }
            if opts.greedy || opts.temperature <= 0.0 {
                add(sys::llama_sampler_init_greedy())?;
            } else {
                if opts.top_k > 0 {
                    add(sys::llama_sampler_init_top_k(opts.top_k))?;
                }
                if opts.top_p < 1.0 {
                    add(sys::llama_sampler_init_top_p(opts.top_p, 1))?;
                }
                if opts.min_p > 0.0 {
                    add(sys::llama_sampler_init_min_p(opts.min_p, 1))?;
                }
                add(sys::llama_sampler_init_temp(opts.temperature))?;
                add(sys::llama_sampler_init_dist(opts.seed))?;
            }
            Ok(chain)
        }
    }
}

/// Turns token bytes into text as it becomes final: complete UTF-8 characters, holding
/// back a possible beginning of a stop string.
pub(crate) struct TextStream {
    bytes: Vec<u8>,
    pending: String,
    stop: Vec<String>,
}

impl TextStream {
    pub(crate) fn new(stop: &[String]) -> Self {
        TextStream {
            bytes: Vec::new(),
            pending: String::new(),
            stop: stop.to_vec(),
        }
    }

    /// Adds a token's bytes; returns the text now final and the stop string found.
    pub(crate) fn push(&mut self, piece: &[u8]) -> (String, Option<String>) {
        self.bytes.extend_from_slice(piece);
        loop {
            match std::str::from_utf8(&self.bytes) {
                Ok(s) => {
                    self.pending.push_str(s);
                    self.bytes.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // SAFETY-free: the prefix is valid UTF-8 by from_utf8's report.
                    self.pending
                        .push_str(std::str::from_utf8(&self.bytes[..valid]).unwrap_or(""));
                    match e.error_len() {
                        Some(bad) => {
                            self.pending.push(char::REPLACEMENT_CHARACTER);
                            self.bytes.drain(..valid + bad);
                        }
                        None => {
                            self.bytes.drain(..valid);
                            break;
                        }
                    }
                }
            }
        }
        // The earliest stop string.
        let found = self
            .stop
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| self.pending.find(s.as_str()).map(|i| (i, s)))
            .min_by_key(|(i, _)| *i);
        if let Some((i, s)) = found {
            let out = self.pending[..i].to_owned();
            self.pending.clear();
            return (out, Some(s.clone()));
        }
        // Hold back the longest suffix that begins a stop string.
        let mut keep_from = self.pending.len();
        for (i, _) in self.pending.char_indices().rev() {
            let suffix = &self.pending[i..];
            if self
                .stop
                .iter()
                .any(|s| s.len() > suffix.len() && s.starts_with(suffix))
            {
                keep_from = i;
            }
        }
        let out = self.pending[..keep_from].to_owned();
        self.pending.drain(..keep_from);
        (out, None)
    }

    /// Whatever is left (at the end of generation).
    pub(crate) fn finish(&mut self) -> String {
        let mut out = std::mem::take(&mut self.pending);
        out.push_str(&String::from_utf8_lossy(&self.bytes));
        self.bytes.clear();
        out
    }
}

fn decode_error(code: i32) -> SessionError {
    let what = match code {
        1 => "no KV cache slot for the batch (context full)",
        2 => "aborted",
        -1 => "invalid batch",
        _ => "llama.cpp error",
    };
    SessionError::Decode { code, what }
}

pub use super::interrupt::INTERRUPT;

/// Generation over a loaded model and context.
pub struct Session {
    loaded: Loaded,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("loaded", &self.loaded)
            .finish()
    }
}

impl Session {
    /// A session over `loaded`.
    pub fn new(loaded: Loaded) -> Self {
        Session { loaded }
    }

    /// The model, context, plan.
    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    /// Gives the loaded model back.
    pub fn into_loaded(self) -> Loaded {
        self.loaded
    }

    fn model(&self) -> &Model {
        self.loaded.model()
    }

    /// Tokens of `text`; `add_special` adds BOS (etc.) as the model wants,
    /// `parse_special` turns special-token text (`<start_of_turn>`) into those tokens.
    pub fn tokenize(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<i32>, SessionError> {
        let vocab = self.model().vocab();
        let len = i32::try_from(text.len()).map_err(|_| SessionError::Tokenize)?;
        let mut tokens = vec![0i32; text.len() + 8];
        for _ in 0..2 {
            let cap = i32::try_from(tokens.len()).map_err(|_| SessionError::Tokenize)?;
            // SAFETY: text valid for len bytes; tokens valid for cap entries.
            let n = unsafe {
                sys::llama_tokenize(
                    vocab,
                    text.as_ptr().cast(),
                    len,
                    tokens.as_mut_ptr(),
                    cap,
                    add_special,
                    parse_special,
                )
            };
            if n >= 0 {
                tokens.truncate(n as usize);
                return Ok(tokens);
            }
            if n == i32::MIN {
                return Err(SessionError::Tokenize);
            }
            tokens.resize((-n) as usize, 0);
        }
        Err(SessionError::Tokenize)
    }

    /// The bytes of one token (`special`: render control tokens such as `<bos>`).
    pub fn token_bytes(&self, token: i32, special: bool) -> Vec<u8> {
        token_piece(self.model().vocab(), token, special)
    }

    /// The text of tokens (control tokens not rendered).
    pub fn detokenize(&self, tokens: &[i32]) -> String {
        let bytes: Vec<u8> = tokens
            .iter()
            .flat_map(|&t| self.token_bytes(t, false))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Whether `token` ends generation (`llama_vocab_is_eog`).
    pub fn is_end_of_generation(&self, token: i32) -> bool {
        // SAFETY: live vocab.
        unsafe { sys::llama_vocab_is_eog(self.model().vocab(), token) }
    }

    /// Generates after `prompt` (BOS added, special tokens parsed), streaming text to
    /// `on_token`: called once per generated token with the text that became final (empty
    /// while a multi-byte character or a possible stop string is pending). Returning
    /// `Break` stops generation ([`StopReason::Cancelled`]).
    pub fn generate(
        &mut self,
        prompt: &str,
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<GenerateStats, SessionError> {
        if prompt.contains('\0') {
            return Err(SessionError::Nul("the prompt"));
        }
        let tokens = self.tokenize(prompt, true, true)?;
        self.generate_tokens(&tokens, opts, on_token)
    }

    /// Formats `messages` with the model's chat template; when it has none (or llama.cpp
    /// does not recognise it), with llama.cpp's built-in template for the architecture
    /// ([`builtin_template_for_arch`]), else ChatML. The assistant's turn is opened.
    pub fn format_chat(&self, messages: &[ChatMessage]) -> Result<ChatPrompt, SessionError> {
        let owned: Vec<(CString, CString)> = messages
            .iter()
            .map(|m| {
                Ok((
                    CString::new(m.role.as_str()).map_err(|_| SessionError::Nul("a chat role"))?,
                    CString::new(m.content.as_str())
                        .map_err(|_| SessionError::Nul("a chat message"))?,
                ))
            })
            .collect::<Result<_, SessionError>>()?;
        let chat: Vec<sys::llama_chat_message> = owned
            .iter()
            .map(|(r, c)| sys::llama_chat_message {
                role: r.as_ptr(),
                content: c.as_ptr(),
            })
            .collect();
        let apply = |tmpl: &CString| -> Option<String> {
            let mut buf = vec![
                0u8;
                owned
                    .iter()
                    .map(|(r, c)| r.as_bytes().len() + c.as_bytes().len())
                    .sum::<usize>()
                    * 2
                    + 256
            ];
            for _ in 0..2 {
                // SAFETY: template and messages are NUL-terminated and outlive the call;
                // buf valid for its length.
                let n = unsafe {
                    sys::llama_chat_apply_template(
                        tmpl.as_ptr(),
                        chat.as_ptr(),
                        chat.len(),
                        true,
                        buf.as_mut_ptr().cast(),
                        i32::try_from(buf.len()).unwrap_or(i32::MAX),
                    )
                };
                if n < 0 {
                    return None;
                }
                let n = n as usize;
                if n <= buf.len() {
                    buf.truncate(n);
                    return Some(String::from_utf8_lossy(&buf).into_owned());
                }
                buf.resize(n, 0);
            }
            None
        };
        if let Some(t) = self.model().chat_template() {
            let tmpl = CString::new(t).map_err(|_| SessionError::Nul("the chat template"))?;
            if let Some(text) = apply(&tmpl) {
                return Ok(ChatPrompt {
                    text,
                    template: TemplateSource::Model,
                });
            }
            tracing::warn!("llama.cpp does not recognise the model's chat template");
        }
        if let Some(name) = builtin_template_for_arch(&self.loaded.meta.arch) {
            let tmpl = CString::new(name).expect("no NUL");
            if let Some(text) = apply(&tmpl) {
                return Ok(ChatPrompt {
                    text,
                    template: TemplateSource::Builtin(name.to_owned()),
                });
            }
        }
        tracing::warn!(
            "no chat template for architecture {}; using ChatML",
            self.loaded.meta.arch
        );
        let chatml = CString::new("chatml").expect("no NUL");
        let text = apply(&chatml)
            .ok_or_else(|| SessionError::ChatTemplate("ChatML could not be applied".to_owned()))?;
        Ok(ChatPrompt {
            text,
            template: TemplateSource::FallbackChatml,
        })
    }

    /// Generates the assistant's reply to `messages` (see [`Session::format_chat`] and
    /// [`Session::generate`]).
    pub fn chat(
        &mut self,
        messages: &[ChatMessage],
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<GenerateStats, SessionError> {
        let prompt = self.format_chat(messages)?;
        // A template that writes the BOS text itself must not get a second BOS.
        // SAFETY: live vocab.
        let bos = unsafe { sys::llama_vocab_bos(self.model().vocab()) };
        let bos_text = String::from_utf8_lossy(&self.token_bytes(bos, true)).into_owned();
        let add_special = bos < 0 || bos_text.is_empty() || !prompt.text.starts_with(&bos_text);
        let tokens = self.tokenize(&prompt.text, add_special, true)?;
        self.generate_tokens(&tokens, opts, on_token)
    }

    /// Greedy generation of at most `n` tokens after `prompt_tokens`, stopping at an
    /// end-of-generation token; the ids (for tests against llama.cpp's own loop).
    pub fn generate_tokens_greedy(
        &mut self,
        prompt_tokens: &[i32],
        n: usize,
    ) -> Result<Vec<i32>, SessionError> {
        let opts = GenerateOptions {
            max_tokens: u32::try_from(n).unwrap_or(u32::MAX),
            sampling: SamplingOptions::greedy(),
            stop: Vec::new(),
        };
        Ok(self
            .generate_tokens(prompt_tokens, &opts, &mut |_| ControlFlow::Continue(()))?
            .token_ids)
    }

    /// [`Session::generate`] from tokens.
    pub fn generate_tokens(
        &mut self,
        prompt_tokens: &[i32],
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<GenerateStats, SessionError> {
        if prompt_tokens.is_empty() {
            return Err(SessionError::EmptyPrompt);
        }
        opts.sampling.validate()?;
        let (model, context) = self.loaded.parts_mut();
        let vocab = model.vocab();
        // SAFETY: live vocab.
        let n_vocab = unsafe { sys::llama_vocab_n_tokens(vocab) };
        let sampler = Sampler::new(&opts.sampling, n_vocab)?;
        let n_ctx = context.n_ctx();
        if prompt_tokens.len() >= n_ctx as usize {
            return Err(SessionError::PromptTooLong {
                tokens: prompt_tokens.len(),
                n_ctx,
            });
        }
        let ctx = context.as_ptr();
        // Every call starts from an empty cache.
        // SAFETY: live context; its memory handle lives as long as it.
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(ctx), true) };

        INTERRUPT.store(false, Ordering::Relaxed);
        let t_prompt = Instant::now();
        let mut prompt: Vec<i32> = prompt_tokens.to_vec();
        let n_batch = context.n_batch().max(1) as usize;
        for chunk in prompt.chunks_mut(n_batch) {
            match decode(context, chunk) {
                // Aborted through INTERRUPT while reading the prompt.
                Err(SessionError::Decode { code: 2, .. }) => {
                    return Ok(GenerateStats {
                        prompt_tokens: prompt_tokens.len(),
                        generated_tokens: 0,
                        prompt_seconds: t_prompt.elapsed().as_secs_f64(),
                        generation_seconds: 0.0,
                        pp_tok_s: 0.0,
                        tg_tok_s: 0.0,
                        stop_reason: StopReason::Cancelled,
                        token_ids: Vec::new(),
                        text: String::new(),
                    });
                }
                other => other?,
            }
        }
        let prompt_seconds = t_prompt.elapsed().as_secs_f64();
        if opts.sampling.repeat_penalty != 1.0 {
            for &t in prompt_tokens {
                // SAFETY: live sampler chain.
                unsafe { sys::llama_sampler_accept(sampler.0.as_ptr(), t) };
            }
        }

        let t_gen = Instant::now();
        let mut n_past = prompt_tokens.len();
        let mut stream = TextStream::new(&opts.stop);
        let mut ids = Vec::new();
        let mut text = String::new();
        let stop_reason = loop {
            if ids.len() >= opts.max_tokens as usize {
                break StopReason::MaxTokens;
            }
            // SAFETY: live sampler and context with logits for the last token.
            let token = unsafe { sys::llama_sampler_sample(sampler.0.as_ptr(), ctx, -1) };
            // SAFETY: live vocab.
            if unsafe { sys::llama_vocab_is_eog(vocab, token) } {
                break StopReason::EndOfGeneration;
            }
            ids.push(token);
            let piece = token_piece(vocab, token, false);
            let (out, stopped) = stream.push(&piece);
            text.push_str(&out);
            let flow = on_token(&out);
            if let Some(s) = stopped {
                break StopReason::StopString(s);
            }
            if flow.is_break() || INTERRUPT.load(Ordering::Relaxed) {
                break StopReason::Cancelled;
            }
            if ids.len() >= opts.max_tokens as usize {
                break StopReason::MaxTokens;
            }
            if n_past + 1 >= n_ctx as usize {
                break StopReason::ContextFull;
            }
            let mut one = [token];
            match decode(context, &mut one) {
                Err(SessionError::Decode { code: 2, .. }) => break StopReason::Cancelled,
                other => other?,
            }
            n_past += 1;
        };
        if matches!(
            stop_reason,
            StopReason::EndOfGeneration | StopReason::MaxTokens | StopReason::ContextFull
        ) {
            let rest = stream.finish();
            if !rest.is_empty() {
                text.push_str(&rest);
                let _ = on_token(&rest);
            }
        }
        let generation_seconds = t_gen.elapsed().as_secs_f64();
        let rate = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
        Ok(GenerateStats {
            prompt_tokens: prompt_tokens.len(),
            generated_tokens: ids.len(),
            prompt_seconds,
            generation_seconds,
            pp_tok_s: rate(prompt_tokens.len(), prompt_seconds),
            tg_tok_s: rate(ids.len(), generation_seconds),
            stop_reason,
            token_ids: ids,
            text,
        })
    }
}

fn token_piece(vocab: *const sys::llama_vocab, token: i32, special: bool) -> Vec<u8> {
    let mut buf = vec![0u8; 64];
    for _ in 0..2 {
        // SAFETY: buf valid for its length.
        let n = unsafe {
            sys::llama_token_to_piece(
                vocab,
                token,
                buf.as_mut_ptr().cast(),
                buf.len() as i32,
                0,
                special,
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return buf;
        }
        buf.resize((-n) as usize, 0);
    }
    Vec::new()
}

fn decode(context: &mut Context, tokens: &mut [i32]) -> Result<(), SessionError> {
    let n = i32::try_from(tokens.len()).map_err(|_| SessionError::Decode {
        code: -1,
        what: "batch too large",
    })?;
    // SAFETY: the batch points into `tokens`, alive for the call; live context.
    let rc = unsafe {
        let batch = sys::llama_batch_get_one(tokens.as_mut_ptr(), n);
        sys::llama_decode(context.as_ptr(), batch)
    };
    if rc != 0 {
        return Err(decode_error(rc));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TextStream;

    #[test]
    fn text_stream_holds_partial_utf8_and_stop_prefixes() {
        let stop = vec!["STOP".to_owned()];
        let mut s = TextStream::new(&stop);
        let euro = "€".as_bytes();
        assert_eq!(s.push(&euro[..1]), (String::new(), None));
        assert_eq!(s.push(&euro[1..]), ("€".to_owned(), None));
        assert_eq!(s.push(b"ab ST"), ("ab ".to_owned(), None));
        assert_eq!(s.push(b"x"), ("STx".to_owned(), None));
        assert_eq!(s.push(b"yS"), ("y".to_owned(), None));
        assert_eq!(s.push(b"TOPz"), (String::new(), Some("STOP".to_owned())));
    }

    #[test]
    fn text_stream_finish_flushes() {
        let stop = vec!["END".to_owned()];
        let mut s = TextStream::new(&stop);
        assert_eq!(s.push(b"hi E"), ("hi ".to_owned(), None));
        assert_eq!(s.finish(), "E");
    }
}
