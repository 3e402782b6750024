//! The network the API stands on: the subnets, VPCs and security groups a
//! load balancer is placed in. The real ELBv2 API derives a load balancer's
//! VPC and availability zones from its subnets by asking EC2; [`Network`] is
//! that question, with two answers:
//!
//! - [`Inventory`]: a fixed network read from a file, for a service that
//!   stands alone (and for tests);
//! - [`Ec2`]: the EC2 Query API (`DescribeSubnets`, `DescribeSecurityGroups`,
//!   `DescribeVpcs`), each call signed with SigV4 (service `ec2`) with the
//!   calling account's own key.
//!
//! The service calls a `Network` from a blocking thread, so the trait is
//! synchronous.
//!
//! # The inventory file
//!
//! ```text
//! # SUBNET_ID        VPC_ID        AVAILABILITY_ZONE
//! subnet-0a1b2c3d    vpc-0123abcd  us-east-1a
//! subnet-1a2b3c4d    vpc-0123abcd  us-east-1b
//! # sg SECURITY_GROUP_ID VPC_ID
//! sg sg-0f0e0d0c vpc-0123abcd
//! ```
//!
//! One entry a line, fields separated by white space; blank lines and lines
//! starting with `#` are skipped. Ids are their prefix (`subnet-`, `vpc-`,
//! `sg-`) and then letters and digits; an availability zone is lower-case
//! letters, digits and hyphens. A VPC exists when a subnet or security group
//! names it. With no `sg` line at all, every security group id of the form
//! `sg-` and hex digits is accepted in every VPC, so a file of subnets alone
//! is a complete inventory. An inventory is one shared network: every
//! account sees every subnet and security group in it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use quick_xml::events::Event;
use quick_xml::Reader;

use super::auth::{self, Caller, CredentialStore};

/// The EC2 API version the client speaks.
pub const EC2_API_VERSION: &str = "2016-11-15";

/// The largest inventory file [`Inventory::load`] reads.
pub const INVENTORY_FILE_BYTES_MAX: u64 = 16 << 20;

/// The largest EC2 response body read.
pub const EC2_RESPONSE_BYTES_MAX: u64 = 4 << 20;

/// How long one EC2 call may take, connection included.
pub const EC2_TIMEOUT: Duration = Duration::from_secs(10);

/// A subnet: the VPC and availability zone a load balancer placed in it is in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subnet {
    /// The subnet's id, e.g. `subnet-0a1b2c3d`.
    pub id: String,
    /// The VPC it belongs to, e.g. `vpc-0123abcd`.
    pub vpc_id: String,
    /// Its availability zone, e.g. `us-east-1a`.
    pub availability_zone: String,
}

/// A security group and its VPC, for [`Inventory::from_parts`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecurityGroup {
    /// The group's id, e.g. `sg-0f0e0d0c`.
    pub id: String,
    /// The VPC it belongs to.
    pub vpc_id: String,
}

/// What the API asks of the network underneath. Every answer is for one
/// caller: EC2 shows an account its own resources (and those shared with it).
pub trait Network: Send + Sync {
    /// The subnets with these ids, in the order asked; the first id that
    /// does not exist is [`NetworkError::SubnetNotFound`].
    fn subnets(&self, caller: &Caller, ids: &[String]) -> Result<Vec<Subnet>, NetworkError>;

    /// Whether every one of these security groups exists in `vpc_id`; the
    /// first that does not is [`NetworkError::InvalidSecurityGroup`].
    fn security_groups(&self, caller: &Caller, vpc_id: &str, ids: &[String]) -> Result<(), NetworkError>;

    /// Whether the VPC exists.
    fn vpc_exists(&self, caller: &Caller, vpc_id: &str) -> Result<bool, NetworkError>;
}

/// Why the network refused or could not answer.
///
/// [`code`](NetworkError::code) gives the ELBv2 API's error code and
/// [`http_status`](NetworkError::http_status) its HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetworkError {
    /// No such subnet.
    SubnetNotFound {
        /// The subnet id asked for.
        id: String,
    },
    /// No such security group in the VPC.
    InvalidSecurityGroup {
        /// The security group id asked for.
        id: String,
    },
    /// No such VPC (for the handler of `CreateTargetGroup`, given a VPC
    /// that [`Network::vpc_exists`] denies).
    VpcNotFound {
        /// The VPC id asked for.
        id: String,
    },
    /// The network could not be asked: EC2 unreachable, failing or refusing
    /// the service's key. A retry may succeed.
    Unavailable {
        /// What went wrong.
        message: String,
    },
}

impl NetworkError {
    /// The ELBv2 API's error code: `SubnetNotFound`, `InvalidSecurityGroup`,
    /// `ValidationError` for an unknown VPC (what `CreateTargetGroup`
    /// answers: "The VPC ID '...' is not found") and `ServiceUnavailable`.
    pub fn code(&self) -> &'static str {
        match self {
            NetworkError::SubnetNotFound { .. } => "SubnetNotFound",
            NetworkError::InvalidSecurityGroup { .. } => "InvalidSecurityGroup",
            NetworkError::VpcNotFound { .. } => "ValidationError",
            NetworkError::Unavailable { .. } => "ServiceUnavailable",
        }
    }

    /// The HTTP status the API answers with: 400, or 503 for `ServiceUnavailable`.
    pub fn http_status(&self) -> u16 {
        match self {
            NetworkError::Unavailable { .. } => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkError::SubnetNotFound { id } => write!(f, "the subnet ID '{id}' does not exist"),
            NetworkError::InvalidSecurityGroup { id } => {
                write!(f, "the security group '{id}' does not exist in the VPC")
            }
            NetworkError::VpcNotFound { id } => write!(f, "the VPC ID '{id}' is not found"),
            NetworkError::Unavailable { message } => write!(f, "the network is unavailable: {message}"),
        }
    }
}

impl std::error::Error for NetworkError {}

/// Why an inventory file could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum InventoryError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The file is larger than [`INVENTORY_FILE_BYTES_MAX`] or not UTF-8.
    Unreadable {
        /// The file.
        path: PathBuf,
    },
    /// A line is malformed.
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        problem: InventoryProblem,
    },
}

/// What is wrong with an inventory line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InventoryProblem {
    /// Not `SUBNET_ID VPC_ID AVAILABILITY_ZONE` nor `sg SECURITY_GROUP_ID VPC_ID`.
    FieldCount {
        /// How many fields it has.
        found: usize,
    },
    /// A subnet id that is not `subnet-` and letters and digits.
    SubnetId,
    /// A VPC id that is not `vpc-` and letters and digits.
    VpcId,
    /// A security group id that is not `sg-` and letters and digits.
    SecurityGroupId,
    /// An availability zone with other than lower-case letters, digits and hyphens.
    AvailabilityZone,
    /// A subnet or security group given twice.
    Duplicate {
        /// The line that first gave it.
        first_line: usize,
    },
}

impl fmt::Display for InventoryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InventoryProblem::FieldCount { found } => write!(
                f,
                "expected SUBNET_ID VPC_ID AVAILABILITY_ZONE or sg SECURITY_GROUP_ID VPC_ID, found {found} fields"
            ),
            InventoryProblem::SubnetId => f.write_str("a subnet id is subnet- and letters and digits"),
            InventoryProblem::VpcId => f.write_str("a VPC id is vpc- and letters and digits"),
            InventoryProblem::SecurityGroupId => f.write_str("a security group id is sg- and letters and digits"),
            InventoryProblem::AvailabilityZone => {
                f.write_str("an availability zone holds only lower-case letters, digits and hyphens")
            }
            InventoryProblem::Duplicate { first_line } => write!(f, "already given on line {first_line}"),
        }
    }
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InventoryError::Io { path, source } => write!(f, "cannot read inventory file {}: {source}", path.display()),
            InventoryError::Unreadable { path } => write!(
                f,
                "inventory file {} is not UTF-8 text of at most {INVENTORY_FILE_BYTES_MAX} bytes",
                path.display()
            ),
            InventoryError::Malformed { path, line, problem } => {
                write!(f, "inventory file {} line {line}: {problem}", path.display())
            }
        }
    }
}

impl std::error::Error for InventoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InventoryError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A fixed network, shared by every account: see the module documentation
/// for the file's format.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    subnets: HashMap<String, Subnet>,
    /// Security group id to VPC id. Empty: any `sg-` and hex id is accepted.
    security_groups: HashMap<String, String>,
    vpcs: HashSet<String>,
}

impl Inventory {
    /// Reads an inventory file.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let file = std::fs::File::open(path).map_err(|source| InventoryError::Io { path: path.into(), source })?;
        let mut bytes = Vec::new();
        file.take(INVENTORY_FILE_BYTES_MAX + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| InventoryError::Io { path: path.into(), source })?;
        if bytes.len() as u64 > INVENTORY_FILE_BYTES_MAX {
            return Err(InventoryError::Unreadable { path: path.into() });
        }
        let text = String::from_utf8(bytes).map_err(|_| InventoryError::Unreadable { path: path.into() })?;
        Inventory::parse(&text).map_err(|(line, problem)| InventoryError::Malformed {
            path: path.into(),
            line,
            problem,
        })
    }

    /// An inventory of these subnets and security groups (none: any `sg-`
    /// and hex id is accepted). A later entry with the same id replaces an
    /// earlier one.
    pub fn from_parts(subnets: Vec<Subnet>, security_groups: Vec<SecurityGroup>) -> Inventory {
        let mut inventory = Inventory::default();
        for subnet in subnets {
            inventory.vpcs.insert(subnet.vpc_id.clone());
            inventory.subnets.insert(subnet.id.clone(), subnet);
        }
        for group in security_groups {
            inventory.vpcs.insert(group.vpc_id.clone());
            inventory.security_groups.insert(group.id, group.vpc_id);
        }
        inventory
    }

    fn parse(text: &str) -> Result<Inventory, (usize, InventoryProblem)> {
        let mut first_line: HashMap<&str, usize> = HashMap::new();
        let (mut subnets, mut groups) = (Vec::new(), Vec::new());
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            let id = match fields[..] {
                ["sg", id, vpc_id] => {
                    check(is_id(id, "sg-"), line, InventoryProblem::SecurityGroupId)?;
                    check(is_id(vpc_id, "vpc-"), line, InventoryProblem::VpcId)?;
                    groups.push(SecurityGroup { id: id.to_owned(), vpc_id: vpc_id.to_owned() });
                    id
                }
                [id, vpc_id, zone] => {
                    check(is_id(id, "subnet-"), line, InventoryProblem::SubnetId)?;
                    check(is_id(vpc_id, "vpc-"), line, InventoryProblem::VpcId)?;
                    let zone_ok = zone.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                    check(zone_ok, line, InventoryProblem::AvailabilityZone)?;
                    subnets.push(Subnet {
                        id: id.to_owned(),
                        vpc_id: vpc_id.to_owned(),
                        availability_zone: zone.to_owned(),
                    });
                    id
                }
                _ => return Err((line, InventoryProblem::FieldCount { found: fields.len() })),
            };
            if let Some(&first) = first_line.get(id) {
                return Err((line, InventoryProblem::Duplicate { first_line: first }));
            }
            first_line.insert(id, line);
        }
        Ok(Inventory::from_parts(subnets, groups))
    }
}

fn check(ok: bool, line: usize, problem: InventoryProblem) -> Result<(), (usize, InventoryProblem)> {
    if ok {
        Ok(())
    } else {
        Err((line, problem))
    }
}

/// `prefix` and then one or more ASCII letters and digits.
fn is_id(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl Network for Inventory {
    fn subnets(&self, _caller: &Caller, ids: &[String]) -> Result<Vec<Subnet>, NetworkError> {
        ids.iter()
            .map(|id| self.subnets.get(id).cloned().ok_or_else(|| NetworkError::SubnetNotFound { id: id.clone() }))
            .collect()
    }

    fn security_groups(&self, _caller: &Caller, vpc_id: &str, ids: &[String]) -> Result<(), NetworkError> {
        for id in ids {
            let exists = if self.security_groups.is_empty() {
                id.strip_prefix("sg-").is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            } else {
                self.security_groups.get(id).is_some_and(|vpc| vpc == vpc_id)
            };
            if !exists {
                return Err(NetworkError::InvalidSecurityGroup { id: id.clone() });
            }
        }
        Ok(())
    }

    fn vpc_exists(&self, _caller: &Caller, vpc_id: &str) -> Result<bool, NetworkError> {
        Ok(self.vpcs.contains(vpc_id))
    }
}

/// The network as EC2 sees it, through the EC2 Query API.
///
/// Each call is signed with the calling account's own key, looked up by the
/// caller's access key id in the [`CredentialStore`] given, so EC2 answers
/// for that account; a caller without a key there gets
/// [`NetworkError::Unavailable`]. Plain `http://` endpoints always work;
/// `https://` needs the crate's `api-https` feature.
pub struct Ec2 {
    endpoint: String,
    region: String,
    credentials: CredentialStore,
    agent: ureq::Agent,
}

impl fmt::Debug for Ec2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ec2")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// An EC2 error response's code and message.
struct Ec2Failure {
    code: String,
    message: String,
}

impl Ec2 {
    /// A client of the EC2 endpoint at `endpoint` (e.g.
    /// `https://ec2.us-east-1.amazonaws.com` or `http://127.0.0.1:8080`)
    /// signing for `region`.
    pub fn new(endpoint: impl Into<String>, region: impl Into<String>, credentials: CredentialStore) -> Ec2 {
        let agent =
            ureq::Agent::config_builder().timeout_global(Some(EC2_TIMEOUT)).http_status_as_error(false).build().into();
        Ec2 { endpoint: endpoint.into(), region: region.into(), credentials, agent }
    }

    /// One EC2 action: the response body, or EC2's error.
    fn call(
        &self,
        caller: &Caller,
        action: &str,
        params: &[(String, &str)],
    ) -> Result<Result<String, Ec2Failure>, NetworkError> {
        let unavailable = |message: String| NetworkError::Unavailable { message };
        let credentials = self.credentials.get(&caller.access_key_id).ok_or_else(|| {
            unavailable(format!("no EC2 key for access key {} (account {})", caller.access_key_id, caller.account))
        })?;
        let (host, path) = split_endpoint(&self.endpoint).ok_or_else(|| {
            unavailable(format!("the EC2 endpoint {:?} is not an http:// or https:// URL", self.endpoint))
        })?;
        let mut body = format!("Action={action}&Version={EC2_API_VERSION}");
        for (name, value) in params {
            body.push('&');
            auth::uri_encode(name.as_bytes(), &mut body);
            body.push('=');
            auth::uri_encode(value.as_bytes(), &mut body);
        }
        let mut headers = vec![
            ("host".to_owned(), host.to_owned()),
            ("content-type".to_owned(), "application/x-www-form-urlencoded; charset=utf-8".to_owned()),
        ];
        auth::sign(
            credentials,
            &self.region,
            "ec2",
            "POST",
            host,
            path,
            "",
            &mut headers,
            body.as_bytes(),
            SystemTime::now(),
        );
        let mut request = self.agent.post(&self.endpoint);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let failed = |err: ureq::Error| unavailable(format!("EC2 {action} at {}: {err}", self.endpoint));
        let mut response = request.send(body.as_bytes()).map_err(failed)?;
        let status = response.status().as_u16();
        let text = response.body_mut().with_config().limit(EC2_RESPONSE_BYTES_MAX).read_to_string().map_err(failed)?;
        if status == 200 {
            return Ok(Ok(text));
        }
        let errors = records(&text, &["Response", "Errors", "Error"], &["Code", "Message"]).unwrap_or_default();
        match errors.into_iter().next() {
            Some(mut error) => Ok(Err(Ec2Failure {
                code: error.remove("Code").unwrap_or_default(),
                message: error.remove("Message").unwrap_or_default(),
            })),
            None => Err(unavailable(format!("EC2 {action} answered HTTP {status} without an error code"))),
        }
    }
}

/// The `host[:port]` and path of an `http://` or `https://` URL.
fn split_endpoint(endpoint: &str) -> Option<(&str, &str)> {
    let rest = endpoint.strip_prefix("http://").or_else(|| endpoint.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(end);
    let path = tail.split(['?', '#']).next().filter(|p| !p.is_empty()).unwrap_or("/");
    (!host.is_empty()).then_some((host, path))
}

/// `ids` once each, in first-seen order, numbered from 1 as `PREFIX.N`.
fn numbered<'a>(prefix: &str, ids: &'a [String]) -> Vec<(String, &'a str)> {
    let mut seen = HashSet::new();
    ids.iter()
        .filter(|id| seen.insert(id.as_str()))
        .enumerate()
        .map(|(n, id)| (format!("{prefix}.{}", n + 1), id.as_str()))
        .collect()
}

/// The id among `ids` that EC2's message names, or the first.
fn named_id(message: &str, ids: &[String]) -> String {
    let is_id_char = |c: char| c.is_ascii_alphanumeric() || c == '-';
    ids.iter()
        .find(|id| {
            message.match_indices(id.as_str()).any(|(at, _)| {
                let before = message[..at].chars().next_back();
                let after = message[at + id.len()..].chars().next();
                !before.is_some_and(is_id_char) && !after.is_some_and(is_id_char)
            })
        })
        .or(ids.first())
        .cloned()
        .unwrap_or_default()
}

fn unexpected(action: &str, failure: &Ec2Failure) -> NetworkError {
    NetworkError::Unavailable { message: format!("EC2 {action} refused: {} {}", failure.code, failure.message) }
}

fn malformed(action: &str) -> NetworkError {
    NetworkError::Unavailable { message: format!("EC2 {action} answered with XML that does not parse") }
}

impl Ec2 {
    /// Which of `ids` EC2 does not know, after it refused them together:
    /// the one its message names, confirmed by asking for it alone (an
    /// EC2-compatible server may name another id of the request), else the
    /// first id that EC2 refuses alone. One id needs no question.
    fn missing_id(
        &self,
        caller: &Caller,
        action: &str,
        key: &str,
        not_found: &str,
        ids: &[String],
        message: &str,
    ) -> Result<String, NetworkError> {
        let named = named_id(message, ids);
        if ids.iter().all(|id| *id == named) {
            return Ok(named);
        }
        let others = ids.iter().filter(|id| **id != named);
        for id in std::iter::once(&named).chain(others) {
            match self.call(caller, action, &numbered(key, std::slice::from_ref(id)))? {
                Err(failure) if failure.code.starts_with(not_found) => return Ok(id.clone()),
                Err(failure) => return Err(unexpected(action, &failure)),
                Ok(_) => {}
            }
        }
        // Each alone exists: one vanished between the questions.
        Ok(named)
    }
}

impl Network for Ec2 {
    fn subnets(&self, caller: &Caller, ids: &[String]) -> Result<Vec<Subnet>, NetworkError> {
        // With no id, DescribeSubnets would list every subnet.
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let action = "DescribeSubnets";
        let body = match self.call(caller, action, &numbered("SubnetId", ids))? {
            Ok(body) => body,
            Err(failure) if failure.code.starts_with("InvalidSubnetID.") => {
                let id = self.missing_id(caller, action, "SubnetId", "InvalidSubnetID.", ids, &failure.message)?;
                return Err(NetworkError::SubnetNotFound { id });
            }
            Err(failure) => return Err(unexpected(action, &failure)),
        };
        let items = records(&body, &["*", "subnetSet", "item"], &["subnetId", "vpcId", "availabilityZone"])
            .ok_or_else(|| malformed(action))?;
        let mut found: HashMap<String, Subnet> = HashMap::new();
        for mut item in items {
            let subnet = Subnet {
                id: item.remove("subnetId").unwrap_or_default(),
                vpc_id: item.remove("vpcId").unwrap_or_default(),
                availability_zone: item.remove("availabilityZone").unwrap_or_default(),
            };
            found.insert(subnet.id.clone(), subnet);
        }
        ids.iter()
            .map(|id| found.get(id).cloned().ok_or_else(|| NetworkError::SubnetNotFound { id: id.clone() }))
            .collect()
    }

    fn security_groups(&self, caller: &Caller, vpc_id: &str, ids: &[String]) -> Result<(), NetworkError> {
        if ids.is_empty() {
            return Ok(());
        }
        let action = "DescribeSecurityGroups";
        let body = match self.call(caller, action, &numbered("GroupId", ids))? {
            Ok(body) => body,
            Err(failure) if failure.code.starts_with("InvalidGroup") => {
                let id = self.missing_id(caller, action, "GroupId", "InvalidGroup", ids, &failure.message)?;
                return Err(NetworkError::InvalidSecurityGroup { id });
            }
            Err(failure) => return Err(unexpected(action, &failure)),
        };
        let items = records(&body, &["*", "securityGroupInfo", "item"], &["groupId", "vpcId"])
            .ok_or_else(|| malformed(action))?;
        let vpc_of: HashMap<String, String> = items
            .into_iter()
            .map(|mut item| (item.remove("groupId").unwrap_or_default(), item.remove("vpcId").unwrap_or_default()))
            .collect();
        match ids.iter().find(|id| vpc_of.get(id.as_str()).is_none_or(|vpc| vpc != vpc_id)) {
            Some(id) => Err(NetworkError::InvalidSecurityGroup { id: id.clone() }),
            None => Ok(()),
        }
    }

    fn vpc_exists(&self, caller: &Caller, vpc_id: &str) -> Result<bool, NetworkError> {
        let action = "DescribeVpcs";
        let body = match self.call(caller, action, &[("VpcId.1".to_owned(), vpc_id)])? {
            Ok(body) => body,
            Err(failure) if failure.code.starts_with("InvalidVpcID.") => return Ok(false),
            Err(failure) => return Err(unexpected(action, &failure)),
        };
        let items = records(&body, &["*", "vpcSet", "item"], &["vpcId"]).ok_or_else(|| malformed(action))?;
        Ok(items.iter().any(|item| item.get("vpcId").is_some_and(|id| id == vpc_id)))
    }
}

/// The elements at `path` (local names from the root, `*` for any) as maps
/// of their children named in `fields` to those children's text, trimmed.
/// Deeper elements with the same names (a tag set's `item`s inside a
/// subnet's `item`) are not records. `None` if the XML does not parse.
fn records(xml: &str, path: &[&str], fields: &[&str]) -> Option<Vec<HashMap<String, String>>> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut records = Vec::new();
    let mut current: Option<HashMap<String, String>> = None;
    let at = |stack: &[String], path: &[&str]| {
        stack.len() == path.len() && stack.iter().zip(path).all(|(name, want)| *want == "*" || name == want)
    };
    loop {
        let event = reader.read_event().ok()?;
        // The field a piece of text belongs to, if any.
        let field = |stack: &[String]| {
            stack
                .split_last()
                .filter(|(name, parent)| at(parent, path) && fields.contains(&name.as_str()))
                .map(|(n, _)| n.clone())
        };
        match event {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref().as_bytes()).into_owned();
                stack.push(name);
                if at(&stack, path) {
                    current = Some(HashMap::new());
                }
            }
            Event::End(_) => {
                if at(&stack, path) {
                    records.extend(current.take());
                }
                stack.pop();
            }
            Event::Text(text) => {
                if let (Some(name), Some(record)) = (field(&stack), current.as_mut()) {
                    record.entry(name).or_default().push_str(&text.xml10_content());
                }
            }
            Event::CData(text) => {
                if let (Some(name), Some(record)) = (field(&stack), current.as_mut()) {
                    record.entry(name).or_default().push_str(&text.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let (Some(name), Some(record)) = (field(&stack), current.as_mut()) {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => quick_xml::escape::resolve_predefined_entity(&reference).unwrap_or_default().to_owned(),
                    };
                    record.entry(name).or_default().push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    for record in &mut records {
        for value in record.values_mut() {
            *value = value.trim().to_owned();
        }
    }
    Some(records)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::thread::JoinHandle;
    use std::time::Instant;

    use super::*;
    use crate::api::auth::{verify_for_service, Credentials, SignedRequest};

    const ACCOUNT: &str = "111122223333";

    fn caller() -> Caller {
        Caller { account: ACCOUNT.to_owned(), access_key_id: "AKIDCALLER".to_owned() }
    }

    fn keys() -> CredentialStore {
        CredentialStore::from_credentials(vec![Credentials {
            access_key_id: "AKIDCALLER".to_owned(),
            secret_access_key: "caller-secret".to_owned(),
            account: ACCOUNT.to_owned(),
        }])
    }

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("elbstore-network-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    const INVENTORY: &str = "\
# SUBNET_ID VPC_ID AVAILABILITY_ZONE
subnet-0a1b2c3d vpc-0123abcd us-east-1a
  subnet-1a2b3c4d   vpc-0123abcd   us-east-1b

subnet-2a2b2c2d vpc-99999999 us-east-1a
sg sg-0f0e0d0c vpc-0123abcd
sg sg-0a0a0a0a vpc-99999999
";

    #[test]
    fn an_inventory_answers_for_its_subnets_groups_and_vpcs() {
        let path = temp_file("inventory", INVENTORY);
        let inventory = Inventory::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let got = inventory.subnets(&caller(), &ids(&["subnet-1a2b3c4d", "subnet-0a1b2c3d"])).unwrap();
        assert_eq!(
            got,
            [
                Subnet {
                    id: "subnet-1a2b3c4d".into(),
                    vpc_id: "vpc-0123abcd".into(),
                    availability_zone: "us-east-1b".into()
                },
                Subnet {
                    id: "subnet-0a1b2c3d".into(),
                    vpc_id: "vpc-0123abcd".into(),
                    availability_zone: "us-east-1a".into()
                },
            ]
        );
        let err = inventory.subnets(&caller(), &ids(&["subnet-0a1b2c3d", "subnet-ffffffff"])).unwrap_err();
        assert_eq!(err, NetworkError::SubnetNotFound { id: "subnet-ffffffff".into() });
        assert_eq!((err.code(), err.http_status()), ("SubnetNotFound", 400));

        inventory.security_groups(&caller(), "vpc-0123abcd", &ids(&["sg-0f0e0d0c"])).unwrap();
        inventory.security_groups(&caller(), "vpc-0123abcd", &[]).unwrap();
        // A group of another VPC, and one that does not exist.
        for id in ["sg-0a0a0a0a", "sg-12345678"] {
            let err = inventory.security_groups(&caller(), "vpc-0123abcd", &ids(&[id])).unwrap_err();
            assert_eq!(err, NetworkError::InvalidSecurityGroup { id: id.into() });
            assert_eq!((err.code(), err.http_status()), ("InvalidSecurityGroup", 400));
        }
        assert!(inventory.vpc_exists(&caller(), "vpc-99999999").unwrap());
        assert!(!inventory.vpc_exists(&caller(), "vpc-00000000").unwrap());
    }

    #[test]
    fn without_sg_lines_any_hex_security_group_id_is_accepted() {
        let inventory = Inventory::parse("subnet-a vpc-b us-east-1a\n").unwrap();
        inventory.security_groups(&caller(), "vpc-b", &ids(&["sg-0123456789abcdef0", "sg-1"])).unwrap();
        for bad in ["sg-", "sg-xyz", "group-1"] {
            let err = inventory.security_groups(&caller(), "vpc-b", &ids(&[bad])).unwrap_err();
            assert_eq!(err.code(), "InvalidSecurityGroup", "{bad}");
        }
    }

    #[test]
    fn malformed_inventory_lines_are_named_by_file_and_line() {
        let cases = [
            ("subnet-a vpc-b us-east-1a\nsubnet-c vpc-d\n", 2, "found 2 fields"),
            ("subnet-a vpc-b us-east-1a extra\n", 1, "found 4 fields"),
            ("# x\nsubnet_a vpc-b us-east-1a\n", 2, "a subnet id"),
            ("subnet-a vpcb us-east-1a\n", 1, "a VPC id"),
            ("subnet-a vpc-b US-EAST-1A\n", 1, "an availability zone"),
            ("sg sg_1 vpc-b\n", 1, "a security group id"),
            ("subnet-a vpc-b us-east-1a\n\nsubnet-a vpc-c us-east-1b\n", 3, "already given on line 1"),
        ];
        for (text, line, words) in cases {
            let path = temp_file("bad", text);
            let err = Inventory::load(&path).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, InventoryError::Malformed { line: l, .. } if l == line), "{message}");
            assert!(message.contains(&format!("{} line {line}: ", path.display())), "{message}");
            assert!(message.contains(words), "{message}");
            std::fs::remove_file(&path).unwrap();
        }
        let missing = std::env::temp_dir().join("elbstore-network-no-such-file");
        assert!(matches!(Inventory::load(&missing), Err(InventoryError::Io { .. })));
    }

    /// What the fake EC2 endpoint saw of one request.
    struct Seen {
        /// The signature's verdict, with the `ec2` scope.
        verified: Result<Caller, String>,
        body: String,
    }

    /// A stand-in EC2 endpoint on 127.0.0.1: serves the canned `(status,
    /// body)` answers, one connection each, checking each request's
    /// signature with `verify`, then stops. Bounded in connections and time.
    fn fake_ec2(answers: Vec<(u16, String)>) -> (String, JoinHandle<Vec<Seen>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}/", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut seen = Vec::new();
            for (status, answer) in answers {
                let stream = loop {
                    match listener.accept() {
                        Ok((stream, _)) => break Some(stream),
                        Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                        Err(_) => break None,
                    }
                };
                let Some(stream) = stream else { break };
                seen.push(serve(stream, status, &answer));
            }
            seen
        });
        (endpoint, handle)
    }

    /// Just enough HTTP/1.1 for one request with a `content-length` body.
    fn serve(stream: TcpStream, status: u16, answer: &str) -> Seen {
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut parts = request_line.split_whitespace();
        let (method, target) = (parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned());
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, value)| value.parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let request = SignedRequest { method: &method, path, query, headers: &headers, body: &body };
        let verified =
            verify_for_service(&keys(), &request, SystemTime::now(), "us-east-1", "ec2").map_err(|err| err.to_string());
        let mut stream = reader.into_inner();
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        );
        stream.write_all(response.as_bytes()).unwrap();
        Seen { verified, body: String::from_utf8(body).unwrap() }
    }

    fn ec2_error(code: &str, message: &str) -> (u16, String) {
        (
            400,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
                 <Message>{message}</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>"
            ),
        )
    }

    const SUBNETS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeSubnetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>
    <subnetSet>
        <item>
            <subnetId>subnet-9d4a7b6c</subnetId>
            <state>available</state>
            <vpcId>vpc-1a2b3c4d</vpcId>
            <cidrBlock>10.0.1.0/24</cidrBlock>
            <ipv6CidrBlockAssociationSet><item><ipv6CidrBlock>2001:db8::/64</ipv6CidrBlock></item></ipv6CidrBlockAssociationSet>
            <availabilityZone>us-east-1c</availabilityZone>
            <tagSet><item><key>vpcId</key><value>vpc-from-a-tag</value></item></tagSet>
        </item>
        <item>
            <subnetId>subnet-6e7f829e</subnetId>
            <vpcId>vpc-1a2b3c4d</vpcId>
            <availabilityZone>us-east-1&#x61;</availabilityZone>
        </item>
    </subnetSet>
</DescribeSubnetsResponse>"#;

    #[test]
    fn ec2_subnets_are_asked_for_signed_and_read_from_the_xml() {
        let (endpoint, server) = fake_ec2(vec![
            (200, SUBNETS.to_owned()),
            ec2_error("InvalidSubnetID.NotFound", "The subnet ID 'subnet-6e7f829e' does not exist"),
            // The id the message names, confirmed alone.
            ec2_error("InvalidSubnetID.NotFound", "The subnet ID 'subnet-6e7f829e' does not exist"),
            // A server that names another id of the request than the missing one.
            ec2_error("InvalidSubnetID.NotFound", "The subnet ID 'subnet-9d4a7b6c' does not exist"),
            (200, SUBNETS.to_owned()),
            ec2_error("InvalidSubnetID.NotFound", "The subnet ID 'subnet-6e7f829e' does not exist"),
        ]);
        let ec2 = Ec2::new(endpoint, "us-east-1", keys());
        let got = ec2.subnets(&caller(), &ids(&["subnet-6e7f829e", "subnet-9d4a7b6c", "subnet-6e7f829e"])).unwrap();
        let zones: Vec<(&str, &str, &str)> =
            got.iter().map(|s| (s.id.as_str(), s.vpc_id.as_str(), s.availability_zone.as_str())).collect();
        assert_eq!(
            zones,
            [
                ("subnet-6e7f829e", "vpc-1a2b3c4d", "us-east-1a"),
                ("subnet-9d4a7b6c", "vpc-1a2b3c4d", "us-east-1c"),
                ("subnet-6e7f829e", "vpc-1a2b3c4d", "us-east-1a"),
            ]
        );
        let err = ec2.subnets(&caller(), &ids(&["subnet-9d4a7b6c", "subnet-6e7f829e"])).unwrap_err();
        assert_eq!(err, NetworkError::SubnetNotFound { id: "subnet-6e7f829e".into() });
        let err = ec2.subnets(&caller(), &ids(&["subnet-9d4a7b6c", "subnet-6e7f829e"])).unwrap_err();
        assert_eq!(err, NetworkError::SubnetNotFound { id: "subnet-6e7f829e".into() }, "the id asked alone");
        // No id, no call: DescribeSubnets without ids would list them all.
        assert_eq!(ec2.subnets(&caller(), &[]).unwrap(), []);

        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 6);
        let asked: Vec<&str> = seen[2..].iter().map(|r| r.body.rsplit('&').next().unwrap()).collect();
        assert_eq!(
            asked,
            [
                "SubnetId.1=subnet-6e7f829e",
                "SubnetId.2=subnet-6e7f829e",
                "SubnetId.1=subnet-9d4a7b6c",
                "SubnetId.1=subnet-6e7f829e"
            ]
        );
        for request in &seen {
            assert_eq!(request.verified.as_ref().unwrap(), &caller());
        }
        assert_eq!(
            seen[0].body,
            "Action=DescribeSubnets&Version=2016-11-15&SubnetId.1=subnet-6e7f829e&SubnetId.2=subnet-9d4a7b6c"
        );
    }

    const GROUPS: &str = r#"<DescribeSecurityGroupsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
   <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
   <securityGroupInfo>
      <item>
         <ownerId>111122223333</ownerId>
         <groupId>sg-1a2b3c4d</groupId>
         <groupName>WebServers</groupName>
         <vpcId>vpc-1a2b3c4d</vpcId>
         <ipPermissions><item><groups><item><groupId>sg-99999999</groupId><vpcId>vpc-other</vpcId></item></groups></item></ipPermissions>
      </item>
      <item>
         <groupId>sg-2b3c4d5e</groupId>
         <vpcId>vpc-other</vpcId>
      </item>
   </securityGroupInfo>
</DescribeSecurityGroupsResponse>"#;

    #[test]
    fn ec2_security_groups_and_vpcs_map_to_the_api_errors() {
        let (endpoint, server) = fake_ec2(vec![
            (200, GROUPS.to_owned()),
            (200, GROUPS.to_owned()),
            ec2_error("InvalidGroup.NotFound", "The security group 'sg-77777777' does not exist"),
            // The named group, confirmed alone.
            ec2_error("InvalidGroup.NotFound", "The security group 'sg-77777777' does not exist"),
            (
                200,
                "<DescribeVpcsResponse><requestId>r</requestId><vpcSet><item><vpcId>vpc-1a2b3c4d</vpcId></item></vpcSet>\
                 </DescribeVpcsResponse>"
                    .to_owned(),
            ),
            ec2_error("InvalidVpcID.NotFound", "The vpc ID 'vpc-00000000' does not exist"),
            ec2_error("RequestLimitExceeded", "Request limit exceeded."),
            (503, "<html>busy</html>".to_owned()),
        ]);
        let ec2 = Ec2::new(endpoint, "us-east-1", keys());
        ec2.security_groups(&caller(), "vpc-1a2b3c4d", &ids(&["sg-1a2b3c4d"])).unwrap();
        // A group of another VPC is not a group of this one.
        let err = ec2.security_groups(&caller(), "vpc-1a2b3c4d", &ids(&["sg-1a2b3c4d", "sg-2b3c4d5e"])).unwrap_err();
        assert_eq!(err, NetworkError::InvalidSecurityGroup { id: "sg-2b3c4d5e".into() });
        let err = ec2.security_groups(&caller(), "vpc-1a2b3c4d", &ids(&["sg-7777777", "sg-77777777"])).unwrap_err();
        assert_eq!(err, NetworkError::InvalidSecurityGroup { id: "sg-77777777".into() });
        ec2.security_groups(&caller(), "vpc-1a2b3c4d", &[]).unwrap();

        assert!(ec2.vpc_exists(&caller(), "vpc-1a2b3c4d").unwrap());
        assert!(!ec2.vpc_exists(&caller(), "vpc-00000000").unwrap());
        let err = ec2.vpc_exists(&caller(), "vpc-1a2b3c4d").unwrap_err();
        assert!(
            matches!(&err, NetworkError::Unavailable { message } if message.contains("RequestLimitExceeded")),
            "{err}"
        );
        assert_eq!((err.code(), err.http_status()), ("ServiceUnavailable", 503));
        let err = ec2.vpc_exists(&caller(), "vpc-1a2b3c4d").unwrap_err();
        assert!(matches!(&err, NetworkError::Unavailable { message } if message.contains("HTTP 503")), "{err}");

        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 8);
        assert!(seen.iter().all(|request| request.verified.is_ok()));
        assert_eq!(
            seen[1].body,
            "Action=DescribeSecurityGroups&Version=2016-11-15&GroupId.1=sg-1a2b3c4d&GroupId.2=sg-2b3c4d5e"
        );
        assert_eq!(seen[3].body, "Action=DescribeSecurityGroups&Version=2016-11-15&GroupId.1=sg-77777777");
        assert_eq!(seen[4].body, "Action=DescribeVpcs&Version=2016-11-15&VpcId.1=vpc-1a2b3c4d");
    }

    #[test]
    fn ec2_without_a_key_or_an_endpoint_is_unavailable() {
        let stranger = Caller { account: "444455556666".into(), access_key_id: "AKIDSTRANGER".into() };
        let ec2 = Ec2::new("http://127.0.0.1:9/", "us-east-1", keys());
        let err = ec2.vpc_exists(&stranger, "vpc-1").unwrap_err();
        assert!(matches!(&err, NetworkError::Unavailable { message } if message.contains("AKIDSTRANGER")), "{err}");

        let ec2 = Ec2::new("ftp://example", "us-east-1", keys());
        assert_eq!(ec2.vpc_exists(&caller(), "vpc-1").unwrap_err().code(), "ServiceUnavailable");

        // A port nobody listens on: bound, then released.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let ec2 = Ec2::new(format!("http://127.0.0.1:{port}"), "us-east-1", keys());
        let err = ec2.subnets(&caller(), &ids(&["subnet-1"])).unwrap_err();
        assert_eq!(err.code(), "ServiceUnavailable", "{err}");
    }

    #[test]
    fn endpoints_split_into_host_and_path() {
        assert_eq!(split_endpoint("https://ec2.us-east-1.amazonaws.com"), Some(("ec2.us-east-1.amazonaws.com", "/")));
        assert_eq!(split_endpoint("http://127.0.0.1:8080/"), Some(("127.0.0.1:8080", "/")));
        assert_eq!(split_endpoint("http://h/ec2?x=1"), Some(("h", "/ec2")));
        assert_eq!(split_endpoint("http:///x"), None);
        assert_eq!(split_endpoint("ec2.amazonaws.com"), None);
    }
}
