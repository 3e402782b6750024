//! Amazon Resource Names and DNS names, formed as the ELBv2 API forms them.
//!
//! ARNs are derived, never stored: a resource's id, name, type and account,
//! with the store's region, give its ARN, and an ARN gives back the id it
//! names. Load balancer, target group and trust store ids are the 16 hex
//! digits at the end of their ARNs; listener and rule ARNs embed their load
//! balancer's name and id.
//!
//! ```
//! use elbstore::elb::arn;
//! use elbstore::elb::{LoadBalancerId, LoadBalancerType};
//!
//! let lb = LoadBalancerId(0x2a_0000);
//! let text = arn::load_balancer("eu-west-1", "123456789012", LoadBalancerType::Application, "web", lb);
//! assert_eq!(text, "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/00000000002a0000");
//! let parsed = arn::Arn::parse(&text).unwrap();
//! assert_eq!(parsed.resource, arn::Resource::LoadBalancer { id: lb });
//! ```

use super::ids::{ListenerId, LoadBalancerId, RuleId, TargetGroupId, TrustStoreId};
use super::model::{LoadBalancerType, Scheme};

const PREFIX: &str = "arn:aws:elasticloadbalancing:";

/// The short type name in ARNs: `app`, `net` or `gwy`.
pub fn type_tag(kind: LoadBalancerType) -> &'static str {
    match kind {
        LoadBalancerType::Application => "app",
        LoadBalancerType::Network => "net",
        LoadBalancerType::Gateway => "gwy",
    }
}

fn type_of_tag(tag: &str) -> Option<LoadBalancerType> {
    match tag {
        "app" => Some(LoadBalancerType::Application),
        "net" => Some(LoadBalancerType::Network),
        "gwy" => Some(LoadBalancerType::Gateway),
        _ => None,
    }
}

/// A load balancer's ARN.
pub fn load_balancer(region: &str, account: &str, kind: LoadBalancerType, name: &str, id: LoadBalancerId) -> String {
    format!("{PREFIX}{region}:{account}:loadbalancer/{}/{name}/{:016x}", type_tag(kind), id.0)
}

/// A listener's ARN: its load balancer's, with the listener's id.
pub fn listener(
    region: &str,
    account: &str,
    kind: LoadBalancerType,
    lb_name: &str,
    lb: LoadBalancerId,
    id: ListenerId,
) -> String {
    format!("{PREFIX}{region}:{account}:listener/{}/{lb_name}/{:016x}/{:016x}", type_tag(kind), lb.0, id.0)
}

/// A rule's ARN: its listener's, with the rule's id.
pub fn rule(
    region: &str,
    account: &str,
    kind: LoadBalancerType,
    lb_name: &str,
    (lb, listener, id): (LoadBalancerId, ListenerId, RuleId),
) -> String {
    format!(
        "{PREFIX}{region}:{account}:listener-rule/{}/{lb_name}/{:016x}/{:016x}/{:016x}",
        type_tag(kind),
        lb.0,
        listener.0,
        id.0
    )
}

/// A target group's ARN.
pub fn target_group(region: &str, account: &str, name: &str, id: TargetGroupId) -> String {
    format!("{PREFIX}{region}:{account}:targetgroup/{name}/{:016x}", id.0)
}

/// A trust store's ARN.
pub fn trust_store(region: &str, account: &str, name: &str, id: TrustStoreId) -> String {
    format!("{PREFIX}{region}:{account}:truststore/{name}/{:016x}", id.0)
}

/// A load balancer's DNS name, as the API forms it per type: application
/// load balancers `[internal-]NAME-ID.REGION.elb.amazonaws.com`, network and
/// gateway load balancers `NAME-ID.elb.REGION.amazonaws.com`.
pub fn dns_name(region: &str, kind: LoadBalancerType, scheme: Scheme, name: &str, id: LoadBalancerId) -> String {
    let internal = if scheme == Scheme::Internal { "internal-" } else { "" };
    match kind {
        LoadBalancerType::Application => format!("{internal}{name}-{}.{region}.elb.amazonaws.com", id.0),
        LoadBalancerType::Network | LoadBalancerType::Gateway => {
            format!("{name}-{:016x}.elb.{region}.amazonaws.com", id.0)
        }
    }
}

/// The region a DNS name of this crate (either form, and schema 1's
/// `NAME-ID.REGION.elb.amazonaws.com`) names.
pub fn region_of_dns_name(dns: &str) -> Option<&str> {
    let rest = dns.strip_suffix(".amazonaws.com")?;
    let (head, last) = rest.rsplit_once('.')?;
    if last == "elb" {
        // NAME-ID.REGION.elb
        return head.rsplit_once('.').map(|(_, region)| region);
    }
    // NAME-ID.elb.REGION
    head.ends_with(".elb").then_some(last)
}

/// Whether `region` looks like a region code, e.g. `us-east-1`.
pub fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    (3..=4).contains(&parts.len())
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
        && region.len() <= 32
}

/// What an ELB ARN names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    /// A load balancer.
    LoadBalancer {
        /// Its id.
        id: LoadBalancerId,
    },
    /// A listener of a load balancer.
    Listener {
        /// The load balancer.
        load_balancer: LoadBalancerId,
        /// The listener.
        id: ListenerId,
    },
    /// A rule of a listener.
    Rule {
        /// The load balancer.
        load_balancer: LoadBalancerId,
        /// The listener.
        listener: ListenerId,
        /// The rule.
        id: RuleId,
    },
    /// A target group.
    TargetGroup {
        /// Its id.
        id: TargetGroupId,
    },
    /// A trust store.
    TrustStore {
        /// Its id.
        id: TrustStoreId,
    },
}

/// An ELB ARN, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arn<'a> {
    /// The region.
    pub region: &'a str,
    /// The account.
    pub account: &'a str,
    /// The load balancer type (load balancers, listeners and rules).
    pub load_balancer_type: Option<LoadBalancerType>,
    /// The load balancer's, target group's or trust store's name.
    pub name: &'a str,
    /// What it names.
    pub resource: Resource,
}

fn hex_id(text: &str) -> Option<u64> {
    (text.len() == 16).then(|| u64::from_str_radix(text, 16).ok()).flatten()
}

impl<'a> Arn<'a> {
    /// Parses an ELB ARN; `None` when it is not one this crate forms.
    pub fn parse(text: &'a str) -> Option<Arn<'a>> {
        let rest = text.strip_prefix(PREFIX)?;
        let mut fields = rest.splitn(3, ':');
        let (region, account, path) = (fields.next()?, fields.next()?, fields.next()?);
        let parts: Vec<&str> = path.split('/').collect();
        let (load_balancer_type, name, resource) = match parts.as_slice() {
            ["loadbalancer", tag, name, id] => {
                (Some(type_of_tag(tag)?), *name, Resource::LoadBalancer { id: LoadBalancerId(hex_id(id)?) })
            }
            ["listener", tag, name, lb, id] => (
                Some(type_of_tag(tag)?),
                *name,
                Resource::Listener { load_balancer: LoadBalancerId(hex_id(lb)?), id: ListenerId(hex_id(id)?) },
            ),
            ["listener-rule", tag, name, lb, listener, id] => (
                Some(type_of_tag(tag)?),
                *name,
                Resource::Rule {
                    load_balancer: LoadBalancerId(hex_id(lb)?),
                    listener: ListenerId(hex_id(listener)?),
                    id: RuleId(hex_id(id)?),
                },
            ),
            ["targetgroup", name, id] => (None, *name, Resource::TargetGroup { id: TargetGroupId(hex_id(id)?) }),
            ["truststore", name, id] => (None, *name, Resource::TrustStore { id: TrustStoreId(hex_id(id)?) }),
            _ => return None,
        };
        if region.is_empty() || account.is_empty() || name.is_empty() {
            return None;
        }
        Some(Arn { region, account, load_balancer_type, name, resource })
    }
}

/// The load balancer an `alb` target id (an application load balancer's ARN) names.
pub fn load_balancer_id_of(target_id: &str) -> Option<LoadBalancerId> {
    match Arn::parse(target_id)? {
        Arn {
            load_balancer_type: Some(LoadBalancerType::Application),
            resource: Resource::LoadBalancer { id },
            ..
        } => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ARN formats: the `LoadBalancerArn`, `ListenerArn`, `RuleArn`,
    /// `TargetGroupArn` and `TrustStoreArn` examples of the API reference.
    #[test]
    fn every_arn_parses_back_to_what_it_names() {
        let (lb, l, r) = (LoadBalancerId(1 << 16), ListenerId(2 << 16), RuleId((3 << 16) | 1));
        let text = listener("us-west-2", "123456789012", LoadBalancerType::Network, "my-nlb", lb, l);
        assert_eq!(
            text,
            "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener/net/my-nlb/0000000000010000/0000000000020000"
        );
        let parsed = Arn::parse(&text).unwrap();
        assert_eq!(parsed.resource, Resource::Listener { load_balancer: lb, id: l });
        assert_eq!((parsed.region, parsed.account, parsed.name), ("us-west-2", "123456789012", "my-nlb"));
        let text = rule("us-west-2", "123456789012", LoadBalancerType::Application, "web", (lb, l, r));
        assert_eq!(Arn::parse(&text).unwrap().resource, Resource::Rule { load_balancer: lb, listener: l, id: r });
        let text = target_group("us-west-2", "123456789012", "api", TargetGroupId(7));
        assert_eq!(text, "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/api/0000000000000007");
        assert_eq!(Arn::parse(&text).unwrap().resource, Resource::TargetGroup { id: TargetGroupId(7) });
        let text = trust_store("us-west-2", "123456789012", "ca", TrustStoreId(9));
        assert_eq!(Arn::parse(&text).unwrap().resource, Resource::TrustStore { id: TrustStoreId(9) });
        for bad in [
            "",
            "arn:aws:lambda:us-west-2:123456789012:function:f",
            "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/web/12",
            "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/xyz/web/0000000000000001",
            "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup//0000000000000001",
        ] {
            assert_eq!(Arn::parse(bad), None, "{bad}");
        }
    }

    /// DNS names per type (`LoadBalancer.DNSName`): application load
    /// balancers `NAME-ID.REGION.elb.amazonaws.com`, network and gateway
    /// load balancers `NAME-ID.elb.REGION.amazonaws.com`.
    #[test]
    fn dns_names_follow_the_type_and_name_their_region() {
        let id = LoadBalancerId(0x10000);
        let alb = dns_name("eu-west-1", LoadBalancerType::Application, Scheme::Internal, "web", id);
        assert_eq!(alb, "internal-web-65536.eu-west-1.elb.amazonaws.com");
        let nlb = dns_name("eu-west-1", LoadBalancerType::Network, Scheme::InternetFacing, "tcp", id);
        assert_eq!(nlb, "tcp-0000000000010000.elb.eu-west-1.amazonaws.com");
        assert_eq!(region_of_dns_name(&alb), Some("eu-west-1"));
        assert_eq!(region_of_dns_name(&nlb), Some("eu-west-1"));
        assert_eq!(region_of_dns_name("lb-0-0000000000010000.us-east-1.elb.amazonaws.com"), Some("us-east-1"));
        assert_eq!(region_of_dns_name("example.com"), None);
        assert!(is_region("us-east-1") && is_region("us-gov-west-1") && !is_region("production"));
    }
}
