//! An ELBv2-compatible API endpoint over a store: the AWS CLI, the AWS SDKs
//! and tools built on them drive it with `--endpoint-url`.
//!
//! ```text
//! cargo run --release --features api --example elbv2-api -- --dir DIR \
//!     --listen 127.0.0.1:PORT --credentials FILE --network FILE [--region REGION] \
//!     [--expect-store NAME/ENV] [--create-if-missing]
//!     [--archive URL [--archive-interval-ms MS]]
//! ```
//!
//! It prints one line with the address it listens on. SIGTERM or Ctrl-C
//! stops accepting, finishes the requests in flight, closes the store and
//! exits 0.

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use elbstore::api::auth::CredentialStore;
use elbstore::api::network::{Ec2, Inventory, Network};
use elbstore::api::Service;
use elbstore::archive::{Archiver, ArchiverOptions, Target};
use elbstore::elb::{ElbStore, Settings};
use elbstore::{Create, Options, SyncPolicy};

/// An ELBv2-compatible API endpoint over an elbstore store.
#[derive(Debug, Parser)]
#[command(name = "elbv2-api", version)]
struct Cli {
    /// The store directory.
    #[arg(long)]
    dir: PathBuf,
    /// The address to listen on (127.0.0.1:0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The callers: one line per key, `ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID`.
    #[arg(long)]
    credentials: PathBuf,
    /// The region the endpoint answers for.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// The store's NAME/ENVIRONMENT (refused if it is another store).
    #[arg(long, value_name = "NAME/ENV", default_value = "elbv2-api/local")]
    expect_store: String,
    /// Create the store when the directory is new or empty.
    #[arg(long)]
    create_if_missing: bool,
    /// The subnets and security groups: lines `SUBNET_ID VPC_ID AVAILABILITY_ZONE`.
    #[arg(long, value_name = "FILE", conflicts_with = "ec2_endpoint", required_unless_present = "ec2_endpoint")]
    network: Option<PathBuf>,
    /// Ask an EC2 endpoint about subnets, VPCs and security groups instead.
    #[arg(long, value_name = "URL")]
    ec2_endpoint: Option<String>,
    /// Archive the store off the machine while serving: file:///DIR,
    /// s3://BUCKET/PREFIX[?endpoint=URL&allow_http=true].
    #[arg(long, value_name = "URL")]
    archive: Option<String>,
    /// How often the archive ships new records, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1_000, requires = "archive")]
    archive_interval_ms: u64,
}

fn main() {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::exit(0),
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let (name, env) = cli.expect_store.split_once('/').ok_or("--expect-store expects NAME/ENV")?;
    let create = if cli.create_if_missing { Create::IfMissing } else { Create::Never };
    let options = Options::default().identity(name, env).create(create).sync(SyncPolicy::Always);
    let store =
        ElbStore::open(&cli.dir, options, Settings::in_region(cli.region.clone())).map_err(|e| e.to_string())?;
    let archiver = match &cli.archive {
        Some(url) => {
            let interval = std::time::Duration::from_millis(cli.archive_interval_ms.max(1));
            let target = Target::open(url).map_err(|e| e.to_string())?;
            let archiver = Archiver::start(store.store(), target, ArchiverOptions::default().interval(interval))
                .map_err(|e| e.to_string())?;
            Some(archiver)
        }
        None => None,
    };
    let credentials = CredentialStore::load(&cli.credentials).map_err(|e| e.to_string())?;
    let network: Box<dyn Network> = match (&cli.network, &cli.ec2_endpoint) {
        (Some(file), _) => Box::new(Inventory::load(file).map_err(|e| e.to_string())?),
        (None, Some(url)) => {
            let keys = CredentialStore::load(&cli.credentials).map_err(|e| e.to_string())?;
            Box::new(Ec2::new(url.clone(), cli.region.clone(), keys))
        }
        (None, None) => return Err("give --network FILE or --ec2-endpoint URL".into()),
    };
    let service = Arc::new(Service::new(store, credentials, network, cli.region.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(cli.listen).await.map_err(|e| format!("{}: {e}", cli.listen))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        println!("listening on http://{address}");
        elbstore::api::server::serve(service.clone(), listener, shutdown_signal()).await.map_err(|e| e.to_string())
    })?;
    drop(runtime);
    let service = Arc::try_unwrap(service).map_err(|_| "requests still hold the service")?;
    // The archive takes everything the store holds before it closes.
    let archived = archiver.as_ref().map(Archiver::flush);
    let closed = service.close().map_err(|e| e.to_string());
    if let Some(archiver) = archiver {
        archiver.stop();
    }
    if let Some(Err(e)) = archived {
        return Err(format!("the archive could not take the last records: {e}"));
    }
    closed
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
