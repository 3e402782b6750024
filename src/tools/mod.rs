//! Operator tools behind the example binaries (`examples/pitr.rs`,
//! `examples/incident.rs`, `examples/workload.rs`): argument parsing, JSON output and the verbs
//! themselves, kept in the library so tests can drive them in-process.

mod args;
pub mod incident;
mod json;
pub mod pitr;
pub mod timeline;
pub mod workload;

use std::path::Path;

pub use args::Args;
pub use json::Json;

use crate::elb::{Counts, ElbStore, Entity, EntityKind, Settings, Summary};
use crate::store::{OpenMode, Options};

/// What a verb produced: its JSON document, its text and its exit code.
#[derive(Debug)]
pub struct Exit {
    /// The document printed with `--json`.
    pub json: Json,
    /// The text printed otherwise.
    pub text: String,
    /// The process exit code.
    pub code: i32,
}

/// Opens a store read-only: no lock, no change to any byte.
pub fn open_read(dir: &Path) -> Result<ElbStore, String> {
    ElbStore::open(dir, Options::default().mode(OpenMode::ReadOnly), Settings::default()).map_err(|e| e.to_string())
}

/// Counts per kind as a JSON object.
pub fn counts_json(counts: &Counts) -> Json {
    kind_counts_json(EntityKind::ALL.iter().map(|k| (*k, counts.of(*k))))
}

/// `{"load_balancers": n, ...}` from counts per kind.
pub fn kind_counts_json(counts: impl Iterator<Item = (EntityKind, usize)>) -> Json {
    Json::object(counts.map(|(kind, n)| (kind.plural(), Json::from(n))))
}

/// A transaction summary as JSON: created, changed, deleted per kind.
pub fn summary_json(summary: &Summary) -> Json {
    let per = |map: &std::collections::BTreeMap<EntityKind, usize>| {
        kind_counts_json(EntityKind::ALL.iter().map(|k| (*k, map.get(k).copied().unwrap_or(0))))
    };
    Json::object([
        ("created", per(&summary.created)),
        ("changed", per(&summary.changed)),
        ("deleted", per(&summary.deleted)),
    ])
}

/// The main fields of a resource as JSON.
pub fn entity_json(entity: &Entity) -> Json {
    let debug = |v: &dyn std::fmt::Debug| Json::str(format!("{v:?}"));
    let mut fields = vec![
        ("kind", Json::str(entity.key().kind().plural())),
        ("key", Json::str(entity.key().to_string())),
        ("label", Json::str(entity.label())),
    ];
    match entity {
        Entity::LoadBalancer(lb) => fields.extend([
            ("name", Json::str(&lb.name)),
            ("account", Json::str(&lb.account)),
            ("type", Json::str(lb.load_balancer_type.as_str())),
            ("scheme", Json::str(lb.scheme.as_str())),
            ("state", Json::str(lb.state.as_str())),
            ("dns_name", Json::str(&lb.dns_name)),
            ("created", Json::str(lb.created.to_string())),
            ("attributes", debug(&lb.attributes)),
            ("tags", debug(&lb.tags)),
        ]),
        Entity::Listener(l) => fields.extend([
            ("port", Json::from(u64::from(l.port))),
            ("protocol", Json::str(l.protocol.as_str())),
            ("default_actions", debug(&l.default_actions)),
        ]),
        Entity::Rule(r) => fields.extend([
            ("priority", Json::from(u64::from(r.priority))),
            ("conditions", debug(&r.conditions)),
            ("actions", debug(&r.actions)),
        ]),
        Entity::TargetGroup(tg) => fields.extend([
            ("name", Json::str(&tg.name)),
            ("target_type", Json::str(tg.target_type.as_str())),
            ("health_check", debug(&tg.health_check)),
        ]),
        Entity::Target(t) => fields.extend([
            ("id", Json::str(&*t.key.id)),
            ("port", Json::from(u64::from(t.key.port))),
            ("health", Json::str(t.health.state.as_str())),
        ]),
        Entity::TrustStore(ts) => fields.extend([
            ("name", Json::str(&ts.name)),
            ("account", Json::str(&ts.account)),
            ("revocations", Json::from(ts.revocations.len() as u64)),
        ]),
    }
    Json::object(fields)
}
