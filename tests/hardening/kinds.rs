//! Every kind of path through every command that takes one, and arbitrary sampling
//! values and sizes: nothing panics, nothing hangs past a bound, nothing leaves a
//! partial file.

use super::common::*;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

/// One path of each kind in `dir`, with its name.
fn paths_of_every_kind(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let regular = dir.join("regular.gguf");
    std::fs::copy(gemma(), &regular).expect("copy gemma");
    let not_gguf = dir.join("notes.txt");
    std::fs::write(&not_gguf, "not a model\n").expect("write");
    let directory = dir.join("folder.gguf");
    std::fs::create_dir(&directory).expect("mkdir");
    let fifo = dir.join("fifo.gguf");
    mkfifo(&fifo);
    let socket = dir.join("socket.gguf");
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    std::mem::forget(listener);
    let (a, b) = (dir.join("loop-a.gguf"), dir.join("loop-b.gguf"));
    std::os::unix::fs::symlink(&b, &a).expect("link");
    std::os::unix::fs::symlink(&a, &b).expect("link");
    let dangling = dir.join("dangling.gguf");
    std::os::unix::fs::symlink(dir.join("gone.gguf"), &dangling).expect("link");
    let unreadable = dir.join("unreadable.gguf");
    std::fs::copy(gemma(), &unreadable).expect("copy");
    std::fs::set_permissions(
        &unreadable,
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .expect("chmod");
    vec![
        ("regular file", regular),
        ("text file", not_gguf),
        ("directory", directory),
        ("FIFO", fifo),
        ("socket", socket),
        ("symlink loop", a),
        ("dangling symlink", dangling),
        ("unreadable file", unreadable),
        ("missing", dir.join("missing.gguf")),
        ("character device", PathBuf::from("/dev/null")),
        ("endless device", PathBuf::from("/dev/zero")),
    ]
}

#[test]
fn every_kind_of_path_through_every_command_ends_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kinds = paths_of_every_kind(dir.path());
    let gemma = gemma();
    let g = gemma.to_str().expect("utf-8");
    for (kind, path) in &kinds {
        let p = path.to_str().expect("utf-8");
        let before = names_in(dir.path());
        for args in [
            vec!["inspect", p],
            vec!["plan", "--model", p, "--hw", "strix-halo-128"],
            vec!["--model", p, "--dry-run", "--hw", "strix-halo-64"],
            vec!["plan", "--model", g, "--hw-profile", p],
            vec!["synth", "--preset", "micro-dense", "--sparse", "--out", p],
        ] {
            let o = run_bounded(strix().args(&args), QUICK);
            o.no_panic();
            let code = o.code();
            assert!(code == 0 || code == 1, "{kind}: {args:?}: {o:?}");
            if code == 1 {
                assert!(o.stderr.starts_with("error: "), "{kind}: {args:?}: {o:?}");
            }
            // Only a regular model may be planned from; synth writes only where nothing is.
            let ok_expected = match args[0] {
                // A dangling symbolic link is not written through.
                "synth" => *kind == "missing",
                _ if args.contains(&"--hw-profile") => false,
                _ => *kind == "regular file" || (*kind == "unreadable file" && is_root()),
            };
            assert_eq!(code == 0, ok_expected, "{kind}: {args:?}: {o:?}");
            let partial: Vec<String> = names_in(dir.path())
                .into_iter()
                .filter(|n| n.ends_with(".partial"))
                .collect();
            assert!(partial.is_empty(), "{kind}: {args:?} left {partial:?}");
        }
        // Synth into a missing path made that one file; remove it for the next kind.
        let after = names_in(dir.path());
        for new in after.iter().filter(|n| !before.contains(n)) {
            std::fs::remove_file(dir.path().join(new)).expect("remove");
        }
    }
}

fn is_root() -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::geteuid() == 0 }
}

/// Values as a person may type them: ordinary, edge, negative, huge, not a number.
fn typed_number() -> impl Strategy<Value = String> {
    prop_oneof![
        (-10.0f32..10.0).prop_map(|v| v.to_string()),
        Just("0".to_string()),
        Just("1".to_string()),
        Just("-0".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("1e38".to_string()),
        Just("-1e-38".to_string()),
    ]
}

fn typed_size() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            0u64..1 << 20,
            prop::sample::select(vec!["", "B", "MiB", "GiB", "TB", "G", "xB"])
        )
            .prop_map(|(n, u)| format!("{n}{u}")),
        Just("-5GiB".to_string()),
        Just("+1GiB".to_string()),
        Just("18446744073709551616".to_string()),
        Just("99999999PiB".to_string()),
        Just("".to_string()),
        Just("1.5.5GiB".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Sampling values and sizes through `--dry-run`: exit 0 or a named refusal, never a
    /// panic; an impossible sampling value is always refused.
    #[test]
    fn typed_values_end_in_a_plan_or_a_named_refusal(
        temp in typed_number(),
        top_p in typed_number(),
        min_p in typed_number(),
        penalty in typed_number(),
        size in typed_size(),
        ctx in prop::sample::select(vec!["1", "255", "256", "257", "300", "4294967295"]),
    ) {
        let gemma = gemma();
        let o = run_bounded(
            strix().arg("--model").arg(&gemma).args([
                "--dry-run", "--hw", "strix-halo-128",
                &format!("--temp={temp}"), &format!("--top-p={top_p}"),
                &format!("--min-p={min_p}"), &format!("--repeat-penalty={penalty}"),
                &format!("--carveout={size}"), &format!("--ctx={ctx}"),
            ]),
            QUICK,
        );
        o.no_panic();
        let code = o.code();
        // 2: the argument parser's usage error (a size it cannot read).
        prop_assert!(code == 0 || code == 1 || code == 2, "{o:?}");
        if code != 0 {
            prop_assert!(o.stderr.starts_with("error: "), "{o:?}");
        }
        if cfg!(feature = "runtime") {
            let f = |s: &str| s.parse::<f32>().ok();
            let valid = f(&temp).is_some_and(|t| t.is_finite() && t >= 0.0)
                && f(&top_p).is_some_and(|p| (0.0..=1.0).contains(&p))
                && f(&min_p).is_some_and(|p| (0.0..=1.0).contains(&p))
                && f(&penalty).is_some_and(|r| r.is_finite() && r > 0.0);
            if !valid {
                // Refused: by the sampling check (1), or earlier by the parser (2).
                prop_assert_ne!(code, 0, "{:?}", o);
            }
        }
    }
}
