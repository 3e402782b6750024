//! The ELBv2 API's rules, one case per row of the fidelity review of the
//! model (operations, state-integrity rules, quotas, and the surprises of its
//! third part): each case runs commands against one world and expects what
//! the API does: accepted, accepted with nothing written, or refused with the
//! API's error code (`ElbError::code`). Sources are botocore's
//! `elbv2/2015-12-01/service-2.json` and the ELB user guides' quota pages.

mod common;

use common::TempDir;
use elbstore::elb::{
    arn, plan_folded, Action, AuthenticateOidc, Command, Condition, ConflictReason, CreateListener, CreateLoadBalancer,
    CreateRule, CreateTargetGroup, CreateTrustStore, ElbState, ElbStore, EntityKey, HealthCheck, HealthReason,
    HealthState, IpAddressType, ListenerId, LoadBalancerId, LoadBalancerState, LoadBalancerType, ModifyHealthCheck,
    ModifyListener, MutualAuthentication, MutualAuthenticationMode, OnConflict, Protocol, ProtocolVersion, Quotas,
    RevertMode, RevertSelection, RuleId, S3Object, Settings, SubnetMapping, Taggable, TargetGroupId,
    TargetGroupIpAddressType, TargetHealth, TargetSpec, TargetType, TrustStoreId,
};
use elbstore::{Create, Options, SyncPolicy, Timestamp, TxnContext, TxnMeta};

const A: &str = "111111111111";
const B: &str = "222222222222";
const REGION: &str = "us-east-1";

fn subnets(zones: &str, tag: &str) -> Vec<SubnetMapping> {
    zones.chars().map(|z| SubnetMapping::new(format!("subnet-{tag}{z}"), format!("{REGION}{z}"))).collect()
}

fn lb(account: &str, name: &str, kind: LoadBalancerType, vpc: &str, groups: &[&str]) -> Command {
    Command::CreateLoadBalancer(CreateLoadBalancer {
        account: account.into(),
        name: name.into(),
        load_balancer_type: kind,
        vpc_id: vpc.into(),
        subnets: subnets(if kind == LoadBalancerType::Application { "ab" } else { "a" }, name),
        security_groups: groups.iter().map(|g| g.to_string()).collect(),
        ..CreateLoadBalancer::default()
    })
}

fn tg(account: &str, name: &str, protocol: Option<Protocol>, port: Option<u16>, kind: TargetType) -> CreateTargetGroup {
    let tcp_check = HealthCheck { protocol: Protocol::Tcp, path: None, matcher: None, ..HealthCheck::default() };
    CreateTargetGroup {
        account: account.into(),
        name: name.into(),
        protocol,
        port,
        vpc_id: (kind != TargetType::Lambda).then(|| if account == A { "vpc-a" } else { "vpc-b" }.to_owned()),
        target_type: kind,
        health_check: match protocol {
            Some(Protocol::Http | Protocol::Https) | None => HealthCheck::default(),
            _ if kind == TargetType::Alb => HealthCheck::default(),
            _ => tcp_check,
        },
        ..CreateTargetGroup::default()
    }
}

fn listener(lb: LoadBalancerId, port: u16, protocol: Protocol, tg: TargetGroupId) -> Command {
    Command::CreateListener(listener_spec(lb, port, protocol, tg))
}

/// A listener forwarding to `tg`, with the default certificate HTTPS and TLS need.
fn listener_spec(lb: LoadBalancerId, port: u16, protocol: Protocol, tg: TargetGroupId) -> CreateListener {
    CreateListener {
        load_balancer: lb,
        port: Some(port),
        protocol: Some(protocol),
        default_certificate: matches!(protocol, Protocol::Https | Protocol::Tls).then(|| certificate("default")),
        default_actions: vec![Action::forward(tg)],
        ..CreateListener::default()
    }
}

/// `CreateRule` with one path-pattern condition.
fn rule(listener: ListenerId, priority: u32, path: &str, actions: Vec<Action>) -> Command {
    Command::CreateRule(CreateRule {
        listener,
        priority,
        conditions: vec![Condition::PathPattern(vec![path.into()])],
        actions,
        ..CreateRule::default()
    })
}

fn certificate(name: &str) -> String {
    format!("arn:aws:acm:{REGION}:{A}:certificate/{name}")
}

fn bundle(key: &str) -> S3Object {
    S3Object { bucket: "ca-bundles".into(), key: key.into(), version: None }
}

fn targets(ids: &[&str]) -> Vec<TargetSpec> {
    ids.iter().map(|id| TargetSpec::new(*id)).collect()
}

fn verify(ts: TrustStoreId) -> MutualAuthentication {
    MutualAuthentication {
        mode: MutualAuthenticationMode::Verify,
        trust_store: Some(ts),
        ..MutualAuthentication::default()
    }
}

/// The resources every case starts from.
struct World {
    state: ElbState,
    seq: u64,
}

impl World {
    fn build() -> World {
        let mut w = World { state: ElbState::default(), seq: 0 };
        let app = LoadBalancerType::Application;
        let net = LoadBalancerType::Network;
        w.commit(vec![
            lb(A, "web", app, "vpc-a", &["sg-web"]),
            lb(A, "other", app, "vpc-a", &["sg-other"]),
            lb(A, "edge", net, "vpc-a", &["sg-edge"]),
            lb(A, "bare", net, "vpc-a", &[]),
            lb(A, "gw", LoadBalancerType::Gateway, "vpc-a", &[]),
            lb(B, "partner", app, "vpc-b", &["sg-p"]),
            Command::CreateTargetGroup(tg(A, "web", Some(Protocol::Http), Some(80), TargetType::Instance)),
            Command::CreateTargetGroup(tg(A, "tcp", Some(Protocol::Tcp), Some(443), TargetType::Ip)),
            Command::CreateTargetGroup(tg(A, "udp", Some(Protocol::Udp), Some(53), TargetType::Ip)),
            Command::CreateTargetGroup(tg(A, "tcpudp", Some(Protocol::TcpUdp), Some(53), TargetType::Instance)),
            Command::CreateTargetGroup(tg(A, "geneve", Some(Protocol::Geneve), Some(6081), TargetType::Ip)),
            Command::CreateTargetGroup(tg(A, "fn", None, None, TargetType::Lambda)),
            Command::CreateTargetGroup(tg(A, "ips", Some(Protocol::Http), Some(80), TargetType::Ip)),
            Command::CreateTargetGroup(tg(A, "albs", Some(Protocol::Tcp), Some(80), TargetType::Alb)),
            Command::CreateTargetGroup(tg(B, "partner", Some(Protocol::Http), Some(80), TargetType::Instance)),
            Command::CreateTrustStore(CreateTrustStore {
                account: A.into(),
                name: "ca".into(),
                ca_certificates_bundle: bundle("ca.pem"),
                tags: Default::default(),
            }),
        ]);
        let (web, edge, gw, partner) = (w.lb("web"), w.lb("edge"), w.lb("gw"), w.lb_of(B, "partner"));
        let ca = w.state.trust_store_by_name(A, "ca").unwrap().id;
        w.commit(vec![
            listener(web, 80, Protocol::Http, w.tg("web")),
            Command::CreateListener(CreateListener {
                mutual_authentication: Some(verify(ca)),
                ..listener_spec(web, 443, Protocol::Https, w.tg("web"))
            }),
            listener(edge, 443, Protocol::Tcp, w.tg("tcp")),
            Command::CreateListener(CreateListener {
                load_balancer: gw,
                default_actions: vec![Action::forward(w.tg("geneve"))],
                ..CreateListener::default()
            }),
            Command::CreateListener(CreateListener {
                load_balancer: partner,
                port: Some(443),
                protocol: Some(Protocol::Https),
                default_certificate: Some(format!("arn:aws:acm:{REGION}:{B}:certificate/p")),
                default_actions: vec![Action::forward(w.tg_of(B, "partner"))],
                mutual_authentication: Some(verify(ca)),
                ..CreateListener::default()
            }),
            Command::RegisterTargets {
                target_group: w.tg("web"),
                targets: targets(&["i-0123456789abcdef0", "i-0123456789abcdef1"]),
            },
            Command::RegisterTargets { target_group: w.tg("ips"), targets: targets(&["10.0.0.5"]) },
            Command::RegisterTargets {
                target_group: w.tg("fn"),
                targets: targets(&["arn:aws:lambda:us-east-1:111111111111:function:f"]),
            },
        ]);
        let https = w.listener("web", 443);
        w.commit(vec![rule(https, 10, "/api/*", vec![Action::forward(w.tg("web"))])]);
        w
    }

    fn ctx(&self) -> TxnContext {
        TxnContext { seq: self.seq + 1, time: Timestamp::from_secs(1_800_000_000 + self.seq) }
    }

    fn run(&self, commands: &[Command], settings: &Settings) -> Result<(usize, ElbState), elbstore::elb::ElbError> {
        plan_folded(&self.state, commands, &self.ctx(), settings).map(|(events, _, after)| (events.len(), after))
    }

    fn commit(&mut self, commands: Vec<Command>) {
        let (_, after) = self.run(&commands, &Settings::in_region(REGION)).unwrap_or_else(|e| panic!("{e}"));
        self.state = after;
        self.seq += 1;
    }

    fn lb(&self, name: &str) -> LoadBalancerId {
        self.lb_of(A, name)
    }

    fn lb_of(&self, account: &str, name: &str) -> LoadBalancerId {
        self.state.load_balancer_by_name(account, name).unwrap_or_else(|| panic!("{name}")).id
    }

    fn tg(&self, name: &str) -> TargetGroupId {
        self.tg_of(A, name)
    }

    fn tg_of(&self, account: &str, name: &str) -> TargetGroupId {
        self.state.target_group_by_name(account, name).unwrap_or_else(|| panic!("{name}")).id
    }

    fn listener(&self, lb: &str, port: u16) -> ListenerId {
        self.state.listeners_of(self.lb(lb)).find(|l| l.port == port).unwrap().id
    }

    fn rule(&self) -> RuleId {
        self.state.rules_of(self.listener("web", 443)).next().unwrap().id
    }

    fn ca(&self) -> TrustStoreId {
        self.state.trust_store_by_name(A, "ca").unwrap().id
    }

    fn health(&self, group: &str, id: &str) -> TargetHealth {
        let tg = self.tg(group);
        self.state.targets_of(tg).find(|t| &*t.key.id == id).unwrap().health.clone()
    }
}

/// What the API does with a case's commands.
enum Expect {
    /// Accepted and written; the check holds on the state after.
    Accepted(fn(&World, &ElbState) -> bool),
    /// Accepted, nothing to write.
    NoOp,
    /// Refused with this error code.
    Refused(&'static str),
}

struct Case {
    /// The review row and the API source.
    row: &'static str,
    commands: fn(&World) -> Vec<Command>,
    /// Settings other than the defaults (smaller quotas).
    quotas: fn(&mut Quotas),
    expect: Expect,
}

fn any(_: &World, _: &ElbState) -> bool {
    true
}

fn same(_: &mut Quotas) {}

const fn case(row: &'static str, commands: fn(&World) -> Vec<Command>, expect: Expect) -> Case {
    Case { row, commands, quotas: same, expect }
}

fn tags(key: &str, value: &str) -> elbstore::elb::Tags {
    [(key.to_owned(), value.to_owned())].into()
}

fn attributes(key: &str, value: &str) -> elbstore::elb::Attributes {
    [(key.to_owned(), value.to_owned())].into()
}

fn cases() -> Vec<Case> {
    use Expect::*;
    vec![
        // §1 Operations.
        case(
            "1 CreateLoadBalancer: an identical retry succeeds (CreateLoadBalancer: 'each call succeeds')",
            |_| vec![lb(A, "web", LoadBalancerType::Application, "vpc-a", &["sg-web"])],
            NoOp,
        ),
        case(
            "1 CreateLoadBalancer: another with the same name is refused",
            |_| vec![lb(A, "web", LoadBalancerType::Network, "vpc-a", &["sg-web"])],
            Refused("DuplicateLoadBalancerName"),
        ),
        case(
            "1 DeleteLoadBalancer: a missing load balancer 'succeeds'",
            |_| vec![Command::DeleteLoadBalancer { load_balancer: LoadBalancerId(12345) }],
            NoOp,
        ),
        case(
            "1 SetSubnets: a gateway load balancer 'must include all subnets that were enabled previously'",
            |w| vec![Command::SetSubnets { load_balancer: w.lb("gw"), subnets: subnets("b", "gw") }],
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "1 SetSubnets: a gateway load balancer may add subnets",
            |w| vec![Command::SetSubnets { load_balancer: w.lb("gw"), subnets: subnets("ab", "gw") }],
            Accepted(any),
        ),
        case(
            "1 SetSecurityGroups: not on a network load balancer created without security groups",
            |w| vec![Command::SetSecurityGroups { load_balancer: w.lb("bare"), security_groups: vec!["sg-1".into()] }],
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "1 SetSecurityGroups: a network load balancer created with security groups changes them",
            |w| vec![Command::SetSecurityGroups { load_balancer: w.lb("edge"), security_groups: vec!["sg-2".into()] }],
            Accepted(any),
        ),
        case(
            "1 SetIpAddressType: dualstack-without-public-ipv4 only for internet-facing application load balancers",
            |w| {
                vec![Command::SetIpAddressType {
                    load_balancer: w.lb("edge"),
                    ip_address_type: IpAddressType::DualstackWithoutPublicIpv4,
                }]
            },
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "1 CreateListener: a gateway load balancer's listener takes no port or protocol",
            |w| vec![listener(w.lb("gw"), 6081, Protocol::Geneve, w.tg("geneve"))],
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "1 CreateListener: an identical retry succeeds",
            |w| vec![listener(w.lb("web"), 80, Protocol::Http, w.tg("web"))],
            NoOp,
        ),
        case(
            "1 CreateListener: another listener on the port is DuplicateListener",
            |w| vec![listener(w.lb("web"), 80, Protocol::Https, w.tg("web"))],
            Refused("DuplicateListener"),
        ),
        case(
            "1 ModifyListener: HTTPS to HTTP removes the default certificate and the security policy",
            |w| {
                vec![Command::ModifyListener(ModifyListener {
                    protocol: Some(Protocol::Http),
                    ..ModifyListener::new(w.listener("web", 443))
                })]
            },
            Accepted(|w, after| {
                let l = after.listener(w.listener("web", 443)).unwrap();
                l.default_certificate.is_none() && l.ssl_policy.is_none() && l.mutual_authentication.is_none()
            }),
        ),
        case(
            "1 DeleteListener: cascades its rules",
            |w| vec![Command::DeleteListener { listener: w.listener("web", 443) }],
            Accepted(|w, after| after.rule(w.rule()).is_none()),
        ),
        case(
            "1 AddListenerCertificates: only HTTPS and TLS listeners have certificates",
            |w| {
                vec![Command::AddListenerCertificates {
                    listener: w.listener("web", 80),
                    certificates: vec![certificate("extra")],
                }]
            },
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "1 RemoveListenerCertificates: 'You can't remove the default certificate'",
            |w| {
                vec![Command::RemoveListenerCertificates {
                    listener: w.listener("web", 443),
                    certificates: vec![certificate("default")],
                }]
            },
            Refused("OperationNotPermitted"),
        ),
        case(
            "1 CreateRule: authenticate-oidc before the forward, on an HTTPS listener",
            |w| {
                vec![rule(
                    w.listener("web", 443),
                    20,
                    "/admin/*",
                    vec![Action::AuthenticateOidc(Box::new(oidc())), Action::forward(w.tg("web"))],
                )]
            },
            Accepted(any),
        ),
        case(
            "1 CreateRule: authenticate actions only on HTTPS listeners",
            |w| {
                vec![rule(
                    w.listener("web", 80),
                    20,
                    "/admin/*",
                    vec![Action::AuthenticateOidc(Box::new(oidc())), Action::forward(w.tg("web"))],
                )]
            },
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "1 ModifyRule / DeleteRule / SetRulePriorities",
            |w| {
                vec![
                    Command::ModifyRule {
                        rule: w.rule(),
                        conditions: Some(vec![Condition::HostHeader(vec!["a.example.com".into()])]),
                        actions: None,
                    },
                    Command::SetRulePriorities { priorities: vec![(w.rule(), 11)] },
                    Command::DeleteRule { rule: w.rule() },
                ]
            },
            Accepted(|w, after| after.rule(w.rule()).is_none()),
        ),
        case(
            "1 CreateTargetGroup: ProtocolVersion and IpAddressType",
            |_| {
                vec![
                    Command::CreateTargetGroup(CreateTargetGroup {
                        protocol_version: Some(ProtocolVersion::Grpc),
                        health_check: HealthCheck { matcher: Some("12".into()), ..HealthCheck::default() },
                        ..tg(A, "grpc", Some(Protocol::Https), Some(50051), TargetType::Instance)
                    }),
                    Command::CreateTargetGroup(CreateTargetGroup {
                        ip_address_type: TargetGroupIpAddressType::Ipv6,
                        ..tg(A, "v6", Some(Protocol::Http), Some(80), TargetType::Ip)
                    }),
                ]
            },
            Accepted(|_, after| after.target_group_by_name(A, "v6").is_some()),
        ),
        case(
            "1 CreateTargetGroup: an identical retry succeeds",
            |_| vec![Command::CreateTargetGroup(tg(A, "web", Some(Protocol::Http), Some(80), TargetType::Instance))],
            NoOp,
        ),
        case(
            "1 ModifyTargetGroup: partial, the fields not named are kept",
            |w| {
                vec![Command::ModifyTargetGroup {
                    target_group: w.tg("web"),
                    health_check: ModifyHealthCheck { interval_seconds: Some(10), ..ModifyHealthCheck::default() },
                }]
            },
            Accepted(|w, after| {
                let check = &after.target_group(w.tg("web")).unwrap().health_check;
                check.interval_seconds == 10 && check.path.as_deref() == Some("/")
            }),
        ),
        case(
            "1 ModifyTargetGroup: checked against the group's protocol (no TCP checks of HTTP groups)",
            |w| {
                vec![Command::ModifyTargetGroup {
                    target_group: w.tg("web"),
                    health_check: ModifyHealthCheck { protocol: Some(Protocol::Tcp), ..ModifyHealthCheck::default() },
                }]
            },
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "1 DeleteTargetGroup: in use is ResourceInUse",
            |w| vec![Command::DeleteTargetGroup { target_group: w.tg("web") }],
            Refused("ResourceInUse"),
        ),
        case(
            "1 RegisterTargets: registering a registered target changes nothing",
            |w| {
                vec![Command::RegisterTargets { target_group: w.tg("web"), targets: targets(&["i-0123456789abcdef0"]) }]
            },
            NoOp,
        ),
        case(
            "1 DeregisterTargets: the target drains (Target.DeregistrationInProgress)",
            |w| {
                vec![Command::DeregisterTargets {
                    target_group: w.tg("web"),
                    targets: targets(&["i-0123456789abcdef0"]),
                }]
            },
            Accepted(|w, after| {
                let t = after.targets_of(w.tg("web")).find(|t| &*t.key.id == "i-0123456789abcdef0").unwrap();
                t.health == TargetHealth::new(HealthState::Draining, Some(HealthReason::DeregistrationInProgress))
                    && t.draining_until.is_some()
            }),
        ),
        case(
            "1 DeregisterTargets: 'If the specified target does not exist, the action returns successfully'",
            |w| vec![Command::DeregisterTargets { target_group: w.tg("web"), targets: targets(&["i-00000000"]) }],
            NoOp,
        ),
        case(
            "1 AddTags / RemoveTags: a list of resources",
            |w| {
                vec![Command::AddTags {
                    resources: vec![Taggable::LoadBalancer(w.lb("web")), Taggable::TargetGroup(w.tg("web"))],
                    tags: tags("team", "web"),
                }]
            },
            Accepted(|w, after| after.target_group(w.tg("web")).unwrap().tags.contains_key("team")),
        ),
        case(
            "1 AddTags: ResourceArns holds at most 20",
            |w| {
                vec![Command::AddTags {
                    resources: vec![Taggable::LoadBalancer(w.lb("web")); 21],
                    tags: tags("team", "web"),
                }]
            },
            Refused("ValidationError"),
        ),
        case(
            "1 ModifyListenerAttributes: tcp.idle_timeout.seconds on a network load balancer's listener",
            |w| {
                vec![Command::ModifyListenerAttributes {
                    listener: w.listener("edge", 443),
                    attributes: attributes("tcp.idle_timeout.seconds", "600"),
                }]
            },
            Accepted(|w, after| !after.listener(w.listener("edge", 443)).unwrap().attributes.is_empty()),
        ),
        case(
            "1 ModifyListenerAttributes: not an attribute of application load balancers' listeners",
            |w| {
                vec![Command::ModifyListenerAttributes {
                    listener: w.listener("web", 80),
                    attributes: attributes("tcp.idle_timeout.seconds", "600"),
                }]
            },
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "1 ModifyCapacityReservation and ModifyIpPools",
            |w| {
                vec![
                    Command::ModifyCapacityReservation { load_balancer: w.lb("web"), capacity_units: Some(100) },
                    Command::ModifyIpPools {
                        load_balancer: w.lb("web"),
                        ipv4_ipam_pool: Some("ipam-pool-0a1b".into()),
                    },
                ]
            },
            Accepted(|w, after| after.load_balancer(w.lb("web")).unwrap().capacity_units == Some(100)),
        ),
        case(
            "1 ModifyIpPools: IpamPoolId pattern ^(ipam-pool-)[a-zA-Z0-9]+$",
            |w| vec![Command::ModifyIpPools { load_balancer: w.lb("web"), ipv4_ipam_pool: Some("pool-1".into()) }],
            Refused("ValidationError"),
        ),
        case(
            "1 CreateTrustStore: DuplicateTrustStoreName",
            |_| {
                vec![Command::CreateTrustStore(CreateTrustStore {
                    account: A.into(),
                    name: "ca".into(),
                    ca_certificates_bundle: bundle("other.pem"),
                    tags: Default::default(),
                })]
            },
            Refused("DuplicateTrustStoreName"),
        ),
        case(
            "1 ModifyTrustStore and Add/RemoveTrustStoreRevocations",
            |w| {
                vec![
                    Command::ModifyTrustStore { trust_store: w.ca(), ca_certificates_bundle: bundle("ca-2.pem") },
                    Command::AddTrustStoreRevocations { trust_store: w.ca(), revocations: vec![bundle("crl.pem")] },
                ]
            },
            Accepted(|w, after| after.trust_store(w.ca()).unwrap().revocations.len() == 1),
        ),
        case(
            "1 RemoveTrustStoreRevocations: RevocationIdNotFound",
            |w| vec![Command::RemoveTrustStoreRevocations { trust_store: w.ca(), revocation_ids: vec![7] }],
            Refused("RevocationIdNotFound"),
        ),
        case(
            "1 DeleteTrustStore: TrustStoreInUse",
            |w| vec![Command::DeleteTrustStore { trust_store: w.ca() }],
            Refused("TrustStoreInUse"),
        ),
        case(
            "1 DeleteSharedTrustStoreAssociation: another account's listener",
            |w| {
                vec![Command::DeleteSharedTrustStoreAssociation {
                    trust_store: w.ca(),
                    listener: w.state.listeners_of(w.lb_of(B, "partner")).next().unwrap().id,
                }]
            },
            Accepted(|w, after| {
                let l = after.listeners_of(w.lb_of(B, "partner")).next().unwrap();
                l.mutual_authentication.as_ref().unwrap().association_removed
            }),
        ),
        case(
            "1 DeleteSharedTrustStoreAssociation: DeleteAssociationSameAccount",
            |w| {
                vec![Command::DeleteSharedTrustStoreAssociation {
                    trust_store: w.ca(),
                    listener: w.listener("web", 443),
                }]
            },
            Refused("DeleteAssociationSameAccount"),
        ),
        case(
            "1 (internal) UpdateTargetHealth: no check results for a target no load balancer uses",
            |w| {
                vec![Command::UpdateTargetHealth {
                    target_group: w.tg("ips"),
                    target: TargetSpec::new("10.0.0.5"),
                    health: TargetHealth::new(HealthState::Healthy, None),
                }]
            },
            Refused("InvalidTarget"),
        ),
        case(
            "1 (internal) SetLoadBalancerState: failed is final",
            |w| {
                vec![
                    Command::SetLoadBalancerState { load_balancer: w.lb("web"), state: LoadBalancerState::Failed },
                    Command::SetLoadBalancerState {
                        load_balancer: w.lb("web"),
                        state: LoadBalancerState::Provisioning,
                    },
                ]
            },
            Refused("OperationNotPermitted"),
        ),
        // §2 Rules.
        case(
            "2.1 load balancer names may not start with internal- (CreateLoadBalancerInput.Name)",
            |_| vec![lb(A, "internal-web", LoadBalancerType::Application, "vpc-a", &[])],
            Refused("ValidationError"),
        ),
        case(
            "2.2 target group names may (CreateTargetGroupInput.Name has no such rule)",
            |_| vec![Command::CreateTargetGroup(tg(A, "internal-api", Some(Protocol::Http), Some(80), TargetType::Ip))],
            Accepted(any),
        ),
        case(
            "2.3 target group names are unique per account",
            |_| vec![Command::CreateTargetGroup(tg(A, "web", Some(Protocol::Https), Some(443), TargetType::Ip))],
            Refused("DuplicateTargetGroupName"),
        ),
        case(
            "2.4 listener ports are unique per load balancer, on modify too",
            |w| {
                vec![Command::ModifyListener(ModifyListener {
                    port: Some(443),
                    ..ModifyListener::new(w.listener("web", 80))
                })]
            },
            Refused("DuplicateListener"),
        ),
        case(
            "2.5 QUIC listeners on network load balancers (ProtocolEnum)",
            |w| {
                vec![
                    Command::CreateTargetGroup(tg(A, "quic", Some(Protocol::Quic), Some(443), TargetType::Ip)),
                    Command::CreateListener(CreateListener {
                        load_balancer: w.lb("bare"),
                        port: Some(443),
                        protocol: Some(Protocol::Quic),
                        default_actions: vec![Action::forward(TargetGroupId::new(w.seq + 1, 0))],
                        ..CreateListener::default()
                    }),
                ]
            },
            Accepted(any),
        ),
        case(
            "2.5 listener protocol fits the load balancer type",
            |w| vec![listener(w.lb("bare"), 80, Protocol::Http, w.tg("tcp"))],
            Refused("UnsupportedProtocol"),
        ),
        case(
            "2.6 HTTPS and TLS listeners need a certificate",
            |w| {
                vec![Command::CreateListener(CreateListener {
                    load_balancer: w.lb("other"),
                    port: Some(443),
                    protocol: Some(Protocol::Https),
                    default_actions: vec![Action::FixedResponse { status_code: 404, content_type: None, body: None }],
                    ..CreateListener::default()
                })]
            },
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "2.7 a UDP listener cannot forward to a TCP group (NLB guide, Listeners)",
            |w| vec![listener(w.lb("bare"), 53, Protocol::Udp, w.tg("tcp"))],
            Refused("IncompatibleProtocols"),
        ),
        case(
            "2.7 a TCP_UDP listener forwards to a TCP_UDP group",
            |w| vec![listener(w.lb("bare"), 53, Protocol::TcpUdp, w.tg("tcpudp"))],
            Accepted(any),
        ),
        case(
            "2.8 one load balancer per target group (TargetGroup.LoadBalancerArns)",
            |w| vec![listener(w.lb("other"), 80, Protocol::Http, w.tg("web"))],
            Refused("TargetGroupAssociationLimit"),
        ),
        case(
            "2.9 the target group is in the load balancer's VPC and account",
            |w| vec![listener(w.lb("other"), 80, Protocol::Http, w.tg_of(B, "partner"))],
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "2.10 rule priorities are 1 to 50000 and unique per listener",
            |w| vec![rule(w.listener("web", 443), 10, "/x", vec![Action::forward(w.tg("web"))])],
            Refused("PriorityInUse"),
        ),
        case(
            "2.11 the default rule is the listener's own: no rule id names it",
            |w| vec![Command::DeleteRule { rule: RuleId(w.listener("web", 443).0) }],
            Refused("RuleNotFound"),
        ),
        case(
            "2.12 rules only on application load balancers",
            |w| vec![rule(w.listener("edge", 443), 1, "/x", vec![Action::forward(w.tg("tcp"))])],
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "2.13 at most one path-pattern condition per rule (RuleCondition)",
            |w| {
                vec![Command::CreateRule(CreateRule {
                    listener: w.listener("web", 443),
                    priority: 30,
                    conditions: vec![
                        Condition::PathPattern(vec!["/a".into()]),
                        Condition::PathPattern(vec!["/b".into()]),
                    ],
                    actions: vec![Action::forward(w.tg("web"))],
                    ..CreateRule::default()
                })]
            },
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "2.13 at most 5 condition values per rule (ALB quotas)",
            |w| {
                vec![Command::CreateRule(CreateRule {
                    listener: w.listener("web", 443),
                    priority: 30,
                    conditions: vec![
                        Condition::PathPattern((0..3).map(|i| format!("/{i}")).collect()),
                        Condition::HostHeader((0..3).map(|i| format!("h{i}.example.com")).collect()),
                    ],
                    actions: vec![Action::forward(w.tg("web"))],
                    ..CreateRule::default()
                })]
            },
            Refused("ValidationError"),
        ),
        case(
            "2.14 fixed-response status ^(2|4|5)\\d\\d$",
            |w| {
                vec![Command::ModifyListener(ModifyListener {
                    default_actions: Some(vec![Action::FixedResponse {
                        status_code: 302,
                        content_type: None,
                        body: None,
                    }]),
                    ..ModifyListener::new(w.listener("web", 80))
                })]
            },
            Refused("ValidationError"),
        ),
        case(
            "2.14 fixed-response content types are five",
            |w| {
                vec![Command::ModifyListener(ModifyListener {
                    default_actions: Some(vec![Action::FixedResponse {
                        status_code: 200,
                        content_type: Some("image/png".into()),
                        body: None,
                    }]),
                    ..ModifyListener::new(w.listener("web", 80))
                })]
            },
            Refused("ValidationError"),
        ),
        case(
            "2.15 GENEVE target groups use port 6081",
            |_| vec![Command::CreateTargetGroup(tg(A, "g80", Some(Protocol::Geneve), Some(80), TargetType::Ip))],
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "2.15 a Lambda group holds one function",
            |w| {
                vec![Command::RegisterTargets {
                    target_group: w.tg("fn"),
                    targets: targets(&["arn:aws:lambda:us-east-1:111111111111:function:g"]),
                }]
            },
            Refused("TooManyTargets"),
        ),
        case(
            "2.15 health checks of instance groups cannot be disabled (HealthCheckEnabled)",
            |w| {
                vec![Command::ModifyTargetGroup {
                    target_group: w.tg("web"),
                    health_check: ModifyHealthCheck { enabled: Some(false), ..ModifyHealthCheck::default() },
                }]
            },
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "2.15 network load balancer groups accept matcher 200-599",
            |w| {
                vec![Command::ModifyTargetGroup {
                    target_group: w.tg("tcp"),
                    health_check: ModifyHealthCheck {
                        protocol: Some(Protocol::Http),
                        path: Some("/health".into()),
                        matcher: Some("200-599".into()),
                        ..ModifyHealthCheck::default()
                    },
                }]
            },
            Accepted(any),
        ),
        case(
            "2.16 a target group in use cannot be deleted",
            |w| vec![Command::DeleteTargetGroup { target_group: w.tg("tcp") }],
            Refused("ResourceInUse"),
        ),
        case(
            "2.17 deleting a load balancer leaves its group's targets unused, not healthy",
            |w| vec![Command::DeleteLoadBalancer { load_balancer: w.lb("web") }],
            Accepted(|w, after| {
                after.targets_of(w.tg("web")).all(|t| t.health.state == HealthState::Unused)
                    && after.counts().rules == 0
            }),
        ),
        case(
            "2.18 IP targets are private addresses (TargetDescription.Id)",
            |w| vec![Command::RegisterTargets { target_group: w.tg("ips"), targets: targets(&["8.8.8.8"]) }],
            Refused("InvalidTarget"),
        ),
        case(
            "2.18 instance targets are instance ids",
            |w| vec![Command::RegisterTargets { target_group: w.tg("web"), targets: targets(&["banana"]) }],
            Refused("InvalidTarget"),
        ),
        case(
            "2.18 one IPv6 address written two ways is one target",
            |w| {
                vec![
                    Command::CreateTargetGroup(CreateTargetGroup {
                        ip_address_type: TargetGroupIpAddressType::Ipv6,
                        ..tg(A, "v6", Some(Protocol::Http), Some(80), TargetType::Ip)
                    }),
                    Command::RegisterTargets {
                        target_group: TargetGroupId::new(w.seq + 1, 0),
                        targets: targets(&["2001:db8::1", "2001:DB8:0:0:0:0:0:1"]),
                    },
                ]
            },
            Accepted(|w, after| {
                let ids: Vec<_> =
                    after.targets_of(TargetGroupId::new(w.seq + 1, 0)).map(|t| t.key.id.clone()).collect();
                ids.len() == 1 && &*ids[0] == "2001:db8::1"
            }),
        ),
        case(
            "2.18 availability zones are not supported for instance targets",
            |w| {
                vec![Command::RegisterTargets {
                    target_group: w.tg("web"),
                    targets: vec![TargetSpec {
                        id: "i-0123456789abcdef2".into(),
                        port: None,
                        availability_zone: Some("us-east-1a".into()),
                    }],
                }]
            },
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "2.18 an alb target is an existing application load balancer, which then cannot be deleted",
            |w| {
                let arn = arn::load_balancer(REGION, A, LoadBalancerType::Application, "web", w.lb("web"));
                vec![
                    Command::RegisterTargets { target_group: w.tg("albs"), targets: targets(&[&arn]) },
                    Command::DeleteLoadBalancer { load_balancer: w.lb("web") },
                ]
            },
            Refused("ResourceInUse"),
        ),
        case(
            "2.19 tag keys may not start with aws: in any case",
            |w| {
                vec![Command::AddTags {
                    resources: vec![Taggable::LoadBalancer(w.lb("web"))],
                    tags: tags("AWS:x", "1"),
                }]
            },
            Refused("ValidationError"),
        ),
        case(
            "2.19 tag values may not start with aws:",
            |w| {
                vec![Command::AddTags {
                    resources: vec![Taggable::LoadBalancer(w.lb("web"))],
                    tags: tags("x", "aws:1"),
                }]
            },
            Refused("ValidationError"),
        ),
        case(
            "2.19 tag characters ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$",
            |w| vec![Command::AddTags { resources: vec![Taggable::LoadBalancer(w.lb("web"))], tags: tags("a#b", "1") }],
            Refused("ValidationError"),
        ),
        case(
            "2.20 access logs are for application and network load balancers (LoadBalancerAttribute)",
            |w| {
                vec![Command::ModifyLoadBalancerAttributes {
                    load_balancer: w.lb("gw"),
                    attributes: attributes("access_logs.s3.enabled", "false"),
                }]
            },
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "2.20 cross-zone load balancing can't be changed on application load balancers",
            |w| {
                vec![Command::ModifyLoadBalancerAttributes {
                    load_balancer: w.lb("web"),
                    attributes: attributes("load_balancing.cross_zone.enabled", "false"),
                }]
            },
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "2.20 documented keys are accepted: client_keep_alive.seconds, stickiness.lb_cookie.duration_seconds",
            |w| {
                vec![
                    Command::ModifyLoadBalancerAttributes {
                        load_balancer: w.lb("web"),
                        attributes: attributes("client_keep_alive.seconds", "3600"),
                    },
                    Command::ModifyTargetGroupAttributes {
                        target_group: w.tg("web"),
                        attributes: attributes("stickiness.lb_cookie.duration_seconds", "86400"),
                    },
                ]
            },
            Accepted(any),
        ),
        case(
            "2.20 source_ip stickiness is for network load balancers' groups (TargetGroupAttribute)",
            |w| {
                vec![Command::ModifyTargetGroupAttributes {
                    target_group: w.tg("web"),
                    attributes: attributes("stickiness.type", "source_ip"),
                }]
            },
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "2.20 Lambda groups have no deregistration delay",
            |w| {
                vec![Command::ModifyTargetGroupAttributes {
                    target_group: w.tg("fn"),
                    attributes: attributes("deregistration_delay.timeout_seconds", "30"),
                }]
            },
            Refused("InvalidConfigurationRequest"),
        ),
        case(
            "2.21 gateway load balancers have no security groups",
            |w| vec![Command::SetSecurityGroups { load_balancer: w.lb("gw"), security_groups: vec!["sg-1".into()] }],
            Refused("InvalidConfigurationRequest"),
        ),
        // Quotas.
        Case {
            row: "Q load balancers per region by type: an application quota does not stop a network load balancer",
            commands: |_| vec![lb(A, "nlb-2", LoadBalancerType::Network, "vpc-a", &[])],
            quotas: |q| q.application_load_balancers_per_account = 2,
            expect: Accepted(any),
        },
        Case {
            row: "Q load balancers per region by type: TooManyLoadBalancers",
            commands: |_| vec![lb(A, "alb-3", LoadBalancerType::Application, "vpc-a", &[])],
            quotas: |q| q.application_load_balancers_per_account = 2,
            expect: Refused("TooManyLoadBalancers"),
        },
        Case {
            row: "Q GENEVE target groups per region",
            commands: |_| {
                vec![Command::CreateTargetGroup(tg(A, "g2", Some(Protocol::Geneve), Some(6081), TargetType::Ip))]
            },
            quotas: |q| q.geneve_target_groups_per_account = 1,
            expect: Refused("TooManyTargetGroups"),
        },
        case(
            "Q listeners per gateway load balancer: 1",
            |w| {
                vec![Command::CreateListener(CreateListener {
                    load_balancer: w.lb("gw"),
                    default_actions: vec![Action::forward(w.tg("geneve"))],
                    ..CreateListener::default()
                })]
            },
            // The same port (6081) with the same settings is the existing listener.
            NoOp,
        ),
        Case {
            row: "Q listeners per gateway load balancer: a second one",
            commands: |w| {
                vec![
                    Command::DeleteListener { listener: w.state.listeners_of(w.lb("gw")).next().unwrap().id },
                    Command::CreateListener(CreateListener {
                        load_balancer: w.lb("gw"),
                        default_actions: vec![Action::forward(w.tg("geneve"))],
                        ..CreateListener::default()
                    }),
                ]
            },
            quotas: |q| q.listeners_per_gateway_load_balancer = 0,
            expect: Refused("TooManyListeners"),
        },
        Case {
            row: "Q rules per application load balancer, not counting default rules",
            commands: |w| vec![rule(w.listener("web", 80), 5, "/x", vec![Action::forward(w.tg("web"))])],
            quotas: |q| q.rules_per_load_balancer = 1,
            expect: Refused("TooManyRules"),
        },
        Case {
            row: "Q targets per application load balancer",
            commands: |w| {
                vec![Command::RegisterTargets { target_group: w.tg("web"), targets: targets(&["i-0123456789abcdef2"]) }]
            },
            quotas: |q| q.targets_per_application_load_balancer = 2,
            expect: Refused("TooManyTargets"),
        },
        Case {
            row: "Q target groups per application load balancer",
            commands: |w| vec![rule(w.listener("web", 80), 5, "/ips", vec![Action::forward(w.tg("ips"))])],
            quotas: |q| q.target_groups_per_application_load_balancer = 1,
            expect: Refused("TooManyUniqueTargetGroupsPerLoadBalancer"),
        },
        Case {
            row: "Q certificates per load balancer, not counting the default",
            commands: |w| {
                vec![Command::AddListenerCertificates {
                    listener: w.listener("web", 443),
                    certificates: vec![certificate("one")],
                }]
            },
            quotas: |q| q.certificates_per_load_balancer = 1,
            expect: Accepted(any),
        },
        Case {
            row: "Q certificates per load balancer: TooManyCertificates",
            commands: |w| {
                vec![Command::AddListenerCertificates {
                    listener: w.listener("web", 443),
                    certificates: vec![certificate("one"), certificate("two")],
                }]
            },
            quotas: |q| q.certificates_per_load_balancer = 1,
            expect: Refused("TooManyCertificates"),
        },
        // §3 Surprises.
        case(
            "3 ARNs are the external identity: a command names what an ARN resolves to",
            |w| {
                let text = arn::load_balancer(REGION, A, LoadBalancerType::Application, "web", w.lb("web"));
                let Some(EntityKey::LoadBalancer(id)) = w.state.resolve_arn(REGION, &text) else { panic!("{text}") };
                vec![Command::AddTags { resources: vec![Taggable::LoadBalancer(id)], tags: tags("arn", "yes") }]
            },
            Accepted(|w, after| after.arn(REGION, &EntityKey::LoadBalancer(w.lb("web"))).is_some()),
        ),
        case(
            "3 DNS names per type: network load balancers NAME-ID.elb.REGION.amazonaws.com",
            |w| vec![Command::AddTags { resources: vec![Taggable::LoadBalancer(w.lb("edge"))], tags: tags("k", "v") }],
            Accepted(|w, after| {
                let dns = &after.load_balancer(w.lb("edge")).unwrap().dns_name;
                dns.starts_with("edge-") && dns.ends_with(".elb.us-east-1.amazonaws.com")
            }),
        ),
        case(
            "3 health: unhealthy.draining with a reason of unhealthy (TargetHealthStateEnum)",
            |w| {
                vec![Command::UpdateTargetHealth {
                    target_group: w.tg("web"),
                    target: TargetSpec::new("i-0123456789abcdef1"),
                    health: TargetHealth::new(HealthState::UnhealthyDraining, Some(HealthReason::Timeout)),
                }]
            },
            Accepted(|w, after| {
                let t = after.targets_of(w.tg("web")).find(|t| &*t.key.id == "i-0123456789abcdef1").unwrap();
                t.health.state == HealthState::UnhealthyDraining
            }),
        ),
        case(
            "3 health: a reason the API does not give with the state (TargetHealth.Reason)",
            |w| {
                vec![Command::UpdateTargetHealth {
                    target_group: w.tg("web"),
                    target: TargetSpec::new("i-0123456789abcdef1"),
                    health: TargetHealth::new(HealthState::Healthy, Some(HealthReason::Timeout)),
                }]
            },
            Refused("InvalidTarget"),
        ),
        case(
            "3 health: unused targets become initial when a listener starts using their group",
            |w| vec![rule(w.listener("web", 80), 5, "/ips", vec![Action::forward(w.tg("ips"))])],
            Accepted(|w, after| {
                w.health("ips", "10.0.0.5").state == HealthState::Unused
                    && after.targets_of(w.tg("ips")).all(|t| {
                        t.health == TargetHealth::new(HealthState::Initial, Some(HealthReason::RegistrationInProgress))
                    })
            }),
        ),
        case(
            "3 SetLoadBalancerState: no listeners on a failed load balancer",
            |w| {
                vec![
                    Command::SetLoadBalancerState { load_balancer: w.lb("other"), state: LoadBalancerState::Failed },
                    listener(w.lb("other"), 80, Protocol::Http, w.tg("ips")),
                ]
            },
            Refused("OperationNotPermitted"),
        ),
        case(
            "3 ssl_policy is validated (SSLPolicyNotFound)",
            |w| {
                vec![Command::ModifyListener(ModifyListener {
                    ssl_policy: Some("ELBSecurityPolicy-Nonexistent".into()),
                    ..ModifyListener::new(w.listener("web", 443))
                })]
            },
            Refused("SSLPolicyNotFound"),
        ),
    ]
}

fn oidc() -> AuthenticateOidc {
    AuthenticateOidc {
        issuer: "https://idp.example.com".into(),
        authorization_endpoint: "https://idp.example.com/authorize".into(),
        token_endpoint: "https://idp.example.com/token".into(),
        user_info_endpoint: "https://idp.example.com/userinfo".into(),
        client_id: "elb".into(),
        ..AuthenticateOidc::default()
    }
}

#[test]
fn every_row_of_the_review_is_accepted_or_refused_as_the_api_would() {
    let world = World::build();
    let mut failures = Vec::new();
    for case in cases() {
        let mut settings = Settings::in_region(REGION);
        (case.quotas)(&mut settings.quotas);
        let commands = (case.commands)(&world);
        let got = world.run(&commands, &settings);
        let ok = match (&case.expect, &got) {
            (Expect::Accepted(check), Ok((events, after))) => *events > 0 && check(&world, after),
            (Expect::NoOp, Ok((events, _))) => *events == 0,
            (Expect::Refused(code), Err(err)) => err.code() == *code && err.http_status() == 400,
            _ => false,
        };
        if !ok {
            let got = got.map(|(events, _)| format!("{events} events")).map_err(|e| format!("{}: {e}", e.code()));
            failures.push(format!("{}: got {got:?}", case.row));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from the API:\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n")
    );
}

/// Review §2: "Revert (repair.rs) does not re-check quotas or TG association".
/// A revert that would break a rule reports a conflict with the API's code
/// and writes nothing.
#[test]
fn a_revert_that_would_break_a_rule_of_the_api_is_a_conflict_never_written() {
    let dir = TempDir::new("fidelity-revert");
    let options = Options::default().create(Create::IfMissing).sync(SyncPolicy::Never);
    let mut settings = Settings::in_region(REGION);
    settings.quotas.application_load_balancers_per_account = 2;
    let store = ElbStore::open(dir.path(), options, settings).unwrap();
    let meta = |what: &str| TxnMeta::new("ops", what);
    let app = LoadBalancerType::Application;
    let setup = store
        .execute(
            meta("setup"),
            vec![
                lb(A, "one", app, "vpc-a", &[]),
                lb(A, "two", app, "vpc-a", &[]),
                Command::CreateTargetGroup(tg(A, "shared", Some(Protocol::Http), Some(80), TargetType::Instance)),
            ],
        )
        .unwrap();
    let (one, two, shared) = (
        setup.load_balancer("one").unwrap(),
        setup.load_balancer("two").unwrap(),
        setup.target_group("shared").unwrap(),
    );
    let created = store.execute(meta("listener"), vec![listener(one, 80, Protocol::Http, shared)]).unwrap();
    let listener_one = created.listener(one, 80).unwrap();
    let refusal = |txn: u64| {
        let seq = store.read().seq();
        let plan = store
            .revert(RevertSelection::Transactions(vec![txn]), meta("undo"), RevertMode::Apply, OnConflict::Abort)
            .unwrap();
        assert!(plan.committed.is_none() && store.read().seq() == seq, "nothing written");
        plan.conflicts
            .iter()
            .filter_map(|c| match &c.reason {
                ConflictReason::Refused { code, .. } => Some(code.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // The group moves to the other load balancer: putting the first
    // listener back would give the group two load balancers.
    let moved = store.execute(meta("move"), vec![Command::DeleteListener { listener: listener_one }]).unwrap();
    store.execute(meta("move"), vec![listener(two, 80, Protocol::Http, shared)]).unwrap();
    assert_eq!(refusal(moved.committed.unwrap().seq), ["TargetGroupAssociationLimit"]);
    // A load balancer goes and another takes its place in the quota:
    // bringing it back would exceed the quota.
    let deleted = store.execute(meta("delete"), vec![Command::DeleteLoadBalancer { load_balancer: one }]).unwrap();
    store.execute(meta("replace"), vec![lb(A, "three", app, "vpc-a", &[])]).unwrap();
    assert_eq!(refusal(deleted.committed.unwrap().seq), ["TooManyLoadBalancers"]);
}

/// Review §2, "Revert ... does not re-check quotas": a restored state is
/// checked against today's rules too; a state the planner built breaks none,
/// and one built under larger quotas (or an older schema) is reported rule by
/// rule with the API's code.
#[test]
fn a_whole_state_is_checked_against_todays_rules() {
    let world = World::build();
    assert!(world.state.violations(&Quotas::default()).is_empty());
    let tight = Quotas {
        application_load_balancers_per_account: 1,
        targets_per_target_group: 1,
        listeners_per_load_balancer: 1,
        ..Quotas::default()
    };
    let mut codes: Vec<(String, &str)> =
        world.state.violations(&tight).iter().map(|(key, err)| (key.to_string(), err.code())).collect();
    codes.sort();
    let web = EntityKey::LoadBalancer(world.lb("web")).to_string();
    let web_group = EntityKey::TargetGroup(world.tg("web")).to_string();
    assert!(codes.contains(&(web.clone(), "TooManyListeners")), "{codes:?}");
    assert!(codes.contains(&(web_group, "TooManyTargets")), "{codes:?}");
    assert!(codes.iter().any(|(_, code)| *code == "TooManyLoadBalancers"), "{codes:?}");
}
