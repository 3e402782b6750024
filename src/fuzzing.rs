//! Entry points for the fuzz targets in `fuzz/`, kept in the library so that
//! `tests/fuzz_corpus.rs` replays every committed corpus file through exactly
//! the same checks. Each function takes arbitrary bytes and panics only when
//! an invariant is broken; a refusal of bad input is a typed error, never a
//! panic.

use std::path::Path;
use std::sync::Arc;

use crate::clock::{ManualClock, Timestamp};
use crate::elb::{
    fleet, Command, CreateTrustStore, ElbState, ElbStore, EntityKey, EntityKind, ListenerId, LoadBalancerState,
    ModifyListener, MutualAuthentication, MutualAuthenticationMode, S3Object, Settings, Taggable, TargetSpec,
    TrustStoreId, DEREGISTRATION_DELAY,
};
use crate::identity::{Identity, StoreId};
use crate::io::{CrashMode, SimFs};
use crate::snapshot::SnapshotHeader;
use crate::store::{Create, Options, StateMachine, Store, SyncPolicy, TxnMeta};
use crate::wal::{decode_frame, SegmentHeader, FRAME_HEADER_BYTES};

const DIR: &str = "/fuzz";
const ID: StoreId = StoreId(0x5eed);
const RECORD_LIMIT: u32 = 1 << 16;

fn options(fs: &SimFs) -> Options {
    Options::default()
        .create(Create::IfMissing)
        .file_system(Arc::new(fs.clone()))
        .sync(SyncPolicy::Never)
        .snapshot_every_events(None)
        .record_bytes_max(RECORD_LIMIT)
        .clock(Arc::new(ManualClock::new(Timestamp::from_secs(1))))
}

/// A file system holding an empty store's identity.
fn store_dir() -> SimFs {
    let fs = SimFs::new();
    let identity =
        Identity { id: ID, name: "unnamed".into(), environment: "unspecified".into(), created: Timestamp(1) };
    fs.write_raw(&Path::new(DIR).join("IDENTITY"), identity.encode());
    fs
}

/// The record frame decoder: never panics; an accepted frame is well formed.
pub fn frame_decoder(data: &[u8]) {
    if let Ok(frame) = decode_frame(data, RECORD_LIMIT) {
        assert!(frame.seq > 0);
        assert!(!frame.payload.is_empty() && frame.payload.len() <= RECORD_LIMIT as usize);
        assert_eq!(frame.encoded_bytes(), FRAME_HEADER_BYTES + frame.payload.len());
        assert!(frame.encoded_bytes() <= data.len());
    }
}

/// Snapshot framing and loading: arbitrary bytes as a store's only snapshot.
/// Opening never panics; a snapshot that is accepted must decode to a state
/// that survives a reopen. Its payload decoded like a state in memory (as
/// time travel decodes it, [`StateMachine::decode_like`]) gives what the
/// plain decode gives: the same state, or a refusal.
pub fn snapshot_loader(data: &[u8]) {
    if let Ok((header, payload)) = SnapshotHeader::check(data) {
        assert_eq!(
            payload.len() + crate::snapshot::SNAPSHOT_HEADER_BYTES + crate::snapshot::SNAPSHOT_TRAILER_BYTES,
            data.len()
        );
        let limit = payload.len() as u64;
        let plain = crate::codec::decode::<ElbState>(payload, limit);
        let likes = [plain.as_ref().ok().cloned(), Some(ElbState::default())];
        for like in likes.iter().flatten() {
            let shared = crate::codec::decode_whole(payload, limit, |bytes| ElbState::decode_like(like, bytes));
            match (&plain, &shared) {
                (Ok(plain), Ok(shared)) => assert_eq!(plain, shared, "decoded like a state in memory"),
                (Err(_), Err(_)) => {}
                _ => panic!("the plain decode gave {plain:?}, decoded like a state {shared:?}"),
            }
        }
        let fs = store_dir();
        let header = SnapshotHeader { store_id: ID, ..header };
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(&data[crate::snapshot::SNAPSHOT_HEADER_BYTES..]);
        fs.write_raw(&Path::new(DIR).join(format!("snapshot-{:020}.snap", header.seq)), bytes);
        let _ = Store::<ElbState>::open(DIR, options(&fs));
    }
}

/// The segment scanner and recovery: arbitrary bytes after a valid header as
/// the only segment. Open returns a state or a typed error; when it opens,
/// the state is the fold of the transactions it reports, and it accepts a
/// commit and reopens to the same state.
pub fn segment_scanner(data: &[u8]) {
    let fs = store_dir();
    let header = SegmentHeader { store_id: ID, first_seq: 1, created: Timestamp(1) };
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(data);
    fs.write_raw(&Path::new(DIR).join(format!("wal-{:020}.log", 1)), bytes);
    check_open(&fs);
}

/// Opening over arbitrary directory contents: `data` is a list of files, each
/// `name_len: u8 | name | len: u16 LE | bytes`. Names are kept short and
/// mostly valid store file names, so the fuzzer reaches the parsers.
pub fn open_directory(data: &[u8]) {
    let fs = SimFs::new();
    let names = [
        "IDENTITY",
        "wal-00000000000000000001.log",
        "wal-00000000000000000002.log",
        "snapshot-00000000000000000001.snap",
        "LOCK",
    ];
    let mut rest = data;
    while let [choice, rest_after @ ..] = rest {
        let name = names[*choice as usize % names.len()];
        let Some((len, body)) = rest_after.split_first_chunk::<2>() else { break };
        let len = (u16::from_le_bytes(*len) as usize).min(body.len());
        fs.write_raw(&Path::new(DIR).join(name), body[..len].to_vec());
        rest = &body[len..];
    }
    check_open(&fs);
}

fn check_open(fs: &SimFs) {
    let Ok(store) = Store::<ElbState>::open(DIR, options(fs)) else { return };
    let mut folded = ElbState::default();
    let mut count = 0;
    for txn in store.transactions(..) {
        let Ok(txn) = txn else { return };
        for event in &txn.events {
            folded.apply(event);
        }
        count += 1;
    }
    if store.open_report().snapshot.is_none() {
        assert_eq!(&folded, store.read().state(), "the state is the fold of the log");
    }
    assert_eq!(count, store.read().seq());
    let state = store.read().state().clone();
    drop(store);
    let image = fs.crash_image(CrashMode::KeepUnsynced);
    let again = Store::<ElbState>::open(DIR, options(&image)).expect("a store that opened once reopens");
    assert_eq!(again.read().state(), &state);
}

/// The typed API under arbitrary command sequences: each byte pair picks one
/// of 16 commands (reference fleets, deletions, tags on several resources,
/// registrations, health checks, deregistrations and their completion,
/// attributes, trust stores and mutual TLS, life-cycle states, capacity) and
/// its target among the resources that exist (or do not). After every step
/// every refusal carries one of the API's error codes, a refusal writes
/// nothing, and the inverse of each transaction restores the state before
/// it; at the end the state is the fold of the log and a reopen gives it again.
pub fn elb_commands(data: &[u8]) {
    let fs = SimFs::new();
    let store = ElbStore::open(DIR, options(&fs), Settings::in_region("us-east-1")).expect("a new store opens");
    for pair in data.chunks(2).take(64) {
        let (op, arg) = (pair[0], pair.get(1).copied().unwrap_or(0));
        let before = store.read();
        let lbs: Vec<_> = before.load_balancers().map(|lb| lb.id).collect();
        let tgs: Vec<_> = before.target_groups().map(|tg| tg.id).collect();
        let lb = lbs.get(arg as usize % lbs.len().max(1)).copied().unwrap_or(crate::elb::LoadBalancerId(arg.into()));
        let tg = tgs.get(arg as usize % tgs.len().max(1)).copied().unwrap_or(crate::elb::TargetGroupId(arg.into()));
        let listeners: Vec<_> = before.state().entities(EntityKind::Listener).map(|e| e.key()).collect();
        let listener = match listeners.get(arg as usize % listeners.len().max(1)) {
            Some(EntityKey::Listener(id)) => *id,
            _ => ListenerId(arg.into()),
        };
        let stores: Vec<_> = before.trust_stores().map(|ts| ts.id).collect();
        let ts = stores.get(arg as usize % stores.len().max(1)).copied().unwrap_or(TrustStoreId(arg.into()));
        let target = TargetSpec::new(fleet::target_id(u64::from(arg % 8), u64::from(arg) % fleet::TARGETS_PER_GROUP));
        let meta = TxnMeta::new("fuzz", "op");
        let one = |command| store.execute(meta.clone(), vec![command]);
        let result = match op % 16 {
            0 => store.execute_with(meta.clone(), |_, ctx| fleet::reference_commands(u64::from(arg % 8), ctx.seq)),
            1 => one(Command::DeleteLoadBalancer { load_balancer: lb }),
            2 => one(Command::DeleteTargetGroup { target_group: tg }),
            3 => one(Command::AddTags {
                resources: vec![Taggable::LoadBalancer(lb), Taggable::TargetGroup(tg)],
                tags: [(format!("k{}", arg % 3), format!("{op}"))].into(),
            }),
            4 => one(Command::RegisterTargets { target_group: tg, targets: vec![target] }),
            5 => one(Command::UpdateTargetHealth {
                target_group: tg,
                target,
                health: fleet::check_result(arg.is_multiple_of(2), u64::from(arg)),
            }),
            6 => one(Command::DeregisterTargets { target_group: tg, targets: vec![target] }),
            7 => one(Command::CompleteDeregistrations { target_group: None }),
            8 => one(Command::ModifyTargetGroupAttributes {
                target_group: tg,
                attributes: [(DEREGISTRATION_DELAY.to_owned(), (u64::from(arg % 3) * 150).to_string())].into(),
            }),
            9 => one(Command::DeleteListener { listener }),
            10 => one(Command::ModifyListenerAttributes {
                listener,
                attributes: [("routing.http.response.server.enabled".to_owned(), arg.is_multiple_of(2).to_string())]
                    .into(),
            }),
            11 => one(Command::CreateTrustStore(CreateTrustStore {
                account: fleet::account(u64::from(arg % 8)),
                name: format!("ts-{}", arg % 4),
                ca_certificates_bundle: S3Object { bucket: "bundles".into(), key: format!("{arg}.pem"), version: None },
                tags: Default::default(),
            })),
            12 => one(Command::ModifyListener(ModifyListener {
                mutual_authentication: Some(MutualAuthentication {
                    mode: MutualAuthenticationMode::Verify,
                    trust_store: Some(ts),
                    ..MutualAuthentication::default()
                }),
                ..ModifyListener::new(listener)
            })),
            13 => one(Command::DeleteTrustStore { trust_store: ts }),
            14 => one(Command::SetLoadBalancerState {
                load_balancer: lb,
                state: LoadBalancerState::ALL[arg as usize % LoadBalancerState::ALL.len()],
            }),
            _ => one(Command::ModifyCapacityReservation {
                load_balancer: lb,
                capacity_units: (arg % 2 == 1).then_some(u32::from(arg)),
            }),
        };
        if let Err(err) = &result {
            // Every refusal maps to one of the API's error codes.
            assert!(!err.code().is_empty() && matches!(err.http_status(), 400 | 500 | 503), "{err}");
        }
        match result.map(|applied| applied.committed) {
            Ok(Some(committed)) => {
                let txn = store.store().transaction(committed.seq).expect("a committed transaction reads back");
                let mut undone = store.read().state().clone();
                for event in txn.events.iter().rev() {
                    undone.apply(&event.inverse());
                }
                assert_eq!(&undone, before.state(), "the inverse restores the state before");
            }
            Ok(None) | Err(_) => assert_eq!(store.read().seq(), before.seq(), "a refusal writes nothing"),
        }
    }
    // The reference model: the fold of every logged event from the empty state.
    let mut model = ElbState::default();
    for txn in store.store().transactions(..) {
        for event in &txn.expect("the log reads back").events {
            model.apply(event);
        }
    }
    let state = store.read().state().clone();
    assert_eq!(model, state, "the state is the fold of the log");
    drop(store);
    let again = ElbStore::open(DIR, options(&fs), Settings::in_region("us-east-1")).expect("reopens");
    assert_eq!(again.read().state(), &state);
}

/// The API service under arbitrary requests: each line of `data` (at most
/// 32) is a form body, sent signed by a known caller when its first byte is
/// even and with that line as a forged `Authorization` header when odd.
/// `$LB`, `$TG`, `$LISTENER`, `$RULE` and `$TS` in a body stand for the ARN
/// of the first such resource that exists, so inputs reach past the lookups.
/// For every request: an answer, never a panic or an internal failure; the
/// body is one XML document whose root is `{Action}Response` (200) or
/// `ErrorResponse`; a refusal or a read writes nothing. At the end the store
/// reopens to the same state. Returns how many requests were answered 200.
#[cfg(feature = "api")]
pub fn api_requests(data: &[u8]) -> usize {
    use crate::api::auth::{CredentialStore, Credentials};
    use crate::api::network::{Inventory, SecurityGroup, Subnet};
    use crate::api::{Request, Service};
    const REGION: &str = "us-east-1";
    let caller = Credentials {
        access_key_id: "AKIDFUZZ".into(),
        secret_access_key: "secret-of-fuzz".into(),
        account: "111122223333".into(),
    };
    let subnet = |id: &str, az: &str| Subnet { id: id.into(), vpc_id: "vpc-1".into(), availability_zone: az.into() };
    let network = Inventory::from_parts(
        vec![subnet("subnet-a", "us-east-1a"), subnet("subnet-b", "us-east-1b"), subnet("subnet-c", "us-east-1c")],
        vec![SecurityGroup { id: "sg-1".into(), vpc_id: "vpc-1".into() }],
    );
    let fs = SimFs::new();
    let store = ElbStore::open(DIR, options(&fs), Settings::in_region(REGION)).expect("a new store opens");
    let service =
        Service::new(store, CredentialStore::from_credentials(vec![caller.clone()]), Box::new(network), REGION);
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    let mut answered = 0;
    for line in data.split(|b| *b == b'\n').take(32) {
        let Some((&mode, body)) = line.split_first() else { continue };
        let before = service.store().read();
        let mut body = String::from_utf8_lossy(body).into_owned();
        for (placeholder, kind) in [
            ("$LB", EntityKind::LoadBalancer),
            ("$TG", EntityKind::TargetGroup),
            ("$LISTENER", EntityKind::Listener),
            ("$RULE", EntityKind::Rule),
            ("$TS", EntityKind::TrustStore),
        ] {
            if body.contains(placeholder) {
                let arn = before.state().entities(kind).next().and_then(|e| before.state().arn(REGION, &e.key()));
                body = body.replace(placeholder, &arn.unwrap_or_default());
            }
        }
        let request = if mode % 2 == 0 {
            Request::signed(&caller, REGION, "127.0.0.1", body.as_bytes(), now)
        } else {
            let headers = vec![
                ("host".to_owned(), "127.0.0.1".to_owned()),
                ("authorization".to_owned(), String::from_utf8_lossy(line).into_owned()),
                ("x-amz-date".to_owned(), "20270115T080000Z".to_owned()),
            ];
            Request { method: "POST".into(), path: "/".into(), query: String::new(), headers, body: body.into_bytes() }
        };
        let response = service.handle(&request, now);
        assert!(response.status != 500, "an internal failure: {}", response.body);
        let root = xml_root(&response.body);
        let action =
            crate::api::query::Params::parse(&request.body).ok().and_then(|p| p.get("Action").map(str::to_owned));
        if response.status == 200 {
            answered += 1;
            let action = action.expect("an answered request names its Action");
            assert_eq!(root, format!("{action}Response"), "{}", response.body);
            if action.starts_with("Describe") || action.starts_with("Get") {
                assert_eq!(service.store().read().seq(), before.seq(), "{action} is a read and writes nothing");
            }
        } else {
            assert_eq!(root, "ErrorResponse", "{}", response.body);
            assert_eq!(service.store().read().seq(), before.seq(), "a refusal writes nothing: {}", response.body);
        }
    }
    let state = service.store().read().state().clone();
    service.close().expect("the store closes");
    let again = ElbStore::open(DIR, options(&fs), Settings::in_region(REGION)).expect("reopens");
    assert_eq!(again.read().state(), &state);
    answered
}

/// The root element of one well-formed XML document.
#[cfg(feature = "api")]
fn xml_root(text: &str) -> String {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let (mut root, mut depth) = (None, 0usize);
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("not XML ({e}): {text}")) {
            Event::Start(start) => {
                if depth == 0 {
                    assert!(root.is_none(), "one root element: {text}");
                    root = Some(start.local_name().into_inner().to_owned());
                }
                depth += 1;
            }
            Event::End(_) => depth -= 1,
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "every element closed: {text}");
    root.unwrap_or_else(|| panic!("no root element: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::SEGMENT_HEADER_BYTES;

    #[test]
    fn entry_points_accept_empty_and_small_inputs() {
        for data in [&[][..], &[0][..], &[1, 2, 3, 4, 5, 6, 7, 8, 9][..], &[0xff; 80][..]] {
            frame_decoder(data);
            snapshot_loader(data);
            segment_scanner(data);
            open_directory(data);
            elb_commands(data);
            #[cfg(feature = "api")]
            api_requests(data);
        }
    }

    #[test]
    fn a_real_segment_body_replays() {
        // The body of a real segment must open to its own state through the scanner entry point.
        let fs = SimFs::new();
        let store = ElbStore::open(DIR, options(&fs), Settings::in_region("us-east-1")).unwrap();
        store.execute_with(TxnMeta::new("t", "t"), |_, ctx| fleet::reference_commands(1, ctx.seq)).unwrap();
        let segment = store.store().segments()[0].path.clone();
        drop(store);
        let bytes = fs.read_raw(&segment).unwrap();
        segment_scanner(&bytes[SEGMENT_HEADER_BYTES..]);
    }
}
