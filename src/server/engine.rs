//! Continuous batching over one llama.cpp context with one sequence per slot.
//!
//! The engine runs on a thread of its own that owns the loaded model and context. A
//! request ([`Job`]) waits in a bounded queue until a slot is free. Each step builds one
//! `llama_decode` batch holding the next token of every generating slot and as many
//! prompt tokens of the slots still reading their prompt as the batch has room for;
//! then every slot whose distribution was computed samples with its own sampler chain
//! (llama.cpp's `common_sampler`, grammar included). New requests join between steps
//! while others generate. A slot whose client went away (its event receiver dropped) is
//! cancelled and freed before the next step.
//!
//! **Prompt reuse.** A slot keeps the tokens its sequence holds after a request ends. A
//! new request goes to the free slot whose held tokens share the longest prefix with its
//! prompt; only the rest is evaluated ([`Finish::cached_tokens`]). A sliding-window or
//! recurrent cache that cannot keep that prefix is cleared instead (as llama-server does).

use crate::runtime::batch::{decode, Batch, SequenceMemory};
use crate::runtime::chat::{
    parse_reply, ChatParams, ChatRequest, ChatTemplates, GrammarKind, ParsedReply,
};
use crate::runtime::load::Loaded;
use crate::runtime::sampler::{CommonSampler, SamplerSpec};
use crate::runtime::session::{builtin_template_for_arch, SamplingOptions, Session, TextStream};
use llama_cpp_sys_2 as sys;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// The share of a prompt a slot's cache must hold for the request to go to that slot
/// rather than to the least recently used one (llama-server's default
/// `--slot-prompt-similarity` is 0.1 as well).
pub const MIN_REUSE: f64 = 0.1;

/// What to evaluate before generating.
#[derive(Debug, Clone)]
pub enum Prompt {
    /// Raw text, BOS added and special tokens parsed as llama.cpp's tools do
    /// (`/v1/completions`).
    Text(String),
    /// A conversation formatted by the model's chat template (llama.cpp's `common` chat
    /// code: tools, JSON schema).
    Chat(ChatRequest),
}

/// How to generate.
#[derive(Debug, Clone)]
pub struct Generation {
    /// At most this many tokens.
    pub max_tokens: u32,
    /// Sampling values.
    pub sampling: SamplingOptions,
    /// Stop strings (not part of the answer).
    pub stop: Vec<String>,
    /// A GBNF grammar for a raw-text prompt (a chat's comes from its template).
    pub grammar: Option<String>,
    /// Reuse what a slot holds of the prompt (llama-server's `cache_prompt`). Off: the
    /// whole prompt is evaluated, so the same request with the same seed gives the same
    /// text every time.
    pub cache_prompt: bool,
}

/// One request for the engine.
#[derive(Debug)]
pub struct Job {
    /// The prompt.
    pub prompt: Prompt,
    /// How to generate.
    pub generation: Generation,
    /// Where the engine reports; dropping the receiver cancels the request.
    pub events: UnboundedSender<Event>,
}

/// What the engine reports about a job, in order: `Started`, any number of `Text`,
/// then `Done` (or `Failed` at any point).
#[derive(Debug, Clone)]
pub enum Event {
    /// The prompt was accepted by a slot.
    Started {
        /// The slot.
        slot: usize,
        /// Prompt tokens.
        prompt_tokens: usize,
        /// Of those, already held by the slot (not evaluated again).
        cached_tokens: usize,
    },
    /// Text that became final.
    Text(String),
    /// The answer is complete.
    Done(Box<Finish>),
    /// The request failed.
    Failed(JobError),
}

/// Why generation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-generation token.
    EndOfGeneration,
    /// `max_tokens` reached.
    MaxTokens,
    /// A stop string.
    StopString(String),
    /// The slot's context is full.
    ContextFull,
    /// The client went away or the server is stopping.
    Cancelled,
}

/// A completed answer.
#[derive(Debug, Clone)]
pub struct Finish {
    /// Why it ended.
    pub reason: FinishReason,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Prompt tokens reused from the slot's cache.
    pub cached_tokens: usize,
    /// Generated tokens.
    pub generated_tokens: usize,
    /// Milliseconds evaluating the prompt (from admission to the first token's logits).
    pub prompt_ms: f64,
    /// Milliseconds generating.
    pub generation_ms: f64,
    /// The whole text generated (stop string excluded).
    pub text: String,
    /// For a chat: the answer parsed by the template's format (content, tool calls).
    pub reply: Option<ParsedReply>,
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// The request cannot be served as given (a client error).
    #[error("{0}")]
    BadRequest(String),
    /// The prompt does not fit a slot.
    #[error(
        "the prompt has {tokens} tokens; a slot's context holds {n_ctx} (less 1 for the answer)"
    )]
    PromptTooLong {
        /// Prompt tokens.
        tokens: usize,
        /// Tokens a slot holds.
        n_ctx: usize,
    },
    /// Something failed inside (llama.cpp).
    #[error("{0}")]
    Internal(String),
}

/// Every slot busy and the queue full.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "all {slots} slots are busy and {queued} requests are waiting (--queue); try again shortly"
)]
pub struct Busy {
    /// Slots.
    pub slots: usize,
    /// Requests waiting.
    pub queued: usize,
}

/// The engine has stopped (it is shutting down or failed).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the model engine has stopped")]
pub struct Stopped;

/// What a slot is doing, for `/slots`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SlotInfo {
    /// Slot number (also its llama.cpp sequence id).
    pub id: usize,
    /// `idle`, `prompt` (evaluating the prompt) or `generating`.
    pub state: &'static str,
    /// Prompt tokens of the current (or last) request.
    pub prompt_tokens: usize,
    /// Of those, reused from the cache.
    pub cached_tokens: usize,
    /// Tokens generated so far.
    pub generated_tokens: usize,
    /// Tokens the slot's sequence holds.
    pub held_tokens: usize,
    /// Context tokens per slot.
    pub n_ctx: usize,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests completed (any finish).
    pub requests: AtomicU64,
    /// Requests failed.
    pub failed: AtomicU64,
    /// Requests cancelled (client gone).
    pub cancelled: AtomicU64,
    /// Prompt tokens evaluated (cached ones not counted).
    pub prompt_tokens: AtomicU64,
    /// Prompt tokens reused.
    pub cached_tokens: AtomicU64,
    /// Tokens generated.
    pub generated_tokens: AtomicU64,
    /// Microseconds spent in decode steps holding prompt tokens.
    pub prompt_micros: AtomicU64,
    /// Microseconds spent in decode steps holding only generated tokens.
    pub generation_micros: AtomicU64,
    /// Decode steps.
    pub steps: AtomicU64,
}

/// State shared between the engine thread and the server.
#[derive(Debug)]
pub struct Shared {
    /// The engine thread is running (false once it ended).
    pub running: std::sync::atomic::AtomicBool,
    /// Requests waiting for a slot.
    pub queued: AtomicUsize,
    /// Slots generating or reading a prompt.
    pub busy: AtomicUsize,
    /// Per-slot state.
    pub slots: Mutex<Vec<SlotInfo>>,
    /// Counters.
    pub counters: Counters,
}

/// Settings of the engine.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Requests that may wait for a slot; more are refused ([`Busy`]).
    pub queue: usize,
}

/// The handle the server submits jobs through.
#[derive(Debug, Clone)]
pub struct Engine {
    sender: SyncSender<Job>,
    shared: Arc<Shared>,
    slots: usize,
    queue: usize,
}

impl Engine {
    /// Starts the engine thread over `loaded` (the context's sequences are the slots).
    /// The thread ends once every [`Engine`] clone is dropped and the running jobs are
    /// done.
    pub fn start(
        loaded: Loaded,
        config: EngineConfig,
    ) -> Result<(Engine, std::thread::JoinHandle<()>), JobError> {
        let slots = loaded.context().n_seq_max().max(1) as usize;
        let n_ctx_slot = (loaded.context().n_ctx() as usize / slots).max(1);
        // A model without a template gets llama.cpp's built-in one for its architecture,
        // as `strix-run` chat does (`gemma` for Gemma), not ChatML.
        let builtin = match loaded.model().chat_template() {
            Some(_) => None,
            None => builtin_template_for_arch(&loaded.meta.arch),
        };
        let templates = match builtin {
            Some(name) => ChatTemplates::with_template(loaded.model(), name),
            None => ChatTemplates::new(loaded.model()),
        }
        .map_err(|e| JobError::Internal(format!("the chat template: {e}")))?;
        let shared = Arc::new(Shared {
            running: std::sync::atomic::AtomicBool::new(true),
            queued: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            slots: Mutex::new(
                (0..slots)
                    .map(|id| SlotInfo {
                        id,
                        state: "idle",
                        prompt_tokens: 0,
                        cached_tokens: 0,
                        generated_tokens: 0,
                        held_tokens: 0,
                        n_ctx: n_ctx_slot,
                    })
                    .collect(),
            ),
            counters: Counters::default(),
        });
        let queue = config.queue.max(1);
        let (sender, receiver) = std::sync::mpsc::sync_channel(queue);
        let worker = Worker::new(Session::new(loaded), templates, n_ctx_slot, shared.clone());
        let handle = std::thread::Builder::new()
            .name("strix-engine".into())
            .spawn(move || worker.run(receiver))
            .map_err(|e| JobError::Internal(format!("starting the engine thread: {e}")))?;
        Ok((
            Engine {
                sender,
                shared,
                slots,
                queue,
            },
            handle,
        ))
    }

    /// Queues `job`; refused when the queue is full.
    pub fn submit(&self, job: Job) -> Result<(), SubmitError> {
        self.shared.queued.fetch_add(1, Ordering::SeqCst);
        match self.sender.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.shared.queued.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    TrySendError::Full(_) => SubmitError::Busy(Busy {
                        slots: self.slots,
                        queued: self.queue,
                    }),
                    TrySendError::Disconnected(_) => SubmitError::Stopped(Stopped),
                })
            }
        }
    }

    /// Slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The state shared with the engine thread.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }
}

/// Why a job was not queued.
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum SubmitError {
    /// Queue full.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The engine has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// A slot's request in progress.
struct Active {
    events: UnboundedSender<Event>,
    sampler: CommonSampler,
    stream: TextStream,
    /// Prompt tokens not yet in the batch.
    pending_prompt: Vec<i32>,
    prompt_tokens: usize,
    cached_tokens: usize,
    max_tokens: usize,
    generated: usize,
    /// Batch index whose logits to sample after this step.
    sample_at: Option<i32>,
    /// Token sampled last, to be decoded next step.
    next_token: Option<i32>,
    text: String,
    /// Raw text (preserved special tokens rendered) for the chat parser.
    raw_text: String,
    chat: Option<ChatParams>,
    /// The request allows several tool calls in one answer.
    parallel_tool_calls: bool,
    admitted: Instant,
    first_token: Option<Instant>,
}

struct Slot {
    id: usize,
    /// When the slot last took a request (a step count; 0: never).
    last_used: u64,
    /// Tokens the sequence holds (prompt + generated, in order).
    held: Vec<i32>,
    active: Option<Active>,
}

struct Worker {
    session: Session,
    templates: ChatTemplates,
    slots: Vec<Slot>,
    n_ctx_slot: usize,
    n_batch: usize,
    n_swa: i32,
    bos_text: String,
    shared: Arc<Shared>,
    /// Requests admitted so far (orders the slots by last use).
    admissions: u64,
}

impl Worker {
    fn new(
        session: Session,
        templates: ChatTemplates,
        n_ctx_slot: usize,
        shared: Arc<Shared>,
    ) -> Self {
        let loaded = session.loaded();
        let n_slots = loaded.context().n_seq_max().max(1) as usize;
        let n_batch = loaded.context().n_batch().max(1) as usize;
        // SAFETY: live model.
        let n_swa = unsafe { sys::llama_model_n_swa(loaded.model().as_ptr()) };
        // SAFETY: live vocab.
        let bos = unsafe { sys::llama_vocab_bos(loaded.model().vocab()) };
        let bos_text = if bos < 0 {
            String::new()
        } else {
            String::from_utf8_lossy(&session.token_bytes(bos, true)).into_owned()
        };
        Worker {
            slots: (0..n_slots)
                .map(|id| Slot {
                    id,
                    last_used: 0,
                    held: Vec::new(),
                    active: None,
                })
                .collect(),
            session,
            templates,
            n_ctx_slot,
            n_batch,
            n_swa,
            bos_text,
            shared,
            admissions: 0,
        }
    }

    /// The free slot for `tokens`: the one whose held tokens share the longest prefix
    /// with them when that prefix is at least [`MIN_REUSE`] of the prompt (the next turn
    /// of a conversation, a fixed system prompt); otherwise the least recently used one,
    /// so that other conversations' caches stay for their next turn.
    /// Also whether the slot's cache is to be reused: evaluating a prefix again gives
    /// the same numbers as the first time, reusing it gives nearly the same (llama.cpp's
    /// results depend in their last bits on how tokens were batched), so a short
    /// accidental match (the BOS token) is not reused.
    fn pick_slot(&self, tokens: &[i32]) -> (usize, bool) {
        let free = || self.slots.iter().filter(|s| s.active.is_none());
        let best = free()
            .map(|s| (common_prefix(&s.held, tokens), s))
            .max_by_key(|&(n, s)| (n, std::cmp::Reverse(s.id)));
        match best {
            Some((n, s)) if n > 1 && n as f64 >= MIN_REUSE * tokens.len() as f64 => (s.id, true),
            _ => (
                free()
                    .min_by_key(|s| (s.last_used, s.id))
                    .map_or(0, |s| s.id),
                false,
            ),
        }
    }

    fn busy(&self) -> usize {
        self.slots.iter().filter(|s| s.active.is_some()).count()
    }

    fn run(mut self, jobs: Receiver<Job>) {
        // However the thread ends, /health then says so.
        struct Ended(Arc<Shared>);
        impl Drop for Ended {
            fn drop(&mut self) {
                self.0.running.store(false, Ordering::SeqCst);
            }
        }
        let _ended = Ended(self.shared.clone());
        let mut batch = Batch::new(self.n_batch.max(self.slots.len()));
        let mut open = true;
        loop {
            self.publish();
            // Admit waiting jobs while a slot is free.
            while open && self.busy() < self.slots.len() {
                let next = if self.busy() == 0 {
                    match jobs.recv_timeout(Duration::from_millis(250)) {
                        Ok(job) => Some(job),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => {
                            open = false;
                            None
                        }
                    }
                } else {
                    match jobs.try_recv() {
                        Ok(job) => Some(job),
                        Err(std::sync::mpsc::TryRecvError::Empty) => None,
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                            open = false;
                            None
                        }
                    }
                };
                let Some(job) = next else { break };
                self.shared.queued.fetch_sub(1, Ordering::SeqCst);
                let events = job.events.clone();
                let admitted =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.admit(job)));
                if admitted.is_err() {
                    let _ = events.send(Event::Failed(JobError::Internal(
                        "internal error while starting the request; the server goes on".into(),
                    )));
                    self.recover();
                }
            }
            self.publish();
            if self.busy() == 0 {
                if !open {
                    return;
                }
                continue;
            }
            let stepped =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step(&mut batch)));
            if stepped.is_err() {
                self.recover();
            }
        }
    }

    /// After a panic inside a step: every request in progress fails, and the slots
    /// start empty (what their sequences hold is no longer known).
    fn recover(&mut self) {
        tracing::error!("the engine recovered from a panic; the requests in progress failed");
        let context = self.session.loaded().context();
        for slot in &mut self.slots {
            if let Some(active) = slot.active.take() {
                let _ = active.events.send(Event::Failed(JobError::Internal(
                    "internal error during generation; the server goes on".into(),
                )));
                self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
            }
            SequenceMemory::new(context, slot.id as i32).clear();
            slot.held.clear();
        }
    }

    /// Copies the slots' state to the shared view.
    fn publish(&self) {
        let infos: Vec<SlotInfo> = self
            .slots
            .iter()
            .map(|s| SlotInfo {
                id: s.id,
                state: match &s.active {
                    None => "idle",
                    Some(a) if a.first_token.is_none() => "prompt",
                    Some(_) => "generating",
                },
                prompt_tokens: s.active.as_ref().map_or(0, |a| a.prompt_tokens),
                cached_tokens: s.active.as_ref().map_or(0, |a| a.cached_tokens),
                generated_tokens: s.active.as_ref().map_or(0, |a| a.generated),
                held_tokens: s.held.len(),
                n_ctx: self.n_ctx_slot,
            })
            .collect();
        self.shared.busy.store(self.busy(), Ordering::SeqCst);
        if let Ok(mut slots) = self.shared.slots.lock() {
            *slots = infos;
        }
    }

    /// Tokenizes the job's prompt, picks a slot and sets it up; failures go back to the
    /// client.
    fn admit(&mut self, job: Job) {
        let Job {
            prompt,
            generation,
            events,
        } = job;
        if events.is_closed() {
            self.shared
                .counters
                .cancelled
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.prepare(prompt, generation, events.clone()) {
            Ok(()) => {}
            Err(e) => {
                self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                let _ = events.send(Event::Failed(e));
            }
        }
    }

    fn prepare(
        &mut self,
        prompt: Prompt,
        generation: Generation,
        events: UnboundedSender<Event>,
    ) -> Result<(), JobError> {
        generation
            .sampling
            .validate()
            .map_err(|e| JobError::BadRequest(e.to_string()))?;
        let parallel_tool_calls = matches!(&prompt, Prompt::Chat(r) if r.parallel_tool_calls);
        let (tokens, chat) = match prompt {
            Prompt::Text(text) => {
                if text.contains('\0') {
                    return Err(JobError::BadRequest(
                        "the prompt contains a NUL byte".into(),
                    ));
                }
                let tokens = self
                    .session
                    .tokenize(&text, true, true)
                    .map_err(|e| JobError::Internal(e.to_string()))?;
                (tokens, None)
            }
            Prompt::Chat(request) => {
                let params = self
                    .templates
                    .apply(&request)
                    .map_err(|e| JobError::BadRequest(e.to_string()))?;
                // A template that writes the BOS text itself must not get a second BOS.
                let add_special =
                    self.bos_text.is_empty() || !params.prompt.starts_with(&self.bos_text);
                let tokens = self
                    .session
                    .tokenize(&params.prompt, add_special, true)
                    .map_err(|e| JobError::Internal(e.to_string()))?;
                tracing::debug!(
                    format = %params.format_name,
                    grammar_bytes = params.grammar.len(),
                    grammar_lazy = params.grammar_lazy,
                    triggers = params.grammar_triggers.len(),
                    "chat template applied"
                );
                (tokens, Some(params))
            }
        };
        if tokens.is_empty() {
            return Err(JobError::BadRequest("the prompt is empty".into()));
        }
        if tokens.len() >= self.n_ctx_slot {
            return Err(JobError::PromptTooLong {
                tokens: tokens.len(),
                n_ctx: self.n_ctx_slot,
            });
        }
        let mut stop = generation.stop.clone();
        let spec = match &chat {
            Some(params) => {
                stop.extend(params.additional_stops.iter().cloned());
                SamplerSpec::for_chat(generation.sampling.clone(), params)
            }
            None => SamplerSpec {
                sampling: generation.sampling.clone(),
                grammar: generation.grammar.clone().unwrap_or_default(),
                grammar_kind: GrammarKind::OutputFormat,
                ..SamplerSpec::default()
            },
        };
        let sampler = CommonSampler::new(self.session.loaded().model(), &spec)
            .map_err(|e| JobError::BadRequest(e.to_string()))?;

        let (index, reuse) = self.pick_slot(&tokens);
        let common = if reuse && generation.cache_prompt {
            common_prefix(&self.slots[index].held, &tokens)
        } else {
            0
        };
        // At least one token is evaluated: its logits start the answer.
        let mut keep = common.min(tokens.len() - 1);
        let context = self.session.loaded().context();
        let memory = SequenceMemory::new(context, index as i32);
        if keep == 0 || !memory.truncate(keep as i32) {
            memory.clear();
            keep = 0;
        } else {
            let pos_min = memory.pos_min();
            let threshold = (keep as i32 - self.n_swa.max(1)).max(0);
            if self.n_swa > 0 && pos_min > threshold {
                memory.clear();
                keep = 0;
            }
        }
        self.admissions += 1;
        let slot = &mut self.slots[index];
        slot.last_used = self.admissions;
        slot.held.truncate(keep);
        let _ = events.send(Event::Started {
            slot: index,
            prompt_tokens: tokens.len(),
            cached_tokens: keep,
        });
        slot.active = Some(Active {
            events,
            sampler,
            stream: TextStream::new(&stop),
            pending_prompt: tokens[keep..].to_vec(),
            prompt_tokens: tokens.len(),
            cached_tokens: keep,
            max_tokens: generation.max_tokens as usize,
            generated: 0,
            sample_at: None,
            next_token: None,
            text: String::new(),
            raw_text: String::new(),
            chat,
            parallel_tool_calls,
            admitted: Instant::now(),
            first_token: None,
        });
        self.shared
            .counters
            .cached_tokens
            .fetch_add(keep as u64, Ordering::Relaxed);
        Ok(())
    }

    /// One decode step over every active slot.
    fn step(&mut self, batch: &mut Batch) {
        // Cancel slots whose client went away.
        for slot in &mut self.slots {
            if slot.active.as_ref().is_some_and(|a| a.events.is_closed()) {
                slot.active = None;
                self.shared
                    .counters
                    .cancelled
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        batch.clear();
        let mut has_prompt = false;
        // Generated tokens first: one per generating slot.
        for slot in &mut self.slots {
            let Some(active) = &mut slot.active else {
                continue;
            };
            active.sample_at = None;
            if let Some(token) = active.next_token.take() {
                let pos = slot.held.len() as i32;
                active.sample_at = batch.push(token, pos, slot.id as i32, true);
                slot.held.push(token);
            }
        }
        // Then prompt chunks, as room allows.
        for slot in &mut self.slots {
            let Some(active) = &mut slot.active else {
                continue;
            };
            if active.pending_prompt.is_empty() {
                continue;
            }
            let take = active.pending_prompt.len().min(batch.room());
            if take == 0 {
                break;
            }
            has_prompt = true;
            let last = take == active.pending_prompt.len();
            for (k, &token) in active.pending_prompt[..take].iter().enumerate() {
                let pos = slot.held.len() as i32;
                let logits = last && k + 1 == take;
                let idx = batch.push(token, pos, slot.id as i32, logits);
                if logits {
                    active.sample_at = idx;
                }
                slot.held.push(token);
            }
            active.pending_prompt.drain(..take);
        }
        let started = Instant::now();
        let result = decode(self.session.loaded().context(), batch);
        let micros = started.elapsed().as_micros() as u64;
        let counters = &self.shared.counters;
        counters.steps.fetch_add(1, Ordering::Relaxed);
        if has_prompt {
            counters.prompt_micros.fetch_add(micros, Ordering::Relaxed);
        } else {
            counters
                .generation_micros
                .fetch_add(micros, Ordering::Relaxed);
        }
        if let Err(e) = result {
            // Every request in this batch fails; their sequences are cleared.
            for slot in &mut self.slots {
                if let Some(active) = slot.active.take() {
                    let _ = active
                        .events
                        .send(Event::Failed(JobError::Internal(e.to_string())));
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    SequenceMemory::new(self.session.loaded().context(), slot.id as i32).clear();
                    slot.held.clear();
                }
            }
            return;
        }
        // Sample where logits were computed.
        let n_ctx_slot = self.n_ctx_slot;
        for i in 0..self.slots.len() {
            let Some(idx) = self.slots[i].active.as_ref().and_then(|a| a.sample_at) else {
                continue;
            };
            let done = self.sample(i, idx, n_ctx_slot);
            if let Some(reason) = done {
                self.finish(i, reason);
            }
        }
    }

    /// Samples slot `i` at batch index `idx`; the finish reason when it is done.
    fn sample(&mut self, i: usize, idx: i32, n_ctx_slot: usize) -> Option<FinishReason> {
        let context = self.session.loaded().context();
        let slot = &mut self.slots[i];
        let held = slot.held.len();
        let active = slot.active.as_mut()?;
        let token = active.sampler.sample(context, idx);
        if active.first_token.is_none() {
            active.first_token = Some(Instant::now());
            self.shared.counters.prompt_tokens.fetch_add(
                (active.prompt_tokens - active.cached_tokens) as u64,
                Ordering::Relaxed,
            );
        }
        if self.session.is_end_of_generation(token) {
            return Some(FinishReason::EndOfGeneration);
        }
        active.generated += 1;
        self.shared
            .counters
            .generated_tokens
            .fetch_add(1, Ordering::Relaxed);
        let preserved = active.sampler.is_preserved(token);
        let piece = self.session.token_bytes(token, preserved);
        if active.chat.is_some() {
            active.raw_text.push_str(&String::from_utf8_lossy(&piece));
        }
        let (out, stopped) = active.stream.push(&piece);
        if !out.is_empty() {
            active.text.push_str(&out);
            if active.events.send(Event::Text(out)).is_err() {
                return Some(FinishReason::Cancelled);
            }
        }
        if let Some(s) = stopped {
            return Some(FinishReason::StopString(s));
        }
        if active.generated >= active.max_tokens {
            return Some(FinishReason::MaxTokens);
        }
        if held + 1 >= n_ctx_slot {
            return Some(FinishReason::ContextFull);
        }
        active.next_token = Some(token);
        None
    }

    /// Ends slot `i`'s request: the rest of the text, the parsed reply, `Done`.
    fn finish(&mut self, i: usize, reason: FinishReason) {
        let Some(mut active) = self.slots[i].active.take() else {
            return;
        };
        let counters = &self.shared.counters;
        if reason == FinishReason::Cancelled {
            counters.cancelled.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if !matches!(reason, FinishReason::StopString(_)) {
            let rest = active.stream.finish();
            if !rest.is_empty() {
                active.text.push_str(&rest);
                let _ = active.events.send(Event::Text(rest));
            }
        }
        let now = Instant::now();
        let first = active.first_token.unwrap_or(now);
        let reply = match &active.chat {
            Some(params) => {
                // The parser sees the raw text, cut at the stop string as the answer is.
                let raw = match &reason {
                    FinishReason::StopString(s) => match active.raw_text.find(s.as_str()) {
                        Some(at) => active.raw_text[..at].to_owned(),
                        None => active.raw_text.clone(),
                    },
                    _ => active.raw_text.clone(),
                };
                match parse_reply(params, &raw, false) {
                    Ok(mut r) => {
                        // A call cut short (max_tokens) is not a call; without
                        // `parallel_tool_calls` only the first one counts.
                        r.tool_calls.retain(|c| {
                            serde_json::from_str::<serde_json::Value>(&c.arguments).is_ok()
                        });
                        if !active.parallel_tool_calls {
                            r.tool_calls.truncate(1);
                        }
                        // llama.cpp leaves ids to the server: unique ones per call.
                        let nanos = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_nanos() as u64);
                        for (k, call) in r.tool_calls.iter_mut().enumerate() {
                            if call.id.is_empty() {
                                call.id =
                                    format!("call_{:x}{:02x}{k}", nanos, self.admissions % 256);
                            }
                        }
                        Some(r)
                    }
                    Err(e) => {
                        tracing::warn!("the answer could not be parsed by its chat format: {e}");
                        None
                    }
                }
            }
            None => None,
        };
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let finish = Finish {
            reason,
            prompt_tokens: active.prompt_tokens,
            cached_tokens: active.cached_tokens,
            generated_tokens: active.generated,
            prompt_ms: (first - active.admitted).as_secs_f64() * 1000.0,
            generation_ms: (now - first).as_secs_f64() * 1000.0,
            text: active.text,
            reply,
        };
        // The slot is free before the client hears of it: a client that asks `/slots`
        // or `/metrics` after its answer sees it idle.
        self.publish();
        let _ = active.events.send(Event::Done(Box::new(finish)));
    }
}

/// Tokens two sequences share at their start.
fn common_prefix(a: &[i32], b: &[i32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::common_prefix;

    #[test]
    fn common_prefix_counts_the_shared_start() {
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2, 4]), 2);
        assert_eq!(common_prefix(&[], &[1]), 0);
        assert_eq!(common_prefix(&[5, 6], &[5, 6, 7]), 2);
        assert_eq!(common_prefix(&[9], &[8]), 0);
    }
}
