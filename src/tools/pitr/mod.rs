//! `pitr`: point-in-time restore and forensics for an ELB store.
//!
//! Every verb opens the store read-only except `revert`, which writes only to
//! the store it names with `--expect-store`, and `restore` and `salvage`,
//! which write only into a new directory. `docs/CLI.md` documents every verb,
//! flag, exit code and JSON key.

mod archive;
#[cfg(feature = "replication")]
mod cluster;
mod read;
mod write;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::{ArgGroup, Args, CommandFactory, Parser, Subcommand};

use super::cli::{run_tool, ToolError, Verdict};
use super::progress::Bar;
use super::report::parse_kind;
use crate::elb::{ElbStore, EntityKind, Settings};
use crate::store::{OpenMode, Options, Point};

const POINTS: &str = "Points in history (P): now, seq:N (as of transaction N), before:N (just before \
transaction N), after:N (as of N), or an RFC 3339 time such as 2012-12-24T12:24:00Z or \
2012-12-24T04:24:00-08:00.

Exit codes: 0 ok, 1 other failure, 2 usage, 3 refused by a guard or identity check, 4 conflicts \
(nothing written), 5 damaged store. With --json every result and every error is one JSON object \
on standard output; docs/CLI.md lists the keys.";

/// Point-in-time restore and forensics for an ELB store.
#[derive(Debug, Parser)]
#[command(
    name = "pitr",
    version,
    about = "Point-in-time restore and forensics for an ELB store",
    long_about = "Point-in-time restore and forensics for an ELB store.\n\nEvery verb opens the store \
                  read-only except revert (which writes one compensating transaction to the store named \
                  by --expect-store) and restore and salvage (which write only into a new directory).",
    after_help = POINTS,
    arg_required_else_help = true,
    propagate_version = true
)]
pub struct Cli {
    /// Print one JSON object instead of text, errors included.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub verb: Verb,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Identity, provenance, history span, files and counts.
    #[command(after_help = "Example:\n  pitr info /var/lib/elb/us-east-1")]
    Info {
        /// The store directory.
        store: PathBuf,
    },
    /// Transactions: who changed what, when and why.
    #[command(after_help = EXAMPLES_LOG)]
    Log(LogArgs),
    /// The state at a point: counts, or one load balancer with everything under it.
    #[command(after_help = EXAMPLES_SHOW)]
    Show(ShowArgs),
    /// What changed between two points.
    #[command(after_help = "Example:\n  pitr diff STORE --from before:1201 --to now --list")]
    Diff(DiffArgs),
    /// Copy the store as of a point into a new directory, verified.
    #[command(after_help = EXAMPLES_RESTORE)]
    Restore(RestoreArgs),
    /// Undo chosen transactions with one compensating transaction; later changes are kept.
    #[command(after_help = EXAMPLES_REVERT)]
    Revert(RevertArgs),
    /// Check every record and snapshot, of a store or of its archive.
    #[command(after_help = "Examples:\n  pitr verify STORE\n  pitr verify --archive s3://backups/elb/us-east-1")]
    Verify(VerifyArgs),
    /// What an off-machine archive holds.
    #[command(after_help = "Example:\n  pitr archive status file:///mnt/backup/elb/us-east-1")]
    Archive {
        /// What to do.
        #[command(subcommand)]
        verb: ArchiveVerb,
    },
    /// Copy every transaction before the first damage into a new store, and
    /// report what was left behind.
    #[command(after_help = EXAMPLES_SALVAGE)]
    Salvage(SalvageArgs),
    /// Draw the fleet over time (load balancers and resources, deletions,
    /// reverts, alarms) as an SVG picture.
    #[command(after_help = "Example:\n  pitr timeline STORE --from seq:1100 --to now --svg incident.svg")]
    Timeline(TimelineArgs),
    /// A replicated store's group: status, and adding, removing or replacing
    /// a replica (through the leader; a replica of another store is refused).
    #[cfg(feature = "replication")]
    #[command(after_help = EXAMPLES_CLUSTER)]
    Cluster(ClusterArgs),
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  pitr completions bash > /etc/bash_completion.d/pitr")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `pitr archive` verbs.
#[derive(Debug, Subcommand)]
pub enum ArchiveVerb {
    /// Span, size, snapshots, gaps, and how far behind its store it is.
    Status {
        /// The archive: file:///DIR, s3://BUCKET/PREFIX[?endpoint=URL&allow_http=true].
        url: String,
    },
}

/// `pitr cluster`.
#[cfg(feature = "replication")]
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The group's replicas: ADDR,... (any of them; the leader is found).
    #[arg(long, value_name = "ADDR,...", value_delimiter = ',', global = true)]
    pub group: Vec<String>,
    /// How long to keep trying to reach a leader, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000, global = true)]
    pub timeout_ms: u64,
    /// What to do.
    #[command(subcommand)]
    pub verb: ClusterVerb,
}

/// `pitr cluster` verbs.
#[cfg(feature = "replication")]
#[derive(Debug, Subcommand)]
pub enum ClusterVerb {
    /// Each replica's role, term, log, applied entry, seq (and digest).
    Status {
        /// Also each replica's state digest.
        #[arg(long)]
        digest: bool,
    },
    /// Add a replica (started without --peers): it catches
    /// up as a learner, then votes. It must serve this group's store.
    Add {
        /// Its id.
        #[arg(long)]
        id: u64,
        /// Its address.
        #[arg(long, value_name = "ADDR")]
        addr: String,
    },
    /// Remove a replica from the voters.
    Remove {
        /// Its id.
        #[arg(long)]
        id: u64,
    },
    /// Replace a dead replica: add the new one, remove the old, in one change.
    Replace {
        /// The replica to remove.
        #[arg(long, value_name = "ID")]
        old: u64,
        /// The new replica's id.
        #[arg(long)]
        id: u64,
        /// Its address.
        #[arg(long, value_name = "ADDR")]
        addr: String,
    },
}

/// `pitr verify`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["store", "archive"])))]
pub struct VerifyArgs {
    /// The store directory.
    pub store: Option<PathBuf>,
    /// Verify an archive instead: every object's checksum, the manifest's
    /// continuity, and a sample restore.
    #[arg(long, value_name = "URL")]
    pub archive: Option<String>,
}

// Examples use the incident demo's store (`incident --dir STORE
// --stop-before-repair`): transaction 1201 deleted 2000 load balancers.
const EXAMPLES_LOG: &str = "Examples:
  pitr log STORE --deletions
  pitr log STORE --actor maint:state-cleanup --kind load_balancers
  pitr log STORE --entity lb-3 --from 2012-12-24T00:00:00Z";
const EXAMPLES_SHOW: &str = "Examples:
  pitr show STORE --at before:1201 --load-balancer lb-3
  pitr show STORE --at 2012-12-24T12:00:00Z";
const EXAMPLES_RESTORE: &str = "Examples:
  pitr restore STORE --at before:1201 --out /var/lib/elb/restored \\
      --actor oncall:alice --reason 'inspect the fleet before the cleanup'
  pitr restore --from-archive file:///mnt/backup/elb --at now --out /var/lib/elb/us-east-1 \\
      --actor oncall:alice --reason 'disk lost'";
const EXAMPLES_REVERT: &str = "Examples:
  pitr revert STORE --txn 1201 --expect-store us-east-1/production \\
      --actor oncall:alice --reason 'undo the mistaken cleanup' --dry-run
  pitr revert STORE --by-actor maint:state-cleanup --from before:1201 --to now \\
      --expect-store us-east-1/production --actor oncall:alice --reason 'undo' \\
      --ticket INC-1 --approver lead:bob";
#[cfg(feature = "replication")]
const EXAMPLES_CLUSTER: &str = "Examples:
  pitr cluster status --group 10.0.0.1:7001,10.0.0.2:7001,10.0.0.3:7001 --digest
  pitr cluster add --group 10.0.0.1:7001 --id 4 --addr 10.0.0.4:7001
  pitr cluster replace --group 10.0.0.1:7001 --old 3 --id 5 --addr 10.0.0.5:7001";
const EXAMPLES_SALVAGE: &str = "Example:
  pitr salvage STORE --out /var/lib/elb/salvaged \\
      --actor oncall:alice --reason 'segment 12 damaged'";

/// A point in history as given on the command line: `now` or a [`Point`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// The latest transaction.
    Now,
    /// A point.
    Point(Point),
}

impl FromStr for At {
    type Err = String;

    fn from_str(text: &str) -> Result<At, String> {
        if text == "now" || text == "latest" {
            return Ok(At::Now);
        }
        Point::parse(text).map(At::Point).ok_or_else(|| {
            "expected now, seq:N, before:N, after:N or an RFC 3339 time such as 2012-12-24T12:24:00Z".to_owned()
        })
    }
}

impl At {
    /// The point in `store`'s history.
    pub fn point(self, store: &ElbStore) -> Point {
        match self {
            At::Now => Point::Seq(store.read().seq()),
            At::Point(point) => point,
        }
    }
}

fn kind_arg(text: &str) -> Result<EntityKind, String> {
    parse_kind(text).ok_or_else(|| {
        "expected a kind: load_balancers, listeners, rules, target_groups, targets or trust_stores".to_owned()
    })
}

/// `pitr log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// The store directory.
    pub store: PathBuf,
    /// Start after this point (default: the beginning).
    #[arg(long, value_name = "P")]
    pub from: Option<At>,
    /// End at this point, included (default: now).
    #[arg(long, value_name = "P")]
    pub to: Option<At>,
    /// Only transactions by this actor.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only transactions that deleted resources.
    #[arg(long)]
    pub deletions: bool,
    /// Only transactions touching resources of this kind.
    #[arg(long, value_parser = kind_arg)]
    pub kind: Option<EntityKind>,
    /// One resource's own changes, field by field: a name, an id (lb-...) or an ARN.
    #[arg(long, value_name = "NAME_OR_ID")]
    pub entity: Option<String>,
}

/// `pitr show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The store directory.
    pub store: PathBuf,
    /// The point (default: now).
    #[arg(long, value_name = "P")]
    pub at: Option<At>,
    /// One load balancer by name, with its listeners, rules, target groups
    /// and targets; or who deleted it, when and why.
    #[arg(long, value_name = "NAME")]
    pub load_balancer: Option<String>,
}

/// `pitr diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The store directory.
    pub store: PathBuf,
    /// The first point.
    #[arg(long, value_name = "P")]
    pub from: At,
    /// The second point.
    #[arg(long, value_name = "P")]
    pub to: At,
    /// List every resource created, modified (with its fields) or deleted,
    /// not only the first 20.
    #[arg(long)]
    pub list: bool,
}

/// `pitr restore`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["store", "from_archive"])))]
pub struct RestoreArgs {
    /// The store directory.
    pub store: Option<PathBuf>,
    /// Restore from an off-machine archive instead (file:///DIR,
    /// s3://BUCKET/PREFIX[?endpoint=URL&allow_http=true]).
    #[arg(long, value_name = "URL")]
    pub from_archive: Option<String>,
    /// The point to restore.
    #[arg(long, value_name = "P")]
    pub at: At,
    /// A new or empty directory for the copy.
    #[arg(long, value_name = "NEW_DIR")]
    pub out: PathBuf,
    /// Who restores (recorded in the copy's RESTORED_FROM file).
    #[arg(long)]
    pub actor: String,
    /// Why.
    #[arg(long)]
    pub reason: String,
    /// The change ticket.
    #[arg(long)]
    pub ticket: Option<String>,
}

/// `pitr revert`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("selection").required(true).args(["txn", "by_actor"])))]
pub struct RevertArgs {
    /// The store directory.
    pub store: PathBuf,
    /// A transaction to revert, by sequence number (repeat, or separate with commas).
    #[arg(long, value_name = "N", value_delimiter = ',', conflicts_with_all = ["by_actor", "from", "to"])]
    pub txn: Vec<u64>,
    /// Revert every transaction of this actor after --from up to --to.
    #[arg(long, value_name = "ACTOR", requires_all = ["from", "to"])]
    pub by_actor: Option<String>,
    /// With --by-actor: start after this point.
    #[arg(long, value_name = "P", requires = "by_actor")]
    pub from: Option<At>,
    /// With --by-actor: end at this point, included.
    #[arg(long, value_name = "P", requires = "by_actor")]
    pub to: Option<At>,
    /// The store you mean to change: NAME, NAME/ENVIRONMENT or its id.
    #[arg(long, value_name = "STORE")]
    pub expect_store: String,
    /// Who reverts (recorded in the compensating transaction).
    #[arg(long)]
    pub actor: String,
    /// Why.
    #[arg(long)]
    pub reason: String,
    /// The change ticket.
    #[arg(long)]
    pub ticket: Option<String>,
    /// Who approved a bulk change the deletion guard would refuse.
    #[arg(long, value_name = "WHO")]
    pub approver: Option<String>,
    /// Run every check of the real run and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Revert what does not conflict and leave the rest (default: write nothing on a conflict).
    #[arg(long)]
    pub skip_conflicts: bool,
}

/// `pitr salvage`.
#[derive(Debug, Args)]
pub struct SalvageArgs {
    /// The damaged store's directory (read only).
    pub store: PathBuf,
    /// A new or empty directory for the salvaged store.
    #[arg(long, value_name = "NEW_DIR")]
    pub out: PathBuf,
    /// Who salvages.
    #[arg(long)]
    pub actor: String,
    /// Why.
    #[arg(long)]
    pub reason: String,
    /// The change ticket.
    #[arg(long)]
    pub ticket: Option<String>,
}

/// `pitr timeline`.
#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// The store directory.
    pub store: PathBuf,
    /// Start (default: the first transaction).
    #[arg(long, value_name = "P")]
    pub from: Option<At>,
    /// End (default: now).
    #[arg(long, value_name = "P")]
    pub to: Option<At>,
    /// Where to write the SVG picture.
    #[arg(long, value_name = "FILE")]
    pub svg: PathBuf,
}

/// Runs `pitr` with `args` (without the program name); returns the exit code.
pub fn run(args: Vec<String>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    run_tool("pitr", args, out, err, |cli: Cli, _out, err| {
        let bar = Bar::on_terminal(cli.json);
        let verdict = dispatch(cli.verb, &bar, err);
        bar.finish();
        verdict
    })
}

fn dispatch(verb: Verb, bar: &Bar, err: &mut dyn Write) -> Result<Verdict, ToolError> {
    match verb {
        Verb::Info { store } => read::info(&store, bar),
        Verb::Log(args) => read::log(&args, bar),
        Verb::Show(args) => read::show(&args, bar),
        Verb::Diff(args) => read::diff(&args, bar),
        Verb::Verify(VerifyArgs { store: Some(store), .. }) => read::verify(&store, bar, err),
        Verb::Verify(VerifyArgs { archive, .. }) => {
            archive::verify(archive.as_deref().expect("clap requires a store or an archive"), bar, err)
        }
        Verb::Archive { verb: ArchiveVerb::Status { url } } => archive::status(&url),
        Verb::Timeline(args) => read::timeline(&args, bar),
        Verb::Restore(args) => write::restore(&args, bar, err),
        Verb::Revert(args) => write::revert(&args, bar),
        Verb::Salvage(args) => write::salvage(&args, bar, err),
        #[cfg(feature = "replication")]
        Verb::Cluster(args) => cluster::run(&args),
        Verb::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pitr", &mut script);
            let text = String::from_utf8_lossy(&script).into_owned();
            Ok(Verdict::new(&serde_json::json!({ "shell": shell.to_string(), "script": text }), text))
        }
    }
}

/// Opens a store read-only: no lock, no change to any byte; long work shows on `bar`.
pub(crate) fn open_read(dir: &Path, bar: &Bar) -> Result<ElbStore, ToolError> {
    let options = Options::default().mode(OpenMode::ReadOnly).progress(bar.callback());
    Ok(ElbStore::open(dir, options, Settings::default())?)
}

/// The clap command, for documentation tests.
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn points_parse_before_anything_opens() {
        assert_eq!("now".parse::<At>(), Ok(At::Now));
        assert_eq!("seq:7".parse::<At>(), Ok(At::Point(Point::Seq(7))));
        assert_eq!("before:7".parse::<At>(), Ok(At::Point(Point::Before(7))));
        assert!("yesterday".parse::<At>().is_err());
    }
}
