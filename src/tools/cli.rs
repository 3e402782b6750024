//! What the tools share: exit codes, errors an operator can act on, and the
//! run loop (parse with clap, run the verb, print text or one JSON document).

use std::fmt;
use std::io::Write;

use serde::Serialize;
use serde_json::Value;

use crate::elb::ElbError;
use crate::store::Error;
use crate::wal::WalError;

/// What the exit code says. Documented in `docs/CLI.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 0: done.
    Ok,
    /// 1: failed for another reason (I/O, a lock held, a rule of the API).
    Failed,
    /// 2: the command line is wrong (unknown flag, missing value, a point
    /// outside the history, an empty actor or reason).
    Usage,
    /// 3: refused by a guard or an identity check (the deletion guard, the
    /// wrong store, no store at that path).
    Refused,
    /// 4: conflicts with later changes; nothing written.
    Conflicts,
    /// 5: the store is damaged (a record or snapshot fails its checks).
    Damaged,
}

impl Status {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Usage => 2,
            Status::Refused => 3,
            Status::Conflicts => 4,
            Status::Damaged => 5,
        }
    }
}

/// A failure, with what it means for the exit code and a message that says
/// what to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolError {
    /// What kind of failure.
    pub status: Status,
    /// One line or a few, in words.
    pub message: String,
}

impl ToolError {
    /// A failure of `status`.
    pub fn new(status: Status, message: impl Into<String>) -> ToolError {
        ToolError { status, message: message.into() }
    }

    /// A wrong command line.
    pub fn usage(message: impl Into<String>) -> ToolError {
        ToolError::new(Status::Usage, message)
    }

    /// Any other failure.
    pub fn failed(message: impl Into<String>) -> ToolError {
        ToolError::new(Status::Failed, message)
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Error> for ToolError {
    fn from(err: Error) -> ToolError {
        let status = store_status(&err);
        let message = match &err {
            Error::Locked { path } => format!(
                "another process holds the store's write lock ({}): a running service or tool; stop it, or \
                 use a verb that only reads (info, log, show, diff, verify, timeline, restore, salvage)",
                path.display()
            ),
            Error::Io { path, source, .. } if is_read_only(source) => format!(
                "{err}: the store cannot be written by this user or on this file system ({}); run as its \
                 owner, or use a verb that only reads",
                path.display()
            ),
            Error::NotAStore { .. } => format!("{err}; check the path (a store directory holds an IDENTITY file)"),
            _ if status == Status::Damaged => format!(
                "{err}; `pitr verify STORE` lists the damage, `pitr salvage STORE --out NEW_DIR --actor WHO \
                 --reason WHY` copies every transaction before it into a new store"
            ),
            _ => err.to_string(),
        };
        ToolError { status, message }
    }
}

fn is_read_only(err: &std::io::Error) -> bool {
    matches!(err.kind(), std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem)
}

fn store_status(err: &Error) -> Status {
    match err {
        Error::Wal(WalError::Io { .. }) | Error::Io { .. } | Error::Locked { .. } | Error::Poisoned { .. } => {
            Status::Failed
        }
        Error::Wal(_)
        | Error::Snapshot(_)
        | Error::BadIdentity { .. }
        | Error::LogBehindSnapshot { .. }
        | Error::SnapshotMismatch { .. }
        | Error::TornTail { .. }
        | Error::IndexMismatch { .. } => Status::Damaged,
        Error::WrongStore { .. } | Error::NotAStore { .. } => Status::Refused,
        Error::PointOutOfRange { .. }
        | Error::MissingAttribution { .. }
        | Error::FieldTooLong { .. }
        | Error::DirectoryNotEmpty { .. }
        | Error::InvalidOption { .. } => Status::Usage,
        _ => Status::Failed,
    }
}

impl From<ElbError> for ToolError {
    fn from(err: ElbError) -> ToolError {
        match err {
            ElbError::Store(err) => ToolError::from(err),
            err @ ElbError::BulkDeletionRefused { .. } => {
                // The library's advice names its API; a tool names its flags.
                let text = err.to_string();
                let text = text.split(" (TxnMeta::with_approval").next().unwrap_or(&text).to_owned();
                ToolError::new(
                    Status::Refused,
                    format!("{text}: pass --ticket T and --approver WHO (someone other than --actor)"),
                )
            }
            err @ ElbError::RegionMismatch { .. } => ToolError::new(Status::Refused, err.to_string()),
            err => ToolError::failed(format!("{err} ({})", err.code())),
        }
    }
}

/// What a verb produced: its JSON document, its text, its status.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The document printed under `--json`.
    pub json: Value,
    /// The text printed otherwise.
    pub text: String,
    /// The exit status.
    pub status: Status,
}

impl Verdict {
    /// A successful verdict from a typed document and its text.
    pub fn new<T: Serialize>(doc: &T, text: String) -> Verdict {
        // The documents are plain structs of strings, numbers and maps with
        // string keys: serializing them cannot fail.
        let json = serde_json::to_value(doc).unwrap_or(Value::Null);
        Verdict { json, text, status: Status::Ok }
    }

    /// The same verdict with another status.
    pub fn with_status(self, status: Status) -> Verdict {
        Verdict { status, ..self }
    }
}

/// The document printed under `--json` when a verb fails.
#[derive(Serialize)]
struct ErrorDoc<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: Status,
    exit_code: i32,
    message: &'a str,
}

/// Runs a tool: parses `args` (without the program name) as `C`, runs
/// `verb` (given `out` and `err` for narration and notes), prints the text or (with `--json` anywhere before `--`) one JSON
/// document to `out`, and returns the exit code. Help and version go to
/// `out` with exit code 0; usage errors to `err` (or as a JSON error
/// document to `out`) with exit code 2.
pub fn run_tool<C: clap::Parser>(
    name: &str,
    args: Vec<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
    verb: impl FnOnce(C, &mut dyn Write, &mut dyn Write) -> Result<Verdict, ToolError>,
) -> i32 {
    let json = args.iter().take_while(|a| *a != "--").any(|a| a == "--json");
    let parsed = C::try_parse_from(std::iter::once(name.to_owned()).chain(args));
    let result = match parsed {
        Ok(cli) => verb(cli, out, err),
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    // Styled on a terminal, plain text otherwise.
                    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                        let _ = write!(out, "{}", e.render().ansi());
                    } else {
                        let _ = write!(out, "{}", e.render());
                    }
                    return 0;
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    // A bare `pitr`: the help, and the exit code of a usage error.
                    let _ = write!(err, "{}", e.render());
                    return Status::Usage.code();
                }
                _ => {
                    let full = e.render().to_string();
                    // JSON gets the one line that says what is wrong; text the whole of it.
                    let message = if json {
                        let said: Vec<&str> =
                            full.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
                        said.join(" ").trim_start_matches("error: ").to_owned()
                    } else {
                        full.trim_end().to_owned()
                    };
                    Err(ToolError::usage(message))
                }
            }
        }
    };
    match result {
        Ok(verdict) => {
            let printed = if json {
                serde_json::to_writer(&mut *out, &verdict.json)
                    .map_err(std::io::Error::other)
                    .and_then(|()| writeln!(out))
            } else {
                write!(out, "{}", verdict.text)
            };
            if printed.is_err() {
                return Status::Failed.code();
            }
            verdict.status.code()
        }
        Err(failure) => {
            if json {
                let doc = ErrorDoc {
                    error: ErrorBody {
                        status: failure.status,
                        exit_code: failure.status.code(),
                        message: &failure.message,
                    },
                };
                let _ = serde_json::to_writer(&mut *out, &doc);
                let _ = writeln!(out);
            } else {
                let message = failure.message.strip_prefix("error: ").unwrap_or(&failure.message);
                let _ = writeln!(err, "error: {message}");
            }
            failure.status.code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn store_errors_map_to_the_documented_exit_codes() {
        let path = PathBuf::from("/x");
        let cases = [
            (Error::Locked { path: path.clone() }, 1),
            (Error::NotAStore { path: path.clone(), reason: "it has no IDENTITY file" }, 3),
            (Error::DirectoryNotEmpty { path: path.clone() }, 2),
            (Error::MissingAttribution { field: "reason" }, 2),
            (Error::SnapshotMismatch { path: path.clone(), seq: 3 }, 5),
        ];
        for (err, code) in cases {
            let text = err.to_string();
            assert_eq!(ToolError::from(err).status.code(), code, "{text}");
        }
        let locked = ToolError::from(Error::Locked { path: path.clone() });
        assert!(locked.message.contains("only reads"), "{}", locked.message);
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let read_only = ToolError::from(Error::Io { op: "lock", path, source: denied });
        assert_eq!(read_only.status, Status::Failed);
        assert!(read_only.message.contains("cannot be written by this user"), "{}", read_only.message);
    }
}
