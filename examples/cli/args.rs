//! Hand-rolled argument parsing: small, ours, and exact about what went wrong.

use std::collections::VecDeque;

/// Exit code for bad arguments (scripts can tell them from runtime failures, which exit 1).
pub const USAGE_EXIT: i32 = 2;

pub const USAGE: &str = "\
usage: cli [-b HOST:PORT[,HOST:PORT...]] [-X key=value]... COMMAND

Global options:
  -b, --bootstrap-server LIST   brokers (default $KAFKA_BOOTSTRAP or 127.0.0.1:9092)
  -X key=value                  any client property (linger.ms=5, acks=1, ...), repeatable

Commands:
  produce TOPIC [--file F] [--key-separator SEP] [--header k=v]... [--partition N]
                [--compression none|gzip|snappy|lz4|zstd]
      Sends one record per line of stdin (or F); waits for every delivery; exits 1 if
      any record failed.
  consume TOPIC [--group G] [--from beginning|end|OFFSET|@TIMESTAMP_MS] [--count N]
                [--format FMT] [--timeout-ms MS]
      Prints records. Without --group it reads every partition (from the beginning unless
      --from says otherwise); with --group it joins the group and commits what it printed.
      FMT: %t topic, %p partition, %o offset, %k key, %v value, %T timestamp, %h headers,
      \\n, \\t (default '%v\\n'). Stops after N records, or MS without a record.
  groups list
  groups describe GROUP     members, assignments, committed offsets and lag
  topics list
  topics describe [TOPIC...]
  topics create TOPIC [--partitions N] [--replication-factor R] [--config k=v]...
  topics delete TOPIC...

Exit codes: 0 success, 1 a failure reported by Kafka or the client, 2 bad arguments.";

/// A usage error with its message.
#[derive(Debug)]
pub struct UsageError(pub String);

/// Arguments left to read, with typed accessors.
pub struct Args {
    rest: VecDeque<String>,
}

impl Args {
    pub fn new(args: impl IntoIterator<Item = String>) -> Self {
        Args {
            rest: args.into_iter().collect(),
        }
    }

    pub fn next(&mut self) -> Option<String> {
        self.rest.pop_front()
    }

    pub fn peek(&self) -> Option<&str> {
        self.rest.front().map(String::as_str)
    }

    /// The next argument, which must exist: `what` names it in the error.
    pub fn required(&mut self, what: &str) -> Result<String, UsageError> {
        self.next()
            .ok_or_else(|| UsageError(format!("missing {what}")))
    }

    /// The value after option `flag`.
    pub fn value(&mut self, flag: &str) -> Result<String, UsageError> {
        self.next()
            .ok_or_else(|| UsageError(format!("{flag} needs a value")))
    }

    /// The value after `flag`, parsed.
    pub fn parsed<T: std::str::FromStr>(&mut self, flag: &str) -> Result<T, UsageError> {
        let raw = self.value(flag)?;
        raw.parse()
            .map_err(|_| UsageError(format!("{flag} {raw:?} is not a valid value")))
    }

    /// The remaining arguments.
    pub fn rest(&mut self) -> Vec<String> {
        self.rest.drain(..).collect()
    }
}

/// Splits `k=v`, naming `flag` when there is no `=`.
pub fn key_value(flag: &str, raw: &str) -> Result<(String, String), UsageError> {
    raw.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| UsageError(format!("{flag} {raw:?} is not of the form key=value")))
}
