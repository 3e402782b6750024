//! Tags on load balancers, listeners, rules, target groups and trust stores.

use super::read_tags;
use crate::api::error::ApiError;
use crate::api::query::Params;
use crate::api::service::Ctx;
use crate::elb::{Command, ElbState, Entity, EntityKey, Taggable, Tags};
use crate::store::View;

/// The caller's resource an ARN names, as something tags go on.
fn taggable(ctx: &Ctx, view: &View<ElbState>, arn: &str) -> Result<Taggable, ApiError> {
    match ctx.store().resolve_arn(arn) {
        Some(EntityKey::LoadBalancer(_)) => Ok(Taggable::LoadBalancer(ctx.load_balancer(view, arn)?.id)),
        Some(EntityKey::TargetGroup(_)) => Ok(Taggable::TargetGroup(ctx.target_group(view, arn)?.id)),
        Some(EntityKey::Listener(_)) => Ok(Taggable::Listener(ctx.listener(view, arn)?.id)),
        Some(EntityKey::Rule(_)) => Ok(Taggable::Rule(ctx.rule(view, arn)?.id)),
        Some(EntityKey::TrustStore(_)) => Ok(Taggable::TrustStore(ctx.trust_store(view, arn)?.id)),
        _ => Err(ApiError::new("LoadBalancerNotFound", format!("Resource '{arn}' not found"), 400)),
    }
}

fn resources(ctx: &Ctx, p: &Params) -> Result<Vec<Taggable>, ApiError> {
    let view = ctx.view();
    p.required_list("ResourceArns")?.into_iter().map(|arn| taggable(ctx, &view, arn)).collect()
}

fn key_of(t: Taggable) -> EntityKey {
    match t {
        Taggable::LoadBalancer(id) => EntityKey::LoadBalancer(id),
        Taggable::Listener(id) => EntityKey::Listener(id),
        Taggable::Rule(id) => EntityKey::Rule(id),
        Taggable::TargetGroup(id) => EntityKey::TargetGroup(id),
        Taggable::TrustStore(id) => EntityKey::TrustStore(id),
    }
}

pub(super) fn add(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let resources = resources(ctx, p)?;
    let tags = read_tags(p, "Tags")?;
    if tags.is_empty() {
        return Err(ApiError::missing("Tags"));
    }
    ctx.execute(vec![Command::AddTags { resources, tags }])?;
    Ok(ctx.respond(|_| {}))
}

pub(super) fn remove(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let resources = resources(ctx, p)?;
    let keys: Vec<String> = p.required_list("TagKeys")?.into_iter().map(str::to_owned).collect();
    ctx.execute(vec![Command::RemoveTags { resources, keys }])?;
    Ok(ctx.respond(|_| {}))
}

pub(super) fn describe(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let view = ctx.view();
    let arns = p.required_list("ResourceArns")?;
    let mut described: Vec<(String, Tags)> = Vec::new();
    for arn in arns {
        let key = key_of(taggable(ctx, &view, arn)?);
        let tags = view.state().entity(&key).as_ref().and_then(Entity::tags).cloned().unwrap_or_default();
        described.push((arn.to_owned(), tags));
    }
    Ok(ctx.respond(|x| {
        x.members("TagDescriptions", described, |x, (arn, tags)| {
            x.el("ResourceArn", arn);
            x.members("Tags", tags, |x, (k, v)| {
                x.el("Key", k);
                x.el("Value", v);
            });
        });
    }))
}
