//! The machine flags: command-line parsing, then the library's application, validation
//! and `resolve` of what they say.

use clap::Parser;

use super::MachineArgs;
use strix_run::hardware::size::GIB;
use strix_run::hardware::{
    resolve, Backend, DetectConfig, Hardware, HardwareError, HardwareOverrides, HardwareSource,
    KernelVersion, Os, RuntimeFlavor, RuntimeVersion,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    hw: MachineArgs,
    /// The planner's own thread flag must not clash with ours.
    #[arg(long)]
    threads: Option<u32>,
}

fn parse(args: &[&str]) -> Result<HardwareOverrides, clap::Error> {
    let mut argv = vec!["strix-run"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).map(|c| c.hw.overrides())
}

fn strix() -> Result<Hardware, HardwareError> {
    Hardware::preset("strix-halo-128")
}

#[test]
fn every_flag_parses() -> TestResult {
    let o = parse(&[
        "--hw",
        "strix-halo-128",
        "--os",
        "windows",
        "--backend",
        "vulkan,rocm",
        "--runtime",
        "7.1",
        "--hip-flavor",
        "ollama",
        "--carveout",
        "2GiB",
        "--ram",
        "128GiB",
        "--ttm-pages-limit",
        "30146560",
        "--gtt",
        "100GiB",
        "--gpu-mem",
        "2GiB",
        "--cores",
        "16",
        "--cpu-threads",
        "32",
        "--kernel",
        "6.18.4-arch1-1",
        "--threads",
        "12",
    ])?;
    assert_eq!(o.preset.as_deref(), Some("strix-halo-128"));
    assert_eq!(o.os, Some(Os::Windows));
    assert_eq!(o.backends, Some(vec![Backend::Vulkan, Backend::Hip]));
    assert_eq!(o.runtime, Some(RuntimeVersion::new(7, 1)));
    assert_eq!(o.hip_flavor, Some(RuntimeFlavor::Ollama));
    assert_eq!(o.carveout, Some(2_147_483_648));
    assert_eq!(o.ram, Some(137_438_953_472));
    assert_eq!(o.ttm_pages_limit, Some(30_146_560));
    assert_eq!(o.gtt, Some(107_374_182_400));
    assert_eq!(o.gpu_mem, Some(2_147_483_648));
    assert_eq!((o.cores, o.cpu_threads), (Some(16), Some(32)));
    assert_eq!(o.kernel, Some(KernelVersion::new(6, 18, 4)));
    Ok(())
}

#[test]
fn bad_flags_are_clap_errors() {
    assert!(parse(&["--hw", "x", "--hw-profile", "y.json"]).is_err());
    let err = parse(&["--carveout", "2G"])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("ambiguous"), "{err}");
    assert!(parse(&["--backend", "metal"]).is_err());
    assert!(parse(&["--runtime", "seven"]).is_err());
    assert!(parse(&["--cores", "-1"]).is_err());
}

#[test]
fn no_flags_change_nothing() -> TestResult {
    let hw = strix()?;
    let same = HardwareOverrides::default().apply(hw.clone())?;
    assert_eq!(same, hw);
    Ok(())
}

#[test]
fn carveout_keeps_the_installed_ram_and_resets_a_default_gtt() -> TestResult {
    let mut hw = strix()?;
    hw.gtt_bytes = Some(63 * GIB); // as detected at the 512 MiB carveout
    let hw = parse(&["--carveout", "96GiB"])?.apply(hw)?;
    assert_eq!(hw.ram_total_bytes, 128 * GIB);
    assert_eq!(hw.carveout_bytes, Some(96 * GIB));
    assert_eq!(hw.gpus[0].vram_bytes, 96 * GIB);
    assert_eq!(hw.gtt_bytes, None);
    assert_eq!(hw.effective_gtt_bytes(), 16 * GIB);
    assert!(hw.ram_available_bytes <= 32 * GIB);
    assert_eq!(hw.overridden, vec!["carveout".to_string()]);
    Ok(())
}

#[test]
fn carveout_on_a_windows_detection_adds_to_the_ram_seen() -> TestResult {
    let mut hw = Hardware::preset("strix-halo-128-win")?;
    hw.carveout_bytes = None;
    hw.ram_total_bytes = 126 * GIB;
    let hw = parse(&["--carveout", "2GiB"])?.apply(hw)?;
    assert_eq!(hw.ram_total_bytes, 128 * GIB);
    Ok(())
}

#[test]
fn ttm_pages_limit_sets_the_gtt() -> TestResult {
    let hw = parse(&["--ttm-pages-limit", "30146560"])?.apply(strix()?)?;
    assert_eq!(hw.gtt_bytes, Some(123_480_309_760));
    assert_eq!(hw.ttm_pages_limit, Some(30_146_560));
    let hw = parse(&["--ttm-pages-limit", "30146560", "--gtt", "100GiB"])?.apply(strix()?)?;
    assert_eq!(hw.gtt_bytes, Some(107_374_182_400));
    Ok(())
}

#[test]
fn gpu_mem_on_an_igpu_is_the_carveout() -> TestResult {
    let hw = parse(&["--gpu-mem", "16GiB"])?.apply(strix()?)?;
    assert_eq!(hw.carveout_bytes, Some(16 * GIB));
    let err = parse(&["--gpu-mem", "16GiB", "--carveout", "2GiB"])?
        .apply(strix()?)
        .err();
    assert!(
        matches!(
            err,
            Some(HardwareError::Invalid {
                field: "gpu-mem",
                ..
            })
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn gpu_mem_on_a_discrete_card_is_its_vram() -> TestResult {
    let hw = parse(&["--gpu-mem", "12GiB"])?.apply(Hardware::preset("rtx-4090")?)?;
    assert_eq!(hw.gpus[0].vram_bytes, 12 * GIB);
    assert_eq!(hw.carveout_bytes, None);
    let err = parse(&["--carveout", "2GiB"])?
        .apply(Hardware::preset("rtx-4090")?)
        .err();
    assert!(
        matches!(
            err,
            Some(HardwareError::Invalid {
                field: "carveout",
                ..
            })
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn impossible_values_are_refused_with_the_field_named() -> TestResult {
    let cases: [(&[&str], &str); 7] = [
        (&["--carveout", "129GiB"], "carveout"),
        (&["--carveout", "64GiB", "--ram", "64GiB"], "carveout"),
        (&["--cores", "0"], "cores"),
        (&["--cores", "16", "--cpu-threads", "8"], "cpu-threads"),
        (&["--gtt", "1150GiB"], "gtt"),
        (&["--ttm-pages-limit", "301465600"], "ttm-pages-limit"),
        (
            &["--ttm-pages-limit", "18446744073709551615"],
            "ttm-pages-limit",
        ),
    ];
    for (args, field) in cases {
        let result = parse(args)?.apply(strix()?);
        match result {
            Err(HardwareError::Invalid { field: f, .. }) => assert_eq!(f, field, "{args:?}"),
            other => return Err(format!("{args:?} gave {other:?}").into()),
        }
    }
    let msg = parse(&["--cores", "0"])?
        .apply(strix()?)
        .err()
        .map(|e| e.to_string());
    assert!(msg.is_some_and(|m| m.contains("--cores")));
    Ok(())
}

#[test]
fn backends_runtime_and_flavor() -> TestResult {
    let hw = parse(&[
        "--backend",
        "cpu,hip,hip",
        "--runtime",
        "6.4",
        "--hip-flavor",
        "ollama",
    ])?
    .apply(strix()?)?;
    assert_eq!(hw.backends.len(), 2);
    let hip = hw.runtime(Backend::Hip).copied();
    assert_eq!(hip.and_then(|h| h.version), Some(RuntimeVersion::new(6, 4)));
    assert_eq!(hip.map(|h| h.flavor), Some(RuntimeFlavor::Ollama));
    let err = parse(&["--backend", "vulkan", "--runtime", "7.2"])?
        .apply(strix()?)
        .err();
    assert!(
        matches!(
            err,
            Some(HardwareError::Invalid {
                field: "runtime",
                ..
            })
        ),
        "{err:?}"
    );
    let err = parse(&["--backend", "cpu", "--hip-flavor", "ollama"])?
        .apply(strix()?)
        .err();
    assert!(
        matches!(
            err,
            Some(HardwareError::Invalid {
                field: "hip-flavor",
                ..
            })
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn os_and_kernel() -> TestResult {
    let hw = parse(&["--os", "windows", "--kernel", "6.18.4"])?.apply(strix()?)?;
    assert_eq!(hw.os, Os::Windows);
    assert_eq!(hw.kernel, Some(KernelVersion::new(6, 18, 4)));
    assert_eq!(hw.overridden, vec!["os".to_string(), "kernel".to_string()]);
    Ok(())
}

#[test]
fn resolve_from_preset_profile_and_detection() -> TestResult {
    let cfg = DetectConfig::default();
    let hw = resolve(&parse(&["--hw", "strix-halo-64", "--cores", "8"])?, &cfg)?;
    assert_eq!(hw.source, HardwareSource::Preset("strix-halo-64".into()));
    assert_eq!(hw.cpu.physical_cores, 8);
    assert_eq!(hw.ram_total_bytes, 64 * GIB);

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("p.json");
    Hardware::preset("rtx-3090")?.save_profile(&path)?;
    let arg = path.to_string_lossy().into_owned();
    let hw = resolve(&parse(&["--hw-profile", &arg])?, &cfg)?;
    assert_eq!(hw.source, HardwareSource::Profile(path.clone()));

    let both = HardwareOverrides {
        preset: Some("rtx-3090".into()),
        hw_profile: Some(path),
        ..HardwareOverrides::default()
    };
    assert!(matches!(
        resolve(&both, &cfg),
        Err(HardwareError::ConflictingSources { .. })
    ));

    let fake = DetectConfig {
        sys_root: dir.path().join("empty-root"),
    };
    assert!(matches!(
        resolve(&HardwareOverrides::default(), &fake),
        Err(HardwareError::Detect(_))
    ));
    let err = resolve(&parse(&["--hw", "nope"])?, &cfg)
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("strix-halo-128")));
    Ok(())
}
