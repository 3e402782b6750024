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
use elbstore::api::server::Limits;
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
    start_with(dir, Settings::in_region(REGION), Limits::default()).await
}

async fn start_with(dir: &TempDir, settings: Settings, limits: Limits) -> Server {
    let options = Options::default().create(Create::IfMissing).identity("elbv2-api", "test").sync(SyncPolicy::Never);
    let store = ElbStore::open(dir.path(), options, settings).unwrap();
    let service = Arc::new(Service::new(store, credentials(), Box::new(inventory()), REGION));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(elbstore::api::server::serve_with(
        service.clone(),
        listener,
        async {
            let _ = stopped.await;
        },
        limits,
    ));
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
        service.handle(&Request::signed(&alice, REGION, "127.0.0.1", body.as_bytes(), now), now)
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

/// The deletion guard answers over the API: past the limit a deletion is
/// refused with `OperationNotPermitted` naming the two headers, and the same
/// call with a ticket and an approver in them goes through and records both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deletion_guard_answers_over_the_api_and_the_headers_carry_the_approval() {
    let dir = TempDir::new("api-guard");
    let mut settings = Settings::in_region(REGION);
    settings.guard.load_balancers_max = 1;
    let server = start_with(&dir, settings, Limits::default()).await;
    let elb = server.alice();
    let mut arns = Vec::new();
    for name in ["a", "b", "c"] {
        let created =
            elb.create_load_balancer().name(name).subnets("subnet-a").subnets("subnet-b").send().await.unwrap();
        arns.push(created.load_balancers()[0].load_balancer_arn().unwrap().to_owned());
    }
    elb.delete_load_balancer().load_balancer_arn(&arns[0]).send().await.unwrap();
    let refused = elb.delete_load_balancer().load_balancer_arn(&arns[1]).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&refused), "OperationNotPermitted");
    let message = elbv2::error::ProvideErrorMetadata::message(&refused).unwrap_or_default().to_owned();
    assert!(message.contains("x-elbstore-change-ticket") && message.contains("x-elbstore-approver"), "{message}");
    assert_eq!(elb.describe_load_balancers().send().await.unwrap().load_balancers().len(), 2, "nothing deleted");

    elb.delete_load_balancer()
        .load_balancer_arn(&arns[1])
        .customize()
        .mutate_request(|request| {
            request.headers_mut().insert("x-elbstore-change-ticket", "CHG-2012-12-24");
            request.headers_mut().insert("x-elbstore-approver", "carol");
        })
        .send()
        .await
        .unwrap();
    let service = server.stop().await;
    let store = service.store();
    let approved = store.store().transaction(store.read().seq()).unwrap();
    assert!(approved.meta.reason.starts_with("DeleteLoadBalancer "), "{}", approved.meta.reason);
    assert_eq!(approved.meta.ticket.as_deref(), Some("CHG-2012-12-24"));
    assert_eq!(approved.meta.approved_by.as_deref(), Some("carol"));
}

/// A client that sends its headers or its body too slowly, sends too much,
/// sends garbage, or idles on a keep-alive connection gets the API's error
/// or a closed connection within the limits, never a connection held open;
/// the server serves the next client, and shutdown with idle connections
/// open returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_oversized_and_garbled_clients_are_cut_off_and_the_server_goes_on() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let dir = TempDir::new("api-limits");
    let limits = Limits {
        header_read: Duration::from_millis(300),
        body_read: Duration::from_millis(300),
        body_bytes: 4096,
        shutdown_grace: Duration::from_secs(10),
    };
    let server = start_with(&dir, Settings::in_region(REGION), limits).await;
    let address = server.address;
    // Everything the server answers on a connection after `sent`, up to its close.
    let exchange = move |sent: Vec<u8>| {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(&sent).unwrap();
        let started = Instant::now();
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        assert!(read.is_ok(), "the server held the connection open: {read:?}");
        (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
    };
    let (slow_headers, slow_body, oversized, garbage, idle) = tokio::task::spawn_blocking(move || {
        (
            exchange(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty".to_vec()),
            exchange(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nAction=Desc".to_vec()),
            exchange(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n\r\n".to_vec()),
            exchange(b"\x00\x01 NOT HTTP AT ALL\r\n\r\n".to_vec()),
            exchange(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec()),
        )
    })
    .await
    .unwrap();
    assert!(!slow_headers.0.contains("200 OK"), "{}", slow_headers.0);
    assert!(slow_headers.1 < Duration::from_secs(5), "closed after the header limit: {:?}", slow_headers.1);
    assert!(slow_body.0.starts_with("HTTP/1.1 408"), "{}", slow_body.0);
    assert!(slow_body.0.contains("<Code>RequestTimeout</Code>"), "{}", slow_body.0);
    assert!(oversized.0.starts_with("HTTP/1.1 413"), "{}", oversized.0);
    assert!(oversized.0.contains("<Code>RequestEntityTooLarge</Code>"), "{}", oversized.0);
    assert!(garbage.0.is_empty() || garbage.0.starts_with("HTTP/1.1 400"), "{}", garbage.0);
    // A complete request is answered (unsigned: 403), then the idle
    // keep-alive connection is closed by the header limit.
    assert!(idle.0.starts_with("HTTP/1.1 403"), "{}", idle.0);
    assert!(idle.0.contains("<Code>MissingAuthenticationToken</Code>"), "{}", idle.0);
    assert!(idle.1 < Duration::from_secs(5), "the idle connection was closed: {:?}", idle.1);

    // The server goes on, and stops at once with an idle client connected.
    assert!(server.alice().describe_load_balancers().send().await.unwrap().load_balancers().is_empty());
    let _idle = std::net::TcpStream::connect(address).unwrap();
    let stopping = Instant::now();
    server.stop().await;
    assert!(stopping.elapsed() < Duration::from_secs(5), "shutdown waited {:?}", stopping.elapsed());
}

/// Requests made of the API's own Actions and member names with values
/// valid and not (ARNs of resources that exist, other accounts', numbers out
/// of range, bad percent-encoding, 2,000-byte values), signed or forged:
/// every one is answered with the API's XML, never a panic or an internal
/// failure, and a refusal or a read writes nothing (the checks of
/// `elbstore::fuzzing::api_requests`, which the fuzz target runs too).
/// The API service on a replica of a replicated store (the replica tool's
/// `--api-listen`): the AWS SDK writes through a follower, the group commits
/// it, and every replica holds it; the follower answers reads of what was
/// just written; a refusal by the group comes back with the API's code.
#[cfg(feature = "replication")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_sdk_drives_a_replicated_group_through_a_follower() {
    use elbstore::replication::{GroupClient, Replica, ReplicaConfig};
    use elbstore::tools::replica::GroupBackend;
    let dir = TempDir::new("api-group");
    let addrs: Vec<std::net::SocketAddr> =
        (0..3).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()).collect();
    let mut replicas = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let id = i as u64 + 1;
        let mut config = ReplicaConfig::new(id, dir.join(&format!("r{id}")), *addr, "elbv2-api", "test");
        config.peers = addrs.iter().enumerate().map(|(j, a)| (j as u64 + 1, a.to_string())).collect();
        config.settings = Settings::in_region(REGION);
        replicas.push(Replica::start(config).await.unwrap());
    }
    // A follower of the group, once the group has a leader and a store.
    let follower = loop {
        let leader = replicas[0].raft().metrics().borrow().current_leader;
        if let Some(leader) = leader {
            let follower =
                replicas.iter().position(|r| r.store().is_some() && leader != r.raft().metrics().borrow().id);
            if let Some(follower) = follower {
                break follower;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let machine = replicas[follower].machine().clone();
    let client = GroupClient::new(addrs.iter().map(|a| a.to_string()), std::time::Duration::from_secs(10));
    let backend = GroupBackend::new(Box::new(move || machine.store()), client);
    let service = Arc::new(Service::with_backend(Box::new(backend), credentials(), Box::new(inventory()), REGION));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(elbstore::api::server::serve(service.clone(), listener, async {
        let _ = stopped.await;
    }));
    let server = Server { address, stop: Some(stop), task: Some(task), service };
    let elb = server.alice();
    let created = elb.create_load_balancer().name("web").subnets("subnet-a").subnets("subnet-b").send().await.unwrap();
    let arn = created.load_balancers()[0].load_balancer_arn().unwrap().to_owned();
    let described = elb.describe_load_balancers().names("web").send().await.unwrap();
    assert_eq!(described.load_balancers()[0].load_balancer_arn(), Some(arn.as_str()), "read what it wrote");
    let err = elb.create_load_balancer().name("web").subnets("subnet-a").subnets("subnet-c").send().await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "DuplicateLoadBalancerName");
    server.stop().await;
    // Every replica holds it, at the same seq with the same digest.
    let started = std::time::Instant::now();
    loop {
        let views: Vec<_> = replicas.iter().map(|r| r.store().unwrap().read()).collect();
        let same = views.windows(2).all(|w| w[0].seq() == w[1].seq() && w[0].state().digest() == w[1].state().digest());
        if same && views.iter().all(|v| v.load_balancer_by_name(ACCOUNT, "web").is_some()) {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "the replicas did not converge");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for replica in replicas {
        replica.shutdown().await;
    }
}

mod requests {
    use proptest::prelude::*;

    const MEMBERS: &[&str] = &[
        "Name",
        "Names.member.1",
        "Type",
        "Scheme",
        "Subnets.member.1",
        "Subnets.member.2",
        "SecurityGroups.member.1",
        "LoadBalancerArn",
        "LoadBalancerArns.member.1",
        "TargetGroupArn",
        "TargetGroupArns.member.1",
        "ListenerArn",
        "ListenerArns.member.1",
        "RuleArn",
        "RuleArns.member.1",
        "TrustStoreArn",
        "ResourceArns.member.1",
        "Protocol",
        "Port",
        "VpcId",
        "Priority",
        "PageSize",
        "Marker",
        "Targets.member.1.Id",
        "Targets.member.1.Port",
        "Tags.member.1.Key",
        "Tags.member.1.Value",
        "TagKeys.member.1",
        "Attributes.member.1.Key",
        "Attributes.member.1.Value",
        "DefaultActions.member.1.Type",
        "DefaultActions.member.1.TargetGroupArn",
        "Actions.member.1.Type",
        "Actions.member.1.TargetGroupArn",
        "Conditions.member.1.Field",
        "Conditions.member.1.Values.member.1",
        "Certificates.member.1.CertificateArn",
        "RulePriorities.member.1.RuleArn",
        "RulePriorities.member.1.Priority",
        "CaCertificatesBundleS3Bucket",
        "CaCertificatesBundleS3Key",
        "HealthCheckPath",
        "IpAddressType",
    ];

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("$LB".to_owned()),
            Just("$TG".to_owned()),
            Just("$LISTENER".to_owned()),
            Just("$RULE".to_owned()),
            Just("$TS".to_owned()),
            Just("arn%3Aaws%3Aelasticloadbalancing%3Aus-east-1%3A444455556666%3Aloadbalancer%2Fapp%2Fx%2F1".to_owned()),
            Just("subnet-a".to_owned()),
            Just("subnet-b".to_owned()),
            Just("subnet-zz".to_owned()),
            Just("sg-1".to_owned()),
            Just("vpc-1".to_owned()),
            Just("HTTP".to_owned()),
            Just("HTTPS".to_owned()),
            Just("TCP".to_owned()),
            Just("forward".to_owned()),
            Just("path-pattern".to_owned()),
            Just("network".to_owned()),
            Just("internal".to_owned()),
            Just("deletion_protection.enabled".to_owned()),
            Just("idle_timeout.timeout_seconds".to_owned()),
            Just("true".to_owned()),
            Just("%ZZ".to_owned()),
            Just("x".repeat(2000)),
            (-2i64..70000).prop_map(|n| n.to_string()),
            "[a-z0-9-]{0,12}",
        ]
    }

    fn request() -> impl Strategy<Value = Vec<u8>> {
        (
            0..elbstore::api::ACTIONS.len(),
            proptest::collection::vec((0..MEMBERS.len(), value()), 0..8),
            prop_oneof![9 => Just(0u8), 1 => Just(1u8)],
        )
            .prop_map(|(action, members, mode)| {
                let mut body = format!("Action={}&Version=2015-12-01", elbstore::api::ACTIONS[action]);
                for (member, value) in members {
                    body.push_str(&format!("&{}={value}", MEMBERS[member]));
                }
                let mut line = vec![b'0' + mode];
                line.extend_from_slice(body.as_bytes());
                line
            })
    }

    /// A load balancer, a target group and a listener to start from, so the
    /// random requests meet resources that exist.
    const SETUP: &[&str] = &[
        "0Action=CreateLoadBalancer&Version=2015-12-01&Name=web&Subnets.member.1=subnet-a&Subnets.member.2=subnet-b",
        "0Action=CreateTargetGroup&Version=2015-12-01&Name=tg&Protocol=HTTP&Port=80&VpcId=vpc-1",
        "0Action=CreateListener&Version=2015-12-01&LoadBalancerArn=$LB&Protocol=HTTP&Port=80\
         &DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn=$TG",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        #[test]
        fn every_request_is_answered_in_xml_and_a_refusal_writes_nothing(
            requests in proptest::collection::vec(request(), 1..20)
        ) {
            let mut data = SETUP.join("\n").into_bytes();
            for request in requests {
                data.push(b'\n');
                data.extend_from_slice(&request);
            }
            let answered = elbstore::fuzzing::api_requests(&data);
            prop_assert!(answered >= SETUP.len(), "the setup was answered: {answered}");
        }
    }
}
