//! `strix-run serve --model MODEL`: plan, load exactly the plan, and serve it over
//! OpenAI- and Anthropic-compatible HTTP APIs until SIGINT/SIGTERM.

use super::args::{ModelChoice, Parallel, PlanningArgs};
use anyhow::bail;
use strix_run::planner::serving::{choose_slots, plan_slots};

/// Default context tokens per slot.
const DEFAULT_SLOT_CTX: u32 = 4096;
/// Default slots.
const DEFAULT_SLOTS: u32 = 4;

/// The serve arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
--ctx is the context of ONE slot (one conversation): the plan budgets KV for --parallel slots \
of --ctx tokens each (llama-server's -c is the total, divided among slots).

Clients: OpenAI's (base URL http://HOST:PORT/v1) and Anthropic's (base URL http://HOST:PORT).")]
pub struct ServeArgs {
    /// The model: a .gguf path, an alias (8b, 32b, 235b, 397b, gemma3-270m, a preset
    /// name) or a fragment of a model's name.
    #[arg(long, short = 'm')]
    pub model: String,
    /// Address to listen on (loopback by default; another address exposes the model to
    /// the network: set --api-key).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0: any free port, printed when listening).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Require this key on every /v1 route (`Authorization: Bearer KEY` or `x-api-key`).
    #[arg(long, env = "STRIX_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Requests that may wait for a free slot; more get 503 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Largest request body in bytes (larger ones get 413).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_body: usize,
    /// Allow browser requests from this origin (CORS); none by default.
    #[arg(long, value_name = "ORIGIN")]
    pub cors: Option<String>,
    /// After SIGINT/SIGTERM, seconds running requests may take before the server exits.
    #[arg(long, default_value_t = 30)]
    pub shutdown_timeout: u64,
    /// Give a request the same answer whether it runs alone or beside others: turns off
    /// llama.cpp's CPU weight repacking, whose multi-row kernels sum in another order
    /// (prompts run slower on the CPU). A reused prompt prefix also changes the last
    /// bits: requests that must repeat exactly send `"cache_prompt": false`.
    #[arg(long)]
    pub deterministic: bool,
    #[command(flatten)]
    pub planning: PlanningArgs,
}

/// The model's id in the APIs: the file name without `.gguf` (and without the
/// `-00001-of-0000N` of a split model).
#[cfg_attr(not(feature = "runtime"), allow(dead_code))]
fn model_id(path: &std::path::Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let stem = name.strip_suffix(".gguf").unwrap_or(&name);
    match stem.rfind("-00001-of-") {
        Some(at) => stem[..at].to_owned(),
        None => stem.to_owned(),
    }
}

/// Runs the server.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let mut planning = args.planning.resolve()?;
    let meta = match planning.find_model(&args.model, false)? {
        ModelChoice::Here(found) => found.meta,
        ModelChoice::ShapeOnly { alias, .. } => {
            bail!("'{alias}' is not on this machine: `strix-run plan --model {alias}` shows how it would run, `strix-run models` lists what is here")
        }
    };
    if args.queue == 0 {
        bail!("--queue 0 would refuse every request while the slots are busy: give at least 1");
    }
    // --ctx is per slot here: the plan budgets every slot's context.
    let mut slot_ctx = args.planning.plan.ctx.unwrap_or(DEFAULT_SLOT_CTX);
    if meta.n_ctx_train > 0 && args.planning.plan.ctx.is_none() {
        slot_ctx = slot_ctx.min(u32::try_from(meta.n_ctx_train).unwrap_or(u32::MAX));
    }
    let plan = match args.planning.plan.parallel {
        Some(Parallel::Auto) => {
            let choice = choose_slots(&meta, &planning.hw, &planning.request, slot_ctx)?;
            for o in &choice.considered {
                match (o.aggregate_tg_tok_s, o.per_stream_tg_tok_s) {
                    (Some(a), Some(p)) => eprintln!(
                        "--parallel auto: {:>2} slots: {a:.1} tok/s together, {p:.1} each: {}",
                        o.slots, o.verdict
                    ),
                    _ => eprintln!("--parallel auto: {:>2} slots: {}", o.slots, o.verdict),
                }
            }
            choice.plan
        }
        Some(Parallel::Count(n)) => {
            plan_slots(&meta, &planning.hw, &planning.request, n, slot_ctx)?
        }
        None => plan_slots(
            &meta,
            &planning.hw,
            &planning.request,
            DEFAULT_SLOTS,
            slot_ctx,
        )?,
    };
    planning.request.n_seq = Some(plan.n_seq);
    planning.request.n_ctx = Some(plan.n_ctx_requested);
    let loopback = matches!(args.host.as_str(), "127.0.0.1" | "::1" | "localhost");
    if !loopback && args.api_key.is_none() {
        eprintln!(
            "warning: listening on {} without --api-key: anyone who can reach this machine can use the model (and its compute); set --api-key or STRIX_API_KEY",
            args.host
        );
    }
    engine::serve(args, planning, meta, plan)
}

#[cfg(feature = "runtime")]
mod engine {
    use super::*;
    use crate::cli::args::Planning;
    use crate::cli::output::outln;
    use crate::cli::plan::print_plan;
    use anyhow::Context;
    use std::sync::Arc;
    use std::time::Duration;
    use strix_run::model::ModelMeta;
    use strix_run::planner::Plan;
    use strix_run::runtime::load::{load, plan_summary, LoadOptions};
    use strix_run::server::engine::{Engine, EngineConfig};
    use strix_run::server::{router, serve as serve_http, AppState, ServerConfig};

    /// SIGINT or SIGTERM.
    async fn stop_signal() {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = ctrl_c => {},
            () = term => {},
        }
        eprintln!("strix-run serve: stopping (no new connections; running requests may finish)");
    }

    pub fn serve(
        args: &ServeArgs,
        planning: Planning,
        meta: ModelMeta,
        plan: Plan,
    ) -> anyhow::Result<()> {
        let model_id = super::model_id(&meta.path);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let address = format!("{}:{}", args.host, args.port);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(&address))
            .with_context(|| format!("cannot listen on {address}"))?;
        let local = listener.local_addr().context("the listening address")?;
        let meta_json = serde_json::json!({
            "name": meta.name, "arch": meta.arch, "file_type": meta.file_type_name,
            "n_ctx_slot": plan.n_ctx / plan.n_seq.max(1), "slots": plan.n_seq,
        });
        let state = Arc::new(AppState::new(
            model_id.clone(),
            meta_json,
            args.api_key.clone(),
        ));
        let config = ServerConfig {
            api_key: args.api_key.clone(),
            max_body: args.max_body,
            cors_origin: args.cors.clone(),
            shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        };
        let host = if local.is_ipv6() {
            format!("[{}]", local.ip())
        } else {
            local.ip().to_string()
        };
        outln!(
            "strix-run serve: listening on http://{host}:{} (loading {model_id})",
            local.port()
        );
        crate::cli::output::flush()?;
        let app = router(state.clone(), &config);
        let server = runtime.spawn(serve_http(
            listener,
            app,
            stop_signal(),
            config.shutdown_timeout,
        ));

        // Load while /health says 503.
        print_plan(&meta, &planning.hw, &plan)?;
        let path = meta.path.clone();
        let mut opts = LoadOptions::new(planning.request.clone(), planning.hw.clone());
        opts.weights.repack_cpu_weights = !args.deterministic;
        let loaded = match load(meta, plan, &opts) {
            Ok(l) => l,
            Err(e) => {
                server.abort();
                return Err(anyhow::Error::from(e).context(format!("loading {}", path.display())));
            }
        };
        for a in &loaded.attempts {
            eprintln!(
                "note: attempt {} failed and was stepped down: {a:?}",
                a.number
            );
        }
        let summary = plan_summary(&loaded.plan);
        let n_slots = loaded.plan.n_seq.max(1);
        let slot_ctx = loaded.context().n_ctx() / n_slots;
        let load_seconds = loaded.load_seconds;
        let memory = loaded.memory_comparison();
        let (engine, engine_thread) = Engine::start(loaded, EngineConfig { queue: args.queue })
            .map_err(|e| anyhow::anyhow!("starting the engine: {e}"))?;
        state.set_engine(engine, memory);
        outln!(
            "strix-run serve: ready · {model_id} · {summary} · {n_slots} slots × {slot_ctx} tokens · loaded in {load_seconds:.1} s"
        );
        outln!(
            "  OpenAI:    base_url http://{host}:{}/v1   Anthropic: base_url http://{host}:{}",
            local.port(),
            local.port()
        );
        crate::cli::output::flush()?;
        let finished = runtime
            .block_on(server)
            .context("the server task")?
            .context("serving")?;
        // The state (and with it the engine's queue) goes: the engine finishes its
        // running requests and ends.
        drop(state);
        if !finished {
            eprintln!(
                "strix-run serve: requests still running after --shutdown-timeout {} s were cut",
                args.shutdown_timeout
            );
        }
        runtime.shutdown_timeout(Duration::from_secs(1));
        let _ = engine_thread.join();
        eprintln!("strix-run serve: stopped");
        Ok(())
    }
}

#[cfg(not(feature = "runtime"))]
mod engine {
    use super::*;

    pub fn serve(
        _: &ServeArgs,
        _: crate::cli::args::Planning,
        _: strix_run::model::ModelMeta,
        _: strix_run::planner::Plan,
    ) -> anyhow::Result<()> {
        bail!("this strix-run was built without llama.cpp (--no-default-features): it cannot serve models")
    }
}

#[cfg(test)]
mod tests {
    use super::model_id;
    use std::path::Path;

    #[test]
    fn model_ids_are_file_names_without_the_shard_suffix() {
        assert_eq!(
            model_id(Path::new("models/gemma-3-270m-q4_k_m.gguf")),
            "gemma-3-270m-q4_k_m"
        );
        assert_eq!(
            model_id(Path::new("/m/qwen3.5-397b-00001-of-00004.gguf")),
            "qwen3.5-397b"
        );
        assert_eq!(model_id(Path::new("blob")), "blob");
    }
}
