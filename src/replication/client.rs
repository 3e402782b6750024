//! The group's client: what a service, the load generator or the operator
//! tool uses to reach a group. It sends a write to the replica it believes
//! leads, follows redirects, and tries the others when one does not answer,
//! until the write is applied or its deadline passes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::node::{Found, Lookup, MemberChange, MembersAnswer, Status, WriteAnswer};
use super::{Reply, Request, Write};
use crate::store::RequestId;

/// Why a request to the group failed.
#[derive(Debug)]
pub enum ClientError {
    /// No replica committed the write within the deadline: the group has
    /// no leader that reaches a majority (too many replicas are down or cut
    /// off). Each replica's last answer is listed. A write that timed out may
    /// still commit later.
    Unavailable {
        /// How long the client tried.
        waited: Duration,
        /// Each address and what it last said.
        tried: Vec<(String, String)>,
    },
    /// The leader refused a membership change.
    Refused(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Unavailable { waited, tried } => {
                write!(f, "the group did not commit the request within {waited:?}")?;
                for (addr, said) in tried {
                    write!(f, "; {addr}: {said}")?;
                }
                Ok(())
            }
            ClientError::Refused(message) => write!(f, "refused: {message}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A client of one group, by its replicas' addresses. Share it between
/// threads: it is `Sync`, and remembers the leader it found last.
#[derive(Debug)]
pub struct GroupClient {
    addrs: Vec<String>,
    leader: Mutex<Option<String>>,
    agent: ureq::Agent,
    deadline: Duration,
    /// This client's random id, and the number of its last write: the id
    /// of each write ([`RequestId`]), which its retries share.
    id: u64,
    serial: AtomicU64,
}

enum Attempt<T> {
    Done(T),
    Redirect(Option<String>),
    Failed(String),
}

impl GroupClient {
    /// A client of the replicas at `addrs` (`host:port`), giving up on a
    /// request after `deadline`.
    pub fn new(addrs: impl IntoIterator<Item = impl Into<String>>, deadline: Duration) -> GroupClient {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(deadline.max(Duration::from_secs(1))))
            // One kept-alive connection per writer thread, not ureq's default
            // of 3 per host: more would be a new TCP connection per request.
            .max_idle_connections(1024)
            .max_idle_connections_per_host(256)
            .http_status_as_error(false)
            .build();
        GroupClient {
            addrs: addrs.into_iter().map(Into::into).collect(),
            leader: Mutex::new(None),
            agent: config.into(),
            deadline,
            id: crate::identity::StoreId::random().0 as u64,
            serial: AtomicU64::new(0),
        }
    }

    /// The replicas' addresses.
    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// POSTs `body` as JSON to `path` on `addr` and reads the JSON answer;
    /// anything else is what the replica said, in words.
    fn post<R: serde::de::DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<R, String> {
        match self.agent.post(&format!("http://{addr}{path}")).send_json(body) {
            Ok(mut response) if response.status() == 200 => {
                response.body_mut().read_json::<R>().map_err(|err| err.to_string())
            }
            Ok(mut response) => {
                let text = response.body_mut().read_to_string().unwrap_or_default();
                Err(format!("HTTP {}: {text}", response.status()))
            }
            Err(err) => Err(err.to_string()),
        }
    }

    /// Sends `request` to the leader and returns what applying it gave (a
    /// refusal by the store is a [`Reply`] with `refused` set: every replica
    /// refused it alike). The write carries a new [`RequestId`], and every
    /// attempt the same one: when an attempt's answer is lost and the write
    /// had committed, the group answers a retry from that transaction
    /// ([`Reply::duplicate`]) instead of applying it twice.
    pub fn write(&self, request: &Request) -> Result<Reply, ClientError> {
        let id = RequestId { client: self.id, serial: self.serial.fetch_add(1, Ordering::Relaxed) + 1 };
        let write = Write { id: Some(id), request: request.clone() };
        self.with_leader(|addr| match self.post::<WriteAnswer>(addr, "/group/write", &write) {
            Ok(WriteAnswer::Done(reply)) => Attempt::Done(reply),
            Ok(WriteAnswer::Redirect { addr, .. }) => Attempt::Redirect(addr),
            Ok(WriteAnswer::Unavailable { message }) | Err(message) => Attempt::Failed(message),
        })
    }

    /// Finds load balancers and target groups by account and name, on the
    /// leader (linearizable when `lookup.linearizable`).
    pub fn lookup(&self, lookup: &Lookup) -> Result<Found, ClientError> {
        self.with_leader(|addr| match self.post::<Found>(addr, "/group/lookup", lookup) {
            Ok(found) => Attempt::Done(found),
            Err(message) => Attempt::Failed(message),
        })
    }

    /// Changes the group's members through its leader.
    pub fn change_members(&self, change: &MemberChange) -> Result<Vec<u64>, ClientError> {
        let answer = self.with_leader(|addr| match self.post::<MembersAnswer>(addr, "/group/members", change) {
            Ok(MembersAnswer::Redirect { addr, .. }) => Attempt::Redirect(addr),
            Ok(answer) => Attempt::Done(answer),
            Err(message) => Attempt::Failed(message),
        })?;
        match answer {
            MembersAnswer::Done { voters } => Ok(voters),
            MembersAnswer::Refused { message } => Err(ClientError::Refused(message)),
            MembersAnswer::Redirect { .. } => unreachable!("redirects are followed"),
        }
    }

    /// The status of the replica at `addr`; `linearizable` asks the leader
    /// for a read-index round first, `digest` for the state digest.
    pub fn status(&self, addr: &str, linearizable: bool, digest: bool) -> Result<Status, String> {
        let url = format!("http://{addr}/group/status?linearizable={linearizable}&digest={digest}");
        let mut response = self.agent.get(&url).call().map_err(|err| format!("{addr}: {err}"))?;
        if response.status() != 200 {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            return Err(format!("{addr}: HTTP {}: {text}", response.status()));
        }
        response.body_mut().read_json::<Status>().map_err(|err| format!("{addr}: {err}"))
    }

    /// Every replica's status (or why it did not answer), in address order.
    pub fn statuses(&self, digest: bool) -> Vec<(String, Result<Status, String>)> {
        self.addrs.iter().map(|addr| (addr.clone(), self.status(addr, false, digest))).collect()
    }

    /// Runs `attempt` against the leader it knows, or each replica in turn,
    /// following redirects, until it is done or the deadline passes.
    fn with_leader<T>(&self, mut attempt: impl FnMut(&str) -> Attempt<T>) -> Result<T, ClientError> {
        let started = Instant::now();
        let mut tried: Vec<(String, String)> = Vec::new();
        if self.addrs.is_empty() {
            return Err(ClientError::Unavailable { waited: Duration::ZERO, tried });
        }
        let mut next = 0usize;
        let mut pause = Duration::from_millis(20);
        loop {
            let addr = match self.leader.lock().clone() {
                Some(addr) => addr,
                None => {
                    next += 1;
                    self.addrs[(next - 1) % self.addrs.len()].clone()
                }
            };
            match attempt(&addr) {
                Attempt::Done(done) => {
                    *self.leader.lock() = Some(addr);
                    return Ok(done);
                }
                Attempt::Redirect(Some(leader)) if leader != addr => {
                    *self.leader.lock() = Some(leader);
                    continue;
                }
                Attempt::Redirect(_) => {
                    *self.leader.lock() = None;
                    record(&mut tried, &addr, "not the leader, and knows none".into());
                }
                Attempt::Failed(said) => {
                    *self.leader.lock() = None;
                    record(&mut tried, &addr, said);
                }
            }
            let waited = started.elapsed();
            if waited >= self.deadline {
                return Err(ClientError::Unavailable { waited, tried });
            }
            std::thread::sleep(pause.min(self.deadline - waited));
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

fn record(tried: &mut Vec<(String, String)>, addr: &str, said: String) {
    match tried.iter_mut().find(|(a, _)| a == addr) {
        Some(entry) => entry.1 = said,
        None => tried.push((addr.to_owned(), said)),
    }
}
