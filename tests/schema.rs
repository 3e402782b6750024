//! Schema evolution: stores written by earlier versions of the model open,
//! replay, travel in time and take new commits with today's code.
//!
//! `tests/fixtures/vN/` holds a store written when the model was at schema
//! version N, with the counts and state digests it must show at chosen
//! points (`expected.txt`). A fixture is never edited or deleted; each new
//! schema version adds its own with
//! `ELBSTORE_WRITE_FIXTURE=1 cargo test --test schema -- --ignored --exact write_the_fixture_of_this_schema_version`.

mod common;

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::TempDir;
use elbstore::elb::{
    fleet, Action, Command, CreateListener, CreateLoadBalancer, CreateRule, CreateTargetGroup, ElbState, ElbStore,
    EntityKind, HealthCheck, HealthState, IpAddressType, LoadBalancerId, LoadBalancerState, LoadBalancerType,
    ModifyListener, OnConflict, Protocol, RevertMode, RevertSelection, Scheme, Settings, SubnetMapping, Taggable,
    TargetGroupId, TargetHealth, TargetSpec, TargetType, WeightedTargetGroup,
};
use elbstore::elb::{Condition, ListenerId, Tags};
use elbstore::{verify, Create, ManualClock, OpenMode, Options, Point, SnapshotRetention, Timestamp, TxnMeta};

/// The schema version of the model this build writes.
const CURRENT_SCHEMA: u32 = 1;

fn fixture_dir(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(format!("v{version}"))
}

// ---------------------------------------------------------------------------
// Digests that do not depend on how the state is encoded

/// A digest of every resource's rendering, in key order: `crc32-bytes`.
fn digest(state: &ElbState) -> String {
    let mut hasher = crc32fast::Hasher::new();
    let mut bytes = 0usize;
    for kind in EntityKind::ALL {
        let mut lines: Vec<String> = state.entities(kind).map(|entity| format!("{entity:?}\n")).collect();
        lines.sort();
        for line in lines {
            hasher.update(line.as_bytes());
            bytes += line.len();
        }
    }
    format!("{:08x}-{bytes}", hasher.finalize())
}

/// One line of `expected.txt`: a point and what the store shows there.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    seq: u64,
    time_ns: u64,
    counts: [usize; 5],
    events: u64,
    digest: String,
}

impl Expected {
    fn line(&self) -> String {
        let [lb, listener, rule, tg, target] = self.counts;
        format!(
            "seq={} time_ns={} load_balancers={lb} listeners={listener} rules={rule} target_groups={tg} targets={target} events={} digest={}",
            self.seq, self.time_ns, self.events, self.digest
        )
    }

    fn parse(line: &str) -> Expected {
        let fields: BTreeMap<&str, &str> =
            line.split_whitespace().map(|pair| pair.split_once('=').unwrap_or_else(|| panic!("{line}"))).collect();
        let number = |key: &str| fields[key].parse::<u64>().unwrap_or_else(|e| panic!("{key} in {line}: {e}"));
        Expected {
            seq: number("seq"),
            time_ns: number("time_ns"),
            counts: ["load_balancers", "listeners", "rules", "target_groups", "targets"].map(|k| number(k) as usize),
            events: number("events"),
            digest: fields["digest"].to_owned(),
        }
    }
}

fn observe(store: &ElbStore, seq: u64) -> Expected {
    let view = store.store().state_at(Point::Seq(seq)).unwrap();
    let counts = view.state().counts();
    let events = store.store().transactions(1..=seq).map(|t| t.unwrap().events.len() as u64).sum();
    Expected {
        seq,
        time_ns: view.time().as_nanos(),
        counts: EntityKind::ALL.map(|kind| counts.of(kind)),
        events,
        digest: digest(view.state()),
    }
}

// ---------------------------------------------------------------------------
// The fixture's history

const LOAD_BALANCERS: u64 = 240;
const PER_TRANSACTION: u64 = 4;
const NAME: &str = "elb-prod-use1";
const ENVIRONMENT: &str = "production";

fn options(clock: &ManualClock) -> Options {
    Options::default()
        .identity(NAME, ENVIRONMENT)
        .segment_bytes(256 * 1024)
        .snapshot_every_events(None)
        .snapshot_retention(SnapshotRetention::KeepLast(NonZeroUsize::new(2).unwrap()))
        .clock(Arc::new(clock.clone()))
}

struct Writer<'a> {
    store: &'a ElbStore,
    clock: &'a ManualClock,
}

impl Writer<'_> {
    fn run(&self, meta: TxnMeta, commands: Vec<Command>) -> u64 {
        self.clock.advance(Duration::from_secs(60));
        let applied = self.store.execute(meta, commands).unwrap_or_else(|e| panic!("{e}"));
        applied.committed.expect("the fixture's commands all change something").seq
    }

    fn state(&self) -> Arc<ElbState> {
        self.store.read().state_arc()
    }

    fn lb(&self, i: u64) -> LoadBalancerId {
        self.state().load_balancer_by_name(&fleet::account(i), &fleet::name(i)).unwrap().id
    }

    fn tg(&self, i: u64) -> TargetGroupId {
        self.state().target_group_by_name(&fleet::account(i), &fleet::name(i)).unwrap().id
    }

    fn listener(&self, i: u64, port: u16) -> ListenerId {
        let state = self.state();
        let lb = self.lb(i);
        let id = state.listeners_of(lb).find(|l| l.port == port).unwrap().id;
        id
    }
}

fn provisioner(what: &str) -> TxnMeta {
    TxnMeta::new("svc:provisioner", what)
}

fn subnets(zones: &[&str], tag: &str) -> Vec<SubnetMapping> {
    zones
        .iter()
        .map(|zone| SubnetMapping {
            subnet_id: format!("subnet-{tag}{zone}"),
            availability_zone: format!("us-east-1{zone}"),
        })
        .collect()
}

/// Network and gateway load balancers, with target groups of every target
/// type, so every protocol and type variant is in the log.
fn other_types(w: &Writer, account: &str) {
    let tags = || Tags::from([("tier".to_owned(), "edge".to_owned())]);
    let seq = w.run(
        provisioner("network load balancer"),
        vec![
            Command::CreateLoadBalancer(CreateLoadBalancer {
                account: account.into(),
                name: "nlb-edge".into(),
                load_balancer_type: LoadBalancerType::Network,
                scheme: Scheme::InternetFacing,
                ip_address_type: IpAddressType::Dualstack,
                vpc_id: "vpc-edge".into(),
                subnets: subnets(&["a"], "nlb"),
                security_groups: vec!["sg-nlb".into()],
                attributes: [("load_balancing.cross_zone.enabled".to_owned(), "true".to_owned())].into(),
                tags: tags(),
            }),
            target_group(account, "vpc-edge", "tg-ip", Some(Protocol::Tcp), Some(443), TargetType::Ip),
            target_group(account, "vpc-edge", "tg-udp", Some(Protocol::Udp), Some(53), TargetType::Ip),
            target_group(account, "vpc-edge", "tg-alb", Some(Protocol::Tcp), Some(80), TargetType::Alb),
            target_group(account, "vpc-edge", "tg-lambda", None, None, TargetType::Lambda),
        ],
    );
    let nlb = LoadBalancerId::new(seq, 0);
    let (tg_ip, tg_udp, tg_alb) = (TargetGroupId::new(seq, 1), TargetGroupId::new(seq, 2), TargetGroupId::new(seq, 3));
    let listener = |port, protocol, tg, certificates: Vec<String>| {
        Command::CreateListener(CreateListener {
            load_balancer: nlb,
            port,
            protocol,
            certificates,
            ssl_policy: None,
            default_actions: vec![Action::forward(tg)],
            tags: Tags::new(),
        })
    };
    w.run(
        provisioner("network listeners"),
        vec![
            listener(443, Protocol::Tls, tg_ip, vec!["arn:aws:acm:us-east-1:1:certificate/nlb".into()]),
            listener(53, Protocol::Udp, tg_udp, vec![]),
            listener(80, Protocol::Tcp, tg_alb, vec![]),
            listener(8053, Protocol::TcpUdp, tg_udp, vec![]),
            Command::RegisterTargets {
                target_group: tg_ip,
                targets: vec![
                    TargetSpec {
                        id: "10.0.0.1".into(),
                        port: Some(8443),
                        availability_zone: Some("us-east-1a".into()),
                    },
                    TargetSpec { id: "10.0.0.2".into(), port: None, availability_zone: None },
                ],
            },
            Command::RegisterTargets {
                target_group: TargetGroupId::new(seq, 4),
                targets: vec![TargetSpec::new("arn:aws:lambda:us-east-1:1:function:edge")],
            },
        ],
    );
    let seq = w.run(
        provisioner("gateway load balancer"),
        vec![
            Command::CreateLoadBalancer(CreateLoadBalancer {
                account: account.into(),
                name: "gwlb-inspect".into(),
                load_balancer_type: LoadBalancerType::Gateway,
                scheme: Scheme::Internal,
                ip_address_type: IpAddressType::Ipv4,
                vpc_id: "vpc-inspect".into(),
                subnets: subnets(&["a", "b"], "gw"),
                security_groups: vec![],
                attributes: Default::default(),
                tags: Tags::new(),
            }),
            target_group(account, "vpc-inspect", "tg-geneve", Some(Protocol::Geneve), Some(6081), TargetType::Ip),
        ],
    );
    w.run(
        provisioner("gateway listener"),
        vec![Command::CreateListener(CreateListener {
            load_balancer: LoadBalancerId::new(seq, 0),
            port: 6081,
            protocol: Protocol::Geneve,
            certificates: vec![],
            ssl_policy: None,
            default_actions: vec![Action::forward(TargetGroupId::new(seq, 1))],
            tags: Tags::new(),
        })],
    );
    w.run(
        provisioner("dual stack without public ipv4"),
        vec![Command::CreateLoadBalancer(CreateLoadBalancer {
            account: account.into(),
            name: "alb-public-v6".into(),
            load_balancer_type: LoadBalancerType::Application,
            scheme: Scheme::InternetFacing,
            ip_address_type: IpAddressType::DualstackWithoutPublicIpv4,
            vpc_id: "vpc-v6".into(),
            subnets: subnets(&["a", "b", "c"], "v6"),
            security_groups: vec!["sg-v6a".into(), "sg-v6b".into()],
            attributes: [
                ("idle_timeout.timeout_seconds".to_owned(), "120".to_owned()),
                ("routing.http2.enabled".to_owned(), "false".to_owned()),
                ("access_logs.s3.enabled".to_owned(), "true".to_owned()),
                ("access_logs.s3.bucket".to_owned(), "logs-v6".to_owned()),
            ]
            .into(),
            tags: Tags::new(),
        })],
    );
}

fn target_group(
    account: &str,
    vpc: &str,
    name: &str,
    protocol: Option<Protocol>,
    port: Option<u16>,
    kind: TargetType,
) -> Command {
    let health_check = match protocol {
        Some(Protocol::Http) | None => HealthCheck::default(),
        _ => HealthCheck { protocol: Protocol::Tcp, path: None, matcher: None, ..HealthCheck::default() },
    };
    Command::CreateTargetGroup(CreateTargetGroup {
        account: account.into(),
        name: name.into(),
        protocol,
        port,
        vpc_id: (kind != TargetType::Lambda).then(|| vpc.to_owned()),
        target_type: kind,
        health_check,
        attributes: [("deregistration_delay.timeout_seconds".to_owned(), "30".to_owned())].into(),
        tags: Tags::new(),
    })
}

/// Updates of every kind of resource, every action and condition variant,
/// and deletions of single resources, on reference load balancer `i`.
fn churn(w: &Writer, i: u64, actor: &str) {
    let meta = |what: &str| TxnMeta::new(actor, what).with_ticket(format!("CHG-{i}"));
    let (lb, tg) = (w.lb(i), w.tg(i));
    let (http, https) = (w.listener(i, 80), w.listener(i, 443));
    w.run(
        meta("load balancer settings"),
        vec![
            Command::ModifyLoadBalancerAttributes {
                load_balancer: lb,
                attributes: [
                    ("deletion_protection.enabled".to_owned(), "false".to_owned()),
                    ("routing.http.drop_invalid_header_fields.enabled".to_owned(), "true".to_owned()),
                ]
                .into(),
            },
            Command::SetSubnets { load_balancer: lb, subnets: subnets(&["a", "b", "c"], &format!("{i:x}")) },
            Command::SetSecurityGroups {
                load_balancer: lb,
                security_groups: vec![format!("sg-{i:x}"), "sg-shared".into()],
            },
            Command::SetIpAddressType { load_balancer: lb, ip_address_type: IpAddressType::Dualstack },
            Command::SetLoadBalancerState { load_balancer: lb, state: LoadBalancerState::ActiveImpaired },
            Command::AddTags {
                resource: Taggable::LoadBalancer(lb),
                tags: [("cost-centre".to_owned(), format!("cc-{}", i % 7))].into(),
            },
        ],
    );
    let mut redirect = ModifyListener::new(http);
    redirect.default_actions = Some(vec![Action::Redirect {
        protocol: Some("HTTPS".into()),
        host: None,
        port: Some(443),
        path: Some("/#{path}".into()),
        status_code: 301,
    }]);
    let mut tls = ModifyListener::new(https);
    tls.ssl_policy = Some("ELBSecurityPolicy-TLS13-1-2-2021-06".into());
    w.run(
        meta("listeners"),
        vec![
            Command::ModifyListener(redirect),
            Command::ModifyListener(tls),
            Command::AddListenerCertificates {
                listener: https,
                certificates: vec![format!("arn:aws:acm:us-east-1:1:certificate/extra-{i}")],
            },
            Command::AddTags {
                resource: Taggable::Listener(https),
                tags: [("tls".to_owned(), "1.3".to_owned())].into(),
            },
        ],
    );
    let seq = w.run(
        meta("rules"),
        vec![
            Command::CreateRule(CreateRule {
                listener: https,
                priority: 20,
                conditions: vec![
                    Condition::HttpHeader { name: "x-canary".into(), values: vec!["yes".into()] },
                    Condition::HttpRequestMethod(vec!["GET".into(), "HEAD".into()]),
                    Condition::QueryString(vec![(Some("v".into()), "2".into()), (None, "beta".into())]),
                    Condition::SourceIp(vec!["10.0.0.0/8".into()]),
                ],
                actions: vec![Action::Forward {
                    target_groups: vec![WeightedTargetGroup { target_group: tg, weight: 90 }],
                }],
                tags: [("kind".to_owned(), "canary".to_owned())].into(),
            }),
            Command::CreateRule(CreateRule {
                listener: https,
                priority: 30,
                conditions: vec![Condition::PathPattern(vec!["/maintenance".into()])],
                actions: vec![Action::FixedResponse {
                    status_code: 503,
                    content_type: Some("text/plain".into()),
                    body: Some("back soon".into()),
                }],
                tags: Tags::new(),
            }),
        ],
    );
    let (canary, maintenance) = (elbstore::elb::RuleId::new(seq, 0), elbstore::elb::RuleId::new(seq, 1));
    w.run(
        meta("rule changes"),
        vec![
            Command::ModifyRule {
                rule: canary,
                conditions: Some(vec![Condition::HostHeader(vec![format!("canary-{i}.example.com")])]),
                actions: None,
            },
            Command::SetRulePriorities { priorities: vec![(canary, 25), (maintenance, 35)] },
            Command::AddTags {
                resource: Taggable::Rule(canary),
                tags: [("owner".to_owned(), "web".to_owned())].into(),
            },
            Command::RemoveTags { resource: Taggable::Rule(canary), keys: vec!["kind".into()] },
        ],
    );
    w.run(
        meta("targets"),
        vec![
            Command::ModifyTargetGroup {
                target_group: tg,
                health_check: HealthCheck {
                    path: Some("/ready".into()),
                    interval_seconds: 10,
                    matcher: Some("200-299".into()),
                    ..HealthCheck::default()
                },
            },
            Command::ModifyTargetGroupAttributes {
                target_group: tg,
                attributes: [
                    ("stickiness.enabled".to_owned(), "true".to_owned()),
                    ("stickiness.type".to_owned(), "lb_cookie".to_owned()),
                    ("load_balancing.algorithm.type".to_owned(), "least_outstanding_requests".to_owned()),
                    ("slow_start.duration_seconds".to_owned(), "60".to_owned()),
                ]
                .into(),
            },
            Command::UpdateTargetHealth {
                target_group: tg,
                target: TargetSpec::new(fleet::target_id(i, 0)),
                health: TargetHealth { state: HealthState::Healthy, reason: None },
            },
            Command::UpdateTargetHealth {
                target_group: tg,
                target: TargetSpec::new(fleet::target_id(i, 1)),
                health: TargetHealth { state: HealthState::Unhealthy, reason: Some("Target.Timeout".into()) },
            },
            Command::UpdateTargetHealth {
                target_group: tg,
                target: TargetSpec::new(fleet::target_id(i, 2)),
                health: TargetHealth { state: HealthState::Draining, reason: None },
            },
            Command::DeregisterTargets { target_group: tg, targets: vec![TargetSpec::new(fleet::target_id(i, 9))] },
            Command::RegisterTargets {
                target_group: tg,
                targets: vec![TargetSpec {
                    id: format!("i-{i:012x}new"),
                    port: Some(9090),
                    availability_zone: Some("us-east-1c".into()),
                }],
            },
            Command::AddTags {
                resource: Taggable::TargetGroup(tg),
                tags: [("svc".to_owned(), "api".to_owned())].into(),
            },
        ],
    );
    w.run(
        meta("retire the maintenance page"),
        vec![
            Command::DeleteRule { rule: maintenance },
            Command::RemoveListenerCertificates {
                listener: https,
                certificates: vec![format!("arn:aws:acm:us-east-1:1:certificate/extra-{i}")],
            },
            Command::SetLoadBalancerState { load_balancer: lb, state: LoadBalancerState::Active },
        ],
    );
}

/// Writes the fixture store into `dir` (which must not exist) and returns
/// the points to record.
fn write_fixture(dir: &Path) -> Vec<u64> {
    let clock = ManualClock::new(Timestamp::from_secs(1_795_996_800));
    let source_dir = TempDir::new("fixture-source");
    let source = ElbStore::open(source_dir.path(), options(&clock).create(Create::New), Settings::default()).unwrap();
    let w = Writer { store: &source, clock: &clock };
    let mut points = vec![0];
    for first in (0..LOAD_BALANCERS).step_by(PER_TRANSACTION as usize) {
        let next = source.read().seq() + 1;
        w.run(provisioner("build the fleet"), fleet::batch_commands(first..first + PER_TRANSACTION, next));
    }
    points.push(source.read().seq());
    other_types(&w, "200000000000");
    for i in (0..LOAD_BALANCERS).step_by(16) {
        churn(&w, i, if i % 32 == 0 { "ops:alice" } else { "svc:deployer" });
    }
    w.run(
        TxnMeta::new("ops:bob", "decommission one listener and its load balancer's neighbour"),
        vec![
            Command::DeleteListener { listener: w.listener(3, 80) },
            Command::DeleteLoadBalancer { load_balancer: w.lb(5) },
        ],
    );
    points.push(source.read().seq());
    // The 2012 mistake, approved this time, and its revert.
    let doomed: Vec<Command> = (100..160).map(|i| Command::DeleteLoadBalancer { load_balancer: w.lb(i) }).collect();
    let deletion = w.run(
        TxnMeta::new("svc:maintenance", "clean up idle load balancers").with_approval("CHG-2412", "ops:carol"),
        doomed,
    );
    points.push(deletion);
    clock.advance(Duration::from_secs(60));
    let plan = source
        .revert(
            RevertSelection::Transactions(vec![deletion]),
            TxnMeta::new("ops:oncall", "undo the mistaken clean-up").with_ticket("INC-2412"),
            RevertMode::Apply,
            OnConflict::Abort,
        )
        .unwrap();
    assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
    points.push(source.read().seq());

    // The fixture is a restored store: its history is the source's, copied,
    // then its own.
    clock.advance(Duration::from_secs(60));
    source
        .store()
        .restore_to(
            Point::Seq(source.read().seq()),
            dir,
            options(&clock),
            &TxnMeta::new("ops:oncall", "move the fleet to new hardware").with_ticket("INC-2413"),
        )
        .unwrap();
    source.close().unwrap();
    let store = ElbStore::open(dir, options(&clock), Settings::default()).unwrap();
    let w = Writer { store: &store, clock: &clock };
    for i in (8..LOAD_BALANCERS).step_by(48) {
        churn(&w, i, "svc:deployer");
    }
    w.run(
        TxnMeta::new("ops:bob", "retire a target group").with_ticket("CHG-9"),
        vec![Command::DeleteTargetGroup { target_group: w.tg(5) }],
    );
    let mistake = w.run(
        TxnMeta::new("ops:dave", "remove a load balancer by mistake"),
        vec![Command::DeleteLoadBalancer { load_balancer: w.lb(7) }],
    );
    clock.advance(Duration::from_secs(60));
    store
        .revert(
            RevertSelection::Transactions(vec![mistake]),
            TxnMeta::new("ops:dave", "put it back"),
            RevertMode::Apply,
            OnConflict::Abort,
        )
        .unwrap();
    let snapshot = store.store().snapshot().unwrap().seq;
    points.push(snapshot);
    // The log tail after the last snapshot.
    for i in (1..LOAD_BALANCERS).step_by(24) {
        let tg = w.tg(i);
        w.run(
            TxnMeta::new("svc:health", "health checks"),
            vec![Command::UpdateTargetHealth {
                target_group: tg,
                target: TargetSpec::new(fleet::target_id(i, 3)),
                health: TargetHealth { state: HealthState::Unavailable, reason: Some("Elb.InternalError".into()) },
            }],
        );
    }
    points.push(store.read().seq());
    store.close().unwrap();
    points
}

fn expected_lines(store: &ElbStore, points: &[u64]) -> String {
    points.iter().map(|&seq| observe(store, seq).line() + "\n").collect()
}

/// Writes `tests/fixtures/v{CURRENT_SCHEMA}/`: run once per schema version,
/// when the model changes, and commit the result. Refuses to overwrite.
#[test]
#[ignore = "writes a fixture into the source tree; run by hand once per schema version"]
fn write_the_fixture_of_this_schema_version() {
    assert_eq!(std::env::var("ELBSTORE_WRITE_FIXTURE").as_deref(), Ok("1"), "set ELBSTORE_WRITE_FIXTURE=1");
    let root = fixture_dir(CURRENT_SCHEMA);
    assert!(!root.exists(), "{} exists: a fixture is never rewritten", root.display());
    let store_dir = root.join("store");
    let points = write_fixture(&store_dir);
    std::fs::remove_file(store_dir.join(elbstore::LOCK_FILE)).ok();
    let store = ElbStore::open(&store_dir, read_only(), Settings::default()).unwrap();
    let mut text = format!(
        "# Written by tests/schema.rs write_the_fixture_of_this_schema_version, schema version {CURRENT_SCHEMA}.\n\
         # One line per point: what state_at(seq) shows. Digests are of every resource's Debug rendering.\n"
    );
    text += &expected_lines(&store, &points);
    std::fs::write(root.join("expected.txt"), text).unwrap();
}

fn read_only() -> Options {
    Options::default().mode(OpenMode::ReadOnly).identity(NAME, ENVIRONMENT)
}

/// Copies a fixture's store into a fresh directory, so tests never write to
/// the source tree.
fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn check_fixture(version: u32) {
    let root = fixture_dir(version);
    let expected: Vec<Expected> = std::fs::read_to_string(root.join("expected.txt"))
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(Expected::parse)
        .collect();
    assert!(expected.len() >= 5, "a fixture records several points");
    let copy = TempDir::new(&format!("fixture-v{version}"));
    copy_store(&root.join("store"), copy.path());

    let report = verify::<ElbState>(copy.path(), read_only()).unwrap();
    assert!(report.ok(), "v{version}: {:?}", report.problems);
    let last = expected.last().unwrap();
    assert_eq!(report.transactions, last.seq);

    let store = ElbStore::open(copy.path(), read_only(), Settings::default()).unwrap();
    assert!(store.store().open_report().snapshot.is_some(), "v{version}: the fixture's snapshot is used");
    assert!(copy.path().join(elbstore::RESTORED_FROM_FILE).exists());
    for point in &expected {
        assert_eq!(&observe(&store, point.seq), point, "v{version} at seq {}", point.seq);
    }
    // Time travel by time lands on the same states.
    for point in &expected[1..] {
        let view = store.store().state_at(Point::Time(Timestamp(point.time_ns))).unwrap();
        assert_eq!(view.seq(), point.seq);
        assert_eq!(digest(view.state()), point.digest);
    }
    let state = store.read().state_arc();
    drop(store);

    // A new commit lands on the old history, and a reopen agrees.
    let writable = Options::default().identity(NAME, ENVIRONMENT);
    let store = ElbStore::open(copy.path(), writable.clone(), Settings::default()).unwrap();
    assert_eq!(store.read().state(), &*state);
    let lb = state.load_balancers().next().unwrap().id;
    let applied = store
        .execute(
            TxnMeta::new("ops:test", "a change on an old store"),
            vec![Command::AddTags {
                resource: Taggable::LoadBalancer(lb),
                tags: [("new".to_owned(), "yes".to_owned())].into(),
            }],
        )
        .unwrap();
    assert_eq!(applied.committed.unwrap().seq, last.seq + 1);
    let after = store.read().state_arc();
    store.close().unwrap();
    let store = ElbStore::open(copy.path(), writable, Settings::default()).unwrap();
    assert_eq!(store.read().state(), &*after);
    assert_eq!(store.read().seq(), last.seq + 1);
    let report = verify::<ElbState>(copy.path(), read_only()).unwrap();
    assert!(report.ok(), "v{version} after a new commit: {:?}", report.problems);
}

#[test]
fn the_v1_fixture_opens_verifies_and_takes_a_new_commit() {
    check_fixture(1);
}

/// Every fixture of every released schema version is checked by a test of
/// its own; this catches a version whose fixture was forgotten.
#[test]
fn every_schema_version_has_a_fixture() {
    for version in 1..=CURRENT_SCHEMA {
        assert!(fixture_dir(version).join("expected.txt").exists(), "no fixture for schema version {version}");
    }
}
