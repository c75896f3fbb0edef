//! Runs the Java tools of the fetched Kafka release (console producer and consumer), the
//! reference peers for interoperability tests.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The Java classpath of the Kafka jars, from `scripts/kafka.sh classpath`.
pub fn classpath() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka.sh");
        let out = Command::new("bash")
            .args([script, "classpath"])
            .output()
            .expect("run scripts/kafka.sh classpath");
        assert!(
            out.status.success(),
            "scripts/kafka.sh classpath failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    })
}

/// Runs a Java main class with `args`, feeding `stdin`; returns stdout, failing the test
/// with stderr when the tool fails.
pub fn run(main_class: &str, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("java")
        .args(["-Xmx512m", "-cp", classpath(), main_class])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("java on PATH");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(data.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{main_class} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
