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
use elbstore::replication::{GroupClient, Replica, ReplicaConfig, Request, Status};
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

#[test]
fn a_partitioned_old_leader_cannot_commit_and_catches_up_when_healed() {
    let group = Group::start("partition", 3);
    let client = group.client();
    let mut acked = group.write_fleet(&client, 0..5);
    let old = group.leader();
    let others: Vec<u64> = group.replicas.keys().copied().filter(|id| *id != old).collect();
    group.replicas[&old].block(others.clone());
    for id in &others {
        group.replicas[id].block([old]);
    }
    // The old leader, cut off, cannot commit.
    let answer = group.runtime.block_on(group.replicas[&old].write(fleet_request(100), Duration::from_millis(1500)));
    assert!(matches!(answer, elbstore::replication::node::WriteAnswer::Unavailable { .. }), "{answer:?}");
    // The majority side elects a leader and takes writes.
    let majority = GroupClient::new(others.iter().map(|id| group.addrs[id].to_string()), Duration::from_secs(10));
    acked.extend(group.write_fleet(&majority, 5..10));
    for replica in group.replicas.values() {
        replica.block([]);
    }
    group.check(&acked, 10);
    let store = group.replicas[&old].store().unwrap();
    assert!(
        store.read().load_balancer_by_name(&fleet::account(100), &fleet::name(100)).is_none(),
        "the cut-off leader's entry was never committed, and its log dropped it"
    );
}

#[test]
fn a_wiped_replica_rejoins_from_a_snapshot() {
    let mut group = Group::start_with("wiped", 3, |config| {
        config.snapshot_every = 20;
        config.logs_kept = 0;
    });
    let client = group.client();
    let mut acked = group.write_fleet(&client, 0..10);
    let leader = group.leader();
    let victim = *group.replicas.keys().find(|id| **id != leader).unwrap();
    group.stop_replica(victim);
    std::fs::remove_dir_all(group.dir.join(format!("r{victim}"))).unwrap();
    acked.extend(group.write_fleet(&client, 10..60));
    group.start_replica(victim);
    group.check(&acked, 60);
    let store = group.replicas[&victim].store().unwrap();
    let snapshots = store.store().snapshots();
    assert!(!snapshots.is_empty(), "the wiped replica's store starts from a snapshot");
    // It takes writes like any other afterwards.
    acked.extend(group.write_fleet(&client, 60..65));
    group.check(&acked, 65);
}
