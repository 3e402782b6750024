//! The operations: one function per Action, grouped by resource. Each reads
//! its parameters, checks that what it names belongs to the caller's
//! account, runs a command (one transaction) or reads the state, and writes
//! the response.

mod listeners;
mod load_balancers;
mod tags;
mod target_groups;
mod trust_stores;

use super::error::ApiError;
use super::query::Params;
use super::service::Ctx;
use crate::clock::Timestamp;
use crate::elb::Tags;

/// Every Action this service answers.
pub const ACTIONS: &[&str] = &[
    "AddListenerCertificates",
    "AddTags",
    "AddTrustStoreRevocations",
    "CreateListener",
    "CreateLoadBalancer",
    "CreateRule",
    "CreateTargetGroup",
    "CreateTrustStore",
    "DeleteListener",
    "DeleteLoadBalancer",
    "DeleteRule",
    "DeleteSharedTrustStoreAssociation",
    "DeleteTargetGroup",
    "DeleteTrustStore",
    "DeregisterTargets",
    "DescribeAccountLimits",
    "DescribeCapacityReservation",
    "DescribeListenerAttributes",
    "DescribeListenerCertificates",
    "DescribeListeners",
    "DescribeLoadBalancerAttributes",
    "DescribeLoadBalancers",
    "DescribeRules",
    "DescribeSSLPolicies",
    "DescribeTags",
    "DescribeTargetGroupAttributes",
    "DescribeTargetGroups",
    "DescribeTargetHealth",
    "DescribeTrustStoreAssociations",
    "DescribeTrustStoreRevocations",
    "DescribeTrustStores",
    "GetResourcePolicy",
    "GetTrustStoreCaCertificatesBundle",
    "GetTrustStoreRevocationContent",
    "ModifyCapacityReservation",
    "ModifyIpPools",
    "ModifyListener",
    "ModifyListenerAttributes",
    "ModifyLoadBalancerAttributes",
    "ModifyRule",
    "ModifyTargetGroup",
    "ModifyTargetGroupAttributes",
    "ModifyTrustStore",
    "RegisterTargets",
    "RemoveListenerCertificates",
    "RemoveTags",
    "RemoveTrustStoreRevocations",
    "SetIpAddressType",
    "SetRulePriorities",
    "SetSecurityGroups",
    "SetSubnets",
];

/// Runs the Action the parameters name.
pub fn call(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    match ctx.action {
        "CreateLoadBalancer" => load_balancers::create(ctx, p),
        "DescribeLoadBalancers" => load_balancers::describe(ctx, p),
        "DeleteLoadBalancer" => load_balancers::delete(ctx, p),
        "DescribeLoadBalancerAttributes" => load_balancers::describe_attributes(ctx, p),
        "ModifyLoadBalancerAttributes" => load_balancers::modify_attributes(ctx, p),
        "SetSecurityGroups" => load_balancers::set_security_groups(ctx, p),
        "SetSubnets" => load_balancers::set_subnets(ctx, p),
        "SetIpAddressType" => load_balancers::set_ip_address_type(ctx, p),
        "DescribeAccountLimits" => load_balancers::describe_account_limits(ctx, p),
        "DescribeSSLPolicies" => load_balancers::describe_ssl_policies(ctx, p),
        "CreateTargetGroup" => target_groups::create(ctx, p),
        "DescribeTargetGroups" => target_groups::describe(ctx, p),
        "DeleteTargetGroup" => target_groups::delete(ctx, p),
        "ModifyTargetGroup" => target_groups::modify(ctx, p),
        "DescribeTargetGroupAttributes" => target_groups::describe_attributes(ctx, p),
        "ModifyTargetGroupAttributes" => target_groups::modify_attributes(ctx, p),
        "RegisterTargets" => target_groups::register(ctx, p),
        "DeregisterTargets" => target_groups::deregister(ctx, p),
        "DescribeTargetHealth" => target_groups::describe_health(ctx, p),
        "CreateListener" => listeners::create(ctx, p),
        "DescribeListeners" => listeners::describe(ctx, p),
        "DeleteListener" => listeners::delete(ctx, p),
        "ModifyListener" => listeners::modify(ctx, p),
        "DescribeListenerAttributes" => listeners::describe_attributes(ctx, p),
        "ModifyListenerAttributes" => listeners::modify_attributes(ctx, p),
        "AddListenerCertificates" => listeners::add_certificates(ctx, p),
        "RemoveListenerCertificates" => listeners::remove_certificates(ctx, p),
        "DescribeListenerCertificates" => listeners::describe_certificates(ctx, p),
        "CreateRule" => listeners::create_rule(ctx, p),
        "DescribeRules" => listeners::describe_rules(ctx, p),
        "DeleteRule" => listeners::delete_rule(ctx, p),
        "ModifyRule" => listeners::modify_rule(ctx, p),
        "SetRulePriorities" => listeners::set_rule_priorities(ctx, p),
        "AddTags" => tags::add(ctx, p),
        "RemoveTags" => tags::remove(ctx, p),
        "DescribeTags" => tags::describe(ctx, p),
        "CreateTrustStore" => trust_stores::create(ctx, p),
        "DescribeTrustStores" => trust_stores::describe(ctx, p),
        "DeleteTrustStore" => trust_stores::delete(ctx, p),
        "ModifyTrustStore" => trust_stores::modify(ctx, p),
        "AddTrustStoreRevocations" => trust_stores::add_revocations(ctx, p),
        "RemoveTrustStoreRevocations" => trust_stores::remove_revocations(ctx, p),
        "DescribeTrustStoreRevocations" => trust_stores::describe_revocations(ctx, p),
        "DescribeTrustStoreAssociations" => trust_stores::describe_associations(ctx, p),
        "DeleteSharedTrustStoreAssociation" => trust_stores::delete_shared_association(ctx, p),
        "GetTrustStoreCaCertificatesBundle" => trust_stores::ca_certificates_bundle(ctx, p),
        "GetTrustStoreRevocationContent" => trust_stores::revocation_content(ctx, p),
        "GetResourcePolicy" => trust_stores::resource_policy(ctx, p),
        "DescribeCapacityReservation" => trust_stores::describe_capacity_reservation(ctx, p),
        "ModifyCapacityReservation" => trust_stores::modify_capacity_reservation(ctx, p),
        "ModifyIpPools" => trust_stores::modify_ip_pools(ctx, p),
        other => Err(ApiError::new(
            "InvalidAction",
            format!("Could not find operation {other} for version {}", super::service::API_VERSION),
            400,
        )),
    }
}

/// A time as the API writes it: RFC 3339 in UTC with milliseconds.
pub(crate) fn api_time(time: Timestamp) -> String {
    let nanos = time.as_nanos();
    let whole = Timestamp(nanos - nanos % 1_000_000_000).to_string();
    let base = whole.trim_end_matches('Z');
    let base = base.split('.').next().unwrap_or(base);
    format!("{base}.{:03}Z", (nanos % 1_000_000_000) / 1_000_000)
}

/// `Tags.member.N.Key` / `Value`.
pub(crate) fn read_tags(p: &Params, key: &str) -> Result<Tags, ApiError> {
    let mut tags = Tags::new();
    for tag in p.structs(key) {
        let k = tag.required("Key")?;
        tags.insert(k.to_owned(), tag.get("Value").unwrap_or("").to_owned());
    }
    Ok(tags)
}

/// `Attributes.member.N.Key` / `Value`.
pub(crate) fn read_attributes(p: &Params) -> Result<crate::elb::Attributes, ApiError> {
    let mut attributes = crate::elb::Attributes::new();
    for a in p.structs("Attributes") {
        attributes.insert(a.required("Key")?.to_owned(), a.get("Value").unwrap_or("").to_owned());
    }
    if attributes.is_empty() {
        return Err(ApiError::missing("Attributes"));
    }
    Ok(attributes)
}

/// `PageSize`, 1 to 400 (default 400).
pub(crate) fn page_size(p: &Params) -> Result<usize, ApiError> {
    Ok(p.number::<usize>("PageSize", 1, 400)?.unwrap_or(400))
}

/// `<Attributes><member><Key/><Value/></member>...</Attributes>`.
pub(crate) fn write_attributes(x: &mut super::xml::Xml, attributes: &crate::elb::Attributes) {
    x.members("Attributes", attributes.iter(), |x, (k, v)| {
        x.el("Key", k);
        x.el("Value", v);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_with_milliseconds() {
        assert_eq!(api_time(Timestamp(1_456_941_972_920_123_456)), "2016-03-02T18:06:12.920Z");
        assert_eq!(api_time(Timestamp(1_456_941_972_000_000_000)), "2016-03-02T18:06:12.000Z");
    }

    #[test]
    fn every_action_of_the_api_is_listed_once() {
        let mut sorted = ACTIONS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ACTIONS.len());
        assert_eq!(ACTIONS.len(), 51, "the ELBv2 API has 51 operations");
    }
}
