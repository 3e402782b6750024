//! Listeners and rules: create, describe, modify, delete, priorities,
//! certificates, attributes; and the actions and conditions they carry.

use std::sync::Arc;

use super::{page_size, read_attributes, read_tags, write_attributes};
use crate::api::error::ApiError;
use crate::api::query::Params;
use crate::api::service::{page, Ctx};
use crate::api::xml::Xml;
use crate::elb::{
    Action, AuthenticateCognito, AuthenticateOidc, Command, Condition, CreateListener, CreateRule, ElbState, EntityKey,
    Listener, ModifyListener, MutualAuthentication, MutualAuthenticationMode, Protocol, Rule, WeightedTargetGroup,
};

const LISTENER_PROTOCOLS: &[&str] = &["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE", "QUIC", "TCP_QUIC"];

/// `KEY.member.N` actions, in their `Order` (or as listed).
fn actions(ctx: &Ctx, p: &Params, key: &str) -> Result<Vec<Action>, ApiError> {
    let view = ctx.view();
    let mut ordered: Vec<(u32, Action)> = Vec::new();
    for (n, a) in p.structs(key).into_iter().enumerate() {
        let order = a.number::<u32>("Order", 1, 50_000)?.unwrap_or(n as u32 + 1);
        let kind =
            a.one_of("Type", &["forward", "redirect", "fixed-response", "authenticate-oidc", "authenticate-cognito"])?;
        let action = match kind.ok_or_else(|| ApiError::missing(&format!("{key}.member.{}.Type", n + 1)))? {
            "forward" => {
                let mut target_groups = Vec::new();
                if let Some(arn) = a.get("TargetGroupArn") {
                    target_groups
                        .push(WeightedTargetGroup { target_group: ctx.target_group(&view, arn)?.id, weight: 1 });
                }
                for g in a.sub("ForwardConfig").structs("TargetGroups") {
                    let id = ctx.target_group(&view, g.required("TargetGroupArn")?)?.id;
                    if !target_groups.iter().any(|w| w.target_group == id) {
                        target_groups.push(WeightedTargetGroup {
                            target_group: id,
                            weight: g.number("Weight", 0, 999)?.unwrap_or(1),
                        });
                    }
                }
                if target_groups.is_empty() {
                    return Err(ApiError::validation("a forward action needs a TargetGroupArn or a ForwardConfig"));
                }
                Action::Forward { target_groups }
            }
            "redirect" => {
                let r = a.sub("RedirectConfig");
                let status = r
                    .one_of("StatusCode", &["HTTP_301", "HTTP_302"])?
                    .ok_or_else(|| ApiError::missing("RedirectConfig.StatusCode"))?;
                Action::Redirect {
                    protocol: r.get("Protocol").filter(|v| *v != "#{protocol}").map(str::to_owned),
                    host: r.get("Host").filter(|v| *v != "#{host}").map(str::to_owned),
                    port: match r.get("Port") {
                        None | Some("#{port}") => None,
                        Some(_) => r.number("Port", 1, 65535)?,
                    },
                    path: r.get("Path").filter(|v| *v != "/#{path}").map(str::to_owned),
                    status_code: if status == "HTTP_301" { 301 } else { 302 },
                }
            }
            "fixed-response" => {
                let f = a.sub("FixedResponseConfig");
                Action::FixedResponse {
                    status_code: f
                        .number("StatusCode", 200, 599)?
                        .ok_or_else(|| ApiError::missing("FixedResponseConfig.StatusCode"))?,
                    content_type: f.get("ContentType").map(str::to_owned),
                    body: f.get("MessageBody").map(str::to_owned),
                }
            }
            "authenticate-oidc" => {
                let o = a.sub("AuthenticateOidcConfig");
                Action::AuthenticateOidc(Box::new(AuthenticateOidc {
                    issuer: o.required("Issuer")?.to_owned(),
                    authorization_endpoint: o.required("AuthorizationEndpoint")?.to_owned(),
                    token_endpoint: o.required("TokenEndpoint")?.to_owned(),
                    user_info_endpoint: o.required("UserInfoEndpoint")?.to_owned(),
                    client_id: o.required("ClientId")?.to_owned(),
                    scope: o.get("Scope").map(str::to_owned),
                    session_cookie_name: o.get("SessionCookieName").map(str::to_owned),
                    session_timeout: o.number("SessionTimeout", 1, 604_800)?,
                    on_unauthenticated_request: o.get("OnUnauthenticatedRequest").map(str::to_owned),
                }))
            }
            _ => {
                let c = a.sub("AuthenticateCognitoConfig");
                Action::AuthenticateCognito(Box::new(AuthenticateCognito {
                    user_pool_arn: c.required("UserPoolArn")?.to_owned(),
                    user_pool_client_id: c.required("UserPoolClientId")?.to_owned(),
                    user_pool_domain: c.required("UserPoolDomain")?.to_owned(),
                    scope: c.get("Scope").map(str::to_owned),
                    session_cookie_name: c.get("SessionCookieName").map(str::to_owned),
                    session_timeout: c.number("SessionTimeout", 1, 604_800)?,
                    on_unauthenticated_request: c.get("OnUnauthenticatedRequest").map(str::to_owned),
                }))
            }
        };
        ordered.push((order, action));
    }
    ordered.sort_by_key(|(order, _)| *order);
    Ok(ordered.into_iter().map(|(_, a)| a).collect())
}

fn write_actions(x: &mut Xml, ctx: &Ctx, name: &str, actions: &[Action]) {
    x.members(name, actions.iter().enumerate(), |x, (n, action)| {
        match action {
            Action::Forward { target_groups } => {
                x.el("Type", "forward");
                if let [single] = target_groups.as_slice() {
                    x.el("TargetGroupArn", ctx.arn(&EntityKey::TargetGroup(single.target_group)));
                }
                x.node("ForwardConfig", |x| {
                    x.members("TargetGroups", target_groups, |x, w| {
                        x.el("TargetGroupArn", ctx.arn(&EntityKey::TargetGroup(w.target_group)));
                        x.el("Weight", w.weight);
                    });
                });
            }
            Action::Redirect { protocol, host, port, path, status_code } => {
                x.el("Type", "redirect");
                x.node("RedirectConfig", |x| {
                    x.el("Protocol", protocol.as_deref().unwrap_or("#{protocol}"));
                    x.el("Port", port.map_or("#{port}".to_owned(), |p| p.to_string()));
                    x.el("Host", host.as_deref().unwrap_or("#{host}"));
                    x.el("Path", path.as_deref().unwrap_or("/#{path}"));
                    x.el("Query", "#{query}");
                    x.el("StatusCode", format!("HTTP_{status_code}"));
                });
            }
            Action::FixedResponse { status_code, content_type, body } => {
                x.el("Type", "fixed-response");
                x.node("FixedResponseConfig", |x| {
                    x.opt("MessageBody", body.as_deref());
                    x.el("StatusCode", status_code);
                    x.opt("ContentType", content_type.as_deref());
                });
            }
            Action::AuthenticateOidc(o) => {
                x.el("Type", "authenticate-oidc");
                x.node("AuthenticateOidcConfig", |x| {
                    x.el("Issuer", &o.issuer);
                    x.el("AuthorizationEndpoint", &o.authorization_endpoint);
                    x.el("TokenEndpoint", &o.token_endpoint);
                    x.el("UserInfoEndpoint", &o.user_info_endpoint);
                    x.el("ClientId", &o.client_id);
                    x.opt("Scope", o.scope.as_deref());
                    x.opt("SessionCookieName", o.session_cookie_name.as_deref());
                    x.opt("SessionTimeout", o.session_timeout);
                    x.opt("OnUnauthenticatedRequest", o.on_unauthenticated_request.as_deref());
                });
            }
            Action::AuthenticateCognito(c) => {
                x.el("Type", "authenticate-cognito");
                x.node("AuthenticateCognitoConfig", |x| {
                    x.el("UserPoolArn", &c.user_pool_arn);
                    x.el("UserPoolClientId", &c.user_pool_client_id);
                    x.el("UserPoolDomain", &c.user_pool_domain);
                    x.opt("Scope", c.scope.as_deref());
                    x.opt("SessionCookieName", c.session_cookie_name.as_deref());
                    x.opt("SessionTimeout", c.session_timeout);
                    x.opt("OnUnauthenticatedRequest", c.on_unauthenticated_request.as_deref());
                });
            }
        }
        x.el("Order", n + 1);
    });
}

/// `Conditions.member.N`: a field and its values (the `*Config` form or the
/// older `Values` list).
fn conditions(p: &Params) -> Result<Vec<Condition>, ApiError> {
    let mut out = Vec::new();
    for c in p.structs("Conditions") {
        let field = c.required("Field")?;
        let values = |config: &str| -> Vec<String> {
            let sub = c.sub(config);
            let configured = sub.list("Values");
            let list = if configured.is_empty() { c.list("Values") } else { configured };
            list.into_iter().map(str::to_owned).collect()
        };
        out.push(match field {
            "host-header" => Condition::HostHeader(values("HostHeaderConfig")),
            "path-pattern" => Condition::PathPattern(values("PathPatternConfig")),
            "http-request-method" => Condition::HttpRequestMethod(values("HttpRequestMethodConfig")),
            "source-ip" => Condition::SourceIp(values("SourceIpConfig")),
            "http-header" => Condition::HttpHeader {
                name: c.sub("HttpHeaderConfig").required("HttpHeaderName")?.to_owned(),
                values: values("HttpHeaderConfig"),
            },
            "query-string" => Condition::QueryString(
                c.sub("QueryStringConfig")
                    .structs("Values")
                    .iter()
                    .map(|kv| Ok((kv.get("Key").map(str::to_owned), kv.required("Value")?.to_owned())))
                    .collect::<Result<_, ApiError>>()?,
            ),
            other => return Err(ApiError::validation(format!("condition field '{other}' is not valid"))),
        });
    }
    Ok(out)
}

fn write_conditions(x: &mut Xml, conditions: &[Condition]) {
    x.members("Conditions", conditions, |x, c| {
        let simple = |x: &mut Xml, field: &str, config: &str, values: &[String]| {
            x.el("Field", field);
            x.texts("Values", values);
            x.node(config, |x| x.texts("Values", values));
        };
        match c {
            Condition::HostHeader(v) => simple(x, "host-header", "HostHeaderConfig", v),
            Condition::PathPattern(v) => simple(x, "path-pattern", "PathPatternConfig", v),
            Condition::HttpRequestMethod(v) => {
                x.el("Field", "http-request-method");
                x.node("HttpRequestMethodConfig", |x| x.texts("Values", v));
            }
            Condition::SourceIp(v) => {
                x.el("Field", "source-ip");
                x.node("SourceIpConfig", |x| x.texts("Values", v));
            }
            Condition::HttpHeader { name, values } => {
                x.el("Field", "http-header");
                x.node("HttpHeaderConfig", |x| {
                    x.el("HttpHeaderName", name);
                    x.texts("Values", values);
                });
            }
            Condition::QueryString(pairs) => {
                x.el("Field", "query-string");
                x.node("QueryStringConfig", |x| {
                    x.members("Values", pairs, |x, (k, v)| {
                        x.opt("Key", k.as_deref());
                        x.el("Value", v);
                    });
                });
            }
        }
    });
}

fn mutual_authentication(p: &Params, ctx: &Ctx) -> Result<Option<MutualAuthentication>, ApiError> {
    let m = p.sub("MutualAuthentication");
    if m.is_empty() {
        return Ok(None);
    }
    let mode = m
        .one_of("Mode", &["off", "passthrough", "verify"])?
        .and_then(MutualAuthenticationMode::parse)
        .unwrap_or_default();
    let trust_store = match m.get("TrustStoreArn") {
        Some(arn) => Some(ctx.trust_store(&ctx.view(), arn)?.id),
        None => None,
    };
    Ok(Some(MutualAuthentication {
        mode,
        trust_store,
        ignore_client_certificate_expiry: m.boolean("IgnoreClientCertificateExpiry")?.unwrap_or(false),
        advertise_trust_store_ca_names: m.get("AdvertiseTrustStoreCaNames") == Some("on"),
        association_removed: false,
    }))
}

fn write_listener(x: &mut Xml, ctx: &Ctx, l: &Listener) {
    x.el("ListenerArn", ctx.arn(&EntityKey::Listener(l.id)));
    x.el("LoadBalancerArn", ctx.arn(&EntityKey::LoadBalancer(l.load_balancer)));
    x.el("Port", l.port);
    x.el("Protocol", l.protocol.as_str());
    if let Some(cert) = &l.default_certificate {
        x.members("Certificates", [cert], |x, c| x.el("CertificateArn", c));
    }
    x.opt("SslPolicy", l.ssl_policy.as_deref());
    write_actions(x, ctx, "DefaultActions", &l.default_actions);
    if let Some(m) = &l.mutual_authentication {
        x.node("MutualAuthentication", |x| {
            x.el("Mode", m.mode.as_str());
            x.opt("TrustStoreArn", m.trust_store.map(|t| ctx.arn(&EntityKey::TrustStore(t))));
            x.el("IgnoreClientCertificateExpiry", m.ignore_client_certificate_expiry);
            x.el("TrustStoreAssociationStatus", if m.association_removed { "removed" } else { "active" });
            x.el("AdvertiseTrustStoreCaNames", if m.advertise_trust_store_ca_names { "on" } else { "off" });
        });
    }
}

fn certificate(p: &Params) -> Result<Option<String>, ApiError> {
    let certs = p.structs("Certificates");
    match certs.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.required("CertificateArn")?.to_owned())),
        _ => Err(ApiError::new("TooManyCertificates", "a listener takes one default certificate", 400)),
    }
}

pub(super) fn create(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let lb = ctx.load_balancer(&ctx.view(), p.required("LoadBalancerArn")?)?;
    let command = CreateListener {
        load_balancer: lb.id,
        port: p.number("Port", 1, 65535)?,
        protocol: p.one_of("Protocol", LISTENER_PROTOCOLS)?.and_then(Protocol::parse),
        default_certificate: certificate(p)?,
        ssl_policy: p.get("SslPolicy").map(str::to_owned),
        default_actions: actions(ctx, p, "DefaultActions")?,
        mutual_authentication: mutual_authentication(p, ctx)?,
        tags: read_tags(p, "Tags")?,
    };
    let applied = ctx.execute(vec![Command::CreateListener(command)])?;
    let id = applied
        .outcomes
        .iter()
        .find_map(|o| match o {
            crate::elb::Outcome::ListenerCreated(id) => Some(*id),
            _ => None,
        })
        .or_else(|| {
            // An identical retry names the listener that exists on that port.
            let view = ctx.view();
            let port: Option<u16> = p.get("Port").and_then(|v| v.parse().ok());
            let found = view.state().listeners_of(lb.id).find(|l| port.is_none_or(|port| l.port == port)).map(|l| l.id);
            found
        })
        .ok_or_else(|| ApiError::internal("the created listener is missing"))?;
    let view = ctx.view();
    let listener = view.state().listener(id).cloned().ok_or_else(|| ApiError::internal("listener gone"))?;
    Ok(ctx.respond(|x| x.members("Listeners", [listener], |x, l| write_listener(x, ctx, &l))))
}

pub(super) fn describe(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let view = ctx.view();
    let state = view.state();
    let arns = p.list("ListenerArns");
    let mut found: Vec<Arc<Listener>> = Vec::new();
    for arn in &arns {
        found.push(ctx.listener(&view, arn)?);
    }
    match p.get("LoadBalancerArn") {
        Some(lb_arn) => {
            let lb = ctx.load_balancer(&view, lb_arn)?;
            found.extend(state.listeners_of(lb.id).cloned());
        }
        None if arns.is_empty() => {
            return Err(ApiError::validation("You must specify either listener ARNs or a load balancer ARN"))
        }
        None => {}
    }
    let keyed = found.into_iter().map(|l| (l.id.to_string(), l)).collect();
    let (items, next) = page(keyed, p.get("Marker"), page_size(p)?);
    Ok(ctx.respond(|x| {
        x.members("Listeners", items, |x, l| write_listener(x, ctx, &l));
        x.opt("NextMarker", next);
    }))
}

pub(super) fn delete(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let listener = ctx.listener(&ctx.view(), p.required("ListenerArn")?)?;
    ctx.execute(vec![Command::DeleteListener { listener: listener.id }])?;
    Ok(ctx.respond(|_| {}))
}

pub(super) fn modify(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let arn = p.required("ListenerArn")?;
    let listener = ctx.listener(&ctx.view(), arn)?;
    let default_actions =
        if p.structs("DefaultActions").is_empty() { None } else { Some(actions(ctx, p, "DefaultActions")?) };
    let command = ModifyListener {
        port: p.number("Port", 1, 65535)?,
        protocol: p.one_of("Protocol", LISTENER_PROTOCOLS)?.and_then(Protocol::parse),
        default_certificate: certificate(p)?,
        ssl_policy: p.get("SslPolicy").map(str::to_owned),
        default_actions,
        mutual_authentication: mutual_authentication(p, ctx)?,
        ..ModifyListener::new(listener.id)
    };
    ctx.execute(vec![Command::ModifyListener(command)])?;
    let view = ctx.view();
    let listener = ctx.listener(&view, arn)?;
    Ok(ctx.respond(|x| x.members("Listeners", [listener], |x, l| write_listener(x, ctx, &l))))
}

pub(super) fn describe_attributes(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let view = ctx.view();
    let listener = ctx.listener(&view, p.required("ListenerArn")?)?;
    Ok(ctx.respond(|x| write_attributes(x, &listener.attributes)))
}

pub(super) fn modify_attributes(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let arn = p.required("ListenerArn")?;
    let listener = ctx.listener(&ctx.view(), arn)?;
    ctx.execute(vec![Command::ModifyListenerAttributes { listener: listener.id, attributes: read_attributes(p)? }])?;
    let view = ctx.view();
    let listener = ctx.listener(&view, arn)?;
    Ok(ctx.respond(|x| write_attributes(x, &listener.attributes)))
}

fn certificate_list(p: &Params) -> Result<Vec<String>, ApiError> {
    let certs: Vec<String> = p
        .structs("Certificates")
        .iter()
        .map(|c| c.required("CertificateArn").map(str::to_owned))
        .collect::<Result<_, _>>()?;
    if certs.is_empty() {
        return Err(ApiError::missing("Certificates"));
    }
    Ok(certs)
}

fn write_certificates(x: &mut Xml, l: &Listener) {
    let all = l.default_certificate.iter().map(|c| (c, true)).chain(l.certificates.iter().map(|c| (c, false)));
    x.members("Certificates", all, |x, (c, default)| {
        x.el("CertificateArn", c);
        x.el("IsDefault", default);
    });
}

pub(super) fn add_certificates(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let arn = p.required("ListenerArn")?;
    let listener = ctx.listener(&ctx.view(), arn)?;
    ctx.execute(vec![Command::AddListenerCertificates { listener: listener.id, certificates: certificate_list(p)? }])?;
    let view = ctx.view();
    let listener = ctx.listener(&view, arn)?;
    Ok(ctx.respond(|x| write_certificates(x, &listener)))
}

pub(super) fn remove_certificates(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let listener = ctx.listener(&ctx.view(), p.required("ListenerArn")?)?;
    ctx.execute(vec![Command::RemoveListenerCertificates {
        listener: listener.id,
        certificates: certificate_list(p)?,
    }])?;
    Ok(ctx.respond(|_| {}))
}

pub(super) fn describe_certificates(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let view = ctx.view();
    let listener = ctx.listener(&view, p.required("ListenerArn")?)?;
    Ok(ctx.respond(|x| write_certificates(x, &listener)))
}

fn write_rule(x: &mut Xml, ctx: &Ctx, r: &Rule) {
    x.el("RuleArn", ctx.arn(&EntityKey::Rule(r.id)));
    x.el("Priority", r.priority);
    write_conditions(x, &r.conditions);
    write_actions(x, ctx, "Actions", &r.actions);
    x.el("IsDefault", false);
}

/// A listener's default rule, as DescribeRules lists it.
fn write_default_rule(x: &mut Xml, ctx: &Ctx, l: &Listener) {
    x.el(
        "RuleArn",
        format!("{}/default", ctx.arn(&EntityKey::Listener(l.id)).replacen(":listener/", ":listener-rule/", 1)),
    );
    x.el("Priority", "default");
    x.members("Conditions", Vec::<u8>::new(), |_, _| {});
    write_actions(x, ctx, "Actions", &l.default_actions);
    x.el("IsDefault", true);
}

pub(super) fn create_rule(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let listener = ctx.listener(&ctx.view(), p.required("ListenerArn")?)?;
    let priority =
        p.number::<u32>("Priority", 1, crate::elb::RULE_PRIORITY_MAX)?.ok_or_else(|| ApiError::missing("Priority"))?;
    let command = CreateRule {
        listener: listener.id,
        priority,
        conditions: conditions(p)?,
        actions: actions(ctx, p, "Actions")?,
        tags: read_tags(p, "Tags")?,
    };
    let applied = ctx.execute(vec![Command::CreateRule(command)])?;
    let id = applied
        .outcomes
        .iter()
        .find_map(|o| match o {
            crate::elb::Outcome::RuleCreated(id) => Some(*id),
            _ => None,
        })
        .ok_or_else(|| ApiError::internal("the created rule is missing"))?;
    let view = ctx.view();
    let rule = view.state().rule(id).cloned().ok_or_else(|| ApiError::internal("rule gone"))?;
    Ok(ctx.respond(|x| x.members("Rules", [rule], |x, r| write_rule(x, ctx, &r))))
}

enum Listed {
    Rule(Arc<Rule>),
    Default(Arc<Listener>),
}

pub(super) fn describe_rules(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let view = ctx.view();
    let state: &ElbState = view.state();
    let arns = p.list("RuleArns");
    let mut found: Vec<(String, Listed)> = Vec::new();
    for arn in &arns {
        let rule = ctx.rule(&view, arn)?;
        found.push((format!("{:010}", rule.priority), Listed::Rule(rule)));
    }
    match p.get("ListenerArn") {
        Some(arn) => {
            let listener = ctx.listener(&view, arn)?;
            found.extend(state.rules_of(listener.id).map(|r| (format!("{:010}", r.priority), Listed::Rule(r.clone()))));
            found.push(("~default".to_owned(), Listed::Default(listener)));
        }
        None if arns.is_empty() => {
            return Err(ApiError::validation("You must specify either rule ARNs or a listener ARN"))
        }
        None => {}
    }
    let (items, next) = page(found, p.get("Marker"), page_size(p)?);
    Ok(ctx.respond(|x| {
        x.members("Rules", items, |x, listed| match listed {
            Listed::Rule(r) => write_rule(x, ctx, &r),
            Listed::Default(l) => write_default_rule(x, ctx, &l),
        });
        x.opt("NextMarker", next);
    }))
}

pub(super) fn delete_rule(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let rule = ctx.rule(&ctx.view(), p.required("RuleArn")?)?;
    ctx.execute(vec![Command::DeleteRule { rule: rule.id }])?;
    Ok(ctx.respond(|_| {}))
}

pub(super) fn modify_rule(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let arn = p.required("RuleArn")?;
    let rule = ctx.rule(&ctx.view(), arn)?;
    let conditions = if p.structs("Conditions").is_empty() { None } else { Some(conditions(p)?) };
    let actions = if p.structs("Actions").is_empty() { None } else { Some(actions(ctx, p, "Actions")?) };
    ctx.execute(vec![Command::ModifyRule { rule: rule.id, conditions, actions }])?;
    let view = ctx.view();
    let rule = ctx.rule(&view, arn)?;
    Ok(ctx.respond(|x| x.members("Rules", [rule], |x, r| write_rule(x, ctx, &r))))
}

pub(super) fn set_rule_priorities(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let view = ctx.view();
    let mut priorities = Vec::new();
    let mut arns = Vec::new();
    for r in p.structs("RulePriorities") {
        let arn = r.required("RuleArn")?.to_owned();
        let rule = ctx.rule(&view, &arn)?;
        let priority = r
            .number::<u32>("Priority", 1, crate::elb::RULE_PRIORITY_MAX)?
            .ok_or_else(|| ApiError::missing("Priority"))?;
        priorities.push((rule.id, priority));
        arns.push(arn);
    }
    drop(view);
    if priorities.is_empty() {
        return Err(ApiError::missing("RulePriorities"));
    }
    ctx.execute(vec![Command::SetRulePriorities { priorities }])?;
    let view = ctx.view();
    let rules: Vec<Arc<Rule>> = arns.iter().map(|arn| ctx.rule(&view, arn)).collect::<Result<_, _>>()?;
    Ok(ctx.respond(|x| x.members("Rules", rules, |x, r| write_rule(x, ctx, &r))))
}
