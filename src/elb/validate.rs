//! Checks on single values: names, ports, health checks, tags, attributes,
//! target ids. Checks against the state (references, uniqueness, quotas) are
//! in the planner. Each rule names its source in the ELBv2 API reference: an
//! operation's page or a shape of the API model.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::IpAddr;

use super::error::{ElbError, NameProblem};
use super::model::{
    Action, Attributes, Condition, HealthCheck, LoadBalancerType, Protocol, ProtocolVersion, S3Object, SubnetMapping,
    Tags, TargetGroupIpAddressType, TargetType,
};
use super::quotas::Quotas;

type Result<T = ()> = std::result::Result<T, ElbError>;

/// A value that breaks its field's documented form: `ValidationError`.
pub(crate) fn invalid(field: &'static str, value: impl ToString, problem: &'static str) -> ElbError {
    ElbError::InvalidValue { field, value: value.to_string(), problem }
}

/// A well-formed value this configuration cannot take: `InvalidConfigurationRequest`.
pub(crate) fn misconfigured(field: &'static str, problem: impl Into<String>) -> ElbError {
    ElbError::InvalidConfiguration { field, problem: problem.into() }
}

fn name_problem(name: &str, internal_rule: bool) -> Option<NameProblem> {
    if name.is_empty() {
        Some(NameProblem::Empty)
    } else if name.chars().count() > 32 {
        Some(NameProblem::TooLong)
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Some(NameProblem::BadCharacter)
    } else if name.starts_with('-') || name.ends_with('-') {
        Some(NameProblem::EdgeHyphen)
    } else if internal_rule && name.to_ascii_lowercase().starts_with("internal-") {
        Some(NameProblem::InternalPrefix)
    } else {
        None
    }
}

/// A load balancer name (`CreateLoadBalancerInput.Name`): 1 to 32 letters,
/// digits and hyphens, no hyphen at either end, not starting with `internal-`.
pub fn name(field: &'static str, name: &str) -> Result {
    match name_problem(name, true) {
        Some(problem) => Err(ElbError::InvalidName { field, name: name.to_owned(), problem }),
        None => Ok(()),
    }
}

/// A target group name (`CreateTargetGroupInput.Name`): like a load
/// balancer's, but `internal-` is allowed.
pub fn target_group_name(name: &str) -> Result {
    match name_problem(name, false) {
        Some(problem) => Err(ElbError::InvalidName { field: "name", name: name.to_owned(), problem }),
        None => Ok(()),
    }
}

/// A trust store name (`TrustStoreName`, pattern `^([a-zA-Z0-9]+-)*[a-zA-Z0-9]+$`, 1 to 32).
pub fn trust_store_name(name: &str) -> Result {
    let problem = match name_problem(name, false) {
        None if name.contains("--") => Some(NameProblem::BadCharacter),
        other => other,
    };
    match problem {
        Some(problem) => Err(ElbError::InvalidName { field: "name", name: name.to_owned(), problem }),
        None => Ok(()),
    }
}

/// An account id: twelve digits.
pub fn account(account: &str) -> Result {
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("account", account, "must be twelve digits"));
    }
    Ok(())
}

/// A listener or target port.
pub fn port(field: &'static str, port: u16) -> Result {
    if port == 0 {
        return Err(invalid(field, port, "must be between 1 and 65535"));
    }
    Ok(())
}

/// A non-empty identifier of bounded length (VPC, subnet, security group).
pub fn identifier(field: &'static str, value: &str) -> Result {
    if value.is_empty() || value.len() > 2048 || value.chars().any(char::is_whitespace) {
        return Err(invalid(field, value, "must be 1 to 2048 characters without spaces"));
    }
    Ok(())
}

/// Whether a listener protocol fits a load-balancer type (`CreateListenerInput.Protocol`:
/// HTTP and HTTPS for application, TCP, TLS, UDP, TCP_UDP, QUIC and TCP_QUIC
/// for network load balancers; gateway load balancers take none, GENEVE implied).
pub fn listener_protocol_allowed(lb_type: LoadBalancerType, protocol: Protocol) -> bool {
    use Protocol::*;
    match lb_type {
        LoadBalancerType::Application => matches!(protocol, Http | Https),
        LoadBalancerType::Network => matches!(protocol, Tcp | Tls | Udp | TcpUdp | Quic | TcpQuic),
        LoadBalancerType::Gateway => protocol == Geneve,
    }
}

/// Whether a listener of `listener` protocol can forward to a target group of
/// `group` protocol (NLB guide, "Listeners": a TCP listener forwards to TCP or
/// TCP_UDP groups, TLS to TCP or TLS, UDP to UDP or TCP_UDP, TCP_UDP to
/// TCP_UDP, QUIC to QUIC, TCP_QUIC to TCP_QUIC; ALB listeners to HTTP and
/// HTTPS groups; GENEVE to GENEVE). `None` is a Lambda group.
pub fn protocols_compatible(listener: Protocol, group: Option<Protocol>) -> bool {
    use Protocol::*;
    let Some(group) = group else { return matches!(listener, Http | Https) };
    match listener {
        Http | Https => matches!(group, Http | Https),
        Tcp => matches!(group, Tcp | TcpUdp),
        Tls => matches!(group, Tcp | Tls),
        Udp => matches!(group, Udp | TcpUdp),
        TcpUdp => group == TcpUdp,
        Quic => group == Quic,
        TcpQuic => group == TcpQuic,
        Geneve => group == Geneve,
    }
}

/// Subnets: valid ids, at most one per zone, enough zones for the type.
pub fn subnets(lb_type: LoadBalancerType, subnets: &[SubnetMapping]) -> Result {
    let mut zones = BTreeSet::new();
    for subnet in subnets {
        identifier("subnets.subnet_id", &subnet.subnet_id)?;
        identifier("subnets.availability_zone", &subnet.availability_zone)?;
        if !zones.insert(subnet.availability_zone.as_str()) {
            return Err(invalid("subnets", &subnet.availability_zone, "has more than one subnet in this zone"));
        }
    }
    let required = if lb_type == LoadBalancerType::Application { 2 } else { 1 };
    if zones.len() < required {
        return Err(ElbError::TooFewAvailabilityZones { required, given: zones.len() });
    }
    Ok(())
}

/// Security groups: valid ids, within the quota; gateway load balancers have none.
pub fn security_groups(lb_type: LoadBalancerType, groups: &[String], quotas: &Quotas) -> Result {
    if lb_type == LoadBalancerType::Gateway && !groups.is_empty() {
        return Err(misconfigured("security_groups", "gateway load balancers have no security groups"));
    }
    if groups.len() > quotas.security_groups_per_load_balancer {
        return Err(ElbError::QuotaExceeded {
            quota: "security_groups_per_load_balancer",
            limit: quotas.security_groups_per_load_balancer,
        });
    }
    groups.iter().try_for_each(|g| identifier("security_groups", g))
}

/// Whether a character may appear in a tag key or value (`TagKey` and
/// `TagValue`: `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`).
fn tag_character(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

/// Tags (`Tag`, tagging rules): keys 1 to 128 characters, values up to 256,
/// letters, digits, spaces and `_.:/=+-@` only, neither starting with `aws:`
/// in any case, at most the quota per resource.
pub fn tags(tags: &Tags, quotas: &Quotas) -> Result {
    if tags.len() > quotas.tags_per_resource {
        return Err(ElbError::QuotaExceeded { quota: "tags_per_resource", limit: quotas.tags_per_resource });
    }
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 {
            return Err(invalid("tags.key", key, "must be 1 to 128 characters"));
        }
        if !key.chars().all(tag_character) {
            return Err(invalid("tags.key", key, "may hold only letters, digits, spaces and _.:/=+-@"));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid("tags.key", key, "may not start with \"aws:\""));
        }
        if value.chars().count() > 256 {
            return Err(invalid("tags.value", value, "must be at most 256 characters"));
        }
        if !value.chars().all(tag_character) {
            return Err(invalid("tags.value", value, "may hold only letters, digits, spaces and _.:/=+-@"));
        }
        if value.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid("tags.value", value, "may not start with \"aws:\""));
        }
    }
    Ok(())
}

/// Tag keys to remove: the key rules of [`tags`].
pub fn tag_keys(keys: &[String]) -> Result {
    for key in keys {
        if key.is_empty() || key.chars().count() > 128 || !key.chars().all(tag_character) {
            return Err(invalid("tag_keys", key, "must be 1 to 128 letters, digits, spaces and _.:/=+-@"));
        }
    }
    Ok(())
}

fn boolean(field: &'static str, value: &str) -> Result {
    match value {
        "true" | "false" => Ok(()),
        _ => Err(invalid(field, value, "must be true or false")),
    }
}

fn number_in(field: &'static str, value: &str, low: u64, high: u64) -> Result {
    match value.parse::<u64>() {
        Ok(n) if (low..=high).contains(&n) => Ok(()),
        _ => Err(invalid(field, value, "is not a whole number in the allowed range")),
    }
}

fn one_of(field: &'static str, value: &str, allowed: &[&str]) -> Result {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(invalid(field, value, "is not one of the documented values"))
}

fn off_or_number_in(field: &'static str, value: &str, low: u64, high: u64) -> Result {
    if value == "off" {
        return Ok(());
    }
    number_in(field, value, low, high)
}

/// An S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens.
fn bucket(field: &'static str, value: &str) -> Result {
    let ok = (3..=63).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !ok {
        return Err(invalid(field, value, "is not an S3 bucket name"));
    }
    Ok(())
}

/// An S3 object (`S3Bucket`, `S3Key`, `S3ObjectVersion`).
pub fn s3_object(field: &'static str, object: &S3Object) -> Result {
    bucket(field, &object.bucket)?;
    if object.key.is_empty() || object.key.len() > 1024 {
        return Err(invalid(field, &object.key, "needs a key of 1 to 1024 bytes"));
    }
    if object.version.as_ref().is_some_and(|v| v.is_empty() || v.len() > 1024) {
        return Err(invalid(field, "version", "must be 1 to 1024 bytes"));
    }
    Ok(())
}

/// Which load balancers an attribute key is documented for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum For {
    All,
    AlbNlb,
    Alb,
    Nlb,
}

impl For {
    fn includes(self, lb_type: LoadBalancerType) -> bool {
        use LoadBalancerType::*;
        match self {
            For::All => true,
            For::AlbNlb => lb_type != Gateway,
            For::Alb => lb_type == Application,
            For::Nlb => lb_type == Network,
        }
    }
}

/// Load-balancer attributes (`LoadBalancerAttribute.Key`): every documented
/// key, for the types it is documented for, with a valid value.
/// `load_balancing.cross_zone.enabled` "can't be changed" on application
/// load balancers; `secondary_ips.auto_assigned.per_subnet` can't be
/// decreased; a log's bucket is required while the log is enabled.
pub fn load_balancer_attributes(lb_type: LoadBalancerType, current: &Attributes, changes: &Attributes) -> Result {
    for (key, value) in changes {
        let (scope, check): (For, fn(&str) -> Result) = match key.as_str() {
            "deletion_protection.enabled" => (For::All, |v| boolean("attributes.deletion_protection.enabled", v)),
            "load_balancing.cross_zone.enabled" => {
                if lb_type == LoadBalancerType::Application {
                    return Err(misconfigured(
                        "attributes.load_balancing.cross_zone.enabled",
                        "is always on for application load balancers and can't be changed",
                    ));
                }
                (For::All, |v| boolean("attributes.load_balancing.cross_zone.enabled", v))
            }
            "access_logs.s3.enabled" => (For::AlbNlb, |v| boolean("attributes.access_logs.s3.enabled", v)),
            "access_logs.s3.bucket" => (For::AlbNlb, |v| bucket("attributes.access_logs.s3.bucket", v)),
            "access_logs.s3.prefix" | "connection_logs.s3.prefix" | "health_check_logs.s3.prefix" => {
                (if key.starts_with("access") { For::AlbNlb } else { For::Alb }, |_| Ok(()))
            }
            "ipv6.deny_all_igw_traffic" => (For::AlbNlb, |v| boolean("attributes.ipv6.deny_all_igw_traffic", v)),
            "zonal_shift.config.enabled" => (For::AlbNlb, |v| boolean("attributes.zonal_shift.config.enabled", v)),
            "idle_timeout.timeout_seconds" => {
                (For::Alb, |v| number_in("attributes.idle_timeout.timeout_seconds", v, 1, 4000))
            }
            "client_keep_alive.seconds" => {
                (For::Alb, |v| number_in("attributes.client_keep_alive.seconds", v, 60, 604_800))
            }
            "connection_logs.s3.enabled" => (For::Alb, |v| boolean("attributes.connection_logs.s3.enabled", v)),
            "connection_logs.s3.bucket" => (For::Alb, |v| bucket("attributes.connection_logs.s3.bucket", v)),
            "health_check_logs.s3.enabled" => (For::Alb, |v| boolean("attributes.health_check_logs.s3.enabled", v)),
            "health_check_logs.s3.bucket" => (For::Alb, |v| bucket("attributes.health_check_logs.s3.bucket", v)),
            "routing.http.desync_mitigation_mode" => (For::Alb, |v| {
                one_of("attributes.routing.http.desync_mitigation_mode", v, &["monitor", "defensive", "strictest"])
            }),
            "routing.http.drop_invalid_header_fields.enabled" => {
                (For::Alb, |v| boolean("attributes.routing.http.drop_invalid_header_fields.enabled", v))
            }
            "routing.http.preserve_host_header.enabled" => {
                (For::Alb, |v| boolean("attributes.routing.http.preserve_host_header.enabled", v))
            }
            "routing.http.x_amzn_tls_version_and_cipher_suite.enabled" => {
                (For::Alb, |v| boolean("attributes.routing.http.x_amzn_tls_version_and_cipher_suite.enabled", v))
            }
            "routing.http.xff_client_port.enabled" => {
                (For::Alb, |v| boolean("attributes.routing.http.xff_client_port.enabled", v))
            }
            "routing.http.xff_header_processing.mode" => (For::Alb, |v| {
                one_of("attributes.routing.http.xff_header_processing.mode", v, &["append", "preserve", "remove"])
            }),
            "routing.http2.enabled" => (For::Alb, |v| boolean("attributes.routing.http2.enabled", v)),
            "waf.fail_open.enabled" => (For::Alb, |v| boolean("attributes.waf.fail_open.enabled", v)),
            "dns_record.client_routing_policy" => (For::Nlb, |v| {
                one_of(
                    "attributes.dns_record.client_routing_policy",
                    v,
                    &["availability_zone_affinity", "partial_availability_zone_affinity", "any_availability_zone"],
                )
            }),
            "secondary_ips.auto_assigned.per_subnet" => {
                (For::Nlb, |v| number_in("attributes.secondary_ips.auto_assigned.per_subnet", v, 0, 7))
            }
            _ => return Err(invalid("attributes", key, "is not a load balancer attribute")),
        };
        if !scope.includes(lb_type) {
            return Err(misconfigured("attributes", format!("{key} is not an attribute of {lb_type} load balancers")));
        }
        check(value)?;
    }
    let number = |attributes: &Attributes, key: &str| attributes.get(key).and_then(|v| v.parse::<u64>().ok());
    const SECONDARY_IPS: &str = "secondary_ips.auto_assigned.per_subnet";
    if let (Some(before), Some(after)) = (number(current, SECONDARY_IPS), number(changes, SECONDARY_IPS)) {
        if after < before {
            return Err(misconfigured("attributes.secondary_ips.auto_assigned.per_subnet", "can't be decreased"));
        }
    }
    for log in ["access_logs", "connection_logs", "health_check_logs"] {
        let get = |suffix: &str| {
            let key = format!("{log}.s3.{suffix}");
            changes.get(&key).or_else(|| current.get(&key)).cloned()
        };
        if get("enabled").as_deref() == Some("true") && get("bucket").is_none_or(|b| b.is_empty()) {
            return Err(misconfigured("attributes", format!("{log}.s3.bucket is required while {log} are enabled")));
        }
    }
    Ok(())
}

/// The kind of load balancer a target group serves, from its protocol and
/// target type: HTTP, HTTPS and Lambda groups serve application load
/// balancers, GENEVE groups gateway ones, the rest (and `alb` groups) network ones.
pub fn group_family(protocol: Option<Protocol>, target_type: TargetType) -> LoadBalancerType {
    match (target_type, protocol) {
        (TargetType::Lambda, _) | (_, Some(Protocol::Http | Protocol::Https)) => LoadBalancerType::Application,
        (_, Some(Protocol::Geneve)) => LoadBalancerType::Gateway,
        _ => LoadBalancerType::Network,
    }
}

/// Target-group attributes (`TargetGroupAttribute.Key`): every documented
/// key, for the groups it is documented for, with a valid value.
pub fn target_group_attributes(
    protocol: Option<Protocol>,
    target_type: TargetType,
    current: &Attributes,
    changes: &Attributes,
) -> Result {
    use LoadBalancerType::*;
    let family = group_family(protocol, target_type);
    let lambda = target_type == TargetType::Lambda;
    let udp = matches!(protocol, Some(Protocol::Udp | Protocol::TcpUdp));
    let merged = |key: &str| changes.get(key).or_else(|| current.get(key)).map(String::as_str);
    for (key, value) in changes {
        let allowed = match key.as_str() {
            "deregistration_delay.timeout_seconds" => {
                number_in("attributes.deregistration_delay.timeout_seconds", value, 0, 3600)?;
                !lambda
            }
            "stickiness.enabled" => {
                boolean("attributes.stickiness.enabled", value)?;
                true
            }
            "stickiness.type" => {
                let types: &[&str] = match family {
                    Application => &["lb_cookie", "app_cookie"],
                    Network => &["source_ip"],
                    Gateway => &["source_ip_dest_ip", "source_ip_dest_ip_proto"],
                };
                if !types.contains(&value.as_str()) {
                    return Err(misconfigured(
                        "attributes.stickiness.type",
                        format!("{value} is not a stickiness type of {family} load balancers' groups"),
                    ));
                }
                true
            }
            "load_balancing.cross_zone.enabled" => {
                one_of(
                    "attributes.load_balancing.cross_zone.enabled",
                    value,
                    &["true", "false", "use_load_balancer_configuration"],
                )?;
                family != Gateway
            }
            "target_group_health.dns_failover.minimum_healthy_targets.count" => {
                off_or_number_in(key_field(key), value, 1, 1000)?;
                family != Gateway
            }
            "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count" => {
                number_in(key_field(key), value, 1, 1000)?;
                family != Gateway
            }
            "target_group_health.dns_failover.minimum_healthy_targets.percentage"
            | "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage" => {
                off_or_number_in(key_field(key), value, 1, 100)?;
                family != Gateway
            }
            "load_balancing.algorithm.type" => {
                one_of(
                    "attributes.load_balancing.algorithm.type",
                    value,
                    &["round_robin", "least_outstanding_requests", "weighted_random"],
                )?;
                family == Application && !lambda
            }
            "load_balancing.algorithm.anomaly_mitigation" => {
                one_of("attributes.load_balancing.algorithm.anomaly_mitigation", value, &["on", "off"])?;
                if value == "on" && merged("load_balancing.algorithm.type") != Some("weighted_random") {
                    return Err(misconfigured(
                        "attributes.load_balancing.algorithm.anomaly_mitigation",
                        "needs load_balancing.algorithm.type weighted_random",
                    ));
                }
                family == Application && !lambda
            }
            "slow_start.duration_seconds" => {
                if value != "0" {
                    number_in("attributes.slow_start.duration_seconds", value, 30, 900)?;
                }
                family == Application && !lambda
            }
            "stickiness.app_cookie.cookie_name" => {
                let reserved = ["AWSALB", "AWSALBAPP", "AWSALBTG"].iter().any(|p| value.starts_with(p));
                if value.is_empty() || reserved {
                    return Err(invalid(
                        "attributes.stickiness.app_cookie.cookie_name",
                        value,
                        "must be set and may not start with AWSALB, AWSALBAPP or AWSALBTG",
                    ));
                }
                family == Application && !lambda
            }
            "stickiness.app_cookie.duration_seconds" | "stickiness.lb_cookie.duration_seconds" => {
                number_in(key_field(key), value, 1, 604_800)?;
                family == Application && !lambda
            }
            "lambda.multi_value_headers.enabled" => {
                boolean("attributes.lambda.multi_value_headers.enabled", value)?;
                lambda
            }
            "deregistration_delay.connection_termination.enabled" | "proxy_protocol_v2.enabled" => {
                boolean(key_field(key), value)?;
                family == Network
            }
            "preserve_client_ip.enabled" => {
                boolean("attributes.preserve_client_ip.enabled", value)?;
                if udp && value == "false" {
                    return Err(misconfigured(
                        "attributes.preserve_client_ip.enabled",
                        "can't be disabled for UDP and TCP_UDP target groups",
                    ));
                }
                family == Network
            }
            "target_health_state.unhealthy.connection_termination.enabled" => {
                boolean(key_field(key), value)?;
                if udp && value == "true" {
                    return Err(misconfigured(
                        "attributes.target_health_state.unhealthy.connection_termination.enabled",
                        "can't be enabled for UDP and TCP_UDP target groups",
                    ));
                }
                family == Network
            }
            "target_health_state.unhealthy.draining_interval_seconds" => {
                number_in(key_field(key), value, 0, 360_000)?;
                if merged("target_health_state.unhealthy.connection_termination.enabled").unwrap_or("true") != "false" {
                    return Err(misconfigured(
                        "attributes.target_health_state.unhealthy.draining_interval_seconds",
                        "needs target_health_state.unhealthy.connection_termination.enabled false",
                    ));
                }
                family == Network
            }
            "target_failover.on_deregistration" | "target_failover.on_unhealthy" => {
                one_of(key_field(key), value, &["rebalance", "no_rebalance"])?;
                family == Gateway
            }
            _ => return Err(invalid("attributes", key, "is not a target group attribute")),
        };
        if !allowed {
            return Err(misconfigured("attributes", format!("{key} is not an attribute of this target group")));
        }
    }
    let (on_deregistration, on_unhealthy) =
        (merged("target_failover.on_deregistration"), merged("target_failover.on_unhealthy"));
    if on_deregistration.unwrap_or("no_rebalance") != on_unhealthy.unwrap_or("no_rebalance") {
        return Err(misconfigured(
            "attributes.target_failover",
            "on_deregistration and on_unhealthy must be set to the same value",
        ));
    }
    Ok(())
}

/// The target-group attributes whose checks are shared by two keys, as the
/// field names errors give.
const SHARED_CHECK_FIELDS: [&str; 12] = [
    "attributes.target_group_health.dns_failover.minimum_healthy_targets.count",
    "attributes.target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
    "attributes.target_group_health.dns_failover.minimum_healthy_targets.percentage",
    "attributes.target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
    "attributes.stickiness.app_cookie.duration_seconds",
    "attributes.stickiness.lb_cookie.duration_seconds",
    "attributes.deregistration_delay.connection_termination.enabled",
    "attributes.proxy_protocol_v2.enabled",
    "attributes.target_health_state.unhealthy.connection_termination.enabled",
    "attributes.target_health_state.unhealthy.draining_interval_seconds",
    "attributes.target_failover.on_deregistration",
    "attributes.target_failover.on_unhealthy",
];

/// The field name of an attribute key, for errors.
fn key_field(key: &str) -> &'static str {
    SHARED_CHECK_FIELDS.into_iter().find(|field| field.strip_prefix("attributes.") == Some(key)).unwrap_or("attributes")
}

/// The mTLS request headers an application load balancer's listener may rename.
const MTLS_HEADERS: [&str; 8] = [
    "routing.http.request.x_amzn_mtls_clientcert_serial_number.header_name",
    "routing.http.request.x_amzn_mtls_clientcert_issuer.header_name",
    "routing.http.request.x_amzn_mtls_clientcert_subject.header_name",
    "routing.http.request.x_amzn_mtls_clientcert_validity.header_name",
    "routing.http.request.x_amzn_mtls_clientcert_leaf.header_name",
    "routing.http.request.x_amzn_mtls_clientcert.header_name",
    "routing.http.request.x_amzn_tls_version.header_name",
    "routing.http.request.x_amzn_tls_cipher_suite.header_name",
];

/// The response headers an application load balancer's listener may set.
const RESPONSE_HEADERS: [&str; 10] = [
    "routing.http.response.strict_transport_security.header_value",
    "routing.http.response.access_control_allow_origin.header_value",
    "routing.http.response.access_control_allow_methods.header_value",
    "routing.http.response.access_control_allow_headers.header_value",
    "routing.http.response.access_control_allow_credentials.header_value",
    "routing.http.response.access_control_expose_headers.header_value",
    "routing.http.response.access_control_max_age.header_value",
    "routing.http.response.content_security_policy.header_value",
    "routing.http.response.x_content_type_options.header_value",
    "routing.http.response.x_frame_options.header_value",
];

/// Listener attributes (`ListenerAttribute.Key`): `tcp.idle_timeout.seconds`
/// (60 to 6000) on network and gateway load balancers; header names and
/// values on application load balancers.
pub fn listener_attributes(lb_type: LoadBalancerType, changes: &Attributes) -> Result {
    for (key, value) in changes {
        if key.is_empty()
            || key.len() > 256
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        {
            return Err(invalid("attributes", key, "must match ^[a-zA-Z0-9._]+$"));
        }
        let alb_key = key == "routing.http.response.server.enabled"
            || MTLS_HEADERS.contains(&key.as_str())
            || RESPONSE_HEADERS.contains(&key.as_str());
        if !alb_key && key != "tcp.idle_timeout.seconds" {
            return Err(invalid("attributes", key, "is not a listener attribute"));
        }
        if alb_key != (lb_type == LoadBalancerType::Application) {
            return Err(misconfigured("attributes", format!("{key} is not an attribute of {lb_type} listeners")));
        }
        match key.as_str() {
            "tcp.idle_timeout.seconds" => number_in("attributes.tcp.idle_timeout.seconds", value, 60, 6000)?,
            "routing.http.response.server.enabled" => {
                boolean("attributes.routing.http.response.server.enabled", value)?
            }
            k if MTLS_HEADERS.contains(&k) => {
                let ok = !value.is_empty()
                    && value.len() <= 40
                    && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(invalid(
                        "attributes",
                        value,
                        "must be a header name of 1 to 40 letters, digits, - and _",
                    ));
                }
            }
            _ => {
                if value.len() > 1024 {
                    return Err(invalid("attributes", key, "takes a value of at most 1024 characters"));
                }
            }
        }
    }
    Ok(())
}

/// A health check (`CreateTargetGroupInput`, `HealthCheck*` members) for a
/// group of this protocol, target type and protocol version: checks can't be
/// disabled but for Lambda groups; HTTP, HTTPS or TCP, and not TCP for HTTP(S)
/// groups nor for `alb` groups; a path only for HTTP(S) checks; interval 5 to
/// 300 s; timeout 2 to 120 s and below the interval; thresholds 2 to 10;
/// matcher codes 200-499 for HTTP(S) groups, 200-599 for others, 0-99 for gRPC.
pub fn health_check(
    check: &HealthCheck,
    protocol: Option<Protocol>,
    target_type: TargetType,
    version: Option<ProtocolVersion>,
) -> Result {
    if !check.enabled && target_type != TargetType::Lambda {
        return Err(misconfigured("health_check.enabled", "health checks can't be disabled but for Lambda groups"));
    }
    if !matches!(check.protocol, Protocol::Http | Protocol::Https | Protocol::Tcp) {
        return Err(invalid("health_check.protocol", check.protocol, "must be HTTP, HTTPS or TCP"));
    }
    let http_group = matches!(protocol, Some(Protocol::Http | Protocol::Https));
    if check.protocol == Protocol::Tcp && (http_group || target_type == TargetType::Alb) {
        return Err(misconfigured("health_check.protocol", "TCP checks are not supported for HTTP and HTTPS targets"));
    }
    if let Some(port) = check.port {
        self::port("health_check.port", port)?;
    }
    if !(5..=300).contains(&check.interval_seconds) {
        return Err(invalid("health_check.interval_seconds", check.interval_seconds, "must be between 5 and 300"));
    }
    if !(2..=120).contains(&check.timeout_seconds) {
        return Err(invalid("health_check.timeout_seconds", check.timeout_seconds, "must be between 2 and 120"));
    }
    if check.timeout_seconds >= check.interval_seconds {
        return Err(misconfigured("health_check.timeout_seconds", "must be below the interval"));
    }
    for (field, value) in [
        ("health_check.healthy_threshold", check.healthy_threshold),
        ("health_check.unhealthy_threshold", check.unhealthy_threshold),
    ] {
        if !(2..=10).contains(&value) {
            return Err(invalid(field, value, "must be between 2 and 10"));
        }
    }
    if let Some(path) = &check.path {
        if !path.starts_with('/') || path.len() > 1024 {
            return Err(invalid("health_check.path", path, "must start with / and be at most 1024 characters"));
        }
        if check.protocol == Protocol::Tcp {
            return Err(misconfigured("health_check.path", "is only for HTTP and HTTPS checks"));
        }
    }
    if let Some(matcher) = &check.matcher {
        let (low, high, text) = if version == Some(ProtocolVersion::Grpc) {
            (0, 99, "must be gRPC codes 0-99, e.g. 12 or 0-99")
        } else if http_group || target_type == TargetType::Lambda {
            (200, 499, "must be HTTP codes 200-499, e.g. 200 or 200-299")
        } else {
            (200, 599, "must be HTTP codes 200-599, e.g. 200 or 200-399")
        };
        let codes_ok = !matcher.is_empty()
            && matcher.split([',', '-']).all(|c| c.parse::<u16>().is_ok_and(|n| (low..=high).contains(&n)));
        if !codes_ok {
            return Err(invalid("health_check.matcher", matcher, text));
        }
    }
    Ok(())
}

/// A target group's protocol, port, VPC, version and address type for its
/// target type (`CreateTargetGroupInput`): Lambda groups have none of the
/// first three; GENEVE groups use port 6081; `alb` groups are TCP; a
/// protocol version only for HTTP and HTTPS; IPv6 only for `ip` groups.
pub fn target_group_shape(
    protocol: Option<Protocol>,
    port: Option<u16>,
    vpc: Option<&str>,
    kind: TargetType,
    version: Option<ProtocolVersion>,
    ip_address_type: TargetGroupIpAddressType,
) -> Result {
    if kind == TargetType::Lambda {
        if protocol.is_some() || port.is_some() || vpc.is_some() {
            return Err(misconfigured("protocol", "Lambda target groups take no protocol, port or VPC"));
        }
    } else {
        let Some(protocol) = protocol else { return Err(invalid("protocol", "none", "is required")) };
        let Some(port) = port else { return Err(invalid("port", "none", "is required")) };
        self::port("port", port)?;
        let Some(vpc) = vpc else { return Err(invalid("vpc_id", "none", "is required")) };
        identifier("vpc_id", vpc)?;
        if kind == TargetType::Alb && protocol != Protocol::Tcp {
            return Err(misconfigured("protocol", "groups of application load balancers are TCP"));
        }
        if protocol == Protocol::Geneve && port != 6081 {
            return Err(misconfigured("port", "GENEVE target groups use port 6081"));
        }
        if version.is_some() && !matches!(protocol, Protocol::Http | Protocol::Https) {
            return Err(misconfigured("protocol_version", "is only for HTTP and HTTPS target groups"));
        }
    }
    if ip_address_type == TargetGroupIpAddressType::Ipv6 && kind != TargetType::Ip {
        return Err(misconfigured("ip_address_type", "ipv6 is only for target groups of IP addresses"));
    }
    Ok(())
}

/// Rule conditions (`RuleCondition`, ALB quotas): at least one; at most one
/// each of host-header, path-pattern, http-request-method and source-ip;
/// values of 1 to 128 characters, at most the quota of values over all
/// conditions (5 by default).
pub fn conditions(conditions: &[Condition], quotas: &Quotas) -> Result {
    if conditions.is_empty() {
        return Err(invalid("conditions", "[]", "must hold at least one condition"));
    }
    let mut seen = BTreeSet::new();
    let mut values = 0;
    for condition in conditions {
        let unique = !matches!(condition, Condition::HttpHeader { .. } | Condition::QueryString(_));
        if unique && !seen.insert(condition.field()) {
            return Err(misconfigured(
                "conditions",
                format!("a rule holds at most one {} condition", condition.field()),
            ));
        }
        let texts = condition.values();
        if texts.is_empty() || texts.iter().any(|v| v.is_empty() || v.len() > 128) {
            return Err(invalid("conditions", condition.field(), "needs values of 1 to 128 characters"));
        }
        values += texts.len();
    }
    if values > quotas.condition_values_per_rule {
        return Err(ElbError::QuotaExceeded {
            quota: "condition_values_per_rule",
            limit: quotas.condition_values_per_rule,
        });
    }
    Ok(())
}

/// The content types of a fixed response (`FixedResponseActionConfig.ContentType`).
pub const FIXED_RESPONSE_CONTENT_TYPES: [&str; 5] =
    ["text/plain", "text/css", "text/html", "application/javascript", "application/json"];

/// Actions, apart from the target groups they name (`Action`): any
/// authenticate actions first (application load balancers' HTTPS
/// listeners), then exactly one forward, redirect or fixed response; redirect
/// and fixed response on application load balancers only; a fixed
/// response's status 2XX, 4XX or 5XX and its content type one of five.
pub fn actions(
    field: &'static str,
    actions: &[Action],
    lb_type: LoadBalancerType,
    listener: Protocol,
    quotas: &Quotas,
) -> Result {
    let Some((last, authenticate)) = actions.split_last() else {
        return Err(invalid(field, "[]", "must hold an action"));
    };
    if actions.len() > quotas.actions_per_rule {
        return Err(ElbError::QuotaExceeded { quota: "actions_per_rule", limit: quotas.actions_per_rule });
    }
    for action in authenticate {
        match action {
            Action::AuthenticateOidc(oidc) => {
                for (name, value) in [
                    ("authenticate_oidc.issuer", &oidc.issuer),
                    ("authenticate_oidc.authorization_endpoint", &oidc.authorization_endpoint),
                    ("authenticate_oidc.token_endpoint", &oidc.token_endpoint),
                    ("authenticate_oidc.user_info_endpoint", &oidc.user_info_endpoint),
                ] {
                    if !value.starts_with("https://") {
                        return Err(invalid(name, value, "must be an https:// URL"));
                    }
                }
                if oidc.client_id.is_empty() {
                    return Err(invalid("authenticate_oidc.client_id", "", "is required"));
                }
                on_unauthenticated(oidc.on_unauthenticated_request.as_deref())?;
            }
            Action::AuthenticateCognito(cognito) => {
                if !cognito.user_pool_arn.starts_with("arn:aws:cognito-idp:") {
                    return Err(invalid(
                        "authenticate_cognito.user_pool_arn",
                        &cognito.user_pool_arn,
                        "is not a user pool ARN",
                    ));
                }
                if cognito.user_pool_client_id.is_empty() || cognito.user_pool_domain.is_empty() {
                    return Err(invalid("authenticate_cognito", "client id or domain", "is required"));
                }
                on_unauthenticated(cognito.on_unauthenticated_request.as_deref())?;
            }
            _ => {
                return Err(misconfigured(field, "only authenticate actions may come before the last action"));
            }
        }
        if lb_type != LoadBalancerType::Application || listener != Protocol::Https {
            return Err(misconfigured(
                field,
                "authenticate actions are for HTTPS listeners of application load balancers",
            ));
        }
    }
    match last {
        Action::Forward { target_groups } => {
            if target_groups.is_empty() {
                return Err(invalid(field, "forward", "must name at least one target group"));
            }
            if target_groups.len() > quotas.target_groups_per_action {
                return Err(ElbError::QuotaExceeded {
                    quota: "target_groups_per_action",
                    limit: quotas.target_groups_per_action,
                });
            }
            if let Some(w) = target_groups.iter().find(|w| w.weight > 999) {
                return Err(invalid("forward.weight", w.weight, "must be between 0 and 999"));
            }
            let distinct: BTreeSet<_> = target_groups.iter().map(|w| w.target_group).collect();
            if distinct.len() != target_groups.len() {
                return Err(invalid("forward.target_groups", "a target group twice", "names each group once"));
            }
        }
        Action::Redirect { status_code, .. } => {
            if lb_type != LoadBalancerType::Application {
                return Err(misconfigured(field, "redirect actions are for application load balancers"));
            }
            if !matches!(status_code, 301 | 302) {
                return Err(invalid("redirect.status_code", status_code, "must be 301 or 302"));
            }
        }
        Action::FixedResponse { status_code, content_type, body } => {
            if lb_type != LoadBalancerType::Application {
                return Err(misconfigured(field, "fixed-response actions are for application load balancers"));
            }
            if !matches!(status_code / 100, 2 | 4 | 5) || *status_code > 599 {
                return Err(invalid("fixed_response.status_code", status_code, "must be 2XX, 4XX or 5XX"));
            }
            if let Some(kind) = content_type {
                if !FIXED_RESPONSE_CONTENT_TYPES.contains(&kind.as_str()) {
                    return Err(invalid("fixed_response.content_type", kind, "is not one of the five content types"));
                }
            }
            if body.as_ref().is_some_and(|b| b.len() > 1024) {
                return Err(invalid("fixed_response.body", "…", "must be at most 1024 bytes"));
            }
        }
        Action::AuthenticateOidc(_) | Action::AuthenticateCognito(_) => {
            return Err(misconfigured(field, "the last action must forward, redirect or answer"));
        }
    }
    Ok(())
}

fn on_unauthenticated(value: Option<&str>) -> Result {
    match value {
        None | Some("deny" | "allow" | "authenticate") => Ok(()),
        Some(other) => Err(invalid("on_unauthenticated_request", other, "must be deny, allow or authenticate")),
    }
}

/// The TLS security policies `DescribeSSLPolicies` lists.
pub const SSL_POLICIES: [&str; 22] = [
    "ELBSecurityPolicy-2016-08",
    "ELBSecurityPolicy-2015-05",
    "ELBSecurityPolicy-TLS-1-0-2015-04",
    "ELBSecurityPolicy-TLS-1-1-2017-01",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-FS-2018-06",
    "ELBSecurityPolicy-FS-1-1-2019-08",
    "ELBSecurityPolicy-FS-1-2-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    "ELBSecurityPolicy-TLS13-1-0-2021-06",
    "ELBSecurityPolicy-TLS13-1-1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-0-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
];

/// A TLS security policy by name (`SSLPolicyNotFound`).
pub fn ssl_policy(policy: &str) -> Result {
    if !SSL_POLICIES.contains(&policy) {
        return Err(ElbError::SslPolicyNotFound { policy: policy.to_owned() });
    }
    Ok(())
}

/// A certificate ARN: an ACM certificate or an IAM server certificate (`CertificateNotFound`).
pub fn certificate(arn: &str) -> Result {
    let acm = arn.starts_with("arn:aws:acm:") && arn.contains(":certificate/");
    let iam = arn.starts_with("arn:aws:iam::") && arn.contains(":server-certificate/");
    if !(acm || iam) || arn.len() > 2048 || arn.chars().any(char::is_whitespace) {
        return Err(ElbError::CertificateNotFound { certificate: arn.to_owned() });
    }
    Ok(())
}

/// An IPAM pool id (`IpamPoolId`, `^(ipam-pool-)[a-zA-Z0-9]+$`, at most 1000).
pub fn ipam_pool(id: &str) -> Result {
    let ok = id.len() <= 1000
        && id
            .strip_prefix("ipam-pool-")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !ok {
        return Err(invalid("ipv4_ipam_pool", id, "must match ^(ipam-pool-)[a-zA-Z0-9]+$"));
    }
    Ok(())
}

/// Whether an IPv4 address is one an IP target may have (`TargetDescription.Id`:
/// RFC 1918 and RFC 6598 ranges; publicly routable addresses are refused).
fn private_ipv4(ip: std::net::Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private() || (a == 100 && (64..128).contains(&b))
}

/// A target id for the group's target type (`TargetDescription.Id`): an
/// instance id, a private IPv4 or an IPv6 address (returned in canonical
/// form, so one address is one target however it is written), or a Lambda
/// function ARN. `alb` targets are checked against the state by the planner.
pub fn target_id(target_type: TargetType, ip_type: TargetGroupIpAddressType, id: &str) -> Result<Cow<'_, str>> {
    let bad = |problem| ElbError::InvalidTarget { target: id.to_owned(), problem };
    match target_type {
        TargetType::Instance => {
            let hex = id.strip_prefix("i-").unwrap_or("");
            let ok =
                matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !ok {
                return Err(bad("is not an instance id (i- and 8 or 17 hex digits)"));
            }
            Ok(Cow::Borrowed(id))
        }
        TargetType::Ip => {
            let ip: IpAddr = id.parse().map_err(|_| bad("is not an IP address"))?;
            match (ip, ip_type) {
                (IpAddr::V4(v4), TargetGroupIpAddressType::Ipv4) => {
                    if !private_ipv4(v4) {
                        return Err(bad("is publicly routable; IP targets are RFC 1918 or RFC 6598 addresses"));
                    }
                }
                (IpAddr::V6(v6), TargetGroupIpAddressType::Ipv6) => {
                    if v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() {
                        return Err(bad("is not a unicast IPv6 address"));
                    }
                }
                _ => return Err(bad("is not of the target group's IP address type")),
            }
            Ok(Cow::Owned(ip.to_string()))
        }
        TargetType::Lambda => {
            let parts: Vec<&str> = id.split(':').collect();
            let ok = matches!(parts.as_slice(), ["arn", "aws", "lambda", region, account, "function", name, ..]
                if !region.is_empty() && account.len() == 12 && !name.is_empty())
                && parts.len() <= 8;
            if !ok {
                return Err(bad("is not a Lambda function ARN"));
            }
            Ok(Cow::Borrowed(id))
        }
        TargetType::Alb => {
            if super::arn::load_balancer_id_of(id).is_none() {
                return Err(bad("is not an application load balancer ARN"));
            }
            Ok(Cow::Borrowed(id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_problem(n: &str) -> Option<NameProblem> {
        match name("name", n) {
            Ok(()) => None,
            Err(ElbError::InvalidName { field: "name", name: got, problem }) => {
                assert_eq!(got, n);
                Some(problem)
            }
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn name_rules() {
        assert_eq!(name_problem("web-1"), None);
        assert_eq!(name_problem(&"a".repeat(32)), None);
        assert_eq!(name_problem(""), Some(NameProblem::Empty));
        assert_eq!(name_problem(&"a".repeat(33)), Some(NameProblem::TooLong));
        assert_eq!(name_problem("web_1"), Some(NameProblem::BadCharacter));
        assert_eq!(name_problem("wéb"), Some(NameProblem::BadCharacter));
        assert_eq!(name_problem("-web"), Some(NameProblem::EdgeHyphen));
        assert_eq!(name_problem("web-"), Some(NameProblem::EdgeHyphen));
        assert_eq!(name_problem("internal-web"), Some(NameProblem::InternalPrefix));
    }

    fn field_of(result: Result) -> &'static str {
        match result {
            Err(ElbError::InvalidValue { field, .. }) => field,
            other => panic!("expected an invalid value, got {other:?}"),
        }
    }

    #[test]
    fn health_check_rules() {
        let http = Some(Protocol::Http);
        assert!(health_check(&HealthCheck::default(), http, TargetType::Instance, None).is_ok());
        let with = |f: fn(&mut HealthCheck)| {
            let mut c = HealthCheck::default();
            f(&mut c);
            match health_check(&c, http, TargetType::Instance, None) {
                Err(ElbError::InvalidConfiguration { field, .. }) => Err(invalid(field, "", "")),
                other => other,
            }
        };
        assert_eq!(field_of(with(|c| c.interval_seconds = 4)), "health_check.interval_seconds");
        assert_eq!(field_of(with(|c| c.interval_seconds = 301)), "health_check.interval_seconds");
        assert_eq!(field_of(with(|c| c.timeout_seconds = 1)), "health_check.timeout_seconds");
        assert_eq!(field_of(with(|c| c.timeout_seconds = 121)), "health_check.timeout_seconds");
        assert_eq!(field_of(with(|c| c.timeout_seconds = 30)), "health_check.timeout_seconds");
        assert_eq!(field_of(with(|c| c.healthy_threshold = 1)), "health_check.healthy_threshold");
        assert_eq!(field_of(with(|c| c.unhealthy_threshold = 11)), "health_check.unhealthy_threshold");
        assert_eq!(field_of(with(|c| c.path = Some("health".into()))), "health_check.path");
        assert_eq!(field_of(with(|c| c.matcher = Some("600".into()))), "health_check.matcher");
        assert_eq!(field_of(with(|c| c.protocol = Protocol::Udp)), "health_check.protocol");
        assert!(with(|c| c.matcher = Some("200-299".into())).is_ok());
    }

    #[test]
    fn tag_rules() {
        let q = Quotas::default();
        let one = |k: &str, v: &str| Tags::from([(k.to_owned(), v.to_owned())]);
        assert!(tags(&one("team", ""), &q).is_ok());
        assert_eq!(field_of(tags(&one("", "x"), &q)), "tags.key");
        assert_eq!(field_of(tags(&one(&"k".repeat(129), "x"), &q)), "tags.key");
        assert_eq!(field_of(tags(&one("aws:owner", "x"), &q)), "tags.key");
        assert_eq!(field_of(tags(&one("k", &"v".repeat(257)), &q)), "tags.value");
        let many: Tags = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(matches!(tags(&many, &q), Err(ElbError::QuotaExceeded { quota: "tags_per_resource", limit: 50 })));
    }

    #[test]
    fn subnet_rules() {
        let s = |zone: &str| SubnetMapping { subnet_id: format!("subnet-{zone}"), availability_zone: zone.into() };
        assert!(subnets(LoadBalancerType::Application, &[s("a"), s("b")]).is_ok());
        assert!(subnets(LoadBalancerType::Network, &[s("a")]).is_ok());
        assert!(matches!(
            subnets(LoadBalancerType::Application, &[s("a")]),
            Err(ElbError::TooFewAvailabilityZones { required: 2, given: 1 })
        ));
        assert_eq!(field_of(subnets(LoadBalancerType::Network, &[s("a"), s("a")])), "subnets");
    }

    #[test]
    fn attribute_rules() {
        let one = |k: &str, v: &str| Attributes::from([(k.to_owned(), v.to_owned())]);
        let app = LoadBalancerType::Application;
        let none = Attributes::new();
        assert!(load_balancer_attributes(app, &none, &one("deletion_protection.enabled", "true")).is_ok());
        assert_eq!(
            field_of(load_balancer_attributes(app, &none, &one("deletion_protection.enabled", "yes"))),
            "attributes.deletion_protection.enabled"
        );
        assert_eq!(
            field_of(load_balancer_attributes(app, &none, &one("idle_timeout.timeout_seconds", "0"))),
            "attributes.idle_timeout.timeout_seconds"
        );
        assert!(matches!(
            load_balancer_attributes(LoadBalancerType::Network, &none, &one("idle_timeout.timeout_seconds", "60")),
            Err(ElbError::InvalidConfiguration { field: "attributes", .. })
        ));
        let http = Some(Protocol::Http);
        let tg = |a: &Attributes| target_group_attributes(http, TargetType::Instance, &none, a);
        assert!(tg(&one("deregistration_delay.timeout_seconds", "300")).is_ok());
        assert_eq!(field_of(tg(&one("slow_start.duration_seconds", "10"))), "attributes.slow_start.duration_seconds");
    }

    #[test]
    fn protocols_fit_load_balancer_types() {
        use LoadBalancerType::*;
        assert!(listener_protocol_allowed(Application, Protocol::Https));
        assert!(!listener_protocol_allowed(Application, Protocol::Tcp));
        assert!(listener_protocol_allowed(Network, Protocol::TcpUdp));
        assert!(!listener_protocol_allowed(Network, Protocol::Http));
        assert!(listener_protocol_allowed(Network, Protocol::Quic));
        assert!(listener_protocol_allowed(Gateway, Protocol::Geneve));
        assert!(!listener_protocol_allowed(Gateway, Protocol::Tcp));
    }

    fn code(result: Result) -> &'static str {
        result.err().map_or("ok", |e| e.code())
    }

    /// NLB guide, "Listeners for your Network Load Balancers": which target
    /// group protocols each listener protocol forwards to.
    #[test]
    fn listener_and_target_group_protocols_pair_as_the_nlb_guide_lists() {
        use Protocol::*;
        let pairs = [
            (Tcp, &[Tcp, TcpUdp][..]),
            (Tls, &[Tcp, Tls][..]),
            (Udp, &[Udp, TcpUdp][..]),
            (TcpUdp, &[TcpUdp][..]),
            (Quic, &[Quic][..]),
            (TcpQuic, &[TcpQuic][..]),
            (Http, &[Http, Https][..]),
            (Https, &[Http, Https][..]),
            (Geneve, &[Geneve][..]),
        ];
        for (listener, groups) in pairs {
            for group in Protocol::ALL {
                assert_eq!(
                    protocols_compatible(listener, Some(*group)),
                    groups.contains(group),
                    "{listener} -> {group}"
                );
            }
        }
        assert!(protocols_compatible(Http, None), "Lambda groups serve application load balancers");
        assert!(!protocols_compatible(Tcp, None));
    }

    /// `TagKey`/`TagValue` pattern `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$` and the
    /// tagging rule that neither starts with `aws:`.
    #[test]
    fn tag_characters_and_the_aws_prefix_follow_the_tag_shape() {
        let q = Quotas::default();
        let one = |k: &str, v: &str| Tags::from([(k.to_owned(), v.to_owned())]);
        assert_eq!(code(tags(&one("Ünïcode key 1_.:/=+-@", "valeur é"), &q)), "ok");
        for (k, v) in [("a#b", "x"), ("k", "a;b"), ("AWS:x", "1"), ("Aws:y", "1"), ("k", "aws:v"), ("k", "AWS:v")] {
            assert_eq!(code(tags(&one(k, v), &q)), "ValidationError", "{k}={v}");
        }
        assert_eq!(code(tag_keys(&["a#b".into()])), "ValidationError");
    }

    /// `TargetDescription.Id`: instance ids, private IPv4 (RFC 1918, RFC
    /// 6598) or IPv6 addresses of the group's type, Lambda function ARNs,
    /// application load balancer ARNs.
    #[test]
    fn target_ids_are_checked_by_target_type() {
        use TargetGroupIpAddressType::{Ipv4, Ipv6};
        let id = |kind, ip, text: &str| target_id(kind, ip, text).map(Cow::into_owned).map_err(|e| e.code());
        assert_eq!(id(TargetType::Instance, Ipv4, "i-0123abcd"), Ok("i-0123abcd".into()));
        assert_eq!(id(TargetType::Instance, Ipv4, "i-0123456789abcdef0"), Ok("i-0123456789abcdef0".into()));
        for bad in ["banana", "i-0123", "i-0123456789ABCDEF0", "i-0123456789abcdef01"] {
            assert_eq!(id(TargetType::Instance, Ipv4, bad), Err("InvalidTarget"), "{bad}");
        }
        for private in ["10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "100.127.255.255"] {
            assert!(id(TargetType::Ip, Ipv4, private).is_ok(), "{private}");
        }
        for public in ["8.8.8.8", "100.128.0.1", "172.32.0.1", "banana", "2001:db8::1"] {
            assert_eq!(id(TargetType::Ip, Ipv4, public), Err("InvalidTarget"), "{public}");
        }
        assert_eq!(id(TargetType::Ip, Ipv6, "2001:DB8:0::0:1"), Ok("2001:db8::1".into()), "canonical form");
        assert_eq!(id(TargetType::Ip, Ipv6, "10.0.0.1"), Err("InvalidTarget"));
        assert!(id(TargetType::Lambda, Ipv4, "arn:aws:lambda:us-east-1:123456789012:function:f:prod").is_ok());
        assert_eq!(id(TargetType::Lambda, Ipv4, "arn:aws:lambda:us-east-1:1:function:f"), Err("InvalidTarget"));
        let alb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0000000000010000";
        assert!(id(TargetType::Alb, Ipv4, alb).is_ok());
        assert_eq!(id(TargetType::Alb, Ipv4, &alb.replace("/app/", "/net/")), Err("InvalidTarget"));
    }

    /// `ListenerAttribute.Key`: tcp.idle_timeout.seconds (60-6000) for network
    /// and gateway load balancers; header names and values for application ones.
    #[test]
    fn listener_attributes_follow_the_documented_keys_per_type() {
        let one = |k: &str, v: &str| Attributes::from([(k.to_owned(), v.to_owned())]);
        let (app, net) = (LoadBalancerType::Application, LoadBalancerType::Network);
        assert_eq!(code(listener_attributes(net, &one("tcp.idle_timeout.seconds", "350"))), "ok");
        assert_eq!(code(listener_attributes(net, &one("tcp.idle_timeout.seconds", "59"))), "ValidationError");
        assert_eq!(
            code(listener_attributes(app, &one("tcp.idle_timeout.seconds", "350"))),
            "InvalidConfigurationRequest"
        );
        let header = "routing.http.request.x_amzn_tls_version.header_name";
        assert_eq!(code(listener_attributes(app, &one(header, "X-Tls"))), "ok");
        assert_eq!(code(listener_attributes(app, &one(header, "bad header"))), "ValidationError");
        assert_eq!(code(listener_attributes(net, &one(header, "X-Tls"))), "InvalidConfigurationRequest");
        assert_eq!(
            code(listener_attributes(app, &one("routing.http.response.server.enabled", "no"))),
            "ValidationError"
        );
        assert_eq!(code(listener_attributes(app, &one("unknown.key", "1"))), "ValidationError");
    }

    /// `LoadBalancerAttribute.Key`: the documented keys per type, cross-zone
    /// fixed on application load balancers, secondary IPs never decreased,
    /// a bucket while logs are enabled.
    #[test]
    fn load_balancer_attributes_follow_the_documented_keys_per_type() {
        use LoadBalancerType::*;
        let one = |k: &str, v: &str| Attributes::from([(k.to_owned(), v.to_owned())]);
        let none = Attributes::new();
        let check =
            |kind, current: &Attributes, k: &str, v: &str| code(load_balancer_attributes(kind, current, &one(k, v)));
        assert_eq!(check(Network, &none, "load_balancing.cross_zone.enabled", "true"), "ok");
        assert_eq!(
            check(Application, &none, "load_balancing.cross_zone.enabled", "true"),
            "InvalidConfigurationRequest"
        );
        assert_eq!(check(Gateway, &none, "access_logs.s3.enabled", "false"), "InvalidConfigurationRequest");
        assert_eq!(check(Network, &none, "dns_record.client_routing_policy", "any_availability_zone"), "ok");
        assert_eq!(
            check(Application, &none, "dns_record.client_routing_policy", "any_availability_zone"),
            "InvalidConfigurationRequest"
        );
        assert_eq!(check(Application, &none, "routing.http.desync_mitigation_mode", "strictest"), "ok");
        assert_eq!(check(Application, &none, "routing.http.xff_header_processing.mode", "drop"), "ValidationError");
        let three = one("secondary_ips.auto_assigned.per_subnet", "3");
        assert_eq!(
            check(Network, &three, "secondary_ips.auto_assigned.per_subnet", "2"),
            "InvalidConfigurationRequest"
        );
        assert_eq!(check(Network, &three, "secondary_ips.auto_assigned.per_subnet", "4"), "ok");
        assert_eq!(check(Application, &none, "access_logs.s3.enabled", "true"), "InvalidConfigurationRequest");
        let bucket = one("access_logs.s3.bucket", "my-logs");
        assert_eq!(check(Application, &bucket, "access_logs.s3.enabled", "true"), "ok");
        // The error names the key it is about.
        let err =
            load_balancer_attributes(Application, &none, &one("routing.http.drop_invalid_header_fields.enabled", "x"));
        assert_eq!(field_of(err), "attributes.routing.http.drop_invalid_header_fields.enabled");
    }

    /// `TargetGroupAttribute.Key`: the documented keys per kind of group.
    #[test]
    fn target_group_attributes_follow_the_documented_keys_per_group() {
        use Protocol::*;
        let one = |k: &str, v: &str| Attributes::from([(k.to_owned(), v.to_owned())]);
        let none = Attributes::new();
        let check = |p: Option<Protocol>, t, k: &str, v: &str| code(target_group_attributes(p, t, &none, &one(k, v)));
        assert_eq!(check(Some(Http), TargetType::Instance, "stickiness.type", "lb_cookie"), "ok");
        assert_eq!(
            check(Some(Http), TargetType::Instance, "stickiness.type", "source_ip"),
            "InvalidConfigurationRequest"
        );
        assert_eq!(check(Some(Tcp), TargetType::Ip, "stickiness.type", "source_ip"), "ok");
        assert_eq!(check(Some(Geneve), TargetType::Ip, "stickiness.type", "source_ip_dest_ip"), "ok");
        assert_eq!(
            check(None, TargetType::Lambda, "deregistration_delay.timeout_seconds", "1"),
            "InvalidConfigurationRequest"
        );
        assert_eq!(check(None, TargetType::Lambda, "lambda.multi_value_headers.enabled", "true"), "ok");
        assert_eq!(check(Some(Http), TargetType::Ip, "stickiness.lb_cookie.duration_seconds", "86400"), "ok");
        assert_eq!(
            check(Some(Tcp), TargetType::Ip, "stickiness.lb_cookie.duration_seconds", "86400"),
            "InvalidConfigurationRequest"
        );
        assert_eq!(
            check(Some(Udp), TargetType::Ip, "preserve_client_ip.enabled", "false"),
            "InvalidConfigurationRequest"
        );
        assert_eq!(check(Some(Tcp), TargetType::Ip, "proxy_protocol_v2.enabled", "true"), "ok");
        assert_eq!(
            check(Some(Http), TargetType::Ip, "stickiness.app_cookie.cookie_name", "AWSALBX"),
            "ValidationError"
        );
        assert_eq!(
            check(Some(Geneve), TargetType::Ip, "target_failover.on_unhealthy", "rebalance"),
            "InvalidConfigurationRequest"
        );
        let both = Attributes::from([
            ("target_failover.on_unhealthy".to_owned(), "rebalance".to_owned()),
            ("target_failover.on_deregistration".to_owned(), "rebalance".to_owned()),
        ]);
        assert_eq!(code(target_group_attributes(Some(Geneve), TargetType::Ip, &none, &both)), "ok");
    }

    /// `CreateTargetGroupInput` HealthCheck* members: per protocol and type.
    #[test]
    fn health_checks_follow_the_group_protocol_and_type() {
        use Protocol::*;
        let tcp = HealthCheck { protocol: Tcp, path: None, matcher: None, ..HealthCheck::default() };
        let off = HealthCheck { enabled: false, ..HealthCheck::default() };
        let wide = HealthCheck { matcher: Some("200-599".into()), ..HealthCheck::default() };
        let grpc = HealthCheck { matcher: Some("0-99".into()), ..HealthCheck::default() };
        let check = |c: &HealthCheck, p, t, v| code(health_check(c, p, t, v));
        assert_eq!(check(&tcp, Some(Http), TargetType::Instance, None), "InvalidConfigurationRequest");
        assert_eq!(check(&tcp, Some(Tcp), TargetType::Alb, None), "InvalidConfigurationRequest");
        assert_eq!(check(&tcp, Some(Udp), TargetType::Ip, None), "ok");
        assert_eq!(check(&off, Some(Http), TargetType::Instance, None), "InvalidConfigurationRequest");
        assert_eq!(check(&off, None, TargetType::Lambda, None), "ok");
        assert_eq!(check(&wide, Some(Tcp), TargetType::Ip, None), "ok");
        assert_eq!(check(&wide, Some(Http), TargetType::Ip, None), "ValidationError");
        assert_eq!(check(&grpc, Some(Https), TargetType::Ip, Some(ProtocolVersion::Grpc)), "ok");
        let tcp_path = HealthCheck { path: Some("/".into()), ..tcp };
        assert_eq!(check(&tcp_path, Some(Tcp), TargetType::Ip, None), "InvalidConfigurationRequest");
    }

    /// `RuleCondition` and the ALB quota of 5 condition values per rule.
    #[test]
    fn conditions_are_one_of_each_kind_with_five_values_in_all() {
        let q = Quotas::default();
        let header = |n: &str| Condition::HttpHeader { name: n.into(), values: vec!["1".into()] };
        assert_eq!(code(conditions(&[header("a"), header("b")], &q)), "ok", "http-header may repeat");
        let two_paths = [Condition::PathPattern(vec!["/a".into()]), Condition::PathPattern(vec!["/b".into()])];
        assert_eq!(code(conditions(&two_paths, &q)), "InvalidConfigurationRequest");
        let six = [Condition::PathPattern(vec!["/a".into(); 3]), Condition::SourceIp(vec!["10.0.0.0/8".into(); 3])];
        assert_eq!(code(conditions(&six, &q)), "ValidationError");
    }

    /// `Action`: authenticate actions first, one final action; fixed responses
    /// 2XX/4XX/5XX with the five content types (`FixedResponseActionConfig`).
    #[test]
    fn actions_order_and_fixed_responses_follow_the_action_shape() {
        use LoadBalancerType::*;
        let q = Quotas::default();
        let fixed = |status, kind: Option<&str>| Action::FixedResponse {
            status_code: status,
            content_type: kind.map(str::to_owned),
            body: None,
        };
        let check = |a: &[Action], lb, p| code(actions("actions", a, lb, p, &q));
        assert_eq!(check(&[fixed(503, Some("text/plain"))], Application, Protocol::Http), "ok");
        assert_eq!(check(&[fixed(302, None)], Application, Protocol::Http), "ValidationError");
        assert_eq!(check(&[fixed(200, Some("image/png"))], Application, Protocol::Http), "ValidationError");
        assert_eq!(check(&[fixed(200, None)], Network, Protocol::Tcp), "InvalidConfigurationRequest");
        let oidc = Action::AuthenticateOidc(Box::new(crate::elb::AuthenticateOidc {
            issuer: "https://i".into(),
            authorization_endpoint: "https://a".into(),
            token_endpoint: "https://t".into(),
            user_info_endpoint: "https://u".into(),
            client_id: "c".into(),
            ..Default::default()
        }));
        assert_eq!(check(&[oidc.clone(), fixed(200, None)], Application, Protocol::Https), "ok");
        assert_eq!(
            check(&[oidc.clone(), fixed(200, None)], Application, Protocol::Http),
            "InvalidConfigurationRequest"
        );
        assert_eq!(
            check(&[fixed(200, None), oidc.clone()], Application, Protocol::Https),
            "InvalidConfigurationRequest"
        );
        assert_eq!(check(&[oidc], Application, Protocol::Https), "InvalidConfigurationRequest");
    }

    /// `SSLPolicyNotFound`, `CertificateNotFound`, `IpamPoolId`, `TrustStoreName`.
    #[test]
    fn policies_certificates_pools_and_trust_store_names_have_their_forms() {
        assert_eq!(code(ssl_policy("ELBSecurityPolicy-TLS13-1-2-2021-06")), "ok");
        assert_eq!(code(ssl_policy("ELBSecurityPolicy-Made-Up")), "SSLPolicyNotFound");
        assert_eq!(code(certificate("arn:aws:acm:us-east-1:123456789012:certificate/abc")), "ok");
        assert_eq!(code(certificate("arn:aws:iam::123456789012:server-certificate/web")), "ok");
        assert_eq!(code(certificate("my-cert")), "CertificateNotFound");
        assert_eq!(code(ipam_pool("ipam-pool-0abc")), "ok");
        assert_eq!(code(ipam_pool("ipam-pool-")), "ValidationError");
        assert_eq!(code(trust_store_name("ca-2")), "ok");
        assert_eq!(code(trust_store_name("ca--2")), "ValidationError");
        assert_eq!(code(target_group_name("internal-api")), "ok", "CreateTargetGroupInput.Name has no internal- rule");
    }

    /// `CreateTargetGroupInput`: GENEVE on 6081, alb groups TCP, versions only
    /// for HTTP(S), IPv6 only for ip groups, Lambda groups without protocol.
    #[test]
    fn target_group_shapes_follow_the_create_input() {
        use Protocol::*;
        use TargetGroupIpAddressType::{Ipv4, Ipv6};
        let shape = |p, port, kind, v, ip| code(target_group_shape(p, port, Some("vpc-1"), kind, v, ip));
        assert_eq!(shape(Some(Geneve), Some(6081), TargetType::Ip, None, Ipv4), "ok");
        assert_eq!(shape(Some(Geneve), Some(80), TargetType::Ip, None, Ipv4), "InvalidConfigurationRequest");
        assert_eq!(shape(Some(Http), Some(80), TargetType::Alb, None, Ipv4), "InvalidConfigurationRequest");
        assert_eq!(
            shape(Some(Tcp), Some(80), TargetType::Ip, Some(ProtocolVersion::Http2), Ipv4),
            "InvalidConfigurationRequest"
        );
        assert_eq!(shape(Some(Http), Some(80), TargetType::Instance, None, Ipv6), "InvalidConfigurationRequest");
        assert_eq!(shape(Some(Http), Some(80), TargetType::Ip, None, Ipv6), "ok");
        assert_eq!(code(target_group_shape(None, None, None, TargetType::Lambda, None, Ipv4)), "ok");
    }
}
