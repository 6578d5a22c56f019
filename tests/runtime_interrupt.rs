//! Ctrl-C semantics: `session::INTERRUPT` stops a generation, also in the middle of
//! evaluating a long prompt (through llama.cpp's abort callback). In the `serial` test
//! binary (`tests/serial.rs`), because the flag is process-wide.

use crate::support;

use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use strix_run::planner::{Pinned, Request};
use strix_run::runtime::load::{plan_and_load, LoadOptions};
use strix_run::runtime::session::{
    GenerateOptions, SamplingOptions, Session, StopReason, INTERRUPT,
};

fn session() -> Session {
    let request = Request {
        n_ctx: Some(2048),
        pinned: Pinned {
            threads: Some(1),
            ..Pinned::default()
        },
        ..Request::default()
    };
    let hw =
        strix_run::hardware::resolve(&Default::default(), &Default::default()).expect("detection");
    let mut opts = LoadOptions::new(request, hw);
    opts.progress = false;
    Session::new(plan_and_load(&support::gemma_path(), &opts).expect("Gemma loads"))
}

#[test]
fn interrupt_stops_prompt_evaluation_and_generation() {
    let _one = crate::one_at_a_time();
    let mut s = session();
    let opts = GenerateOptions {
        max_tokens: 64,
        sampling: SamplingOptions::greedy(),
        stop: Vec::new(),
    };
    // A long prompt (~1800 tokens) takes seconds on one thread; interrupt after 100 ms.
    let prompt = "The quick brown fox jumps over the lazy dog. ".repeat(180);
    let uninterrupted = {
        let started = Instant::now();
        let stats = s
            .generate(
                &prompt,
                &GenerateOptions {
                    max_tokens: 1,
                    ..opts.clone()
                },
                &mut |_| ControlFlow::Continue(()),
            )
            .expect("generates");
        assert!(stats.prompt_tokens > 1000, "{}", stats.prompt_tokens);
        started.elapsed()
    };
    assert!(
        uninterrupted > Duration::from_millis(500),
        "prompt too fast to interrupt: {uninterrupted:?}"
    );
    let setter = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(100));
        INTERRUPT.store(true, Ordering::SeqCst);
    });
    let started = Instant::now();
    let stats = s
        .generate(&prompt, &opts, &mut |_| ControlFlow::Continue(()))
        .expect("no error");
    let took = started.elapsed();
    setter.join().expect("setter");
    assert_eq!(stats.stop_reason, StopReason::Cancelled);
    assert_eq!(stats.generated_tokens, 0);
    assert!(
        took < uninterrupted / 2,
        "aborted after {took:?}, a full prompt takes {uninterrupted:?}"
    );

    // Set during generation (from the token callback): stops after that token.
    let mut seen = 0;
    let stats = s
        .generate("Once upon a time", &opts, &mut |_| {
            seen += 1;
            if seen == 3 {
                INTERRUPT.store(true, Ordering::SeqCst);
            }
            ControlFlow::Continue(())
        })
        .expect("generates");
    assert_eq!(stats.stop_reason, StopReason::Cancelled);
    assert_eq!(stats.generated_tokens, 3);
}
