//! Running the crate's example binaries from tests.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// The example's binary, built first. Tests cannot import an example, so they run it as a
/// process; and `cargo test --all-targets` (or `--examples`) builds examples only as test
/// harnesses, so the test builds the real binary itself (a no-op when it is up to date), in
/// the same target directory and profile as this test.
pub fn example(name: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let mut build = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    build
        .args(["build", "--quiet", "--example", name, "--target-dir"])
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = {
        let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        build.status().unwrap()
    };
    assert!(status.success(), "cargo build --example {name} failed");
    profile_dir.join("examples").join(name)
}
