//! The service: one request in, one response out. Authenticates the caller
//! (SigV4), reads the Query parameters, runs the operation against the
//! [`ElbStore`] under the caller's account, and writes the XML. Transport
//! free, so tests and embedders call [`Service::handle`] directly; the HTTP
//! server in [`super::server`] is a thin layer over it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use super::auth::{self, Caller, CredentialStore, SignedRequest};
use super::error::ApiError;
use super::network::Network;
use super::ops;
use super::query::Params;
use super::xml::Xml;
use crate::elb::{
    Applied, Command, ElbState, ElbStore, EntityKey, Listener, LoadBalancer, Rule, TargetGroup, TrustStore,
};
use crate::store::{TxnMeta, View};

/// The API version this service speaks.
pub const API_VERSION: &str = "2015-12-01";
/// The request header that carries a change ticket for a change the deletion
/// guard would refuse without one.
pub const TICKET_HEADER: &str = "x-elbstore-change-ticket";
/// The request header that names who approved such a change.
pub const APPROVER_HEADER: &str = "x-elbstore-approver";

/// An HTTP request, as the service needs it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// `POST` (or `GET` with the parameters in the query string).
    pub method: String,
    /// The path, `/`.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The headers, names in any case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A call as an AWS client sends it: `POST /` to `host` with the form
    /// `body`, signed (SigV4) by `credentials` for `region` at `now`.
    pub fn signed(
        credentials: &super::auth::Credentials,
        region: &str,
        host: &str,
        body: &[u8],
        now: SystemTime,
    ) -> Request {
        let mut headers = vec![
            ("host".to_owned(), host.to_owned()),
            ("content-type".to_owned(), "application/x-www-form-urlencoded; charset=utf-8".to_owned()),
        ];
        super::auth::sign(credentials, region, super::auth::SERVICE, "POST", host, "/", "", &mut headers, body, now);
        Request { method: "POST".into(), path: "/".into(), query: String::new(), headers, body: body.to_vec() }
    }

    /// A header's value (names compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status.
    pub status: u16,
    /// The XML body.
    pub body: String,
    /// The request id (also in the body, and in the `x-amzn-RequestId` header).
    pub request_id: String,
}

/// Where the service reads and writes: its own store, or (a [`Backend`] of
/// the caller's) a replica's store read locally and a replicated group
/// written through.
pub trait Backend: Send + Sync {
    /// The store to read now (the same one for the whole of a request).
    fn store(&self) -> Arc<ElbStore>;

    /// Commits `commands` by `meta` as one transaction. Once it returns, the
    /// store [`Backend::store`] gives holds the transaction.
    fn execute(&self, meta: TxnMeta, commands: Vec<Command>) -> Result<Applied, Refused>;
}

/// Why a write was not committed.
#[derive(Debug)]
pub enum Refused {
    /// The store refused it.
    Store(crate::elb::ElbError),
    /// A store elsewhere (the replicated group) refused it, or could not take it.
    Remote {
        /// The API's error code.
        code: String,
        /// The message.
        message: String,
        /// The HTTP status.
        status: u16,
        /// Whether the deletion guard refused it.
        guarded: bool,
    },
}

/// The service's own store.
struct Local(Arc<ElbStore>);

impl Backend for Local {
    fn store(&self) -> Arc<ElbStore> {
        self.0.clone()
    }

    fn execute(&self, meta: TxnMeta, commands: Vec<Command>) -> Result<Applied, Refused> {
        self.0.execute(meta, commands).map_err(Refused::Store)
    }
}

/// The ELBv2 API over an [`ElbStore`] (or a [`Backend`]).
pub struct Service {
    backend: Box<dyn Backend>,
    credentials: CredentialStore,
    network: Box<dyn Network>,
    region: String,
    requests: AtomicU64,
    id_seed: u64,
}

impl Service {
    /// A service over `store` in `region`, for the callers in `credentials`,
    /// on `network`.
    pub fn new(
        store: ElbStore,
        credentials: CredentialStore,
        network: Box<dyn Network>,
        region: impl Into<String>,
    ) -> Service {
        Service::with_backend(Box::new(Local(Arc::new(store))), credentials, network, region)
    }

    /// A service over `backend` (a replicated group, for one) in `region`.
    pub fn with_backend(
        backend: Box<dyn Backend>,
        credentials: CredentialStore,
        network: Box<dyn Network>,
        region: impl Into<String>,
    ) -> Service {
        let id_seed = crate::identity::StoreId::random().0 as u64;
        Service { backend, credentials, network, region: region.into(), requests: AtomicU64::new(0), id_seed }
    }

    /// The store underneath, now.
    pub fn store(&self) -> Arc<ElbStore> {
        self.backend.store()
    }

    /// The region the service answers for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Closes the store (after the last request); a backend's store is its
    /// owner's to close.
    pub fn close(self) -> Result<(), crate::elb::ElbError> {
        let store = self.backend.store();
        drop(self);
        match Arc::try_unwrap(store) {
            Ok(store) => store.close(),
            Err(_) => Ok(()),
        }
    }

    /// A request id in the API's form (8-4-4-4-12 hexadecimal digits).
    fn request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let mixed = (self.id_seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(17);
        let a = u128::from(mixed) << 64 | u128::from(n);
        let hex = format!("{a:032x}");
        format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
    }

    /// Answers one request.
    pub fn handle(&self, request: &Request, now: SystemTime) -> Response {
        let request_id = self.request_id();
        match self.answer(request, now, &request_id) {
            Ok(body) => Response { status: 200, body, request_id },
            Err(err) => Response { status: err.status, body: Xml::error(&err, &request_id), request_id },
        }
    }

    fn answer(&self, request: &Request, now: SystemTime, request_id: &str) -> Result<String, ApiError> {
        let signed = SignedRequest {
            method: &request.method,
            path: &request.path,
            query: &request.query,
            headers: &request.headers,
            body: &request.body,
        };
        let caller = auth::verify(&self.credentials, &signed, now, &self.region)
            .map_err(|e| ApiError::new(e.code(), e.to_string(), e.http_status()))?;
        let params = match request.method.as_str() {
            "POST" => Params::parse(&request.body)?,
            "GET" => Params::parse(request.query.as_bytes())?,
            other => {
                return Err(ApiError::new("UnsupportedOperation", format!("method {other} is not supported"), 400))
            }
        };
        let action = params.required("Action")?.to_owned();
        let version = params.required("Version")?;
        if version != API_VERSION {
            return Err(ApiError::new(
                "InvalidAction",
                format!("Could not find operation {action} for version {version}"),
                400,
            ));
        }
        let ctx = Ctx { service: self, store: self.backend.store(), caller, request_id, action: &action, request };
        ops::call(&ctx, &params)
    }
}

/// One request being answered: the caller, the action, the store.
pub struct Ctx<'a> {
    pub(crate) service: &'a Service,
    pub(crate) store: Arc<ElbStore>,
    pub(crate) caller: Caller,
    pub(crate) request_id: &'a str,
    pub(crate) action: &'a str,
    pub(crate) request: &'a Request,
}

impl Ctx<'_> {
    /// The caller's account.
    pub fn account(&self) -> &str {
        &self.caller.account
    }

    /// The store.
    pub fn store(&self) -> &ElbStore {
        &self.store
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.service.region
    }

    /// The network the load balancers stand on.
    pub fn network(&self) -> &dyn Network {
        &*self.service.network
    }

    /// The caller, for the network.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The latest state.
    pub fn view(&self) -> View<ElbState> {
        self.store.read()
    }

    /// The response of this action, its result written by `body`.
    pub fn respond(&self, body: impl FnOnce(&mut Xml)) -> String {
        Xml::response(self.action, self.request_id, body)
    }

    /// Who and why, for the transaction a mutating call commits: the caller
    /// as `aws:ACCOUNT:ACCESS_KEY_ID`, the action and the request id; a
    /// ticket and an approver from the request's headers.
    pub fn meta(&self) -> TxnMeta {
        let mut meta = TxnMeta::new(
            format!("aws:{}:{}", self.caller.account, self.caller.access_key_id),
            format!("{} {}", self.action, self.request_id),
        );
        meta.ticket = self.request.header(TICKET_HEADER).map(str::to_owned);
        meta.approved_by = self.request.header(APPROVER_HEADER).map(str::to_owned);
        meta
    }

    /// Commits `commands` as one transaction of the caller.
    pub fn execute(&self, commands: Vec<Command>) -> Result<Applied, ApiError> {
        self.service.backend.execute(self.meta(), commands).map_err(|refused| {
            let (mut api, guarded) = match refused {
                Refused::Store(err) => {
                    let guarded = matches!(err, crate::elb::ElbError::BulkDeletionRefused { .. });
                    (ApiError::from(err), guarded)
                }
                Refused::Remote { code, message, status, guarded } => (ApiError::new(code, message, status), guarded),
            };
            if guarded {
                api.message.push_str(&format!(
                    " (over this API: repeat the call with the headers {TICKET_HEADER} and {APPROVER_HEADER})"
                ));
            }
            api
        })
    }

    /// The ARN of a resource that exists now.
    pub fn arn(&self, key: &EntityKey) -> String {
        self.view().state().arn(&self.service.region, key).unwrap_or_default()
    }

    fn resolve(&self, arn: &str) -> Option<EntityKey> {
        self.store.resolve_arn(arn)
    }

    /// The caller's load balancer named by `arn`.
    pub fn load_balancer(&self, view: &View<ElbState>, arn: &str) -> Result<Arc<LoadBalancer>, ApiError> {
        let found = match self.resolve(arn) {
            Some(EntityKey::LoadBalancer(id)) => view.state().load_balancer(id).cloned(),
            _ => None,
        };
        found
            .filter(|lb| lb.account == self.caller.account)
            .ok_or_else(|| ApiError::new("LoadBalancerNotFound", format!("Load balancer '{arn}' not found"), 400))
    }

    /// The caller's target group named by `arn`.
    pub fn target_group(&self, view: &View<ElbState>, arn: &str) -> Result<Arc<TargetGroup>, ApiError> {
        let found = match self.resolve(arn) {
            Some(EntityKey::TargetGroup(id)) => view.state().target_group(id).cloned(),
            _ => None,
        };
        found
            .filter(|tg| tg.account == self.caller.account)
            .ok_or_else(|| ApiError::new("TargetGroupNotFound", format!("Target groups '{arn}' not found"), 400))
    }

    /// The caller's listener named by `arn`.
    pub fn listener(&self, view: &View<ElbState>, arn: &str) -> Result<Arc<Listener>, ApiError> {
        let found = match self.resolve(arn) {
            Some(EntityKey::Listener(id)) => view.state().listener(id).cloned(),
            _ => None,
        };
        found
            .filter(|l| view.state().load_balancer(l.load_balancer).is_some_and(|lb| lb.account == self.caller.account))
            .ok_or_else(|| ApiError::new("ListenerNotFound", format!("Listener '{arn}' not found"), 400))
    }

    /// The caller's rule named by `arn`.
    pub fn rule(&self, view: &View<ElbState>, arn: &str) -> Result<Arc<Rule>, ApiError> {
        let found = match self.resolve(arn) {
            Some(EntityKey::Rule(id)) => view.state().rule(id).cloned(),
            _ => None,
        };
        let owned = |r: &Arc<Rule>| {
            let state = view.state();
            state
                .listener(r.listener)
                .and_then(|l| state.load_balancer(l.load_balancer))
                .is_some_and(|lb| lb.account == self.caller.account)
        };
        found
            .filter(owned)
            .ok_or_else(|| ApiError::new("RuleNotFound", format!("One or more rules not found: '{arn}'"), 400))
    }

    /// The caller's trust store named by `arn`.
    pub fn trust_store(&self, view: &View<ElbState>, arn: &str) -> Result<Arc<TrustStore>, ApiError> {
        let found = match self.resolve(arn) {
            Some(EntityKey::TrustStore(id)) => view.state().trust_store(id).cloned(),
            _ => None,
        };
        found
            .filter(|ts| ts.account == self.caller.account)
            .ok_or_else(|| ApiError::new("TrustStoreNotFound", format!("Trust store '{arn}' not found"), 400))
    }
}

/// One page of `items` (sorted by their key) after `marker`, at most
/// `page_size`; and the marker of the next page when there is one. Markers
/// are the last key returned, so a page stays right while the list changes.
pub fn page<T>(mut items: Vec<(String, T)>, marker: Option<&str>, page_size: usize) -> (Vec<T>, Option<String>) {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let start = marker.map_or(0, |m| items.partition_point(|(key, _)| key.as_str() <= m));
    let rest = items.len() - start.min(items.len());
    let mut items: Vec<(String, T)> = items.into_iter().skip(start).take(page_size).collect();
    let next = (rest > page_size).then(|| items.last().map(|(k, _)| k.clone())).flatten();
    (items.drain(..).map(|(_, t)| t).collect(), next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_markers_to_the_end() {
        let items: Vec<(String, u32)> = (0..7).rev().map(|i| (format!("k{i}"), i)).collect();
        let (first, next) = page(items.clone(), None, 3);
        assert_eq!((first, next.as_deref()), (vec![0, 1, 2], Some("k2")));
        let (second, next) = page(items.clone(), next.as_deref(), 3);
        assert_eq!((second, next.as_deref()), (vec![3, 4, 5], Some("k5")));
        let (last, next) = page(items.clone(), next.as_deref(), 3);
        assert_eq!((last, next), (vec![6], None));
        let (exact, next) = page(items, None, 7);
        assert_eq!((exact.len(), next), (7, None));
    }
}
