//! Checks on single values: names, ports, health checks, tags, attributes.
//! Checks against the state (references, uniqueness, quotas) are in the planner.

use std::collections::BTreeSet;

use super::error::{ElbError, NameProblem};
use super::model::{
    Action, Attributes, Condition, HealthCheck, LoadBalancerType, Protocol, SubnetMapping, Tags, TargetType,
};
use super::quotas::Quotas;

type Result<T = ()> = std::result::Result<T, ElbError>;

fn invalid(field: &'static str, value: impl ToString, problem: &'static str) -> ElbError {
    ElbError::InvalidValue { field, value: value.to_string(), problem }
}

/// A load balancer or target group name: 1 to 32 letters, digits and hyphens,
/// no hyphen at either end, not starting with `internal-`.
pub fn name(field: &'static str, name: &str) -> Result {
    let problem = if name.is_empty() {
        Some(NameProblem::Empty)
    } else if name.chars().count() > 32 {
        Some(NameProblem::TooLong)
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Some(NameProblem::BadCharacter)
    } else if name.starts_with('-') || name.ends_with('-') {
        Some(NameProblem::EdgeHyphen)
    } else if name.to_ascii_lowercase().starts_with("internal-") {
        Some(NameProblem::InternalPrefix)
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ElbError::InvalidName { field, name: name.to_owned(), problem }),
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

/// A non-empty identifier of bounded length (VPC, subnet, security group, certificate).
pub fn identifier(field: &'static str, value: &str) -> Result {
    if value.is_empty() || value.len() > 2048 || value.chars().any(char::is_whitespace) {
        return Err(invalid(field, value, "must be 1 to 2048 characters without spaces"));
    }
    Ok(())
}

/// Whether a listener protocol fits a load-balancer type.
pub fn listener_protocol_allowed(lb_type: LoadBalancerType, protocol: Protocol) -> bool {
    match lb_type {
        LoadBalancerType::Application => matches!(protocol, Protocol::Http | Protocol::Https),
        LoadBalancerType::Network => {
            matches!(protocol, Protocol::Tcp | Protocol::Tls | Protocol::Udp | Protocol::TcpUdp)
        }
        LoadBalancerType::Gateway => protocol == Protocol::Geneve,
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
        return Err(invalid("security_groups", groups.join(","), "are not supported on gateway load balancers"));
    }
    if groups.len() > quotas.security_groups_per_load_balancer {
        return Err(ElbError::QuotaExceeded {
            quota: "security_groups_per_load_balancer",
            limit: quotas.security_groups_per_load_balancer,
        });
    }
    groups.iter().try_for_each(|g| identifier("security_groups", g))
}

/// Tags: keys 1 to 128 characters not starting with `aws:`, values up to 256,
/// at most the quota per resource.
pub fn tags(tags: &Tags, quotas: &Quotas) -> Result {
    if tags.len() > quotas.tags_per_resource {
        return Err(ElbError::QuotaExceeded { quota: "tags_per_resource", limit: quotas.tags_per_resource });
    }
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 {
            return Err(invalid("tags.key", key, "must be 1 to 128 characters"));
        }
        if key.starts_with("aws:") {
            return Err(invalid("tags.key", key, "may not start with \"aws:\""));
        }
        if value.chars().count() > 256 {
            return Err(invalid("tags.value", value, "must be at most 256 characters"));
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

/// Load-balancer attributes: known keys with valid values.
pub fn load_balancer_attributes(lb_type: LoadBalancerType, attributes: &Attributes) -> Result {
    for (key, value) in attributes {
        match (key.as_str(), lb_type) {
            ("deletion_protection.enabled", _) => boolean("attributes.deletion_protection.enabled", value)?,
            ("load_balancing.cross_zone.enabled", _) => boolean("attributes.load_balancing.cross_zone.enabled", value)?,
            ("access_logs.s3.enabled", _) => boolean("attributes.access_logs.s3.enabled", value)?,
            ("access_logs.s3.bucket" | "access_logs.s3.prefix", _) => {}
            ("idle_timeout.timeout_seconds", LoadBalancerType::Application) => {
                number_in("attributes.idle_timeout.timeout_seconds", value, 1, 4000)?
            }
            (
                "routing.http2.enabled" | "routing.http.drop_invalid_header_fields.enabled",
                LoadBalancerType::Application,
            ) => boolean("attributes.routing.http2.enabled", value)?,
            _ => return Err(invalid("attributes", key, "is not an attribute of this load balancer type")),
        }
    }
    Ok(())
}

/// Target-group attributes: known keys with valid values.
pub fn target_group_attributes(attributes: &Attributes) -> Result {
    for (key, value) in attributes {
        match key.as_str() {
            "deregistration_delay.timeout_seconds" => {
                number_in("attributes.deregistration_delay.timeout_seconds", value, 0, 3600)?
            }
            "stickiness.enabled" => boolean("attributes.stickiness.enabled", value)?,
            "stickiness.type" => match value.as_str() {
                "lb_cookie" | "app_cookie" | "source_ip" | "source_ip_dest_ip" | "source_ip_dest_ip_proto" => {}
                _ => return Err(invalid("attributes.stickiness.type", value, "is not a stickiness type")),
            },
            "load_balancing.algorithm.type" => match value.as_str() {
                "round_robin" | "least_outstanding_requests" | "weighted_random" => {}
                _ => return Err(invalid("attributes.load_balancing.algorithm.type", value, "is not an algorithm")),
            },
            "slow_start.duration_seconds" => {
                if value != "0" {
                    number_in("attributes.slow_start.duration_seconds", value, 30, 900)?
                }
            }
            _ => return Err(invalid("attributes", key, "is not a target group attribute")),
        }
    }
    Ok(())
}

/// A health check: interval 5 to 300 s, timeout 2 to 120 s and below the
/// interval, thresholds 2 to 10, an HTTP(S) path starting with `/`.
pub fn health_check(check: &HealthCheck) -> Result {
    if !matches!(check.protocol, Protocol::Http | Protocol::Https | Protocol::Tcp) {
        return Err(invalid("health_check.protocol", check.protocol, "must be HTTP, HTTPS or TCP"));
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
        return Err(invalid("health_check.timeout_seconds", check.timeout_seconds, "must be below the interval"));
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
    }
    if let Some(matcher) = &check.matcher {
        let codes_ok = !matcher.is_empty()
            && matcher.split([',', '-']).all(|c| c.parse::<u16>().is_ok_and(|n| (200..=499).contains(&n)));
        if !codes_ok {
            return Err(invalid("health_check.matcher", matcher, "must be HTTP codes 200-499, e.g. 200 or 200-299"));
        }
    }
    Ok(())
}

/// A target group's protocol, port and VPC for its target type.
pub fn target_group_shape(
    protocol: Option<Protocol>,
    port: Option<u16>,
    vpc: Option<&str>,
    kind: TargetType,
) -> Result {
    if kind == TargetType::Lambda {
        if protocol.is_some() || port.is_some() {
            return Err(invalid("protocol", format!("{protocol:?}"), "is not used by Lambda target groups"));
        }
        return Ok(());
    }
    let Some(protocol) = protocol else { return Err(invalid("protocol", "none", "is required")) };
    let Some(port) = port else { return Err(invalid("port", "none", "is required")) };
    self::port("port", port)?;
    let Some(vpc) = vpc else { return Err(invalid("vpc_id", "none", "is required")) };
    identifier("vpc_id", vpc)?;
    if kind == TargetType::Alb && protocol != Protocol::Tcp {
        return Err(invalid("protocol", protocol, "must be TCP for ALB targets"));
    }
    Ok(())
}

/// Rule conditions: 1 to the quota, each with at least one value.
pub fn conditions(conditions: &[Condition], quotas: &Quotas) -> Result {
    if conditions.is_empty() {
        return Err(invalid("conditions", "[]", "must hold at least one condition"));
    }
    if conditions.len() > quotas.conditions_per_rule {
        return Err(ElbError::QuotaExceeded { quota: "conditions_per_rule", limit: quotas.conditions_per_rule });
    }
    for condition in conditions {
        let values = condition.values();
        if values.is_empty() || values.iter().any(|v| v.is_empty() || v.len() > 128) {
            return Err(invalid("conditions", format!("{condition:?}"), "needs values of 1 to 128 characters"));
        }
    }
    Ok(())
}

/// Actions, apart from the target groups they name: exactly one, well formed.
pub fn actions(field: &'static str, actions: &[Action], lb_type: LoadBalancerType, quotas: &Quotas) -> Result {
    let [action] = actions else {
        return Err(invalid(field, actions.len(), "must hold exactly one action"));
    };
    match action {
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
        }
        Action::Redirect { status_code, .. } => {
            if lb_type != LoadBalancerType::Application {
                return Err(invalid(field, "redirect", "is only for application load balancers"));
            }
            if !matches!(status_code, 301 | 302) {
                return Err(invalid("redirect.status_code", status_code, "must be 301 or 302"));
            }
        }
        Action::FixedResponse { status_code, body, .. } => {
            if lb_type != LoadBalancerType::Application {
                return Err(invalid(field, "fixed-response", "is only for application load balancers"));
            }
            if !(200..=599).contains(status_code) {
                return Err(invalid("fixed_response.status_code", status_code, "must be between 200 and 599"));
            }
            if body.as_ref().is_some_and(|b| b.len() > 1024) {
                return Err(invalid("fixed_response.body", "…", "must be at most 1024 bytes"));
            }
        }
    }
    Ok(())
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
        assert!(health_check(&HealthCheck::default()).is_ok());
        let with = |f: fn(&mut HealthCheck)| {
            let mut c = HealthCheck::default();
            f(&mut c);
            health_check(&c)
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
        assert!(load_balancer_attributes(app, &one("deletion_protection.enabled", "true")).is_ok());
        assert_eq!(
            field_of(load_balancer_attributes(app, &one("deletion_protection.enabled", "yes"))),
            "attributes.deletion_protection.enabled"
        );
        assert_eq!(
            field_of(load_balancer_attributes(app, &one("idle_timeout.timeout_seconds", "0"))),
            "attributes.idle_timeout.timeout_seconds"
        );
        assert_eq!(
            field_of(load_balancer_attributes(LoadBalancerType::Network, &one("idle_timeout.timeout_seconds", "60"))),
            "attributes"
        );
        assert!(target_group_attributes(&one("deregistration_delay.timeout_seconds", "300")).is_ok());
        assert_eq!(
            field_of(target_group_attributes(&one("slow_start.duration_seconds", "10"))),
            "attributes.slow_start.duration_seconds"
        );
    }

    #[test]
    fn protocols_fit_load_balancer_types() {
        use LoadBalancerType::*;
        assert!(listener_protocol_allowed(Application, Protocol::Https));
        assert!(!listener_protocol_allowed(Application, Protocol::Tcp));
        assert!(listener_protocol_allowed(Network, Protocol::TcpUdp));
        assert!(!listener_protocol_allowed(Network, Protocol::Http));
        assert!(listener_protocol_allowed(Gateway, Protocol::Geneve));
        assert!(!listener_protocol_allowed(Gateway, Protocol::Tcp));
    }
}
