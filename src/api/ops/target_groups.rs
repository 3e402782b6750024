//! Target groups and their targets: create, describe, modify, attributes,
//! register, deregister, health.

use std::sync::Arc;

use super::{page_size, read_attributes, read_tags, write_attributes};
use crate::api::error::ApiError;
use crate::api::query::Params;
use crate::api::service::{page, Ctx};
use crate::api::xml::Xml;
use crate::elb::{
    Command, CreateTargetGroup, ElbState, EntityKey, HealthCheck, ModifyHealthCheck, Protocol, ProtocolVersion,
    TargetGroup, TargetGroupIpAddressType, TargetSpec, TargetType,
};

const PROTOCOLS: &[&str] = &["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE", "QUIC", "TCP_QUIC"];
const CHECK_PROTOCOLS: &[&str] = &["HTTP", "HTTPS", "TCP"];
const TARGET_TYPES: &[&str] = &["instance", "ip", "lambda", "alb"];

fn protocol(p: &Params, key: &str, allowed: &[&str]) -> Result<Option<Protocol>, ApiError> {
    Ok(p.one_of(key, allowed)?.and_then(Protocol::parse))
}

/// The health check a new target group gets: the API's defaults for its
/// protocol and target type, then what the request sets.
fn health_check(p: &Params, traffic: Option<Protocol>, target_type: TargetType) -> Result<HealthCheck, ApiError> {
    let http = matches!(traffic, Some(Protocol::Http | Protocol::Https));
    let grpc = p.get("ProtocolVersion") == Some("GRPC");
    let check_protocol = protocol(p, "HealthCheckProtocol", CHECK_PROTOCOLS)?;
    let check_protocol = check_protocol.unwrap_or(if http { traffic.unwrap_or(Protocol::Http) } else { Protocol::Tcp });
    let checks_http = matches!(check_protocol, Protocol::Http | Protocol::Https);
    let mut check = HealthCheck {
        enabled: target_type != TargetType::Lambda,
        protocol: check_protocol,
        port: None,
        path: checks_http.then(|| "/".to_owned()),
        interval_seconds: 30,
        timeout_seconds: if checks_http { 5 } else { 10 },
        healthy_threshold: 5,
        unhealthy_threshold: 2,
        matcher: checks_http.then(|| if grpc { "12" } else { "200" }.to_owned()),
    };
    modification(p)?.apply_to(&mut check);
    Ok(check)
}

/// The health-check members of a request.
fn modification(p: &Params) -> Result<ModifyHealthCheck, ApiError> {
    let port = match p.get("HealthCheckPort") {
        None => None,
        Some("traffic-port") => Some(None),
        Some(_) => Some(p.number::<u16>("HealthCheckPort", 1, 65535)?),
    };
    Ok(ModifyHealthCheck {
        enabled: p.boolean("HealthCheckEnabled")?,
        protocol: protocol(p, "HealthCheckProtocol", CHECK_PROTOCOLS)?,
        port,
        path: p.get("HealthCheckPath").map(str::to_owned),
        interval_seconds: p.number("HealthCheckIntervalSeconds", 5, 300)?,
        timeout_seconds: p.number("HealthCheckTimeoutSeconds", 2, 120)?,
        healthy_threshold: p.number("HealthyThresholdCount", 2, 10)?,
        unhealthy_threshold: p.number("UnhealthyThresholdCount", 2, 10)?,
        matcher: p.get("Matcher.HttpCode").or(p.get("Matcher.GrpcCode")).map(str::to_owned),
    })
}

/// `<member>` of a target group description.
fn write(x: &mut Xml, ctx: &Ctx, state: &ElbState, tg: &TargetGroup) {
    x.el("TargetGroupArn", ctx.arn(&EntityKey::TargetGroup(tg.id)));
    x.el("TargetGroupName", &tg.name);
    x.opt("Protocol", tg.protocol.map(Protocol::as_str));
    x.opt("Port", tg.port);
    x.opt("VpcId", tg.vpc_id.as_deref());
    let check = &tg.health_check;
    x.el("HealthCheckProtocol", check.protocol.as_str());
    x.el("HealthCheckPort", check.port.map_or("traffic-port".to_owned(), |p| p.to_string()));
    x.el("HealthCheckEnabled", check.enabled);
    x.el("HealthCheckIntervalSeconds", check.interval_seconds);
    x.el("HealthCheckTimeoutSeconds", check.timeout_seconds);
    x.el("HealthyThresholdCount", check.healthy_threshold);
    x.el("UnhealthyThresholdCount", check.unhealthy_threshold);
    x.opt("HealthCheckPath", check.path.as_deref());
    if let Some(code) = &check.matcher {
        let grpc = tg.protocol_version == Some(ProtocolVersion::Grpc);
        x.node("Matcher", |x| x.el(if grpc { "GrpcCode" } else { "HttpCode" }, code));
    }
    let mut users: Vec<String> = state
        .users_of(tg.id)
        .filter_map(|key| match key {
            EntityKey::Listener(l) => state.listener(*l).map(|l| l.load_balancer),
            EntityKey::Rule(r) => state.rule(*r).and_then(|r| state.listener(r.listener)).map(|l| l.load_balancer),
            _ => None,
        })
        .map(|lb| ctx.arn(&EntityKey::LoadBalancer(lb)))
        .collect();
    users.sort();
    users.dedup();
    x.texts("LoadBalancerArns", users);
    x.el("TargetType", tg.target_type.as_str());
    x.opt("ProtocolVersion", tg.protocol_version.map(ProtocolVersion::as_str));
    x.el("IpAddressType", tg.ip_address_type.as_str());
}

pub(super) fn create(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let name = p.required("Name")?.to_owned();
    let target_type = p.one_of("TargetType", TARGET_TYPES)?.and_then(TargetType::parse).unwrap_or_default();
    let proto = protocol(p, "Protocol", PROTOCOLS)?;
    let vpc_id = p.get("VpcId").map(str::to_owned);
    if let Some(vpc) = &vpc_id {
        let known = ctx.network().vpc_exists(ctx.caller(), vpc).map_err(super::load_balancers::network_error)?;
        if !known {
            return Err(ApiError::new("ValidationError", format!("The VPC ID '{vpc}' is not found"), 400));
        }
    }
    let command = CreateTargetGroup {
        account: ctx.account().to_owned(),
        name: name.clone(),
        protocol: proto,
        port: p.number("Port", 1, 65535)?,
        vpc_id,
        target_type,
        health_check: health_check(p, proto, target_type)?,
        attributes: Default::default(),
        tags: read_tags(p, "Tags")?,
        protocol_version: p.one_of("ProtocolVersion", &["HTTP1", "HTTP2", "GRPC"])?.and_then(ProtocolVersion::parse),
        ip_address_type: p
            .one_of("IpAddressType", &["ipv4", "ipv6"])?
            .and_then(TargetGroupIpAddressType::parse)
            .unwrap_or_default(),
    };
    let applied = ctx.execute(vec![Command::CreateTargetGroup(command)])?;
    let id = applied.target_group(&name).ok_or_else(|| ApiError::internal("the created target group is missing"))?;
    let view = ctx.view();
    let tg = view.state().target_group(id).cloned().ok_or_else(|| ApiError::internal("target group gone"))?;
    Ok(ctx.respond(|x| x.members("TargetGroups", [tg], |x, tg| write(x, ctx, view.state(), &tg))))
}

pub(super) fn describe(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let (arns, names) = (p.list("TargetGroupArns"), p.list("Names"));
    let view = ctx.view();
    let state = view.state();
    let mut found: Vec<Arc<TargetGroup>> = Vec::new();
    for arn in &arns {
        found.push(ctx.target_group(&view, arn)?);
    }
    for name in &names {
        let tg = state.target_group_by_name(ctx.account(), name).cloned();
        found.push(tg.ok_or_else(|| {
            ApiError::new("TargetGroupNotFound", format!("One or more target groups not found: '{name}'"), 400)
        })?);
    }
    if let Some(lb_arn) = p.get("LoadBalancerArn") {
        let lb = ctx.load_balancer(&view, lb_arn)?;
        let mut ids: Vec<_> = state
            .listeners_of(lb.id)
            .flat_map(|l| {
                let rules = state.rules_of(l.id).flat_map(|r| r.actions.iter().flat_map(|a| a.target_groups()));
                l.default_actions.iter().flat_map(|a| a.target_groups()).chain(rules).collect::<Vec<_>>()
            })
            .collect();
        ids.sort();
        ids.dedup();
        found.extend(ids.into_iter().filter_map(|id| state.target_group(id).cloned()));
    } else if arns.is_empty() && names.is_empty() {
        found = state.target_groups_of_account(ctx.account()).cloned().collect();
    }
    let keyed = found.into_iter().map(|tg| (tg.id.to_string(), tg)).collect();
    let (items, next) = page(keyed, p.get("Marker"), page_size(p)?);
    Ok(ctx.respond(|x| {
        x.members("TargetGroups", items, |x, tg| write(x, ctx, state, &tg));
        x.opt("NextMarker", next);
    }))
}

pub(super) fn delete(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let arn = p.required("TargetGroupArn")?;
    let view = ctx.view();
    // A missing target group is deleted already: success, as the API answers.
    if let Ok(tg) = ctx.target_group(&view, arn) {
        drop(view);
        ctx.execute(vec![Command::DeleteTargetGroup { target_group: tg.id }])?;
    }
    Ok(ctx.respond(|_| {}))
}

pub(super) fn modify(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let arn = p.required("TargetGroupArn")?;
    let tg = ctx.target_group(&ctx.view(), arn)?;
    ctx.execute(vec![Command::ModifyTargetGroup { target_group: tg.id, health_check: modification(p)? }])?;
    let view = ctx.view();
    let tg = ctx.target_group(&view, arn)?;
    Ok(ctx.respond(|x| x.members("TargetGroups", [tg], |x, tg| write(x, ctx, view.state(), &tg))))
}

pub(super) fn describe_attributes(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let view = ctx.view();
    let tg = ctx.target_group(&view, p.required("TargetGroupArn")?)?;
    Ok(ctx.respond(|x| write_attributes(x, &tg.attributes)))
}

pub(super) fn modify_attributes(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let arn = p.required("TargetGroupArn")?;
    let tg = ctx.target_group(&ctx.view(), arn)?;
    ctx.execute(vec![Command::ModifyTargetGroupAttributes { target_group: tg.id, attributes: read_attributes(p)? }])?;
    let view = ctx.view();
    let tg = ctx.target_group(&view, arn)?;
    Ok(ctx.respond(|x| write_attributes(x, &tg.attributes)))
}

/// `Targets.member.N.Id` / `Port` / `AvailabilityZone`.
fn targets(p: &Params) -> Result<Vec<TargetSpec>, ApiError> {
    let mut specs = Vec::new();
    for t in p.structs("Targets") {
        specs.push(TargetSpec {
            id: t.required("Id")?.to_owned(),
            port: t.number("Port", 1, 65535)?,
            availability_zone: t.get("AvailabilityZone").map(str::to_owned),
        });
    }
    if specs.is_empty() {
        return Err(ApiError::missing("Targets"));
    }
    Ok(specs)
}

pub(super) fn register(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let tg = ctx.target_group(&ctx.view(), p.required("TargetGroupArn")?)?;
    ctx.execute(vec![Command::RegisterTargets { target_group: tg.id, targets: targets(p)? }])?;
    Ok(ctx.respond(|_| {}))
}

pub(super) fn deregister(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let tg = ctx.target_group(&ctx.view(), p.required("TargetGroupArn")?)?;
    ctx.execute(vec![Command::DeregisterTargets { target_group: tg.id, targets: targets(p)? }])?;
    Ok(ctx.respond(|_| {}))
}

pub(super) fn describe_health(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let view = ctx.view();
    let tg = ctx.target_group(&view, p.required("TargetGroupArn")?)?;
    let state = view.state();
    let asked: Vec<TargetSpec> = if p.structs("Targets").is_empty() { Vec::new() } else { targets(p)? };
    let registered: Vec<_> = state
        .targets_of(tg.id)
        .filter(|t| {
            asked.is_empty() || asked.iter().any(|a| *a.id == *t.key.id && a.port.is_none_or(|port| port == t.key.port))
        })
        .cloned()
        .collect();
    // A target asked for by id that is not registered is "unused", NotRegistered.
    let missing: Vec<&TargetSpec> = asked
        .iter()
        .filter(|a| !registered.iter().any(|t| *t.key.id == *a.id && a.port.is_none_or(|port| port == t.key.port)))
        .collect();
    let check_port = tg.health_check.port;
    Ok(ctx.respond(|x| {
        x.node("TargetHealthDescriptions", |x| {
            for t in &registered {
                x.node("member", |x| {
                    x.node("Target", |x| {
                        x.el("Id", &*t.key.id);
                        x.el("Port", t.key.port);
                        x.opt("AvailabilityZone", t.availability_zone.as_deref());
                    });
                    x.el("HealthCheckPort", check_port.unwrap_or(t.key.port));
                    x.node("TargetHealth", |x| {
                        x.el("State", t.health.state.as_str());
                        x.opt("Reason", t.health.reason.map(|r| r.as_str()));
                    });
                });
            }
            for a in &missing {
                x.node("member", |x| {
                    x.node("Target", |x| {
                        x.el("Id", &a.id);
                        x.opt("Port", a.port.or(tg.port));
                    });
                    x.node("TargetHealth", |x| {
                        x.el("State", "unused");
                        x.el("Reason", "Target.NotRegistered");
                        x.el("Description", "Target is not registered to the target group");
                    });
                });
            }
        });
    }))
}
