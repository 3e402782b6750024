//! Trust stores (mutual TLS), their revocation lists and associations; and
//! the smaller load-balancer operations: capacity reservations, IPAM pools,
//! resource policies.

use std::sync::Arc;

use super::{page_size, read_tags};
use crate::api::error::ApiError;
use crate::api::query::Params;
use crate::api::service::{page, Ctx};
use crate::api::xml::Xml;
use crate::elb::{Command, CreateTrustStore, EntityKey, S3Object, TrustStore};

/// The CA bundle or revocation list an operation names: `PREFIXS3Bucket`,
/// `PREFIXS3Key`, `PREFIXS3ObjectVersion`.
fn s3_object(p: &Params, prefix: &str) -> Result<S3Object, ApiError> {
    Ok(S3Object {
        bucket: p.required(&format!("{prefix}S3Bucket"))?.to_owned(),
        key: p.required(&format!("{prefix}S3Key"))?.to_owned(),
        version: p.get(&format!("{prefix}S3ObjectVersion")).map(str::to_owned),
    })
}

fn write(x: &mut Xml, ctx: &Ctx, ts: &TrustStore) {
    x.el("Name", &ts.name);
    x.el("TrustStoreArn", ctx.arn(&EntityKey::TrustStore(ts.id)));
    x.el("Status", "ACTIVE");
    // The store keeps where the bundle and lists are, not their contents.
    x.el("NumberOfCaCertificates", 0);
    x.el("TotalRevokedEntries", 0);
}

/// Where an object is, as an HTTPS location.
fn location(ctx: &Ctx, object: &S3Object) -> String {
    let version = object.version.as_ref().map_or(String::new(), |v| format!("?versionId={v}"));
    format!("https://{}.s3.{}.amazonaws.com/{}{version}", object.bucket, ctx.region(), object.key)
}

pub(super) fn create(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let name = p.required("Name")?.to_owned();
    let command = CreateTrustStore {
        account: ctx.account().to_owned(),
        name: name.clone(),
        ca_certificates_bundle: s3_object(p, "CaCertificatesBundle")?,
        tags: read_tags(p, "Tags")?,
    };
    let applied = ctx.execute(vec![Command::CreateTrustStore(command)])?;
    let id = applied.trust_store(&name).ok_or_else(|| ApiError::internal("the created trust store is missing"))?;
    let view = ctx.view();
    let ts = view.state().trust_store(id).cloned().ok_or_else(|| ApiError::internal("trust store gone"))?;
    Ok(ctx.respond(|x| x.members("TrustStores", [ts], |x, ts| write(x, ctx, &ts))))
}

pub(super) fn describe(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let view = ctx.view();
    let (arns, names) = (p.list("TrustStoreArns"), p.list("Names"));
    let mut found: Vec<Arc<TrustStore>> = Vec::new();
    for arn in &arns {
        found.push(ctx.trust_store(&view, arn)?);
    }
    let mine: Vec<Arc<TrustStore>> =
        view.state().trust_stores().filter(|t| t.account == ctx.account()).cloned().collect();
    for name in &names {
        let ts = mine.iter().find(|t| t.name == *name).cloned();
        found.push(ts.ok_or_else(|| {
            ApiError::new("TrustStoreNotFound", format!("One or more trust stores not found: '{name}'"), 400)
        })?);
    }
    if arns.is_empty() && names.is_empty() {
        found = mine;
    }
    let keyed = found.into_iter().map(|ts| (ts.id.to_string(), ts)).collect();
    let (items, next) = page(keyed, p.get("Marker"), page_size(p)?);
    Ok(ctx.respond(|x| {
        x.members("TrustStores", items, |x, ts| write(x, ctx, &ts));
        x.opt("NextMarker", next);
    }))
}

pub(super) fn delete(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let ts = ctx.trust_store(&ctx.view(), p.required("TrustStoreArn")?)?;
    ctx.execute(vec![Command::DeleteTrustStore { trust_store: ts.id }])?;
    Ok(ctx.respond(|_| {}))
}

pub(super) fn modify(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let arn = p.required("TrustStoreArn")?;
    let ts = ctx.trust_store(&ctx.view(), arn)?;
    let bundle = s3_object(p, "CaCertificatesBundle")?;
    ctx.execute(vec![Command::ModifyTrustStore { trust_store: ts.id, ca_certificates_bundle: bundle }])?;
    let view = ctx.view();
    let ts = ctx.trust_store(&view, arn)?;
    Ok(ctx.respond(|x| x.members("TrustStores", [ts], |x, ts| write(x, ctx, &ts))))
}

fn write_revocation(x: &mut Xml, trust_store_arn: &str, id: u64) {
    x.el("TrustStoreArn", trust_store_arn);
    x.el("RevocationId", id);
    x.el("RevocationType", "CRL");
    x.el("NumberOfRevokedEntries", 0);
}

pub(super) fn add_revocations(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let arn = p.required("TrustStoreArn")?.to_owned();
    let ts = ctx.trust_store(&ctx.view(), &arn)?;
    let revocations: Vec<S3Object> =
        p.structs("RevocationContents").iter().map(|r| s3_object(r, "")).collect::<Result<_, _>>()?;
    if revocations.is_empty() {
        return Err(ApiError::missing("RevocationContents"));
    }
    let applied = ctx.execute(vec![Command::AddTrustStoreRevocations { trust_store: ts.id, revocations }])?;
    let ids: Vec<u64> = applied
        .outcomes
        .iter()
        .flat_map(|o| match o {
            crate::elb::Outcome::RevocationsAdded(ids) => ids.clone(),
            _ => Vec::new(),
        })
        .collect();
    Ok(ctx.respond(|x| x.members("TrustStoreRevocations", ids, |x, id| write_revocation(x, &arn, id))))
}

fn revocation_ids(p: &Params) -> Result<Vec<u64>, ApiError> {
    p.list("RevocationIds")
        .into_iter()
        .map(|id| id.parse::<u64>().map_err(|_| ApiError::validation(format!("revocation id '{id}' is not a number"))))
        .collect()
}

pub(super) fn remove_revocations(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let ts = ctx.trust_store(&ctx.view(), p.required("TrustStoreArn")?)?;
    let revocation_ids = revocation_ids(p)?;
    if revocation_ids.is_empty() {
        return Err(ApiError::missing("RevocationIds"));
    }
    ctx.execute(vec![Command::RemoveTrustStoreRevocations { trust_store: ts.id, revocation_ids }])?;
    Ok(ctx.respond(|_| {}))
}

pub(super) fn describe_revocations(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let arn = p.required("TrustStoreArn")?.to_owned();
    let ts = ctx.trust_store(&ctx.view(), &arn)?;
    let asked = revocation_ids(p)?;
    if let Some(missing) = asked.iter().find(|id| !ts.revocations.contains_key(id)) {
        return Err(ApiError::new("RevocationIdNotFound", format!("Revocation ID '{missing}' not found"), 400));
    }
    let ids: Vec<u64> = ts.revocations.keys().copied().filter(|id| asked.is_empty() || asked.contains(id)).collect();
    let keyed = ids.into_iter().map(|id| (format!("{id:020}"), id)).collect();
    let (items, next) = page(keyed, p.get("Marker"), page_size(p)?);
    Ok(ctx.respond(|x| {
        x.members("TrustStoreRevocations", items, |x, id| write_revocation(x, &arn, id));
        x.opt("NextMarker", next);
    }))
}

pub(super) fn describe_associations(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let view = ctx.view();
    let ts = ctx.trust_store(&view, p.required("TrustStoreArn")?)?;
    let state = view.state();
    let users: Vec<String> = state
        .load_balancers()
        .flat_map(|lb| state.listeners_of(lb.id))
        .filter(|l| l.mutual_authentication.as_ref().is_some_and(|m| m.trust_store == Some(ts.id)))
        .map(|l| ctx.arn(&EntityKey::Listener(l.id)))
        .collect();
    let keyed = users.into_iter().map(|arn| (arn.clone(), arn)).collect();
    let (items, next) = page(keyed, p.get("Marker"), page_size(p)?);
    Ok(ctx.respond(|x| {
        x.members("TrustStoreAssociations", items, |x, arn| x.el("ResourceArn", arn));
        x.opt("NextMarker", next);
    }))
}

pub(super) fn delete_shared_association(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let view = ctx.view();
    let ts = ctx.trust_store(&view, p.required("TrustStoreArn")?)?;
    let listener_arn = p.required("ResourceArn")?;
    let listener = match ctx.store().resolve_arn(listener_arn) {
        Some(EntityKey::Listener(id)) => id,
        _ => {
            return Err(ApiError::new(
                "AssociationNotFound",
                format!("no association of {listener_arn} with this trust store"),
                400,
            ))
        }
    };
    drop(view);
    ctx.execute(vec![Command::DeleteSharedTrustStoreAssociation { trust_store: ts.id, listener }])?;
    Ok(ctx.respond(|_| {}))
}

pub(super) fn ca_certificates_bundle(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let ts = ctx.trust_store(&ctx.view(), p.required("TrustStoreArn")?)?;
    Ok(ctx.respond(|x| x.el("Location", location(ctx, &ts.ca_certificates_bundle))))
}

pub(super) fn revocation_content(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let ts = ctx.trust_store(&ctx.view(), p.required("TrustStoreArn")?)?;
    let id = p.number::<u64>("RevocationId", 1, u64::MAX)?.ok_or_else(|| ApiError::missing("RevocationId"))?;
    let revocation = ts
        .revocations
        .get(&id)
        .ok_or_else(|| ApiError::new("RevocationIdNotFound", format!("Revocation ID '{id}' not found"), 400))?;
    Ok(ctx.respond(|x| x.el("Location", location(ctx, &revocation.content))))
}

pub(super) fn resource_policy(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let arn = p.required("ResourceArn")?;
    // The store models no resource policies: none is attached to anything.
    let _ = ctx.trust_store(&ctx.view(), arn)?;
    Err(ApiError::new("ResourceNotFound", format!("no resource policy is attached to '{arn}'"), 400))
}

pub(super) fn describe_capacity_reservation(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let view = ctx.view();
    let lb = ctx.load_balancer(&view, p.required("LoadBalancerArn")?)?;
    Ok(ctx.respond(|x| {
        x.el("DecreaseRequestsRemaining", 2);
        if let Some(units) = lb.capacity_units {
            x.node("MinimumLoadBalancerCapacity", |x| x.el("CapacityUnits", units));
        }
        x.members("CapacityReservationState", &lb.subnets, |x, s| {
            x.el("AvailabilityZone", &s.availability_zone);
            x.node("State", |x| x.el("Code", if lb.capacity_units.is_some() { "provisioned" } else { "pending" }));
        });
    }))
}

pub(super) fn modify_capacity_reservation(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let arn = p.required("LoadBalancerArn")?;
    let lb = ctx.load_balancer(&ctx.view(), arn)?;
    let reset = p.boolean("ResetCapacityReservation")?.unwrap_or(false);
    let units = p.number::<u32>("MinimumLoadBalancerCapacity.CapacityUnits", 1, u32::MAX)?;
    if reset == units.is_some() {
        return Err(ApiError::validation(
            "give exactly one of MinimumLoadBalancerCapacity and ResetCapacityReservation",
        ));
    }
    ctx.execute(vec![Command::ModifyCapacityReservation { load_balancer: lb.id, capacity_units: units }])?;
    describe_capacity_reservation(ctx, p)
}

pub(super) fn modify_ip_pools(ctx: &Ctx, p: &Params) -> Result<String, ApiError> {
    let arn = p.required("LoadBalancerArn")?;
    let lb = ctx.load_balancer(&ctx.view(), arn)?;
    let remove = p.list("RemoveIpamPools").contains(&"ipv4");
    let pool = p.get("IpamPools.Ipv4IpamPoolId").map(str::to_owned);
    if remove && pool.is_some() {
        return Err(ApiError::validation("an IPAM pool cannot be set and removed in one call"));
    }
    ctx.execute(vec![Command::ModifyIpPools { load_balancer: lb.id, ipv4_ipam_pool: pool.clone() }])?;
    Ok(ctx.respond(|x| {
        if let Some(pool) = &pool {
            x.node("IpamPools", |x| x.el("Ipv4IpamPoolId", pool));
        }
    }))
}
