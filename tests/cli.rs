//! The command-line example (`examples/cli`) run as a process against the real broker: output
//! and exit codes scripts can rely on.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn cli_path() -> PathBuf {
    common::examples::example("cli")
}

fn cli(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(cli_path())
        .args(["-b", &common::bootstrap()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn topics_create_describe_list_delete() {
    let topic = common::unique_topic("cli-topics");
    let out = cli(
        &[
            "topics",
            "create",
            &topic,
            "--partitions",
            "3",
            "--config",
            "retention.ms=60000",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = cli(&["topics", "describe", &topic], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("Topic: {topic}")) && stdout.contains("PartitionCount: 3"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("\tPartition: ").count(), 3, "{stdout}");

    let out = cli(&["topics", "list"], "");
    assert!(text(&out.stdout).lines().any(|l| l == topic));

    let out = cli(&["topics", "create", &topic], "");
    assert_eq!(out.status.code(), Some(1), "creating it twice fails");
    assert!(
        text(&out.stderr).contains("TOPIC_ALREADY_EXISTS"),
        "{}",
        text(&out.stderr)
    );

    let out = cli(&["topics", "delete", &topic], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(&["topics", "describe", &topic], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&topic), "{}", text(&out.stderr));
}

#[tokio::test]
async fn produce_sends_keys_values_headers_to_the_chosen_partition() {
    let admin = common::admin().await;
    let topic = common::new_topic(&admin, "cli-produce", 2).await;
    let out = cli(
        &[
            "produce",
            &topic,
            "--key-separator",
            ":",
            "--header",
            "source=cli",
            "--partition",
            "1",
            "--compression",
            "gzip",
        ],
        "k1:first\nk2:second:with:colons\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("2 of 2 record(s) delivered"),
        "{}",
        text(&out.stderr)
    );

    let records = common::fetch::fetch_all(&admin, &common::bootstrap(), &topic).await;
    assert!(records[&0].is_empty());
    let got: Vec<(String, String, String)> = records[&1]
        .iter()
        .map(|r| {
            (
                text(r.key.as_deref().unwrap()),
                text(r.value.as_deref().unwrap()),
                format!(
                    "{}={}",
                    r.headers[0].key,
                    text(r.headers[0].value.as_deref().unwrap())
                ),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("k1".into(), "first".into(), "source=cli".into()),
            (
                "k2".into(),
                "second:with:colons".into(),
                "source=cli".into()
            ),
        ]
    );
}

#[tokio::test]
async fn bad_arguments_and_unreachable_brokers_have_distinct_exit_codes() {
    let out = cli(&["produce"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("missing TOPIC"),
        "{}",
        text(&out.stderr)
    );

    let out = cli(&["topics", "frobnicate"], "");
    assert_eq!(out.status.code(), Some(2));

    let out = cli(&["-X", "linger.ms=soon", "produce", "t"], "x\n");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("linger.ms"),
        "{}",
        text(&out.stderr)
    );

    let out = Command::new(cli_path())
        .args([
            "-b",
            "127.0.0.1:1",
            "-X",
            "socket.connection.setup.timeout.ms=500",
            "topics",
            "list",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("127.0.0.1:1"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn records_produced_by_the_cli_come_back_from_consume_with_keys_partitions_offsets() {
    let admin = common::admin().await;
    let topic = common::new_topic(&admin, "cli-roundtrip", 2).await;
    let out = cli(
        &["produce", &topic, "--key-separator", "=", "--header", "h=v"],
        "alpha=1\nbeta=2\ngamma=3\ndelta=4\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // stderr reports where each line went: "line N: topic-P@O".
    let placed: Vec<String> = text(&out.stderr)
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(_, at)| at.to_owned()))
        .filter(|at| at.starts_with(&topic))
        .collect();
    assert_eq!(placed.len(), 4, "{}", text(&out.stderr));

    let out = cli(
        &[
            "consume",
            &topic,
            "--from",
            "beginning",
            "--count",
            "4",
            "--format",
            "%t-%p@%o %k=%v %h\\n",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut consumed: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    consumed.sort();
    let mut expected: Vec<String> = placed
        .iter()
        .zip(["alpha=1", "beta=2", "gamma=3", "delta=4"])
        .map(|(at, kv)| format!("{at} {kv} h=v"))
        .collect();
    expected.sort();
    assert_eq!(consumed, expected);

    // Keys go where the Java client would put them.
    for (at, key) in placed.iter().zip(["alpha", "beta", "gamma", "delta"]) {
        let partition: i32 = at[topic.len() + 1..]
            .split('@')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            partition,
            kafka_client::producer::partition_for_key(key.as_bytes(), 2),
            "{key}"
        );
    }
}

#[tokio::test]
async fn a_group_consumer_commits_and_groups_describe_shows_offsets_and_lag() {
    let admin = common::admin().await;
    let topic = common::new_topic(&admin, "cli-group", 1).await;
    let group = common::unique_topic("cli-group-g");
    let out = cli(&["produce", &topic], "1\n2\n3\n4\n5\n");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = cli(
        &[
            "consume",
            &topic,
            "--group",
            &group,
            "--from",
            "beginning",
            "--count",
            "3",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1\n2\n3\n");

    let out = cli(&["groups", "describe", &group], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("Group: {group}")), "{stdout}");
    // Three records were printed and committed; two remain.
    assert!(
        stdout.contains(&format!("\t{topic}-0\t3\t5\t2\t")),
        "{stdout}"
    );

    let out = cli(&["groups", "list"], "");
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l.starts_with(&format!("{group}\t"))),
        "{}",
        text(&out.stdout)
    );

    // The group resumes after what it committed.
    let out = cli(&["consume", &topic, "--group", &group, "--count", "2"], "");
    assert_eq!(text(&out.stdout), "4\n5\n");
}
