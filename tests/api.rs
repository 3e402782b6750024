//! The API service driven by a real AWS client this project did not write:
//! the AWS SDK for Rust (`aws-sdk-elasticloadbalancingv2`) against the
//! server on 127.0.0.1, every change landing in the store as a transaction
//! of the caller.

mod common;

use std::sync::Arc;

use aws_sdk_elasticloadbalancingv2 as elbv2;
use common::TempDir;
use elbstore::api::auth::{CredentialStore, Credentials};
use elbstore::api::network::{Inventory, SecurityGroup, Subnet};
use elbstore::api::Service;
use elbstore::elb::{ElbStore, Settings};
use elbstore::{Create, Options, SyncPolicy};
use elbv2::types::{Action, ActionTypeEnum, Certificate, RuleCondition, Tag, TargetDescription};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "111122223333";
const OTHER: &str = "444455556666";

fn inventory() -> Inventory {
    let subnet = |id: &str, az: &str| Subnet { id: id.into(), vpc_id: "vpc-1".into(), availability_zone: az.into() };
    Inventory::from_parts(
        vec![subnet("subnet-a", "us-east-1a"), subnet("subnet-b", "us-east-1b"), subnet("subnet-c", "us-east-1c")],
        vec![SecurityGroup { id: "sg-1".into(), vpc_id: "vpc-1".into() }],
    )
}

fn credentials() -> CredentialStore {
    let key = |id: &str, account: &str| Credentials {
        access_key_id: id.into(),
        secret_access_key: format!("secret-of-{id}"),
        account: account.into(),
    };
    CredentialStore::from_credentials(vec![key("AKIDALICE", ACCOUNT), key("AKIDBOB", OTHER)])
}

/// A server on a free port; stops when the sender is dropped or sent to.
struct Server {
    address: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    service: Arc<Service>,
}

async fn start(dir: &TempDir) -> Server {
    let options = Options::default().create(Create::IfMissing).identity("elbv2-api", "test").sync(SyncPolicy::Never);
    let store = ElbStore::open(dir.path(), options, Settings::in_region(REGION)).unwrap();
    let service = Arc::new(Service::new(store, credentials(), Box::new(inventory()), REGION));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(elbstore::api::server::serve(service.clone(), listener, async {
        let _ = stopped.await;
    }));
    Server { address, stop: Some(stop), task: Some(task), service }
}

impl Server {
    fn client(&self, key: &str, secret: &str) -> elbv2::Client {
        let config = elbv2::Config::builder()
            .behavior_version(elbv2::config::BehaviorVersion::latest())
            .region(elbv2::config::Region::new(REGION))
            .credentials_provider(elbv2::config::Credentials::new(key, secret, None, None, "tests"))
            .endpoint_url(format!("http://{}", self.address))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        elbv2::Client::from_conf(config)
    }

    fn alice(&self) -> elbv2::Client {
        self.client("AKIDALICE", "secret-of-AKIDALICE")
    }

    async fn stop(mut self) -> Arc<Service> {
        let _ = self.stop.take().map(|s| s.send(()));
        self.task.take().unwrap().await.unwrap().unwrap();
        self.service.clone()
    }
}

fn code<E: elbv2::error::ProvideErrorMetadata>(err: &E) -> String {
    err.code().unwrap_or("no code").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_sdk_builds_describes_and_deletes_a_fleet() {
    let dir = TempDir::new("api-sdk");
    let server = start(&dir).await;
    let elb = server.alice();

    let alb = elb
        .create_load_balancer()
        .name("web")
        .subnets("subnet-a")
        .subnets("subnet-b")
        .security_groups("sg-1")
        .tags(Tag::builder().key("team").value("payments").build())
        .send()
        .await
        .unwrap();
    let alb = &alb.load_balancers()[0];
    let alb_arn = alb.load_balancer_arn().unwrap().to_owned();
    assert!(alb_arn.starts_with(&format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/web/")));
    assert_eq!(alb.vpc_id(), Some("vpc-1"), "the VPC comes from the subnets");
    assert_eq!(alb.availability_zones().len(), 2);
    assert_eq!(alb.scheme().map(|s| s.as_str()), Some("internet-facing"));
    let nlb = elb.create_load_balancer().name("tcp").r#type("network".into()).subnets("subnet-c").send().await.unwrap();
    assert_eq!(nlb.load_balancers()[0].r#type().map(|t| t.as_str()), Some("network"));

    let tg = elb
        .create_target_group()
        .name("web-tg")
        .protocol("HTTP".into())
        .port(80)
        .vpc_id("vpc-1")
        .health_check_path("/health")
        .send()
        .await
        .unwrap();
    let tg_arn = tg.target_groups()[0].target_group_arn().unwrap().to_owned();
    assert_eq!(tg.target_groups()[0].health_check_path(), Some("/health"));
    elb.register_targets()
        .target_group_arn(&tg_arn)
        .targets(TargetDescription::builder().id("i-0123456789abcdef0").port(8080).build())
        .targets(TargetDescription::builder().id("i-0123456789abcdef1").build())
        .send()
        .await
        .unwrap();

    let forward = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&tg_arn).build();
    let http = elb
        .create_listener()
        .load_balancer_arn(&alb_arn)
        .protocol("HTTP".into())
        .port(80)
        .default_actions(forward.clone())
        .send()
        .await
        .unwrap();
    let http_arn = http.listeners()[0].listener_arn().unwrap().to_owned();
    let https = elb
        .create_listener()
        .load_balancer_arn(&alb_arn)
        .protocol("HTTPS".into())
        .port(443)
        .certificates(
            Certificate::builder().certificate_arn("arn:aws:acm:us-east-1:111122223333:certificate/abc").build(),
        )
        .default_actions(forward.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(https.listeners()[0].certificates().len(), 1);
    let rule = elb
        .create_rule()
        .listener_arn(&http_arn)
        .priority(10)
        .conditions(RuleCondition::builder().field("path-pattern").values("/api/*").build())
        .actions(forward.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(rule.rules()[0].priority(), Some("10"));

    // Reads, with pagination.
    let mut names = Vec::new();
    let mut pages = elb.describe_load_balancers().page_size(1).into_paginator().send();
    while let Some(page) = pages.next().await {
        names.extend(page.unwrap().load_balancers().iter().filter_map(|lb| lb.load_balancer_name().map(str::to_owned)));
    }
    names.sort();
    assert_eq!(names, ["tcp", "web"], "two pages of one");
    let listeners = elb.describe_listeners().load_balancer_arn(&alb_arn).send().await.unwrap();
    assert_eq!(listeners.listeners().len(), 2);
    let rules = elb.describe_rules().listener_arn(&http_arn).send().await.unwrap();
    assert_eq!(rules.rules().len(), 2, "the rule and the default rule");
    let health = elb.describe_target_health().target_group_arn(&tg_arn).send().await.unwrap();
    assert_eq!(health.target_health_descriptions().len(), 2);
    let groups = elb.describe_target_groups().load_balancer_arn(&alb_arn).send().await.unwrap();
    assert_eq!(groups.target_groups()[0].load_balancer_arns(), std::slice::from_ref(&alb_arn));
    let tags = elb.describe_tags().resource_arns(&alb_arn).send().await.unwrap();
    assert_eq!(tags.tag_descriptions()[0].tags()[0].value(), Some("payments"));
    elb.add_tags().resource_arns(&tg_arn).tags(Tag::builder().key("env").value("prod").build()).send().await.unwrap();
    let attributes = elb
        .modify_load_balancer_attributes()
        .load_balancer_arn(&alb_arn)
        .attributes(
            elbv2::types::LoadBalancerAttribute::builder().key("idle_timeout.timeout_seconds").value("120").build(),
        )
        .send()
        .await
        .unwrap();
    assert!(attributes.attributes().iter().any(|a| a.value() == Some("120")));

    // The API's errors, as the SDK understands them.
    let duplicate = elb.create_load_balancer().name("tcp").subnets("subnet-a").subnets("subnet-b").send().await;
    let err = duplicate.unwrap_err().into_service_error();
    assert_eq!(code(&err), "DuplicateLoadBalancerName");
    assert!(err.is_duplicate_load_balancer_name_exception());
    let in_use = elb.delete_target_group().target_group_arn(&tg_arn).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&in_use), "ResourceInUse");
    let forged = server.client("AKIDALICE", "not-the-secret");
    let err = forged.describe_load_balancers().send().await.unwrap_err().into_service_error();
    assert_eq!(code(&err), "SignatureDoesNotMatch");
    let stranger = server.client("AKIDUNKNOWN", "x");
    let err = stranger.describe_load_balancers().send().await.unwrap_err().into_service_error();
    assert_eq!(code(&err), "InvalidClientTokenId");
    let bob = server.client("AKIDBOB", "secret-of-AKIDBOB");
    assert!(
        bob.describe_load_balancers().send().await.unwrap().load_balancers().is_empty(),
        "another account sees nothing"
    );
    let err = bob.describe_load_balancers().load_balancer_arns(&alb_arn).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&err), "LoadBalancerNotFound");
    let err = bob.delete_listener().listener_arn(&http_arn).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&err), "ListenerNotFound");

    // Trust stores and capacity.
    let store = elb
        .create_trust_store()
        .name("clients")
        .ca_certificates_bundle_s3_bucket("certs")
        .ca_certificates_bundle_s3_key("ca.pem")
        .send()
        .await
        .unwrap();
    let ts_arn = store.trust_stores()[0].trust_store_arn().unwrap().to_owned();
    let described = elb.describe_trust_stores().names("clients").send().await.unwrap();
    assert_eq!(described.trust_stores()[0].trust_store_arn(), Some(ts_arn.as_str()));
    let bundle = elb.get_trust_store_ca_certificates_bundle().trust_store_arn(&ts_arn).send().await.unwrap();
    assert_eq!(bundle.location(), Some("https://certs.s3.us-east-1.amazonaws.com/ca.pem"));
    elb.delete_trust_store().trust_store_arn(&ts_arn).send().await.unwrap();
    let capacity = elb
        .modify_capacity_reservation()
        .load_balancer_arn(&alb_arn)
        .minimum_load_balancer_capacity(
            elbv2::types::MinimumLoadBalancerCapacity::builder().capacity_units(100).build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(capacity.minimum_load_balancer_capacity().and_then(|c| c.capacity_units()), Some(100));

    // Deletes.
    elb.delete_load_balancer().load_balancer_arn(&alb_arn).send().await.unwrap();
    elb.delete_target_group().target_group_arn(&tg_arn).send().await.unwrap();
    let left = elb.describe_load_balancers().send().await.unwrap();
    assert_eq!(left.load_balancers().len(), 1);

    // Every change is a transaction of the caller, for the action.
    let service = server.stop().await;
    let store = service.store();
    let last = store.read().seq();
    let deletion = store.store().transaction(last).unwrap();
    assert!(deletion.meta.actor == format!("aws:{ACCOUNT}:AKIDALICE"), "{}", deletion.meta.actor);
    assert!(deletion.meta.reason.starts_with("DeleteTargetGroup "), "{}", deletion.meta.reason);
}

/// Every Action of the API is answered, never "unknown action": with no
/// members each one says which member is missing (or answers); an unknown
/// Action or another API version is refused with the API's error.
#[test]
fn every_action_is_answered_and_unknown_ones_are_refused() {
    use elbstore::api::auth::sign;
    use elbstore::api::{Request, ACTIONS};
    let dir = TempDir::new("api-actions");
    let options = Options::default().create(Create::IfMissing).identity("elbv2-api", "test").sync(SyncPolicy::Never);
    let store = ElbStore::open(dir.path(), options, Settings::in_region(REGION)).unwrap();
    let service = Service::new(store, credentials(), Box::new(inventory()), REGION);
    let alice = Credentials {
        access_key_id: "AKIDALICE".into(),
        secret_access_key: "secret-of-AKIDALICE".into(),
        account: ACCOUNT.into(),
    };
    let call = |body: &str| {
        let now = std::time::SystemTime::now();
        let mut headers = vec![
            ("host".to_owned(), "127.0.0.1".to_owned()),
            ("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned()),
        ];
        sign(&alice, REGION, "elasticloadbalancing", "POST", "127.0.0.1", "/", "", &mut headers, body.as_bytes(), now);
        let request = Request {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers,
            body: body.as_bytes().to_vec(),
        };
        service.handle(&request, now)
    };
    assert_eq!(ACTIONS.len(), 51);
    for action in ACTIONS {
        let response = call(&format!("Action={action}&Version=2015-12-01"));
        assert!(!response.body.contains("<Code>InvalidAction</Code>"), "{action}: {}", response.body);
        assert!(response.status == 200 || response.status == 400, "{action}: {} {}", response.status, response.body);
    }
    let unknown = call("Action=FrobnicateLoadBalancer&Version=2015-12-01");
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("<Code>InvalidAction</Code>"), "{}", unknown.body);
    let old = call("Action=DescribeLoadBalancers&Version=2012-06-01");
    assert!(old.body.contains("<Code>InvalidAction</Code>"), "{}", old.body);
    let broken = call("Action=CreateLoadBalancer&Version=2015-12-01&Name=%ZZ&Subnets.member.1=subnet-a");
    assert_eq!(broken.status, 400, "{}", broken.body);
    let unsigned = service.handle(
        &Request {
            method: "POST".into(),
            path: "/".into(),
            body: b"Action=DescribeLoadBalancers".to_vec(),
            ..Request::default()
        },
        std::time::SystemTime::now(),
    );
    assert_eq!(unsigned.status, 403);
    assert!(unsigned.body.contains("<Code>MissingAuthenticationToken</Code>"), "{}", unsigned.body);
}
