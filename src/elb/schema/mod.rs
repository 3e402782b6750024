//! The ELB model's schema versions. `v1` holds schema 1's types, frozen;
//! [`upcast_v1`] turns a schema-1 event into the current model's events and
//! [`upcast_state_v1`] a schema-1 snapshot into the current state
//! (docs/FORMAT.md, "Schema versions" and "How to change the model").
//!
//! Schema 2 (the ELBv2 fidelity changes) from schema 1:
//! - a listener's first certificate became its `default_certificate`, the
//!   others its `certificates`; listeners gained `attributes` (empty) and
//!   `mutual_authentication` (off);
//! - target groups gained `protocol_version` (HTTP1 for HTTP and HTTPS
//!   groups, as the API defaults) and `ip_address_type` (ipv4);
//! - load balancers gained `capacity_units` and `ipv4_ipam_pool` (none);
//! - a target's health reason became `HealthReason`: a schema-1 reason the
//!   API does not define is dropped; targets gained `draining_until` (none);
//! - protocols, health states, actions and entities gained variants (trust
//!   stores among them), which schema-1 records never hold.

use std::sync::Arc;

use super::event::{ElbEvent, Entity};
use super::ids::{ListenerId, LoadBalancerId, RuleId, TargetGroupId, TargetKey, ZoneName};
use super::model::{
    Action, Condition, HealthCheck, HealthReason, HealthState, IpAddressType, Listener, LoadBalancer,
    LoadBalancerState, LoadBalancerType, Protocol, ProtocolVersion, Rule, Scheme, SubnetMapping, Target, TargetGroup,
    TargetGroupIpAddressType, TargetHealth, TargetType, WeightedTargetGroup,
};
use super::state::ElbState;
use crate::clock::Timestamp;
use crate::codec::{self, CodecError, OldBytes};
use crate::store::StateMachine;

pub mod v1;

/// The current events a schema-1 event stands for.
pub fn upcast_v1(event: v1::ElbEvent) -> Vec<ElbEvent> {
    vec![match event {
        v1::ElbEvent::Created(entity) => ElbEvent::Created(entity_v1(entity)),
        v1::ElbEvent::Updated { before, after } => {
            ElbEvent::Updated { before: entity_v1(before), after: entity_v1(after) }
        }
        v1::ElbEvent::Deleted(entity) => ElbEvent::Deleted(entity_v1(entity)),
    }]
}

/// The current state a schema-1 snapshot holds: its five sections (load
/// balancers, listeners, rules, target groups, targets), each a byte string
/// of one map, decoded with the frozen types and upcast entity by entity.
pub fn upcast_state_v1(old: &mut OldBytes<'_>) -> Result<ElbState, CodecError> {
    type Sections = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);
    let (lbs, listeners, rules, groups, targets): Sections = old.decode()?;
    fn section<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, CodecError> {
        codec::decode(bytes, bytes.len() as u64)
    }
    let mut entities: Vec<v1::Entity> = Vec::new();
    entities.extend(
        section::<(u64, v1::LoadBalancer)>(&lbs)?.into_iter().map(|(_, v)| v1::Entity::LoadBalancer(Box::new(v))),
    );
    entities.extend(
        section::<(u64, v1::TargetGroup)>(&groups)?.into_iter().map(|(_, v)| v1::Entity::TargetGroup(Box::new(v))),
    );
    entities.extend(
        section::<(u64, v1::Listener)>(&listeners)?.into_iter().map(|(_, v)| v1::Entity::Listener(Box::new(v))),
    );
    entities.extend(section::<(u64, v1::Rule)>(&rules)?.into_iter().map(|(_, v)| v1::Entity::Rule(Box::new(v))));
    for (_, group) in section::<(u64, Vec<(v1::TargetKey, v1::Target)>)>(&targets)? {
        entities.extend(group.into_iter().map(|(_, t)| v1::Entity::Target(Box::new(t))));
    }
    let mut state = ElbState::default();
    for entity in entities {
        state.apply(&ElbEvent::Created(entity_v1(entity)));
    }
    Ok(state)
}

fn entity_v1(entity: v1::Entity) -> Entity {
    match entity {
        v1::Entity::LoadBalancer(lb) => {
            let lb = *lb;
            Entity::LoadBalancer(Arc::new(LoadBalancer {
                id: LoadBalancerId(lb.id),
                account: lb.account,
                name: lb.name,
                load_balancer_type: match lb.load_balancer_type {
                    v1::LoadBalancerType::Application => LoadBalancerType::Application,
                    v1::LoadBalancerType::Network => LoadBalancerType::Network,
                    v1::LoadBalancerType::Gateway => LoadBalancerType::Gateway,
                },
                scheme: match lb.scheme {
                    v1::Scheme::InternetFacing => Scheme::InternetFacing,
                    v1::Scheme::Internal => Scheme::Internal,
                },
                ip_address_type: match lb.ip_address_type {
                    v1::IpAddressType::Ipv4 => IpAddressType::Ipv4,
                    v1::IpAddressType::Dualstack => IpAddressType::Dualstack,
                    v1::IpAddressType::DualstackWithoutPublicIpv4 => IpAddressType::DualstackWithoutPublicIpv4,
                },
                vpc_id: lb.vpc_id,
                subnets: lb
                    .subnets
                    .into_iter()
                    .map(|s| SubnetMapping { subnet_id: s.subnet_id, availability_zone: s.availability_zone })
                    .collect(),
                security_groups: lb.security_groups,
                state: match lb.state {
                    v1::LoadBalancerState::Provisioning => LoadBalancerState::Provisioning,
                    v1::LoadBalancerState::Active => LoadBalancerState::Active,
                    v1::LoadBalancerState::ActiveImpaired => LoadBalancerState::ActiveImpaired,
                    v1::LoadBalancerState::Failed => LoadBalancerState::Failed,
                },
                dns_name: lb.dns_name,
                created: Timestamp(lb.created),
                attributes: lb.attributes,
                tags: lb.tags,
                capacity_units: None,
                ipv4_ipam_pool: None,
            }))
        }
        v1::Entity::Listener(l) => {
            let l = *l;
            let mut certificates = l.certificates.into_iter();
            Entity::Listener(Arc::new(Listener {
                id: ListenerId(l.id),
                load_balancer: LoadBalancerId(l.load_balancer),
                port: l.port,
                protocol: protocol_v1(l.protocol),
                default_certificate: certificates.next(),
                certificates: certificates.collect(),
                ssl_policy: l.ssl_policy,
                default_actions: l.default_actions.into_iter().map(action_v1).collect(),
                tags: l.tags,
                attributes: Default::default(),
                mutual_authentication: None,
            }))
        }
        v1::Entity::Rule(r) => {
            let r = *r;
            Entity::Rule(Arc::new(Rule {
                id: RuleId(r.id),
                listener: ListenerId(r.listener),
                priority: r.priority,
                conditions: r.conditions.into_iter().map(condition_v1).collect(),
                actions: r.actions.into_iter().map(action_v1).collect(),
                tags: r.tags,
            }))
        }
        v1::Entity::TargetGroup(tg) => {
            let tg = *tg;
            let protocol = tg.protocol.map(protocol_v1);
            Entity::TargetGroup(Arc::new(TargetGroup {
                id: TargetGroupId(tg.id),
                account: tg.account,
                name: tg.name,
                protocol,
                protocol_version: matches!(protocol, Some(Protocol::Http | Protocol::Https))
                    .then_some(ProtocolVersion::Http1),
                ip_address_type: TargetGroupIpAddressType::Ipv4,
                port: tg.port,
                vpc_id: tg.vpc_id,
                target_type: match tg.target_type {
                    v1::TargetType::Instance => TargetType::Instance,
                    v1::TargetType::Ip => TargetType::Ip,
                    v1::TargetType::Lambda => TargetType::Lambda,
                    v1::TargetType::Alb => TargetType::Alb,
                },
                health_check: health_check_v1(tg.health_check),
                attributes: tg.attributes,
                tags: tg.tags,
            }))
        }
        v1::Entity::Target(t) => {
            let t = *t;
            Entity::Target(Target {
                key: TargetKey {
                    target_group: TargetGroupId(t.key.target_group),
                    id: t.key.id.into(),
                    port: t.key.port,
                },
                availability_zone: t.availability_zone.map(ZoneName::from),
                health: TargetHealth {
                    state: match t.health.state {
                        v1::HealthState::Initial => HealthState::Initial,
                        v1::HealthState::Healthy => HealthState::Healthy,
                        v1::HealthState::Unhealthy => HealthState::Unhealthy,
                        v1::HealthState::Unused => HealthState::Unused,
                        v1::HealthState::Draining => HealthState::Draining,
                        v1::HealthState::Unavailable => HealthState::Unavailable,
                    },
                    reason: t.health.reason.as_deref().and_then(HealthReason::parse),
                },
                draining_until: None,
            })
        }
    }
}

fn protocol_v1(protocol: v1::Protocol) -> Protocol {
    match protocol {
        v1::Protocol::Http => Protocol::Http,
        v1::Protocol::Https => Protocol::Https,
        v1::Protocol::Tcp => Protocol::Tcp,
        v1::Protocol::Tls => Protocol::Tls,
        v1::Protocol::Udp => Protocol::Udp,
        v1::Protocol::TcpUdp => Protocol::TcpUdp,
        v1::Protocol::Geneve => Protocol::Geneve,
    }
}

fn action_v1(action: v1::Action) -> Action {
    match action {
        v1::Action::Forward { target_groups } => Action::Forward {
            target_groups: target_groups
                .into_iter()
                .map(|w| WeightedTargetGroup { target_group: TargetGroupId(w.target_group), weight: w.weight })
                .collect(),
        },
        v1::Action::Redirect { protocol, host, port, path, status_code } => {
            Action::Redirect { protocol, host, port, path, status_code }
        }
        v1::Action::FixedResponse { status_code, content_type, body } => {
            Action::FixedResponse { status_code, content_type, body }
        }
    }
}

fn condition_v1(condition: v1::Condition) -> Condition {
    match condition {
        v1::Condition::HostHeader(v) => Condition::HostHeader(v),
        v1::Condition::PathPattern(v) => Condition::PathPattern(v),
        v1::Condition::HttpHeader { name, values } => Condition::HttpHeader { name, values },
        v1::Condition::HttpRequestMethod(v) => Condition::HttpRequestMethod(v),
        v1::Condition::QueryString(pairs) => Condition::QueryString(pairs),
        v1::Condition::SourceIp(v) => Condition::SourceIp(v),
    }
}

fn health_check_v1(check: v1::HealthCheck) -> HealthCheck {
    HealthCheck {
        enabled: check.enabled,
        protocol: protocol_v1(check.protocol),
        port: check.port,
        path: check.path,
        interval_seconds: check.interval_seconds,
        timeout_seconds: check.timeout_seconds,
        healthy_threshold: check.healthy_threshold,
        unhealthy_threshold: check.unhealthy_threshold,
        matcher: check.matcher,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::codec::{self, OldBytes};
    use crate::wal::{decode_frame, SEGMENT_HEADER_BYTES};

    /// Every event of every record of the v1 fixture decodes with the frozen
    /// types (all of its bytes) and upcasts one to one, with the effects the
    /// module documents: every schema-1 field kept, the new ones as said.
    fn check_upcast(old: v1::ElbEvent, new: &ElbEvent) {
        let entities = match (old, new) {
            (v1::ElbEvent::Created(o), ElbEvent::Created(n)) | (v1::ElbEvent::Deleted(o), ElbEvent::Deleted(n)) => {
                vec![(o, n)]
            }
            (v1::ElbEvent::Updated { before, after }, ElbEvent::Updated { before: b, after: a }) => {
                vec![(before, b), (after, a)]
            }
            (old, new) => panic!("{old:?} became {new:?}"),
        };
        for (old, new) in entities {
            match (old, new) {
                (v1::Entity::LoadBalancer(o), Entity::LoadBalancer(n)) => {
                    assert_eq!(
                        (o.id, &o.name, &o.dns_name, &o.attributes),
                        (n.id.0, &n.name, &n.dns_name, &n.attributes)
                    );
                    assert_eq!((n.capacity_units, &n.ipv4_ipam_pool), (None, &None));
                }
                (v1::Entity::Listener(o), Entity::Listener(n)) => {
                    assert_eq!(o.certificates.first(), n.default_certificate.as_ref());
                    assert_eq!(o.certificates.get(1..).unwrap_or_default(), &n.certificates[..]);
                    assert_eq!((o.port, &o.ssl_policy, &o.tags), (n.port, &n.ssl_policy, &n.tags));
                    assert!(n.attributes.is_empty() && n.mutual_authentication.is_none());
                }
                (v1::Entity::TargetGroup(o), Entity::TargetGroup(n)) => {
                    assert_eq!((o.id, &o.name, o.port, &o.attributes), (n.id.0, &n.name, n.port, &n.attributes));
                    let http = matches!(o.protocol, Some(v1::Protocol::Http | v1::Protocol::Https));
                    assert_eq!(n.protocol_version, http.then_some(ProtocolVersion::Http1));
                    assert_eq!(n.ip_address_type, TargetGroupIpAddressType::Ipv4);
                }
                (v1::Entity::Target(o), Entity::Target(n)) => {
                    assert_eq!((&*o.key.id, o.key.port), (&*n.key.id, n.key.port));
                    assert_eq!(o.health.reason.as_deref().and_then(HealthReason::parse), n.health.reason);
                    assert_eq!(n.draining_until, None);
                }
                (v1::Entity::Rule(o), Entity::Rule(n)) => {
                    assert_eq!((o.id, o.priority, &o.tags), (n.id.0, n.priority, &n.tags));
                }
                (old, new) => panic!("{old:?} became {new:?}"),
            }
        }
    }

    #[test]
    fn the_frozen_v1_types_read_every_record_of_the_v1_fixture() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1/store");
        let mut segments: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        segments.sort();
        let (mut records, mut events) = (0, 0);
        for segment in segments {
            let bytes = std::fs::read(&segment).unwrap();
            let mut offset = SEGMENT_HEADER_BYTES;
            while offset < bytes.len() {
                let frame = decode_frame(&bytes[offset..], u32::MAX).unwrap();
                offset += frame.encoded_bytes();
                let (version, body) = frame.payload.split_first().unwrap();
                assert_eq!(*version, 1);
                let mut old = OldBytes::new(body, u64::MAX);
                // The metadata as layout 1 holds it (docs/FORMAT.md).
                type Meta = (String, String, Option<String>, Option<String>);
                let meta: Meta = old.decode().unwrap();
                let count: u64 = old.decode().unwrap();
                let upcast: Vec<ElbEvent> =
                    (0..count).flat_map(|_| upcast_v1(old.decode::<v1::ElbEvent>().unwrap())).collect();
                assert_eq!(old.remaining(), 0);
                // The documented effects of the upcast (see the module's docs).
                let (old_meta, old_events): (Meta, Vec<v1::ElbEvent>) = codec::decode(body, u64::MAX).unwrap();
                assert_eq!(old_meta, meta);
                for (old, new) in old_events.into_iter().zip(&upcast) {
                    check_upcast(old, new);
                }
                records += 1;
                events += count;
            }
        }
        assert_eq!((records, events), (201, 5060));
    }
}
