//! The operator tools, driven in-process: every `pitr` verb with its JSON
//! keys and refusals, read-only verbs changing no byte, the incident demo and
//! the load generator's acknowledgement log.

mod common;

use common::{dir_contents, TempDir};
use elbstore::elb::{fleet, Command, ElbStore, Settings};
use elbstore::tools::{incident, pitr, workload};
use elbstore::{Create, Options, SyncPolicy, TxnMeta};
use serde_json::Value;

/// Runs a tool; returns (exit code, stdout, stderr).
fn run(
    tool: fn(Vec<String>, &mut dyn std::io::Write, &mut dyn std::io::Write) -> i32,
    args: &[&str],
) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tool(args.iter().map(|a| a.to_string()).collect(), &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

fn json(tool: fn(Vec<String>, &mut dyn std::io::Write, &mut dyn std::io::Write) -> i32, args: &[&str]) -> Value {
    let (code, out, err) = run(tool, args);
    assert_eq!(code, 0, "{args:?}: {err}");
    assert_eq!(out.lines().count(), 1, "exactly one JSON document: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn keys(value: &Value, expected: &[&str]) {
    for key in expected {
        assert!(value.get(key).is_some(), "missing key {key} in {value}");
    }
}

/// A store with 20 load balancers, a maintenance deletion of three, and a
/// customer change after it.
fn sample(dir: &TempDir) -> (u64, u64) {
    let options = Options::default()
        .create(Create::IfMissing)
        .identity("us-east-1", "production")
        .sync(SyncPolicy::Never)
        .snapshot_every_events(Some(200));
    let store = ElbStore::open(dir.path(), options, Settings::in_region("us-east-1")).unwrap();
    for i in 0..20 {
        store
            .execute_with(TxnMeta::new("svc:provisioning", "build"), |_, ctx| fleet::reference_commands(i, ctx.seq))
            .unwrap();
    }
    let ids: Vec<Command> = {
        let view = store.read();
        [3, 13, 17]
            .iter()
            .map(|&i| Command::DeleteLoadBalancer {
                load_balancer: view.load_balancer_by_name(&fleet::account(i), &fleet::name(i)).unwrap().id,
            })
            .collect()
    };
    let deletion =
        store.execute(TxnMeta::new("maint:cleanup", "stale").with_ticket("CHG-7"), ids).unwrap().committed.unwrap().seq;
    store.execute_with(TxnMeta::new("customer:1", "new one"), |_, ctx| fleet::reference_commands(40, ctx.seq)).unwrap();
    let last = store.read().seq();
    store.close().unwrap();
    (deletion, last)
}

#[test]
fn read_only_verbs_answer_in_json_and_change_no_byte() {
    let dir = TempDir::new("pitr-read");
    let (deletion, last) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let before = dir_contents(dir.path());

    let info = json(pitr::run, &["info", d, "--json"]);
    keys(
        &info,
        &["name", "environment", "id", "first_seq", "last_seq", "transactions", "counts", "segments", "snapshots"],
    );
    assert_eq!(info["name"], "us-east-1");
    assert_eq!(info["environment"], "production");
    assert_eq!(info["last_seq"], last);
    keys(&info["counts"], &["load_balancers", "listeners", "rules", "target_groups", "targets", "trust_stores"]);
    assert_eq!(info["counts"]["load_balancers"], 18);
    // Every record and snapshot of this store is the current schema, 2.
    assert_eq!(info["schema"], 2);
    assert_eq!(info["record_schemas"], serde_json::json!({ "2": last }));
    let snapshots = info["snapshots"].as_u64().unwrap();
    assert_eq!(
        info["snapshot_schemas"],
        if snapshots > 0 { serde_json::json!({ "2": snapshots }) } else { serde_json::json!({}) }
    );

    let log = json(pitr::run, &["log", d, "--actor", "maint:cleanup", "--json"]);
    let rows = log.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    keys(&rows[0], &["seq", "time", "actor", "reason", "ticket", "created", "changed", "deleted"]);
    assert_eq!((rows[0]["seq"].as_u64(), rows[0]["deleted"].as_u64()), (Some(deletion), Some(15)));
    assert_eq!(rows[0]["ticket"], "CHG-7");
    let by_entity = json(pitr::run, &["log", d, "--entity", "lb-13", "--json"]);
    assert_eq!(by_entity.as_array().unwrap().len(), 2, "created, then deleted");
    let window = json(
        pitr::run,
        &["log", d, "--from", &format!("seq:{}", deletion - 1), "--to", &format!("seq:{deletion}"), "--json"],
    );
    assert_eq!(window.as_array().unwrap().len(), 1);

    let gone = json(pitr::run, &["show", d, "--load-balancer", "lb-13", "--json"]);
    assert_eq!(gone["deleted"]["actor"], "maint:cleanup");
    assert_eq!(gone["deleted"]["seq"], deletion);
    let (code, text, _) = run(pitr::run, &["show", d, "--load-balancer", "lb-13"]);
    assert_eq!(code, 0);
    assert!(text.contains("deleted by maint:cleanup") && text.contains(&format!("transaction {deletion}")), "{text}");
    let earlier =
        json(pitr::run, &["show", d, "--at", &format!("before:{deletion}"), "--load-balancer", "lb-13", "--json"]);
    let shown = &earlier["load_balancers"][0];
    assert_eq!(shown["listeners"].as_array().unwrap().len(), 2);
    assert_eq!(shown["target_groups"][0]["targets"].as_array().unwrap().len(), 10);

    let diff = json(
        pitr::run,
        &["diff", d, "--from", &format!("before:{deletion}"), "--to", &format!("seq:{last}"), "--json"],
    );
    keys(&diff, &["created", "modified", "deleted", "entities"]);
    assert_eq!(diff["deleted"]["load_balancers"], 3);
    assert_eq!(diff["deleted"]["listeners"], 6);
    assert_eq!(diff["created"]["load_balancers"], 1);

    let verify = json(pitr::run, &["verify", d, "--json"]);
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["problems"].as_array().unwrap().len(), 0);
    assert_eq!(verify["record_schemas"], serde_json::json!({ "2": last }), "every record decoded and upcast");

    // A dry-run revert and a restore read this store only.
    let target = TempDir::new("pitr-restore");
    let restore = json(
        pitr::run,
        &["restore", d, "--at", &format!("before:{deletion}"), "--out", target.path().to_str().unwrap(), "--json"],
    );
    assert_eq!(restore["verified"], true);
    assert_eq!(restore["seq"], deletion - 1);
    assert_eq!(restore["violations"], serde_json::json!([]), "a state the planner built breaks no rule");
    let dry = json(
        pitr::run,
        &[
            "revert",
            d,
            "--txn",
            &deletion.to_string(),
            "--actor",
            "ops:a",
            "--reason",
            "r",
            "--expect-store",
            "us-east-1",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(dry["new_seq"], Value::Null);
    assert_eq!(dir_contents(dir.path()), before, "read-only verbs changed the store");

    // The restored store is a store of its own, with the state before the deletion.
    let restored_info = json(pitr::run, &["info", target.path().to_str().unwrap(), "--json"]);
    assert_eq!(restored_info["counts"]["load_balancers"], 20);
}

#[test]
fn refusals_are_one_line_with_a_non_zero_exit() {
    let dir = TempDir::new("pitr-refuse");
    let (deletion, _) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let busy = TempDir::new("pitr-busy");
    std::fs::create_dir_all(busy.path()).unwrap();
    std::fs::write(busy.join("something"), b"x").unwrap();
    let txn = deletion.to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["restore", d, "--at", "seq:5", "--out", busy.path().to_str().unwrap()],
        vec!["revert", d, "--txn", &txn, "--actor", "ops:a", "--reason", "r", "--expect-store", "eu-west-1"],
        vec!["revert", d, "--txn", &txn, "--actor", "ops:a", "--reason", "r", "--expect-store", "us-east-1/staging"],
        vec!["revert", d, "--txn", &txn, "--actor", "ops:a", "--reason", "r"],
        vec!["show", d, "--at", "seq:999999"],
        vec!["show", d, "--at", "yesterday"],
        vec!["info", "/nonexistent/store"],
        vec!["frobnicate", d],
    ];
    let before = dir_contents(dir.path());
    for args in cases {
        let (code, out, err) = run(pitr::run, &args);
        assert_ne!(code, 0, "{args:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
        // Progress lines may come first; the error is one line, the last.
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {err}");
        assert_eq!(err.lines().last(), Some(errors[0]));
    }
    assert_eq!(dir_contents(dir.path()), before);
    assert_eq!(std::fs::read(busy.join("something")).unwrap(), b"x");
}

#[test]
fn revert_writes_only_to_the_named_store_and_verify_catches_damage() {
    let dir = TempDir::new("pitr-revert");
    let (deletion, last) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let reverted = json(
        pitr::run,
        &[
            "revert",
            d,
            "--txn",
            &deletion.to_string(),
            "--actor",
            "ops:oncall",
            "--reason",
            "undo cleanup",
            "--ticket",
            "INC-1",
            "--expect-store",
            "us-east-1/production",
            "--json",
        ],
    );
    keys(&reverted, &["reverted_transactions", "restored", "conflicts", "new_seq"]);
    assert_eq!(reverted["new_seq"], last + 1);
    assert_eq!(reverted["restored"], 15);
    let info = json(pitr::run, &["info", d, "--json"]);
    assert_eq!(info["counts"]["load_balancers"], 21);
    let by_actor = json(
        pitr::run,
        &[
            "revert",
            d,
            "--actor",
            "customer:1",
            "--from",
            "seq:0",
            "--to",
            &format!("seq:{last}"),
            "--as",
            "ops:oncall",
            "--reason",
            "undo the customer's",
            "--expect-store",
            "us-east-1",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(by_actor["reverted_transactions"].as_array().unwrap().len(), 1);

    // Damage in the log: verify says where and exits non-zero.
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".log"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[300] ^= 0x20;
    std::fs::write(&segment, bytes).unwrap();
    let (code, out, _) = run(pitr::run, &["verify", d, "--json"]);
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["ok"], false);
    assert!(report["problems"][0].as_str().unwrap().contains("byte offset"), "{report}");
}

#[test]
fn the_incident_demo_loses_nothing() {
    let dir = TempDir::new("incident");
    let summary = json(incident::run, &["--dir", dir.path().to_str().unwrap(), "--load-balancers", "1000", "--json"]);
    keys(
        &summary,
        &[
            "load_balancers",
            "deleted",
            "guard_refused",
            "alarm_fired",
            "restored",
            "later_changes_kept",
            "lost",
            "stopped_before_repair",
            "deletion_seq",
            "detect_ms",
            "revert_ms",
        ],
    );
    assert_eq!(summary["load_balancers"], 1000);
    assert_eq!(summary["deleted"], 100);
    assert_eq!(summary["guard_refused"], true, "100 of 1000 is over the guard's limit of 50");
    assert_eq!(summary["alarm_fired"], true);
    assert_eq!(summary["restored"], 500);
    assert_eq!(summary["lost"], 0);
    assert!(summary["later_changes_kept"].as_u64().unwrap() > 100);
    // The store it leaves behind is sound.
    assert_eq!(json(pitr::run, &["verify", dir.path().to_str().unwrap(), "--json"])["ok"], true);
}

#[test]
fn the_workload_acknowledges_only_what_survives() {
    let dir = TempDir::new("workload");
    let acks = TempDir::new("workload-acks");
    std::fs::create_dir_all(acks.path()).unwrap();
    let ack_log = acks.join("acks");
    let d = dir.path().to_str().unwrap();
    let report = json(
        workload::run,
        &[
            "--dir",
            d,
            "--writers",
            "4",
            "--transactions",
            "400",
            "--load-balancers",
            "60",
            "--ack-log",
            ack_log.to_str().unwrap(),
            "--json",
        ],
    );
    keys(&report, &["transactions", "seconds", "per_second", "p50_us", "p99_us"]);
    assert_eq!(report["transactions"], 400);
    // On an existing store it continues; 0 never builds.
    let again = json(
        workload::run,
        &[
            "--dir",
            d,
            "--writers",
            "2",
            "--transactions",
            "100",
            "--load-balancers",
            "0",
            "--ack-log",
            ack_log.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(again["load_balancers_built"], 0);
    let acked: Vec<u64> = std::fs::read_to_string(&ack_log).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(acked.len(), 500);
    let options = Options::default().create(Create::IfMissing).mode(elbstore::OpenMode::ReadOnly);
    let store = ElbStore::open(dir.path(), options, Settings::in_region("us-east-1")).unwrap();
    let last = store.read().seq();
    for seq in &acked {
        assert!(*seq <= last && store.store().transaction(*seq).is_ok(), "acknowledged seq {seq} missing");
    }
    let (code, _, err) = run(workload::run, &["--writers", "2"]);
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Regression: a real `pitr revert` on a mistyped store path created a new,
/// empty store with the expected identity (and its parent directories) before
/// failing. Every operator verb opens with `Create::Never`: the path is
/// refused and nothing is created.
#[test]
fn pitr_on_a_mistyped_path_creates_nothing() {
    let base = TempDir::new("mistyped");
    let missing = base.join("us-east-1/prodution");
    let d = missing.to_str().unwrap();
    for args in [
        vec![
            "revert",
            d,
            "--expect-store",
            "us-east-1/production",
            "--reason",
            "undo",
            "--txn",
            "1",
            "--actor",
            "ops:bob",
        ],
        vec!["info", d],
        vec!["verify", d],
        vec!["log", d],
    ] {
        let (code, out, err) = run(pitr::run, &args);
        assert_ne!(code, 0, "{args:?}: {out}");
        assert!(err.contains("is not a store"), "{args:?}: {err}");
        assert!(!base.path().exists(), "{args:?} created {}", base.path().display());
    }
}

/// First-use review, blocker 2: `revert --txn N` mixed with the actor form's
/// `--from/--to/--as` exited 0, used `--txn`, and recorded `--actor` as the
/// reverting actor: a permanent wrong audit record. Each mix is refused
/// before the store is opened, and nothing is written.
#[test]
fn mixing_the_two_revert_forms_is_refused_and_writes_nothing() {
    let dir = TempDir::new("pitr-revert-forms");
    let (deletion, last) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let before = dir_contents(dir.path());
    let txn = deletion.to_string();
    let base = ["revert", d, "--expect-store", "us-east-1/production", "--reason", "undo"];
    for extra in [
        vec!["--txn", &txn, "--actor", "maint:cleanup", "--from", "seq:1", "--to", "now", "--as", "ops:oncall"],
        vec!["--txn", &txn, "--actor", "ops:oncall", "--as", "ops:other"],
        vec!["--txn", &txn, "--actor", "ops:oncall", "--from", "seq:1"],
        vec!["--actor", "maint:cleanup", "--from", "seq:1", "--to", &format!("seq:{last}")],
    ] {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let (code, out, err) = run(pitr::run, &args);
        assert_ne!(code, 0, "{args:?}: {out}");
        assert!(err.contains("form") || err.contains("--as"), "{args:?}: {err}");
    }
    assert_eq!(dir_contents(dir.path()), before, "a refused revert wrote nothing");
    // One form, whole: the repair is recorded under the actor named for it.
    let (code, _, err) = run(pitr::run, &[&base[..], &["--txn", &txn, "--actor", "ops:oncall"]].concat());
    assert_eq!(code, 0, "{err}");
    let store =
        ElbStore::open(dir.path(), Options::default().mode(elbstore::OpenMode::ReadOnly), Settings::default()).unwrap();
    let repair = store.store().transaction(last + 1).unwrap();
    assert_eq!(repair.meta.actor, "ops:oncall");
}

/// First-use review: the demo left the store repaired (no way to practise),
/// and printed Rust Debug text (`Some("CHG-2012-1224")`, lists in brackets).
#[test]
fn the_incident_demo_stops_before_the_repair_for_practice_in_plain_words() {
    let dir = TempDir::new("incident-practice");
    let d = dir.path().to_str().unwrap();
    let (code, out, narration) =
        run(incident::run, &["--dir", d, "--load-balancers", "1000", "--stop-before-repair", "--json"]);
    assert_eq!(code, 0, "{narration}");
    let summary: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(summary["stopped_before_repair"], true);
    assert_eq!(summary["restored"], 0);
    let deletion = summary["deletion_seq"].as_u64().unwrap();
    for debug in ["Some(", "None", "[\"", "refused: refused"] {
        assert!(!narration.contains(debug), "{debug:?} in the narration:\n{narration}");
    }
    assert!(narration.contains("ticket CHG-2012-1224, approved by ops:night-shift"), "{narration}");
    assert!(narration.contains(&format!("--txn {deletion}")), "the next step is named: {narration}");
    // The damaged store is there to practise on: the deletion is its last word.
    let info = json(pitr::run, &["info", d, "--json"]);
    assert_eq!(info["counts"]["load_balancers"], 900 + 20);
    // Without --dir there is nowhere to keep it.
    let (code, _, err) = run(incident::run, &["--load-balancers", "1000", "--stop-before-repair"]);
    assert_ne!(code, 0);
    assert!(err.contains("give --dir"), "{err}");
}

/// First-use review: reverting twice printed thousands of conflict lines in
/// Rust Debug text. The text lists 20 in words and counts the rest by reason.
#[test]
fn a_second_revert_lists_twenty_conflicts_in_words_and_counts_the_rest() {
    let dir = TempDir::new("pitr-revert-twice");
    let (deletion, _) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let txn = deletion.to_string();
    let revert = ["revert", d, "--expect-store", "us-east-1/production", "--reason", "undo", "--txn", &txn];
    let (code, _, err) = run(pitr::run, &[&revert[..], &["--actor", "ops:oncall"]].concat());
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = run(pitr::run, &[&revert[..], &["--actor", "ops:oncall", "--dry-run"]].concat());
    let listed = out.lines().filter(|l| l.starts_with("  conflict: ")).count();
    assert_eq!(listed, 20, "{out}");
    assert!(out.contains("changed it since"), "in words: {out}");
    assert!(!out.contains("ChangedSince"), "no Debug text: {out}");
    let rest = out.lines().find(|l| l.contains("more conflicts")).unwrap_or_else(|| panic!("{out}"));
    assert!(rest.contains("changed since"), "{rest}");
}
