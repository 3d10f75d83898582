//! `progjar-chat bench`: tiny runs, checked for correctness only (the JSON
//! report's fields and counts, no errors, a clean server afterwards); no
//! timing is asserted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use assert_cmd::Command;
use progjar_chat::protocol::users::UserDirectory;
use progjar_chat::server;
use progjar_chat::shared::SharedChat;
use serde_json::Value;

/// A reference server on its own runtime thread, on `127.0.0.1:0`.
struct Server {
    addr: SocketAddr,
    state: Arc<SharedChat>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(SharedChat::new(UserDirectory::builtin()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            runtime.block_on(server::run(listener, served, async move {
                let _ = stopped.await;
            }));
        });
        Self { addr, state, stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

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
    let server = Server::start();
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
    let server = Server::start();
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
