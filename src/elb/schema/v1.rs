//! Schema version 1 of the ELB model, frozen: the types every record and
//! snapshot of schema 1 was written with, for upcasters to decode old bytes.
//! Released with `tests/fixtures/v1/`; never edited (docs/FORMAT.md, "How to
//! change the model"). Field and variant order is the encoding; names are
//! not, and neither are the types' methods, which these do not have. A `Box`
//! encodes as what it holds.

// Frozen types are read field by field by the upcaster; they carry no docs of
// their own beyond the model's at the time.
#![allow(missing_docs)]

use std::collections::BTreeMap;

use serde::Deserialize;

pub type Attributes = BTreeMap<String, String>;
pub type Tags = BTreeMap<String, String>;

/// Ids: `seq << 16 | n` of the creating transaction.
pub type Id = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum LoadBalancerType {
    Application,
    Network,
    Gateway,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Scheme {
    InternetFacing,
    Internal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum IpAddressType {
    Ipv4,
    Dualstack,
    DualstackWithoutPublicIpv4,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum LoadBalancerState {
    Provisioning,
    Active,
    ActiveImpaired,
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    Http,
    Https,
    Tcp,
    Tls,
    Udp,
    TcpUdp,
    Geneve,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum TargetType {
    Instance,
    Ip,
    Lambda,
    Alb,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum HealthState {
    Initial,
    Healthy,
    Unhealthy,
    Unused,
    Draining,
    Unavailable,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SubnetMapping {
    pub subnet_id: String,
    pub availability_zone: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct LoadBalancer {
    pub id: Id,
    pub account: String,
    pub name: String,
    pub load_balancer_type: LoadBalancerType,
    pub scheme: Scheme,
    pub ip_address_type: IpAddressType,
    pub vpc_id: String,
    pub subnets: Vec<SubnetMapping>,
    pub security_groups: Vec<String>,
    pub state: LoadBalancerState,
    pub dns_name: String,
    /// Nanoseconds since the Unix epoch.
    pub created: u64,
    pub attributes: Attributes,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct WeightedTargetGroup {
    pub target_group: Id,
    pub weight: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum Action {
    Forward {
        target_groups: Vec<WeightedTargetGroup>,
    },
    Redirect {
        protocol: Option<String>,
        host: Option<String>,
        port: Option<u16>,
        path: Option<String>,
        status_code: u16,
    },
    FixedResponse {
        status_code: u16,
        content_type: Option<String>,
        body: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum Condition {
    HostHeader(Vec<String>),
    PathPattern(Vec<String>),
    HttpHeader { name: String, values: Vec<String> },
    HttpRequestMethod(Vec<String>),
    QueryString(Vec<(Option<String>, String)>),
    SourceIp(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Listener {
    pub id: Id,
    pub load_balancer: Id,
    pub port: u16,
    pub protocol: Protocol,
    pub certificates: Vec<String>,
    pub ssl_policy: Option<String>,
    pub default_actions: Vec<Action>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Rule {
    pub id: Id,
    pub listener: Id,
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct HealthCheck {
    pub enabled: bool,
    pub protocol: Protocol,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    pub matcher: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TargetGroup {
    pub id: Id,
    pub account: String,
    pub name: String,
    pub protocol: Option<Protocol>,
    pub port: Option<u16>,
    pub vpc_id: Option<String>,
    pub target_type: TargetType,
    pub health_check: HealthCheck,
    pub attributes: Attributes,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TargetHealth {
    pub state: HealthState,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TargetKey {
    pub target_group: Id,
    pub id: String,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Target {
    pub key: TargetKey,
    pub availability_zone: Option<String>,
    pub health: TargetHealth,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum Entity {
    LoadBalancer(Box<LoadBalancer>),
    Listener(Box<Listener>),
    Rule(Box<Rule>),
    TargetGroup(Box<TargetGroup>),
    Target(Box<Target>),
}

/// What every schema-1 record's events are.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum ElbEvent {
    Created(Entity),
    Updated { before: Entity, after: Entity },
    Deleted(Entity),
}
