//! The typed documents the tools print with `--json`, in one vocabulary:
//! resources are named by `kind`, `id` (the same text as the ids' `Display`,
//! e.g. `lb-0000000000010000`) and `arn`; changes are `created`, `modified`
//! and `deleted`; counts are per kind, keyed by the kind's plural
//! (`load_balancers`, `targets`, ...); times are RFC 3339 text in UTC;
//! durations end in `_ms`. Values are nested JSON, never Rust `Debug` text.
//! `docs/CLI.md` lists every key; a test checks that it does.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::elb::{arn, Counts, ElbStore, Entity, EntityKey, EntityKind, Summary};
use crate::store::{Transaction, TxnMeta};

/// A kind's singular name, e.g. `load_balancer`.
pub fn kind_name(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::LoadBalancer => "load_balancer",
        EntityKind::Listener => "listener",
        EntityKind::Rule => "rule",
        EntityKind::TargetGroup => "target_group",
        EntityKind::Target => "target",
        EntityKind::TrustStore => "trust_store",
    }
}

/// A kind from its singular or plural name (`load_balancer`, `load-balancers`, `lb`, ...).
pub fn parse_kind(text: &str) -> Option<EntityKind> {
    let text = text.to_ascii_lowercase().replace('-', "_");
    EntityKind::ALL.into_iter().find(|k| text == kind_name(*k) || text == k.plural()).or(match text.as_str() {
        "lb" | "lbs" => Some(EntityKind::LoadBalancer),
        "tg" | "tgs" => Some(EntityKind::TargetGroup),
        _ => None,
    })
}

/// Counts per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    /// Load balancers.
    pub load_balancers: usize,
    /// Listeners.
    pub listeners: usize,
    /// Listener rules.
    pub rules: usize,
    /// Target groups.
    pub target_groups: usize,
    /// Registered targets.
    pub targets: usize,
    /// Trust stores.
    pub trust_stores: usize,
}

impl KindCounts {
    /// From the state's counts.
    pub fn of(counts: &Counts) -> KindCounts {
        KindCounts::from_fn(|kind| counts.of(kind))
    }

    /// From a count per kind (absent kinds count zero).
    pub fn from_map(map: &BTreeMap<EntityKind, usize>) -> KindCounts {
        KindCounts::from_fn(|kind| map.get(&kind).copied().unwrap_or(0))
    }

    /// From a function of the kind.
    pub fn from_fn(f: impl Fn(EntityKind) -> usize) -> KindCounts {
        KindCounts {
            load_balancers: f(EntityKind::LoadBalancer),
            listeners: f(EntityKind::Listener),
            rules: f(EntityKind::Rule),
            target_groups: f(EntityKind::TargetGroup),
            targets: f(EntityKind::Target),
            trust_stores: f(EntityKind::TrustStore),
        }
    }

    /// One kind's count.
    pub fn of_kind(&self, kind: EntityKind) -> usize {
        match kind {
            EntityKind::LoadBalancer => self.load_balancers,
            EntityKind::Listener => self.listeners,
            EntityKind::Rule => self.rules,
            EntityKind::TargetGroup => self.target_groups,
            EntityKind::Target => self.targets,
            EntityKind::TrustStore => self.trust_stores,
        }
    }

    /// Every resource, whatever its kind.
    pub fn resources(&self) -> usize {
        EntityKind::ALL.iter().map(|k| self.of_kind(*k)).sum()
    }

    /// "3 load balancers, 12 listeners, ..." leaving out kinds with none
    /// (or "nothing").
    pub fn words(&self) -> String {
        let parts: Vec<String> = EntityKind::ALL
            .iter()
            .filter(|k| self.of_kind(**k) > 0)
            .map(|k| format!("{} {}", self.of_kind(*k), k.plural().replace('_', " ")))
            .collect();
        if parts.is_empty() {
            "nothing".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// Created, modified and deleted resources per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// Resources created.
    pub created: KindCounts,
    /// Resources modified.
    pub modified: KindCounts,
    /// Resources deleted.
    pub deleted: KindCounts,
}

impl Changes {
    /// A transaction's changes.
    pub fn of(summary: &Summary) -> Changes {
        Changes {
            created: KindCounts::from_map(&summary.created),
            modified: KindCounts::from_map(&summary.changed),
            deleted: KindCounts::from_map(&summary.deleted),
        }
    }
}

/// "1 segment", "2 segments".
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A time for text columns: RFC 3339 in UTC to the millisecond.
pub fn time_short(time: &str) -> String {
    match time.split_once('.') {
        Some((whole, fraction)) => format!("{whole}.{:0<3.3}Z", fraction.trim_end_matches('Z')),
        None => time.to_owned(),
    }
}

/// RFC 3339 text, or `None` for the zero time (an empty store).
pub fn time_text(time: Timestamp) -> Option<String> {
    (time.as_nanos() != 0).then(|| time.to_string())
}

/// A transaction: who, when and why.
#[derive(Clone, Debug, Serialize)]
pub struct TxnRef {
    /// Its sequence number.
    pub seq: u64,
    /// Its commit time.
    pub time: Option<String>,
    /// Who made it.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// The change ticket, if any.
    pub ticket: Option<String>,
    /// Who approved it, if anyone.
    pub approved_by: Option<String>,
    /// The transactions it reverts, if it is a revert.
    pub reverts: Vec<u64>,
}

impl TxnRef {
    /// From a transaction's sequence number, time and metadata.
    pub fn new(seq: u64, time: Timestamp, meta: &TxnMeta) -> TxnRef {
        TxnRef {
            seq,
            time: time_text(time),
            actor: meta.actor.clone(),
            reason: meta.reason.clone(),
            ticket: meta.ticket.clone(),
            approved_by: meta.approved_by.clone(),
            reverts: meta.reverts.clone(),
        }
    }

    /// From a transaction.
    pub fn of<E>(txn: &Transaction<E>) -> TxnRef {
        TxnRef::new(txn.seq, txn.time, &txn.meta)
    }

    /// "transaction 7 by maint:cleanup at T: stale [CHG-7, approved by lead:b]",
    /// ending "(a revert of 5, 6)" for a revert.
    pub fn words(&self) -> String {
        format!(
            "transaction {} by {} at {}: {}{}{}",
            self.seq,
            self.actor,
            self.time.as_deref().unwrap_or("-"),
            self.reason,
            self.ticket_words(),
            self.revert_words()
        )
    }

    /// " (a revert of 5, 6)", or nothing.
    pub fn revert_words(&self) -> String {
        if self.reverts.is_empty() {
            return String::new();
        }
        let seqs: Vec<String> = self.reverts.iter().map(u64::to_string).collect();
        format!(" (a revert of {})", seqs.join(", "))
    }

    /// " [CHG-7, approved by lead:b]", " [CHG-7]", or nothing.
    pub fn ticket_words(&self) -> String {
        match (&self.ticket, &self.approved_by) {
            (Some(t), Some(a)) => format!(" [{t}, approved by {a}]"),
            (Some(t), None) => format!(" [{t}]"),
            (None, Some(a)) => format!(" [approved by {a}]"),
            (None, None) => String::new(),
        }
    }
}

/// A resource named: kind, id, ARN and a label (its name, or port, ...).
#[derive(Clone, Debug, Serialize)]
pub struct ResourceRef {
    /// Its kind, singular (`load_balancer`).
    pub kind: &'static str,
    /// Its id.
    pub id: String,
    /// Its ARN, for kinds that have one and a store that knows its region.
    pub arn: Option<String>,
    /// Its name, or what names it within its parent.
    pub label: String,
}

impl ResourceRef {
    /// Names `key`, labelled `label`.
    pub fn new(store: &ElbStore, key: &EntityKey, label: String) -> ResourceRef {
        ResourceRef { kind: kind_name(key.kind()), id: key.to_string(), arn: store.arn(key), label }
    }

    /// Names `entity`; a deleted load balancer, target group or trust store
    /// gets the ARN it had.
    pub fn of(store: &ElbStore, entity: &Entity) -> ResourceRef {
        let mut named = ResourceRef::new(store, &entity.key(), entity.label());
        if named.arn.is_none() {
            named.arn = store.region().and_then(|region| match entity {
                Entity::LoadBalancer(lb) => {
                    Some(arn::load_balancer(region, &lb.account, lb.load_balancer_type, &lb.name, lb.id))
                }
                Entity::TargetGroup(tg) => Some(arn::target_group(region, &tg.account, &tg.name, tg.id)),
                Entity::TrustStore(ts) => Some(arn::trust_store(region, &ts.account, &ts.name, ts.id)),
                _ => None,
            });
        }
        named
    }

    /// "load_balancer lb-0000000000010000 web-7", without repeating a label
    /// the id already holds.
    pub fn words(&self) -> String {
        if self.id.contains(&self.label) {
            format!("{} {}", self.kind, self.id)
        } else {
            format!("{} {} {}", self.kind, self.id, self.label)
        }
    }
}

/// A resource with every field, as nested JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Resource {
    /// What it is.
    #[serde(flatten)]
    pub name: ResourceRef,
    /// Its fields: ids as their text, times as RFC 3339.
    pub fields: Value,
}

impl Resource {
    /// `entity` with its fields.
    pub fn of(store: &ElbStore, entity: &Entity) -> Resource {
        Resource { name: ResourceRef::of(store, entity), fields: fields(entity) }
    }
}

/// Keys whose whole-number values are ids of this prefix.
const ID_KEYS: [(&str, &str); 5] = [
    ("load_balancer", "lb"),
    ("listener", "listener"),
    ("target_group", "tg"),
    ("trust_store", "ts"),
    ("rule", "rule"),
];

/// Keys whose whole-number values are times.
const TIME_KEYS: [&str; 2] = ["created", "draining_until"];

/// An entity's fields as JSON: the serde form of the model, with ids shown
/// as their text and times as RFC 3339.
pub fn fields(entity: &Entity) -> Value {
    let (value, id) = match entity {
        Entity::LoadBalancer(v) => (serde_json::to_value(&**v), Some(v.id.to_string())),
        Entity::Listener(v) => (serde_json::to_value(&**v), Some(v.id.to_string())),
        Entity::Rule(v) => (serde_json::to_value(&**v), Some(v.id.to_string())),
        Entity::TargetGroup(v) => (serde_json::to_value(&**v), Some(v.id.to_string())),
        Entity::Target(v) => (serde_json::to_value(v), None),
        Entity::TrustStore(v) => (serde_json::to_value(&**v), Some(v.id.to_string())),
    };
    // The model's types serialize to JSON without fail (string keys, no
    // non-finite floats); null marks the impossible.
    let mut value = value.unwrap_or(Value::Null);
    readable(&mut value);
    if let Value::Object(map) = &mut value {
        match id {
            Some(id) => {
                map.insert("id".to_owned(), Value::String(id));
            }
            // A target's key (target group, id, port...) is its name: its parts go up a level.
            None => {
                if let Some(Value::Object(key)) = map.remove("key") {
                    map.extend(key);
                }
            }
        }
    }
    value
}

/// The API's spelling of an enum value the model serializes by its Rust
/// name (`InternetFacing` -> `internet-facing`), for the keys that hold one.
fn api_spelling(key: &str, value: &str) -> Option<&'static str> {
    use crate::elb::{
        HealthReason, HealthState, IpAddressType, LoadBalancerState, LoadBalancerType, MutualAuthenticationMode,
        Protocol, ProtocolVersion, Scheme, TargetGroupIpAddressType, TargetType,
    };
    fn find<T: Copy + std::fmt::Debug>(all: &[T], value: &str, name: fn(T) -> &'static str) -> Option<&'static str> {
        all.iter().find(|v| format!("{v:?}") == value).map(|v| name(*v))
    }
    match key {
        "load_balancer_type" => find(LoadBalancerType::ALL, value, LoadBalancerType::as_str),
        "scheme" => find(Scheme::ALL, value, Scheme::as_str),
        "ip_address_type" => find(IpAddressType::ALL, value, IpAddressType::as_str)
            .or_else(|| find(TargetGroupIpAddressType::ALL, value, TargetGroupIpAddressType::as_str)),
        "state" => find(LoadBalancerState::ALL, value, LoadBalancerState::as_str)
            .or_else(|| find(HealthState::ALL, value, HealthState::as_str)),
        "reason" => find(HealthReason::ALL, value, HealthReason::as_str),
        "protocol" => find(Protocol::ALL, value, Protocol::as_str),
        "protocol_version" => find(ProtocolVersion::ALL, value, ProtocolVersion::as_str),
        "target_type" => find(TargetType::ALL, value, TargetType::as_str),
        "mode" => find(MutualAuthenticationMode::ALL, value, MutualAuthenticationMode::as_str),
        _ => None,
    }
}

fn readable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if let Some(spelled) = v.as_str().and_then(|text| api_spelling(key, text)) {
                    *v = Value::String(spelled.to_owned());
                    continue;
                }
                if let Some(n) = v.as_u64() {
                    if let Some((_, prefix)) = ID_KEYS.iter().find(|(k, _)| k == key) {
                        *v = Value::String(format!("{prefix}-{n:016x}"));
                        continue;
                    }
                    if TIME_KEYS.contains(&key.as_str()) {
                        *v = Value::String(Timestamp(n).to_string());
                        continue;
                    }
                }
                readable(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(readable),
        _ => {}
    }
}

/// One field's values at two points.
#[derive(Clone, Debug, Serialize)]
pub struct FieldChange {
    /// The field.
    pub field: String,
    /// Its value before (null when it had none).
    pub before: Value,
    /// Its value after.
    pub after: Value,
}

/// The fields that differ between two values of a resource.
pub fn field_changes(before: &Entity, after: &Entity) -> Vec<FieldChange> {
    let (Value::Object(b), Value::Object(a)) = (fields(before), fields(after)) else { return Vec::new() };
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| FieldChange {
            field: k.clone(),
            before: b.get(k).cloned().unwrap_or(Value::Null),
            after: a.get(k).cloned().unwrap_or(Value::Null),
        })
        .collect()
}

/// A field's value in a few words for text output: strings bare, the rest as compact JSON.
pub fn value_words(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => {
            let text = other.to_string();
            if text.len() > 120 {
                format!("{}...", &text[..text.char_indices().nth(117).map_or(text.len(), |(i, _)| i)])
            } else {
                text
            }
        }
    }
}

/// An empty JSON object.
pub fn empty_object() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elb::fleet;
    use crate::elb::{ElbState, EntityKind};
    use crate::store::{StateMachine, TxnContext};

    fn one_fleet_state() -> ElbState {
        let mut state = ElbState::default();
        let ctx = TxnContext { seq: 1, time: Timestamp(1_700_000_000_000_000_000) };
        let commands = fleet::reference_commands(0, 1);
        let settings = crate::elb::Settings::in_region("us-east-1");
        let (events, _) = crate::elb::plan(&state, &commands, &ctx, &settings).expect("the reference fleet plans");
        for event in &events {
            state.apply(event);
        }
        state
    }

    #[test]
    fn fields_show_ids_as_text_times_as_rfc3339_and_nest_values() {
        let state = one_fleet_state();
        let lb = state.load_balancers().next().expect("one load balancer").clone();
        let value = fields(&Entity::LoadBalancer(lb.clone()));
        assert_eq!(value["id"], Value::String(lb.id.to_string()));
        assert!(value["created"].as_str().is_some_and(|t| t.ends_with('Z')), "{value}");
        assert!(value["attributes"].is_object() || value["attributes"].is_array(), "{value}");
        let listener = state.listeners_of(lb.id).next().expect("a listener").clone();
        let value = fields(&Entity::Listener(listener));
        assert!(value["load_balancer"].as_str().is_some_and(|t| t.starts_with("lb-")), "{value}");
        let text = value.to_string();
        assert!(text.contains("\"target_group\":\"tg-"), "forward actions name target groups by id: {text}");
        assert!(!text.contains("Some(") && !text.contains("Id("), "{text}");
        let lb_fields = fields(&Entity::LoadBalancer(lb.clone()));
        assert_eq!(lb_fields["scheme"], lb.scheme.as_str(), "the API's spelling: {lb_fields}");
        assert!(lb_fields["scheme"] == "internal" || lb_fields["scheme"] == "internet-facing");
        assert_eq!(lb_fields["load_balancer_type"], "application");
    }

    #[test]
    fn kinds_parse_by_singular_plural_and_short_names() {
        for kind in EntityKind::ALL {
            assert_eq!(parse_kind(kind_name(kind)), Some(kind));
            assert_eq!(parse_kind(kind.plural()), Some(kind));
        }
        assert_eq!(parse_kind("load-balancers"), Some(EntityKind::LoadBalancer));
        assert_eq!(parse_kind("lb"), Some(EntityKind::LoadBalancer));
        assert_eq!(parse_kind("widgets"), None);
    }
}
