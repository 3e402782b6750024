//! A data-plane configurator on the change feed: it follows a store from
//! the last transaction it applied, keeps its own copy of the state in a
//! file (replaced atomically, so a kill at any moment leaves the copy of
//! one transaction, whole), and derives from it what a load balancer's
//! nodes are configured with: listeners, rules and healthy targets. Its
//! digest equals the store's at the transaction it has applied.
//!
//! The store is opened read-only, beside its writer in another process: the
//! feed offers a transaction once the log shows it durable (the writer's
//! newest commit group waits for its next one).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::cli::{run_tool, Status, ToolError, Verdict};
use crate::elb::{ElbState, ElbStore, HealthState, Settings};
use crate::store::{OpenMode, Options, StateMachine};

/// The follower's command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "follower",
    version,
    about = "Follow a store's change feed and keep a data plane's configuration in a file",
    long_about = "Follows the store's durable transactions from the last one applied (kept in --state), \
                  applies each to its own copy of the state, and writes the copy back atomically. Survives \
                  being killed at any moment, and its writer being killed: it resumes where its file says.",
    after_help = "Example:\n  follower --dir /tmp/load --state /tmp/follower.state --until-seq 5000 --json"
)]
pub struct Cli {
    /// The store directory (opened read-only).
    #[arg(long)]
    pub dir: PathBuf,
    /// The follower's own file: the last transaction applied and the state after it.
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
    /// Stop once this transaction is applied.
    #[arg(long, value_name = "N")]
    pub until_seq: Option<u64>,
    /// Stop when nothing new has come for this long.
    #[arg(long, value_name = "MS")]
    pub idle_exit_ms: Option<u64>,
    /// Write the state file at most this often while following (and always on exit).
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub save_every_ms: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Doc {
    /// The last transaction applied.
    seq: u64,
    /// `ElbState::digest` of the follower's copy.
    state_digest: String,
    load_balancers: usize,
    listeners: usize,
    rules: usize,
    healthy_targets: usize,
    /// Transactions applied in this run.
    applied: u64,
}

/// The follower's file: a magic, the store's id, the seq and time of the
/// last transaction applied, the state's bytes, a CRC (docs/FORMAT.md).
const MAGIC: &[u8; 16] = b"elbstore-follow1";

/// The command, for documentation tests.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Runs the follower with `args` (without the program name).
pub fn run(args: Vec<String>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    run_tool("follower", args, out, err, |cli: Cli, _out, _err| follow(&cli))
}

fn follow(cli: &Cli) -> Result<Verdict, ToolError> {
    let mut followed = load(&cli.state)?;
    let store = ElbStore::open(&cli.dir, Options::default().mode(OpenMode::ReadOnly), Settings::default())?;
    let id = store.store().identity().id;
    let refuse = |why: String| {
        ToolError::new(Status::Refused, format!("{}: {why}; start it from an empty --state", cli.state.display()))
    };
    if followed.store != 0 && followed.store != id.0 {
        return Err(refuse(format!("it follows store {:032x}, not {id} in {}", followed.store, cli.dir.display())));
    }
    let head = store.read().seq();
    if followed.seq > head {
        return Err(refuse(format!(
            "it has applied transaction {}, but the store ends at {head}: the store was restored to an earlier point",
            followed.seq
        )));
    }
    if followed.seq > 0 && store.store().transaction(followed.seq)?.time.0 != followed.time {
        return Err(refuse(format!(
            "transaction {} in the store is not the one it applied: the store was restored to an earlier point and \
             written since",
            followed.seq
        )));
    }
    followed.store = id.0;
    let mut feed = store.store().subscribe(followed.seq + 1)?;
    let mut applied = 0u64;
    let mut saved_at = Instant::now();
    let mut last_news = Instant::now();
    let save_every = Duration::from_millis(cli.save_every_ms);
    while cli.until_seq.is_none_or(|until| followed.seq < until) {
        match feed.recv_timeout(Duration::from_millis(50))? {
            Some(txn) => {
                for event in &txn.events {
                    followed.state.apply(event);
                }
                (followed.seq, followed.time) = (txn.seq, txn.time.0);
                applied += 1;
                last_news = Instant::now();
            }
            None => {
                if cli.idle_exit_ms.is_some_and(|ms| last_news.elapsed() >= Duration::from_millis(ms)) {
                    break;
                }
            }
        }
        if saved_at.elapsed() >= save_every {
            save(&cli.state, &followed)?;
            saved_at = Instant::now();
        }
    }
    save(&cli.state, &followed)?;
    let state = &followed.state;
    let counts = state.counts();
    let doc = Doc {
        seq: followed.seq,
        state_digest: state.digest().to_hex(),
        // Every listener and rule belongs to a load balancer.
        load_balancers: counts.load_balancers,
        listeners: counts.listeners,
        rules: counts.rules,
        healthy_targets: healthy_targets(state),
        applied,
    };
    let text = format!(
        "applied {} transactions, at seq {}: {} load balancers, {} healthy targets\nstate digest: {}\n",
        doc.applied, doc.seq, doc.load_balancers, doc.healthy_targets, doc.state_digest
    );
    Ok(Verdict::new(&doc, text))
}

/// Targets a data plane sends traffic to: healthy ones behind a load balancer.
fn healthy_targets(state: &ElbState) -> usize {
    state
        .target_groups()
        .filter(|tg| !state.load_balancers_using(tg.id).is_empty())
        .map(|tg| state.targets_of(tg.id).filter(|t| t.health.state == HealthState::Healthy).count())
        .sum()
}

/// What the follower's file holds.
struct Followed {
    /// The store it follows (0: none yet).
    store: u128,
    /// The last transaction applied, and its commit time.
    seq: u64,
    time: u64,
    state: ElbState,
}

/// The header before the state's bytes: magic, store id, seq, time.
const HEADER: usize = 16 + 16 + 8 + 8;

/// The follower's file, or nothing applied when there is none.
fn load(path: &Path) -> Result<Followed, ToolError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Followed { store: 0, seq: 0, time: 0, state: ElbState::default() })
        }
        Err(e) => return Err(ToolError::failed(format!("{}: {e}", path.display()))),
    };
    let damaged = |why: &str| {
        ToolError::new(
            Status::Damaged,
            format!("{} is not a follower's file ({why}); remove it to follow from the start", path.display()),
        )
    };
    if bytes.len() < HEADER + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(damaged("no header"));
    }
    let body_end = bytes.len() - 4;
    let crc = u32::from_le_bytes(bytes[body_end..].try_into().expect("four bytes"));
    if crc32fast::hash(&bytes[..body_end]) != crc {
        return Err(damaged("checksum mismatch"));
    }
    let field = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"));
    let store = u128::from_le_bytes(bytes[16..32].try_into().expect("sixteen bytes"));
    let (seq, time) = (field(32), field(40));
    let state = ElbState::from_bytes(&bytes[HEADER..body_end]).map_err(|e| damaged(&e.to_string()))?;
    Ok(Followed { store, seq, time, state })
}

/// Replaces the follower's file: written beside it, synced, renamed over it.
fn save(path: &Path, followed: &Followed) -> Result<(), ToolError> {
    let fail = |e: std::io::Error| ToolError::failed(format!("{}: {e}", path.display()));
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&followed.store.to_le_bytes());
    bytes.extend_from_slice(&followed.seq.to_le_bytes());
    bytes.extend_from_slice(&followed.time.to_le_bytes());
    bytes.extend_from_slice(&followed.state.to_bytes());
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp).map_err(fail)?;
    file.write_all(&bytes).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(fail)?;
    }
    Ok(())
}
