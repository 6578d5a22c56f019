//! Files strix-run writes: an existing file is kept unless --force, and a failed write
//! (a full disk) leaves no partial file; output paths are checked before long work.

use super::common::*;

fn synth(args: &[&str]) -> std::process::Command {
    let mut c = strix();
    c.arg("synth").args(args);
    c
}

#[test]
fn synth_refuses_to_overwrite_unless_forced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("notes.txt");
    std::fs::write(&target, "my notes\n").expect("write");
    let t = target.to_str().expect("utf-8");
    let o = run_bounded(
        &mut synth(&["--preset", "micro-dense", "--sparse", "--out", t]),
        QUICK,
    );
    o.refused("already exists; pass --force to replace it");
    assert_eq!(
        std::fs::read_to_string(&target).expect("read"),
        "my notes\n"
    );
    // One existing shard of a set stops the whole set before anything is written.
    let shard2 = dir.path().join("m-00002-of-00002.gguf");
    std::fs::write(&shard2, "keep").expect("write");
    let o = run_bounded(
        &mut synth(&[
            "--preset",
            "micro-dense",
            "--sparse",
            "--shards",
            "2",
            "--out",
            dir.path().join("m.gguf").to_str().expect("utf-8"),
        ]),
        QUICK,
    );
    o.refused("m-00002-of-00002.gguf: already exists");
    assert_eq!(
        names_in(dir.path()),
        ["m-00002-of-00002.gguf", "notes.txt"],
        "nothing else written"
    );
    // --force replaces it with a real model.
    let o = run_bounded(
        &mut synth(&["--preset", "micro-dense", "--sparse", "--force", "--out", t]),
        QUICK,
    );
    assert_eq!(o.code(), 0, "{o:?}");
    let bytes = std::fs::read(&target).expect("read");
    assert_eq!(&bytes[..4], b"GGUF");
}

#[test]
fn a_write_that_fails_half_way_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Real weights, far more than the 64 KiB the limit allows.
    let out = dir.path().join("micro.gguf");
    let mut cmd = synth(&[
        "--preset",
        "micro-dense",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    limit_file_size(&mut cmd, 64 << 10);
    let o = run_bounded(&mut cmd, QUICK);
    o.refused("micro.gguf");
    assert!(o.stderr.contains("File too large"), "{}", o.stderr);
    assert!(
        names_in(dir.path()).is_empty(),
        "{:?}",
        names_in(dir.path())
    );

    // A sparse 397B in its four published shards: the first shard already is larger
    // than the limit (its size is set, not written), and no shard is left, 0-byte or not.
    let out = dir.path().join("397b.gguf");
    let mut cmd = synth(&[
        "--preset",
        "qwen3.5-397b-a17b",
        "--sparse",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    limit_file_size(&mut cmd, 1 << 30);
    let o = run_bounded(&mut cmd, QUICK);
    assert_eq!(o.code(), 1, "{o:?}");
    assert!(
        names_in(dir.path()).is_empty(),
        "{:?}",
        names_in(dir.path())
    );

    // An existing file hit by a failed --force write is still the old file.
    let keep = dir.path().join("keep.gguf");
    std::fs::write(&keep, "old").expect("write");
    let mut cmd = synth(&[
        "--preset",
        "micro-dense",
        "--force",
        "--out",
        keep.to_str().expect("utf-8"),
    ]);
    limit_file_size(&mut cmd, 64 << 10);
    let o = run_bounded(&mut cmd, QUICK);
    assert_eq!(o.code(), 1, "{o:?}");
    assert_eq!(std::fs::read_to_string(&keep).expect("read"), "old");
    assert_eq!(names_in(dir.path()), ["keep.gguf"]);
}

#[test]
fn bench_checks_its_plot_path_before_measuring() {
    let config = tempfile::tempdir().expect("tempdir");
    let gemma = gemma();
    let o = run_bounded(
        strix()
            .env("XDG_CONFIG_HOME", config.path())
            .args(["bench", "--model"])
            .arg(&gemma)
            .args([
                "--sweep",
                "threads=1,2",
                "--plot",
                "/nonexistent/dir/x.svg",
                "-r",
                "1",
            ]),
        QUICK,
    );
    o.refused("/nonexistent/dir/x.svg");
    assert!(
        !o.stderr.contains("bench: "),
        "measured first: {}",
        o.stderr
    );
    assert!(
        names_in(config.path()).is_empty(),
        "calibration was written: {:?}",
        names_in(config.path())
    );
}
