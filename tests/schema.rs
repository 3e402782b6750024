//! Schema evolution: stores written by earlier versions of the model open,
//! replay, travel in time and take new commits with today's code.
//!
//! `tests/fixtures/vN/` holds a store written when the model was at schema
//! version N, with the counts and state digests it must show at chosen
//! points (`expected-json.txt`). A fixture is never edited or deleted; each
//! new schema version adds its own with
//! `ELBSTORE_WRITE_FIXTURE=1 cargo test --test schema -- --ignored --exact write_the_fixture_of_this_schema_version`.
//!
//! A digest is of every resource's JSON. The `expected.txt` and
//! `expected-read-by-v2.txt` files of the v1 and v2 fixtures hold digests of
//! every resource's `Debug` text, recorded before the JSON digests; they were
//! last checked at commit 43642cb, which checked both digests at every point
//! and recorded the JSON ones from the states that still showed the recorded
//! `Debug` digests. They are kept as history: `Debug` text is not a format
//! (an id's `Debug` has since become its `Display` text).

mod common;

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{dir_contents, files_with_prefix, TempDir};
use elbstore::elb::{
    fleet, Action, Attributes, AuthenticateOidc, Command, CreateListener, CreateLoadBalancer, CreateRule,
    CreateTargetGroup, CreateTrustStore, ElbState, ElbStore, EntityKey, EntityKind, HealthCheck, HealthReason,
    HealthState, IpAddressType, LoadBalancerId, LoadBalancerState, LoadBalancerType, ModifyHealthCheck, ModifyListener,
    MutualAuthentication, MutualAuthenticationMode, OnConflict, Outcome, Protocol, ProtocolVersion, RevertMode,
    RevertSelection, S3Object, Scheme, Settings, SubnetMapping, Taggable, TargetGroupId, TargetGroupIpAddressType,
    TargetHealth, TargetSpec, TargetType, TrustStoreId, WeightedTargetGroup, DEREGISTRATION_DELAY,
};
use elbstore::elb::{Condition, ListenerId, Tags};
use elbstore::{verify, Create, ManualClock, OpenMode, Options, Point, SnapshotRetention, Timestamp, TxnMeta};

/// The schema version of the model this build writes.
const CURRENT_SCHEMA: u32 = 2;

fn fixture_dir(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(format!("v{version}"))
}

// ---------------------------------------------------------------------------
// Digests that do not depend on how the state is encoded

/// A digest of every resource's JSON, in key order: `crc32-bytes`. The JSON
/// is `serde_json`'s, from the model's `Serialize`: fields in declaration
/// order, maps are `BTreeMap`s and iterate in key order, no floats, so the
/// same state always gives the same text, whatever the types' `Debug`.
fn digest(state: &ElbState) -> String {
    let mut hasher = crc32fast::Hasher::new();
    let mut bytes = 0usize;
    for kind in EntityKind::ALL {
        let mut lines: Vec<String> =
            state.entities(kind).map(|entity| serde_json::to_string(&entity).unwrap() + "\n").collect();
        lines.sort();
        for line in lines {
            hasher.update(line.as_bytes());
            bytes += line.len();
        }
    }
    format!("{:08x}-{bytes}", hasher.finalize())
}

/// The file of a fixture's own digests, written with it.
const OWN_DIGESTS: &str = "expected-json.txt";

/// The file of the digests schema `reader` shows for an older fixture.
fn read_by_file(reader: u32) -> String {
    format!("expected-json-read-by-v{reader}.txt")
}

/// One line of `expected-json.txt`: a point and what the store shows there.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    seq: u64,
    time_ns: u64,
    counts: [usize; 6],
    events: u64,
    digest: String,
}

impl Expected {
    fn line(&self) -> String {
        let [lb, listener, rule, tg, target, trust_stores] = self.counts;
        format!(
            "seq={} time_ns={} load_balancers={lb} listeners={listener} rules={rule} target_groups={tg} targets={target} trust_stores={trust_stores} events={} digest={}",
            self.seq, self.time_ns, self.events, self.digest
        )
    }

    fn parse(line: &str) -> Expected {
        let fields: BTreeMap<&str, &str> =
            line.split_whitespace().map(|pair| pair.split_once('=').unwrap_or_else(|| panic!("{line}"))).collect();
        // Schema 1's lines have no trust stores: there were none.
        let number = |key: &str| {
            fields.get(key).map_or(Ok(0), |v| v.parse::<u64>()).unwrap_or_else(|e| panic!("{key} in {line}: {e}"))
        };
        Expected {
            seq: number("seq"),
            time_ns: number("time_ns"),
            counts: ["load_balancers", "listeners", "rules", "target_groups", "targets", "trust_stores"]
                .map(|k| number(k) as usize),
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
                tags: tags(),
            }),
            target_group(account, "vpc-edge", "tg-ip", Some(Protocol::Tcp), Some(443), TargetType::Ip),
            target_group(account, "vpc-edge", "tg-udp", Some(Protocol::Udp), Some(53), TargetType::Ip),
            target_group(account, "vpc-edge", "tg-alb", Some(Protocol::Tcp), Some(80), TargetType::Alb),
            target_group(account, "vpc-edge", "tg-lambda", None, None, TargetType::Lambda),
            target_group(account, "vpc-edge", "tg-tcp-udp", Some(Protocol::TcpUdp), Some(8053), TargetType::Instance),
            target_group(account, "vpc-edge", "tg-quic", Some(Protocol::Quic), Some(8443), TargetType::Ip),
        ],
    );
    let nlb = LoadBalancerId::new(seq, 0);
    let (tg_ip, tg_udp, tg_alb) = (TargetGroupId::new(seq, 1), TargetGroupId::new(seq, 2), TargetGroupId::new(seq, 3));
    let (tg_tcp_udp, tg_quic) = (TargetGroupId::new(seq, 5), TargetGroupId::new(seq, 6));
    let listener = |port, protocol, tg, certificate: Option<String>| {
        Command::CreateListener(CreateListener {
            load_balancer: nlb,
            port: Some(port),
            protocol: Some(protocol),
            default_certificate: certificate,
            default_actions: vec![Action::forward(tg)],
            ..CreateListener::default()
        })
    };
    // An application load balancer in the same VPC, to be the `alb` group's target.
    let inner = w.run(
        provisioner("inner application load balancer"),
        vec![
            Command::CreateLoadBalancer(CreateLoadBalancer {
                account: account.into(),
                name: "alb-inner".into(),
                scheme: Scheme::Internal,
                vpc_id: "vpc-edge".into(),
                subnets: subnets(&["a", "b"], "inner"),
                security_groups: vec!["sg-inner".into()],
                ..CreateLoadBalancer::default()
            }),
            Command::CreateListener(CreateListener {
                load_balancer: LoadBalancerId::new(w.store.read().seq() + 1, 0),
                port: Some(80),
                protocol: Some(Protocol::Http),
                default_actions: vec![Action::FixedResponse {
                    status_code: 200,
                    content_type: Some("application/json".into()),
                    body: Some("{}".into()),
                }],
                ..CreateListener::default()
            }),
        ],
    );
    let inner_arn = w.store.arn(&EntityKey::LoadBalancer(LoadBalancerId::new(inner, 0))).unwrap();
    w.run(
        provisioner("network listeners"),
        vec![
            Command::ModifyLoadBalancerAttributes {
                load_balancer: nlb,
                attributes: [("load_balancing.cross_zone.enabled".to_owned(), "true".to_owned())].into(),
            },
            listener(443, Protocol::Tls, tg_ip, Some("arn:aws:acm:us-east-1:200000000000:certificate/nlb".into())),
            listener(53, Protocol::Udp, tg_udp, None),
            listener(80, Protocol::Tcp, tg_alb, None),
            listener(8053, Protocol::TcpUdp, tg_tcp_udp, None),
            listener(8443, Protocol::Quic, tg_quic, None),
            Command::ModifyListenerAttributes {
                listener: ListenerId::new(w.store.read().seq() + 1, 2),
                attributes: [("tcp.idle_timeout.seconds".to_owned(), "600".to_owned())].into(),
            },
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
                targets: vec![TargetSpec::new("arn:aws:lambda:us-east-1:200000000000:function:edge")],
            },
            Command::RegisterTargets { target_group: tg_alb, targets: vec![TargetSpec::new(inner_arn)] },
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
                tags: Tags::new(),
            }),
            target_group(account, "vpc-inspect", "tg-geneve", Some(Protocol::Geneve), Some(6081), TargetType::Ip),
        ],
    );
    w.run(
        provisioner("gateway listener"),
        vec![Command::CreateListener(CreateListener {
            load_balancer: LoadBalancerId::new(seq, 0),
            default_actions: vec![Action::forward(TargetGroupId::new(seq, 1))],
            ..CreateListener::default()
        })],
    );
    let seq = w.run(
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
            tags: Tags::new(),
        })],
    );
    w.run(
        provisioner("dual stack settings"),
        vec![Command::ModifyLoadBalancerAttributes {
            load_balancer: LoadBalancerId::new(seq, 0),
            attributes: [
                ("idle_timeout.timeout_seconds".to_owned(), "120".to_owned()),
                ("routing.http2.enabled".to_owned(), "false".to_owned()),
                ("access_logs.s3.enabled".to_owned(), "true".to_owned()),
                ("access_logs.s3.bucket".to_owned(), "logs-v6".to_owned()),
            ]
            .into(),
        }],
    );
}

/// What schema 2 added: trust stores and mutual TLS (shared across
/// accounts, then the association removed), listener attributes, capacity
/// reservations, IPAM pools, authenticate actions, IPv6 and gRPC groups,
/// draining and its completion.
fn schema_2_features(w: &Writer, account: &str) {
    let bundle = |key: &str| S3Object { bucket: "ca-bundles".into(), key: key.into(), version: None };
    let seq = w.run(
        provisioner("trust stores"),
        vec![
            Command::CreateTrustStore(CreateTrustStore {
                account: account.into(),
                name: "clients".into(),
                ca_certificates_bundle: bundle("clients.pem"),
                tags: [("pki".to_owned(), "internal".to_owned())].into(),
            }),
            Command::CreateTrustStore(CreateTrustStore {
                account: account.into(),
                name: "partners".into(),
                ca_certificates_bundle: bundle("partners.pem"),
                tags: Tags::new(),
            }),
        ],
    );
    let (clients, partners) = (TrustStoreId::new(seq, 0), TrustStoreId::new(seq, 1));
    let applied = w
        .store
        .execute(
            provisioner("revocations"),
            vec![Command::AddTrustStoreRevocations {
                trust_store: clients,
                revocations: vec![bundle("crl-1.pem"), S3Object { version: Some("v7".into()), ..bundle("crl-2.pem") }],
            }],
        )
        .unwrap();
    w.clock.advance(Duration::from_secs(60));
    let Outcome::RevocationsAdded(ids) = &applied.outcomes[0] else { panic!("{:?}", applied.outcomes) };
    let lb = w.lb(2);
    let https = w.listener(2, 443);
    let mtls = |trust_store| MutualAuthentication {
        mode: MutualAuthenticationMode::Verify,
        trust_store: Some(trust_store),
        ignore_client_certificate_expiry: false,
        advertise_trust_store_ca_names: true,
        association_removed: false,
    };
    let seq = w.run(
        TxnMeta::new("ops:alice", "mutual TLS and capacity").with_ticket("CHG-2"),
        vec![
            Command::RemoveTrustStoreRevocations { trust_store: clients, revocation_ids: vec![ids[0]] },
            Command::ModifyTrustStore { trust_store: clients, ca_certificates_bundle: bundle("clients-2.pem") },
            Command::ModifyListener(ModifyListener {
                mutual_authentication: Some(mtls(clients)),
                ..ModifyListener::new(https)
            }),
            Command::ModifyListenerAttributes {
                listener: https,
                attributes: [
                    (
                        "routing.http.request.x_amzn_mtls_clientcert_subject.header_name".to_owned(),
                        "X-Client-Subject".to_owned(),
                    ),
                    ("routing.http.response.server.enabled".to_owned(), "false".to_owned()),
                ]
                .into(),
            },
            Command::ModifyCapacityReservation { load_balancer: lb, capacity_units: Some(200) },
            Command::ModifyIpPools { load_balancer: lb, ipv4_ipam_pool: Some("ipam-pool-0abc123".into()) },
            Command::AddTags {
                resources: vec![Taggable::TrustStore(clients), Taggable::LoadBalancer(lb)],
                tags: [("mtls".to_owned(), "on".to_owned())].into(),
            },
            Command::CreateTargetGroup(CreateTargetGroup {
                account: fleet::account(2),
                name: "grpc-2".into(),
                protocol: Some(Protocol::Https),
                port: Some(50051),
                vpc_id: Some(format!("vpc-{}", fleet::account(2))),
                protocol_version: Some(ProtocolVersion::Grpc),
                health_check: HealthCheck {
                    protocol: Protocol::Https,
                    path: Some("/AWS.ALB/healthcheck".into()),
                    matcher: Some("0-99".into()),
                    ..HealthCheck::default()
                },
                ..CreateTargetGroup::default()
            }),
            Command::CreateTargetGroup(CreateTargetGroup {
                account: fleet::account(2),
                name: "ipv6-2".into(),
                target_type: TargetType::Ip,
                ip_address_type: TargetGroupIpAddressType::Ipv6,
                vpc_id: Some(format!("vpc-{}", fleet::account(2))),
                ..CreateTargetGroup::default()
            }),
        ],
    );
    let (grpc, ipv6) = (TargetGroupId::new(seq, 0), TargetGroupId::new(seq, 1));
    let oidc = AuthenticateOidc {
        issuer: "https://idp.example.com".into(),
        authorization_endpoint: "https://idp.example.com/authorize".into(),
        token_endpoint: "https://idp.example.com/token".into(),
        user_info_endpoint: "https://idp.example.com/userinfo".into(),
        client_id: "elb".into(),
        on_unauthenticated_request: Some("authenticate".into()),
        ..AuthenticateOidc::default()
    };
    w.run(
        TxnMeta::new("ops:alice", "gRPC and IPv6 behind sign-in").with_ticket("CHG-3"),
        vec![
            Command::CreateRule(CreateRule {
                listener: https,
                priority: 40,
                conditions: vec![Condition::PathPattern(vec!["/grpc/*".into()])],
                actions: vec![Action::AuthenticateOidc(Box::new(oidc)), Action::forward(grpc)],
                tags: Tags::new(),
            }),
            Command::CreateRule(CreateRule {
                listener: https,
                priority: 41,
                conditions: vec![Condition::PathPattern(vec!["/v6/*".into()])],
                actions: vec![Action::forward(ipv6)],
                tags: Tags::new(),
            }),
            Command::RegisterTargets {
                target_group: ipv6,
                targets: vec![TargetSpec::new("2001:DB8:0:0::10"), TargetSpec::new("2001:db8::11")],
            },
            Command::ModifyTargetGroupAttributes {
                target_group: ipv6,
                attributes: [(DEREGISTRATION_DELAY.to_owned(), "120".to_owned())].into(),
            },
        ],
    );
    // A listener of another account verifies with a shared trust store; its
    // owner then removes the association.
    assert_ne!(fleet::account(50), account);
    let other_https = w.listener(50, 443);
    w.run(
        TxnMeta::new("ops:partner", "verify partners' clients").with_ticket("CHG-4"),
        vec![Command::ModifyListener(ModifyListener {
            mutual_authentication: Some(mtls(partners)),
            ..ModifyListener::new(other_https)
        })],
    );
    w.run(
        TxnMeta::new("ops:pki", "stop sharing the partners' trust store").with_ticket("CHG-5"),
        vec![Command::DeleteSharedTrustStoreAssociation { trust_store: partners, listener: other_https }],
    );
    w.run(
        TxnMeta::new("svc:deployer", "drain one IPv6 target"),
        vec![Command::DeregisterTargets { target_group: ipv6, targets: vec![TargetSpec::new("2001:db8::10")] }],
    );
    w.clock.advance(Duration::from_secs(120));
    w.run(
        TxnMeta::new("svc:deregistration", "deregistration delays ended"),
        vec![Command::CompleteDeregistrations { target_group: None }],
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
    let health_check = match (protocol, kind) {
        (Some(Protocol::Http) | None, _) | (_, TargetType::Alb) => HealthCheck::default(),
        _ => HealthCheck { protocol: Protocol::Tcp, path: None, matcher: None, ..HealthCheck::default() },
    };
    let attributes = match kind {
        TargetType::Lambda => Attributes::new(),
        _ => [(DEREGISTRATION_DELAY.to_owned(), "30".to_owned())].into(),
    };
    Command::CreateTargetGroup(CreateTargetGroup {
        account: account.into(),
        name: name.into(),
        protocol,
        port,
        vpc_id: (kind != TargetType::Lambda).then(|| vpc.to_owned()),
        target_type: kind,
        health_check,
        attributes,
        ..CreateTargetGroup::default()
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
                resources: vec![Taggable::LoadBalancer(lb)],
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
                certificates: vec![format!("arn:aws:acm:us-east-1:{}:certificate/extra-{i}", fleet::account(i))],
            },
            Command::AddTags {
                resources: vec![Taggable::Listener(https)],
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
                    Condition::HttpRequestMethod(vec!["GET".into()]),
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
                resources: vec![Taggable::Rule(canary)],
                tags: [("owner".to_owned(), "web".to_owned())].into(),
            },
            Command::RemoveTags { resources: vec![Taggable::Rule(canary)], keys: vec!["kind".into()] },
        ],
    );
    w.run(
        meta("targets"),
        vec![
            Command::ModifyTargetGroup {
                target_group: tg,
                health_check: ModifyHealthCheck {
                    path: Some("/ready".into()),
                    interval_seconds: Some(10),
                    matcher: Some("200-299".into()),
                    ..ModifyHealthCheck::default()
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
                health: TargetHealth::new(HealthState::Healthy, None),
            },
            Command::UpdateTargetHealth {
                target_group: tg,
                target: TargetSpec::new(fleet::target_id(i, 1)),
                health: TargetHealth::new(HealthState::Unhealthy, Some(HealthReason::Timeout)),
            },
            Command::UpdateTargetHealth {
                target_group: tg,
                target: TargetSpec::new(fleet::target_id(i, 2)),
                health: TargetHealth::new(HealthState::UnhealthyDraining, Some(HealthReason::FailedHealthChecks)),
            },
            Command::DeregisterTargets { target_group: tg, targets: vec![TargetSpec::new(fleet::target_id(i, 9))] },
            Command::RegisterTargets {
                target_group: tg,
                targets: vec![TargetSpec { id: format!("i-{i:015x}ff"), port: Some(9090), availability_zone: None }],
            },
            Command::AddTags {
                resources: vec![Taggable::TargetGroup(tg)],
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
                certificates: vec![format!("arn:aws:acm:us-east-1:{}:certificate/extra-{i}", fleet::account(i))],
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
    let source =
        ElbStore::open(source_dir.path(), options(&clock).create(Create::New), Settings::in_region("us-east-1"))
            .unwrap();
    let w = Writer { store: &source, clock: &clock };
    let mut points = vec![0];
    for first in (0..LOAD_BALANCERS).step_by(PER_TRANSACTION as usize) {
        let next = source.read().seq() + 1;
        w.run(provisioner("build the fleet"), fleet::batch_commands(first..first + PER_TRANSACTION, next));
    }
    points.push(source.read().seq());
    other_types(&w, "200000000000");
    schema_2_features(&w, &fleet::account(2));
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
    let store = ElbStore::open(dir, options(&clock), Settings::in_region("us-east-1")).unwrap();
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
                health: TargetHealth::new(HealthState::Unavailable, Some(HealthReason::InternalError)),
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
    let store = ElbStore::open(&store_dir, read_only(), Settings::in_region("us-east-1")).unwrap();
    let mut text = format!(
        "# Written by tests/schema.rs write_the_fixture_of_this_schema_version, schema version {CURRENT_SCHEMA}.\n\
         # One line per point: what state_at(seq) shows. Digests are of every resource's JSON (serde_json).\n"
    );
    text += &expected_lines(&store, &points);
    std::fs::write(root.join(OWN_DIGESTS), text).unwrap();
}

/// Writes `expected-json-read-by-v{CURRENT_SCHEMA}.txt` beside each older
/// fixture's digests: the digests this schema shows at the same points
/// (counts, times and event counts must not change; the upcaster's field by
/// field effect is checked by the schema module's unit test). Run once per
/// schema version with the fixture; refuses to overwrite.
#[test]
#[ignore = "writes into the source tree's fixtures; run by hand once per schema version"]
fn write_what_this_schema_version_reads_older_fixtures_as() {
    assert_eq!(std::env::var("ELBSTORE_WRITE_FIXTURE").as_deref(), Ok("1"), "set ELBSTORE_WRITE_FIXTURE=1");
    for version in 1..CURRENT_SCHEMA {
        let root = fixture_dir(version);
        let target = root.join(read_by_file(CURRENT_SCHEMA));
        assert!(!target.exists(), "{} exists: it is never rewritten", target.display());
        let expected = expected_of(version);
        let copy = TempDir::new(&format!("fixture-v{version}-read"));
        copy_store(&root.join("store"), copy.path());
        let store = ElbStore::open(copy.path(), read_only(), Settings::in_region("us-east-1")).unwrap();
        let mut text = format!(
            "# Written by tests/schema.rs write_what_this_schema_version_reads_older_fixtures_as: the v{version} \
             fixture as schema {CURRENT_SCHEMA} renders it (JSON).\n"
        );
        for point in &expected {
            let seen = observe(&store, point.seq);
            assert_eq!(
                (seen.seq, seen.time_ns, seen.counts, seen.events),
                (point.seq, point.time_ns, point.counts, point.events)
            );
            text += &(seen.line() + "\n");
        }
        std::fs::write(&target, text).unwrap();
    }
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

fn read_expected(path: &Path) -> Vec<Expected> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(Expected::parse)
        .collect()
}

/// The file of what the fixture of `version` must show: its own
/// `expected-json.txt`, written with it, unless a later schema renders
/// resources differently (a field added) and added
/// `expected-json-read-by-vN.txt` with the digests it shows, checked against
/// the upcaster's documented effect (counts, times and events never change):
/// the newest such file at or below the current schema. The v1 fixture has
/// no `expected-json.txt` (it predates the JSON digests), only schema 2's.
fn expected_file(version: u32) -> Option<PathBuf> {
    let root = fixture_dir(version);
    ((version + 1)..=CURRENT_SCHEMA)
        .rev()
        .map(|reader| root.join(read_by_file(reader)))
        .chain([root.join(OWN_DIGESTS)])
        .find(|path| path.exists())
}

/// What the fixture of `version` must show (see `expected_file`).
fn expected_of(version: u32) -> Vec<Expected> {
    read_expected(&expected_file(version).unwrap_or_else(|| panic!("v{version}: no digests")))
}

fn check_fixture(version: u32) {
    let root = fixture_dir(version);
    let expected = expected_of(version);
    assert!(expected.len() >= 5, "a fixture records several points");
    let copy = TempDir::new(&format!("fixture-v{version}"));
    copy_store(&root.join("store"), copy.path());

    let report = verify::<ElbState>(copy.path(), read_only()).unwrap();
    assert!(report.ok(), "v{version}: {:?}", report.problems);
    let last = expected.last().unwrap();
    assert_eq!(report.transactions, last.seq);

    let store = ElbStore::open(copy.path(), read_only(), Settings::in_region("us-east-1")).unwrap();
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
    assert_histories_are_the_log(&store, &format!("v{version}"));
    let state = store.read().state_arc();
    drop(store);

    // A new commit lands on the old history, and a reopen agrees.
    let writable = Options::default().identity(NAME, ENVIRONMENT);
    let store = ElbStore::open(copy.path(), writable.clone(), Settings::in_region("us-east-1")).unwrap();
    assert_eq!(store.read().state(), &*state);
    let lb = state.load_balancers().next().unwrap().id;
    let applied = store
        .execute(
            TxnMeta::new("ops:test", "a change on an old store"),
            vec![Command::AddTags {
                resources: vec![Taggable::LoadBalancer(lb)],
                tags: [("new".to_owned(), "yes".to_owned())].into(),
            }],
        )
        .unwrap();
    assert_eq!(applied.committed.unwrap().seq, last.seq + 1);
    let after = store.read().state_arc();
    store.close().unwrap();
    let store = ElbStore::open(copy.path(), writable, Settings::in_region("us-east-1")).unwrap();
    assert_eq!(store.read().state(), &*after);
    assert_eq!(store.read().seq(), last.seq + 1);
    assert_histories_are_the_log(&store, &format!("v{version} after a new commit"));
    let report = verify::<ElbState>(copy.path(), read_only()).unwrap();
    assert!(report.ok(), "v{version} after a new commit: {:?}", report.problems);
}

/// Every resource's history is its events in the log, in order: the entity
/// index reads only each record's metadata and that resource's events, and
/// upcasts them as a whole record's are.
fn assert_histories_are_the_log(store: &ElbStore, what: &str) {
    let mut expected: BTreeMap<EntityKey, Vec<_>> = BTreeMap::new();
    for txn in store.store().transactions(..) {
        let txn = txn.unwrap();
        for event in txn.events {
            expected.entry(event.key()).or_default().push((txn.seq, txn.time, txn.meta.clone(), event));
        }
    }
    assert!(expected.len() > 1000, "{what}: the fixture has many resources");
    for (key, events) in &expected {
        let versions = store.entity_history(key).unwrap_or_else(|e| panic!("{what}: {key}: {e}"));
        let got: Vec<_> = versions.into_iter().map(|v| (v.seq, v.time, v.meta, v.event)).collect();
        assert_eq!(&got, events, "{what}: {key}");
    }
}

/// Every record's payload, in order, from the segments in `dir`.
fn payloads(dir: &Path) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    for segment in files_with_prefix(dir, "wal-") {
        let bytes = std::fs::read(&segment).unwrap();
        let mut offset = elbstore::SEGMENT_HEADER_BYTES;
        while offset < bytes.len() {
            let frame = elbstore::decode_frame(&bytes[offset..], u32::MAX).unwrap();
            out.push((frame.seq, frame.payload.to_vec()));
            offset += frame.encoded_bytes();
        }
    }
    out
}

/// The snapshot's state bytes, between its header and trailer.
fn snapshot_payload(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    bytes[elbstore::SNAPSHOT_HEADER_BYTES..bytes.len() - elbstore::SNAPSHOT_TRAILER_BYTES].to_vec()
}

/// The fixture of the current schema version decodes and re-encodes to the
/// same bytes, records and snapshot alike: a change to the model's encoding
/// without a new schema version (docs/FORMAT.md, "How to change the model")
/// fails here.
#[test]
fn the_current_model_encodes_exactly_as_its_schema_version_s_fixture() {
    let current = <ElbState as StateMachine>::SCHEMA_VERSION;
    assert_eq!(u32::from(current), CURRENT_SCHEMA, "a new schema version needs its fixture and this constant raised");
    let fixture = fixture_dir(CURRENT_SCHEMA).join("store");
    let source = TempDir::new("reencode-source");
    copy_store(&fixture, source.path());
    let store = ElbStore::open(source.path(), read_only(), Settings::in_region("us-east-1")).unwrap();
    let snapshot = store.store().snapshots().last().cloned().unwrap();
    let target = TempDir::new("reencode-target");
    let target_dir = target.path().join("store");
    // A restore decodes every record and encodes it again with today's types.
    store
        .store()
        .restore_to(
            Point::Seq(snapshot.seq),
            &target_dir,
            Options::default().identity("reencoded", "test"),
            &TxnMeta::new("test", "re-encode"),
        )
        .unwrap_or_else(|e| {
            panic!("schema {current}'s fixture no longer decodes with today's model ({e}): raise the schema version (docs/FORMAT.md)")
        });
    let old: Vec<_> = payloads(source.path()).into_iter().take(snapshot.seq as usize).collect();
    let new = payloads(&target_dir);
    assert_eq!(old.len(), new.len());
    for ((seq, old), (_, new)) in old.iter().zip(&new) {
        assert!(
            old == new,
            "record {seq} encodes differently with today's model: raise the schema version (docs/FORMAT.md)"
        );
    }
    let restored = target_dir.join(snapshot.path.file_name().unwrap());
    assert!(
        snapshot_payload(&snapshot.path) == snapshot_payload(&restored),
        "the state encodes differently with today's model: raise the schema version (docs/FORMAT.md)"
    );
}

#[test]
fn the_v1_fixture_opens_verifies_and_takes_a_new_commit() {
    check_fixture(1);
}

#[test]
fn the_v2_fixture_opens_verifies_and_takes_a_new_commit() {
    check_fixture(2);
}

/// Every fixture of every released schema version is checked by a test of
/// its own; this catches a version whose fixture was forgotten.
#[test]
fn every_schema_version_has_a_fixture() {
    for version in 1..=CURRENT_SCHEMA {
        assert!(expected_file(version).is_some(), "no fixture for schema version {version}");
    }
}

// ---------------------------------------------------------------------------
// The procedure of docs/FORMAT.md "How to change the model", on a test model
// changed in every way, each version writing real records and snapshots that
// every later version reads.

/// An inventory of items, five schema versions: each module is frozen once
/// the next exists, and each upcasts from the one before it, so any older
/// version reaches the current one through the chain.
mod inventory {
    use std::collections::BTreeMap;

    use elbstore::{CodecError, OldBytes, StateMachine};
    use serde::{Deserialize, Serialize};

    /// Schema 1: items with names.
    pub mod v1 {
        use super::*;

        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum Event {
            Put { id: u32, name: String },
            Remove { id: u32 },
        }

        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct State {
            pub items: BTreeMap<u32, String>,
        }

        impl StateMachine for State {
            type Event = Event;

            fn apply(&mut self, event: &Event) {
                match event {
                    Event::Put { id, name } => drop(self.items.insert(*id, name.clone())),
                    Event::Remove { id } => drop(self.items.remove(id)),
                }
            }
        }
    }

    /// Schema 2, a field added: `weight`, 0 for items put before it existed.
    pub mod v2 {
        use super::*;

        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum Event {
            Put { id: u32, name: String, weight: u32 },
            Remove { id: u32 },
        }

        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct State {
            pub items: BTreeMap<u32, (String, u32)>,
        }

        pub fn from_v1(event: v1::Event) -> Vec<Event> {
            vec![match event {
                v1::Event::Put { id, name } => Event::Put { id, name, weight: 0 },
                v1::Event::Remove { id } => Event::Remove { id },
            }]
        }

        impl StateMachine for State {
            type Event = Event;
            const SCHEMA_VERSION: u8 = 2;

            fn apply(&mut self, event: &Event) {
                match event {
                    Event::Put { id, name, weight } => drop(self.items.insert(*id, (name.clone(), *weight))),
                    Event::Remove { id } => drop(self.items.remove(id)),
                }
            }

            fn upcast_event(version: u8, old: &mut OldBytes<'_>) -> Result<Vec<Event>, CodecError> {
                match version {
                    1 => Ok(from_v1(old.decode()?)),
                    _ => Err(CodecError::no_upcaster(version.into(), Self::SCHEMA_VERSION)),
                }
            }

            /// Cheap: every item gets the default weight.
            fn upcast_state(version: u8, old: &mut OldBytes<'_>) -> Result<Option<State>, CodecError> {
                match version {
                    1 => {
                        let old: v1::State = old.decode()?;
                        Ok(Some(State { items: old.items.into_iter().map(|(id, name)| (id, (name, 0))).collect() }))
                    }
                    _ => Ok(None),
                }
            }
        }
    }

    /// Schema 3, a field removed: items lose their names.
    pub mod v3 {
        use super::*;

        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum Event {
            Put { id: u32, weight: u32 },
            Remove { id: u32 },
        }

        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct State {
            pub items: BTreeMap<u32, u32>,
        }

        pub fn from_v2(event: v2::Event) -> Vec<Event> {
            vec![match event {
                v2::Event::Put { id, weight, .. } => Event::Put { id, weight },
                v2::Event::Remove { id } => Event::Remove { id },
            }]
        }

        impl StateMachine for State {
            type Event = Event;
            const SCHEMA_VERSION: u8 = 3;

            fn apply(&mut self, event: &Event) {
                match event {
                    Event::Put { id, weight } => drop(self.items.insert(*id, *weight)),
                    Event::Remove { id } => drop(self.items.remove(id)),
                }
            }

            fn upcast_event(version: u8, old: &mut OldBytes<'_>) -> Result<Vec<Event>, CodecError> {
                let previous = match version {
                    2 => vec![old.decode::<v2::Event>()?],
                    _ => v2::State::upcast_event(version, old)?,
                };
                Ok(previous.into_iter().flat_map(from_v2).collect())
            }
            // No upcast_state: snapshots of schema 1 and 2 are passed over and
            // the state is rebuilt from the log.
        }
    }

    /// Schema 4, a variant added: `Touch`, counted in the state.
    pub mod v4 {
        use super::*;

        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum Event {
            Put { id: u32, weight: u32 },
            Remove { id: u32 },
            Touch { id: u32 },
        }

        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct State {
            pub items: BTreeMap<u32, u32>,
            pub touched: u32,
        }

        pub fn from_v3(event: v3::Event) -> Vec<Event> {
            vec![match event {
                v3::Event::Put { id, weight } => Event::Put { id, weight },
                v3::Event::Remove { id } => Event::Remove { id },
            }]
        }

        impl StateMachine for State {
            type Event = Event;
            const SCHEMA_VERSION: u8 = 4;

            fn apply(&mut self, event: &Event) {
                match event {
                    Event::Put { id, weight } => drop(self.items.insert(*id, *weight)),
                    Event::Remove { id } => drop(self.items.remove(id)),
                    Event::Touch { .. } => self.touched += 1,
                }
            }

            fn upcast_event(version: u8, old: &mut OldBytes<'_>) -> Result<Vec<Event>, CodecError> {
                let previous = match version {
                    3 => vec![old.decode::<v3::Event>()?],
                    _ => v3::State::upcast_event(version, old)?,
                };
                Ok(previous.into_iter().flat_map(from_v3).collect())
            }

            /// Cheap from schema 3: nothing was touched yet.
            fn upcast_state(version: u8, old: &mut OldBytes<'_>) -> Result<Option<State>, CodecError> {
                match version {
                    3 => Ok(Some(State { items: old.decode::<v3::State>()?.items, touched: 0 })),
                    _ => Ok(None),
                }
            }
        }
    }

    /// Schema 5, a type split in two: `Put` becomes `Create` and `SetWeight`.
    pub mod v5 {
        use super::*;

        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum Event {
            Create { id: u32 },
            SetWeight { id: u32, weight: u32 },
            Remove { id: u32 },
            Touch { id: u32 },
        }

        /// The state's encoding did not change from schema 4.
        pub type State = Inventory;

        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct Inventory {
            pub items: BTreeMap<u32, u32>,
            pub touched: u32,
        }

        pub fn from_v4(event: v4::Event) -> Vec<Event> {
            match event {
                v4::Event::Put { id, weight } => vec![Event::Create { id }, Event::SetWeight { id, weight }],
                v4::Event::Remove { id } => vec![Event::Remove { id }],
                v4::Event::Touch { id } => vec![Event::Touch { id }],
            }
        }

        impl StateMachine for Inventory {
            type Event = Event;
            const SCHEMA_VERSION: u8 = 5;

            fn apply(&mut self, event: &Event) {
                match event {
                    Event::Create { id } => drop(self.items.insert(*id, 0)),
                    Event::SetWeight { id, weight } => drop(self.items.insert(*id, *weight)),
                    Event::Remove { id } => drop(self.items.remove(id)),
                    Event::Touch { .. } => self.touched += 1,
                }
            }

            fn upcast_event(version: u8, old: &mut OldBytes<'_>) -> Result<Vec<Event>, CodecError> {
                let previous = match version {
                    4 => vec![old.decode::<v4::Event>()?],
                    _ => v4::State::upcast_event(version, old)?,
                };
                Ok(previous.into_iter().flat_map(from_v4).collect())
            }

            fn upcast_state(version: u8, old: &mut OldBytes<'_>) -> Result<Option<Inventory>, CodecError> {
                match version {
                    4 => {
                        let old: v4::State = old.decode()?;
                        Ok(Some(Inventory { items: old.items, touched: old.touched }))
                    }
                    _ => Ok(None),
                }
            }
        }
    }
}

use elbstore::{Error, SnapshotError, StateMachine, Store, WalError};
use inventory::{v1, v2, v3, v4, v5};

fn inventory_options() -> Options {
    Options::default().create(Create::IfMissing)
}

/// Opens `dir` with version `S` of the model, commits `txns`, snapshots, and
/// commits `tail` after the snapshot.
fn write_version<S: StateMachine>(dir: &Path, txns: Vec<Vec<S::Event>>, tail: Vec<S::Event>) -> S {
    let store: Store<S> = Store::open(dir, inventory_options()).unwrap_or_else(|e| panic!("{e}"));
    for events in txns {
        store.commit(TxnMeta::new("svc:inventory", "put"), events).unwrap();
    }
    store.snapshot().unwrap();
    if !tail.is_empty() {
        store.commit(TxnMeta::new("svc:inventory", "after the snapshot"), tail).unwrap();
    }
    let state = store.read().state().clone();
    store.close().unwrap();
    state
}

fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    files_with_prefix(dir, "snapshot-")
}

/// The log segments' bytes, by name.
fn log_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    dir_contents(dir).into_iter().filter(|(name, _)| name.starts_with("wal-")).collect()
}

#[test]
fn the_model_changes_in_every_way_and_every_version_reads_all_that_came_before() {
    let dir = TempDir::new("schema-procedure");
    let put1 = |id, name: &str| v1::Event::Put { id, name: name.into() };
    let state = write_version::<v1::State>(
        dir.path(),
        vec![vec![put1(1, "a"), put1(2, "b")], vec![v1::Event::Remove { id: 2 }], vec![put1(3, "c")]],
        vec![put1(4, "d")],
    );
    assert_eq!(state.items.len(), 3);

    // Schema 2 reads schema 1's snapshot (upcast) and records.
    let put2 = |id, name: &str, weight| v2::Event::Put { id, name: name.into(), weight };
    let state =
        write_version::<v2::State>(dir.path(), vec![vec![put2(5, "e", 50), put2(1, "a", 10)]], vec![put2(6, "f", 60)]);
    assert_eq!(state.items[&4], ("d".into(), 0), "the documented default for the added field");
    assert_eq!(state.items[&1], ("a".into(), 10));

    // Schema 3 passes schema 2's snapshot over and rebuilds from the log.
    let store: Store<v3::State> = Store::open(dir.path(), inventory_options()).unwrap();
    let report = store.open_report();
    assert!(report.snapshot.is_none());
    assert_eq!(report.older_schema_snapshots.len(), 2, "{:?}", report.older_schema_snapshots);
    assert_eq!(report.older_schema_snapshots[0].1, 2);
    assert!(report.rejected_snapshots.is_empty(), "an older schema is not damage");
    drop(store);
    let state = write_version::<v3::State>(
        dir.path(),
        vec![vec![v3::Event::Put { id: 7, weight: 70 }], vec![v3::Event::Remove { id: 5 }]],
        vec![],
    );
    assert_eq!(state.items.get(&1), Some(&10), "names dropped, weights kept");

    let state = write_version::<v4::State>(
        dir.path(),
        vec![vec![v4::Event::Touch { id: 1 }, v4::Event::Put { id: 8, weight: 80 }]],
        vec![v4::Event::Touch { id: 8 }],
    );
    assert_eq!(state.touched, 2);

    // The current version: schema 5 reads everything.
    let store: Store<v5::State> = Store::open(dir.path(), inventory_options()).unwrap();
    assert_eq!(store.open_report().snapshot.as_ref().map(|s| s.seq), Some(9), "schema 4's snapshot, upcast");
    store
        .commit(
            TxnMeta::new("svc:inventory", "split events"),
            vec![v5::Event::Create { id: 9 }, v5::Event::SetWeight { id: 9, weight: 90 }, v5::Event::Touch { id: 9 }],
        )
        .unwrap();
    let expected =
        v5::Inventory { items: [(1, 10), (3, 0), (4, 0), (6, 60), (7, 70), (8, 80), (9, 90)].into(), touched: 3 };
    assert_eq!(store.read().state(), &expected);
    // Every transaction reads back in schema 5, with schema 1's and 4's Puts split in two.
    let txns: Vec<_> = store.transactions(..).map(|t| t.unwrap()).collect();
    assert_eq!(txns.len(), 11);
    assert_eq!(
        txns[0].events,
        [
            v5::Event::Create { id: 1 },
            v5::Event::SetWeight { id: 1, weight: 0 },
            v5::Event::Create { id: 2 },
            v5::Event::SetWeight { id: 2, weight: 0 },
        ]
    );
    // Every point of history, whatever snapshot or schema it starts from, is
    // the fold of the upcast events.
    let mut folded = v5::Inventory::default();
    for txn in &txns {
        for event in &txn.events {
            folded.apply(event);
        }
        assert_eq!(store.state_at(Point::Seq(txn.seq)).unwrap().state(), &folded, "seq {}", txn.seq);
    }
    store.snapshot().unwrap();
    store.close().unwrap();

    let report = verify::<v5::State>(dir.path(), Options::default()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.record_schemas, BTreeMap::from([(1, 4), (2, 2), (3, 2), (4, 2), (5, 1)]));
    assert_eq!(report.older_schema_snapshots, 3, "schema 1, 2 and 3 snapshots are not upcast by schema 5");

    // Schema 5's and 4's snapshots gone: schema 3's is passed over, and so on down to
    // a full replay from the log, with the same state.
    let copy = TempDir::new("schema-procedure-no-snapshots");
    copy_store(dir.path(), copy.path());
    for path in snapshot_files(copy.path()).into_iter().rev().take(2) {
        std::fs::remove_file(path).unwrap();
    }
    let store: Store<v5::State> = Store::open(copy.path(), inventory_options()).unwrap();
    assert_eq!(store.read().state(), &expected);
    assert_eq!(store.open_report().older_schema_snapshots.len(), 3);
    assert_eq!(store.open_report().replayed_transactions, 11);
}

#[test]
fn a_record_or_snapshot_of_a_newer_schema_is_refused_by_name_and_nothing_is_appended() {
    let dir = TempDir::new("schema-newer");
    write_version::<v1::State>(dir.path(), vec![vec![v1::Event::Put { id: 1, name: "a".into() }]], vec![]);
    write_version::<v2::State>(dir.path(), vec![vec![v2::Event::Remove { id: 1 }]], vec![]);
    let before = log_bytes(dir.path());

    // The newest snapshot is schema 2: refused, never fallen back past.
    for mode in [OpenMode::ReadWrite, OpenMode::ReadOnly] {
        let err = Store::<v1::State>::open(dir.path(), inventory_options().mode(mode)).unwrap_err();
        let Error::Snapshot(SnapshotError::NewerSchema { found: 2, known: 1, .. }) = &err else { panic!("{err:?}") };
        assert!(
            err.to_string().contains("was written by a newer version: schema 2, this build reads up to 1"),
            "{err}"
        );
    }
    // Without it, schema 2's record is refused, naming the record.
    std::fs::remove_file(snapshot_files(dir.path()).pop().unwrap()).unwrap();
    let err = Store::<v1::State>::open(dir.path(), inventory_options()).unwrap_err();
    let Error::Wal(WalError::NewerSchema { seq: 2, found: 2, known: 1, .. }) = &err else { panic!("{err:?}") };
    assert!(err.to_string().contains("written by a newer version: schema 2, this build reads up to 1"), "{err}");
    let report = verify::<v1::State>(dir.path(), Options::default()).unwrap();
    assert!(matches!(report.problems.as_slice(), [Error::Wal(WalError::NewerSchema { .. })]), "{:?}", report.problems);
    assert_eq!(log_bytes(dir.path()), before, "an older build appends nothing after a newer one's records");
    // The newer build still reads it all.
    let store: Store<v2::State> = Store::open(dir.path(), inventory_options()).unwrap();
    assert!(store.read().state().items.is_empty());
}

/// The first snapshot a newer build takes, at the same point as an older
/// schema's snapshot, replaces it: later opens load it instead of passing it
/// over and replaying the log.
#[test]
fn a_snapshot_at_the_point_of_an_older_schema_s_snapshot_replaces_it() {
    let dir = TempDir::new("schema-replace-snapshot");
    write_version::<v1::State>(dir.path(), vec![vec![v1::Event::Put { id: 1, name: "a".into() }]], vec![]);
    let store: Store<v3::State> = Store::open(dir.path(), inventory_options()).unwrap();
    assert_eq!(store.open_report().older_schema_snapshots.len(), 1);
    let info = store.snapshot().unwrap();
    assert_eq!((info.seq, info.schema), (1, 3));
    assert_eq!(store.snapshots().len(), 1, "one snapshot per point");
    store.close().unwrap();
    assert_eq!(snapshot_files(dir.path()).len(), 1);
    let store: Store<v3::State> = Store::open(dir.path(), inventory_options()).unwrap();
    assert!(store.open_report().older_schema_snapshots.is_empty());
    assert_eq!(store.open_report().snapshot.as_ref().map(|s| (s.seq, s.schema)), Some((1, 3)));
    assert_eq!(store.open_report().replayed_transactions, 0);
    assert_eq!(store.read().state().items, BTreeMap::from([(1, 0)]));
}
