//! The ELB resources, modelled on the Elastic Load Balancing v2 API.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::ids::{ListenerId, LoadBalancerId, RuleId, TargetGroupId, TargetKey, TrustStoreId, ZoneName};
use crate::clock::Timestamp;

/// Key/value attributes, e.g. `deletion_protection.enabled = true`.
pub type Attributes = BTreeMap<String, String>;
/// Key/value tags.
pub type Tags = BTreeMap<String, String>;

/// The attribute that protects a load balancer from deletion.
pub const DELETION_PROTECTION: &str = "deletion_protection.enabled";

macro_rules! api_enum {
    ($(#[$doc:meta])* $name:ident default $default:ident { $($body:tt)* }) => {
        api_enum!($(#[$doc])* $name { $($body)* });

        impl Default for $name {
            fn default() -> $name {
                $name::$default
            }
        }
    };
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name the API uses.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the name the API uses.
            pub fn parse(text: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(text))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

api_enum!(
    /// The kind of load balancer.
    LoadBalancerType default Application {
        /// Layer 7 (HTTP, HTTPS).
        Application => "application",
        /// Layer 4 (TCP, TLS, UDP, TCP_UDP).
        Network => "network",
        /// Layer 3 (GENEVE), for virtual appliances.
        Gateway => "gateway",
    }
);

api_enum!(
    /// Whether a load balancer is reachable from the internet.
    Scheme default InternetFacing {
        /// Public.
        InternetFacing => "internet-facing",
        /// Private to the VPC.
        Internal => "internal",
    }
);

api_enum!(
    /// The IP address types a load balancer accepts.
    IpAddressType default Ipv4 {
        /// IPv4 only.
        Ipv4 => "ipv4",
        /// IPv4 and IPv6.
        Dualstack => "dualstack",
        /// IPv6 public, IPv4 private (internet-facing application load balancers only).
        DualstackWithoutPublicIpv4 => "dualstack-without-public-ipv4",
    }
);

api_enum!(
    /// Where a load balancer is in its life.
    LoadBalancerState {
        /// Being set up.
        Provisioning => "provisioning",
        /// Routing traffic.
        Active => "active",
        /// Routing traffic without enough capacity.
        ActiveImpaired => "active_impaired",
        /// Could not be set up.
        Failed => "failed",
    }
);

api_enum!(
    /// A listener or target group protocol.
    Protocol {
        /// HTTP.
        Http => "HTTP",
        /// HTTP over TLS.
        Https => "HTTPS",
        /// TCP.
        Tcp => "TCP",
        /// TCP with TLS termination.
        Tls => "TLS",
        /// UDP.
        Udp => "UDP",
        /// TCP and UDP on the same port.
        TcpUdp => "TCP_UDP",
        /// GENEVE encapsulation (gateway load balancers).
        Geneve => "GENEVE",
        /// QUIC passthrough (network load balancers).
        Quic => "QUIC",
        /// TCP and QUIC on the same port (network load balancers).
        TcpQuic => "TCP_QUIC",
    }
);

api_enum!(
    /// The protocol version of an HTTP or HTTPS target group (`ProtocolVersion`).
    ProtocolVersion {
        /// HTTP/1.1 (the default).
        Http1 => "HTTP1",
        /// HTTP/2.
        Http2 => "HTTP2",
        /// gRPC.
        Grpc => "GRPC",
    }
);

api_enum!(
    /// The IP address type of a target group (`TargetGroupIpAddressTypeEnum`).
    TargetGroupIpAddressType default Ipv4 {
        /// IPv4 targets (the default).
        Ipv4 => "ipv4",
        /// IPv6 targets.
        Ipv6 => "ipv6",
    }
);

api_enum!(
    /// How a listener handles client certificates (`MutualAuthenticationAttributes.Mode`).
    MutualAuthenticationMode default Off {
        /// No client certificates (the default).
        Off => "off",
        /// Client certificates are passed to the targets unchecked.
        Passthrough => "passthrough",
        /// Client certificates are verified against a trust store.
        Verify => "verify",
    }
);

api_enum!(
    /// Why a target is in its health state (`TargetHealthReasonEnum`).
    HealthReason {
        /// Initial: being registered.
        RegistrationInProgress => "Elb.RegistrationInProgress",
        /// Initial: the first health checks are running.
        InitialHealthChecking => "Elb.InitialHealthChecking",
        /// Unhealthy: a health check returned an unexpected code.
        ResponseCodeMismatch => "Target.ResponseCodeMismatch",
        /// Unhealthy: health checks timed out.
        Timeout => "Target.Timeout",
        /// Unhealthy: the connection failed or the response was malformed.
        FailedHealthChecks => "Target.FailedHealthChecks",
        /// Unused: not registered.
        NotRegistered => "Target.NotRegistered",
        /// Unused: no load balancer uses the group, or the zone is not enabled.
        NotInUse => "Target.NotInUse",
        /// Unused: the instance is stopped or terminated.
        InvalidState => "Target.InvalidState",
        /// Unused: the IP address is reserved for the load balancer.
        IpUnusable => "Target.IpUnusable",
        /// Draining: the deregistration delay has not expired.
        DeregistrationInProgress => "Target.DeregistrationInProgress",
        /// Unavailable: health checks are disabled.
        HealthCheckDisabled => "Target.HealthCheckDisabled",
        /// Unhealthy or unavailable: an internal error.
        InternalError => "Elb.InternalError",
    }
);

api_enum!(
    /// What a target group's targets are.
    TargetType default Instance {
        /// EC2 instances by id.
        Instance => "instance",
        /// IP addresses.
        Ip => "ip",
        /// One Lambda function.
        Lambda => "lambda",
        /// An application load balancer.
        Alb => "alb",
    }
);

api_enum!(
    /// A target's health as the health-check fleet sees it.
    HealthState {
        /// Registered, not yet checked.
        Initial => "initial",
        /// Passing health checks.
        Healthy => "healthy",
        /// Failing health checks.
        Unhealthy => "unhealthy",
        /// Not used by any load balancer, or in an unused zone.
        Unused => "unused",
        /// Being deregistered, connections draining.
        Draining => "draining",
        /// Health checks are disabled.
        Unavailable => "unavailable",
        /// Unhealthy, its connections draining before it is marked unhealthy.
        UnhealthyDraining => "unhealthy.draining",
    }
);

impl HealthState {
    /// The reasons the API gives with this state (`TargetHealth.Reason`); an
    /// empty list means the state carries no reason.
    pub fn reasons(self) -> &'static [HealthReason] {
        use HealthReason::*;
        match self {
            HealthState::Initial => &[RegistrationInProgress, InitialHealthChecking],
            HealthState::Healthy => &[],
            HealthState::Unhealthy | HealthState::UnhealthyDraining => {
                &[ResponseCodeMismatch, Timeout, FailedHealthChecks, InternalError]
            }
            HealthState::Unused => &[NotRegistered, NotInUse, InvalidState, IpUnusable],
            HealthState::Draining => &[DeregistrationInProgress],
            HealthState::Unavailable => &[HealthCheckDisabled, InternalError],
        }
    }
}

/// A subnet a load balancer has a node in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SubnetMapping {
    /// The subnet id.
    pub subnet_id: String,
    /// Its availability zone.
    pub availability_zone: String,
}

impl SubnetMapping {
    /// A subnet in a zone.
    pub fn new(subnet_id: impl Into<String>, availability_zone: impl Into<String>) -> SubnetMapping {
        SubnetMapping { subnet_id: subnet_id.into(), availability_zone: availability_zone.into() }
    }
}

/// A load balancer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancer {
    /// Its id.
    pub id: LoadBalancerId,
    /// The owning account.
    pub account: String,
    /// Its name, unique per account.
    pub name: String,
    /// Application, network or gateway.
    pub load_balancer_type: LoadBalancerType,
    /// Internet-facing or internal.
    pub scheme: Scheme,
    /// IPv4 or dual-stack.
    pub ip_address_type: IpAddressType,
    /// The VPC.
    pub vpc_id: String,
    /// Its subnets, one per availability zone.
    pub subnets: Vec<SubnetMapping>,
    /// Its security groups.
    pub security_groups: Vec<String>,
    /// Provisioning, active, impaired or failed.
    pub state: LoadBalancerState,
    /// Its DNS name.
    pub dns_name: String,
    /// When it was created (its creating transaction's commit time).
    pub created: Timestamp,
    /// Its attributes.
    pub attributes: Attributes,
    /// Its tags.
    pub tags: Tags,
    /// The reserved minimum capacity, in capacity units (`ModifyCapacityReservation`).
    pub capacity_units: Option<u32>,
    /// The IPAM pool its IPv4 addresses come from (`ModifyIpPools`).
    pub ipv4_ipam_pool: Option<String>,
}

impl LoadBalancer {
    /// Whether the deletion-protection attribute is on.
    pub fn deletion_protected(&self) -> bool {
        self.attributes.get(DELETION_PROTECTION).is_some_and(|v| v == "true")
    }
}

/// One target group a forward action sends to, with its weight.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WeightedTargetGroup {
    /// The target group.
    pub target_group: TargetGroupId,
    /// Its share of the traffic, 0 to 999.
    pub weight: u32,
}

/// What a listener or rule does with a request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Forward to one or more weighted target groups.
    Forward {
        /// The target groups (1 to 5).
        target_groups: Vec<WeightedTargetGroup>,
    },
    /// Redirect (application load balancers).
    Redirect {
        /// The protocol, e.g. `HTTPS`, or `None` to keep it.
        protocol: Option<String>,
        /// The host, or `None` to keep it.
        host: Option<String>,
        /// The port, or `None` to keep it.
        port: Option<u16>,
        /// The path, or `None` to keep it.
        path: Option<String>,
        /// 301 or 302.
        status_code: u16,
    },
    /// Answer directly (application load balancers).
    FixedResponse {
        /// The HTTP status: 2XX, 4XX or 5XX.
        status_code: u16,
        /// The content type: text/plain, text/css, text/html, application/javascript or application/json.
        content_type: Option<String>,
        /// The body, up to 1024 bytes.
        body: Option<String>,
    },
    /// Authenticate users through an OpenID Connect identity provider (HTTPS
    /// listeners of application load balancers), before the action that follows.
    AuthenticateOidc(Box<AuthenticateOidc>),
    /// Authenticate users through an Amazon Cognito user pool (HTTPS
    /// listeners of application load balancers), before the action that follows.
    AuthenticateCognito(Box<AuthenticateCognito>),
}

/// `AuthenticateOidcActionConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuthenticateOidc {
    /// The issuer URL.
    pub issuer: String,
    /// The authorization endpoint URL.
    pub authorization_endpoint: String,
    /// The token endpoint URL.
    pub token_endpoint: String,
    /// The user info endpoint URL.
    pub user_info_endpoint: String,
    /// The OAuth 2.0 client id.
    pub client_id: String,
    /// The OAuth 2.0 scope (default `openid`).
    pub scope: Option<String>,
    /// The session cookie name (default `AWSELBAuthSessionCookie`).
    pub session_cookie_name: Option<String>,
    /// Session timeout in seconds (default 604800).
    pub session_timeout: Option<u64>,
    /// `deny`, `allow` or `authenticate` (the default).
    pub on_unauthenticated_request: Option<String>,
}

/// `AuthenticateCognitoActionConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuthenticateCognito {
    /// The user pool ARN.
    pub user_pool_arn: String,
    /// The user pool client id.
    pub user_pool_client_id: String,
    /// The user pool domain prefix.
    pub user_pool_domain: String,
    /// The OAuth 2.0 scope (default `openid`).
    pub scope: Option<String>,
    /// The session cookie name (default `AWSELBAuthSessionCookie`).
    pub session_cookie_name: Option<String>,
    /// Session timeout in seconds (default 604800).
    pub session_timeout: Option<u64>,
    /// `deny`, `allow` or `authenticate` (the default).
    pub on_unauthenticated_request: Option<String>,
}

impl Action {
    /// A forward to one target group.
    pub fn forward(target_group: TargetGroupId) -> Action {
        Action::Forward { target_groups: vec![WeightedTargetGroup { target_group, weight: 1 }] }
    }

    /// The target groups this action sends to.
    pub fn target_groups(&self) -> impl Iterator<Item = TargetGroupId> + '_ {
        let groups: &[WeightedTargetGroup] = match self {
            Action::Forward { target_groups } => target_groups,
            _ => &[],
        };
        groups.iter().map(|w| w.target_group)
    }
}

/// A condition a rule matches requests on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Condition {
    /// Host header patterns.
    HostHeader(Vec<String>),
    /// Path patterns.
    PathPattern(Vec<String>),
    /// A header and the values it may have.
    HttpHeader {
        /// The header name.
        name: String,
        /// Accepted values.
        values: Vec<String>,
    },
    /// HTTP methods.
    HttpRequestMethod(Vec<String>),
    /// Query string key (optional) and value pairs.
    QueryString(Vec<(Option<String>, String)>),
    /// Source IP CIDR blocks.
    SourceIp(Vec<String>),
}

impl Condition {
    /// The values the condition lists.
    pub fn values(&self) -> Vec<&str> {
        match self {
            Condition::HostHeader(v)
            | Condition::PathPattern(v)
            | Condition::HttpRequestMethod(v)
            | Condition::SourceIp(v) => v.iter().map(String::as_str).collect(),
            Condition::HttpHeader { values, .. } => values.iter().map(String::as_str).collect(),
            Condition::QueryString(pairs) => pairs.iter().map(|(_, v)| v.as_str()).collect(),
        }
    }

    /// The condition's field name in the API, e.g. `path-pattern`.
    pub fn field(&self) -> &'static str {
        match self {
            Condition::HostHeader(_) => "host-header",
            Condition::PathPattern(_) => "path-pattern",
            Condition::HttpHeader { .. } => "http-header",
            Condition::HttpRequestMethod(_) => "http-request-method",
            Condition::QueryString(_) => "query-string",
            Condition::SourceIp(_) => "source-ip",
        }
    }
}

/// A listener's mutual TLS settings (`MutualAuthenticationAttributes`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MutualAuthentication {
    /// Off, passthrough or verify.
    pub mode: MutualAuthenticationMode,
    /// The trust store client certificates are verified against (verify mode only).
    pub trust_store: Option<TrustStoreId>,
    /// Whether expired client certificates are accepted (verify mode only).
    pub ignore_client_certificate_expiry: bool,
    /// Whether the trust store's CA names are advertised to clients (verify mode only).
    pub advertise_trust_store_ca_names: bool,
    /// Whether the trust store owner removed this listener's association to a
    /// trust store shared from another account (`TrustStoreAssociationStatus = removed`).
    pub association_removed: bool,
}

/// A listener: a port and protocol on a load balancer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// Its id.
    pub id: ListenerId,
    /// Its load balancer.
    pub load_balancer: LoadBalancerId,
    /// Its port, unique per load balancer.
    pub port: u16,
    /// Its protocol.
    pub protocol: Protocol,
    /// The default certificate's ARN (HTTPS and TLS listeners have one).
    pub default_certificate: Option<String>,
    /// Further certificates for SNI (`AddListenerCertificates`), not counting the default.
    pub certificates: Vec<String>,
    /// The TLS security policy (HTTPS and TLS).
    pub ssl_policy: Option<String>,
    /// What it does when no rule matches.
    pub default_actions: Vec<Action>,
    /// Its tags.
    pub tags: Tags,
    /// Its attributes (`ModifyListenerAttributes`).
    pub attributes: Attributes,
    /// Mutual TLS (HTTPS listeners), `None` when off.
    pub mutual_authentication: Option<MutualAuthentication>,
}

/// A listener rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Its id.
    pub id: RuleId,
    /// Its listener.
    pub listener: ListenerId,
    /// Its priority, unique per listener; lower is evaluated first.
    pub priority: u32,
    /// What it matches.
    pub conditions: Vec<Condition>,
    /// What it does.
    pub actions: Vec<Action>,
    /// Its tags.
    pub tags: Tags,
}

/// How a target group checks its targets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Whether checks run.
    pub enabled: bool,
    /// HTTP, HTTPS or TCP.
    pub protocol: Protocol,
    /// The port, or `None` for the port traffic arrives on.
    pub port: Option<u16>,
    /// The path (HTTP and HTTPS).
    pub path: Option<String>,
    /// Seconds between checks, 5 to 300.
    pub interval_seconds: u32,
    /// Seconds before a check fails, 2 to 120 and below the interval.
    pub timeout_seconds: u32,
    /// Passes in a row before healthy, 2 to 10.
    pub healthy_threshold: u32,
    /// Failures in a row before unhealthy, 2 to 10.
    pub unhealthy_threshold: u32,
    /// Accepted HTTP codes, e.g. `200` or `200-299`.
    pub matcher: Option<String>,
}

impl Default for HealthCheck {
    fn default() -> HealthCheck {
        HealthCheck {
            enabled: true,
            protocol: Protocol::Http,
            port: None,
            path: Some("/".into()),
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: Some("200".into()),
        }
    }
}

/// A target group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroup {
    /// Its id.
    pub id: TargetGroupId,
    /// The owning account.
    pub account: String,
    /// Its name, unique per account.
    pub name: String,
    /// Its protocol (`None` for Lambda).
    pub protocol: Option<Protocol>,
    /// Its port (`None` for Lambda).
    pub port: Option<u16>,
    /// Its VPC (`None` for Lambda).
    pub vpc_id: Option<String>,
    /// What its targets are.
    pub target_type: TargetType,
    /// How targets are checked.
    pub health_check: HealthCheck,
    /// Its attributes.
    pub attributes: Attributes,
    /// Its tags.
    pub tags: Tags,
    /// HTTP1, HTTP2 or GRPC (HTTP and HTTPS groups only).
    pub protocol_version: Option<ProtocolVersion>,
    /// Whether its targets are IPv4 or IPv6 addresses.
    pub ip_address_type: TargetGroupIpAddressType,
}

impl TargetGroup {
    /// The deregistration delay (`deregistration_delay.timeout_seconds`,
    /// default 300 s; Lambda groups have none).
    pub fn deregistration_delay(&self) -> std::time::Duration {
        if self.target_type == TargetType::Lambda {
            return std::time::Duration::ZERO;
        }
        let seconds = self.attributes.get(DEREGISTRATION_DELAY).and_then(|v| v.parse().ok()).unwrap_or(300);
        std::time::Duration::from_secs(seconds)
    }
}

/// The target-group attribute that sets how long deregistered targets drain.
pub const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

/// A trust store: CA certificates that verify client certificates for mutual
/// TLS, and the revocation lists that go with them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustStore {
    /// Its id.
    pub id: TrustStoreId,
    /// The owning account.
    pub account: String,
    /// Its name, unique per account.
    pub name: String,
    /// Where its CA certificates bundle is.
    pub ca_certificates_bundle: S3Object,
    /// Its revocation lists, by revocation id.
    pub revocations: BTreeMap<u64, Revocation>,
    /// Its tags.
    pub tags: Tags,
}

/// An object in Amazon S3.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct S3Object {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The object version, or `None` for the latest.
    pub version: Option<String>,
}

/// A revocation list added to a trust store (`RevocationContent`; the type is `CRL`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Revocation {
    /// Where the list is.
    pub content: S3Object,
}

/// A target's health and why.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TargetHealth {
    /// The state.
    pub state: HealthState,
    /// The reason code, e.g. `Target.Timeout` (none for healthy targets).
    pub reason: Option<HealthReason>,
}

impl TargetHealth {
    /// A state with its reason.
    pub fn new(state: HealthState, reason: Option<HealthReason>) -> TargetHealth {
        TargetHealth { state, reason }
    }
}

/// A target registered in a target group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The group, target id and port.
    pub key: TargetKey,
    /// The availability zone (`all` for IP targets outside the VPC).
    pub availability_zone: Option<ZoneName>,
    /// Its health.
    pub health: TargetHealth,
    /// While it drains after deregistration: when the deregistration delay
    /// ends and it may be removed (`CompleteDeregistrations`).
    pub draining_until: Option<Timestamp>,
}
