//! The operator tools, driven in-process: every `pitr` verb with its JSON
//! keys and refusals, read-only verbs changing no byte, the incident demo and
//! the load generator's acknowledgement log.

mod common;

use common::{dir_contents, files_with_prefix, TempDir};
use elbstore::elb::{fleet, Command, ElbStore, Settings};
use elbstore::tools::{follower, incident, pitr, workload};
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
/// Archives the sample store in `dir` to `url`; returns the last seq archived.
fn archive_sample(dir: &TempDir, url: &str) -> u64 {
    let options = Options::default().identity("us-east-1", "production");
    let store = ElbStore::open(dir.path(), options, Settings::in_region("us-east-1")).unwrap();
    let target = elbstore::archive::Target::open(url).unwrap();
    let archiver = elbstore::archive::Archiver::start(store.store(), target, Default::default()).unwrap();
    let archived = archiver.flush().unwrap().archived_seq;
    archiver.stop();
    archived
}

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

/// Damages a file: flips `mask`'s bits of the byte at `offset`.
fn flip_bits(path: &std::path::Path, offset: usize, mask: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= mask;
    std::fs::write(path, bytes).unwrap();
}

/// `pitr` with `args`, expecting exit code 0 and one JSON document.
fn pj(args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    json(pitr::run, &args)
}

/// A store of 60 load balancers created by one transaction (over the guard's
/// limit of 50 when reverted), and a customer change after it.
fn big_sample(dir: &TempDir) -> u64 {
    let options = Options::default().create(Create::New).identity("us-east-1", "production").sync(SyncPolicy::Never);
    let store = ElbStore::open(dir.path(), options, Settings::in_region("us-east-1")).unwrap();
    let build = store
        .execute_with(TxnMeta::new("svc:provisioning", "build 60"), |_, ctx| fleet::batch_commands(0..60, ctx.seq))
        .unwrap()
        .committed
        .unwrap()
        .seq;
    store.execute_with(TxnMeta::new("customer:1", "new one"), |_, ctx| fleet::reference_commands(70, ctx.seq)).unwrap();
    store.close().unwrap();
    build
}

#[test]
fn read_only_verbs_answer_in_json_and_change_no_byte() {
    let dir = TempDir::new("pitr-read");
    let (deletion, last) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let before = dir_contents(dir.path());

    let info = pj(&["info", d]);
    keys(
        &info,
        &["name", "environment", "id", "first_seq", "last_seq", "transactions", "counts", "segments", "snapshots"],
    );
    assert_eq!(info["name"], "us-east-1");
    assert_eq!(info["environment"], "production");
    assert_eq!(info["last_seq"], last);
    assert_eq!(info["restored_from"], Value::Null, "an original store has no provenance");
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

    let log = pj(&["log", d, "--actor", "maint:cleanup"]);
    let rows = log["transactions"].as_array().unwrap();
    assert_eq!((rows.len(), log["count"].as_u64()), (1, Some(1)));
    keys(&rows[0], &["seq", "time", "actor", "reason", "ticket", "approved_by", "changes"]);
    assert_eq!(rows[0]["seq"], deletion);
    assert_eq!(rows[0]["changes"]["deleted"]["load_balancers"], 3, "load balancers counted as such");
    assert_eq!(rows[0]["changes"]["deleted"]["listeners"], 6);
    assert_eq!(rows[0]["ticket"], "CHG-7");
    let window = pj(&["log", d, "--from", &format!("seq:{}", deletion - 1), "--to", &format!("seq:{deletion}")]);
    assert_eq!(window["count"], 1);
    let now = pj(&["log", d, "--from", &format!("seq:{}", last - 1), "--to", "now"]);
    assert_eq!(now["count"], 1, "now is the latest transaction");

    let gone = pj(&["show", d, "--load-balancer", "lb-13"]);
    assert_eq!(gone["deleted"]["by"]["actor"], "maint:cleanup");
    assert_eq!(gone["deleted"]["by"]["seq"], deletion);
    assert!(gone["deleted"]["resource"]["id"].as_str().unwrap().starts_with("lb-"));
    assert!(gone["deleted"]["resource"]["arn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:elasticloadbalancing:us-east-1:"));
    let (code, text, _) = run(pitr::run, &["show", d, "--load-balancer", "lb-13"]);
    assert_eq!(code, 0);
    assert!(text.contains(&format!("transaction {deletion} by maint:cleanup")), "{text}");
    let earlier = pj(&["show", d, "--at", &format!("before:{deletion}"), "--load-balancer", "lb-13"]);
    let shown = &earlier["load_balancers"][0];
    assert_eq!(shown["listeners"].as_array().unwrap().len(), 2);
    assert_eq!(shown["target_groups"][0]["targets"].as_array().unwrap().len(), 10);
    let lb = &shown["load_balancer"];
    assert_eq!(lb["kind"], "load_balancer");
    assert_eq!(lb["fields"]["name"], "lb-13");
    assert!(lb["fields"]["attributes"].is_object() || lb["fields"]["attributes"].is_array(), "nested: {lb}");

    let diff = pj(&["diff", d, "--from", &format!("before:{deletion}"), "--to", &format!("seq:{last}")]);
    keys(&diff, &["from_seq", "to_seq", "created", "modified", "deleted", "resources"]);
    assert_eq!(diff["deleted"]["load_balancers"], 3);
    assert_eq!(diff["deleted"]["listeners"], 6);
    assert_eq!(diff["created"]["load_balancers"], 1);
    let listed = diff["resources"].as_array().unwrap();
    assert_eq!(listed.iter().filter(|r| r["change"] == "deleted" && r["kind"] == "load_balancer").count(), 3);

    let verify = pj(&["verify", d]);
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["problems"].as_array().unwrap().len(), 0);
    assert_eq!(verify["next_step"], Value::Null);
    assert_eq!(verify["record_schemas"], serde_json::json!({ "2": last }), "every record decoded and upcast");

    // A dry-run revert and a restore read this store only.
    let target = TempDir::new("pitr-restore");
    let t = target.path().to_str().unwrap();
    let restore =
        pj(&["restore", d, "--at", &format!("before:{deletion}"), "--out", t, "--actor", "ops:a", "--reason", "look"]);
    assert_eq!(restore["verified"], true);
    assert_eq!(restore["seq"], deletion - 1);
    assert_eq!(restore["violations"], serde_json::json!([]), "a state the planner built breaks no rule");
    // The copy proves it holds the source's state at that point: the digests agree.
    let at_point = pj(&["show", d, "--at", &format!("seq:{}", deletion - 1)]);
    let copy = pj(&["info", t]);
    let digest = at_point["state_digest"].as_str().unwrap();
    assert_eq!(digest.len(), 64);
    assert_eq!(copy["state_digest"], digest, "restored copy and source at seq {}", deletion - 1);
    assert_ne!(pj(&["info", d])["state_digest"], digest, "the head is another state");
    assert_eq!(pj(&["show", d])["state_digest"], pj(&["info", d])["state_digest"], "show at now = info");
    let lb = pj(&["show", d, "--at", &format!("seq:{}", deletion - 1), "--load-balancer", "lb-13"]);
    let lb_digest = lb["load_balancers"][0]["digest"].as_str().unwrap();
    assert_eq!(lb_digest.len(), 64);
    assert_eq!(pj(&["show", t, "--load-balancer", "lb-13"])["load_balancers"][0]["digest"], lb_digest);
    let txn = deletion.to_string();
    let dry = pj(&[
        "revert",
        d,
        "--txn",
        &txn,
        "--actor",
        "ops:a",
        "--reason",
        "r",
        "--expect-store",
        "us-east-1",
        "--dry-run",
    ]);
    assert_eq!(dry["new_seq"], Value::Null);
    assert_eq!(dry["written"], false);
    assert_eq!(dry["restored"], 15);
    assert_eq!(dir_contents(dir.path()), before, "read-only verbs changed the store");

    // The restored store is a store of its own, with the state before the
    // deletion, and says where it came from.
    let restored_info = pj(&["info", t]);
    assert_eq!(restored_info["counts"]["load_balancers"], 20);
    let from = &restored_info["restored_from"];
    assert_eq!(from["source_store_id"], info["id"]);
    assert_eq!(from["seq"], (deletion - 1).to_string());
    assert_eq!(from["actor"], "ops:a");
    let (_, text, _) = run(pitr::run, &["info", t]);
    assert!(
        text.contains(&format!("restored from store us-east-1/production (id {})", info["id"].as_str().unwrap())),
        "{text}"
    );
}

#[test]
fn log_filters_deletions_kinds_and_actors_under_a_header_with_steady_columns() {
    let dir = TempDir::new("pitr-log");
    let (deletion, last) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let deletions = pj(&["log", d, "--deletions"]);
    assert_eq!(deletions["count"], 1);
    assert_eq!(deletions["transactions"][0]["seq"], deletion);
    let kind = pj(&["log", d, "--kind", "load_balancers", "--from", &format!("seq:{}", deletion - 1)]);
    assert_eq!(kind["count"], 2, "the deletion and the customer's creation");
    assert_eq!(kind["filter"]["kind"], "load_balancer");
    let (code, text, _) = run(pitr::run, &["log", d]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("SEQ") && lines[0].contains("ACTOR") && lines[0].contains("LBS +/-"), "{text}");
    assert_eq!(lines.len() as u64, last + 2, "a header, a row per transaction, a total: {text}");
    assert_eq!(lines.last(), Some(&format!("{last} transactions shown of seqs 1 to {last}").as_str()));
    // Columns do not move with the actor's length: the reason starts at one place.
    let long = TempDir::new("pitr-log-long");
    let options = Options::default().create(Create::New).identity("us-east-1", "production").sync(SyncPolicy::Never);
    let store = ElbStore::open(long.path(), options, Settings::in_region("us-east-1")).unwrap();
    for (i, actor) in ["a", "svc:a-very-long-automation-actor-name-indeed"].iter().enumerate() {
        store
            .execute_with(TxnMeta::new(*actor, "REASON-HERE"), |_, ctx| fleet::reference_commands(i as u64, ctx.seq))
            .unwrap();
    }
    store.close().unwrap();
    let (_, text, _) = run(pitr::run, &["log", long.path().to_str().unwrap()]);
    let at: Vec<usize> = text.lines().filter_map(|l| l.find("REASON-HERE")).collect();
    assert_eq!(at.len(), 2, "{text}");
    assert_eq!(at[0], at[1], "columns broke:\n{text}");
}

/// First-use review: `log --entity` showed whole-transaction totals, not the
/// resource's own change.
#[test]
fn log_entity_shows_the_resources_own_field_level_changes() {
    let dir = TempDir::new("pitr-entity");
    let options = Options::default().create(Create::New).identity("us-east-1", "production").sync(SyncPolicy::Never);
    let store = ElbStore::open(dir.path(), options, Settings::in_region("us-east-1")).unwrap();
    store.execute_with(TxnMeta::new("svc:build", "build"), |_, ctx| fleet::reference_commands(0, ctx.seq)).unwrap();
    let lb = store.read().load_balancer_by_name(&fleet::account(0), &fleet::name(0)).unwrap().id;
    let tags: elbstore::elb::Tags = [("team".to_owned(), "payments".to_owned())].into_iter().collect();
    store
        .execute(
            TxnMeta::new("customer:1", "tag it"),
            vec![Command::AddTags { resources: vec![elbstore::elb::Taggable::LoadBalancer(lb)], tags }],
        )
        .unwrap();
    store.close().unwrap();
    let d = dir.path().to_str().unwrap();
    let by_name = pj(&["log", d, "--entity", &fleet::name(0)]);
    assert_eq!(by_name["count"], 2, "created, then tagged");
    let created = &by_name["transactions"][0]["entity_changes"][0];
    assert_eq!(created["change"], "created");
    assert_eq!(created["resource"]["id"], lb.to_string());
    assert_eq!(created["value"]["name"], fleet::name(0));
    let tagged = &by_name["transactions"][1]["entity_changes"];
    assert_eq!(tagged.as_array().unwrap().len(), 1, "only the resource's own change: {tagged}");
    assert_eq!(tagged[0]["change"], "modified");
    assert_eq!(tagged[0]["fields"][0]["field"], "tags");
    assert_eq!(tagged[0]["fields"][0]["after"]["team"], "payments", "a nested value: {tagged}");
    let by_id = pj(&["log", d, "--entity", &lb.to_string()]);
    assert_eq!(by_id["count"], 2);
    let (_, text, _) = run(pitr::run, &["log", d, "--entity", &lb.to_string()]);
    assert!(text.contains("modified") && text.contains("tags:") && text.contains("payments"), "{text}");

    // Unknown names are said to be unknown, with a non-zero exit.
    let (code, _, err) = run(pitr::run, &["log", d, "--entity", "no-such-thing"]);
    assert_eq!(code, 1);
    assert!(err.contains("no resource named \"no-such-thing\""), "{err}");
    let (code, _, err) = run(pitr::run, &["log", d, "--actor", "nobody"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no transaction in this store was made by actor \"nobody\"") && err.contains("svc:build"),
        "{err}"
    );
}

#[test]
fn diff_lists_twenty_and_list_shows_all_with_fields() {
    let dir = TempDir::new("pitr-diff");
    let (deletion, last) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let (from, to) = (format!("before:{deletion}"), format!("seq:{last}"));
    let (_, short, _) = run(pitr::run, &["diff", d, "--from", &from, "--to", &to]);
    let entries = |text: &str| {
        let changes = ["  created ", "  modified ", "  deleted "];
        text.lines().filter(|l| changes.iter().any(|c| l.starts_with(c))).count()
    };
    assert_eq!(entries(&short), 20, "{short}");
    assert!(short.contains("more (--list shows them all)"), "{short}");
    let (_, long, _) = run(pitr::run, &["diff", d, "--from", &from, "--to", &to, "--list"]);
    assert_eq!(entries(&long), 15 + 16 + 30, "{long}");
    assert!(long.contains("deleted load_balancer lb-") && long.contains(" lb-13"), "{long}");
    assert!(long.contains("      health: {"), "modified fields, nested values as JSON: {long}");
}

#[test]
fn refusals_are_one_line_with_the_documented_exit_codes() {
    let dir = TempDir::new("pitr-refuse");
    let (deletion, _) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let busy = TempDir::new("pitr-busy");
    std::fs::create_dir_all(busy.path()).unwrap();
    std::fs::write(busy.join("something"), b"x").unwrap();
    let file = busy.join("something");
    let txn = deletion.to_string();
    let r = ["--actor", "ops:a", "--reason", "r"];
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        ([&["restore", d, "--at", "seq:5", "--out", busy.path().to_str().unwrap()][..], &r].concat(), 2, "not empty"),
        (vec!["restore", d, "--at", "seq:5", "--out", "/tmp/x"], 2, "--actor"),
        (
            [&["revert", d, "--txn", &txn, "--expect-store", "eu-west-1"][..], &r].concat(),
            3,
            "--expect-store takes NAME",
        ),
        (
            [&["revert", d, "--txn", &txn, "--expect-store", "us-east-1/staging"][..], &r].concat(),
            3,
            "--expect-store takes NAME",
        ),
        (
            [&["revert", d, "--txn", &txn, "--expect-store", "0123456789abcdef0123456789abcdef"][..], &r].concat(),
            3,
            "--expect-store takes NAME",
        ),
        ([&["revert", d, "--txn", &txn][..], &r].concat(), 2, "--expect-store"),
        (
            [&["revert", d, "--txn", &txn, "--expect-store", "us-east-1", "--reason", " "][..], &["--actor", "ops:a"]]
                .concat(),
            2,
            "--reason is blank",
        ),
        (vec!["show", d, "--at", "seq:999999"], 2, "999999"),
        (vec!["show", d, "--at", "yesterday"], 2, "RFC 3339"),
        (vec!["info", "/nonexistent/store"], 3, "is not a store"),
        (vec!["info", file.to_str().unwrap()], 3, "it is a file, not a directory"),
        (vec!["frobnicate", d], 2, "frobnicate"),
        (vec![], 2, "Usage"),
    ];
    let before = dir_contents(dir.path());
    for (args, expected, words) in cases {
        let (code, out, err) = run(pitr::run, &args);
        assert_eq!(code, expected, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains(words), "{args:?}: {err}");
        if !args.is_empty() {
            assert!(err.starts_with("error: "), "{args:?}: {err}");
        }
        // Under --json the same failure is one JSON object on standard output.
        if !args.is_empty() {
            let with_json: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
            let (code, out, _) = run(pitr::run, &with_json);
            assert_eq!(code, expected, "{with_json:?}");
            let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{with_json:?}: {e}: {out}"));
            assert_eq!(doc["error"]["exit_code"], expected, "{doc}");
            assert!(doc["error"]["message"].as_str().unwrap().contains(words), "{doc}");
            keys(&doc["error"], &["status", "exit_code", "message"]);
        }
    }
    assert_eq!(dir_contents(dir.path()), before);
    assert_eq!(std::fs::read(busy.join("something")).unwrap(), b"x");
}

#[test]
fn help_usage_versions_and_completions_are_what_people_expect() {
    for args in
        [vec!["--help"], vec!["-h"], vec!["help"], vec!["help", "revert"], vec!["revert", "--help"], vec!["--version"]]
    {
        let (code, out, err) = run(pitr::run, &args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(!out.is_empty(), "{args:?}");
    }
    let (_, help, _) = run(pitr::run, &["help", "revert"]);
    for words in ["--expect-store <STORE>", "--by-actor", "--dry-run", "Example"] {
        assert!(help.contains(words), "{words}: {help}");
    }
    let (_, top, _) = run(pitr::run, &["--help"]);
    assert!(top.contains("Exit codes: 0 ok"), "{top}");
    for verb in ["info", "log", "show", "diff", "restore", "revert", "verify", "salvage", "timeline", "completions"] {
        assert!(top.contains(verb), "{verb}: {top}");
    }
    let (code, script, _) = run(pitr::run, &["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(script.contains("complete") && script.contains("--expect-store"), "{script}");
    let (code, _, err) = run(pitr::run, &[]);
    assert_eq!(code, 2, "no arguments is a usage error");
    assert!(err.contains("Usage"), "{err}");
    for tool in [incident::run, workload::run] {
        let (code, out, _) = run(tool, &["--help"]);
        assert_eq!(code, 0);
        assert!(out.contains("Usage"), "{out}");
    }
}

/// First-use review: the dry run skipped the checks of the real run (blank
/// reason, size limits, the guard); the guard's refusal did not say how to
/// proceed.
#[test]
fn the_dry_run_refuses_what_the_real_run_refuses() {
    let dir = TempDir::new("pitr-dry-guard");
    let build = big_sample(&dir);
    let d = dir.path().to_str().unwrap();
    let txn = build.to_string();
    let base = [
        "revert",
        d,
        "--txn",
        &txn,
        "--expect-store",
        "us-east-1/production",
        "--actor",
        "ops:a",
        "--reason",
        "undo the build",
    ];
    let before = dir_contents(dir.path());
    for extra in [vec!["--dry-run"], vec![]] {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let (code, _, err) = run(pitr::run, &args);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(err.contains("deletion guard refuses") && err.contains("--approver"), "{err}");
    }
    assert_eq!(dir_contents(dir.path()), before, "refused: nothing written");
    // With a ticket and an approver both pass; the dry run says the checks passed.
    let approved: Vec<&str> =
        base.iter().copied().chain(["--ticket", "CHG-1", "--approver", "lead:b", "--dry-run"]).collect();
    let (code, out, err) = run(pitr::run, &approved);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("every check of the real run passed"), "{out}");
}

/// First-use review: reverting twice printed thousands of conflict lines and
/// never said the transaction was already reverted.
#[test]
fn reverting_twice_says_already_reverted_by_n_nothing_to_do() {
    let dir = TempDir::new("pitr-revert-twice");
    let (deletion, last) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let txn = deletion.to_string();
    let revert = [
        "revert",
        d,
        "--expect-store",
        "us-east-1/production",
        "--reason",
        "undo",
        "--txn",
        &txn,
        "--actor",
        "ops:oncall",
    ];
    let (code, _, err) = run(pitr::run, &revert);
    assert_eq!(code, 0, "{err}");
    // The revert is marked as one in the log: the JSON and the words say of what.
    let at = format!("seq:{}", last + 1);
    let log = pj(&["log", d, "--from", &format!("seq:{last}"), "--to", &at]);
    let txns = log["transactions"].as_array().unwrap();
    assert_eq!(txns.len(), 1, "{log}");
    assert_eq!(txns[0]["reverts"], serde_json::json!([deletion]), "{log}");
    let (code, out, err) = run(pitr::run, &["log", d, "--from", &format!("seq:{last}"), "--to", &at]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("(a revert of {deletion})")), "{out}");
    let before = dir_contents(dir.path());
    for dry in [true, false] {
        let args: Vec<&str> = revert.iter().copied().chain(dry.then_some("--dry-run")).collect();
        let (code, out, err) = run(pitr::run, &args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, format!("transaction {deletion} is already reverted by {}, nothing to do\n", last + 1));
        let doc = pj(&args);
        assert_eq!(doc["already_reverted_by"], serde_json::json!([last + 1]));
        assert_eq!(doc["conflicts_by_reason"]["already set back"], doc["conflict_count"], "{doc}");
        assert_eq!(doc["written"], false);
    }
    assert_eq!(dir_contents(dir.path()), before, "nothing written");
}

/// Conflicts are listed in words, 20 of them, the rest counted by reason;
/// with conflicts nothing is written and the exit code is 4.
#[test]
fn revert_conflicts_list_twenty_in_words_count_the_rest_and_exit_4() {
    let dir = TempDir::new("pitr-conflicts");
    let build = big_sample(&dir);
    let d = dir.path().to_str().unwrap();
    // Later changes to every target of the build: each one a conflict.
    let options = Options::default().identity("us-east-1", "production").sync(SyncPolicy::Never);
    let store = ElbStore::open(dir.path(), options, Settings::in_region("us-east-1")).unwrap();
    let groups: Vec<_> = store.read().target_groups().map(|tg| tg.id).collect();
    for chunk in groups.chunks(10) {
        let tags: elbstore::elb::Tags = [("owner".to_owned(), "team-b".to_owned())].into_iter().collect();
        let resources = chunk.iter().map(|tg| elbstore::elb::Taggable::TargetGroup(*tg)).collect();
        store.execute(TxnMeta::new("customer:2", "tag"), vec![Command::AddTags { resources, tags }]).unwrap();
    }
    store.close().unwrap();
    let txn = build.to_string();
    let args = [
        "revert",
        d,
        "--txn",
        &txn,
        "--expect-store",
        "us-east-1/production",
        "--actor",
        "ops:a",
        "--reason",
        "undo",
        "--ticket",
        "CHG-1",
        "--approver",
        "lead:b",
    ];
    let before = dir_contents(dir.path());
    let (code, out, err) = run(pitr::run, &args);
    assert_eq!(code, 4, "{out}{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("  conflict: ")).count(), 20, "{out}");
    assert!(out.contains("changed it since") && !out.contains("ChangedSince"), "in words: {out}");
    let rest = out.lines().find(|l| l.contains("more conflicts")).unwrap_or_else(|| panic!("{out}"));
    assert!(rest.contains("changed since"), "{rest}");
    assert!(out.contains("nothing written"), "{out}");
    assert_eq!(dir_contents(dir.path()), before);
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let (code, out, _) = run(pitr::run, &with_json);
    assert_eq!(code, 4);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["conflict_count"].as_u64(), Some(doc["conflicts"].as_array().unwrap().len() as u64));
    assert_eq!(doc["conflicts_by_reason"]["changed since"], doc["conflict_count"]);
    assert!(doc["conflicts"][0]["id"].as_str().unwrap().starts_with("tg-"), "{doc}");
}

#[test]
fn revert_writes_only_to_the_named_store_by_name_or_id_and_verify_catches_damage() {
    let dir = TempDir::new("pitr-revert");
    let (deletion, last) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let id = pj(&["info", d])["id"].as_str().unwrap().to_owned();
    let reverted = pj(&[
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
        &id,
    ]);
    keys(&reverted, &["reverted_transactions", "restored", "conflicts", "new_seq", "written"]);
    assert_eq!(reverted["new_seq"], last + 1);
    assert_eq!(reverted["restored"], 15);
    let info = pj(&["info", d]);
    assert_eq!(info["counts"]["load_balancers"], 21);
    let by_actor = pj(&[
        "revert",
        d,
        "--by-actor",
        "customer:1",
        "--from",
        "seq:0",
        "--to",
        "now",
        "--actor",
        "ops:oncall",
        "--reason",
        "undo the customer's",
        "--expect-store",
        "us-east-1",
        "--dry-run",
    ]);
    assert_eq!(by_actor["reverted_transactions"].as_array().unwrap().len(), 1);

    // Damage in the log: verify says where, what to do next, and exits 5.
    flip_bits(&files_with_prefix(dir.path(), "wal-")[0], 300, 0x20);
    let (code, out, _) = run(pitr::run, &["verify", d, "--json"]);
    assert_eq!(code, 5);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["ok"], false);
    assert!(report["problems"][0].as_str().unwrap().contains("byte offset"), "{report}");
    assert!(report["next_step"].as_str().unwrap().contains("pitr salvage"), "{report}");
    let (code, text, _) = run(pitr::run, &["verify", d]);
    assert_eq!(code, 5);
    assert!(text.starts_with("DAMAGED") && text.contains("next: `pitr salvage"), "{text}");
}

/// A store another process writes to, a store this user cannot write: the
/// message says what is going on and what to do.
#[test]
fn a_held_lock_is_named_and_reads_still_work() {
    let dir = TempDir::new("pitr-locked");
    let (deletion, _) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let options = Options::default().identity("us-east-1", "production");
    let writer = ElbStore::open(dir.path(), options, Settings::in_region("us-east-1")).unwrap();
    let args = [
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
    ];
    let (code, _, err) = run(pitr::run, &args);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("holds the store's write lock") && err.contains("only reads"), "{err}");
    assert_eq!(pj(&["info", d])["counts"]["load_balancers"], 18, "reads work beside the writer");
    drop(writer);
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
    assert_eq!(summary["follower_converged"], true, "the follower on the feed ends with the store's digest");
    assert!(summary["detect_ms"].is_u64() && summary["revert_ms"].is_u64(), "whole milliseconds: {summary}");
    assert!(summary["later_changes_kept"].as_u64().unwrap() > 100);
    // The store it leaves behind is sound.
    assert_eq!(pj(&["verify", dir.path().to_str().unwrap()])["ok"], true);
    // In words: the follower saw the deletion, raised the alarms from the
    // feed itself, and saw the revert marked as one of the deletion.
    let words = TempDir::new("incident-words");
    let (code, out, err) = run(incident::run, &["--dir", words.path().to_str().unwrap(), "--load-balancers", "1000"]);
    assert_eq!(code, 0, "{err}");
    let line = out.lines().find(|l| l.contains("follower (")).unwrap_or_else(|| panic!("{out}"));
    let deletion = summary["deletion_seq"].as_u64().unwrap();
    for part in [
        format!("saw 100 load balancers deleted in transaction {deletion}"),
        format!("raised a deletions alarm at transaction {deletion}, a fleet drop alarm at transaction {deletion}"),
        format!("a revert of {deletion}, bringing back 100 load balancers"),
        "its state digest equals the store's".to_owned(),
    ] {
        assert!(line.contains(&part), "{part:?} not in {line}");
    }
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
    keys(
        &report,
        &[
            "transactions",
            "duration_ms",
            "per_second",
            "p50_us",
            "p99_us",
            "load_balancers_built",
            "refused",
            "archived_seq",
        ],
    );
    assert_eq!(report["transactions"], 400);
    assert_eq!(report["archived_seq"], Value::Null, "no archive asked for");
    // On an existing store it continues; 0 never builds. With an archive,
    // everything is archived by the time it ends.
    let archive = format!("file://{}", acks.join("archive").display());
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
            "--archive",
            &archive,
            "--archive-interval-ms",
            "5",
            "--json",
        ],
    );
    assert_eq!(again["load_balancers_built"], 0);
    let status = pj(&["archive", "status", &archive]);
    assert_eq!(status["archived_seq"], again["archived_seq"]);
    let acked: Vec<u64> = std::fs::read_to_string(&ack_log).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(acked.len(), 500);
    let options = Options::default().create(Create::IfMissing).mode(elbstore::OpenMode::ReadOnly);
    let store = ElbStore::open(dir.path(), options, Settings::in_region("us-east-1")).unwrap();
    let last = store.read().seq();
    assert_eq!(again["archived_seq"].as_u64(), Some(last), "the archive holds the whole store");
    for seq in &acked {
        assert!(*seq <= last && store.store().transaction(*seq).is_ok(), "acknowledged seq {seq} missing");
    }
    let (code, _, err) = run(workload::run, &["--writers", "2"]);
    assert_eq!(code, 2);
    assert!(err.contains("--dir"), "{err}");
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
        assert_eq!(code, 3, "{args:?}: {out}");
        assert!(err.contains("is not a store"), "{args:?}: {err}");
        assert!(!base.path().exists(), "{args:?} created {}", base.path().display());
    }
}

/// First-use review, blocker 2: `revert --txn N` mixed with the actor form's
/// flags exited 0, used `--txn`, and recorded the wrong actor as the
/// reverting one: a permanent wrong audit record. `--actor` now always names
/// who reverts, the actor form is `--by-actor A --from P --to P`, and a mix
/// is refused at parse time (exit 2) before the store is opened.
#[test]
fn mixing_the_two_revert_forms_is_refused_and_writes_nothing() {
    let dir = TempDir::new("pitr-revert-forms");
    let (deletion, last) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let before = dir_contents(dir.path());
    let txn = deletion.to_string();
    let base = ["revert", d, "--expect-store", "us-east-1/production", "--reason", "undo", "--actor", "ops:oncall"];
    for extra in [
        vec!["--txn", &txn, "--by-actor", "maint:cleanup", "--from", "seq:1", "--to", "now"],
        vec!["--txn", &txn, "--by-actor", "maint:cleanup"],
        vec!["--txn", &txn, "--from", "seq:1"],
        vec!["--by-actor", "maint:cleanup", "--from", "seq:1"],
        vec!["--from", "seq:1", "--to", "now"],
        vec!["--txn", &txn, "--as", "ops:other"],
    ] {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let (code, out, err) = run(pitr::run, &args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
    assert_eq!(dir_contents(dir.path()), before, "a refused revert wrote nothing");
    // One form, whole: the repair is recorded under the actor named for it.
    let (code, _, err) = run(pitr::run, &[&base[..], &["--txn", &txn]].concat());
    assert_eq!(code, 0, "{err}");
    let store =
        ElbStore::open(dir.path(), Options::default().mode(elbstore::OpenMode::ReadOnly), Settings::default()).unwrap();
    let repair = store.store().transaction(last + 1).unwrap();
    assert_eq!(repair.meta.actor, "ops:oncall");
}

/// First-use review: the demo left the store repaired (no way to practise),
/// and printed Rust Debug text (`Some("CHG-2012-1224")`, lists in brackets)
/// and story time beside real time.
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
    for debug in ["Some(", "None", "[\"", "refused: refused", "PST"] {
        assert!(!narration.contains(debug), "{debug:?} in the narration:\n{narration}");
    }
    assert!(narration.contains("ticket CHG-2012-1224, approved by ops:night-shift"), "{narration}");
    assert!(narration.contains(&format!("--txn {deletion}")), "the next step is named: {narration}");
    // The damaged store is there to practise on: the deletion is its last word.
    let info = pj(&["info", d]);
    assert_eq!(info["counts"]["load_balancers"], 900 + 20);
    // Without --dir there is nowhere to keep it.
    let (code, _, err) = run(incident::run, &["--load-balancers", "1000", "--stop-before-repair"]);
    assert_eq!(code, 2);
    assert!(err.contains("--dir"), "{err}");
}

/// Every key of a JSON document at any depth, except the model's own field
/// names (a resource's `fields`, a change's `value`, `before` and `after`)
/// and keys that are data (schema versions, conflict reasons).
fn collect_keys(value: &Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                out.insert(key.clone());
                let data = ["value", "before", "after", "record_schemas", "snapshot_schemas", "conflicts_by_reason"];
                if data.contains(&key.as_str()) || (key == "fields" && v.is_object()) {
                    continue;
                }
                collect_keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_keys(v, out)),
        _ => {}
    }
}

/// No Rust Debug text, no JSON inside a string, ids as their text.
fn check_vocabulary(doc: &Value, at: &str) {
    match doc {
        Value::String(s) => {
            for debug in ["Some(", "None", "Id(", "Timestamp("] {
                assert!(!s.contains(debug), "{at}: Debug text {s:?}");
            }
            assert!(!(s.starts_with('{') || s.starts_with('[')), "{at}: JSON in a string: {s:?}");
        }
        Value::Object(map) => {
            for (key, v) in map {
                assert!(!["changed", "key", "seconds"].contains(&key.as_str()), "{at}: the other word {key:?}");
                if key == "id" && !v.is_null() {
                    assert!(v.is_string(), "{at}: ids are text: {v}");
                }
                if key != "script" {
                    check_vocabulary(v, &format!("{at}.{key}"));
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| check_vocabulary(v, at)),
        _ => {}
    }
}

/// docs/CLI.md names every verb, every flag, every exit code and every JSON
/// key the tools print; every document keeps to one vocabulary.
#[test]
fn docs_cli_documents_every_verb_flag_exit_code_and_json_key() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CLI.md")).unwrap();
    let documented = |word: &str| doc.contains(&format!("`{word}`")) || doc.contains(&format!("`{word} "));
    for verb in pitr::command().get_subcommands() {
        let heading = format!("### `pitr {}`", verb.get_name());
        assert!(doc.contains(&heading), "docs/CLI.md has no {heading:?}");
        for arg in verb.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(documented(&format!("--{long}")), "pitr {} --{long} is not in docs/CLI.md", verb.get_name());
            }
        }
    }
    for command in [incident::command(), workload::command(), follower::command(), elbstore::tools::replica::command()]
    {
        for arg in command.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(documented(&format!("--{long}")), "{} --{long} is not in docs/CLI.md", command.get_name());
            }
        }
    }
    for code in 0..=5 {
        assert!(doc.contains(&format!("| `{code}` |")), "exit code {code} is not in docs/CLI.md");
    }

    // Every kind of document, from every verb.
    let dir = TempDir::new("pitr-docs");
    let (deletion, last) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let out = TempDir::new("pitr-docs-restored");
    let o = out.path().to_str().unwrap();
    let txn = deletion.to_string();
    let revert = ["revert", d, "--txn", &txn, "--actor", "ops:a", "--reason", "r", "--expect-store", "us-east-1"];
    let mut documents = vec![
        pj(&["info", d]),
        pj(&["log", d]),
        pj(&["log", d, "--entity", "lb-13"]),
        pj(&["log", d, "--entity", "lb-0", "--deletions", "--kind", "lb"]),
        pj(&["show", d]),
        pj(&["show", d, "--at", &format!("before:{deletion}"), "--load-balancer", "lb-13"]),
        pj(&["show", d, "--load-balancer", "lb-13"]),
        pj(&["diff", d, "--from", "seq:1", "--to", "now"]),
        pj(&["restore", d, "--at", &format!("seq:{last}"), "--out", o, "--actor", "ops:a", "--reason", "r"]),
        pj(&["info", o]),
        pj(&[&revert[..], &["--dry-run"]].concat()),
        pj(&revert),
        pj(&revert),
        pj(&["verify", d]),
        pj(&["completions", "bash"]),
    ];
    // The archive's documents: an archive of the sample store.
    let archived = TempDir::new("pitr-docs-archive");
    let url = format!("file://{}", archived.join("archive").display());
    archive_sample(&dir, &url);
    let from_archive = archived.join("restored");
    documents.push(pj(&["archive", "status", &url]));
    documents.push(pj(&["verify", "--archive", &url]));
    documents.push(pj(&[
        "restore",
        "--from-archive",
        &url,
        "--at",
        "now",
        "--out",
        from_archive.to_str().unwrap(),
        "--actor",
        "ops:a",
        "--reason",
        "disk lost",
    ]));
    let svg = out.join("timeline.svg");
    let extra = TempDir::new("pitr-docs-extra");
    std::fs::create_dir_all(extra.path()).unwrap();
    documents.push(pj(&["timeline", o, "--svg", extra.join("t.svg").to_str().unwrap()]));
    let _ = svg;
    let salvaged = extra.join("salvaged");
    documents.push(pj(&["salvage", d, "--out", salvaged.to_str().unwrap(), "--actor", "ops:a", "--reason", "r"]));
    let (_, error, _) = run(pitr::run, &["info", "/nonexistent", "--json"]);
    documents.push(serde_json::from_str(&error).unwrap());
    // Reverting lb-3's build: its targets changed since (their health, when
    // the load balancer went): conflicts, exit 4.
    let (code, conflicted, _) = run(
        pitr::run,
        &["revert", d, "--txn", "4", "--actor", "ops:a", "--reason", "r", "--expect-store", "us-east-1", "--json"],
    );
    assert_eq!(code, 4, "{conflicted}");
    documents.push(serde_json::from_str(&conflicted).unwrap());
    let incident_dir = TempDir::new("pitr-docs-incident");
    let i = incident_dir.path().to_str().unwrap();
    documents.push(json(incident::run, &["--dir", i, "--load-balancers", "100", "--stop-before-repair", "--json"]));
    let load = TempDir::new("pitr-docs-workload");
    let w = load.path().to_str().unwrap();
    documents.push(json(workload::run, &["--dir", w, "--transactions", "20", "--load-balancers", "10", "--json"]));

    let mut all = std::collections::BTreeSet::new();
    for (n, document) in documents.iter().enumerate() {
        check_vocabulary(document, &format!("document {n}"));
        collect_keys(document, &mut all);
    }
    let missing: Vec<&String> = all.iter().filter(|k| !documented(k)).collect();
    assert!(missing.is_empty(), "JSON keys not in docs/CLI.md: {missing:?}");
}

/// First-use review: a damaged log had no way forward (verify said
/// "PROBLEMS" and nothing else; a restore to a point before the damage
/// refused). `pitr salvage` copies every transaction before the first damage
/// into a new store and says what was left behind.
#[test]
fn a_damaged_log_is_salvaged_into_a_new_store_up_to_the_damage() {
    let dir = TempDir::new("pitr-salvage");
    let options = Options::default()
        .create(Create::New)
        .identity("us-east-1", "production")
        .sync(SyncPolicy::Never)
        .segment_bytes(8 << 10);
    let store = ElbStore::open(dir.path(), options, Settings::in_region("us-east-1")).unwrap();
    for i in 0..40 {
        store.execute_with(TxnMeta::new("svc:build", "build"), |_, ctx| fleet::reference_commands(i, ctx.seq)).unwrap();
    }
    store.close().unwrap();
    let segments = files_with_prefix(dir.path(), "wal-");
    assert!(segments.len() >= 3, "a log of several segments: {segments:?}");
    // The second segment's first record is damaged; everything before it is whole.
    let name = segments[1].file_name().unwrap().to_str().unwrap().to_owned();
    let first_of_second: u64 =
        name.trim_start_matches("wal-").trim_end_matches(".log").parse().unwrap_or_else(|_| panic!("{name}"));
    flip_bits(&segments[1], 200, 0x40);
    let d = dir.path().to_str().unwrap();
    let before = dir_contents(dir.path());
    let (code, _, err) = run(pitr::run, &["info", d]);
    assert_eq!(code, 5, "a damaged store: {err}");
    assert!(err.contains("pitr salvage"), "the next step is named: {err}");

    let out = TempDir::new("pitr-salvaged");
    let o = out.path().to_str().unwrap();
    let report = pj(&["salvage", d, "--out", o, "--actor", "ops:a", "--reason", "segment 2 damaged"]);
    assert_eq!(report["seq"], first_of_second - 1);
    assert_eq!(report["transactions"], first_of_second - 1);
    assert_eq!((report["verified"].as_bool(), report["complete"].as_bool()), (Some(true), Some(false)));
    let damage = &report["damage"];
    assert!(damage["segment"].as_str().unwrap().ends_with(&name), "{damage}");
    assert_eq!(damage["torn_tail"], false);
    let left = &damage["left_behind"];
    assert!(left["records"].as_u64().unwrap() > 0, "later whole records are counted: {left}");
    assert_eq!(left["seqs"].as_array().unwrap().last().unwrap()["last"], 40, "{left}");
    assert_eq!(dir_contents(dir.path()), before, "the damaged store is only read");

    // The new store opens, is sound, holds the history up to the damage and
    // says where it came from.
    let info = pj(&["info", o]);
    assert_eq!(info["last_seq"], first_of_second - 1);
    assert_eq!(info["counts"]["load_balancers"], first_of_second - 1);
    assert_eq!(info["restored_from"]["actor"], "ops:a");
    assert_eq!(pj(&["verify", o])["ok"], true);
    let (code, _, err) = run(pitr::run, &["salvage", d, "--out", o, "--actor", "ops:a", "--reason", "again"]);
    assert_eq!(code, 2, "a non-empty --out is refused: {err}");
}

/// The incident as one picture: `pitr timeline` over the demo's store draws
/// the fleet falling and coming back, and names the deleting transaction,
/// its actor and the revert.
#[test]
fn the_timeline_of_the_incident_names_the_deleting_transaction() {
    let dir = TempDir::new("timeline-incident");
    let d = dir.path().to_str().unwrap();
    let summary = json(incident::run, &["--dir", d, "--load-balancers", "1000", "--json"]);
    let deletion = summary["deletion_seq"].as_u64().unwrap();
    let pictures = TempDir::new("timeline-svg");
    std::fs::create_dir_all(pictures.path()).unwrap();
    let svg = pictures.join("incident.svg");
    let doc = pj(&["timeline", d, "--from", "seq:0", "--to", "now", "--svg", svg.to_str().unwrap()]);
    let deletions = doc["deletions"].as_array().unwrap();
    assert_eq!(deletions.len(), 1, "{doc}");
    assert_eq!(deletions[0]["seq"], deletion);
    assert_eq!(deletions[0]["actor"], "maint:state-cleanup");
    assert_eq!(deletions[0]["load_balancers_deleted"], 100);
    assert_eq!(doc["reverts"].as_array().unwrap().len(), 1, "{doc}");
    assert!(!doc["alarms"].as_array().unwrap().is_empty(), "the alarms are drawn: {doc}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg") || picture.starts_with("<?xml"), "{}", &picture[..80.min(picture.len())]);
    assert!(picture.trim_end().ends_with("</svg>"));
    assert!(picture.contains(&format!("txn {deletion} by maint:state-cleanup")), "the deleting transaction is named");
    let (code, text, _) = run(pitr::run, &["timeline", d, "--svg", svg.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(text.contains(&format!("deletion: transaction {deletion} by maint:state-cleanup")), "{text}");
}

/// A mistyped actor is named as unknown (with the closest actors first),
/// for `log` and for `revert --by-actor`; a deleted load balancer's ARN finds
/// its history; a revert of creations says how many resources it removes.
#[test]
fn unknown_actors_deleted_arns_and_removals_are_said_plainly() {
    let dir = TempDir::new("pitr-plainly");
    let (deletion, _) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let (code, _, err) = run(pitr::run, &["log", d, "--actor", "maint:clean"]);
    assert_eq!(code, 1);
    let suggestions = err.split("closest first): ").nth(1).unwrap_or_else(|| panic!("{err}"));
    assert!(suggestions.starts_with("maint:cleanup"), "the close actor comes first: {err}");
    let revert = ["revert", d, "--by-actor", "nobody:at-all", "--from", "seq:0", "--to", "now", "--actor", "ops:a"];
    let (code, _, err) =
        run(pitr::run, &[&revert[..], &["--reason", "r", "--expect-store", "us-east-1", "--dry-run"]].concat());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no transaction in this store was made by actor \"nobody:at-all\""), "{err}");

    let base = ["revert", d, "--expect-store", "us-east-1", "--actor", "ops:a", "--reason", "r", "--dry-run"];
    let (code, _, err) = run(pitr::run, &[&base[..], &["--txn", "99999"]].concat());
    assert_eq!(code, 2);
    assert!(err.contains("--txn 99999: there is no such transaction; this store holds transactions 1 to"), "{err}");
    let (code, _, err) = run(pitr::run, &[&base[..], &["--txn", "1", "--ticket", "T", "--approver", "ops:a"]].concat());
    assert_eq!(code, 2);
    assert!(err.contains("--approver must be someone other than --actor"), "{err}");
    let (code, _, err) = run(pitr::run, &["log", d, "--from", "seq:5", "--to", "seq:2"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(pj(&["log", d, "--kind", "Load-Balancers", "--deletions"])["count"], 1, "kinds ignore case");

    let gone = pj(&["show", d, "--load-balancer", "lb-13"]);
    let arn = gone["deleted"]["resource"]["arn"].as_str().unwrap().to_owned();
    let history = pj(&["log", d, "--entity", &arn]);
    assert_eq!(history["count"], 2, "created, then deleted: {history}");
    assert_eq!(history["transactions"][1]["seq"], deletion);

    let dry = pj(&[
        "revert",
        d,
        "--txn",
        "1",
        "--actor",
        "ops:a",
        "--reason",
        "r",
        "--expect-store",
        "us-east-1",
        "--dry-run",
    ]);
    assert_eq!(dry["removed"], 16, "lb-0's build created 16 resources: {dry}");
    let (_, text, _) = run(
        pitr::run,
        &["revert", d, "--txn", "1", "--actor", "ops:a", "--reason", "r", "--expect-store", "us-east-1", "--dry-run"],
    );
    assert!(text.contains("16 resources removed"), "{text}");
}

/// The dry run fails as the real run would on a store another process
/// writes to; a salvage with nothing before the damage exits 5 and leaves no
/// empty store behind.
#[test]
fn a_dry_run_meets_the_lock_and_an_empty_salvage_makes_no_store() {
    let dir = TempDir::new("pitr-dry-lock");
    let (deletion, _) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let writer = ElbStore::open(
        dir.path(),
        Options::default().identity("us-east-1", "production"),
        Settings::in_region("us-east-1"),
    )
    .unwrap();
    let txn = deletion.to_string();
    let (code, _, err) = run(
        pitr::run,
        &["revert", d, "--txn", &txn, "--actor", "ops:a", "--reason", "r", "--expect-store", "us-east-1", "--dry-run"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("holds the store's write lock"), "{err}");
    drop(writer);

    flip_bits(&files_with_prefix(dir.path(), "wal-")[0], elbstore::SEGMENT_HEADER_BYTES + 30, 0x01);
    let out = TempDir::new("pitr-empty-salvage");
    let o = out.path().to_str().unwrap();
    let (code, _, err) = run(pitr::run, &["salvage", d, "--out", o, "--actor", "ops:a", "--reason", "r"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("nothing to salvage"), "{err}");
    assert!(std::fs::read_dir(out.path()).map_or(true, |mut e| e.next().is_none()), "no empty store is left");
}

/// A store written by a service that commits durably, closed: `count`
/// reference load balancers, one transaction each.
fn durable_fleet(dir: &TempDir, count: u64) -> u64 {
    let options = Options::default().create(Create::IfMissing).sync(SyncPolicy::Always);
    let store = ElbStore::open(dir.path(), options, Settings::in_region("us-east-1")).unwrap();
    for i in 0..count {
        store
            .execute_with(TxnMeta::new("svc:provisioning", "build"), |_, ctx| fleet::reference_commands(i, ctx.seq))
            .unwrap();
    }
    let last = store.read().seq();
    store.close().unwrap();
    last
}

/// The follower applies the feed into its own file, resumes from it, proves
/// its copy with the store's digest, and refuses a file that is damaged or
/// ahead of the store (another store, or one restored to an earlier point).
#[test]
fn the_follower_resumes_from_its_file_and_matches_the_stores_digest() {
    let dir = TempDir::new("follower");
    let last = durable_fleet(&dir, 12);
    let files = TempDir::new("follower-files");
    std::fs::create_dir_all(files.path()).unwrap();
    let state = files.join("follower.state");
    let (d, f) = (dir.path().to_str().unwrap(), state.to_str().unwrap());
    let first = json(follower::run, &["--dir", d, "--state", f, "--until-seq", "5", "--json"]);
    keys(&first, &["seq", "state_digest", "load_balancers", "listeners", "rules", "healthy_targets", "applied"]);
    assert_eq!((first["seq"].as_u64(), first["applied"].as_u64()), (Some(5), Some(5)));
    assert_eq!(first["load_balancers"], 5);
    assert_eq!(first["state_digest"], pj(&["show", d, "--at", "seq:5"])["state_digest"]);
    // Resumed: the rest of what the log shows durable (the newest commit
    // group waits for a later one to vouch for it).
    let second = json(follower::run, &["--dir", d, "--state", f, "--idle-exit-ms", "200", "--json"]);
    assert_eq!(second["seq"].as_u64(), Some(last - 1));
    assert_eq!(second["applied"].as_u64(), Some(last - 1 - 5), "nothing applied twice");
    assert_eq!(second["state_digest"], pj(&["show", d, "--at", &format!("seq:{}", last - 1)])["state_digest"]);

    // A store restored to an earlier point: the follower is ahead, and says so.
    let earlier = TempDir::new("follower-earlier");
    let e = earlier.path().to_str().unwrap();
    pj(&["restore", d, "--at", "seq:3", "--out", e, "--actor", "ops:a", "--reason", "drill"]);
    let (code, _, err) = run(follower::run, &["--dir", e, "--state", f, "--idle-exit-ms", "100"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("it follows store") && err.contains("empty --state"), "another store: {err}");

    // A file naming a transaction the store holds with another time (the
    // store was restored in its place and written since) is refused.
    let good = std::fs::read(&state).unwrap();
    let mut other = good.clone();
    other[40] ^= 0x01;
    let end = other.len() - 4;
    let crc = crc32fast::hash(&other[..end]);
    other[end..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&state, &other).unwrap();
    let (code, _, err) = run(follower::run, &["--dir", d, "--state", f, "--idle-exit-ms", "100"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("is not the one it applied"), "{err}");
    std::fs::write(&state, &good).unwrap();

    // A damaged file is refused, not followed from.
    flip_bits(&state, 40, 0x01);
    let (code, _, err) = run(follower::run, &["--dir", d, "--state", f, "--idle-exit-ms", "100"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("checksum mismatch") && err.contains("remove it"), "{err}");
}

/// The disk is lost: `pitr restore --from-archive` brings the store back from
/// its archive; `pitr archive status` says what the archive holds; a changed
/// object exits 5 and names itself; an empty archive exits 3.
#[test]
fn pitr_restores_from_an_archive_and_refuses_a_damaged_or_empty_one() {
    let dir = TempDir::new("pitr-archive");
    let (_, last) = sample(&dir);
    let d = dir.path().to_str().unwrap();
    let digest = pj(&["info", d])["state_digest"].clone();
    let base = TempDir::new("pitr-archive-target");
    let archive_dir = base.join("archive");
    let url = format!("file://{}", archive_dir.display());
    assert_eq!(archive_sample(&dir, &url), last);
    let status = pj(&["archive", "status", &url]);
    assert_eq!((status["first_seq"].as_u64(), status["archived_seq"].as_u64()), (Some(1), Some(last)), "{status}");
    assert_eq!(status["gaps"], serde_json::json!([]));
    std::fs::remove_dir_all(dir.path()).unwrap();
    let out = base.join("restored");
    let o = out.to_str().unwrap();
    let restore =
        ["restore", "--from-archive", &url, "--at", "now", "--out", o, "--actor", "ops:a", "--reason", "disk lost"];
    let doc = pj(&restore);
    assert_eq!((doc["seq"].as_u64(), doc["verified"].as_bool()), (Some(last), Some(true)), "{doc}");
    let info = pj(&["info", o]);
    assert_eq!(info["state_digest"], digest, "the same state as the lost store");
    assert_eq!(info["restored_from"]["source_dir"], url.as_str(), "it names the archive it came from");
    assert!(
        std::fs::read_dir(base.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.')),
        "no staged copy left"
    );

    // One byte of one object changed: exit 5, naming the object.
    let manifest: Value = serde_json::from_slice(&std::fs::read(archive_dir.join("manifest.json")).unwrap()).unwrap();
    let key = manifest["objects"].as_array().unwrap().iter().find(|o| o["kind"] == "part").unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    flip_bits(&archive_dir.join(&key), 100, 0x40);
    let again = base.join("again");
    let args = [
        "restore",
        "--from-archive",
        &url,
        "--at",
        "now",
        "--out",
        again.to_str().unwrap(),
        "--actor",
        "ops:a",
        "--reason",
        "r",
    ];
    let (code, _, err) = run(pitr::run, &args);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains(&key), "{err}");
    let (code, _, err) = run(pitr::run, &["verify", "--archive", &url]);
    assert_eq!(code, 5, "{err}");
    // An archive with nothing in it.
    let empty = format!("file://{}", base.join("empty").display());
    let (code, _, err) = run(pitr::run, &["archive", "status", &empty]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("nothing was archived"), "{err}");
    // Not a URL an archive can be at.
    let (code, _, _) = run(pitr::run, &["archive", "status", "ftp://example/x"]);
    assert_eq!(code, 2);
}
