//! The typed ELB store against an independent reference model, the inverse
//! property of events, and the reference fleet built through the API.

mod common;

use std::collections::BTreeMap;

use common::TempDir;
use elbstore::elb::{
    fleet, Action, Command, CreateListener, CreateRule, CreateTargetGroup, CreateTrustStore, ElbError, ElbEvent,
    ElbState, ElbStore, EntityKey, HealthState, ListenerId, LoadBalancerId, Outcome, Protocol, RuleId, S3Object,
    Settings, Taggable, TargetGroupId, TargetSpec, TrustStoreId, DELETION_PROTECTION, DEREGISTRATION_DELAY,
};
use elbstore::{Create, Options, StateMachine, SyncPolicy, TxnMeta};
use proptest::prelude::*;

/// A deliberately plain model of what the store should hold: maps of the few
/// facts the commands below change, with the validation rules written out again.
#[derive(Debug, Default, Clone, PartialEq)]
struct Model {
    lbs: BTreeMap<LoadBalancerId, (String, bool)>,
    /// Name and whether the deregistration delay is zero.
    tgs: BTreeMap<TargetGroupId, (String, bool)>,
    listeners: BTreeMap<ListenerId, (LoadBalancerId, u16, TargetGroupId)>,
    rules: BTreeMap<RuleId, (ListenerId, u32, TargetGroupId)>,
    targets: BTreeMap<(TargetGroupId, String), HealthState>,
    tags: BTreeMap<LoadBalancerId, BTreeMap<String, String>>,
    trust_stores: BTreeMap<TrustStoreId, String>,
}

impl Model {
    /// The load balancers whose listeners or rules forward to a group.
    fn users(&self, group: TargetGroupId) -> Vec<LoadBalancerId> {
        let mut lbs: Vec<LoadBalancerId> = self.listeners.values().filter(|l| l.2 == group).map(|l| l.0).collect();
        lbs.extend(self.rules.values().filter(|r| r.2 == group).filter_map(|r| self.listeners.get(&r.0)).map(|l| l.0));
        lbs.sort();
        lbs.dedup();
        lbs
    }

    fn fresh(&self, group: TargetGroupId) -> HealthState {
        if self.users(group).is_empty() {
            HealthState::Unused
        } else {
            HealthState::Initial
        }
    }

    /// Targets follow their group's use: unused when no load balancer uses
    /// it, initial again when one does; draining targets keep draining.
    fn settle(&mut self) {
        let groups: Vec<TargetGroupId> = self.tgs.keys().copied().collect();
        for group in groups {
            let used = !self.users(group).is_empty();
            for (_, state) in self.targets.iter_mut().filter(|((g, _), _)| *g == group) {
                match (*state, used) {
                    (HealthState::Draining, _) => {}
                    (_, false) => *state = HealthState::Unused,
                    (HealthState::Unused, true) => *state = HealthState::Initial,
                    _ => {}
                }
            }
        }
    }
}

/// Operations with small pools of names, ports and priorities so that
/// collisions (and refusals) are frequent. Indexes pick existing entities;
/// an index past the end names one that does not exist.
#[derive(Clone, Debug)]
enum Op {
    CreateLb(u8),
    DeleteLb(u8),
    Protect(u8, bool),
    CreateTg(u8),
    DeleteTg(u8),
    SetDelay(u8, bool),
    CreateListener(u8, u8, u8),
    DeleteListener(u8),
    CreateRule(u8, u8, u8),
    DeleteRule(u8),
    Register(u8, u8),
    Deregister(u8, u8),
    Health(u8, u8, bool),
    Tag(u8, u8),
    Untag(u8, u8),
    CreateTrustStore(u8),
    DeleteTrustStore(u8),
    ListenerAttribute(u8, bool),
    Capacity(u8, u8),
    CompleteDeregistrations,
}

fn op() -> impl Strategy<Value = Op> {
    let i = || 0u8..6;
    prop_oneof![
        3 => i().prop_map(Op::CreateLb),
        1 => i().prop_map(Op::DeleteLb),
        1 => (i(), any::<bool>()).prop_map(|(a, b)| Op::Protect(a, b)),
        2 => i().prop_map(Op::CreateTg),
        1 => i().prop_map(Op::DeleteTg),
        1 => (i(), any::<bool>()).prop_map(|(a, b)| Op::SetDelay(a, b)),
        3 => (i(), i(), i()).prop_map(|(a, b, c)| Op::CreateListener(a, b, c)),
        1 => i().prop_map(Op::DeleteListener),
        2 => (i(), i(), i()).prop_map(|(a, b, c)| Op::CreateRule(a, b, c)),
        1 => i().prop_map(Op::DeleteRule),
        3 => (i(), i()).prop_map(|(a, b)| Op::Register(a, b)),
        2 => (i(), i()).prop_map(|(a, b)| Op::Deregister(a, b)),
        3 => (i(), i(), any::<bool>()).prop_map(|(a, b, c)| Op::Health(a, b, c)),
        1 => (i(), i()).prop_map(|(a, b)| Op::Tag(a, b)),
        1 => (i(), i()).prop_map(|(a, b)| Op::Untag(a, b)),
        1 => i().prop_map(Op::CreateTrustStore),
        1 => i().prop_map(Op::DeleteTrustStore),
        1 => (i(), any::<bool>()).prop_map(|(a, b)| Op::ListenerAttribute(a, b)),
        1 => (i(), any::<u8>()).prop_map(|(a, b)| Op::Capacity(a, b)),
        1 => Just(Op::CompleteDeregistrations),
    ]
}

fn pick<K: Copy, V>(map: &BTreeMap<K, V>, index: u8, missing: K) -> K {
    map.keys().nth(index as usize).copied().unwrap_or(missing)
}

const ACCOUNT: &str = "123456789012";
const PORTS: [u16; 3] = [80, 8080, 8081];

fn instance(n: u8) -> String {
    format!("i-{n:08x}")
}

/// What the model expects: `Ok` with the new model, or the name of the error.
fn expect(model: &Model, op: &Op) -> Result<Model, &'static str> {
    let mut m = model.clone();
    let lb = |i| pick(&model.lbs, i, LoadBalancerId(1));
    let tg = |i| pick(&model.tgs, i, TargetGroupId(1));
    let listener = |i| pick(&model.listeners, i, ListenerId(1));
    let rule = |i| pick(&model.rules, i, RuleId(1));
    match *op {
        // Identical retries of creates succeed and change nothing.
        Op::CreateLb(_) | Op::CreateTg(_) => {}
        Op::DeleteLb(i) => {
            let id = lb(i);
            // DeleteLoadBalancer of a missing load balancer succeeds.
            let Some((_, protected)) = model.lbs.get(&id) else { return Ok(m) };
            if *protected {
                return Err("DeletionProtected");
            }
            let gone: Vec<ListenerId> = model.listeners.iter().filter(|(_, l)| l.0 == id).map(|(k, _)| *k).collect();
            m.rules.retain(|_, r| !gone.contains(&r.0));
            m.listeners.retain(|k, _| !gone.contains(k));
            m.lbs.remove(&id);
            m.tags.remove(&id);
        }
        Op::Protect(i, on) => {
            let id = lb(i);
            m.lbs.get_mut(&id).ok_or("LoadBalancerNotFound")?.1 = on;
        }
        Op::DeleteTg(i) => {
            let id = tg(i);
            if !model.tgs.contains_key(&id) {
                return Ok(m);
            }
            if !model.users(id).is_empty() {
                return Err("TargetGroupInUse");
            }
            m.tgs.remove(&id);
            m.targets.retain(|(g, _), _| *g != id);
        }
        Op::SetDelay(t, zero) => {
            m.tgs.get_mut(&tg(t)).ok_or("TargetGroupNotFound")?.1 = zero;
        }
        Op::CreateListener(i, p, t) => {
            let (id, group) = (lb(i), tg(t));
            if !model.lbs.contains_key(&id) {
                return Err("LoadBalancerNotFound");
            }
            if !model.tgs.contains_key(&group) {
                return Err("TargetGroupNotFound");
            }
            if model.users(group).iter().any(|user| *user != id) {
                return Err("TargetGroupAssociationLimit");
            }
            if let Some(existing) = model.listeners.values().find(|l| l.0 == id && l.1 == PORTS[p as usize % 3]) {
                return if existing.2 == group { Ok(m) } else { Err("PortInUse") };
            }
        }
        Op::DeleteListener(i) => {
            let id = listener(i);
            m.listeners.remove(&id).ok_or("ListenerNotFound")?;
            m.rules.retain(|_, r| r.0 != id);
        }
        Op::CreateRule(i, p, t) => {
            let (id, group) = (listener(i), tg(t));
            let Some(parent) = model.listeners.get(&id) else { return Err("ListenerNotFound") };
            if model.rules.values().any(|r| r.0 == id && r.1 == u32::from(p) + 1) {
                return Err("PriorityInUse");
            }
            if !model.tgs.contains_key(&group) {
                return Err("TargetGroupNotFound");
            }
            if model.users(group).iter().any(|user| *user != parent.0) {
                return Err("TargetGroupAssociationLimit");
            }
        }
        Op::DeleteRule(i) => {
            m.rules.remove(&rule(i)).ok_or("RuleNotFound")?;
        }
        Op::Register(t, n) => {
            let group = tg(t);
            if !model.tgs.contains_key(&group) {
                return Err("TargetGroupNotFound");
            }
            let fresh = model.fresh(group);
            let state = m.targets.entry((group, instance(n))).or_insert(fresh);
            if *state == HealthState::Draining {
                *state = fresh;
            }
        }
        Op::Deregister(t, n) => {
            let group = tg(t);
            let Some((_, zero_delay)) = model.tgs.get(&group) else { return Err("TargetGroupNotFound") };
            // DeregisterTargets of a target that is not registered succeeds.
            let key = (group, instance(n));
            match model.targets.get(&key) {
                None | Some(HealthState::Draining) => {}
                Some(_) if *zero_delay || model.users(group).is_empty() => {
                    m.targets.remove(&key);
                }
                Some(_) => {
                    m.targets.insert(key, HealthState::Draining);
                }
            }
        }
        Op::Health(t, n, healthy) => {
            let group = tg(t);
            if !model.tgs.contains_key(&group) {
                return Err("TargetGroupNotFound");
            }
            let state = m.targets.get_mut(&(group, instance(n))).ok_or("TargetNotRegistered")?;
            if matches!(*state, HealthState::Unused | HealthState::Draining) {
                return Err("InvalidHealthTransition");
            }
            *state = if healthy { HealthState::Healthy } else { HealthState::Unhealthy };
        }
        Op::Tag(i, k) => {
            let id = lb(i);
            if !model.lbs.contains_key(&id) {
                return Err("LoadBalancerNotFound");
            }
            m.tags.entry(id).or_default().insert(format!("k{k}"), format!("v{k}"));
        }
        Op::Untag(i, k) => {
            let id = lb(i);
            if !model.lbs.contains_key(&id) {
                return Err("LoadBalancerNotFound");
            }
            if let Some(tags) = m.tags.get_mut(&id) {
                tags.remove(&format!("k{k}"));
                if tags.is_empty() {
                    m.tags.remove(&id);
                }
            }
        }
        Op::CreateTrustStore(n) => {
            if model.trust_stores.values().any(|name| *name == format!("ts-{n}")) {
                return Err("DuplicateTrustStoreName");
            }
        }
        Op::DeleteTrustStore(i) => {
            let id = pick(&model.trust_stores, i, TrustStoreId(1));
            m.trust_stores.remove(&id).ok_or("TrustStoreNotFound")?;
        }
        Op::ListenerAttribute(i, _) => {
            model.listeners.get(&listener(i)).ok_or("ListenerNotFound")?;
        }
        Op::Capacity(i, _) => {
            model.lbs.get(&lb(i)).ok_or("LoadBalancerNotFound")?;
        }
        // Drains last 300 s, far longer than a case.
        Op::CompleteDeregistrations => {}
    }
    m.settle();
    Ok(m)
}

fn command(model: &Model, op: &Op) -> Command {
    let lb = |i| pick(&model.lbs, i, LoadBalancerId(1));
    let tg = |i| pick(&model.tgs, i, TargetGroupId(1));
    let listener = |i| pick(&model.listeners, i, ListenerId(1));
    let target = |n: u8| vec![TargetSpec::new(instance(n))];
    match *op {
        Op::CreateLb(n) => {
            let mut spec = fleet::load_balancer_spec(0);
            spec.account = ACCOUNT.into();
            spec.vpc_id = "vpc-1".into();
            spec.name = format!("lb-{n}");
            spec.tags.clear();
            Command::CreateLoadBalancer(spec)
        }
        Op::DeleteLb(i) => Command::DeleteLoadBalancer { load_balancer: lb(i) },
        Op::Protect(i, on) => Command::ModifyLoadBalancerAttributes {
            load_balancer: lb(i),
            attributes: [(DELETION_PROTECTION.to_owned(), on.to_string())].into(),
        },
        Op::CreateTg(n) => Command::CreateTargetGroup(CreateTargetGroup {
            account: ACCOUNT.into(),
            name: format!("tg-{n}"),
            vpc_id: Some("vpc-1".into()),
            ..CreateTargetGroup::default()
        }),
        Op::DeleteTg(i) => Command::DeleteTargetGroup { target_group: tg(i) },
        Op::SetDelay(t, zero) => Command::ModifyTargetGroupAttributes {
            target_group: tg(t),
            attributes: [(DEREGISTRATION_DELAY.to_owned(), if zero { "0" } else { "300" }.to_owned())].into(),
        },
        Op::CreateListener(i, p, t) => Command::CreateListener(CreateListener {
            load_balancer: lb(i),
            port: Some(PORTS[p as usize % 3]),
            protocol: Some(Protocol::Http),
            default_actions: vec![Action::forward(tg(t))],
            ..CreateListener::default()
        }),
        Op::DeleteListener(i) => Command::DeleteListener { listener: listener(i) },
        Op::CreateRule(i, p, t) => Command::CreateRule(CreateRule {
            listener: listener(i),
            priority: u32::from(p) + 1,
            conditions: vec![elbstore::elb::Condition::PathPattern(vec!["/p".into()])],
            actions: vec![Action::forward(tg(t))],
            tags: Default::default(),
        }),
        Op::DeleteRule(i) => Command::DeleteRule { rule: pick(&model.rules, i, RuleId(1)) },
        Op::Register(t, n) => Command::RegisterTargets { target_group: tg(t), targets: target(n) },
        Op::Deregister(t, n) => Command::DeregisterTargets { target_group: tg(t), targets: target(n) },
        Op::Health(t, n, healthy) => Command::UpdateTargetHealth {
            target_group: tg(t),
            target: TargetSpec::new(instance(n)),
            health: fleet::check_result(healthy, u64::from(n)),
        },
        Op::Tag(i, k) => Command::AddTags {
            resources: vec![Taggable::LoadBalancer(lb(i))],
            tags: [(format!("k{k}"), format!("v{k}"))].into(),
        },
        Op::Untag(i, k) => {
            Command::RemoveTags { resources: vec![Taggable::LoadBalancer(lb(i))], keys: vec![format!("k{k}")] }
        }
        Op::CreateTrustStore(n) => Command::CreateTrustStore(CreateTrustStore {
            account: ACCOUNT.into(),
            name: format!("ts-{n}"),
            ca_certificates_bundle: S3Object { bucket: "ca-bundles".into(), key: format!("ts-{n}.pem"), version: None },
            tags: Default::default(),
        }),
        Op::DeleteTrustStore(i) => {
            Command::DeleteTrustStore { trust_store: pick(&model.trust_stores, i, TrustStoreId(1)) }
        }
        Op::ListenerAttribute(i, on) => Command::ModifyListenerAttributes {
            listener: listener(i),
            attributes: [("routing.http.response.server.enabled".to_owned(), on.to_string())].into(),
        },
        Op::Capacity(i, n) => {
            Command::ModifyCapacityReservation { load_balancer: lb(i), capacity_units: (n > 0).then_some(u32::from(n)) }
        }
        Op::CompleteDeregistrations => Command::CompleteDeregistrations { target_group: None },
    }
}

fn error_name(err: &ElbError) -> &'static str {
    match err {
        ElbError::DuplicateLoadBalancerName { .. } => "DuplicateLoadBalancerName",
        ElbError::DuplicateTargetGroupName { .. } => "DuplicateTargetGroupName",
        ElbError::DuplicateTrustStoreName { .. } => "DuplicateTrustStoreName",
        ElbError::LoadBalancerNotFound { .. } => "LoadBalancerNotFound",
        ElbError::ListenerNotFound { .. } => "ListenerNotFound",
        ElbError::RuleNotFound { .. } => "RuleNotFound",
        ElbError::TargetGroupNotFound { .. } => "TargetGroupNotFound",
        ElbError::TrustStoreNotFound { .. } => "TrustStoreNotFound",
        ElbError::TargetNotRegistered { .. } => "TargetNotRegistered",
        ElbError::InvalidHealthTransition { .. } => "InvalidHealthTransition",
        ElbError::DeletionProtected { .. } => "DeletionProtected",
        ElbError::TargetGroupInUse { .. } => "TargetGroupInUse",
        ElbError::TargetGroupAssociationLimit { .. } => "TargetGroupAssociationLimit",
        ElbError::PortInUse { .. } => "PortInUse",
        ElbError::PriorityInUse { .. } => "PriorityInUse",
        other => panic!("unexpected refusal: {other}"),
    }
}

/// The model's view of a real state.
fn project(state: &ElbState) -> Model {
    let mut m = Model::default();
    for lb in state.load_balancers() {
        m.lbs.insert(lb.id, (lb.name.clone(), lb.deletion_protected()));
        if !lb.tags.is_empty() {
            m.tags.insert(lb.id, lb.tags.clone());
        }
        for l in state.listeners_of(lb.id) {
            let tg = l.default_actions[0].target_groups().next().unwrap();
            m.listeners.insert(l.id, (lb.id, l.port, tg));
            for r in state.rules_of(l.id) {
                m.rules.insert(r.id, (l.id, r.priority, r.actions[0].target_groups().next().unwrap()));
            }
        }
    }
    for ts in state.trust_stores() {
        m.trust_stores.insert(ts.id, ts.name.clone());
    }
    for tg in state.target_groups() {
        m.tgs.insert(tg.id, (tg.name.clone(), tg.deregistration_delay().is_zero()));
        for t in state.targets_of(tg.id) {
            m.targets.insert((tg.id, t.key.id.to_string()), t.health.state);
        }
    }
    m
}

/// Updates the model's ids for the entities a successful command created.
fn adopt(model: &mut Model, op: &Op, outcome: &Outcome) {
    match (op, outcome) {
        (Op::CreateLb(n), Outcome::LoadBalancerCreated(id)) => {
            model.lbs.entry(*id).or_insert((format!("lb-{n}"), false));
        }
        (Op::CreateTg(n), Outcome::TargetGroupCreated(id)) => {
            model.tgs.entry(*id).or_insert((format!("tg-{n}"), false));
        }
        (Op::CreateTrustStore(n), Outcome::TrustStoreCreated(id)) => {
            model.trust_stores.insert(*id, format!("ts-{n}"));
        }
        (Op::CreateListener(i, p, t), Outcome::ListenerCreated(id)) => {
            let lb = pick(&model.lbs, *i, LoadBalancerId(1));
            let tg = pick(&model.tgs, *t, TargetGroupId(1));
            model.listeners.insert(*id, (lb, PORTS[*p as usize % 3], tg));
            model.settle();
        }
        (Op::CreateRule(i, p, t), Outcome::RuleCreated(id)) => {
            let listener = pick(&model.listeners, *i, ListenerId(1));
            let tg = pick(&model.tgs, *t, TargetGroupId(1));
            model.rules.insert(*id, (listener, u32::from(*p) + 1, tg));
            model.settle();
        }
        _ => {}
    }
}

fn options() -> Options {
    Options::default().create(Create::IfMissing).sync(SyncPolicy::Never).snapshot_every_events(Some(40))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_store_agrees_with_the_model_and_every_transaction_inverts(
        ops in prop::collection::vec(op(), 1..60),
        run in 1..40usize,
    ) {
        let dir = TempDir::new("elb-model");
        let store = ElbStore::open(dir.path(), options(), Settings::in_region("us-east-1")).unwrap();
        let mut model = Model::default();
        for op in &ops {
            let before = store.read();
            let expected = expect(&model, op);
            let result = store.execute(TxnMeta::new("prop", format!("{op:?}")), vec![command(&model, op)]);
            match (expected, result) {
                (Ok(next), Ok(applied)) => {
                    model = next;
                    adopt(&mut model, op, &applied.outcomes[0]);
                    if let Some(committed) = applied.committed {
                        // Undoing the transaction's events, last first, gives the state before it.
                        let txn = store.store().transactions(committed.seq..=committed.seq).next().unwrap().unwrap();
                        let mut undone = store.read().state().clone();
                        for event in txn.events.iter().rev() {
                            undone.apply(&event.inverse());
                        }
                        prop_assert_eq!(&undone, before.state());
                        // The store's own undo (time travel's) agrees.
                        let mut undone = store.read().state().clone();
                        for event in txn.events.iter().rev() {
                            prop_assert!(undone.undo(event));
                        }
                        prop_assert_eq!(&undone, before.state());
                    } else {
                        prop_assert_eq!(store.read().seq(), before.seq());
                    }
                }
                (Err(name), Err(err)) => {
                    prop_assert_eq!(name, error_name(&err), "{:?}", op);
                    prop_assert_eq!(store.read().seq(), before.seq(), "a refusal writes nothing");
                }
                (expected, result) => prop_assert!(false, "{:?}: model says {:?}, store says {:?}", op, expected, result),
            }
            prop_assert_eq!(&project(&store.read()), &model, "after {:?}", op);
        }
        let state = store.read().state().clone();
        // Replay's runs (targets' events applied by group) rebuild the same
        // state, with the indexes built before the first run or not at all.
        let events: Vec<ElbEvent> =
            store.store().transactions(1..=store.read().seq()).flat_map(|t| t.unwrap().events).collect();
        let indexed = ElbState::default();
        prop_assert!(indexed.load_balancer_by_name("", "").is_none(), "builds the indexes");
        for mut replayed in [ElbState::default(), indexed] {
            for events in events.chunks(run) {
                replayed.apply_run(events);
            }
            prop_assert_eq!(&replayed, &state);
        }
        // Undone in the same runs from the end (targets' events by group),
        // the state is, run after run, the one before it.
        let mut before = vec![ElbState::default()];
        for events in events.chunks(run) {
            let mut next = before.last().unwrap().clone();
            next.apply_run(events);
            before.push(next);
        }
        let mut undone = state.clone();
        for (k, events) in events.chunks(run).enumerate().rev() {
            prop_assert!(undone.undo_run(events));
            prop_assert_eq!(&undone, &before[k], "undoing run {}", k);
        }
        store.close().unwrap();
        let reopened = ElbStore::open(dir.path(), options(), Settings::in_region("us-east-1")).unwrap();
        let view = reopened.read();
        prop_assert_eq!(view.state(), &state);
        prop_assert_eq!(&project(&view), &model);
    }
}

/// Peak resident memory of this process, from /proc (Linux), in MiB.
fn peak_resident_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? / 1024)
}

/// Builds the fleet one load balancer per transaction. CI builds 200; set
/// `ELBSTORE_FLEET_LOAD_BALANCERS=100000` to build the full reference fleet.
#[test]
fn the_reference_fleet_builds_through_the_api_and_survives_reopen() {
    let dir = TempDir::new("elb-fleet");
    let n: u64 = std::env::var("ELBSTORE_FLEET_LOAD_BALANCERS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    assert!(n > 123, "the checks below look at load balancer 123");
    let store =
        ElbStore::open(dir.path(), options().snapshot_every_events(None), Settings::in_region("us-east-1")).unwrap();
    let started = std::time::Instant::now();
    for i in 0..n {
        let applied = store
            .execute_with(TxnMeta::new("svc:provisioning", format!("build {}", fleet::name(i))), |_, ctx| {
                fleet::reference_commands(i, ctx.seq)
            })
            .unwrap();
        assert_eq!(applied.outcomes.len(), 7);
    }
    let built_seconds = started.elapsed().as_secs_f64();
    let counts = store.read().counts();
    let n_usize = n as usize;
    assert_eq!(
        (counts.load_balancers, counts.listeners, counts.rules, counts.target_groups, counts.targets),
        (n_usize, 2 * n_usize, 2 * n_usize, n_usize, 10 * n_usize)
    );
    println!(
        "built {n} load balancers ({} resources) in {built_seconds:.1} s; peak resident {:?} MiB",
        n * fleet::RESOURCES_PER_LOAD_BALANCER,
        peak_resident_mib()
    );
    assert_eq!(
        (counts.load_balancers + counts.listeners + counts.rules + counts.target_groups + counts.targets) as u64,
        n * fleet::RESOURCES_PER_LOAD_BALANCER
    );
    let view = store.read();
    let lb = view.load_balancer_by_name(&fleet::account(123), "lb-123").unwrap().clone();
    assert_eq!(view.listeners_of(lb.id).count(), 2);
    let tg = view.target_group_by_name(&fleet::account(123), "lb-123").unwrap().id;
    assert_eq!(view.targets_of(tg).count(), 10);
    assert_eq!(view.load_balancers_using(tg), vec![lb.id]);
    let state = view.state().clone();
    drop(view);
    store.store().snapshot().unwrap();
    store.close().unwrap();
    let reopened = ElbStore::open(dir.path(), options(), Settings::in_region("us-east-1")).unwrap();
    assert!(reopened.store().open_report().snapshot.is_some());
    assert_eq!(reopened.read().state(), &state, "indexes rebuilt from a snapshot match");
    // Deleting a load balancer logs its listeners and rules too.
    let applied = reopened
        .execute(TxnMeta::new("ops", "delete lb-123"), vec![Command::DeleteLoadBalancer { load_balancer: lb.id }])
        .unwrap();
    let txn = reopened.store().transactions(applied.committed.unwrap().seq..).next().unwrap().unwrap();
    let kinds: Vec<_> = txn.events.iter().map(|e| matches!(e, ElbEvent::Deleted(_))).collect();
    assert_eq!(kinds[..5], [true; 5]);
    assert_eq!(txn.events[4].key(), EntityKey::LoadBalancer(lb.id));
    // Then the group no load balancer uses any more has its 10 targets marked unused.
    assert_eq!(kinds[5..], [false; 10]);
}

/// `ElbStore::watch` hands out the changes its filter keeps, judged as they
/// happened: by account, by load balancer (its listeners, rules, target
/// groups and targets, also when they are deleted), by kind and by
/// resource; a revert's compensating events arrive like any others, marked
/// as the revert of the transaction they undo; and the
/// watch's own fold is the store's state (same digest) at every step.
#[test]
fn watches_keep_what_their_filter_names_as_it_happened() {
    use elbstore::elb::{
        fleet, Command, Entity, EntityKey, EntityKind, OnConflict, RevertMode, RevertSelection, WatchFilter,
    };
    let dir = TempDir::new("elb-watch");
    let options = Options::default().create(Create::IfMissing).sync(SyncPolicy::Always);
    let store = ElbStore::open(dir.path(), options, Settings::in_region("us-east-1")).unwrap();
    let build = |i: u64| {
        store.execute_with(TxnMeta::new("svc:provisioner", format!("build {i}")), |_, ctx| {
            fleet::reference_commands(i, ctx.seq)
        })
    };
    // Two load balancers of account A (0 and 1), one of account B (50).
    build(0).unwrap();
    let mut all = store.watch(1, WatchFilter::all()).unwrap();
    let second = build(1).unwrap().committed.unwrap().seq;
    let lb1 = store.read().load_balancers().find(|lb| lb.name == fleet::name(1)).unwrap().id;
    let mut one_lb = store.watch(1, WatchFilter::load_balancer(lb1)).unwrap();
    let mut account_b = store.watch(second, WatchFilter::account(fleet::account(50))).unwrap();
    let mut targets = store.watch(1, WatchFilter::all().with_kinds([EntityKind::Target])).unwrap();
    let lb1_key = EntityKey::LoadBalancer(lb1);
    let mut by_arn = store
        .watch(1, WatchFilter::all().with_resources([store.resolve_arn(&store.arn(&lb1_key).unwrap()).unwrap()]))
        .unwrap();
    build(50).unwrap();
    // A listener with a rule, made and removed within one transaction: the
    // rule is still seen as part of load balancer 1.
    let tg1 = store.read().target_groups().find(|tg| tg.name == fleet::name(1)).unwrap().id;
    let fleeting = store
        .execute_with(TxnMeta::new("ops:alice", "try a listener"), |_, ctx| {
            let listener = elbstore::elb::ListenerId::new(ctx.seq, 0);
            vec![
                Command::CreateListener(elbstore::elb::CreateListener::forward(
                    lb1,
                    elbstore::elb::Protocol::Http,
                    8080,
                    tg1,
                )),
                Command::CreateRule(elbstore::elb::CreateRule {
                    listener,
                    priority: 5,
                    conditions: vec![elbstore::elb::Condition::PathPattern(vec!["/try/*".into()])],
                    actions: vec![elbstore::elb::Action::forward(tg1)],
                    tags: Default::default(),
                }),
                Command::DeleteListener { listener },
            ]
        })
        .unwrap()
        .committed
        .unwrap()
        .seq;
    // Load balancer 1 goes (with its listeners and rules), then comes back.
    let deleted = store
        .execute(TxnMeta::new("maint:cleanup", "remove idle"), vec![Command::DeleteLoadBalancer { load_balancer: lb1 }])
        .unwrap()
        .committed
        .unwrap()
        .seq;
    let revert = store
        .revert(
            RevertSelection::Transactions(vec![deleted]),
            TxnMeta::new("ops:oncall", "bring it back"),
            RevertMode::Apply,
            OnConflict::Abort,
        )
        .unwrap()
        .committed
        .unwrap()
        .seq;

    // Everything, each transaction whole, the fold equal to the store's state.
    let mut seqs = Vec::new();
    while let Some(change) = all.try_recv().unwrap() {
        let txn = store.store().transaction(change.seq).unwrap();
        let marked = if change.seq == revert { vec![deleted] } else { Vec::new() };
        assert_eq!(change.meta.reverts, marked, "seq {}: only the revert is marked, with what it undoes", change.seq);
        assert_eq!((change.meta, change.events.len()), (txn.meta, txn.events.len()));
        let at = store.store().state_at(elbstore::Point::Seq(change.seq)).unwrap();
        assert_eq!(all.state().digest(), at.state().digest(), "the watch's fold at seq {}", change.seq);
        seqs.push(change.seq);
    }
    assert_eq!(seqs, (1..=revert).collect::<Vec<_>>());
    assert_eq!(all.next_seq(), revert + 1);

    // One load balancer: its build, its deletion, its revert; nothing of the others.
    let built = store.store().state_at(elbstore::Point::Seq(second)).unwrap();
    let mut listeners: Vec<_> = built.listeners_of(lb1).map(|l| l.id).collect();
    assert_eq!(listeners.len(), 2);
    listeners.push(elbstore::elb::ListenerId::new(fleeting, 0));
    let mut lb_seqs = Vec::new();
    while let Some(change) = one_lb.try_recv().unwrap() {
        for event in &change.events {
            let entity = event.after().or(event.before()).unwrap();
            let belongs = match entity {
                Entity::LoadBalancer(lb) => lb.id == lb1,
                Entity::Listener(l) => l.load_balancer == lb1,
                Entity::Rule(r) => listeners.contains(&r.listener),
                Entity::TargetGroup(tg) => tg.name == fleet::name(1),
                Entity::Target(t) => store.read().target_group(t.key.target_group).unwrap().name == fleet::name(1),
                Entity::TrustStore(_) => false,
            };
            assert!(belongs, "seq {}: {event:?}", change.seq);
        }
        if change.seq == fleeting {
            let rules = change.events.iter().filter(|e| e.key().kind() == EntityKind::Rule).count();
            assert!(rules >= 1, "the fleeting listener's rule is kept: {:?}", change.events);
        }
        lb_seqs.push(change.seq);
    }
    assert_eq!(lb_seqs, [second, fleeting, deleted, revert]);
    // Also when the revert is read back from the log, not from memory.
    let reread = store.store().transaction(revert).unwrap();
    assert_eq!(reread.meta.reverts, vec![deleted]);

    // Account B from its first transaction on: only load balancer 50's build.
    let change = account_b.try_recv().unwrap().unwrap();
    assert_eq!(change.meta.reason, "build 50");
    assert_eq!(change.events.len(), store.store().transaction(change.seq).unwrap().events.len(), "all of it");
    assert!(account_b.try_recv().unwrap().is_none(), "the deletion and revert are account A's");

    // Targets only; the load balancer's own ARN only.
    let mut target_seqs = Vec::new();
    while let Some(change) = targets.try_recv().unwrap() {
        assert!(change.events.iter().all(|e| e.key().kind() == EntityKind::Target), "seq {}", change.seq);
        target_seqs.push(change.seq);
    }
    // The builds register targets; deleting a load balancer marks its
    // targets unused and the revert sets them back.
    assert_eq!(target_seqs, [1, second, 3, deleted, revert]);
    let arn_seqs: Vec<u64> = std::iter::from_fn(|| by_arn.try_recv().unwrap()).map(|c| c.seq).collect();
    assert_eq!(arn_seqs, [second, deleted, revert]);
}
