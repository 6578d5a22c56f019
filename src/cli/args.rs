//! The arguments several commands share, defined once and resolved once: where models
//! are (`--models-dir`), the machine (`--hw`, `--hw-profile` and the what-if flags), the
//! planner's pins, and [`Planning`], what a planning command resolves them into. The
//! library knows nothing of the command line: these turn flags into its types.

use std::path::PathBuf;
use strix_run::discovery::{resolve, whatif, DiscoveryConfig, FoundModel, Resolved, SearchedRoot};
use strix_run::hardware::{
    Backend, Hardware, HardwareOverrides, KernelVersion, Os, RuntimeFlavor, RuntimeVersion,
};
use strix_run::model::presets::Preset;
use strix_run::model::ModelMeta;
use strix_run::planner::calibration::SpeedSource;
use strix_run::planner::emit::EmitTarget;
use strix_run::planner::{KvType, Objective, Pinned, Request};

/// What to optimise (the planner's [`Objective`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectiveArg {
    /// Generated tokens per second (chat, writing).
    Generate,
    /// Prompt tokens per second (classification and routing agents that read long
    /// prompts and write little).
    Prompt,
}

impl From<ObjectiveArg> for Objective {
    fn from(o: ObjectiveArg) -> Objective {
        match o {
            ObjectiveArg::Generate => Objective::Generate,
            ObjectiveArg::Prompt => Objective::Prompt,
        }
    }
}

/// Which llama.cpp tool `--emit` writes arguments for ([`EmitTarget`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmitArg {
    /// `llama-server` / `llama-cli` (common arguments).
    LlamaServer,
    /// `llama-bench`.
    LlamaBench,
}

impl From<EmitArg> for EmitTarget {
    fn from(e: EmitArg) -> EmitTarget {
        match e {
            EmitArg::LlamaServer => EmitTarget::LlamaServer,
            EmitArg::LlamaBench => EmitTarget::LlamaBench,
        }
    }
}

/// The machine flags: what the user says about the machine, each overriding detection
/// (or the preset / profile). Sizes accept "2GiB", "512MB", "1.5GiB" or bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct MachineArgs {
    /// Describe a named machine instead of this one (strix-halo-128,
    /// strix-halo-128-win, strix-halo-64, rtx-4090, rtx-3090, h100-80).
    #[arg(long = "hw", value_name = "PRESET", conflicts_with = "hw_profile")]
    pub preset: Option<String>,
    /// Describe the machine saved in this JSON profile instead of this one.
    #[arg(long = "hw-profile", value_name = "FILE")]
    pub hw_profile: Option<PathBuf>,
    /// Operating system: linux, windows, macos, other.
    #[arg(long, value_name = "OS")]
    pub os: Option<Os>,
    /// The backends you have, comma separated: cpu, vulkan, hip (rocm), cuda. Replaces
    /// the detected list.
    #[arg(long = "backend", value_name = "LIST", value_delimiter = ',')]
    pub backends: Option<Vec<Backend>>,
    /// ROCm / HIP SDK / CUDA version (MAJOR.MINOR, e.g. 7.2) of the HIP and CUDA backends.
    #[arg(long, value_name = "MAJOR.MINOR")]
    pub runtime: Option<RuntimeVersion>,
    /// Who built the HIP runtime: llama-cpp (HIP SDK / ROCm) or ollama (bundled ROCm).
    #[arg(long = "hip-flavor", value_name = "FLAVOR")]
    pub hip_flavor: Option<RuntimeFlavor>,
    /// BIOS UMA frame buffer (carveout) of the iGPU, e.g. 512MiB, 2GiB, 96GiB.
    #[arg(long, value_name = "SIZE", value_parser = strix_run::hardware::parse_size)]
    pub carveout: Option<u64>,
    /// Physical RAM installed, carveout included, e.g. 128GiB.
    #[arg(long, value_name = "SIZE", value_parser = strix_run::hardware::parse_size)]
    pub ram: Option<u64>,
    /// Linux `ttm.pages_limit` in 4 KiB pages (30146560 = 115 GiB); sets the GTT.
    #[arg(long = "ttm-pages-limit", value_name = "PAGES")]
    pub ttm_pages_limit: Option<u64>,
    /// Linux GTT size, e.g. 115GiB (wins over --ttm-pages-limit for the GTT).
    #[arg(long, value_name = "SIZE", value_parser = strix_run::hardware::parse_size)]
    pub gtt: Option<u64>,
    /// Memory of the main GPU: dedicated VRAM, or the carveout of an iGPU.
    #[arg(long = "gpu-mem", value_name = "SIZE", value_parser = strix_run::hardware::parse_size)]
    pub gpu_mem: Option<u64>,
    /// Physical CPU cores.
    #[arg(long, value_name = "N")]
    pub cores: Option<u32>,
    /// Hardware threads of the CPU (SMT included). Not the threads the planner uses.
    #[arg(long = "cpu-threads", value_name = "N")]
    pub cpu_threads: Option<u32>,
    /// Kernel version, e.g. 6.18.4.
    #[arg(long, value_name = "VERSION")]
    pub kernel: Option<KernelVersion>,
}

impl MachineArgs {
    /// The library's description of the same overrides.
    pub fn overrides(&self) -> HardwareOverrides {
        HardwareOverrides {
            preset: self.preset.clone(),
            hw_profile: self.hw_profile.clone(),
            os: self.os,
            backends: self.backends.clone(),
            runtime: self.runtime,
            hip_flavor: self.hip_flavor,
            carveout: self.carveout,
            ram: self.ram,
            ttm_pages_limit: self.ttm_pages_limit,
            gtt: self.gtt,
            gpu_mem: self.gpu_mem,
            cores: self.cores,
            cpu_threads: self.cpu_threads,
            kernel: self.kernel,
        }
    }
}

/// On or off, for flags that take one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// on
    On,
    /// off
    Off,
}

impl Switch {
    fn on(self) -> bool {
        self == Switch::On
    }
}

/// `--parallel`: a count, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parallel {
    /// This many sequences.
    Count(u32),
    /// Let the planner choose (serve).
    Auto,
}

fn parse_parallel(s: &str) -> Result<Parallel, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(Parallel::Auto);
    }
    s.parse::<u32>()
        .map(Parallel::Count)
        .map_err(|_| format!("'{s}' is not a number of sequences or `auto`"))
}

impl PlanFlags {
    /// Refuses `--parallel auto` outside `serve`.
    pub fn refuse_auto_parallel(&self) -> anyhow::Result<()> {
        if self.parallel == Some(Parallel::Auto) {
            anyhow::bail!("--parallel auto chooses a server's slots: use it with `strix-run serve` (here give a number)");
        }
        Ok(())
    }
}

/// Planner inputs shared by `plan` and the run commands: the request and the pins.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanFlags {
    /// What to optimise.
    #[arg(long, value_enum, default_value_t = ObjectiveArg::Generate)]
    pub objective: ObjectiveArg,
    /// Context length wanted (default 4096, or the model's training context if smaller);
    /// for `serve`, the context of each slot.
    #[arg(long)]
    pub ctx: Option<u32>,
    /// Parallel sequences (slots); `auto` (serve only): the count with the most
    /// predicted throughput that keeps one stream at half its single-stream speed.
    #[arg(long, value_parser = parse_parallel)]
    pub parallel: Option<Parallel>,
    /// Pin n_gpu_layers (counting the output layer, like llama.cpp).
    #[arg(long)]
    pub ngl: Option<u32>,
    /// Pin how many blocks keep their routed experts on the CPU.
    #[arg(long = "n-cpu-moe")]
    pub n_cpu_moe: Option<u32>,
    /// Pin generation threads.
    #[arg(long)]
    pub threads: Option<u32>,
    /// Pin prompt-processing threads.
    #[arg(long = "threads-batch")]
    pub threads_batch: Option<u32>,
    /// Pin the logical batch.
    #[arg(long)]
    pub batch: Option<u32>,
    /// Pin the physical batch.
    #[arg(long)]
    pub ubatch: Option<u32>,
    /// Pin the K cache type (f16, q8_0, q4_0).
    #[arg(long = "cache-type-k")]
    pub cache_type_k: Option<KvType>,
    /// Pin the V cache type (f16, q8_0, q4_0).
    #[arg(long = "cache-type-v")]
    pub cache_type_v: Option<KvType>,
    /// Pin flash attention.
    #[arg(long = "flash-attn", value_enum)]
    pub flash_attn: Option<Switch>,
    /// Pin mmap loading.
    #[arg(long, value_enum)]
    pub mmap: Option<Switch>,
    /// RAM to keep back for the OS and display (default 4GiB).
    #[arg(long = "os-reserve", value_parser = strix_run::hardware::parse_size)]
    pub os_reserve: Option<u64>,
    /// GPU memory to keep free below the GPU budget for the backend's runtime,
    /// whatever the placement (default: 1 GiB; with CUDA 0.70 GiB plus a little per
    /// block left on the CPU, as measured on an H200). Raise it if a load runs out of
    /// GPU memory; lower it to pack the GPU tighter.
    #[arg(long = "gpu-reserve", value_parser = strix_run::hardware::parse_size)]
    pub gpu_reserve: Option<u64>,
    /// Ignore this machine's speed calibration (`strix-run bench` writes it): predict
    /// with the default constants, and record nothing.
    #[arg(long = "no-calibration")]
    pub no_calibration: bool,
}

impl PlanFlags {
    /// The planner request. A single `--backend` pins it; a list only says what exists.
    pub fn request(&self, hw_flags: &MachineArgs) -> Request {
        let backend = match hw_flags.backends.as_deref() {
            Some([one]) => Some(*one),
            _ => None,
        };
        Request {
            objective: self.objective.into(),
            n_ctx: self.ctx,
            n_seq: match self.parallel {
                Some(Parallel::Count(n)) => Some(n),
                Some(Parallel::Auto) | None => None,
            },
            pinned: Pinned {
                backend,
                n_gpu_layers: self.ngl,
                n_cpu_moe: self.n_cpu_moe,
                threads: self.threads,
                threads_batch: self.threads_batch,
                n_batch: self.batch,
                n_ubatch: self.ubatch,
                type_k: self.cache_type_k,
                type_v: self.cache_type_v,
                flash_attn: self.flash_attn.map(Switch::on),
                use_mmap: self.mmap.map(Switch::on),
            },
            os_reserve_bytes: self.os_reserve,
            gpu_reserve_bytes: self.gpu_reserve,
            speed: None,
        }
    }
}

/// Where to look for models, besides `$STRIX_MODELS`, `~/models` and the usual caches.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ModelsDirs {
    /// Also look for models here, before the default places (repeatable).
    #[arg(long = "models-dir", value_name = "DIR")]
    pub models_dirs: Vec<PathBuf>,
}

impl ModelsDirs {
    /// Discovery's configuration for these folders and the environment.
    pub fn discovery(&self) -> DiscoveryConfig {
        DiscoveryConfig::from_env(self.models_dirs.clone())
    }
}

/// The arguments of every command that plans a model: where models are, the machine,
/// and the planner's request and pins.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanningArgs {
    #[command(flatten)]
    pub models: ModelsDirs,
    #[command(flatten)]
    pub machine: MachineArgs,
    #[command(flatten)]
    pub plan: PlanFlags,
}

/// What a planning command resolved its arguments into, once: discovery, the machine,
/// and the request with this machine's speed constants.
#[derive(Debug, Clone)]
pub struct Planning {
    /// Where models are looked for.
    pub discovery: DiscoveryConfig,
    /// The machine planned for.
    pub hw: Hardware,
    /// The planner request (speed constants included).
    pub request: Request,
    /// Which speed constants, for the user.
    pub speed_source: SpeedSource,
}

impl PlanningArgs {
    /// Describes the machine and builds the request (reading the calibration once).
    pub fn resolve(&self) -> anyhow::Result<Planning> {
        let hw = super::machine::machine(&self.machine.overrides())?;
        let (speed, speed_source) = super::machine::speed(&hw, self.plan.no_calibration);
        let mut request = self.plan.request(&self.machine);
        request.speed = Some(speed);
        Ok(Planning {
            discovery: self.models.discovery(),
            hw,
            request,
            speed_source,
        })
    }
}

/// The model a command was asked for.
#[derive(Debug)]
pub enum ModelChoice {
    /// A file here, its header read (once) by discovery.
    Here(Box<FoundModel>),
    /// A known model that is not here: its real shape, to plan before downloading.
    ShapeOnly {
        /// What the user typed.
        alias: String,
        /// The preset with its shape.
        preset: &'static Preset,
        /// The summary a file of that shape would give.
        meta: Box<ModelMeta>,
        /// Where discovery looked.
        searched: Vec<SearchedRoot>,
    },
}

impl Planning {
    /// Finds `query` (a path, an alias or part of a name). Several matches: the first is
    /// taken, and unless `quiet` the others are named on stderr, the same way for every
    /// command.
    pub fn find_model(&self, query: &str, quiet: bool) -> anyhow::Result<ModelChoice> {
        match resolve(query, &self.discovery)? {
            Resolved::Local { model, candidates } => {
                if !candidates.is_empty() && !quiet {
                    eprintln!(
                        "using {} ({}); also found: {}",
                        model.path.display(),
                        model.source_label,
                        candidates
                            .iter()
                            .map(|c| c.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                Ok(ModelChoice::Here(model))
            }
            Resolved::KnownShapeOnly {
                alias,
                preset,
                searched,
            } => Ok(ModelChoice::ShapeOnly {
                meta: Box::new(whatif::preset_meta(preset)?),
                alias,
                preset,
                searched,
            }),
        }
    }
}

/// "looked in:" lines for a model that is not here.
pub fn searched_lines(searched: &[SearchedRoot]) -> Vec<String> {
    searched
        .iter()
        .map(|s| {
            format!(
                "{:22} {}{}",
                s.label,
                s.path.display(),
                if s.exists { "" } else { " (missing)" }
            )
        })
        .collect()
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
