//! Load balancers: create, describe, delete, attributes, subnets, security
//! groups, address type; and the account's limits and the SSL policies.

use std::sync::Arc;

use super::{api_time, page_size, read_attributes, read_tags, write_attributes};
use crate::api::error::ApiError;
use crate::api::query::Params;
use crate::api::service::{page, Ctx};
use crate::api::xml::Xml;
use crate::elb::{
    Command, CreateLoadBalancer, EntityKey, IpAddressType, LoadBalancer, LoadBalancerType, Scheme, SubnetMapping,
    SSL_POLICIES,
};

const TYPES: &[&str] = &["application", "network", "gateway"];
const SCHEMES: &[&str] = &["internet-facing", "internal"];
const ADDRESS_TYPES: &[&str] = &["ipv4", "dualstack", "dualstack-without-public-ipv4"];

/// The subnets named by `Subnets.member.N` or `SubnetMappings.member.N.SubnetId`,
/// with their VPC and zone from the network.
fn subnets(ctx: &Ctx, p: &Params) -> Result<Option<(String, Vec<SubnetMapping>)>, ApiError> {
    let mut ids: Vec<String> = p.list("Subnets").into_iter().map(str::to_owned).collect();
    for mapping in p.structs("SubnetMappings") {
        ids.push(mapping.required("SubnetId")?.to_owned());
    }
    if ids.is_empty() {
        return Ok(None);
    }
    let found = ctx.network().subnets(ctx.caller(), &ids).map_err(network_error)?;
    let vpc = found.first().map(|s| s.vpc_id.clone()).unwrap_or_default();
    if let Some(other) = found.iter().find(|s| s.vpc_id != vpc) {
        return Err(ApiError::new(
            "InvalidConfigurationRequest",
            format!("subnets must be in one VPC: {} is in {}, not {vpc}", other.id, other.vpc_id),
            400,
        ));
    }
    let mappings = found.into_iter().map(|s| SubnetMapping::new(s.id, s.availability_zone)).collect();
    Ok(Some((vpc, mappings)))
}

pub(crate) fn network_error(err: crate::api::network::NetworkError) -> ApiError {
    ApiError::new(err.code(), err.to_string(), err.http_status())
}

fn security_groups(ctx: &Ctx, p: &Params, vpc: &str) -> Result<Vec<String>, ApiError> {
    let groups: Vec<String> = p.list("SecurityGroups").into_iter().map(str::to_owned).collect();
    if !groups.is_empty() {
        ctx.network().security_groups(ctx.caller(), vpc, &groups).map_err(network_error)?;
    }
    Ok(groups)
}

/// `<member>` of a load balancer description.
fn write(x: &mut Xml, ctx: &Ctx, lb: &LoadBalancer) {
    x.el("LoadBalancerArn", ctx.arn(&EntityKey::LoadBalancer(lb.id)));
    x.el("DNSName", &lb.dns_name);
    x.el("CanonicalHostedZoneId", hosted_zone(ctx.region(), lb.load_balancer_type));
    x.el("CreatedTime", api_time(lb.created));
    x.el("LoadBalancerName", &lb.name);
    x.el("Scheme", lb.scheme.as_str());
    x.el("VpcId", &lb.vpc_id);
    x.node("State", |x| x.el("Code", lb.state.as_str()));
    x.el("Type", lb.load_balancer_type.as_str());
    x.members("AvailabilityZones", &lb.subnets, |x, s| {
        x.el("ZoneName", &s.availability_zone);
        x.el("SubnetId", &s.subnet_id);
    });
    if lb.load_balancer_type != LoadBalancerType::Gateway {
        x.texts("SecurityGroups", &lb.security_groups);
    }
    x.el("IpAddressType", lb.ip_address_type.as_str());
    if let Some(pool) = &lb.ipv4_ipam_pool {
        x.node("IpamPools", |x| x.el("Ipv4IpamPoolId", pool));
    }
}

/// The Route 53 zone of a load balancer's DNS name, by region and type (a
/// fixed, made-up zone per pair: the store does not model DNS).
fn hosted_zone(region: &str, kind: LoadBalancerType) -> String {
    let hash = region.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let tag = match kind {
        LoadBalancerType::Application => 'A',
        LoadBalancerType::Network => 'N',
        LoadBalancerType::Gateway => 'G',
    };
    format!("Z{tag}{:012X}", hash & 0xffff_ffff_ffff)
}

pub(super) fn create(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let name = p.required("Name")?.to_owned();
    let load_balancer_type = p.one_of("Type", TYPES)?.and_then(LoadBalancerType::parse).unwrap_or_default();
    let scheme = p.one_of("Scheme", SCHEMES)?.and_then(Scheme::parse).unwrap_or_default();
    let ip_address_type = p.one_of("IpAddressType", ADDRESS_TYPES)?.and_then(IpAddressType::parse).unwrap_or_default();
    let (vpc_id, subnets) = subnets(ctx, p)?.ok_or_else(|| {
        ApiError::validation("1 validation error detected: either subnets or subnet mappings must be specified")
    })?;
    let security_groups = security_groups(ctx, p, &vpc_id)?;
    let command = CreateLoadBalancer {
        account: ctx.account().to_owned(),
        name: name.clone(),
        load_balancer_type,
        scheme,
        ip_address_type,
        vpc_id,
        subnets,
        security_groups,
        tags: read_tags(p, "Tags")?,
    };
    let applied = ctx.execute(vec![Command::CreateLoadBalancer(command)])?;
    let id = applied.load_balancer(&name).ok_or_else(|| ApiError::internal("the created load balancer is missing"))?;
    let view = ctx.view();
    let lb = view.state().load_balancer(id).cloned().ok_or_else(|| ApiError::internal("load balancer gone"))?;
    Ok(ctx.respond(|x| x.members("LoadBalancers", [lb], |x, lb| write(x, ctx, &lb))))
}

pub(super) fn describe(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let (arns, names) = (p.list("LoadBalancerArns"), p.list("Names"));
    if !arns.is_empty() && !names.is_empty() {
        return Err(ApiError::validation(
            "Load balancer names and load balancer ARNs cannot be specified at the same time",
        ));
    }
    let view = ctx.view();
    let mut found: Vec<Arc<LoadBalancer>> = Vec::new();
    for arn in &arns {
        found.push(ctx.load_balancer(&view, arn)?);
    }
    for name in &names {
        let lb = view.state().load_balancer_by_name(ctx.account(), name).cloned();
        found.push(lb.ok_or_else(|| {
            ApiError::new("LoadBalancerNotFound", format!("One or more load balancers not found: '{name}'"), 400)
        })?);
    }
    if arns.is_empty() && names.is_empty() {
        found = view.state().load_balancers().filter(|lb| lb.account == ctx.account()).cloned().collect();
    }
    let keyed = found.into_iter().map(|lb| (lb.id.to_string(), lb)).collect();
    let (items, next) = page(keyed, p.get("Marker"), page_size(p)?);
    Ok(ctx.respond(|x| {
        x.members("LoadBalancers", items, |x, lb| write(x, ctx, &lb));
        x.opt("NextMarker", next);
    }))
}

pub(super) fn delete(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let arn = p.required("LoadBalancerArn")?;
    let view = ctx.view();
    // Deleting a load balancer that is not there succeeds, as the API does.
    if let Ok(lb) = ctx.load_balancer(&view, arn) {
        drop(view);
        ctx.execute(vec![Command::DeleteLoadBalancer { load_balancer: lb.id }])?;
    }
    Ok(ctx.respond(|_| {}))
}

pub(super) fn describe_attributes(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let view = ctx.view();
    let lb = ctx.load_balancer(&view, p.required("LoadBalancerArn")?)?;
    Ok(ctx.respond(|x| write_attributes(x, &lb.attributes)))
}

pub(super) fn modify_attributes(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let lb = ctx.load_balancer(&ctx.view(), p.required("LoadBalancerArn")?)?;
    let attributes = read_attributes(p)?;
    ctx.execute(vec![Command::ModifyLoadBalancerAttributes { load_balancer: lb.id, attributes }])?;
    let view = ctx.view();
    let lb = ctx.load_balancer(&view, p.required("LoadBalancerArn")?)?;
    Ok(ctx.respond(|x| write_attributes(x, &lb.attributes)))
}

pub(super) fn set_security_groups(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let lb = ctx.load_balancer(&ctx.view(), p.required("LoadBalancerArn")?)?;
    let groups = security_groups(ctx, p, &lb.vpc_id)?;
    ctx.execute(vec![Command::SetSecurityGroups { load_balancer: lb.id, security_groups: groups.clone() }])?;
    Ok(ctx.respond(|x| x.texts("SecurityGroupIds", &groups)))
}

pub(super) fn set_subnets(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let lb = ctx.load_balancer(&ctx.view(), p.required("LoadBalancerArn")?)?;
    let (vpc, subnets) = subnets(ctx, p)?.ok_or_else(|| ApiError::missing("Subnets"))?;
    if vpc != lb.vpc_id {
        return Err(ApiError::new(
            "InvalidConfigurationRequest",
            format!("the subnets are in {vpc}, the load balancer in {}", lb.vpc_id),
            400,
        ));
    }
    ctx.execute(vec![Command::SetSubnets { load_balancer: lb.id, subnets }])?;
    let view = ctx.view();
    let lb = ctx.load_balancer(&view, p.required("LoadBalancerArn")?)?;
    Ok(ctx.respond(|x| {
        x.members("AvailabilityZones", &lb.subnets, |x, s| {
            x.el("ZoneName", &s.availability_zone);
            x.el("SubnetId", &s.subnet_id);
        });
        x.el("IpAddressType", lb.ip_address_type.as_str());
    }))
}

pub(super) fn set_ip_address_type(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let lb = ctx.load_balancer(&ctx.view(), p.required("LoadBalancerArn")?)?;
    let kind = p.one_of("IpAddressType", ADDRESS_TYPES)?.ok_or_else(|| ApiError::missing("IpAddressType"))?;
    let ip_address_type = IpAddressType::parse(kind).unwrap_or_default();
    ctx.execute(vec![Command::SetIpAddressType { load_balancer: lb.id, ip_address_type }])?;
    Ok(ctx.respond(|x| x.el("IpAddressType", ip_address_type.as_str())))
}

pub(super) fn describe_account_limits(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let q = &ctx.store().settings().quotas;
    let limits = [
        ("application-load-balancers", q.application_load_balancers_per_account),
        ("network-load-balancers", q.network_load_balancers_per_account),
        ("gateway-load-balancers", q.gateway_load_balancers_per_account),
        ("target-groups", q.target_groups_per_account),
        ("listeners-per-application-load-balancer", q.listeners_per_load_balancer),
        ("listeners-per-network-load-balancer", q.listeners_per_load_balancer),
        ("rules-per-application-load-balancer", q.rules_per_load_balancer),
        ("targets-per-target-group", q.targets_per_target_group),
        ("targets-per-application-load-balancer", q.targets_per_application_load_balancer),
        ("targets-per-network-load-balancer", q.targets_per_network_load_balancer),
        ("target-groups-per-application-load-balancer", q.target_groups_per_application_load_balancer),
        ("certificates-per-application-load-balancer", q.certificates_per_load_balancer),
        ("trust-stores-per-account", q.trust_stores_per_account),
    ];
    let keyed = limits.iter().map(|(name, max)| (name.to_string(), (*name, *max))).collect();
    let (items, next) = page(keyed, p.get("Marker"), page_size(p)?);
    Ok(ctx.respond(|x| {
        x.members("Limits", items, |x, (name, max)| {
            x.el("Name", name);
            x.el("Max", max);
        });
        x.opt("NextMarker", next);
    }))
}

pub(super) fn describe_ssl_policies(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let names = p.list("Names");
    if let Some(unknown) = names.iter().find(|n| !SSL_POLICIES.contains(n)) {
        return Err(ApiError::new("SSLPolicyNotFound", format!("SSL policy '{unknown}' not found"), 400));
    }
    let chosen: Vec<&str> = SSL_POLICIES.iter().copied().filter(|n| names.is_empty() || names.contains(n)).collect();
    let keyed = chosen.into_iter().map(|n| (n.to_owned(), n)).collect();
    let (items, next) = page(keyed, p.get("Marker"), page_size(p)?);
    Ok(ctx.respond(|x| {
        x.members("SslPolicies", items, |x, name| {
            x.el("Name", name);
            x.texts("SupportedLoadBalancerTypes", ["application", "network"]);
        });
        x.opt("NextMarker", next);
    }))
}
