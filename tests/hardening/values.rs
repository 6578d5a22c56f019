//! Values that mean nothing are refused with their range; the context shown is the one
//! llama.cpp makes.

use super::common::*;

#[cfg(feature = "runtime")]
#[test]
fn impossible_sampling_values_are_refused_before_loading() {
    let gemma = gemma();
    for (flag, value, range) in [
        (
            "--temp",
            "-1",
            "temp -1 is impossible: it must be a number of at least 0",
        ),
        ("--temp", "NaN", "temp NaN is impossible"),
        ("--temp", "inf", "temp inf is impossible"),
        (
            "--top-p",
            "2",
            "top-p 2 is impossible: it must be between 0 and 1",
        ),
        (
            "--min-p",
            "5",
            "min-p 5 is impossible: it must be between 0 and 1",
        ),
        (
            "--repeat-penalty",
            "0",
            "repeat-penalty 0 is impossible: it must be a number above 0",
        ),
        (
            "--top-k",
            "-3",
            "top-k -3 is impossible: it must be at least 0",
        ),
    ] {
        let o = run_bounded(
            strix().args(["--model"]).arg(&gemma).args([
                "-p",
                "hi",
                "-n",
                "4",
                &format!("{flag}={value}"),
            ]),
            QUICK,
        );
        o.refused(range);
        assert!(
            !o.stderr.contains("loaded in"),
            "loaded first: {}",
            o.stderr
        );
    }
}

fn plan_json(args: &[&str]) -> serde_json::Value {
    let gemma = gemma();
    let o = run_bounded(
        strix()
            .args(["plan", "--json", "--hw", "strix-halo-128", "--model"])
            .arg(&gemma)
            .args(args),
        QUICK,
    );
    assert_eq!(o.code(), 0, "{o:?}");
    serde_json::from_str(&o.stdout).expect("JSON")
}

#[test]
fn the_plan_shows_and_budgets_the_context_llama_cpp_makes() {
    // llama.cpp pads the context to 256 per sequence (src/llama-context.cpp).
    for (ctx, parallel, made) in [
        ("1", "1", 256),
        ("300", "1", 512),
        ("4096", "1", 4096),
        ("4096", "3", 3 * 1536),
    ] {
        let v = plan_json(&["--ctx", ctx, "--parallel", parallel]);
        assert_eq!(v["n_ctx"], made, "ctx {ctx} x{parallel}: {v}");
        assert_eq!(v["n_ctx_requested"].to_string(), ctx);
        let said = v["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("pads the context")));
        assert_eq!(said, ctx.parse::<u32>().ok() != Some(made), "{v}");
    }
    // The human plan shows both.
    let gemma = gemma();
    let o = run_bounded(
        strix()
            .args(["plan", "--hw", "strix-halo-128", "--ctx", "1", "--model"])
            .arg(&gemma),
        QUICK,
    );
    assert!(o.stdout.contains("ctx 256 (asked 1)"), "{}", o.stdout);
}

/// llama.cpp as the oracle: the context it made is the one planned.
#[cfg(feature = "runtime")]
#[test]
fn the_planned_context_is_the_one_llama_cpp_makes() {
    use strix_run::planner::{Pinned, Request};
    use strix_run::runtime::load::{plan_and_load, LoadOptions};
    let hw =
        strix_run::hardware::resolve(&Default::default(), &Default::default()).expect("detection");
    for (ctx, seq) in [(1, 1), (300, 1), (1000, 3)] {
        let request = Request {
            n_ctx: Some(ctx),
            n_seq: Some(seq),
            pinned: Pinned {
                threads: Some(1),
                ..Pinned::default()
            },
            ..Request::default()
        };
        let mut opts = LoadOptions::new(request, hw.clone());
        opts.progress = false;
        let loaded = plan_and_load(&gemma(), &opts).expect("Gemma loads");
        assert_eq!(
            loaded.context().n_ctx(),
            loaded.plan.n_ctx,
            "ctx {ctx} x{seq}: llama.cpp made {}, planned {}",
            loaded.context().n_ctx(),
            loaded.plan.n_ctx
        );
    }
}

/// A prompt that fits the context llama.cpp makes for `--ctx 1` (256) runs.
#[cfg(feature = "runtime")]
#[test]
fn a_prompt_runs_in_the_padded_context() {
    let gemma = gemma();
    let prompt = "one two three four five six seven eight nine ten ".repeat(10);
    let o = run_bounded(
        strix().args(["--model"]).arg(&gemma).args([
            "--ctx", "1", "-n", "4", "--temp", "0", "--json", "-p", &prompt,
        ]),
        std::time::Duration::from_secs(120),
    );
    assert_eq!(o.code(), 0, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("JSON");
    assert_eq!(v["plan"]["n_ctx"], 256);
    assert!(
        v["stats"]["prompt_tokens"].as_u64().expect("tokens") > 100,
        "{v}"
    );
    assert_eq!(v["stats"]["generated_tokens"], 4, "{v}");
}
