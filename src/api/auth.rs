//! AWS Signature Version 4: the API verifies every request with it, and the
//! EC2 client signs its own with it.
//!
//! # What the API accepts
//!
//! - The `Authorization` header form, `AWS4-HMAC-SHA256 Credential=AKID/DATE/
//!   REGION/SERVICE/aws4_request, SignedHeaders=..., Signature=...`, with the
//!   time in `X-Amz-Date`: what the AWS CLI and the SDKs send.
//! - The presigned query-string form (`X-Amz-Algorithm`, `X-Amz-Credential`,
//!   `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`),
//!   valid from 15 minutes before its date until `X-Amz-Expires` seconds
//!   after it (at most seven days).
//!
//! The canonical request follows the AWS specification as the SDKs apply it
//! to every service but S3: the path is normalized (empty, `.` and `..`
//! segments removed) and each segment URI-encoded again as it was received;
//! the query's names and values are decoded, strictly re-encoded and sorted;
//! header names are lowercased, values trimmed with runs of white space
//! collapsed, repeated headers joined with commas; the payload is the SHA-256
//! of the body as received. `host` must be signed; any other header may or
//! may not be (the SDKs sign `content-type` and leave `user-agent`,
//! `x-amz-user-agent`, `amz-sdk-invocation-id` and `amz-sdk-request` to taste).
//!
//! Refused on purpose, each with the code AWS answers with:
//! - session credentials (`X-Amz-Security-Token`): `InvalidClientTokenId`,
//!   since the store holds long-term keys only and a token could not be
//!   checked;
//! - `UNSIGNED-PAYLOAD`: the Query API's parameters are in the body, so the
//!   body is always hashed, whatever `X-Amz-Content-Sha256` claims;
//! - a `Date` header instead of `X-Amz-Date`, and any algorithm other than
//!   `AWS4-HMAC-SHA256` (SigV4a): `IncompleteSignature`.
//!
//! The checks run in the order AWS runs them, so a request with several
//! faults gets the error AWS would give: the form's parts
//! (`IncompleteSignature`), the date's format, the clock skew, `host` among
//! the signed headers, the algorithm, the credential's shape, its scope (date,
//! region, service, terminator: `SignatureDoesNotMatch`), the access key
//! (`InvalidClientTokenId`), the signature, compared in constant time.
//!
//! The messages use AWS's words, so an operator can search for them, with
//! the first letter lowercased as the crate's messages are.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;

type HmacSha256 = Hmac<Sha256>;

/// The service name in the credential scope of ELBv2 requests.
pub const SERVICE: &str = "elasticloadbalancing";

/// The one signing algorithm accepted and used.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far a request's `X-Amz-Date` may be from the server's clock, either
/// way: 15 minutes, as AWS allows.
pub const CLOCK_SKEW_MAX: Duration = Duration::from_secs(15 * 60);

/// The longest validity a presigned request may ask for in `X-Amz-Expires`:
/// seven days, as AWS allows.
pub const PRESIGNED_EXPIRES_SECS_MAX: u64 = 7 * 24 * 60 * 60;

/// The largest credentials file [`CredentialStore::load`] reads.
pub const CREDENTIALS_FILE_BYTES_MAX: u64 = 1 << 20;

/// The last element of every credential scope.
const TERMINATOR: &str = "aws4_request";

/// The longest piece of a request quoted back in an error message.
const ECHO_CHARS_MAX: usize = 64;

/// Header names the signer leaves unsigned: set or changed by the HTTP
/// client or proxies on the way, or the signature itself.
const UNSIGNED_HEADERS: &[&str] =
    &["authorization", "user-agent", "expect", "connection", "transfer-encoding", "content-length", "x-amzn-trace-id"];

/// One account's long-term access key.
///
/// `Debug` shows the access key id and the account, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The public half, e.g. `AKIDEXAMPLE`: letters, digits and `_`.
    pub access_key_id: String,
    /// The secret half, the HMAC key's root.
    pub secret_access_key: String,
    /// The 12-digit account the key belongs to.
    pub account: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("account", &self.account)
            .finish()
    }
}

/// The access keys the API accepts, by access key id.
///
/// `Debug` lists access key ids and accounts only.
#[derive(Clone, Default)]
pub struct CredentialStore {
    by_access_key_id: HashMap<String, Credentials>,
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<(&str, &str)> =
            self.by_access_key_id.values().map(|c| (c.access_key_id.as_str(), c.account.as_str())).collect();
        keys.sort_unstable();
        f.debug_struct("CredentialStore").field("keys", &keys).finish()
    }
}

impl CredentialStore {
    /// Reads a credentials file: one key a line, `ACCESS_KEY_ID
    /// SECRET_ACCESS_KEY ACCOUNT_ID` separated by white space. Blank lines
    /// and lines starting with `#` are skipped. An access key id holds
    /// letters, digits and `_`; an account id is 12 digits; an access key id
    /// appears once. A file with no key, a malformed line or a file larger
    /// than [`CREDENTIALS_FILE_BYTES_MAX`] is refused with an error naming
    /// the file and the line; no error quotes the file's contents, so a
    /// secret never reaches a log.
    pub fn load(path: &Path) -> Result<CredentialStore, AuthError> {
        let io_error = |source| AuthError::CredentialsIo { path: path.to_path_buf(), source };
        let file_error = |problem| AuthError::CredentialsFile { path: path.to_path_buf(), problem };
        let file = std::fs::File::open(path).map_err(io_error)?;
        let mut bytes = Vec::new();
        file.take(CREDENTIALS_FILE_BYTES_MAX + 1).read_to_end(&mut bytes).map_err(io_error)?;
        if bytes.len() as u64 > CREDENTIALS_FILE_BYTES_MAX {
            return Err(file_error(CredentialsProblem::TooLarge));
        }
        let text = String::from_utf8(bytes).map_err(|_| file_error(CredentialsProblem::NotUtf8))?;
        parse_credentials(&text).map_err(file_error)
    }

    /// A store holding these keys. A later key with the same access key id
    /// replaces an earlier one.
    pub fn from_credentials(credentials: Vec<Credentials>) -> CredentialStore {
        let by_access_key_id = credentials.into_iter().map(|c| (c.access_key_id.clone(), c)).collect();
        CredentialStore { by_access_key_id }
    }

    /// The key with this access key id, if the store has it.
    pub fn get(&self, access_key_id: &str) -> Option<&Credentials> {
        self.by_access_key_id.get(access_key_id)
    }
}

fn parse_credentials(text: &str) -> Result<CredentialStore, CredentialsProblem> {
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    let mut credentials = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        let [access_key_id, secret_access_key, account] = fields[..] else {
            return Err(CredentialsProblem::FieldCount { line, found: fields.len() });
        };
        if access_key_id.len() > 128 || !access_key_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(CredentialsProblem::AccessKeyId { line });
        }
        if secret_access_key.len() > 128 {
            return Err(CredentialsProblem::SecretAccessKey { line });
        }
        if !is_account_id(account) {
            return Err(CredentialsProblem::AccountId { line });
        }
        if let Some(&first) = first_line.get(access_key_id) {
            return Err(CredentialsProblem::Duplicate { line, first_line: first });
        }
        first_line.insert(access_key_id, line);
        credentials.push(Credentials {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            account: account.to_owned(),
        });
    }
    if credentials.is_empty() {
        return Err(CredentialsProblem::Empty);
    }
    Ok(CredentialStore::from_credentials(credentials))
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// What is wrong with a credentials file. No variant carries the file's
/// text, so no secret is ever echoed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialsProblem {
    /// Larger than [`CREDENTIALS_FILE_BYTES_MAX`].
    TooLarge,
    /// Not UTF-8 text.
    NotUtf8,
    /// No key at all: the API could accept no request.
    Empty,
    /// A line without exactly three fields.
    FieldCount {
        /// The line number, from 1.
        line: usize,
        /// How many fields it has.
        found: usize,
    },
    /// An access key id with a character other than a letter, digit or
    /// `_`, or longer than 128.
    AccessKeyId {
        /// The line number, from 1.
        line: usize,
    },
    /// A secret access key longer than 128.
    SecretAccessKey {
        /// The line number, from 1.
        line: usize,
    },
    /// An account id that is not 12 digits.
    AccountId {
        /// The line number, from 1.
        line: usize,
    },
    /// An access key id given twice.
    Duplicate {
        /// The line number of the repeat, from 1.
        line: usize,
        /// The line that first gave it.
        first_line: usize,
    },
}

impl fmt::Display for CredentialsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsProblem::TooLarge => write!(f, "is larger than {CREDENTIALS_FILE_BYTES_MAX} bytes"),
            CredentialsProblem::NotUtf8 => f.write_str("is not UTF-8 text"),
            CredentialsProblem::Empty => {
                f.write_str("holds no key (one a line: ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID)")
            }
            CredentialsProblem::FieldCount { line, found } => {
                write!(f, "line {line}: expected 3 fields (ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID), found {found}")
            }
            CredentialsProblem::AccessKeyId { line } => {
                write!(f, "line {line}: the access key id may hold only letters, digits and _ (at most 128)")
            }
            CredentialsProblem::SecretAccessKey { line } => {
                write!(f, "line {line}: the secret access key is longer than 128 characters")
            }
            CredentialsProblem::AccountId { line } => write!(f, "line {line}: the account id must be 12 digits"),
            CredentialsProblem::Duplicate { line, first_line } => {
                write!(f, "line {line}: the access key id was already given on line {first_line}")
            }
        }
    }
}

/// A request as the server received it, for [`verify`].
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The path of the request target as sent (percent-encoded), e.g. `/`.
    pub path: &'a str,
    /// The query of the request target as sent, without the `?`; empty for
    /// the SDKs' POST requests.
    pub query: &'a str,
    /// The headers as received, names in any case, repeats allowed.
    pub headers: &'a [(String, String)],
    /// The body as received.
    pub body: &'a [u8],
}

/// Who signed a verified request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Caller {
    /// The account of the access key: the owner of what the request creates.
    pub account: String,
    /// The access key that signed the request.
    pub access_key_id: String,
}

/// Verifies an ELBv2 request's signature (service `elasticloadbalancing`)
/// for `region` at `now`; see the module documentation for what is accepted.
pub fn verify(
    store: &CredentialStore,
    request: &SignedRequest,
    now: SystemTime,
    region: &str,
) -> Result<Caller, AuthError> {
    verify_for_service(store, request, now, region, SERVICE)
}

/// [`verify`] for another service's credential scope, e.g. `ec2` for a
/// stand-in EC2 endpoint.
pub fn verify_for_service(
    store: &CredentialStore,
    request: &SignedRequest,
    now: SystemTime,
    region: &str,
    service: &str,
) -> Result<Caller, AuthError> {
    let presented = Presented::from_request(request)?;
    let signed_at = parse_amz_date(&presented.amz_date).ok_or_else(|| AuthError::IncompleteSignature {
        problem: Incomplete::BadDate { date: clip(&presented.amz_date) },
    })?;
    check_time(signed_at, &presented, timestamp(now))?;

    let names: Vec<String> = presented.signed_headers.split(';').map(|name| name.trim().to_ascii_lowercase()).collect();
    if !names.iter().any(|name| name == "host") {
        return Err(AuthError::HostNotSigned);
    }
    if presented.algorithm != ALGORITHM {
        return Err(AuthError::IncompleteSignature {
            problem: Incomplete::UnsupportedAlgorithm { algorithm: clip(&presented.algorithm) },
        });
    }
    let scope: Vec<&str> = presented.credential.split('/').collect();
    let [access_key_id, date, scope_region, scope_service, terminator] = scope[..] else {
        return Err(AuthError::IncompleteSignature {
            problem: Incomplete::CredentialShape { credential: clip(&presented.credential) },
        });
    };
    if scope_region != region {
        return Err(AuthError::ScopeMismatch { problem: Scope::Region { found: clip(scope_region) } });
    }
    if scope_service != service {
        return Err(AuthError::ScopeMismatch { problem: Scope::Service { expected: service.to_owned() } });
    }
    if terminator != TERMINATOR {
        return Err(AuthError::ScopeMismatch { problem: Scope::Terminator { found: clip(terminator) } });
    }
    // The date is 16 ASCII bytes once parsed, so its first 8 are the day.
    let day = presented.amz_date.get(..8).unwrap_or_default();
    if date != day {
        return Err(AuthError::ScopeMismatch {
            problem: Scope::Date { found: clip(date), expected: day.to_owned(), amz_date: presented.amz_date.clone() },
        });
    }
    let credentials = store
        .get(access_key_id)
        .ok_or_else(|| AuthError::InvalidClientTokenId { access_key_id: clip(access_key_id) })?;

    let canonical_headers = canonical_headers(request.headers, &names)
        .map_err(|name| AuthError::SignedHeaderMissing { name: clip(&name) })?;
    let canonical_request = canonical_request(
        request.method,
        request.path,
        &canonical_query(request.query, presented.expires_secs.is_some()),
        &canonical_headers,
        &names.join(";"),
        &hex(&Sha256::digest(request.body)),
    );
    let scope_text = format!("{day}/{region}/{service}/{TERMINATOR}");
    let to_sign = string_to_sign(&presented.amz_date, &scope_text, &canonical_request);
    let key = signing_key(&credentials.secret_access_key, day, region, service);
    let provided = unhex(&presented.signature).ok_or(AuthError::SignatureDoesNotMatch)?;
    let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(to_sign.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&provided).map_err(|_| AuthError::SignatureDoesNotMatch)?;

    if presented.session_token {
        return Err(AuthError::SessionTokenNotSupported);
    }
    Ok(Caller { account: credentials.account.clone(), access_key_id: credentials.access_key_id.clone() })
}

/// The signature's parts, from the `Authorization` header or the query.
struct Presented {
    algorithm: String,
    credential: String,
    signed_headers: String,
    signature: String,
    amz_date: String,
    /// `Some` for the presigned form.
    expires_secs: Option<u64>,
    session_token: bool,
}

impl Presented {
    fn from_request(request: &SignedRequest) -> Result<Presented, AuthError> {
        let incomplete = |problem| AuthError::IncompleteSignature { problem };
        let authorizations: Vec<&str> = header_values(request.headers, "authorization").collect();
        let params = query_params(request.query);
        let param = |name: &str| params.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
        let presigned = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"].iter().any(|n| param(n).is_some());
        let session_token = header_values(request.headers, "x-amz-security-token").next().is_some()
            || param("X-Amz-Security-Token").is_some();
        match (authorizations.as_slice(), presigned) {
            ([], false) => Err(AuthError::MissingAuthenticationToken),
            ([_, _, ..], _) => Err(incomplete(Incomplete::RepeatedAuthorization)),
            ([_], true) => Err(incomplete(Incomplete::TwoForms)),
            ([authorization], false) => {
                let authorization = authorization.trim();
                let (algorithm, rest) =
                    authorization.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((authorization, ""));
                let mut parts: HashMap<&str, &str> = HashMap::new();
                for part in rest.split(',') {
                    if let Some((key, value)) = part.trim().split_once('=') {
                        parts.entry(key.trim()).or_insert(value.trim());
                    }
                }
                let part = |name: &'static str| {
                    parts.get(name).map(|v| v.to_string()).ok_or(incomplete(Incomplete::MissingPart { name }))
                };
                let (credential, signed_headers, signature) =
                    (part("Credential")?, part("SignedHeaders")?, part("Signature")?);
                let mut dates = header_values(request.headers, "x-amz-date");
                let amz_date = match (dates.next(), dates.next()) {
                    (Some(date), None) => date.trim().to_owned(),
                    (None, _) => return Err(incomplete(Incomplete::MissingDate)),
                    (Some(_), Some(_)) => return Err(incomplete(Incomplete::RepeatedDate)),
                };
                let algorithm = algorithm.to_owned();
                Ok(Presented {
                    algorithm,
                    credential,
                    signed_headers,
                    signature,
                    amz_date,
                    expires_secs: None,
                    session_token,
                })
            }
            ([], true) => {
                let required =
                    |name: &'static str| param(name).ok_or(incomplete(Incomplete::MissingParameter { name }));
                let algorithm = required("X-Amz-Algorithm")?;
                let credential = required("X-Amz-Credential")?;
                let signature = required("X-Amz-Signature")?;
                let signed_headers = required("X-Amz-SignedHeaders")?;
                let amz_date = required("X-Amz-Date")?;
                let expires = required("X-Amz-Expires")?;
                let expires_secs = expires
                    .parse::<u64>()
                    .ok()
                    .filter(|secs| (1..=PRESIGNED_EXPIRES_SECS_MAX).contains(secs))
                    .ok_or(incomplete(Incomplete::BadExpires { expires: clip(&expires) }))?;
                Ok(Presented {
                    algorithm,
                    credential,
                    signed_headers,
                    signature,
                    amz_date,
                    expires_secs: Some(expires_secs),
                    session_token,
                })
            }
        }
    }
}

/// The header form allows [`CLOCK_SKEW_MAX`] either way; the presigned
/// form from that much before its date until its expiry.
fn check_time(signed_at: Timestamp, presented: &Presented, now: Timestamp) -> Result<(), AuthError> {
    let (signed_secs, now_secs) = (signed_at.as_nanos() / 1_000_000_000, now.as_nanos() / 1_000_000_000);
    let skew_secs = CLOCK_SKEW_MAX.as_secs();
    let earliest_secs = now_secs.saturating_sub(presented.expires_secs.unwrap_or(skew_secs));
    if signed_secs < earliest_secs {
        return Err(AuthError::SignatureExpired {
            signed_at: presented.amz_date.clone(),
            now: amz_date(now),
            window_secs: now_secs - earliest_secs,
        });
    }
    if signed_secs > now_secs.saturating_add(skew_secs) {
        return Err(AuthError::SignatureNotYetCurrent {
            signed_at: presented.amz_date.clone(),
            now: amz_date(now),
            window_secs: skew_secs,
        });
    }
    Ok(())
}

/// Signs an outgoing request in place: removes any `authorization` and
/// `x-amz-date` headers, then adds `x-amz-date` (from `now`) and
/// `authorization`. Every header in `headers` is signed except those an
/// HTTP client or proxy sets or changes (`user-agent`, `content-length`,
/// `connection`, ...), plus `host`: the `host` header in `headers` if there
/// is one, otherwise `url_host` (the authority the HTTP client will send,
/// with the port when it is not the scheme's default), which is not added
/// to `headers`. `path` and `query` are as they will be sent
/// (percent-encoded, no `?`).
#[allow(clippy::too_many_arguments)] // The parts of a request, each a plain value the caller has at hand.
pub fn sign(
    credentials: &Credentials,
    region: &str,
    service: &str,
    method: &str,
    url_host: &str,
    path: &str,
    query: &str,
    headers: &mut Vec<(String, String)>,
    body: &[u8],
    now: SystemTime,
) {
    let now = timestamp(now);
    let amz = amz_date(now);
    let day = amz.get(..8).unwrap_or_default().to_owned();
    headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization") && !name.eq_ignore_ascii_case("x-amz-date"));
    headers.push(("x-amz-date".to_owned(), amz.clone()));

    let mut signing: Vec<(String, String)> = headers.clone();
    if header_values(headers, "host").next().is_none() {
        signing.push(("host".to_owned(), url_host.to_owned()));
    }
    let mut names: Vec<String> = signing
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .filter(|name| !UNSIGNED_HEADERS.contains(&name.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    // Every name comes from `signing`, so none is missing.
    let canonical_headers = canonical_headers(&signing, &names).unwrap_or_default();
    let signed_headers = names.join(";");
    let canonical_request = canonical_request(
        method,
        path,
        &canonical_query(query, false),
        &canonical_headers,
        &signed_headers,
        &hex(&Sha256::digest(body)),
    );
    let scope = format!("{day}/{region}/{service}/{TERMINATOR}");
    let to_sign = string_to_sign(&amz, &scope, &canonical_request);
    let key = signing_key(&credentials.secret_access_key, &day, region, service);
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    headers.push((
        "authorization".to_owned(),
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id
        ),
    ));
}

fn canonical_request(
    method: &str,
    path: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!(
        "{method}\n{}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        canonical_uri(path)
    )
}

fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical_request.as_bytes())))
}

fn signing_key(secret: &str, day: &str, region: &str, service: &str) -> [u8; 32] {
    let key = hmac(format!("AWS4{secret}").as_bytes(), day.as_bytes());
    let key = hmac(&key, region.as_bytes());
    let key = hmac(&key, service.as_bytes());
    hmac(&key, TERMINATOR.as_bytes())
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The path normalized (empty and `.` segments dropped, `..` removing the
/// segment before it) and each segment URI-encoded again.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut last = "";
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
        last = segment;
    }
    let mut out = String::with_capacity(path.len() + 1);
    for segment in &segments {
        out.push('/');
        uri_encode(segment.as_bytes(), &mut out);
    }
    if segments.is_empty() || matches!(last, "" | "." | "..") {
        out.push('/');
    }
    out
}

/// Names and values decoded, strictly re-encoded and sorted; the presigned
/// form leaves its own `X-Amz-Signature` out.
fn canonical_query(query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .map(|(key, value)| (percent_decode(key), percent_decode(value)))
        .filter(|(key, _)| !(presigned && key.as_slice() == b"X-Amz-Signature"))
        .map(|(key, value)| {
            let (mut k, mut v) = (String::new(), String::new());
            uri_encode(&key, &mut k);
            uri_encode(&value, &mut v);
            (k, v)
        })
        .collect();
    pairs.sort_unstable();
    let pairs: Vec<String> = pairs.into_iter().map(|(key, value)| format!("{key}={value}")).collect();
    pairs.join("&")
}

/// `name:value\n` for each signed name, in the order given; the name of a
/// signed header the request lacks is the error.
fn canonical_headers(headers: &[(String, String)], names: &[String]) -> Result<String, String> {
    let mut out = String::new();
    for name in names {
        let values: Vec<String> = header_values(headers, name)
            .map(|value| value.split_ascii_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Err(name.clone());
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Ok(out)
}

fn header_values<'h>(headers: &'h [(String, String)], name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
    headers.iter().filter(move |(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
}

/// The query's parameters, decoded (invalid UTF-8 replaced).
fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .map(|(key, value)| {
            (
                String::from_utf8_lossy(&percent_decode(key)).into_owned(),
                String::from_utf8_lossy(&percent_decode(value)).into_owned(),
            )
        })
        .collect()
}

/// RFC 3986 encoding as SigV4 wants it: everything but `A-Z a-z 0-9 - _ . ~`
/// as `%XX` with upper-case hex.
pub(crate) fn uri_encode(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// `%XX` decoded; a `%` not followed by two hex digits is kept as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).and_then(|&b| hex_value(b)), bytes.get(i + 2).and_then(|&b| hex_value(b)))
            {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// A signature's 64 hex digits as bytes.
fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = hex_value(pair[0])? << 4 | hex_value(pair[1])?;
    }
    Some(out)
}

/// `now` as a timestamp; a time before 1970 reads as 1970.
fn timestamp(time: SystemTime) -> Timestamp {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    Timestamp(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

/// The `X-Amz-Date` form of a time, `YYYYMMDD'T'HHMMSS'Z'`.
fn amz_date(time: Timestamp) -> String {
    // Display gives `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`; keep the digits before the fraction.
    let text = time.to_string();
    let digits: String = text.split('.').next().unwrap_or_default().chars().filter(char::is_ascii_digit).collect();
    match (digits.get(..8), digits.get(8..)) {
        (Some(day), Some(clock)) => format!("{day}T{clock}Z"),
        _ => digits,
    }
}

/// Parses `YYYYMMDD'T'HHMMSS'Z'`.
fn parse_amz_date(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' || !b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit) {
        return None;
    }
    // Every byte is ASCII now, so these slices fall on character boundaries.
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &text[0..4],
        &text[4..6],
        &text[6..8],
        &text[9..11],
        &text[11..13],
        &text[13..15]
    );
    Timestamp::parse_rfc3339(&rfc3339)
}

/// At most [`ECHO_CHARS_MAX`] characters of a piece of the request, for a message.
fn clip(text: &str) -> String {
    match text.char_indices().nth(ECHO_CHARS_MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// Why a request's signature is refused, or a credentials file could not
/// be loaded.
///
/// [`code`](AuthError::code) gives the error code the API answers with and
/// [`http_status`](AuthError::http_status) its HTTP status.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header and no presigned parameters.
    MissingAuthenticationToken,
    /// The signature's form is broken or incomplete.
    IncompleteSignature {
        /// What is wrong with it.
        problem: Incomplete,
    },
    /// No such access key.
    InvalidClientTokenId {
        /// The access key id presented (clipped).
        access_key_id: String,
    },
    /// A session token came with the request; only long-term keys are
    /// supported.
    SessionTokenNotSupported,
    /// The signature is not the one the key gives for this request.
    SignatureDoesNotMatch,
    /// `X-Amz-Date` is too far in the past (or a presigned request expired).
    SignatureExpired {
        /// The request's `X-Amz-Date`.
        signed_at: String,
        /// The server's time, in the same form.
        now: String,
        /// How far back a request may be signed, in seconds.
        window_secs: u64,
    },
    /// `X-Amz-Date` is too far in the future.
    SignatureNotYetCurrent {
        /// The request's `X-Amz-Date`.
        signed_at: String,
        /// The server's time, in the same form.
        now: String,
        /// How far ahead a request may be signed, in seconds.
        window_secs: u64,
    },
    /// The credential's scope is not this API's.
    ScopeMismatch {
        /// Which part of the scope.
        problem: Scope,
    },
    /// `host` is not among the signed headers.
    HostNotSigned,
    /// A header named in `SignedHeaders` is not in the request.
    SignedHeaderMissing {
        /// The header's name (clipped).
        name: String,
    },
    /// The credentials file could not be read.
    CredentialsIo {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The credentials file is malformed.
    CredentialsFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        problem: CredentialsProblem,
    },
}

/// What is wrong with a signature's form (`IncompleteSignature`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incomplete {
    /// The `Authorization` header lacks `Credential`, `SignedHeaders` or `Signature`.
    MissingPart {
        /// The part.
        name: &'static str,
    },
    /// A presigned request lacks one of its query parameters.
    MissingParameter {
        /// The parameter.
        name: &'static str,
    },
    /// The `Authorization` header form without an `X-Amz-Date` header.
    MissingDate,
    /// More than one `X-Amz-Date` header.
    RepeatedDate,
    /// More than one `Authorization` header.
    RepeatedAuthorization,
    /// Both an `Authorization` header and presigned parameters.
    TwoForms,
    /// The date is not `YYYYMMDD'T'HHMMSS'Z'`.
    BadDate {
        /// The date given (clipped).
        date: String,
    },
    /// `X-Amz-Expires` is not a number of seconds from 1 to seven days.
    BadExpires {
        /// The value given (clipped).
        expires: String,
    },
    /// An algorithm other than `AWS4-HMAC-SHA256`.
    UnsupportedAlgorithm {
        /// The algorithm given (clipped).
        algorithm: String,
    },
    /// The credential is not `KEYID/DATE/REGION/SERVICE/aws4_request`.
    CredentialShape {
        /// The credential given (clipped).
        credential: String,
    },
}

/// Which part of the credential scope does not fit (`SignatureDoesNotMatch`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// Another region than the API's.
    Region {
        /// The region given (clipped).
        found: String,
    },
    /// Another service than the API's.
    Service {
        /// The service the API expects.
        expected: String,
    },
    /// A terminator other than `aws4_request`.
    Terminator {
        /// The terminator given (clipped).
        found: String,
    },
    /// A day other than `X-Amz-Date`'s.
    Date {
        /// The day given (clipped).
        found: String,
        /// The day of `X-Amz-Date`.
        expected: String,
        /// `X-Amz-Date`.
        amz_date: String,
    },
}

impl AuthError {
    /// The API's error code for this refusal, e.g. `SignatureDoesNotMatch`.
    /// A credentials file that cannot be loaded is `InternalFailure`: it
    /// stops the service from starting and never reaches a client.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationToken",
            AuthError::IncompleteSignature { .. } => "IncompleteSignature",
            AuthError::InvalidClientTokenId { .. } | AuthError::SessionTokenNotSupported => "InvalidClientTokenId",
            AuthError::SignatureDoesNotMatch
            | AuthError::SignatureExpired { .. }
            | AuthError::SignatureNotYetCurrent { .. }
            | AuthError::ScopeMismatch { .. }
            | AuthError::HostNotSigned
            | AuthError::SignedHeaderMissing { .. } => "SignatureDoesNotMatch",
            AuthError::CredentialsIo { .. } | AuthError::CredentialsFile { .. } => "InternalFailure",
        }
    }

    /// The HTTP status the API answers with: 400 for `IncompleteSignature`,
    /// 403 for the other refusals (AWS's common errors), 500 for a
    /// credentials file.
    pub fn http_status(&self) -> u16 {
        match self.code() {
            "IncompleteSignature" => 400,
            "InternalFailure" => 500,
            _ => 403,
        }
    }
}

/// A whole number of minutes as AWS prints it (`15 min.`), else seconds.
struct Window(u64);

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(60) {
            write!(f, "{} min.", self.0 / 60)
        } else {
            write!(f, "{} sec.", self.0)
        }
    }
}

/// `now` moved by `secs` seconds, in the `X-Amz-Date` form.
fn shifted(now: &str, secs: u64, later: bool) -> String {
    let Some(now) = parse_amz_date(now) else { return now.to_owned() };
    let by = Duration::from_secs(secs);
    let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
    amz_date(if later { now.saturating_add(by) } else { Timestamp(now.as_nanos().saturating_sub(nanos)) })
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::MissingAuthenticationToken => f.write_str("request is missing Authentication Token"),
            AuthError::IncompleteSignature { problem } => problem.fmt(f),
            AuthError::InvalidClientTokenId { .. } => {
                f.write_str("the security token included in the request is invalid.")
            }
            AuthError::SessionTokenNotSupported => f.write_str(
                "the security token included in the request is invalid: session tokens are not supported, \
                 sign with a long-term access key",
            ),
            AuthError::SignatureDoesNotMatch => f.write_str(
                "the request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            ),
            AuthError::SignatureExpired { signed_at, now, window_secs } => write!(
                f,
                "signature expired: {signed_at} is now earlier than {} ({now} - {})",
                shifted(now, *window_secs, false),
                Window(*window_secs)
            ),
            AuthError::SignatureNotYetCurrent { signed_at, now, window_secs } => write!(
                f,
                "signature not yet current: {signed_at} is still later than {} ({now} + {})",
                shifted(now, *window_secs, true),
                Window(*window_secs)
            ),
            AuthError::ScopeMismatch { problem } => match problem {
                Scope::Region { found } => write!(f, "credential should be scoped to a valid region, not '{found}'."),
                Scope::Service { expected } => {
                    write!(f, "credential should be scoped to correct service: '{expected}'.")
                }
                Scope::Terminator { found } => {
                    write!(f, "credential should be scoped with a valid terminator: '{TERMINATOR}', not '{found}'.")
                }
                Scope::Date { found, expected, amz_date } => write!(
                    f,
                    "date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
                     '{found}' != '{expected}', from '{amz_date}'."
                ),
            },
            AuthError::HostNotSigned => {
                f.write_str("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
            }
            AuthError::SignedHeaderMissing { name } => {
                write!(f, "signed header '{name}' is not in the request")
            }
            AuthError::CredentialsIo { path, source } => {
                write!(f, "cannot read credentials file {}: {source}", path.display())
            }
            AuthError::CredentialsFile { path, problem } => {
                write!(f, "credentials file {} {problem}", path.display())
            }
        }
    }
}

impl fmt::Display for Incomplete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Incomplete::MissingPart { name } => write!(f, "authorization header requires '{name}' parameter."),
            Incomplete::MissingParameter { name } => {
                write!(f, "AWS query-string parameters must include '{name}'. Re-examine the query-string parameters.")
            }
            Incomplete::MissingDate => f.write_str(
                "authorization header requires existence of an 'X-Amz-Date' header ('Date' is not supported).",
            ),
            Incomplete::RepeatedDate => f.write_str("the request has more than one 'X-Amz-Date' header."),
            Incomplete::RepeatedAuthorization => f.write_str("the request has more than one 'Authorization' header."),
            Incomplete::TwoForms => f.write_str(
                "only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization \
                 header should be specified",
            ),
            Incomplete::BadDate { date } => write!(f, "date must be in ISO-8601 'basic format'. Got '{date}'."),
            Incomplete::BadExpires { expires } => write!(
                f,
                "X-Amz-Expires must be a number of seconds from 1 to {PRESIGNED_EXPIRES_SECS_MAX}. Got '{expires}'."
            ),
            Incomplete::UnsupportedAlgorithm { algorithm } => {
                write!(f, "unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} for now).")
            }
            Incomplete::CredentialShape { credential } => write!(
                f,
                "credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got \
                 '{credential}'"
            ),
        }
    }
}

impl std::error::Error for AuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthError::CredentialsIo { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The credentials, time, region and service of AWS's SigV4 test suite.
    const SUITE_KEY: &str = "AKIDEXAMPLE";
    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SUITE_HOST: &str = "example.amazonaws.com";
    const SUITE_DATE: &str = "20150830T123600Z";
    /// 2015-08-30T12:36:00Z.
    const SUITE_SECS: u64 = 1_440_938_160;
    const ACCOUNT: &str = "111122223333";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn suite_credentials() -> Credentials {
        Credentials {
            access_key_id: SUITE_KEY.to_owned(),
            secret_access_key: SUITE_SECRET.to_owned(),
            account: ACCOUNT.to_owned(),
        }
    }

    fn suite_store() -> CredentialStore {
        CredentialStore::from_credentials(vec![suite_credentials()])
    }

    fn owned(headers: &[(&str, &str)]) -> Vec<(String, String)> {
        headers.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    /// A case of the AWS SigV4 test suite (aws-sig-v4-test-suite): the
    /// request as sent, less `Host` and `X-Amz-Date`, and what it signs to.
    struct Vector {
        name: &'static str,
        method: &'static str,
        path: &'static str,
        query: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
        signed_headers: &'static str,
        signature: &'static str,
    }

    const PLAIN: &str = "host;x-amz-date";
    const MY_HEADER: &str = "host;my-header1;x-amz-date";
    const FORM: &str = "content-type;host;x-amz-date";

    #[rustfmt::skip]
    const SUITE: &[Vector] = &[
        Vector { name: "get-vanilla", method: "GET", path: "/", query: "", headers: &[], body: "", signed_headers: PLAIN,
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
        Vector { name: "get-vanilla-empty-query-key", method: "GET", path: "/", query: "Param1=value1", headers: &[], body: "", signed_headers: PLAIN,
            signature: "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb" },
        Vector { name: "get-vanilla-query-order-key-case", method: "GET", path: "/", query: "Param2=value2&Param1=value1", headers: &[], body: "", signed_headers: PLAIN,
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" },
        Vector { name: "get-vanilla-query-order-key", method: "GET", path: "/", query: "Param1=value2&Param1=Value1", headers: &[], body: "", signed_headers: PLAIN,
            signature: "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1" },
        Vector { name: "get-vanilla-query-order-value", method: "GET", path: "/", query: "Param1=value2&Param1=value1", headers: &[], body: "", signed_headers: PLAIN,
            signature: "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694" },
        Vector { name: "get-vanilla-query-unreserved", method: "GET", path: "/",
            query: "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            headers: &[], body: "", signed_headers: PLAIN,
            signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197" },
        Vector { name: "get-vanilla-utf8-query", method: "GET", path: "/", query: "\u{1234}=bar", headers: &[], body: "", signed_headers: PLAIN,
            signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04" },
        Vector { name: "get-unreserved", method: "GET", path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            query: "", headers: &[], body: "", signed_headers: PLAIN,
            signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f" },
        Vector { name: "get-utf8", method: "GET", path: "/\u{1234}", query: "", headers: &[], body: "", signed_headers: PLAIN,
            signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85" },
        Vector { name: "get-space", method: "GET", path: "/example space/", query: "", headers: &[], body: "", signed_headers: PLAIN,
            signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741" },
        Vector { name: "get-relative", method: "GET", path: "/example/..", query: "", headers: &[], body: "", signed_headers: PLAIN,
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
        Vector { name: "get-relative-relative", method: "GET", path: "/example1/example2/../..", query: "", headers: &[], body: "", signed_headers: PLAIN,
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
        Vector { name: "get-slash", method: "GET", path: "//", query: "", headers: &[], body: "", signed_headers: PLAIN,
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
        Vector { name: "get-slash-dot-slash", method: "GET", path: "/./", query: "", headers: &[], body: "", signed_headers: PLAIN,
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
        Vector { name: "get-slash-pointless-dot", method: "GET", path: "/./example", query: "", headers: &[], body: "", signed_headers: PLAIN,
            signature: "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5" },
        Vector { name: "get-slashes", method: "GET", path: "//example//", query: "", headers: &[], body: "", signed_headers: PLAIN,
            signature: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84" },
        Vector { name: "get-header-key-duplicate", method: "GET", path: "/", query: "",
            headers: &[("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")], body: "", signed_headers: MY_HEADER,
            signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea" },
        Vector { name: "get-header-value-order", method: "GET", path: "/", query: "",
            headers: &[("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2")],
            body: "", signed_headers: MY_HEADER,
            signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01" },
        Vector { name: "get-header-value-multiline", method: "GET", path: "/", query: "",
            headers: &[("My-Header1", "value1\n  value2\n     value3")], body: "", signed_headers: MY_HEADER,
            signature: "cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd" },
        Vector { name: "get-header-value-trim", method: "GET", path: "/", query: "",
            headers: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")], body: "",
            signed_headers: "host;my-header1;my-header2;x-amz-date",
            signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736" },
        Vector { name: "post-vanilla", method: "POST", path: "/", query: "", headers: &[], body: "", signed_headers: PLAIN,
            signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
        Vector { name: "post-vanilla-query", method: "POST", path: "/", query: "Param1=value1", headers: &[], body: "", signed_headers: PLAIN,
            signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11" },
        Vector { name: "post-header-key-sort", method: "POST", path: "/", query: "", headers: &[("My-Header1", "value1")], body: "",
            signed_headers: MY_HEADER,
            signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c" },
        Vector { name: "post-header-value-case", method: "POST", path: "/", query: "", headers: &[("My-Header1", "VALUE1")], body: "",
            signed_headers: MY_HEADER,
            signature: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d" },
        Vector { name: "post-x-www-form-urlencoded", method: "POST", path: "/", query: "",
            headers: &[("Content-Type", "application/x-www-form-urlencoded")], body: "Param1=value1", signed_headers: FORM,
            signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a" },
        Vector { name: "post-x-www-form-urlencoded-parameters", method: "POST", path: "/", query: "",
            headers: &[("Content-Type", "application/x-www-form-urlencoded; charset=utf8")], body: "Param1=value1", signed_headers: FORM,
            signature: "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe" },
    ];

    fn suite_authorization(vector: &Vector) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={}, Signature={}",
            vector.signed_headers, vector.signature
        )
    }

    #[test]
    fn sign_reproduces_every_suite_vector() {
        assert_eq!(SUITE.iter().filter(|v| v.name == "get-vanilla").count(), 1);
        for vector in SUITE {
            let mut headers = owned(vector.headers);
            sign(
                &suite_credentials(),
                "us-east-1",
                "service",
                vector.method,
                SUITE_HOST,
                vector.path,
                vector.query,
                &mut headers,
                vector.body.as_bytes(),
                at(SUITE_SECS),
            );
            let date: Vec<&str> = header_values(&headers, "x-amz-date").collect();
            assert_eq!(date, [SUITE_DATE], "{}", vector.name);
            let authorization: Vec<&str> = header_values(&headers, "authorization").collect();
            assert_eq!(authorization, [suite_authorization(vector).as_str()], "{}", vector.name);
        }
    }

    #[test]
    fn verify_accepts_every_suite_vector() {
        for vector in SUITE {
            let mut headers = owned(&[("Host", SUITE_HOST), ("X-Amz-Date", SUITE_DATE)]);
            headers.extend(owned(vector.headers));
            headers.push(("Authorization".to_owned(), suite_authorization(vector)));
            let request = SignedRequest {
                method: vector.method,
                path: vector.path,
                query: vector.query,
                headers: &headers,
                body: vector.body.as_bytes(),
            };
            let caller = verify_for_service(&suite_store(), &request, at(SUITE_SECS), "us-east-1", "service")
                .unwrap_or_else(|err| panic!("{}: {err}", vector.name));
            assert_eq!(caller, Caller { account: ACCOUNT.to_owned(), access_key_id: SUITE_KEY.to_owned() });
        }
    }

    #[test]
    fn get_vanilla_canonical_request_and_string_to_sign_match_the_suite() {
        let headers = owned(&[("host", SUITE_HOST), ("x-amz-date", SUITE_DATE)]);
        let names = vec!["host".to_owned(), "x-amz-date".to_owned()];
        let creq = canonical_request(
            "GET",
            "/",
            &canonical_query("", false),
            &canonical_headers(&headers, &names).unwrap(),
            "host;x-amz-date",
            &hex(&Sha256::digest(b"")),
        );
        assert_eq!(
            creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            string_to_sign(SUITE_DATE, "20150830/us-east-1/service/aws4_request", &creq),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
    }

    /// AWS's documented example of deriving a signing key (IAM, us-east-1).
    #[test]
    fn signing_key_matches_the_documented_derivation() {
        assert_eq!(
            hex(&signing_key(SUITE_SECRET, "20150830", "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    /// The S3 documentation's "GET Object" example: another key, another
    /// date, a signed `range` and `x-amz-content-sha256`.
    #[test]
    fn verify_accepts_the_documented_s3_get_object_example() {
        let credentials = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".to_owned(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
            account: ACCOUNT.to_owned(),
        };
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let headers = owned(&[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", empty),
            ("x-amz-date", "20130524T000000Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
                 SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
                 Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            ),
        ]);
        let request = SignedRequest { method: "GET", path: "/test.txt", query: "", headers: &headers, body: b"" };
        let store = CredentialStore::from_credentials(vec![credentials]);
        // 2013-05-24T00:00:00Z.
        verify_for_service(&store, &request, at(1_369_353_600), "us-east-1", "s3").unwrap();
    }

    const NOW: u64 = SUITE_SECS;

    /// An ELBv2 request as the SDK sends it, signed at `signed_secs`, with
    /// the SDK's unsigned headers added after signing.
    fn elb_request(signed_secs: u64, body: &str) -> Vec<(String, String)> {
        let mut headers = owned(&[
            ("Host", "elasticloadbalancing.us-east-1.amazonaws.com"),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("x-amz-user-agent", "aws-sdk-rust/1.3.3 api/elasticloadbalancingv2/1.0 os/linux lang/rust/1.89.0"),
            ("amz-sdk-invocation-id", "3f1e8c8a-5d1c-4b47-9a53-0f2a6f3d1c2e"),
        ]);
        sign(
            &suite_credentials(),
            "us-east-1",
            SERVICE,
            "POST",
            "unused.example",
            "/",
            "",
            &mut headers,
            body.as_bytes(),
            at(signed_secs),
        );
        headers.push(("User-Agent".to_owned(), "aws-cli/2.15.0".to_owned()));
        headers.push(("amz-sdk-request".to_owned(), "attempt=1; max=3".to_owned()));
        headers
    }

    const BODY: &str = "Action=DescribeLoadBalancers&Version=2015-12-01";

    fn check(headers: &[(String, String)], body: &str, now_secs: u64) -> Result<Caller, AuthError> {
        let request = SignedRequest { method: "POST", path: "/", query: "", headers, body: body.as_bytes() };
        verify(&suite_store(), &request, at(now_secs), "us-east-1")
    }

    fn set(headers: &mut [(String, String)], name: &str, value: &str) {
        for (n, v) in headers.iter_mut() {
            if n.eq_ignore_ascii_case(name) {
                *v = value.to_owned();
            }
        }
    }

    fn authorization(headers: &[(String, String)]) -> String {
        header_values(headers, "authorization").next().unwrap().to_owned()
    }

    #[test]
    fn a_signed_request_verifies_and_names_its_account() {
        let headers = elb_request(NOW, BODY);
        assert!(authorization(&headers)
            .contains("SignedHeaders=amz-sdk-invocation-id;content-type;host;x-amz-date;x-amz-user-agent, "));
        let caller = check(&headers, BODY, NOW).unwrap();
        assert_eq!(caller.account, ACCOUNT);
        assert_eq!(caller.access_key_id, SUITE_KEY);
        // Unsigned headers may change on the way.
        let mut changed = headers.clone();
        set(&mut changed, "user-agent", "something else");
        check(&changed, BODY, NOW).unwrap();
    }

    #[test]
    fn tampering_with_body_signed_header_or_signature_is_refused() {
        let headers = elb_request(NOW, BODY);
        let err = check(&headers, "Action=DeleteLoadBalancer&Version=2015-12-01", NOW).unwrap_err();
        assert!(matches!(err, AuthError::SignatureDoesNotMatch), "{err}");
        assert_eq!((err.code(), err.http_status()), ("SignatureDoesNotMatch", 403));

        let mut changed = headers.clone();
        set(&mut changed, "host", "elasticloadbalancing.us-west-2.amazonaws.com");
        assert!(matches!(check(&changed, BODY, NOW), Err(AuthError::SignatureDoesNotMatch)));

        let auth = authorization(&headers);
        let last = auth.chars().last().unwrap();
        let flipped = format!("{}{}", &auth[..auth.len() - 1], if last == '0' { '1' } else { '0' });
        let mut changed = headers.clone();
        set(&mut changed, "authorization", &flipped);
        assert!(matches!(check(&changed, BODY, NOW), Err(AuthError::SignatureDoesNotMatch)));

        let mut changed = headers.clone();
        set(&mut changed, "authorization", &format!("{}zz", &auth[..auth.len() - 2]));
        assert!(matches!(check(&changed, BODY, NOW), Err(AuthError::SignatureDoesNotMatch)));

        // A signed header removed.
        let changed: Vec<_> = headers.iter().filter(|(n, _)| n != "amz-sdk-invocation-id").cloned().collect();
        let err = check(&changed, BODY, NOW).unwrap_err();
        assert!(matches!(&err, AuthError::SignedHeaderMissing { name } if name == "amz-sdk-invocation-id"), "{err}");
    }

    #[test]
    fn clock_skew_beyond_15_minutes_is_refused_either_way() {
        let minute = 60;
        check(&elb_request(NOW, BODY), BODY, NOW + 14 * minute).unwrap();
        check(&elb_request(NOW, BODY), BODY, NOW - 14 * minute).unwrap();
        check(&elb_request(NOW, BODY), BODY, NOW + 15 * minute).unwrap();

        let err = check(&elb_request(NOW, BODY), BODY, NOW + 16 * minute).unwrap_err();
        assert!(matches!(err, AuthError::SignatureExpired { .. }), "{err}");
        assert_eq!((err.code(), err.http_status()), ("SignatureDoesNotMatch", 403));
        assert_eq!(
            err.to_string(),
            "signature expired: 20150830T123600Z is now earlier than 20150830T123700Z (20150830T125200Z - 15 min.)"
        );

        let err = check(&elb_request(NOW, BODY), BODY, NOW - 16 * minute).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch");
        assert_eq!(
            err.to_string(),
            "signature not yet current: 20150830T123600Z is still later than 20150830T123500Z (20150830T122000Z + 15 min.)"
        );
    }

    #[test]
    fn unknown_key_missing_and_malformed_signatures_get_the_api_codes() {
        let headers = elb_request(NOW, BODY);
        let request = SignedRequest { method: "POST", path: "/", query: "", headers: &headers, body: BODY.as_bytes() };
        let err = verify(&CredentialStore::default(), &request, at(NOW), "us-east-1").unwrap_err();
        assert!(matches!(&err, AuthError::InvalidClientTokenId { access_key_id } if access_key_id == SUITE_KEY));
        assert_eq!((err.code(), err.http_status()), ("InvalidClientTokenId", 403));

        let unsigned: Vec<_> = headers.iter().filter(|(n, _)| n != "authorization").cloned().collect();
        let err = check(&unsigned, BODY, NOW).unwrap_err();
        assert!(matches!(err, AuthError::MissingAuthenticationToken));
        assert_eq!((err.code(), err.http_status()), ("MissingAuthenticationToken", 403));

        let auth = authorization(&headers);
        let cases = [
            (auth.split(", Signature=").next().unwrap().to_owned(), "requires 'Signature' parameter"),
            (auth.replace("SignedHeaders=", "Signed="), "requires 'SignedHeaders' parameter"),
            (auth.replace("/us-east-1/", "/"), "exactly 5 slash-delimited elements"),
            (auth.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"), "unsupported AWS 'algorithm'"),
        ];
        for (value, words) in cases {
            let mut changed = headers.clone();
            set(&mut changed, "authorization", &value);
            let err = check(&changed, BODY, NOW).unwrap_err();
            assert_eq!((err.code(), err.http_status()), ("IncompleteSignature", 400), "{value}");
            assert!(err.to_string().contains(words), "{err}");
        }

        let mut changed = headers.clone();
        set(&mut changed, "x-amz-date", "2015-08-30T12:36:00Z");
        let err = check(&changed, BODY, NOW).unwrap_err();
        assert_eq!(err.code(), "IncompleteSignature", "{err}");
        let undated: Vec<_> = headers.iter().filter(|(n, _)| n != "x-amz-date").cloned().collect();
        assert_eq!(check(&undated, BODY, NOW).unwrap_err().code(), "IncompleteSignature");

        let mut twice = headers.clone();
        twice.push(("Authorization".to_owned(), auth.clone()));
        assert_eq!(check(&twice, BODY, NOW).unwrap_err().code(), "IncompleteSignature");
    }

    #[test]
    fn scope_host_and_session_token_are_checked() {
        let headers = elb_request(NOW, BODY);
        let request = SignedRequest { method: "POST", path: "/", query: "", headers: &headers, body: BODY.as_bytes() };
        let err = verify(&suite_store(), &request, at(NOW), "eu-west-1").unwrap_err();
        assert!(matches!(&err, AuthError::ScopeMismatch { problem: Scope::Region { found } } if found == "us-east-1"));
        assert_eq!(err.code(), "SignatureDoesNotMatch");
        assert_eq!(err.to_string(), "credential should be scoped to a valid region, not 'us-east-1'.");

        let err = verify_for_service(&suite_store(), &request, at(NOW), "us-east-1", "ec2").unwrap_err();
        assert_eq!(err.to_string(), "credential should be scoped to correct service: 'ec2'.");

        let mut changed = headers.clone();
        set(&mut changed, "authorization", &authorization(&headers).replace("/20150830/", "/20150831/"));
        let err = check(&changed, BODY, NOW).unwrap_err();
        assert!(matches!(err, AuthError::ScopeMismatch { problem: Scope::Date { .. } }), "{err}");

        let mut changed = headers.clone();
        set(&mut changed, "authorization", &authorization(&headers).replace(";host;", ";"));
        let err = check(&changed, BODY, NOW).unwrap_err();
        assert!(matches!(err, AuthError::HostNotSigned), "{err}");
        assert_eq!(err.code(), "SignatureDoesNotMatch");

        // A session token, signed along: refused, as the store has no session.
        let mut with_token = owned(&[("Host", "h.example"), ("X-Amz-Security-Token", "FQoGZXIvYXdzEXAMPLE")]);
        sign(&suite_credentials(), "us-east-1", SERVICE, "POST", "h.example", "/", "", &mut with_token, b"", at(NOW));
        let request = SignedRequest { method: "POST", path: "/", query: "", headers: &with_token, body: b"" };
        let err = verify(&suite_store(), &request, at(NOW), "us-east-1").unwrap_err();
        assert!(matches!(err, AuthError::SessionTokenNotSupported), "{err}");
        assert_eq!((err.code(), err.http_status()), ("InvalidClientTokenId", 403));
    }

    /// A presigned GET built the way the SDKs presign: every parameter but
    /// the signature in the canonical query.
    fn presigned_query(signed_secs: u64, expires_secs: u64, host: &str) -> String {
        let amz = amz_date(timestamp(at(signed_secs)));
        let scope = format!("{}/us-east-1/{SERVICE}/{TERMINATOR}", &amz[..8]);
        let mut credential = String::new();
        uri_encode(format!("{SUITE_KEY}/{scope}").as_bytes(), &mut credential);
        let query = format!(
            "Action=DescribeLoadBalancers&Version=2015-12-01&X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={credential}\
             &X-Amz-Date={amz}&X-Amz-Expires={expires_secs}&X-Amz-SignedHeaders=host"
        );
        let headers = owned(&[("host", host)]);
        let creq = canonical_request(
            "GET",
            "/",
            &canonical_query(&query, true),
            &canonical_headers(&headers, &["host".to_owned()]).unwrap(),
            "host",
            &hex(&Sha256::digest(b"")),
        );
        let key = signing_key(SUITE_SECRET, &amz[..8], "us-east-1", SERVICE);
        let signature = hex(&hmac(&key, string_to_sign(&amz, &scope, &creq).as_bytes()));
        format!("{query}&X-Amz-Signature={signature}")
    }

    #[test]
    fn presigned_requests_verify_until_they_expire() {
        let host = "elasticloadbalancing.us-east-1.amazonaws.com";
        let headers = owned(&[("Host", host)]);
        let query = presigned_query(NOW, 3600, host);
        let request = SignedRequest { method: "GET", path: "/", query: &query, headers: &headers, body: b"" };
        assert_eq!(verify(&suite_store(), &request, at(NOW + 3000), "us-east-1").unwrap().account, ACCOUNT);

        let err = verify(&suite_store(), &request, at(NOW + 3601), "us-east-1").unwrap_err();
        assert!(matches!(err, AuthError::SignatureExpired { .. }), "{err}");
        assert!(err.to_string().ends_with("- 60 min.)"), "{err}");

        let tampered = query.replace("DescribeLoadBalancers", "DeleteLoadBalancer");
        let request = SignedRequest { query: &tampered, ..request };
        assert!(matches!(
            verify(&suite_store(), &request, at(NOW), "us-east-1"),
            Err(AuthError::SignatureDoesNotMatch)
        ));

        let mut both = headers.clone();
        both.push(("Authorization".to_owned(), "AWS4-HMAC-SHA256 Credential=x".to_owned()));
        let request = SignedRequest { headers: &both, query: &query, ..request };
        assert_eq!(verify(&suite_store(), &request, at(NOW), "us-east-1").unwrap_err().code(), "IncompleteSignature");

        let long = presigned_query(NOW, PRESIGNED_EXPIRES_SECS_MAX + 1, host);
        let request = SignedRequest { headers: &headers, query: &long, ..request };
        assert_eq!(verify(&suite_store(), &request, at(NOW), "us-east-1").unwrap_err().code(), "IncompleteSignature");
    }

    #[test]
    fn amz_dates_round_trip_and_refuse_other_forms() {
        assert_eq!(amz_date(timestamp(at(SUITE_SECS))), SUITE_DATE);
        assert_eq!(parse_amz_date(SUITE_DATE), Some(Timestamp::from_secs(SUITE_SECS)));
        assert_eq!(amz_date(timestamp(at(0))), "19700101T000000Z");
        assert_eq!(amz_date(timestamp(UNIX_EPOCH - Duration::from_secs(5))), "19700101T000000Z");
        for bad in
            ["", "20150830T123600", "2015083OT123600Z", "20151330T123600Z", "20150830T246000Z", "ሴ0150830T12360Z"]
        {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("elbstore-auth-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn credentials_files_load_and_malformed_lines_are_named_without_secrets() {
        let path = temp_file(
            "good",
            "# ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID\n\nAKIDEXAMPLE wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY 111122223333\n\
             \tAKID_TWO   s3cr3t+/=   444455556666  \n",
        );
        let store = CredentialStore::load(&path).unwrap();
        assert_eq!(store.get("AKIDEXAMPLE").unwrap().secret_access_key, SUITE_SECRET);
        assert_eq!(store.get("AKID_TWO").unwrap().account, "444455556666");
        assert!(store.get("AKIDOTHER").is_none());
        assert!(!format!("{store:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", store.get("AKID_TWO").unwrap()).contains("s3cr3t"));
        std::fs::remove_file(&path).unwrap();

        let cases = [
            ("AKID1 topsecret 111122223333\nAKID2 topsecret\n", "line 2: expected 3 fields"),
            ("AKID1 topsecret 11112222333\n", "line 1: the account id must be 12 digits"),
            ("AKID1 topsecret 11112222333x\n", "line 1: the account id"),
            ("# c\ntopsecret/+ AKID1 111122223333\n", "line 2: the access key id"),
            (
                "AKID1 topsecret 111122223333\n\nAKID1 topsecret2 111122223333\n",
                "line 3: the access key id was already given on line 1",
            ),
            ("# nothing\n\n", "holds no key"),
        ];
        for (text, words) in cases {
            let path = temp_file("bad", text);
            let err = CredentialStore::load(&path).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains(words), "{message}");
            assert!(!message.contains("topsecret"), "{message}");
            assert_eq!(err.code(), "InternalFailure");
            std::fs::remove_file(&path).unwrap();
        }
        let missing = std::env::temp_dir().join("elbstore-auth-no-such-file");
        assert!(matches!(CredentialStore::load(&missing), Err(AuthError::CredentialsIo { .. })));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Whatever arrives, `verify` answers with an error or a caller; it never panics.
        #[test]
        fn verify_never_panics(
            method in "\\PC{0,8}",
            path in "\\PC{0,24}",
            query in "(\\PC|[&=%])*",
            authorization in prop_oneof![
                "\\PC*",
                "AWS4-HMAC-SHA256 Credential=(\\PC|/)*, SignedHeaders=(\\PC|;)*, Signature=[0-9a-fA-F]{0,70}",
                Just("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/elasticloadbalancing/aws4_request, \
                      SignedHeaders=host;x-amz-date, Signature=".to_owned()),
            ],
            date in prop_oneof!["\\PC{0,20}", "[0-9]{8}T[0-9]{6}Z"],
            extra in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,24}"), 0..4),
            body in proptest::collection::vec(any::<u8>(), 0..64),
            now_secs in any::<u64>(),
        ) {
            let mut headers = vec![
                ("Host".to_owned(), "h".to_owned()),
                ("X-Amz-Date".to_owned(), date),
                ("Authorization".to_owned(), authorization),
            ];
            headers.extend(extra);
            let request = SignedRequest { method: &method, path: &path, query: &query, headers: &headers, body: &body };
            let now = UNIX_EPOCH.checked_add(Duration::from_secs(now_secs / 4)).unwrap_or(UNIX_EPOCH);
            let result = verify(&suite_store(), &request, now, "us-east-1");
            if let Err(err) = result {
                let _ = (err.to_string(), err.code(), err.http_status());
            }
            let query_only = SignedRequest { headers: &[], ..request };
            let _ = verify(&suite_store(), &query_only, now, "us-east-1").map_err(|err| err.to_string());
        }
    }
}
