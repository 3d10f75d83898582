//! The executable specification: every example of `spec/PROTOCOL.md` runs
//! against the reference implementation.
//!
//! - the spec parses, and holds at least a minimum number of examples (so
//!   that a parser that finds nothing cannot pass);
//! - coverage both ways: every rule has an example, every example names a
//!   rule;
//! - every server example passes against a reference server in this
//!   process, every client example against the real reference client
//!   binary (plain and `--trace`). A failure names every failing example,
//!   with the runner's full report for it.

use std::path::Path;

use progjar_chat::conform::grade;
use progjar_chat::conform::matcher::{Context, Verdict};
use progjar_chat::conform::outcome::CaseResult;
use progjar_chat::conform::report::case_detail;
use progjar_chat::conform::run::{self, ClientTarget, Options, ServerTarget};
use progjar_chat::conform::select::Expectations;
use progjar_chat::spec::{self, Kind, Level, Spec};

/// Fewer examples than this means the parser lost some.
const MIN_EXAMPLES: usize = 91;
const MIN_SERVER_EXAMPLES: usize = 70;
const MIN_CLIENT_EXAMPLES: usize = 21;

fn load() -> (String, Spec) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/PROTOCOL.md");
    let text = std::fs::read_to_string(&path).expect("read spec/PROTOCOL.md");
    let spec = spec::parse(&text).unwrap_or_else(|errors| {
        let list: Vec<String> = errors.iter().map(|e| format!("  spec/PROTOCOL.md {e}")).collect();
        panic!("spec/PROTOCOL.md does not parse:\n{}", list.join("\n"))
    });
    (text, spec)
}

#[test]
fn the_spec_parses_into_enough_examples() {
    let (text, spec) = load();
    assert_eq!(text, spec::PROTOCOL_MD, "the runner compiles in the same spec/PROTOCOL.md");
    let server = spec.examples_of(Kind::Server).count();
    let client = spec.examples_of(Kind::Client).count();
    assert!(spec.examples.len() >= MIN_EXAMPLES, "only {} examples parsed", spec.examples.len());
    assert!(server >= MIN_SERVER_EXAMPLES, "only {server} server examples parsed");
    assert!(client >= MIN_CLIENT_EXAMPLES, "only {client} client examples parsed");
    assert!(spec.rules.len() >= 40, "only {} rules parsed", spec.rules.len());
    for level in [Level::Must, Level::Should] {
        for kind in [Kind::Server, Kind::Client] {
            assert!(
                spec.examples.iter().any(|e| e.level == level && e.kind == kind),
                "no {level} {} example",
                kind.as_str()
            );
        }
    }
    // Every fenced block announced as an example became one (section 1
    // shows one inside a four-backtick block, as an illustration).
    let mut in_illustration = false;
    let mut announced = 0;
    for line in text.lines() {
        if line.starts_with("````") {
            in_illustration = !in_illustration;
        } else if line.starts_with("```example ") && !in_illustration {
            announced += 1;
        }
    }
    assert_eq!(spec.examples.len(), announced, "every ```example block at the top level is parsed");
}

#[test]
fn every_rule_has_an_example_and_every_example_names_a_rule() {
    let (_, spec) = load();
    let problems = spec::coverage(&spec);
    assert!(
        problems.is_empty(),
        "coverage of spec/PROTOCOL.md:\n{}",
        problems.iter().map(|e| format!("  line {}", e)).collect::<Vec<_>>().join("\n")
    );
}

/// Panics with the full report of every case that is not OK.
fn assert_all_ok(spec: &Spec, results: &[CaseResult], rerun: &dyn Fn(&str) -> String) {
    let expectations = Expectations::default();
    let graded = grade::grade(results, false, &expectations);
    let bad: Vec<_> = graded.iter().filter(|g| g.result.verdict != Verdict::Ok).collect();
    if bad.is_empty() {
        return;
    }
    let ids: Vec<String> =
        bad.iter().map(|g| format!("{} {}", g.result.id, g.result.verdict)).collect();
    let details: Vec<String> =
        bad.iter().map(|g| case_detail(g, spec, &rerun(&g.result.id), true)).collect();
    panic!(
        "{} example(s) fail against the reference implementation: {}\n\n{}",
        bad.len(),
        ids.join(", "),
        details.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_example_passes_against_the_reference_server() {
    let (_, spec) = load();
    let examples: Vec<_> = spec.examples_of(Kind::Server).collect();
    let ctx = Context::from_spec(&spec);
    let results = run::run_server_cases(
        &examples,
        &ServerTarget::Reference,
        &Options::default(),
        &ctx,
        &mut |_| {},
    )
    .await;
    assert_eq!(results.len(), examples.len());
    assert_all_ok(&spec, &results, &|id| {
        format!("cargo run -- conform server --spawn 'cargo run -- server --listen 127.0.0.1:{{port}}' --case {id}")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_example_passes_against_the_reference_client() {
    let (_, spec) = load();
    let examples: Vec<_> = spec.examples_of(Kind::Client).collect();
    let ctx = Context::from_spec(&spec);
    let bin = env!("CARGO_BIN_EXE_progjar-chat").to_owned();
    for trace in [false, true] {
        let mut argv =
            vec![bin.clone(), "client".into(), "--connect".into(), "127.0.0.1:{port}".into()];
        if trace {
            argv.push("--trace".into());
        }
        let target = ClientTarget { argv, port: 8889 };
        let options = Options::default();
        let first_prompt = run::FirstPrompt::unknown(&options);
        let results =
            run::run_client_cases(&examples, &target, first_prompt, &options, &ctx, &mut |_| {})
                .await;
        assert_eq!(results.len(), examples.len());
        let flag = if trace { " --trace" } else { "" };
        assert_all_ok(&spec, &results, &|id| {
            format!("cargo run -- conform client --case {id} -- target/debug/progjar-chat client --connect '127.0.0.1:{{port}}'{flag}")
        });
    }
}
