//! The verbs on a replicated store's group: its status, and its membership
//! (add, remove, replace), through the group's leader.

use std::time::Duration;

use serde::Serialize;

use super::{ClusterArgs, ClusterVerb};
use crate::replication::node::{MemberChange, Status as ReplicaStatus};
use crate::replication::{ClientError, GroupClient};
use crate::tools::cli::{Status, ToolError, Verdict};

impl From<ClientError> for ToolError {
    fn from(err: ClientError) -> ToolError {
        match err {
            ClientError::Refused(_) => ToolError::new(Status::Refused, err.to_string()),
            ClientError::Unavailable { .. } => ToolError::failed(err.to_string()),
        }
    }
}

#[derive(Serialize)]
struct ReplicaDoc {
    addr: String,
    #[serde(flatten)]
    status: Option<ReplicaStatus>,
    error: Option<String>,
}

#[derive(Serialize)]
struct StatusDoc {
    replicas: Vec<ReplicaDoc>,
    /// Whether every replica that answered holds the same seq and digest.
    converged: bool,
}

#[derive(Serialize)]
struct MembersDoc {
    voters: Vec<u64>,
}

/// Runs a `pitr cluster` verb.
pub(super) fn run(args: &ClusterArgs) -> Result<Verdict, ToolError> {
    if args.group.is_empty() {
        return Err(ToolError::usage("give the group's replicas: --group ADDR,..."));
    }
    let client = GroupClient::new(args.group.iter().cloned(), Duration::from_millis(args.timeout_ms));
    let change = match &args.verb {
        ClusterVerb::Status { digest } => return status(&client, *digest),
        ClusterVerb::Add { id, addr } => MemberChange::Add { id: *id, addr: addr.clone() },
        ClusterVerb::Remove { id } => MemberChange::Remove { id: *id },
        ClusterVerb::Replace { old, id, addr } => MemberChange::Replace { old: *old, id: *id, addr: addr.clone() },
    };
    let voters = client.change_members(&change)?;
    let text = format!("voters now: {}\n", voters.iter().map(u64::to_string).collect::<Vec<_>>().join(", "));
    Ok(Verdict::new(&MembersDoc { voters }, text))
}

fn status(client: &GroupClient, digest: bool) -> Result<Verdict, ToolError> {
    let replicas: Vec<ReplicaDoc> = client
        .statuses(digest)
        .into_iter()
        .map(|(addr, answer)| match answer {
            Ok(status) => ReplicaDoc { addr, status: Some(status), error: None },
            Err(error) => ReplicaDoc { addr, status: None, error: Some(error) },
        })
        .collect();
    let answered: Vec<&ReplicaStatus> = replicas.iter().filter_map(|r| r.status.as_ref()).collect();
    let converged = answered.windows(2).all(|w| w[0].seq == w[1].seq && w[0].digest == w[1].digest);
    let mut text = String::new();
    for replica in &replicas {
        match &replica.status {
            Some(s) => {
                text += &format!(
                    "{} replica {} {} term {} log {} applied {} seq {}{}\n",
                    replica.addr,
                    s.id,
                    s.state.to_lowercase(),
                    s.term,
                    s.last_log_index.map_or("-".into(), |i| i.to_string()),
                    s.applied_index.map_or("-".into(), |i| i.to_string()),
                    s.seq,
                    s.digest.as_ref().map_or(String::new(), |d| format!(" digest {d}")),
                );
            }
            None => text += &format!("{} unreachable: {}\n", replica.addr, replica.error.as_deref().unwrap_or("")),
        }
    }
    if let Some(s) = answered.first() {
        let voters: Vec<String> = s.voters.iter().map(u64::to_string).collect();
        text += &format!("voters {}; {}\n", voters.join(", "), if converged { "converged" } else { "not converged" });
    }
    let status = if answered.is_empty() { Status::Failed } else { Status::Ok };
    Ok(Verdict::new(&StatusDoc { replicas, converged }, text).with_status(status))
}
