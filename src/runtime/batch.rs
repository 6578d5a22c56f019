//! llama.cpp's batch handle (`llama_batch`) for several sequences at once, and the
//! per-sequence KV operations a server needs: one module per llama.cpp handle.
//!
//! A [`Batch`] holds tokens of any number of sequences, each at its own position, with
//! logits asked for where a token is to be sampled next; [`decode`] evaluates it in one
//! `llama_decode` call. [`SequenceMemory`] trims or clears one sequence's cells.

use super::context::Context;
use llama_cpp_sys_2 as sys;

/// A token batch over several sequences (`llama_batch_init` / `llama_batch_free`).
pub struct Batch {
    raw: sys::llama_batch,
    capacity: usize,
}

// SAFETY: the batch owns its arrays; nothing else points into them.
unsafe impl Send for Batch {}

impl Drop for Batch {
    fn drop(&mut self) {
        // SAFETY: from llama_batch_init, freed once.
        unsafe { sys::llama_batch_free(self.raw) };
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Batch {
    /// An empty batch for at most `capacity` tokens, each in one sequence.
    pub fn new(capacity: usize) -> Self {
        let cap = i32::try_from(capacity.max(1)).unwrap_or(i32::MAX);
        // SAFETY: plain allocation; one sequence id per token.
        let raw = unsafe { sys::llama_batch_init(cap, 0, 1) };
        Batch {
            raw,
            capacity: cap as usize,
        }
    }

    /// Tokens in the batch.
    pub fn len(&self) -> usize {
        self.raw.n_tokens as usize
    }

    /// Whether the batch holds no token.
    pub fn is_empty(&self) -> bool {
        self.raw.n_tokens == 0
    }

    /// Room left.
    pub fn room(&self) -> usize {
        self.capacity - self.len()
    }

    /// Empties the batch (the arrays are kept).
    pub fn clear(&mut self) {
        self.raw.n_tokens = 0;
    }

    /// Adds `token` of sequence `seq` at position `pos`; `logits`: compute the
    /// distribution after it. Returns its index in the batch (for sampling), or `None`
    /// when the batch is full.
    pub fn push(&mut self, token: i32, pos: i32, seq: i32, logits: bool) -> Option<i32> {
        let i = self.len();
        if i >= self.capacity {
            return None;
        }
        // SAFETY: i < capacity, the arrays hold `capacity` entries (seq_id entries each
        // hold one id, as initialised).
        unsafe {
            *self.raw.token.add(i) = token;
            *self.raw.pos.add(i) = pos;
            *self.raw.n_seq_id.add(i) = 1;
            *(*self.raw.seq_id.add(i)) = seq;
            *self.raw.logits.add(i) = i8::from(logits);
        }
        self.raw.n_tokens += 1;
        Some(i as i32)
    }
}

/// Why a batch could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("llama_decode failed with {code} ({what})")]
pub struct DecodeError {
    /// llama.cpp's return code.
    pub code: i32,
    /// Its meaning.
    pub what: &'static str,
}

/// Evaluates `batch` in `context`.
pub fn decode(context: &Context, batch: &Batch) -> Result<(), DecodeError> {
    if batch.is_empty() {
        return Ok(());
    }
    // SAFETY: live context; the batch's arrays hold n_tokens valid entries.
    let rc = unsafe { sys::llama_decode(context.as_ptr(), batch.raw) };
    match rc {
        0 => Ok(()),
        1 => Err(DecodeError {
            code: rc,
            what: "no KV cache slot for the batch (context full)",
        }),
        2 => Err(DecodeError {
            code: rc,
            what: "aborted",
        }),
        -1 => Err(DecodeError {
            code: rc,
            what: "invalid batch",
        }),
        _ => Err(DecodeError {
            code: rc,
            what: "llama.cpp error",
        }),
    }
}

/// The KV cells of one sequence of a context.
#[derive(Debug, Clone, Copy)]
pub struct SequenceMemory<'a> {
    context: &'a Context,
    seq: i32,
}

impl<'a> SequenceMemory<'a> {
    /// Sequence `seq` of `context`.
    pub fn new(context: &'a Context, seq: i32) -> Self {
        SequenceMemory { context, seq }
    }

    fn memory(&self) -> sys::llama_memory_t {
        // SAFETY: live context; its memory lives as long as it.
        unsafe { sys::llama_get_memory(self.context.as_ptr()) }
    }

    /// Drops every cell of the sequence.
    pub fn clear(&self) {
        // SAFETY: live memory; removing a whole sequence always succeeds.
        unsafe { sys::llama_memory_seq_rm(self.memory(), self.seq, -1, -1) };
    }

    /// Drops the cells at positions `from..`; false when llama.cpp cannot cut the
    /// sequence there (a recurrent state cannot be cut), in which case nothing changed.
    pub fn truncate(&self, from: i32) -> bool {
        // SAFETY: live memory.
        unsafe { sys::llama_memory_seq_rm(self.memory(), self.seq, from, -1) }
    }

    /// The smallest position held (-1 when empty). A sliding-window cache forgets old
    /// positions: a kept prefix is only usable when its last `n_swa` positions remain.
    pub fn pos_min(&self) -> i32 {
        // SAFETY: live memory.
        unsafe { sys::llama_memory_seq_pos_min(self.memory(), self.seq) }
    }
}
