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
}

impl Group {
    fn start(name: &str, n: u64) -> Group {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = temp_dir(name);
        let addrs: BTreeMap<u64, SocketAddr> = (1..=n).map(|id| (id, free_addr())).collect();
        let mut group = Group { runtime, dir, addrs, replicas: BTreeMap::new() };
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
        config
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
