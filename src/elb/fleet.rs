//! The reference fleet: a synthetic fleet of the shape the crate is sized
//! and benchmarked for. Each load balancer is an internet-facing or internal
//! application load balancer in two zones with 2 listeners (HTTP on 80,
//! HTTPS on 443), 2 rules, 1 target group and 10 registered targets (16
//! resources); each account holds 50 load balancers, the default quota.
//! Load balancer `i` is fully determined by `i` (its account, names, subnets
//! and target ids), so tests, benches and examples build the same fleet
//! without storing it, and can name any resource of it.
//!
//! ```
//! use elbstore::elb::fleet;
//!
//! assert_eq!(fleet::account(0), "100000000000");
//! assert_eq!(fleet::account(fleet::LOAD_BALANCERS_PER_ACCOUNT), "100000000001");
//! assert_eq!(fleet::name(7), "lb-7");
//! // Load balancer 0 as transaction 1: load balancer, target group, 2
//! // listeners, 2 rules, then the 10 targets' registration.
//! assert_eq!(fleet::reference_commands(0, 1).len(), 7);
//! ```

use super::command::{Command, CreateListener, CreateLoadBalancer, CreateRule, CreateTargetGroup, TargetSpec};
use super::ids::{ListenerId, LoadBalancerId, TargetGroupId};
use super::model::{
    Action, Condition, HealthCheck, HealthReason, HealthState, IpAddressType, LoadBalancerType, Protocol, Scheme,
    SubnetMapping, Tags, TargetHealth,
};

/// Load balancers per account in the reference fleet (the default quota).
pub const LOAD_BALANCERS_PER_ACCOUNT: u64 = 50;
/// Resources per load balancer in the reference fleet.
pub const RESOURCES_PER_LOAD_BALANCER: u64 = 16;
/// Targets per target group in the reference fleet.
pub const TARGETS_PER_GROUP: u64 = 10;

/// The account owning reference load balancer `i`.
pub fn account(i: u64) -> String {
    format!("{:012}", 100_000_000_000 + i / LOAD_BALANCERS_PER_ACCOUNT)
}

/// The name of reference load balancer `i` (its target group has the same name).
pub fn name(i: u64) -> String {
    format!("lb-{i}")
}

/// The `CreateLoadBalancer` command for reference load balancer `i`.
pub fn load_balancer_spec(i: u64) -> CreateLoadBalancer {
    let account = account(i);
    CreateLoadBalancer {
        vpc_id: format!("vpc-{account}"),
        account,
        name: name(i),
        load_balancer_type: LoadBalancerType::Application,
        scheme: if i.is_multiple_of(4) { Scheme::Internal } else { Scheme::InternetFacing },
        ip_address_type: IpAddressType::Ipv4,
        subnets: ["a", "b"]
            .iter()
            .map(|zone| SubnetMapping {
                subnet_id: format!("subnet-{i:x}{zone}"),
                availability_zone: format!("us-east-1{zone}"),
            })
            .collect(),
        security_groups: vec![format!("sg-{i:x}")],
        tags: Tags::from([("team".to_owned(), format!("team-{}", i % 97))]),
    }
}

/// A health check's result as the health-check fleet reports it: healthy, or
/// unhealthy with one of the API's reasons (picked by `n`).
pub fn check_result(up: bool, n: u64) -> TargetHealth {
    const REASONS: [HealthReason; 3] =
        [HealthReason::ResponseCodeMismatch, HealthReason::Timeout, HealthReason::FailedHealthChecks];
    if up {
        TargetHealth::new(HealthState::Healthy, None)
    } else {
        TargetHealth::new(HealthState::Unhealthy, Some(REASONS[(n % 3) as usize]))
    }
}

/// The id of target `j` of reference load balancer `i`: an instance id.
pub fn target_id(i: u64, j: u64) -> String {
    format!("i-{i:015x}{j:02x}")
}

/// The commands that build reference load balancer `i` with its listeners,
/// rules, target group and targets, as the transaction with sequence number
/// `seq`. Ids of resources created in a transaction are `seq << 16 | n` in
/// creation order, so later commands can name earlier ones.
pub fn reference_commands(i: u64, seq: u64) -> Vec<Command> {
    reference_commands_at(i, seq, 0)
}

/// Resources each reference load balancer's commands create (with ids).
pub const CREATIONS_PER_LOAD_BALANCER: u64 = 6;

/// The commands for reference load balancers `range`, all in the transaction
/// with sequence number `seq`.
pub fn batch_commands(range: std::ops::Range<u64>, seq: u64) -> Vec<Command> {
    let first = range.start;
    range.flat_map(|i| reference_commands_at(i, seq, (i - first) * CREATIONS_PER_LOAD_BALANCER)).collect()
}

/// Like [`reference_commands`], for a transaction in which `first_n`
/// resources were created before these.
pub fn reference_commands_at(i: u64, seq: u64, first_n: u64) -> Vec<Command> {
    let lb = LoadBalancerId::new(seq, first_n);
    let tg = TargetGroupId::new(seq, first_n + 1);
    let (http, https) = (ListenerId::new(seq, first_n + 2), ListenerId::new(seq, first_n + 3));
    let account = account(i);
    let tags = Tags::new();
    vec![
        Command::CreateLoadBalancer(load_balancer_spec(i)),
        Command::CreateTargetGroup(CreateTargetGroup {
            vpc_id: Some(format!("vpc-{account}")),
            account,
            name: name(i),
            protocol: Some(Protocol::Http),
            port: Some(8080),
            health_check: HealthCheck { path: Some("/health".into()), ..HealthCheck::default() },
            tags: tags.clone(),
            ..CreateTargetGroup::default()
        }),
        Command::CreateListener(CreateListener {
            load_balancer: lb,
            port: Some(80),
            protocol: Some(Protocol::Http),
            default_actions: vec![Action::forward(tg)],
            tags: tags.clone(),
            ..CreateListener::default()
        }),
        Command::CreateListener(CreateListener {
            load_balancer: lb,
            port: Some(443),
            protocol: Some(Protocol::Https),
            default_certificate: Some(format!("arn:aws:acm:us-east-1:{}:certificate/{i:x}", self::account(i))),
            default_actions: vec![Action::forward(tg)],
            tags: tags.clone(),
            ..CreateListener::default()
        }),
        Command::CreateRule(CreateRule {
            listener: http,
            priority: 10,
            conditions: vec![Condition::PathPattern(vec!["/api/*".into()])],
            actions: vec![Action::forward(tg)],
            tags: tags.clone(),
        }),
        Command::CreateRule(CreateRule {
            listener: https,
            priority: 10,
            conditions: vec![Condition::HostHeader(vec![format!("api-{i}.example.com")])],
            actions: vec![Action::forward(tg)],
            tags,
        }),
        Command::RegisterTargets {
            target_group: tg,
            targets: (0..TARGETS_PER_GROUP).map(|j| TargetSpec::new(target_id(i, j))).collect(),
        },
    ]
}
