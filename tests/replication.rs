//! Replication on Raft, in one process: groups of replicas on loopback,
//! writes through the group's client, and the replicas compared.
//! (The process-level failure tests are scripts/raft-soak.sh.)

#![cfg(feature = "replication")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use elbstore::elb::{fleet, Command, Settings};
use elbstore::replication::{GroupClient, Replica, ReplicaConfig, Request, Status, Write};
use elbstore::TxnMeta;

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elbstore-replication-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

struct Group {
    runtime: tokio::runtime::Runtime,
    dir: PathBuf,
    addrs: BTreeMap<u64, SocketAddr>,
    replicas: BTreeMap<u64, Replica>,
    tweak: fn(&mut ReplicaConfig),
}

impl Group {
    fn start(name: &str, n: u64) -> Group {
        Group::start_with(name, n, |_| {})
    }

    fn start_with(name: &str, n: u64, tweak: fn(&mut ReplicaConfig)) -> Group {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = temp_dir(name);
        let addrs: BTreeMap<u64, SocketAddr> = (1..=n).map(|id| (id, free_addr())).collect();
        let mut group = Group { runtime, dir, addrs, replicas: BTreeMap::new(), tweak };
        for id in 1..=n {
            group.start_replica(id);
        }
        group
    }

    fn config(&self, id: u64) -> ReplicaConfig {
        let mut config =
            ReplicaConfig::new(id, self.dir.join(format!("r{id}")), self.addrs[&id], "elb-test", "replication");
        config.peers = self.addrs.iter().map(|(id, addr)| (*id, addr.to_string())).collect();
        config.settings = Settings::in_region("us-east-1");
        config.faults = true;
        config.write_timeout = Duration::from_secs(1);
        (self.tweak)(&mut config);
        config
    }

    fn leader(&self) -> u64 {
        let started = Instant::now();
        loop {
            let leaders: Vec<u64> = self
                .replicas
                .iter()
                .filter(|(id, replica)| replica.raft().metrics().borrow().current_leader == Some(**id))
                .map(|(id, _)| *id)
                .collect();
            if let [leader] = leaders[..] {
                return leader;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no single leader: {leaders:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes reference load balancers `range`, each in its own
    /// transaction; returns the acknowledged seqs.
    fn write_fleet(&self, client: &GroupClient, range: std::ops::Range<u64>) -> Vec<u64> {
        range
            .map(|i| {
                let reply = client.write(&fleet_request(i)).unwrap();
                assert!(reply.refused.is_none(), "{reply:?}");
                reply.seq.unwrap()
            })
            .collect()
    }

    /// Every running replica holds every acknowledged seq, the same state at
    /// the same seq, and `lbs` load balancers.
    fn check(&self, acked: &[u64], lbs: usize) {
        let status = self.converged(acked.iter().copied().max().unwrap_or(0));
        for (id, replica) in &self.replicas {
            let store = replica.store().unwrap();
            let view = store.read();
            assert_eq!(view.seq(), status.seq, "replica {id}");
            assert_eq!(view.counts().load_balancers, lbs, "replica {id}");
            assert!(acked.iter().all(|seq| *seq <= view.seq()), "replica {id} lacks an acknowledged seq");
        }
    }

    fn start_replica(&mut self, id: u64) {
        let config = self.config(id);
        let replica = self.runtime.block_on(Replica::start(config)).unwrap();
        self.replicas.insert(id, replica);
    }

    fn stop_replica(&mut self, id: u64) {
        let replica = self.replicas.remove(&id).unwrap();
        self.runtime.block_on(replica.shutdown());
    }

    fn client(&self) -> GroupClient {
        GroupClient::new(self.addrs.values().map(|a| a.to_string()), Duration::from_secs(10))
    }

    fn statuses(&self) -> Vec<Status> {
        let client = self.client();
        self.replicas.keys().map(|id| client.status(&self.addrs[id].to_string(), false, true).unwrap()).collect()
    }

    /// Waits until every running replica has applied the same seq with the same digest.
    fn converged(&self, at_least: u64) -> Status {
        let started = Instant::now();
        loop {
            let statuses = self.statuses();
            let first = &statuses[0];
            if first.seq >= at_least && statuses.iter().all(|s| s.seq == first.seq && s.digest == first.digest) {
                return first.clone();
            }
            assert!(started.elapsed() < Duration::from_secs(30), "replicas did not converge: {statuses:#?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let replicas = std::mem::take(&mut self.replicas);
        for (_, replica) in replicas {
            self.runtime.block_on(replica.shutdown());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fleet_request(i: u64) -> Request {
    Request::ReferenceFleet {
        meta: TxnMeta::new("svc:test", format!("reference load balancer {i}")),
        first: i,
        end: i + 1,
    }
}

#[test]
fn a_group_of_three_applies_every_write_alike_on_every_replica() {
    let group = Group::start("three", 3);
    let client = Arc::new(group.client());
    let replies: Vec<_> = (0..20).map(|i| client.write(&fleet_request(i)).unwrap()).collect();
    for (i, reply) in replies.iter().enumerate() {
        assert!(reply.refused.is_none(), "{reply:?}");
        assert_eq!(reply.seq, Some(i as u64 + 1));
    }
    // A refusal is every replica's answer, and leaves no transaction.
    let lb = replies[0].created[0].2.clone();
    let refused = client
        .write(&Request::Execute {
            meta: TxnMeta::new("svc:test", "a duplicate listener"),
            commands: vec![Command::CreateListener(elbstore::elb::CreateListener {
                load_balancer: match lb {
                    elbstore::elb::EntityKey::LoadBalancer(id) => id,
                    other => panic!("{other:?}"),
                },
                port: Some(80),
                ..Default::default()
            })],
        })
        .unwrap();
    assert!(refused.refused.is_some(), "{refused:?}");
    let status = group.converged(20);
    assert_eq!(status.seq, 20);
    for replica in group.replicas.values() {
        let store = replica.store().unwrap();
        assert_eq!(store.read().counts().load_balancers, 20);
        let txn = store.store().transactions(20..=20).next().unwrap().unwrap();
        assert!(txn.meta.origin.is_some(), "every transaction names its entry");
    }
    let _ = fleet::account(0);
}

#[test]
fn losing_the_leader_elects_another_and_loses_no_acknowledged_write() {
    let mut group = Group::start("leader-loss", 3);
    let client = group.client();
    let mut acked = group.write_fleet(&client, 0..10);
    let old = group.leader();
    let stopped = Instant::now();
    group.stop_replica(old);
    acked.extend(group.write_fleet(&client, 10..20));
    let new = group.leader();
    assert_ne!(new, old);
    eprintln!("a new leader ({new}) took writes {:?} after the old one ({old}) stopped", stopped.elapsed());
    group.start_replica(old);
    group.check(&acked, 20);
}

#[test]
fn a_lost_majority_stops_writes_with_a_clear_error_and_one_back_resumes_them() {
    let mut group = Group::start("majority", 3);
    let client = group.client();
    let mut acked = group.write_fleet(&client, 0..5);
    let leader = group.leader();
    let others: Vec<u64> = group.replicas.keys().copied().filter(|id| *id != leader).collect();
    for id in &others {
        group.stop_replica(*id);
    }
    let short = GroupClient::new(group.addrs.values().map(|a| a.to_string()), Duration::from_secs(3));
    let err = short.write(&fleet_request(5)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("did not commit the request within"), "{text}");
    assert!(text.contains("cannot reach a majority"), "{text}");
    group.start_replica(others[0]);
    acked.extend(group.write_fleet(&client, 6..10));
    group.start_replica(others[1]);
    // The write that timed out may have committed after all: count what is there.
    let status = group.converged(*acked.last().unwrap());
    let lbs = group.replicas.values().next().unwrap().store().unwrap().read().counts().load_balancers;
    assert!(lbs == 9 || lbs == 10, "{lbs}");
    group.check(&acked, lbs);
    assert!(status.seq >= 9);
}

/// The cut-off leader falls behind the majority's purged log while it is
/// cut off, so it rejoins through a snapshot of a few MB (snapshot chunks
/// over the server's body limit once failed forever, and the old leader
/// stood for election again and again).
#[test]
fn a_partitioned_old_leader_cannot_commit_and_catches_up_when_healed() {
    let group = Group::start_with("partition", 3, |config| {
        config.snapshot_every = 50;
        config.logs_kept = 5;
    });
    let client = group.client();
    let mut acked = group.write_fleet(&client, 0..5);
    let old = group.leader();
    let others: Vec<u64> = group.replicas.keys().copied().filter(|id| *id != old).collect();
    group.replicas[&old].block(others.clone());
    for id in &others {
        group.replicas[id].block([old]);
    }
    // The old leader, cut off, cannot commit.
    let answer = group
        .runtime
        .block_on(group.replicas[&old].write(Write::once(fleet_request(100_000)), Duration::from_millis(1500)));
    assert!(matches!(answer, elbstore::replication::node::WriteAnswer::Unavailable { .. }), "{answer:?}");
    // The majority side elects a leader and takes writes.
    let majority = GroupClient::new(others.iter().map(|id| group.addrs[id].to_string()), Duration::from_secs(10));
    acked.extend(group.write_fleet(&majority, 5..10));
    // Enough more that the majority's log is purged past the old leader's.
    let written = Instant::now();
    let mut end = 10;
    while written.elapsed() < Duration::from_secs(2) || end < 300 {
        let (first, last) = (end, end + 20);
        let request = Request::ReferenceFleet { meta: TxnMeta::new("svc:test", "fleet"), first, end: last };
        let reply = majority.write(&request).unwrap();
        acked.push(reply.seq.unwrap());
        end = last;
    }
    for replica in group.replicas.values() {
        replica.block([]);
    }
    group.check(&acked, end as usize);
    let store = group.replicas[&old].store().unwrap();
    assert!(
        store.read().load_balancer_by_name(&fleet::account(100_000), &fleet::name(100_000)).is_none(),
        "the cut-off leader's entry was never committed, and its log dropped it"
    );
}

/// A replica whose directory is wiped rejoins from a snapshot, and the
/// snapshot brings the store's whole log: the replica's deletion guard
/// counts deletions made before the wipe (within its window) and it can
/// revert a transaction older than the snapshot, deciding both like every
/// other replica.
#[test]
fn a_wiped_replica_rejoins_from_a_snapshot_with_the_whole_history() {
    use elbstore::elb::OnConflict;
    let mut group = Group::start_with("wiped", 3, |config| {
        config.snapshot_every = 20;
        config.logs_kept = 0;
    });
    let client = group.client();
    let mut acked = group.write_fleet(&client, 0..60);
    let leader = group.leader();
    let store = group.replicas[&leader].store().unwrap();
    let delete = |range: std::ops::Range<u64>| -> Vec<Command> {
        let view = store.read();
        range
            .map(|i| view.load_balancer_by_name(&fleet::account(i), &fleet::name(i)).unwrap().id)
            .map(|load_balancer| Command::DeleteLoadBalancer { load_balancer })
            .collect()
    };
    // 30 deletions, under the guard's limit of 50 per actor and hour.
    let sweep = TxnMeta::new("ops:sweeper", "retire old load balancers");
    let first = client.write(&Request::Execute { meta: sweep.clone(), commands: delete(0..30) }).unwrap();
    let swept = first.seq.expect("30 deletions need no approval");
    acked.push(swept);
    let victim = *group.replicas.keys().find(|id| **id != leader).unwrap();
    group.stop_replica(victim);
    std::fs::remove_dir_all(group.dir.join(format!("r{victim}"))).unwrap();
    acked.extend(group.write_fleet(&client, 60..100));
    group.start_replica(victim);
    group.check(&acked, 70);
    let rebuilt = group.replicas[&victim].store().unwrap();
    assert!(!rebuilt.store().snapshots().is_empty(), "the wiped replica's store starts from a snapshot");
    let head = rebuilt.read().seq();
    let theirs: Vec<_> = rebuilt.store().transactions(1..=head).map(|t| t.unwrap()).collect();
    let ours: Vec<_> = store.store().transactions(1..=head).map(|t| t.unwrap()).collect();
    assert_eq!(theirs.len() as u64, head, "the rebuilt replica's log starts at the first transaction");
    assert!(theirs == ours, "the rebuilt replica's log is the leader's");
    // 30 more by the same actor make 60 within the hour: every replica refuses.
    let refused = client.write(&Request::Execute { meta: sweep.clone(), commands: delete(30..60) }).unwrap();
    assert!(refused.refused.as_ref().is_some_and(|r| r.guarded), "{refused:?}");
    group.check(&acked, 70);
    // A revert of the deletion, older than the snapshot, on every replica.
    let revert = Request::Revert {
        meta: TxnMeta::new("ops:oncall", "undo the sweep"),
        transactions: vec![swept],
        on_conflict: OnConflict::Abort,
    };
    let reverted = client.write(&revert).unwrap();
    acked.push(reverted.seq.unwrap_or_else(|| panic!("the revert commits: {reverted:?}")));
    group.check(&acked, 100);
    // It takes writes like any other afterwards.
    acked.extend(group.write_fleet(&client, 100..105));
    group.check(&acked, 105);
}

/// A replica started without peers and added by `pitr cluster add`
/// catches up and votes; one of another store is refused by name; a dead
/// replica is replaced by a new one; `pitr cluster status` shows it all, in
/// keys docs/CLI.md names.
#[test]
fn members_are_added_removed_and_replaced_and_another_store_is_refused() {
    use elbstore::tools::pitr;
    let mut group = Group::start("members", 3);
    let client = group.client();
    let acked = group.write_fleet(&client, 0..10);
    let members = |group: &Group| group.addrs.values().map(|a| a.to_string()).collect::<Vec<_>>().join(",");
    let pitr_json = |args: &[&str]| -> (i32, serde_json::Value) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).chain(["--json".to_owned()]).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = pitr::run(args, &mut out, &mut err);
        (code, serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out))))
    };
    // A replica of another store, started alone, is refused by name.
    let foreign_addr = free_addr();
    let foreign = ReplicaConfig::new(9, group.dir.join("foreign"), foreign_addr, "elb-test", "another-environment");
    let foreign = group.runtime.block_on(Replica::start(foreign)).unwrap();
    let (code, doc) =
        pitr_json(&["cluster", "add", "--group", &members(&group), "--id", "9", "--addr", &foreign_addr.to_string()]);
    assert_eq!(code, 3, "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("elb-test/another-environment") && message.contains("refusing to add it"), "{message}");
    group.runtime.block_on(foreign.shutdown());

    // A fourth replica of this store, started alone, is added and catches up.
    let addr4 = free_addr();
    group.addrs.insert(4, addr4);
    let mut config = group.config(4);
    config.peers.clear();
    let replica = group.runtime.block_on(Replica::start(config)).unwrap();
    group.replicas.insert(4, replica);
    let (code, doc) =
        pitr_json(&["cluster", "add", "--group", &members(&group), "--id", "4", "--addr", &addr4.to_string()]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["voters"], serde_json::json!([1, 2, 3, 4]));
    group.check(&acked, 10);

    // Replica 3 dies; replica 5 replaces it.
    group.stop_replica(3);
    group.addrs.remove(&3);
    let addr5 = free_addr();
    group.addrs.insert(5, addr5);
    let mut config = group.config(5);
    config.peers.clear();
    let replica = group.runtime.block_on(Replica::start(config)).unwrap();
    group.replicas.insert(5, replica);
    let (code, doc) = pitr_json(&[
        "cluster",
        "replace",
        "--group",
        &members(&group),
        "--old",
        "3",
        "--id",
        "5",
        "--addr",
        &addr5.to_string(),
    ]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["voters"], serde_json::json!([1, 2, 4, 5]));
    let mut acked = acked;
    acked.extend(group.write_fleet(&client, 10..15));
    group.check(&acked, 15);

    // And 4 is removed again.
    let (code, doc) = pitr_json(&["cluster", "remove", "--group", &members(&group), "--id", "4"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["voters"], serde_json::json!([1, 2, 5]));
    let (code, status) = pitr_json(&["cluster", "status", "--group", &members(&group), "--digest"]);
    assert_eq!(code, 0, "{status}");
    assert_eq!(status["converged"], true, "{status}");
    // Every key of the documents is in docs/CLI.md.
    let doc_text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CLI.md")).unwrap();
    let mut keys = std::collections::BTreeSet::new();
    fn collect(value: &serde_json::Value, keys: &mut std::collections::BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| {
                keys.insert(k.clone());
                collect(v, keys);
            }),
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, keys)),
            _ => {}
        }
    }
    collect(&status, &mut keys);
    collect(&doc, &mut keys);
    let missing: Vec<_> = keys.iter().filter(|k| !doc_text.contains(&format!("`{k}`"))).collect();
    assert!(missing.is_empty(), "keys not in docs/CLI.md: {missing:?}");
}

/// The group on a simulated network: openraft's nodes with this crate's log
/// and state machine, their RPCs delivered in process after random delays
/// (so out of order), some requests and some replies lost, nodes crashed and
/// restarted from their directories.
mod simulated {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use elbstore::elb::Settings;
    use elbstore::io::{FileSystem, RealFs};
    use elbstore::replication::log::LogStore;
    use elbstore::replication::machine::{Machine, MachineConfig};
    use elbstore::replication::{Proposal, Reply, TypeConfig};
    use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
    use openraft::network::RPCOption;
    use openraft::raft::{
        AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
        VoteResponse,
    };
    use openraft::{BasicNode, Config, Raft, RaftNetwork, RaftNetworkFactory};
    use parking_lot::Mutex;

    /// The network: who is running, and how badly messages travel.
    #[derive(Default)]
    pub struct Net {
        nodes: Mutex<BTreeMap<u64, Raft<TypeConfig>>>,
        /// Out of 1000, for a request and again for its reply.
        loss: AtomicU64,
        max_delay_ms: AtomicU64,
        seed: AtomicU64,
    }

    impl Net {
        fn random(&self, below: u64) -> u64 {
            let mut x = self.seed.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^= x >> 33;
            x % below.max(1)
        }

        async fn travel(&self) -> bool {
            let delay = self.random(self.max_delay_ms.load(Ordering::Relaxed) + 1);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            self.random(1000) >= self.loss.load(Ordering::Relaxed)
        }
    }

    fn unreachable<E: std::error::Error>(what: &str) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
        RPCError::Unreachable(Unreachable::new(&std::io::Error::other(what.to_owned())))
    }

    pub struct Link {
        net: Arc<Net>,
        target: u64,
    }

    impl Link {
        async fn call<T, E, F, Fut>(&self, send: F) -> Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>
        where
            E: std::error::Error,
            F: FnOnce(Raft<TypeConfig>) -> Fut,
            Fut: std::future::Future<Output = Result<T, RaftError<u64, E>>>,
        {
            if !self.net.travel().await {
                return Err(unreachable("request lost"));
            }
            let Some(raft) = self.net.nodes.lock().get(&self.target).cloned() else {
                return Err(unreachable("node down"));
            };
            let answer = send(raft).await;
            if !self.net.travel().await {
                return Err(unreachable("reply lost"));
            }
            answer.map_err(|err| RPCError::RemoteError(openraft::error::RemoteError::new(self.target, err)))
        }
    }

    impl RaftNetwork<TypeConfig> for Link {
        async fn append_entries(
            &mut self,
            rpc: AppendEntriesRequest<TypeConfig>,
            _: RPCOption,
        ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
            self.call(|raft| async move { raft.append_entries(rpc).await }).await
        }

        async fn install_snapshot(
            &mut self,
            rpc: InstallSnapshotRequest<TypeConfig>,
            _: RPCOption,
        ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>>
        {
            self.call(|raft| async move { raft.install_snapshot(rpc).await }).await
        }

        async fn vote(
            &mut self,
            rpc: VoteRequest<u64>,
            _: RPCOption,
        ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
            self.call(|raft| async move { raft.vote(rpc).await }).await
        }
    }

    #[derive(Clone)]
    pub struct Factory(pub Arc<Net>);

    impl RaftNetworkFactory<TypeConfig> for Factory {
        type Network = Link;

        async fn new_client(&mut self, target: u64, _: &BasicNode) -> Link {
            Link { net: self.0.clone(), target }
        }
    }

    pub struct Node {
        pub raft: Raft<TypeConfig>,
        pub machine: Machine,
    }

    pub async fn start(net: &Arc<Net>, dir: &std::path::Path, id: u64) -> Node {
        let config = Config {
            heartbeat_interval: 50,
            election_timeout_min: 150,
            election_timeout_max: 300,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(25),
            max_in_snapshot_log_to_keep: 3,
            purge_batch_size: 1,
            install_snapshot_timeout: 1000,
            ..Config::default()
        }
        .validate()
        .unwrap();
        let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
        let node_dir = dir.join(format!("n{id}"));
        let log = LogStore::open(fs, &node_dir.join("raft")).unwrap();
        let config_of = || MachineConfig {
            dir: node_dir.clone(),
            name: "elb-sim".into(),
            environment: "test".into(),
            settings: Settings::in_region("us-east-1"),
            observer: None,
        };
        // A snapshot the crashed node was building may hold its store open
        // for a moment after the crash (in a process of its own the store
        // would go with the process).
        let mut tries = 0;
        let machine = loop {
            match Machine::open(config_of()) {
                Ok(machine) => break machine,
                Err(err) if tries < 100 && err.to_string().contains("lock") => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("{err}"),
            }
        };
        machine.resume(&log).unwrap();
        let raft = Raft::new(id, Arc::new(config), Factory(net.clone()), log, machine.clone()).await.unwrap();
        net.nodes.lock().insert(id, raft.clone());
        Node { raft, machine }
    }

    /// Proposes `proposal` wherever a leader is, within `timeout`; its replies.
    pub async fn propose(nodes: &BTreeMap<u64, Node>, proposal: Proposal, timeout: Duration) -> Option<Vec<Reply>> {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            let leader = nodes.iter().find(|(id, node)| node.raft.metrics().borrow().current_leader == Some(**id));
            if let Some((_, node)) = leader {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if let Ok(Ok(response)) = tokio::time::timeout(left, node.raft.client_write(proposal.clone())).await {
                    return Some(response.data);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    pub fn set(net: &Net, loss: u64, delay: u64) {
        net.loss.store(loss, Ordering::Relaxed);
        net.max_delay_ms.store(delay, Ordering::Relaxed);
    }

    impl Net {
        /// Seeds the weather's randomness.
        pub fn seed(&self, seed: u64) {
            self.seed.store(seed, Ordering::Relaxed);
        }

        /// Takes a crashed node off the network.
        pub fn remove(&self, id: u64) {
            self.nodes.lock().remove(&id);
        }
    }
}

#[derive(Clone, Debug)]
enum SimOp {
    /// A write; `retried`: its answer is lost and the client sends it again.
    Write {
        retried: bool,
    },
    Crash(u64),
    Restart(u64),
    Weather {
        loss: u64,
        delay: u64,
    },
}

fn sim_op() -> impl proptest::strategy::Strategy<Value = SimOp> {
    use proptest::prelude::*;
    prop_oneof![
        6 => proptest::bool::weighted(0.3).prop_map(|retried| SimOp::Write { retried }),
        1 => (1..=3u64).prop_map(SimOp::Crash),
        1 => (1..=3u64).prop_map(SimOp::Restart),
        1 => (0..250u64, 0..25u64).prop_map(|(loss, delay)| SimOp::Weather { loss, delay }),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 6, ..Default::default() })]

    /// No acknowledged write is lost and the replicas never diverge, over a
    /// network that delays, reorders and drops messages, with nodes crashed
    /// and restarted, and clients that send a write again when its answer is
    /// lost: once the weather clears and every node is back, every replica
    /// holds the same state at the same seq and the whole log, each
    /// acknowledged transaction is at its seq with its time on every
    /// replica, and each write committed once, its answer naming that
    /// transaction.
    #[test]
    fn no_acknowledged_write_is_lost_and_replicas_never_diverge_on_a_bad_network(
        ops in proptest::collection::vec(sim_op(), 10..40),
        seed in proptest::prelude::any::<u64>(),
    ) {
        simulate(ops, seed);
    }
}

/// A case that once failed: a follower was sent entries that did not
/// follow the log id before them (a range whose start the leader had
/// purged read as the entries after the purge).
#[test]
fn a_follower_is_never_sent_entries_that_do_not_follow_its_log() {
    use SimOp::*;
    let write = Write { retried: false };
    let retried = Write { retried: true };
    let mut ops =
        vec![write.clone(), retried.clone(), write.clone(), Restart(2), write.clone(), write.clone(), Crash(2)];
    ops.extend(std::iter::repeat_n(write.clone(), 7));
    ops.extend([Crash(2), write.clone(), Weather { loss: 194, delay: 16 }, write.clone(), retried.clone()]);
    ops.extend([write.clone(), Restart(3), retried, write.clone(), write]);
    simulate(ops, 316826477585491361);
}

/// Runs `ops` on a group of three replicas over a network whose weather is
/// seeded by `seed`, heals it, and checks what
/// `no_acknowledged_write_is_lost_and_replicas_never_diverge_on_a_bad_network`
/// promises.
fn simulate(ops: Vec<SimOp>, seed: u64) {
    use elbstore::replication::{Proposal, Reply, Write};
    use elbstore::RequestId;
    use simulated::{propose, set, start, Net};
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = temp_dir(&format!("sim-{seed:x}"));
    runtime.block_on(async {
        let net = Arc::new(Net::default());
        net.seed(seed);
        let mut nodes = BTreeMap::new();
        for id in 1..=3 {
            nodes.insert(id, start(&net, &dir, id).await);
        }
        let members: BTreeMap<u64, openraft::BasicNode> =
            (1..=3).map(|id| (id, openraft::BasicNode::new("sim"))).collect();
        nodes[&1].raft.initialize(members).await.unwrap();
        propose(&nodes, Proposal::init("elb-sim", "test"), Duration::from_secs(10)).await.expect("the group starts");
        let mut acked: Vec<(u64, elbstore::Timestamp)> = Vec::new();
        let mut answered: Vec<(RequestId, Reply)> = Vec::new();
        let write = |i: u64| Write { id: Some(RequestId { client: seed, serial: i }), request: fleet_request(i) };
        let mut next = 0u64;
        for op in ops {
            match op {
                SimOp::Write { retried } => {
                    // One to three requests in one entry, as the leader batches them.
                    let requests: Vec<_> = (next..next + next % 3 + 1).map(write).collect();
                    next += requests.len() as u64;
                    let time = elbstore::Clock::now(&elbstore::SystemClock);
                    let proposal = Proposal::Requests { time, requests: requests.clone() };
                    // A lost answer is retried (same ids) until the deadline.
                    let mut replies = propose(&nodes, proposal.clone(), Duration::from_millis(1500)).await;
                    if retried {
                        replies = propose(&nodes, proposal, Duration::from_millis(1500)).await.or(replies);
                    }
                    let replies = replies.unwrap_or_default();
                    for (write, reply) in requests.iter().zip(replies) {
                        if let (Some(seq), Some(time)) = (reply.seq, reply.time) {
                            acked.push((seq, time));
                        }
                        answered.push((write.id.unwrap(), reply));
                    }
                }
                SimOp::Crash(id) => {
                    if let Some(node) = nodes.remove(&id) {
                        net.remove(id);
                        let _ = node.raft.shutdown().await;
                    }
                }
                SimOp::Restart(id) => {
                    if let std::collections::btree_map::Entry::Vacant(slot) = nodes.entry(id) {
                        slot.insert(start(&net, &dir, id).await);
                    }
                }
                SimOp::Weather { loss, delay } => set(&net, loss, delay),
            }
        }
        set(&net, 0, 0);
        for id in 1..=3 {
            if let std::collections::btree_map::Entry::Vacant(slot) = nodes.entry(id) {
                slot.insert(start(&net, &dir, id).await);
            }
        }
        // One more write through the healed group commits everything before it.
        let last = loop {
            let request = write(next);
            next += 1;
            let time = elbstore::Clock::now(&elbstore::SystemClock);
            let proposal = Proposal::Requests { time, requests: vec![request] };
            let replies = propose(&nodes, proposal, Duration::from_secs(10)).await.unwrap_or_default();
            if let Some(Reply { seq: Some(seq), time: Some(time), .. }) = replies.into_iter().next() {
                acked.push((seq, time));
                break seq;
            }
        };
        let started = std::time::Instant::now();
        loop {
            let views: Vec<_> = nodes.values().map(|n| n.machine.store().map(|s| s.read())).collect();
            let settled = views.iter().all(|v| v.as_ref().is_some_and(|v| v.seq() >= last));
            if settled {
                let digests: Vec<_> = views.iter().flatten().map(|v| (v.seq(), v.state().digest())).collect();
                if digests.windows(2).all(|w| w[0] == w[1]) {
                    break;
                }
            }
            if started.elapsed() > Duration::from_secs(30) {
                let seen: Vec<_> = views.iter().flatten().map(|v| (v.seq(), v.state().digest().to_hex())).collect();
                panic!("the replicas did not converge past seq {last} within 30 s: (seq, digest) {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for (id, node) in &nodes {
            let store = node.machine.store().unwrap();
            // Every replica has the whole log, one rebuilt from a snapshot too.
            let head = store.read().seq();
            let log: Vec<_> = store.store().transactions(1..=head).map(|t| t.unwrap()).collect();
            for (seq, time) in &acked {
                assert_eq!(log[*seq as usize - 1].time, *time, "replica {id}: acknowledged transaction {seq} replaced");
            }
            // Each write committed at most once, and its answer names that transaction.
            let mut by_id: BTreeMap<RequestId, u64> = BTreeMap::new();
            for txn in &log {
                if let Some(request) = txn.meta.origin.and_then(|o| o.request) {
                    let twice = by_id.insert(request, txn.seq);
                    assert!(
                        twice.is_none(),
                        "replica {id}: write {request:?} committed twice: {twice:?} and {}",
                        txn.seq
                    );
                }
            }
            for (request, reply) in &answered {
                assert!(reply.refused.is_none(), "{reply:?}");
                assert_eq!(
                    reply.seq,
                    by_id.get(request).copied(),
                    "replica {id}: the answer to {request:?}: {reply:?}"
                );
            }
        }
        for (_, node) in nodes {
            let _ = node.raft.shutdown().await;
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// The guard, attribution, history, revert and the change feed on a
/// replicated store: a bulk deletion without an approval is refused by
/// every replica alike; approved, it commits; a revert through the group
/// brings the load balancers back; a follower's store answers history and
/// its change feed delivers every transaction, the revert marked.
#[test]
fn the_guard_history_revert_and_the_feed_work_on_a_replicated_store() {
    use elbstore::elb::{EntityKey, OnConflict};
    use elbstore::Point;
    let group = Group::start("guard", 3);
    let client = group.client();
    let built =
        client.write(&Request::ReferenceFleet { meta: TxnMeta::new("svc:build", "fleet"), first: 0, end: 60 }).unwrap();
    let lbs: Vec<Command> = built
        .created
        .iter()
        .filter_map(|(_, _, key)| match key {
            EntityKey::LoadBalancer(id) => Some(Command::DeleteLoadBalancer { load_balancer: *id }),
            _ => None,
        })
        .take(55)
        .collect();
    assert_eq!(lbs.len(), 55);
    let follower = *group.replicas.keys().find(|id| **id != group.leader()).unwrap();
    let store = group.replicas[&follower].store().unwrap();
    let mut feed = store.store().subscribe(1).unwrap();

    let cleanup = TxnMeta::new("maint:cleanup", "remove stale load balancers");
    let refused = client.write(&Request::Execute { meta: cleanup.clone(), commands: lbs.clone() }).unwrap();
    let refusal = refused.refused.expect("55 deletions need an approval");
    assert!(refusal.guarded && refusal.code == "OperationNotPermitted", "{refusal:?}");
    let approved = cleanup.with_approval("CHG-1", "lead:bob");
    let deleted = client.write(&Request::Execute { meta: approved, commands: lbs }).unwrap().seq.unwrap();
    let revert = Request::Revert {
        meta: TxnMeta::new("oncall:alice", "undo the cleanup"),
        transactions: vec![deleted],
        on_conflict: OnConflict::Abort,
    };
    let reverted = client.write(&revert).unwrap().seq.unwrap();
    let status = group.converged(reverted);
    assert_eq!(status.seq, reverted);

    let store = group.replicas[&follower].store().unwrap();
    assert_eq!(store.read().counts().load_balancers, 60, "the revert brought them back");
    let before = store.state_at(Point::Before(deleted)).unwrap();
    let after = store.state_at(Point::Seq(deleted)).unwrap();
    assert_eq!((before.counts().load_balancers, after.counts().load_balancers), (60, 5));
    let mut seen = Vec::new();
    while seen.len() < reverted as usize {
        let txn = feed.recv_timeout(Duration::from_secs(10)).unwrap().expect("the feed delivers");
        seen.push(txn);
    }
    assert_eq!(seen.iter().map(|t| t.seq).collect::<Vec<_>>(), (1..=reverted).collect::<Vec<_>>());
    let deletion = &seen[deleted as usize - 1];
    assert_eq!(
        (deletion.meta.actor.as_str(), deletion.meta.approved_by.as_deref()),
        ("maint:cleanup", Some("lead:bob"))
    );
    assert_eq!(seen.last().unwrap().meta.reverts, vec![deleted], "the revert names what it reverts");
    assert!(seen.iter().all(|t| t.meta.origin.is_some()), "every transaction names its entry");
}
