//! `replica`: one replica of a replicated store, as its own process.
//!
//! It opens (or makes) its directory, joins its group over HTTP, prints one
//! line when it serves (`{"id":N,"listen":"ADDR","dir":"DIR"}` with
//! `--json`), then runs until SIGINT or SIGTERM, reporting on standard error
//! each time the leader it knows changes.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::cli::{run_tool, ToolError, Verdict};
use crate::elb::Settings;
use crate::replication::node::Timing;
use crate::replication::{Replica, ReplicaConfig};

/// The replica's command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "replica",
    version,
    about = "Run one replica of a replicated ELB store (Raft, over HTTP)",
    long_about = "Runs one replica of a group of 3 or 5 that agree on one log. The first members are \
                  given by --peers; the replica with the lowest id of a brand-new group starts it. A \
                  replica added later is started without --peers and then added with \
                  `pitr cluster add`. Every replica of a group must be given the same --store and \
                  --region.",
    after_help = "Example (three replicas on one machine):\n  \
                  replica --id 1 --dir /var/lib/elb/r1 --listen 127.0.0.1:7001 \\\n      \
                  --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003\n  \
                  (and the same with --id 2 and 3)"
)]
pub struct Cli {
    /// This replica's id in the group (1 or more).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub id: u64,
    /// Its directory (created when missing): raft/, store/, machine/.
    #[arg(long)]
    pub dir: PathBuf,
    /// The address to serve on, which the peers reach it at.
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The group's first members: ID=ADDR,... (this replica included).
    #[arg(long, value_name = "ID=ADDR,...", value_parser = parse_peers)]
    pub peers: Option<BTreeMap<u64, String>>,
    /// The store's NAME/ENVIRONMENT: a replica refuses a group of another.
    #[arg(long, value_name = "NAME/ENV", default_value = "elb/production")]
    pub store: String,
    /// The region of the store's load balancers.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// A snapshot every this many entries.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub snapshot_every: u64,
    /// Entries kept in the log after a snapshot, for followers just behind.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub logs_kept: u64,
    /// The leader's heartbeat interval, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub heartbeat_ms: u64,
    /// Followers stand for election after this long without a leader, in
    /// milliseconds (a random time up to twice it).
    #[arg(long, value_name = "MS", default_value_t = 400)]
    pub election_ms: u64,
    /// How long a leader waits for a write to commit, in milliseconds,
    /// before answering that the group is unavailable.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub write_timeout_ms: u64,
    /// Serve POST /group/faults (cut off peers, for partition tests).
    #[arg(long)]
    pub faults: bool,
    /// Also serve the ELBv2 API here: reads from this replica's store,
    /// writes through the group (the leader), answered once this replica
    /// has applied them.
    #[cfg(feature = "api")]
    #[arg(long, value_name = "ADDR", requires_all = ["credentials", "network"])]
    pub api_listen: Option<SocketAddr>,
    /// With --api-listen: the API's callers, lines `ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID`.
    #[cfg(feature = "api")]
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// With --api-listen: the subnets and security groups, lines `SUBNET_ID VPC_ID AVAILABILITY_ZONE`.
    #[cfg(feature = "api")]
    #[arg(long, value_name = "FILE")]
    pub network: Option<PathBuf>,
    /// Print the ready line as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_peers(text: &str) -> Result<BTreeMap<u64, String>, String> {
    text.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (id, addr) = part.split_once('=').ok_or_else(|| format!("{part}: expected ID=ADDR"))?;
            let id: u64 = id.parse().map_err(|_| format!("{part}: the id is not a number"))?;
            addr.parse::<SocketAddr>().map_err(|_| format!("{part}: {addr} is not HOST:PORT"))?;
            Ok((id, addr.to_owned()))
        })
        .collect()
}

#[derive(serde::Serialize)]
struct Ready {
    id: u64,
    listen: String,
    dir: String,
}

/// The command line, for help and documentation tests.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Runs a replica with `args` (without the program name) until it is told to stop.
pub fn run(args: Vec<String>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    run_tool("replica", args, out, err, |cli: Cli, out, err| {
        let (name, environment) =
            cli.store.split_once('/').ok_or_else(|| ToolError::usage("--store expects NAME/ENV"))?;
        let mut config = ReplicaConfig::new(cli.id, &cli.dir, cli.listen, name, environment);
        config.peers = cli.peers.clone().unwrap_or_default();
        if !config.peers.is_empty() && !config.peers.contains_key(&cli.id) {
            return Err(ToolError::usage(format!("--peers does not name this replica's id {}", cli.id)));
        }
        config.settings = Settings::in_region(cli.region.clone());
        config.snapshot_every = cli.snapshot_every.max(1);
        config.logs_kept = cli.logs_kept;
        config.write_timeout = Duration::from_millis(cli.write_timeout_ms.max(1));
        config.faults = cli.faults;
        config.timing = Timing {
            heartbeat: Duration::from_millis(cli.heartbeat_ms.max(1)),
            election_min: Duration::from_millis(cli.election_ms.max(2 * cli.heartbeat_ms)),
            election_max: Duration::from_millis(2 * cli.election_ms.max(2 * cli.heartbeat_ms)),
        };
        let id = cli.id;
        config.observer = Some(std::sync::Arc::new(move |alarm: &crate::elb::Alarm| {
            eprintln!("replica {id}: alarm {:?}", alarm.kind);
        }));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| ToolError::failed(format!("starting the runtime: {e}")))?;
        runtime.block_on(async {
            let peers: Vec<String> = config.peers.values().cloned().collect();
            let replica = Replica::start(config).await.map_err(|e| ToolError::failed(e.to_string()))?;
            #[cfg(feature = "api")]
            let api = match cli.api_listen {
                Some(listen) => Some(serve_api(&cli, &replica, peers, listen).await?),
                None => None,
            };
            #[cfg(not(feature = "api"))]
            let _ = peers;
            let ready = Ready { id, listen: replica.addr().to_string(), dir: cli.dir.display().to_string() };
            let line = if cli.json {
                serde_json::to_string(&ready).map_err(|e| ToolError::failed(e.to_string()))?
            } else {
                format!("replica {id} serving on {} ({})", ready.listen, ready.dir)
            };
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            let mut metrics = replica.raft().metrics();
            let mut leader = None;
            let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| ToolError::failed(format!("SIGTERM handler: {e}")))?;
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    _ = terminate.recv() => break,
                    changed = metrics.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let m = metrics.borrow().clone();
                        if m.current_leader != leader {
                            leader = m.current_leader;
                            let _ = writeln!(err, "replica {id}: term {}, leader {:?}", m.current_term, leader);
                        }
                        if let Err(fatal) = &m.running_state {
                            return Err(ToolError::failed(format!("replica {id} stopped: {fatal}")));
                        }
                    }
                }
            }
            #[cfg(feature = "api")]
            if let Some((stop, server)) = api {
                let _ = stop.send(());
                let _ = server.await;
            }
            replica.shutdown().await;
            Ok(())
        })?;
        Ok(Verdict::new(&serde_json::json!({"id": id, "stopped": true}), format!("replica {id} stopped\n")))
    })
}

/// The ELBv2 API over a replica: reads from the replica's own store, writes
/// through the group's leader, each answered once this replica has applied
/// it (so a caller reads what it wrote, on any replica).
#[cfg(feature = "api")]
pub struct GroupBackend {
    current: Box<dyn Fn() -> Option<std::sync::Arc<crate::elb::ElbStore>> + Send + Sync>,
    client: crate::replication::GroupClient,
    apply_timeout: Duration,
}

#[cfg(feature = "api")]
impl GroupBackend {
    /// A backend over the replica whose store `current` gives, writing
    /// through `client`.
    pub fn new(
        current: Box<dyn Fn() -> Option<std::sync::Arc<crate::elb::ElbStore>> + Send + Sync>,
        client: crate::replication::GroupClient,
    ) -> GroupBackend {
        GroupBackend { current, client, apply_timeout: Duration::from_secs(10) }
    }

    fn unavailable(message: String) -> crate::api::Refused {
        crate::api::Refused::Remote { code: "ServiceUnavailable".into(), message, status: 503, guarded: false }
    }
}

#[cfg(feature = "api")]
impl crate::api::Backend for GroupBackend {
    fn store(&self) -> std::sync::Arc<crate::elb::ElbStore> {
        // The replica has a store once the group's first entry is applied,
        // which is before it serves the API (see `serve_api`).
        loop {
            if let Some(store) = (self.current)() {
                return store;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn execute(
        &self,
        meta: crate::store::TxnMeta,
        commands: Vec<crate::elb::Command>,
    ) -> Result<crate::elb::Applied, crate::api::Refused> {
        let request = crate::replication::Request::Execute { meta, commands };
        let reply = self.client.write(&request).map_err(|err| GroupBackend::unavailable(err.to_string()))?;
        if let Some(refusal) = reply.refused {
            let crate::replication::Refusal { code, message, status, guarded } = refusal;
            return Err(crate::api::Refused::Remote { code, message, status, guarded });
        }
        let committed = reply.seq.zip(reply.time).map(|(seq, time)| crate::store::Committed { seq, time });
        if let Some(committed) = committed {
            let started = std::time::Instant::now();
            while self.store().read().seq() < committed.seq {
                if started.elapsed() > self.apply_timeout {
                    return Err(GroupBackend::unavailable(format!(
                        "transaction {} committed, and this replica has not applied it within {:?}",
                        committed.seq, self.apply_timeout
                    )));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(crate::elb::Applied { committed, outcomes: reply.outcomes, alarms: Vec::new(), created: reply.created })
    }
}

/// Starts the ELBv2 API on `listen` over `replica`, once its store exists.
#[cfg(feature = "api")]
async fn serve_api(
    cli: &Cli,
    replica: &Replica,
    mut peers: Vec<String>,
    listen: SocketAddr,
) -> Result<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>), ToolError> {
    use crate::api::auth::CredentialStore;
    use crate::api::network::Inventory;
    let (Some(credentials), Some(network)) = (&cli.credentials, &cli.network) else {
        return Err(ToolError::usage("--api-listen needs --credentials FILE and --network FILE"));
    };
    let credentials = CredentialStore::load(credentials).map_err(|e| ToolError::failed(e.to_string()))?;
    let network = Inventory::load(network).map_err(|e| ToolError::failed(e.to_string()))?;
    if peers.is_empty() {
        peers.push(replica.addr().to_string());
    }
    let client = crate::replication::GroupClient::new(peers, Duration::from_secs(10));
    let machine = replica.machine().clone();
    let backend = GroupBackend::new(Box::new(move || machine.store()), client);
    // Serve once the group's store exists here.
    let started = std::time::Instant::now();
    while replica.store().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(ToolError::failed("the group's store did not appear on this replica within 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let service = std::sync::Arc::new(crate::api::Service::with_backend(
        Box::new(backend),
        credentials,
        Box::new(network),
        cli.region.clone(),
    ));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| ToolError::failed(format!("listening on {listen}: {e}")))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = crate::api::server::serve(service, listener, async {
            let _ = stopped.await;
        })
        .await;
    });
    eprintln!("replica {}: ELBv2 API on http://{listen}", cli.id);
    Ok((stop, server))
}
