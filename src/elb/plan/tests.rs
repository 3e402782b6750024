//! One test per validation rule, each with the exact error it must give.

use super::*;
use crate::clock::Timestamp;
use crate::elb::fleet;
use crate::elb::model::{Attributes, Condition, HealthCheck, SubnetMapping};
use crate::elb::{EntityKey, NameProblem, Quotas};

/// A state holding reference load balancer 0 (created by transaction 1) and
/// an empty network load balancer (transaction 2).
struct World {
    state: ElbState,
    lb: LoadBalancerId,
    tg: TargetGroupId,
    http: ListenerId,
    https: ListenerId,
    rule: RuleId,
    nlb: LoadBalancerId,
    next_seq: u64,
}

fn settings() -> Settings {
    Settings::in_region("us-east-1")
}

fn ctx(seq: u64) -> TxnContext {
    TxnContext { seq, time: Timestamp::from_secs(1_356_380_640 + seq) }
}

fn apply_all(state: &mut ElbState, events: &[ElbEvent]) {
    for event in events {
        state.apply(event);
    }
}

fn world() -> World {
    let mut state = ElbState::default();
    let (events, _) = plan(&state, &fleet::reference_commands(0, 1), &ctx(1), &settings()).unwrap();
    apply_all(&mut state, &events);
    let nlb = CreateLoadBalancer {
        name: "nlb".into(),
        load_balancer_type: LoadBalancerType::Network,
        ..fleet::load_balancer_spec(0)
    };
    let (events, _) = plan(&state, &[Command::CreateLoadBalancer(nlb)], &ctx(2), &settings()).unwrap();
    apply_all(&mut state, &events);
    World {
        state,
        lb: LoadBalancerId::new(1, 0),
        tg: TargetGroupId::new(1, 1),
        http: ListenerId::new(1, 2),
        https: ListenerId::new(1, 3),
        rule: RuleId::new(1, 4),
        nlb: LoadBalancerId::new(2, 0),
        next_seq: 3,
    }
}

impl World {
    fn run(&self, commands: Vec<Command>) -> Result<(Vec<ElbEvent>, Vec<Outcome>)> {
        self.run_with(commands, &settings())
    }

    fn run_with(&self, commands: Vec<Command>, settings: &Settings) -> Result<(Vec<ElbEvent>, Vec<Outcome>)> {
        plan(&self.state, &commands, &ctx(self.next_seq), settings)
    }

    fn refuse(&self, commands: Vec<Command>) -> ElbError {
        self.run(commands).expect_err("the command must be refused")
    }

    fn commit(&mut self, commands: Vec<Command>) -> Vec<Outcome> {
        let (events, outcomes) = self.run(commands).unwrap();
        apply_all(&mut self.state, &events);
        self.next_seq += 1;
        outcomes
    }
}

fn listener(lb: LoadBalancerId, port: u16, protocol: Protocol, actions: Vec<Action>) -> Command {
    Command::CreateListener(CreateListener {
        load_balancer: lb,
        port: Some(port),
        protocol: Some(protocol),
        default_actions: actions,
        ..CreateListener::default()
    })
}

fn rule(listener: ListenerId, priority: u32, tg: TargetGroupId) -> Command {
    Command::CreateRule(CreateRule {
        listener,
        priority,
        conditions: vec![Condition::PathPattern(vec!["/x".into()])],
        actions: vec![Action::forward(tg)],
        tags: Tags::new(),
    })
}

fn target_group(name: &str, protocol: Protocol) -> CreateTargetGroup {
    CreateTargetGroup {
        account: fleet::account(0),
        name: name.into(),
        protocol: Some(protocol),
        port: Some(80),
        vpc_id: Some(format!("vpc-{}", fleet::account(0))),
        ..CreateTargetGroup::default()
    }
}

fn value_field(err: ElbError) -> &'static str {
    match err {
        ElbError::InvalidValue { field, .. } => field,
        other => panic!("expected an invalid value, got {other:?}"),
    }
}

#[test]
fn references_must_exist() {
    let w = world();
    let missing_lb = LoadBalancerId(999);
    // DeleteLoadBalancer: "If the load balancer does not exist or has already
    // been deleted, the call succeeds."
    assert_eq!(w.run(vec![Command::DeleteLoadBalancer { load_balancer: missing_lb }]).unwrap().0, vec![]);
    assert!(matches!(
        w.refuse(vec![Command::SetLoadBalancerState { load_balancer: missing_lb, state: LoadBalancerState::Active }]),
        ElbError::LoadBalancerNotFound { id } if id == missing_lb
    ));
    assert!(matches!(
        w.refuse(vec![Command::DeleteListener { listener: ListenerId(7) }]),
        ElbError::ListenerNotFound { id: ListenerId(7) }
    ));
    assert!(matches!(
        w.refuse(vec![Command::DeleteRule { rule: RuleId(7) }]),
        ElbError::RuleNotFound { id: RuleId(7) }
    ));
    // DeleteTargetGroup lists no TargetGroupNotFound; DeregisterTargets of
    // a target that is not registered "returns successfully".
    assert_eq!(w.run(vec![Command::DeleteTargetGroup { target_group: TargetGroupId(7) }]).unwrap().0, vec![]);
    let nope = Command::DeregisterTargets { target_group: w.tg, targets: vec![TargetSpec::new("i-nope")] };
    assert_eq!(w.run(vec![nope]).unwrap(), (vec![], vec![Outcome::Changed(0)]));
    let err = w.refuse(vec![Command::UpdateTargetHealth {
        target_group: w.tg,
        target: TargetSpec::new("i-nope"),
        health: TargetHealth::new(HealthState::Healthy, None),
    }]);
    assert!(matches!(err, ElbError::TargetNotRegistered { target } if &*target.id == "i-nope" && target.port == 8080));
    // A listener naming a missing target group.
    let err = w.refuse(vec![listener(w.lb, 8080, Protocol::Http, vec![Action::forward(TargetGroupId(5))])]);
    assert!(matches!(err, ElbError::TargetGroupNotFound { id: TargetGroupId(5) }));
}

#[test]
fn names_are_unique_per_account_and_follow_the_rules() {
    let w = world();
    let different = CreateLoadBalancer { scheme: Scheme::InternetFacing, ..fleet::load_balancer_spec(0) };
    let err = w.refuse(vec![Command::CreateLoadBalancer(different)]);
    assert!(matches!(err, ElbError::DuplicateLoadBalancerName { ref account, ref name }
        if *account == fleet::account(0) && name == "lb-0"));
    let err = w.refuse(vec![Command::CreateTargetGroup(target_group("lb-0", Protocol::Http))]);
    assert!(matches!(err, ElbError::DuplicateTargetGroupName { ref name, .. } if name == "lb-0"));
    // The same name in another account is fine.
    let other = CreateLoadBalancer { account: "999999999999".into(), ..fleet::load_balancer_spec(0) };
    assert!(w.run(vec![Command::CreateLoadBalancer(other)]).is_ok());
    let bad = CreateLoadBalancer { name: "internal-web".into(), ..fleet::load_balancer_spec(1) };
    assert!(matches!(
        w.refuse(vec![Command::CreateLoadBalancer(bad)]),
        ElbError::InvalidName { field: "name", problem: NameProblem::InternalPrefix, .. }
    ));
    let bad = CreateLoadBalancer { account: "12345".into(), ..fleet::load_balancer_spec(1) };
    assert_eq!(value_field(w.refuse(vec![Command::CreateLoadBalancer(bad)])), "account");
}

#[test]
fn listener_ports_are_unique_and_in_range() {
    let w = world();
    let fixed = Action::FixedResponse { status_code: 404, content_type: None, body: None };
    let err = w.refuse(vec![listener(w.lb, 80, Protocol::Http, vec![fixed])]);
    assert!(
        matches!(err, ElbError::PortInUse { load_balancer, port: 80, listener } if load_balancer == w.lb && listener == w.http)
    );
    assert_eq!(value_field(w.refuse(vec![listener(w.lb, 0, Protocol::Http, vec![Action::forward(w.tg)])])), "port");
    // Moving a listener onto a taken port.
    let modify = ModifyListener { port: Some(443), ..ModifyListener::new(w.http) };
    assert!(matches!(w.refuse(vec![Command::ModifyListener(modify)]), ElbError::PortInUse { port: 443, .. }));
}

#[test]
fn protocols_must_fit_the_load_balancer_type() {
    let w = world();
    let err = w.refuse(vec![listener(w.lb, 81, Protocol::Tcp, vec![Action::forward(w.tg)])]);
    assert!(matches!(
        err,
        ElbError::ProtocolNotAllowed { load_balancer_type: LoadBalancerType::Application, protocol: Protocol::Tcp }
    ));
    let err = w.refuse(vec![listener(w.nlb, 81, Protocol::Http, vec![])]);
    assert!(matches!(err, ElbError::ProtocolNotAllowed { load_balancer_type: LoadBalancerType::Network, .. }));
}

#[test]
fn https_and_tls_need_a_certificate() {
    let w = world();
    let err = w.refuse(vec![listener(w.lb, 8443, Protocol::Https, vec![Action::forward(w.tg)])]);
    assert!(matches!(err, ElbError::CertificateRequired { protocol: Protocol::Https }));
    // RemoveListenerCertificates: the default certificate cannot be removed.
    let certificates = vec![w.state.listener(w.https).unwrap().default_certificate.clone().unwrap()];
    let err = w.refuse(vec![Command::RemoveListenerCertificates { listener: w.https, certificates }]);
    assert!(matches!(err, ElbError::OperationNotPermitted { .. }));
}

#[test]
fn an_application_load_balancer_needs_two_zones() {
    let w = world();
    let mut spec = fleet::load_balancer_spec(1);
    spec.subnets.truncate(1);
    assert!(matches!(
        w.refuse(vec![Command::CreateLoadBalancer(spec)]),
        ElbError::TooFewAvailabilityZones { required: 2, given: 1 }
    ));
    let one = vec![SubnetMapping { subnet_id: "subnet-1".into(), availability_zone: "us-east-1a".into() }];
    assert!(matches!(
        w.refuse(vec![Command::SetSubnets { load_balancer: w.lb, subnets: one }]),
        ElbError::TooFewAvailabilityZones { required: 2, given: 1 }
    ));
}

#[test]
fn rule_priorities_are_unique_per_listener_and_in_range() {
    let w = world();
    let err = w.refuse(vec![rule(w.http, 10, w.tg)]);
    assert!(
        matches!(err, ElbError::PriorityInUse { listener, priority: 10, rule } if listener == w.http && rule == w.rule)
    );
    assert_eq!(value_field(w.refuse(vec![rule(w.http, 0, w.tg)])), "priority");
    assert_eq!(value_field(w.refuse(vec![rule(w.http, 50_001, w.tg)])), "priority");
    // The same priority on another listener is fine.
    assert!(w.run(vec![rule(w.https, 20, w.tg)]).is_ok());
}

#[test]
fn set_rule_priorities_allows_swaps_and_refuses_clashes() {
    let mut w = world();
    let second = match &w.commit(vec![rule(w.http, 20, w.tg)])[0] {
        Outcome::RuleCreated(id) => *id,
        other => panic!("{other:?}"),
    };
    let swap = Command::SetRulePriorities { priorities: vec![(w.rule, 20), (second, 10)] };
    assert_eq!(w.commit(vec![swap]), vec![Outcome::Changed(2)]);
    assert_eq!(w.state.rule(w.rule).unwrap().priority, 20);
    let clash = Command::SetRulePriorities { priorities: vec![(second, 20)] };
    assert!(matches!(w.refuse(vec![clash]), ElbError::PriorityInUse { priority: 20, rule, .. } if rule == w.rule));
}

#[test]
fn rules_exist_only_on_application_load_balancers() {
    let mut w = world();
    let tcp = target_group("tcp", Protocol::Tcp);
    let tg = match &w.commit(vec![Command::CreateTargetGroup(tcp)])[0] {
        Outcome::TargetGroupCreated(id) => *id,
        other => panic!("{other:?}"),
    };
    let nlb_listener = match &w.commit(vec![listener(w.nlb, 53, Protocol::Tcp, vec![Action::forward(tg)])])[0] {
        Outcome::ListenerCreated(id) => *id,
        other => panic!("{other:?}"),
    };
    assert!(
        matches!(w.refuse(vec![rule(nlb_listener, 1, tg)]), ElbError::RulesNotSupported { listener } if listener == nlb_listener)
    );
}

#[test]
fn target_groups_must_fit_the_load_balancer() {
    let mut w = world();
    // An HTTP target group cannot serve a network load balancer.
    let err = w.refuse(vec![listener(w.nlb, 81, Protocol::Tcp, vec![Action::forward(w.tg)])]);
    assert!(matches!(err, ElbError::IncompatibleProtocols { target_group, listener_protocol: Protocol::Tcp, .. }
        if target_group == w.tg));
    let other_vpc = CreateTargetGroup { vpc_id: Some("vpc-other".into()), ..target_group("elsewhere", Protocol::Http) };
    let tg = match &w.commit(vec![Command::CreateTargetGroup(other_vpc)])[0] {
        Outcome::TargetGroupCreated(id) => *id,
        other => panic!("{other:?}"),
    };
    let err = w.refuse(vec![listener(w.lb, 81, Protocol::Http, vec![Action::forward(tg)])]);
    assert!(matches!(err, ElbError::IncompatibleTargetGroup { problem: "it is in another VPC", .. }));
}

#[test]
fn a_target_group_in_use_cannot_be_deleted() {
    let w = world();
    let err = w.refuse(vec![Command::DeleteTargetGroup { target_group: w.tg }]);
    assert!(matches!(err, ElbError::TargetGroupInUse { target_group, used_by: EntityKey::Listener(l) }
        if target_group == w.tg && l == w.http));
    // Once the load balancer is gone, the group and its targets can go.
    let (events, outcomes) = w
        .run(vec![
            Command::DeleteLoadBalancer { load_balancer: w.lb },
            Command::DeleteTargetGroup { target_group: w.tg },
        ])
        .unwrap();
    assert_eq!(outcomes, vec![Outcome::Changed(5), Outcome::Changed(11)]);
    // The load balancer's 5 resources, its 10 targets marked unused when no
    // load balancer uses their group any more, then the group and its targets.
    assert_eq!(events.len(), 5 + 10 + 11);
}

#[test]
fn deletion_protection_blocks_deletion() {
    let mut w = world();
    let protect = Attributes::from([(DELETION_PROTECTION_KEY.to_owned(), "true".to_owned())]);
    w.commit(vec![Command::ModifyLoadBalancerAttributes { load_balancer: w.lb, attributes: protect }]);
    let err = w.refuse(vec![Command::DeleteLoadBalancer { load_balancer: w.lb }]);
    assert!(
        matches!(err, ElbError::DeletionProtected { load_balancer, ref name } if load_balancer == w.lb && name == "lb-0")
    );
}

const DELETION_PROTECTION_KEY: &str = crate::elb::DELETION_PROTECTION;

#[test]
fn quotas_are_enforced() {
    let w = world();
    let settings = |f: fn(&mut Quotas)| {
        let mut s = self::settings();
        f(&mut s.quotas);
        s
    };
    let quota = |err: ElbError| match err {
        ElbError::QuotaExceeded { quota, limit } => (quota, limit),
        other => panic!("expected a quota error, got {other:?}"),
    };
    let s = settings(|q| q.listeners_per_load_balancer = 2);
    let err = w.run_with(vec![listener(w.lb, 81, Protocol::Http, vec![Action::forward(w.tg)])], &s).unwrap_err();
    assert_eq!(quota(err), ("listeners_per_load_balancer", 2));
    let s = settings(|q| q.rules_per_load_balancer = 2);
    assert_eq!(quota(w.run_with(vec![rule(w.http, 30, w.tg)], &s).unwrap_err()), ("rules_per_load_balancer", 2));
    let s = settings(|q| q.targets_per_target_group = 10);
    let more = Command::RegisterTargets { target_group: w.tg, targets: vec![TargetSpec::new("i-0123456789abcdef0")] };
    assert_eq!(quota(w.run_with(vec![more], &s).unwrap_err()), ("targets_per_target_group", 10));
    let s = settings(|q| q.application_load_balancers_per_account = 1);
    let second = CreateLoadBalancer { name: "second".into(), ..fleet::load_balancer_spec(0) };
    assert_eq!(
        quota(w.run_with(vec![Command::CreateLoadBalancer(second)], &s).unwrap_err()),
        ("application_load_balancers_per_account", 1)
    );
    let s = settings(|q| q.target_groups_per_account = 1);
    let second = Command::CreateTargetGroup(target_group("second", Protocol::Http));
    assert_eq!(quota(w.run_with(vec![second], &s).unwrap_err()), ("target_groups_per_account", 1));
    let tags: Tags = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
    let err = w.refuse(vec![Command::AddTags { resources: vec![Taggable::LoadBalancer(w.lb)], tags }]);
    assert_eq!(quota(err), ("tags_per_resource", 50));
}

#[test]
fn field_values_are_checked_and_named() {
    let w = world();
    let bad_check = CreateTargetGroup {
        health_check: HealthCheck { interval_seconds: 2, ..HealthCheck::default() },
        ..target_group("checked", Protocol::Http)
    };
    assert_eq!(value_field(w.refuse(vec![Command::CreateTargetGroup(bad_check)])), "health_check.interval_seconds");
    let bad = Command::ModifyTargetGroup {
        target_group: w.tg,
        health_check: ModifyHealthCheck {
            timeout_seconds: Some(40),
            interval_seconds: Some(30),
            ..ModifyHealthCheck::default()
        },
    };
    assert!(matches!(
        w.refuse(vec![bad]),
        ElbError::InvalidConfiguration { field: "health_check.timeout_seconds", .. }
    ));
    let attrs = Attributes::from([("idle_timeout.timeout_seconds".to_owned(), "9999".to_owned())]);
    let err = w.refuse(vec![Command::ModifyLoadBalancerAttributes { load_balancer: w.lb, attributes: attrs }]);
    assert_eq!(value_field(err), "attributes.idle_timeout.timeout_seconds");
    let err = w.refuse(vec![Command::SetIpAddressType {
        load_balancer: w.nlb,
        ip_address_type: IpAddressType::DualstackWithoutPublicIpv4,
    }]);
    assert!(matches!(err, ElbError::InvalidConfiguration { field: "ip_address_type", .. }));
}

#[test]
fn a_transaction_is_all_or_nothing() {
    let w = world();
    let ok = CreateLoadBalancer { name: "fresh".into(), ..fleet::load_balancer_spec(0) };
    let clash = CreateLoadBalancer { scheme: Scheme::InternetFacing, ..fleet::load_balancer_spec(0) };
    let err = w.refuse(vec![Command::CreateLoadBalancer(ok), Command::CreateLoadBalancer(clash)]);
    assert!(matches!(err, ElbError::DuplicateLoadBalancerName { .. }));
    // A later command sees an earlier one's effects: a duplicate within the transaction.
    let twice = CreateLoadBalancer { name: "twice".into(), ..fleet::load_balancer_spec(0) };
    let other = CreateLoadBalancer { scheme: Scheme::InternetFacing, ..twice.clone() };
    let err = w.refuse(vec![Command::CreateLoadBalancer(twice), Command::CreateLoadBalancer(other)]);
    assert!(matches!(err, ElbError::DuplicateLoadBalancerName { ref name, .. } if name == "twice"));
}

#[test]
fn deleting_a_load_balancer_records_its_rules_and_listeners_with_full_values() {
    let w = world();
    let (events, _) = w.run(vec![Command::DeleteLoadBalancer { load_balancer: w.lb }]).unwrap();
    let keys: Vec<EntityKey> = events[..5].iter().map(ElbEvent::key).collect();
    assert_eq!(
        keys,
        vec![
            EntityKey::Rule(w.rule),
            EntityKey::Listener(w.http),
            EntityKey::Rule(RuleId::new(1, 5)),
            EntityKey::Listener(w.https),
            EntityKey::LoadBalancer(w.lb),
        ]
    );
    // Then its group's targets become unused (Target.NotInUse).
    for event in &events[5..] {
        let ElbEvent::Updated { after: Entity::Target(t), .. } = event else { panic!("{event:?}") };
        assert_eq!(t.health, TargetHealth::new(HealthState::Unused, Some(HealthReason::NotInUse)));
    }
    for event in &events[..5] {
        let ElbEvent::Deleted(entity) = event else { panic!("{event:?}") };
        assert_eq!(Some(entity.clone()), w.state.entity(&entity.key()), "the deletion carries the whole value");
    }
}

#[test]
fn no_op_commands_produce_no_events() {
    let w = world();
    let again = Command::RegisterTargets { target_group: w.tg, targets: vec![TargetSpec::new(fleet::target_id(0, 0))] };
    assert_eq!(w.run(vec![again]).unwrap(), (vec![], vec![Outcome::Changed(0)]));
    let same_state = Command::SetLoadBalancerState { load_balancer: w.lb, state: LoadBalancerState::Provisioning };
    assert_eq!(w.run(vec![same_state]).unwrap().0, vec![]);
}

#[test]
fn target_health_updates_carry_before_and_after() {
    let w = world();
    let health = TargetHealth { state: HealthState::Unhealthy, reason: Some(HealthReason::Timeout) };
    let (events, _) = w
        .run(vec![Command::UpdateTargetHealth {
            target_group: w.tg,
            target: TargetSpec::new(fleet::target_id(0, 3)),
            health: health.clone(),
        }])
        .unwrap();
    let [ElbEvent::Updated { before: Entity::Target(before), after: Entity::Target(after) }] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(before.health.state, HealthState::Initial);
    assert_eq!(after.health, health);
}

#[test]
fn ids_come_from_the_creating_transaction() {
    let w = world();
    assert_eq!(w.state.load_balancer(w.lb).unwrap().id.created_seq(), 1);
    assert_eq!(w.state.counts().targets, 10);
    assert_eq!(w.state.targets_of(w.tg).count(), 10);
    assert_eq!(w.state.users_of(w.tg).count(), 4, "two listeners and two rules forward to it");
    assert_eq!(w.state.load_balancers_using(w.tg), vec![w.lb]);
}

/// `LoadBalancerStateEnum`: provisioning ends active, impaired or failed;
/// active and impaired move between each other and back to provisioning;
/// failed is final.
#[test]
fn load_balancer_states_follow_the_transition_table() {
    use LoadBalancerState::*;
    let allowed: &[(LoadBalancerState, &[LoadBalancerState])] = &[
        (Provisioning, &[Provisioning, Active, ActiveImpaired, Failed]),
        (Active, &[Active, ActiveImpaired, Provisioning]),
        (ActiveImpaired, &[ActiveImpaired, Active, Provisioning, Failed]),
        (Failed, &[Failed]),
    ];
    for (from, to) in allowed {
        for next in LoadBalancerState::ALL {
            assert_eq!(state_transition_allowed(*from, *next), to.contains(next), "{from} -> {next}");
        }
    }
}

/// `TargetHealth.Reason`: each state with the reasons the API gives for it;
/// the fleet reports only what a check can find.
#[test]
fn health_updates_take_the_states_and_reasons_a_check_can_find() {
    let w = world();
    let update = |state, reason| {
        w.run(vec![Command::UpdateTargetHealth {
            target_group: w.tg,
            target: TargetSpec::new(fleet::target_id(0, 1)),
            health: TargetHealth::new(state, reason),
        }])
        .map(|(events, _)| events.len())
        .map_err(|e| e.code())
    };
    assert_eq!(update(HealthState::Healthy, None), Ok(1));
    assert_eq!(update(HealthState::Unhealthy, Some(HealthReason::ResponseCodeMismatch)), Ok(1));
    assert_eq!(update(HealthState::Initial, Some(HealthReason::InitialHealthChecking)), Ok(1));
    assert_eq!(update(HealthState::Unavailable, Some(HealthReason::InternalError)), Ok(1));
    assert_eq!(update(HealthState::Unhealthy, None), Err("InvalidTarget"), "unhealthy carries a reason");
    assert_eq!(update(HealthState::Healthy, Some(HealthReason::Timeout)), Err("InvalidTarget"));
    assert_eq!(update(HealthState::Draining, Some(HealthReason::DeregistrationInProgress)), Err("InvalidTarget"));
    assert_eq!(update(HealthState::Unused, Some(HealthReason::NotInUse)), Err("InvalidTarget"));
}

/// `DeregisterTargets` and the deregistration delay: the target drains until
/// the delay ends, registering it again takes it back, and
/// `CompleteDeregistrations` removes it once the delay has passed.
#[test]
fn deregistration_drains_for_the_delay_then_completes() {
    let mut w = world();
    let target = TargetSpec::new(fleet::target_id(0, 2));
    w.commit(vec![Command::DeregisterTargets { target_group: w.tg, targets: vec![target.clone()] }]);
    let key = |w: &World| w.state.targets_of(w.tg).find(|t| *t.key.id == *target.id).cloned();
    let drained = key(&w).unwrap();
    assert_eq!(drained.health.state, HealthState::Draining);
    assert_eq!(
        drained.draining_until,
        Some(ctx(w.next_seq - 1).time.saturating_add(std::time::Duration::from_secs(300)))
    );
    // Not yet: the world's transactions are a second apart.
    assert_eq!(w.commit(vec![Command::CompleteDeregistrations { target_group: None }]), vec![Outcome::Changed(0)]);
    w.commit(vec![Command::RegisterTargets { target_group: w.tg, targets: vec![target.clone()] }]);
    assert_eq!(key(&w).unwrap().health.state, HealthState::Initial, "registered again");
    w.commit(vec![Command::DeregisterTargets { target_group: w.tg, targets: vec![target.clone()] }]);
    let later =
        TxnContext { seq: w.next_seq, time: ctx(w.next_seq).time.saturating_add(std::time::Duration::from_secs(301)) };
    let (events, _) =
        plan(&w.state, &[Command::CompleteDeregistrations { target_group: Some(w.tg) }], &later, &settings()).unwrap();
    assert_eq!(events.len(), 1);
    assert!(matches!(&events[0], ElbEvent::Deleted(Entity::Target(t)) if *t.key.id == *target.id));
}
