//! The API service under 64 concurrent clients on loopback: a mutating call
//! (`AddTags`, one durable transaction with `SyncPolicy::Always`, as the
//! binary commits) and a read (`DescribeLoadBalancers` of one ARN), each at
//! three depths in the same run:
//!
//! - `store`: the same change or read on the `ElbStore` from 64 threads;
//! - `service`: `Service::handle` from 64 threads (SigV4 verification, form
//!   decoding, the handler, the XML answer), no HTTP;
//! - `http`: 64 clients over loopback, each its own keep-alive connection,
//!   signing every request (SigV4), to the server of `api::server`.
//!
//! Criterion's figure is the time per request across all clients (so its
//! throughput is requests per second); every bench also prints a `latency`
//! line with p50 and p99 of the single requests it sent, warm-up included.
//!
//! `cargo bench --bench api`

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use elbstore::api::auth::{CredentialStore, Credentials};
use elbstore::api::network::{Inventory, SecurityGroup, Subnet};
use elbstore::api::{Request, Service};
use elbstore::elb::{Command, ElbStore, EntityKey, Settings, Taggable, Tags};
use elbstore::{Create, Options, SyncPolicy, TxnMeta};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use parking_lot::Mutex;

const REGION: &str = "us-east-1";
const CLIENTS: u64 = 64;

fn alice() -> Credentials {
    Credentials {
        access_key_id: "AKIDALICE".into(),
        secret_access_key: "secret-of-alice".into(),
        account: "111122223333".into(),
    }
}

fn network() -> Inventory {
    let subnet = |id: &str, az: &str| Subnet { id: id.into(), vpc_id: "vpc-1".into(), availability_zone: az.into() };
    Inventory::from_parts(
        vec![subnet("subnet-a", "us-east-1a"), subnet("subnet-b", "us-east-1b")],
        vec![SecurityGroup { id: "sg-1".into(), vpc_id: "vpc-1".into() }],
    )
}

/// The signed request a client sends for `body`.
fn signed(host: &str, body: &str) -> Request {
    Request::signed(&alice(), REGION, host, body.as_bytes(), SystemTime::now())
}

/// What client `client` sends as its `n`th request of `call`: a tag with a
/// new value on its own load balancer, or the description of it.
fn body(call: Call, arn: &str, n: u64) -> String {
    let arn: String = form_urlencoded::byte_serialize(arn.as_bytes()).collect();
    match call {
        Call::AddTags => format!(
            "Action=AddTags&Version=2015-12-01&ResourceArns.member.1={arn}\
             &Tags.member.1.Key=revision&Tags.member.1.Value={n}"
        ),
        Call::Describe => format!("Action=DescribeLoadBalancers&Version=2015-12-01&LoadBalancerArns.member.1={arn}"),
    }
}

#[derive(Clone, Copy, Debug)]
enum Call {
    AddTags,
    Describe,
}

/// A store and service with one load balancer per client, made through the API.
fn service(dir: &std::path::Path) -> (Arc<Service>, Vec<String>) {
    let _ = std::fs::remove_dir_all(dir);
    let options = Options::default().create(Create::IfMissing).identity("bench", "api").sync(SyncPolicy::Always);
    let mut settings = Settings::in_region(REGION);
    settings.quotas.application_load_balancers_per_account = CLIENTS as usize;
    let store = ElbStore::open(dir, options, settings).unwrap();
    let service =
        Arc::new(Service::new(store, CredentialStore::from_credentials(vec![alice()]), Box::new(network()), REGION));
    let mut arns = Vec::new();
    for c in 0..CLIENTS {
        let create = format!(
            "Action=CreateLoadBalancer&Version=2015-12-01&Name=lb-{c}&Subnets.member.1=subnet-a&Subnets.member.2=subnet-b"
        );
        let answer = service.handle(&signed("127.0.0.1", &create), SystemTime::now());
        assert_eq!(answer.status, 200, "{}", answer.body);
        let arn = answer.body.split("<LoadBalancerArn>").nth(1).and_then(|s| s.split('<').next()).unwrap();
        arns.push(arn.to_owned());
    }
    (service, arns)
}

/// Single-request latencies in microseconds, for the `latency` line.
#[derive(Default)]
struct Latencies(Mutex<Vec<u32>>);

impl Latencies {
    fn add(&self, mut batch: Vec<u32>) {
        self.0.lock().append(&mut batch);
    }

    fn report(&self, name: &str) {
        let mut all = std::mem::take(&mut *self.0.lock());
        if all.is_empty() {
            return;
        }
        all.sort_unstable();
        let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize];
        println!("latency {name}: p50 {} µs, p99 {} µs over {} requests", at(0.50), at(0.99), all.len());
    }
}

fn micros(since: Instant) -> u32 {
    since.elapsed().as_micros().min(u32::MAX as u128) as u32
}

/// Runs `one(client, n)` `total` times across 64 threads; the elapsed time.
fn threads(total: u64, latencies: &Latencies, one: impl Fn(u64, u64) + Sync) -> Duration {
    let per_client = total.div_ceil(CLIENTS);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let one = &one;
            scope.spawn(move || {
                let mut batch = Vec::with_capacity(per_client as usize);
                for n in 0..per_client {
                    let sent = Instant::now();
                    one(client, n);
                    batch.push(micros(sent));
                }
                latencies.add(batch);
            });
        }
    });
    started.elapsed()
}

fn api(c: &mut Criterion) {
    let mut group = c.benchmark_group("api");
    group.sample_size(10).measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements(1));
    let dir = std::env::temp_dir().join(format!("elbstore-bench-api-{}", std::process::id()));
    let (service, arns) = service(&dir);
    let latencies = Latencies::default();
    let counter = std::sync::atomic::AtomicU64::new(0);
    let next = || counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);

    // The store alone: the change and the read the handlers make.
    let store = service.store();
    let keys: Vec<EntityKey> = arns.iter().map(|arn| store.resolve_arn(arn).unwrap()).collect();
    group.bench_function("store/add_tags/64_threads", |b| {
        b.iter_custom(|iters| {
            threads(iters, &latencies, |client, _| {
                let EntityKey::LoadBalancer(id) = keys[client as usize] else { unreachable!() };
                let tags = Tags::from([("revision".to_owned(), next().to_string())]);
                let meta = TxnMeta::new("aws:111122223333:AKIDALICE", "AddTags bench");
                store
                    .execute(meta, vec![Command::AddTags { resources: vec![Taggable::LoadBalancer(id)], tags }])
                    .unwrap();
            })
        })
    });
    latencies.report("api/store/add_tags/64_threads");
    group.bench_function("store/describe/64_threads", |b| {
        b.iter_custom(|iters| {
            threads(iters, &latencies, |client, _| {
                let view = store.read();
                let key = store.resolve_arn(&arns[client as usize]).unwrap();
                assert!(view.state().entity(&key).is_some());
            })
        })
    });
    latencies.report("api/store/describe/64_threads");

    // The service without HTTP.
    for call in [Call::AddTags, Call::Describe] {
        let name = format!("service/{}/64_threads", name(call));
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                threads(iters, &latencies, |client, _| {
                    let request = signed("127.0.0.1", &body(call, &arns[client as usize], next()));
                    let answer = service.handle(&request, SystemTime::now());
                    assert_eq!(answer.status, 200, "{}", answer.body);
                })
            })
        });
        latencies.report(&format!("api/{name}"));
    }

    // Over HTTP on loopback: the server on a runtime of its own, the clients on another.
    let server_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = server_runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = server_runtime.spawn(elbstore::api::server::serve(service.clone(), listener, async {
        let _ = stopped.await;
    }));
    let client_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(CLIENTS as usize)
        .build_http::<Full<Bytes>>();
    let host = address.to_string();
    for call in [Call::AddTags, Call::Describe] {
        let name = format!("http/{}/64_clients", name(call));
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let per_client = iters.div_ceil(CLIENTS);
                client_runtime.block_on(async {
                    let started = Instant::now();
                    let mut tasks = Vec::new();
                    for c in 0..CLIENTS {
                        let client = client.clone();
                        let (arn, host) = (arns[c as usize].clone(), host.clone());
                        let first = counter.fetch_add(per_client, std::sync::atomic::Ordering::Relaxed);
                        tasks.push(tokio::spawn(async move {
                            let mut batch = Vec::with_capacity(per_client as usize);
                            for n in 0..per_client {
                                let sent = Instant::now();
                                let request = signed(&host, &body(call, &arn, first + n));
                                let mut http = hyper::Request::post(format!("http://{host}/"));
                                for (name, value) in &request.headers {
                                    http = http.header(name, value);
                                }
                                let response = client.request(http.body(Full::new(Bytes::from(request.body))).unwrap());
                                let response = response.await.unwrap();
                                let status = response.status();
                                let answer = response.into_body().collect().await.unwrap().to_bytes();
                                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
                                batch.push(micros(sent));
                            }
                            batch
                        }));
                    }
                    for task in tasks {
                        latencies.add(task.await.unwrap());
                    }
                    started.elapsed()
                })
            })
        });
        latencies.report(&format!("api/{name}"));
    }
    let _ = stop.send(());
    server_runtime.block_on(server).unwrap().unwrap();
    drop(client);
    group.finish();
    drop(arns);
    if let Ok(service) = Arc::try_unwrap(service) {
        service.close().unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn name(call: Call) -> &'static str {
    match call {
        Call::AddTags => "add_tags",
        Call::Describe => "describe",
    }
}

criterion_group!(benches, api);
criterion_main!(benches);
