//! Command-line arguments for the tools: `--flag value` pairs, repeated flags
//! and bare switches, with errors that name the flag.

use std::collections::BTreeMap;

use crate::store::Point;

/// Parsed arguments: positional words, then flags.
#[derive(Debug, Default)]
pub struct Args {
    /// Positional words in order.
    pub positional: Vec<String>,
    flags: BTreeMap<String, Vec<String>>,
}

/// Switches that take no value.
const SWITCHES: &[&str] = &["--json", "--dry-run", "--skip-conflicts", "--stop-before-repair", "--help"];

impl Args {
    /// Parses `args` (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut out = Args::default();
        let mut iter = args.into_iter();
        while let Some(arg) = iter.next() {
            if let Some(flag) = arg.strip_prefix("--") {
                if flag.is_empty() {
                    return Err("empty flag --".into());
                }
                let value = if SWITCHES.contains(&arg.as_str()) {
                    String::new()
                } else {
                    iter.next().ok_or_else(|| format!("{arg} needs a value"))?
                };
                out.flags.entry(arg).or_default().push(value);
            } else {
                out.positional.push(arg);
            }
        }
        Ok(out)
    }

    /// Parses `args` and refuses flags outside `allowed`; on failure writes the
    /// one-line error with `usage` to `err` and returns `Err(exit code 2)`.
    pub fn parse_or_usage(
        args: Vec<String>,
        allowed: &[&str],
        usage: &str,
        err: &mut dyn std::io::Write,
    ) -> Result<Args, i32> {
        let parsed = Args::parse(args).and_then(|args| args.only(allowed).map(|()| args));
        parsed.map_err(|message| {
            let _ = writeln!(err, "error: {message} ({usage})");
            2
        })
    }

    /// Whether a switch or flag was given.
    pub fn has(&self, flag: &str) -> bool {
        self.flags.contains_key(flag)
    }

    /// The last value of a flag.
    pub fn get(&self, flag: &str) -> Option<&str> {
        self.flags.get(flag).and_then(|v| v.last()).map(String::as_str)
    }

    /// Every value of a repeated flag.
    pub fn all(&self, flag: &str) -> &[String] {
        self.flags.get(flag).map_or(&[], Vec::as_slice)
    }

    /// A required flag's value.
    pub fn required(&self, flag: &str) -> Result<&str, String> {
        self.get(flag).ok_or_else(|| format!("{flag} is required"))
    }

    /// A number flag, or `default`.
    pub fn number<T: std::str::FromStr>(&self, flag: &str, default: T) -> Result<T, String> {
        match self.get(flag) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| format!("{flag} expects a number, got {text:?}")),
        }
    }

    /// A point flag (`seq:N`, `before:N`, `after:N` or an RFC 3339 time).
    pub fn point(&self, flag: &str) -> Result<Option<Point>, String> {
        self.get(flag)
            .map(|text| {
                Point::parse(text)
                    .ok_or_else(|| format!("{flag} expects seq:N, before:N, after:N or an RFC 3339 time, got {text:?}"))
            })
            .transpose()
    }

    /// Refuses flags outside `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), String> {
        match self.flags.keys().find(|f| !allowed.contains(&f.as_str())) {
            Some(flag) => Err(format!("unknown option {flag}")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Args, String> {
        Args::parse(words.iter().map(|w| w.to_string()))
    }

    #[test]
    fn flags_switches_and_repeats() {
        let args = parse(&["log", "/store", "--txn", "3", "--json", "--txn", "5", "--at", "seq:7"]).unwrap();
        assert_eq!(args.positional, ["log", "/store"]);
        assert_eq!(args.all("--txn"), ["3", "5"]);
        assert!(args.has("--json"));
        assert_eq!(args.point("--at").unwrap(), Some(Point::Seq(7)));
        assert!(args.only(&["--txn", "--json", "--at"]).is_ok());
        assert_eq!(args.only(&["--json"]).unwrap_err(), "unknown option --at");
        assert_eq!(parse(&["--at"]).unwrap_err(), "--at needs a value");
        assert!(parse(&["--at", "yesterday"]).unwrap().point("--at").is_err());
    }
}
