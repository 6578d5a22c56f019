//! Paths that are not model files: each refused at once, named as what it is.

use super::common::*;
use std::path::Path;

fn refused_quickly(args: &[&str], what: &str) -> Outcome {
    let o = run_bounded(strix().args(args), QUICK);
    o.refused(what);
    o
}

#[test]
fn a_fifo_is_refused_by_name_instead_of_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("f.gguf");
    mkfifo(&fifo);
    let f = fifo.to_str().expect("utf-8");
    refused_quickly(
        &["inspect", f],
        "is a FIFO (named pipe), not a regular file",
    );
    refused_quickly(
        &["plan", "--model", f, "--hw", "strix-halo-128"],
        "is a FIFO (named pipe), not a regular file",
    );
    refused_quickly(
        &["--model", f, "--dry-run", "--hw", "strix-halo-128"],
        "is a FIFO (named pipe), not a regular file",
    );
    // As a hardware profile.
    let gemma = gemma();
    refused_quickly(
        &[
            "plan",
            "--model",
            gemma.to_str().expect("utf-8"),
            "--hw-profile",
            f,
        ],
        "is a FIFO (named pipe), not a regular file",
    );
}

#[test]
fn a_symlink_loop_is_called_one_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.gguf");
    let b = dir.path().join("b.gguf");
    std::os::unix::fs::symlink(&b, &a).expect("link");
    std::os::unix::fs::symlink(&a, &b).expect("link");
    let p = a.to_str().expect("utf-8");
    refused_quickly(&["inspect", p], "symbolic link loop");
    let o = refused_quickly(
        &["plan", "--model", p, "--hw", "strix-halo-128"],
        "symbolic link loop",
    );
    assert!(!o.stderr.contains("no such file"), "{}", o.stderr);
}

#[test]
fn a_device_is_named_as_one() {
    refused_quickly(&["inspect", "/dev/zero"], "is a character device");
    refused_quickly(
        &["plan", "--model", "/dev/zero", "--hw", "strix-halo-128"],
        "is a character device",
    );
}

fn cut(from: &Path, to: &Path, bytes: usize) {
    let data = std::fs::read(from).expect("read model");
    std::fs::write(to, &data[..bytes]).expect("write cut");
}

#[test]
fn a_cut_model_is_called_cut_with_its_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bytes in [100usize, 1 << 20] {
        let path = dir.path().join(format!("cut-{bytes}.gguf"));
        cut(&gemma(), &path, bytes);
        let o = refused_quickly(&["inspect", path.to_str().expect("utf-8")], "cut short");
        assert!(
            o.stderr
                .contains(&format!("The file is {bytes} bytes long")),
            "{}",
            o.stderr
        );
        assert!(
            !o.stderr.contains("not written by a GGUF writer"),
            "{}",
            o.stderr
        );
    }
}

#[test]
fn a_negative_size_says_the_sign_is_the_problem() {
    let gemma = gemma();
    let o = run_bounded(
        strix().args([
            "plan",
            "--model",
            gemma.to_str().expect("utf-8"),
            "--hw",
            "strix-halo-128",
            "--carveout=-5GiB",
        ]),
        QUICK,
    );
    // A flag's value is refused by the argument parser: its usage-error exit code, 2.
    assert_eq!(o.code(), 2, "{o:?}");
    o.no_panic();
    assert!(
        o.stderr.contains("a size cannot be negative"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("unknown unit"), "{}", o.stderr);
}

#[test]
fn a_malformed_profile_names_the_field_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("box.json");
    std::fs::write(&bad, "{\n  \"os\": \"linux\",\n  \"cpu\": 3\n}\n").expect("write");
    let gemma = gemma();
    let o = refused_quickly(
        &[
            "plan",
            "--model",
            gemma.to_str().expect("utf-8"),
            "--hw-profile",
            bad.to_str().expect("utf-8"),
        ],
        "field `cpu` (line 3, column",
    );
    assert!(!o.stderr.contains("named above"), "{}", o.stderr);
    // Not JSON at all: the position, and what the file must be.
    std::fs::write(&bad, "os = linux\n").expect("write");
    refused_quickly(
        &[
            "plan",
            "--model",
            gemma.to_str().expect("utf-8"),
            "--hw-profile",
            bad.to_str().expect("utf-8"),
        ],
        "line 1, column 1",
    );
}
