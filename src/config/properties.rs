//! Java-style `key=value` properties: parsing the text form and the typed values behind keys.
//!
//! Every parse error names the key and the value, so a typo in `linger.ms=5O` is reported as
//! `invalid config linger.ms="5O": expected a whole number of milliseconds`.

use std::time::Duration;

use crate::error::{Error, Result};

/// Splits Java `.properties`-style text into `(key, value)` pairs: one `key=value` (or
/// `key: value`) a line, `#` and `!` start comments, blank lines are skipped.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some(split) = line.find(['=', ':']) else {
            return Err(Error::config(
                line,
                "",
                format!("line {} is not of the form key=value", n + 1),
            ));
        };
        let (key, value) = line.split_at(split);
        out.push((key.trim().to_owned(), value[1..].trim().to_owned()));
    }
    Ok(out)
}

/// A non-negative millisecond duration (`linger.ms=5`).
pub(crate) fn millis(key: &str, value: &str) -> Result<Duration> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| Error::config(key, value, "expected a whole number of milliseconds"))
}

/// A non-negative integer that fits `T` (`batch.size=16384`).
pub(crate) fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| Error::config(key, value, "expected a whole number in range"))
}

/// `true` or `false`, case-insensitive as in Java.
pub(crate) fn boolean(key: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::config(key, value, "expected true or false")),
    }
}

/// A comma-separated list with blanks removed (`bootstrap.servers=a:9092, b:9092`).
pub(crate) fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Checks a `host:port` address and returns it trimmed.
pub(crate) fn host_port(key: &str, value: &str) -> Result<String> {
    let v = value.trim();
    let ok = v
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if ok {
        Ok(v.to_owned())
    } else {
        Err(Error::config(key, value, "expected host:port"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_properties_text() {
        let props = parse_properties("# comment\nlinger.ms=5\n\n acks : all \n").unwrap();
        assert_eq!(
            props,
            vec![
                ("linger.ms".into(), "5".into()),
                ("acks".into(), "all".into())
            ]
        );
        let err = parse_properties("linger.ms 5").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn errors_name_key_and_value() {
        let err = millis("linger.ms", "5O").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid config linger.ms=\"5O\": expected a whole number of milliseconds"
        );
        assert!(boolean("enable.auto.commit", "yes").is_err());
        assert!(host_port("bootstrap.servers", "localhost").is_err());
        assert_eq!(
            host_port("bootstrap.servers", " 127.0.0.1:9092").unwrap(),
            "127.0.0.1:9092"
        );
    }
}
