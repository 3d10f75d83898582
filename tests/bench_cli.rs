//! `progjar-chat bench`: tiny runs, checked for correctness only (the JSON
//! report's fields and counts, no errors, a clean server afterwards); no
//! timing is asserted.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;
use support::InProcessServer;

fn report_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-{name}-{}.json", std::process::id()))
}

fn bench(args: &[&str], json: &PathBuf) -> Value {
    Command::cargo_bin("progjar-chat")
        .unwrap()
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg(json)
        .arg("--quiet")
        .timeout(Duration::from_secs(30))
        .assert()
        .success();
    let report: Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    let _ = std::fs::remove_file(json);
    report
}

/// The checks every clean run passes.
fn assert_clean_run(run: &Value, requests: u64) {
    assert_eq!(run["requests"], requests, "{run}");
    assert_eq!(run["error_replies"], 0, "{run}");
    assert_eq!(run["connection_failures"], 0, "{run}");
    assert_eq!(run["cleanup_errors"], 0, "{run}");
    assert_eq!(run["connections"], 2, "{run}");
    assert!(run["requests_per_second"].as_f64().unwrap() > 0.0, "{run}");
    let latency = &run["latency_us"];
    let p50 = latency["p50"].as_f64().unwrap();
    for key in ["p90", "p99", "p99_9", "max"] {
        assert!(latency[key].as_f64().unwrap() >= p50, "{key} < p50 in {run}");
    }
}

#[test]
fn baseline_alone() {
    let json = report_path("baseline");
    let report = bench(&["--baseline", "-c", "2", "-n", "200"], &json);
    assert_eq!(report["params"]["connections"], 2);
    assert_eq!(report["params"]["requests"], 200);
    assert!(report["server"].is_null());
    assert!(report["ratio"].is_null());
    let baseline = &report["baseline"];
    assert_eq!(baseline["runs"].as_array().unwrap().len(), 1);
    assert_clean_run(&baseline["runs"][0], 200);
    assert_eq!(baseline["summary"]["requests"], 200);
    assert!(report["machine"]["cpus"].as_u64().unwrap() >= 1);
}

#[test]
fn reference_server_and_baseline_with_every_command_pipelined() {
    let server = InProcessServer::start();
    let addr = server.addr.to_string();
    let json = report_path("server");
    let args = [
        "--connect",
        &addr,
        "--baseline",
        "-c",
        "2",
        "-n",
        "200",
        "--pipeline",
        "4",
        "--mix",
        "send,inbox,list,auth,logout,send",
        "--sessions",
        "5",
        "--idle",
        "3",
    ];
    let report = bench(&args, &json);
    assert_clean_run(&report["server"]["runs"][0], 200);
    assert_clean_run(&report["baseline"]["runs"][0], 200);
    for key in ["throughput", "p50", "p99"] {
        assert!(report["ratio"][key]["median"].as_f64().unwrap() > 0.0, "{report}");
    }
    // Every session was logged out and every mailbox drained afterwards.
    assert_eq!(server.state.with(|chat| (chat.session_count(), chat.pending_count())), (0, 0));
}

#[test]
fn inbox_drain_counts_every_message() {
    let server = InProcessServer::start();
    let addr = server.addr.to_string();
    let json = report_path("drain");
    let args = ["--connect", &addr, "-c", "2", "--pipeline", "8", "--inbox-drain", "1000"];
    let report = bench(&args, &json);
    let drain = &report["inbox_drain"][0];
    assert_eq!(drain["messages"], 1000, "{drain}");
    assert_eq!(drain["messages_in_reply"], 1000, "{drain}");
    assert_eq!(drain["fill_errors"], 0, "{drain}");
    assert_eq!(drain["correct"], true, "{drain}");
    assert_eq!(server.state.with(|chat| (chat.session_count(), chat.pending_count())), (0, 0));
}
