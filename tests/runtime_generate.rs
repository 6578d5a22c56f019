//! The runtime end to end on the real Gemma 3 270M, on the CPU: `plan_and_load` and a
//! `Session` against llama.cpp's own decode loop.
//!
//! The reference (`reference_greedy`, C++ in the shim against `llama.h` only, the steps
//! of llama.cpp's `examples/simple`) loads the model afresh with the same model and
//! context parameters as the plan (context, batches, threads, flash attention, KV types,
//! load mode). With greedy sampling both must produce exactly the same token ids: the
//! same arithmetic runs on the same thread count, so no tolerance is needed.

use crate::support;

use support::{gemma_session, PROMPTS};

use std::ops::ControlFlow;
use strix_run::planner::Request;
use strix_run::runtime::actual::{reference_greedy, ReferenceParams};
use strix_run::runtime::context::ContextSettings;
use strix_run::runtime::load::{plan_and_load, LoadOptions};
use strix_run::runtime::session::{
    ChatMessage, GenerateOptions, SamplingOptions, Session, StopReason, TemplateSource,
};

fn reference_params(s: &ContextSettings, use_mmap: bool) -> ReferenceParams {
    ReferenceParams {
        n_gpu_layers: 0,
        use_mmap,
        n_ctx: s.n_ctx,
        n_batch: s.n_batch,
        n_ubatch: s.n_ubatch,
        n_threads: s.n_threads,
        n_threads_batch: s.n_threads_batch,
        flash_attn: s.flash_attn,
        type_k: s.type_k,
        type_v: s.type_v,
        offload_kqv: s.offload_kqv,
        swa_full: s.swa_full,
    }
}

#[test]
fn gemma_generates_like_llama_cpp() {
    let mut session = gemma_session();
    let loaded = session.loaded();
    let plan = loaded.plan.clone();
    eprintln!(
        "plan: {}; loaded in {:.2} s",
        strix_run::runtime::load::plan_summary(&plan),
        loaded.load_seconds
    );
    assert_eq!(plan.backend.to_string(), "cpu");
    assert!(loaded.attempts.is_empty());
    let settings = *loaded.context().settings();
    assert_eq!(loaded.context().n_ctx(), 1024);
    assert_eq!(loaded.context().n_threads(), 2);

    // Planned vs allocated, per side.
    support::print_memory("gemma", loaded);
    let host = loaded.actual.host();
    let cmp = loaded.memory_comparison();
    let host_cmp = cmp.iter().find(|c| c.side == "host").expect("host side");
    let tensors = loaded.tensor_buffer_types().expect("tensors");
    // With mmap the mapping may include the GGUF's alignment padding (<= 32 B a tensor).
    assert!(
        host_cmp.actual_weights >= host_cmp.planned_weights
            && host_cmp.actual_weights - host_cmp.planned_weights <= 32 * tensors.len() as u64,
        "weights"
    );
    let tensor_bytes: u64 = tensors.iter().map(|t| t.bytes).sum();
    assert_eq!(
        tensor_bytes, plan.memory.breakdown.host.weights,
        "tensor bytes"
    );
    assert_eq!(
        host.context,
        plan.memory.breakdown.host.context(),
        "KV cache"
    );
    assert!(host.compute > 0);

    // Greedy ids against llama.cpp's own loop.
    let reference = reference_params(&settings, plan.use_mmap);
    const N: u32 = 24;
    for prompt in PROMPTS {
        let theirs = reference_greedy(&support::gemma_path(), &reference, prompt, N)
            .expect("llama.cpp reference");
        let ours_prompt = session.tokenize(prompt, true, true).expect("tokenize");
        assert_eq!(
            ours_prompt, theirs.prompt_tokens,
            "prompt tokens of {prompt:?}"
        );
        let ours = session
            .generate_tokens_greedy(&ours_prompt, N as usize)
            .expect("generate");
        eprintln!("{prompt:?} -> {:?} {:?}", ours, session.detokenize(&ours));
        assert!(!ours.is_empty());
        assert_eq!(ours, theirs.tokens, "greedy ids for {prompt:?}");

        // The text path (generate) samples the same ids.
        let mut streamed = String::new();
        let stats = session
            .generate(
                prompt,
                &GenerateOptions {
                    max_tokens: N,
                    sampling: SamplingOptions::greedy(),
                    stop: Vec::new(),
                },
                &mut |t| {
                    streamed.push_str(t);
                    ControlFlow::Continue(())
                },
            )
            .expect("generate");
        assert_eq!(stats.token_ids, theirs.tokens);
        assert_eq!(stats.text, streamed);
        assert_eq!(stats.prompt_tokens, ours_prompt.len());
        assert!(stats.prompt_seconds > 0.0 && stats.generation_seconds > 0.0);
        assert!(stats.pp_tok_s > 0.0 && stats.tg_tok_s > 0.0);
        eprintln!(
            "  pp {:.1} tok/s ({} tokens), tg {:.1} tok/s ({} tokens), {:?}",
            stats.pp_tok_s,
            stats.prompt_tokens,
            stats.tg_tok_s,
            stats.generated_tokens,
            stats.stop_reason
        );
    }
}

#[test]
fn gemma_stops_and_chats() {
    let mut session = gemma_session();
    let greedy = |max_tokens: u32, stop: Vec<String>| GenerateOptions {
        max_tokens,
        sampling: SamplingOptions::greedy(),
        stop,
    };
    let prompt = PROMPTS[0];

    // max_tokens
    let stats = session
        .generate(prompt, &greedy(5, Vec::new()), &mut |_| {
            ControlFlow::Continue(())
        })
        .expect("generate");
    assert_eq!(stats.generated_tokens, 5);
    assert_eq!(stats.stop_reason, StopReason::MaxTokens);
    let full = stats.text.clone();
    assert!(!full.trim().is_empty(), "{full:?}");

    // A stop string taken from the middle of the greedy output stops there.
    let longer = session
        .generate(prompt, &greedy(16, Vec::new()), &mut |_| {
            ControlFlow::Continue(())
        })
        .expect("generate");
    let words: Vec<&str> = longer.text.split_whitespace().collect();
    assert!(words.len() >= 3, "{:?}", longer.text);
    let stop = words[2].to_owned();
    let mut streamed = String::new();
    let stats = session
        .generate(prompt, &greedy(16, vec![stop.clone()]), &mut |t| {
            streamed.push_str(t);
            ControlFlow::Continue(())
        })
        .expect("generate");
    assert_eq!(stats.stop_reason, StopReason::StopString(stop.clone()));
    assert!(!streamed.contains(&stop), "{streamed:?} contains {stop:?}");
    assert!(longer.text.starts_with(&streamed), "{streamed:?}");
    assert!(stats.generated_tokens < longer.generated_tokens);

    // The callback cancels.
    let mut calls = 0;
    let stats = session
        .generate(prompt, &greedy(16, Vec::new()), &mut |_| {
            calls += 1;
            if calls == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .expect("generate");
    assert_eq!(stats.stop_reason, StopReason::Cancelled);
    assert_eq!(stats.generated_tokens, 3);

    // Gemma's chat format. This GGUF carries no `tokenizer.chat_template`, so it is
    // llama.cpp's built-in `gemma` template, chosen by architecture.
    assert!(session.loaded().model().chat_template().is_none());
    let messages = [ChatMessage::new("user", "Say hello.")];
    let formatted = session.format_chat(&messages).expect("template");
    assert_eq!(
        formatted.template,
        TemplateSource::Builtin("gemma".to_owned())
    );
    assert!(
        formatted
            .text
            .contains("<start_of_turn>user\nSay hello.<end_of_turn>"),
        "{:?}",
        formatted.text
    );
    assert!(formatted.text.ends_with("<start_of_turn>model\n"));
    let tokens = session
        .tokenize(&formatted.text, true, true)
        .expect("tokenize");
    // One BOS, then <start_of_turn> as a single special token.
    let bos_count = tokens.iter().filter(|&&t| t == tokens[0]).count();
    assert_eq!(bos_count, 1);
    let stats = session
        .chat(&messages, &greedy(32, Vec::new()), &mut |_| {
            ControlFlow::Continue(())
        })
        .expect("chat");
    assert_eq!(stats.prompt_tokens, tokens.len());
    assert!(stats.generated_tokens > 0);
    eprintln!("chat: {:?} ({:?})", stats.text, stats.stop_reason);
}

/// Gemma rewritten with a `tokenizer.chat_template` of its own (Qwen's ChatML Jinja
/// template, as Qwen GGUFs carry it): the model's template wins over the architecture's
/// built-in one. The expected text is ChatML's published format, written out by hand.
#[test]
fn model_chat_template_is_used() {
    use std::io::{Read, Seek, SeekFrom};
    use strix_run::gguf::{read_file, GgufValue, GgufWriter, TensorData};

    const CHATML_JINJA: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    let src = support::gemma_path();
    let (header, _) = read_file(&src).expect("read Gemma");
    let mut w = GgufWriter::new();
    for (key, value) in &header.metadata {
        w.set(key.clone(), value.clone());
    }
    w.set(
        "tokenizer.chat_template",
        GgufValue::String(CHATML_JINJA.to_owned()),
    );
    for t in &header.tensors {
        w.add_tensor(&t.name, t.ggml_type, &t.shape)
            .expect("tensor");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("gemma-chatml.gguf");
    let mut file = std::fs::File::open(&src).expect("open Gemma");
    let originals: std::collections::HashMap<&str, u64> = header
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), header.data_offset + t.offset))
        .collect();
    let mut fill = |t: &strix_run::gguf::TensorInfo, offset: u64, chunk: &mut [u8]| {
        file.seek(SeekFrom::Start(originals[t.name.as_str()] + offset))
            .expect("seek");
        file.read_exact(chunk).expect("read tensor data");
    };
    w.write(&copy, TensorData::Fill(&mut fill))
        .expect("write copy");

    let request = Request {
        n_ctx: Some(512),
        ..Request::default()
    };
    let mut opts = LoadOptions::new(request, support::detected_hardware());
    opts.progress = false;
    let mut session = Session::new(plan_and_load(&copy, &opts).expect("copy loads"));
    assert_eq!(
        session.loaded().model().chat_template().as_deref(),
        Some(CHATML_JINJA)
    );
    let messages = [
        ChatMessage::new("system", "Be brief."),
        ChatMessage::new("user", "Say hello."),
    ];
    let formatted = session.format_chat(&messages).expect("template");
    assert_eq!(formatted.template, TemplateSource::Model);
    assert_eq!(
        formatted.text,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n"
    );
    // And it generates from it.
    let stats = session
        .chat(
            &messages,
            &GenerateOptions {
                max_tokens: 4,
                sampling: SamplingOptions::greedy(),
                stop: Vec::new(),
            },
            &mut |_| ControlFlow::Continue(()),
        )
        .expect("chat");
    assert!(stats.generated_tokens > 0);
}
