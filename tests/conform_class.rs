//! `conform class` on a class made of the fixtures: each planted bug is
//! a student, plus one whose server never listens and one whose server
//! never answers. One command grades them all; the matrix (JSON, CSV,
//! Markdown, JUnit, the HTML page in a real browser) must say what each
//! fixture is known to break (`support/known_breaks.rs`, shared with
//! `conform_grades.rs`), and the broken ones must cost only themselves.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use support::conform::{conform_within, have_python, python_client, python_server, temp_path, Run};
use support::known_breaks::{self, Known};

/// A student: a server and/or a client of the fixtures, and what they break.
struct Student {
    name: &'static str,
    server: Option<&'static Known>,
    client: Option<&'static Known>,
}

const STUDENTS: [Student; 4] = [
    Student {
        name: "good",
        server: Some(&known_breaks::RIGHT_SERVER),
        client: Some(&known_breaks::RIGHT_CLIENT),
    },
    Student {
        name: "bare-ok",
        server: Some(&known_breaks::LOGOUT_BARE_OK),
        client: Some(&known_breaks::CLIENT_REPR),
    },
    Student {
        name: "strip",
        server: Some(&known_breaks::STRIP_TEXT),
        client: Some(&known_breaks::CLIENT_NO_TRAILING_SPACE),
    },
    Student { name: "any-case", server: Some(&known_breaks::CASE_INSENSITIVE_USERS), client: None },
];

struct Graded {
    run: Run,
    csv: String,
    markdown: String,
    junit: String,
    html: PathBuf,
}

fn quoted(argv: &[String]) -> String {
    argv.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ")
}

/// The class, graded once for all the tests here.
fn graded() -> Option<&'static Graded> {
    static GRADED: OnceLock<Graded> = OnceLock::new();
    if !have_python() {
        return None;
    }
    Some(GRADED.get_or_init(|| {
        let dir = temp_path("-class");
        // Generous waits: a loaded 2-core machine starting several Python
        // programs at once must not turn a slow start into a verdict.
        let mut manifest = String::from("timeout = \"5s\"\n");
        let mut student =
            |name: &str, server: Option<String>, client: Option<String>, extra: &str| {
                std::fs::create_dir_all(dir.join(name)).unwrap();
                manifest
                    .push_str(&format!("\n[[submission]]\nname = \"{name}\"\ndir = \"{name}\"\n"));
                if let Some(server) = server {
                    manifest.push_str(&format!("server = \"{server}\"\n"));
                }
                if let Some(client) = client {
                    manifest.push_str(&format!("client = \"{client}\"\n"));
                }
                manifest.push_str(extra);
            };
        for s in &STUDENTS {
            let server = s.server.map(|k| python_server(k.breaks));
            let client = s.client.map(|k| quoted(&python_client(k.breaks)));
            student(s.name, server, client, "");
        }
        // Never listens: dies at once. Its client is right, and stays so.
        let right_client = quoted(&python_client(&[]));
        student("crash", Some(python_server(&["crash-on-start"])), Some(right_client), "");
        // Never answers: each case waits out its own short timeout.
        student("silent", Some(python_server(&["silent"])), None, "timeout = \"300ms\"\n");
        let path = dir.join("class.toml");
        std::fs::write(&path, &manifest).unwrap();
        let out = |ext: &str| dir.join(format!("class.{ext}"));
        let args: Vec<String> = vec![
            "class".into(),
            path.display().to_string(),
            "--csv".into(),
            out("csv").display().to_string(),
            "--markdown".into(),
            out("md").display().to_string(),
            "--junit".into(),
            out("xml").display().to_string(),
            "--html".into(),
            out("html").display().to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = conform_within(&args, Duration::from_secs(600));
        let read = |ext: &str| std::fs::read_to_string(out(ext)).unwrap_or_default();
        Graded {
            csv: read("csv"),
            markdown: read("md"),
            junit: read("xml"),
            html: out("html"),
            run,
        }
    }))
}

fn submission<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["submissions"]
        .as_array()
        .expect("submissions")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no submission {name}"))
}

fn part<'a>(sub: &'a Value, kind: &str) -> &'a Value {
    sub["parts"].as_array().unwrap().iter().find(|p| p["kind"] == kind).expect("part")
}

/// Rule → worst verdict of its cases that are not OK, BLOCKED left out:
/// what `conform_grades.rs` calls flagged.
fn flagged(report: &Value) -> BTreeMap<String, String> {
    const RANK: [&str; 6] = ["OK", "NON-STRICT", "NOT-IMPLEMENTED", "BLOCKED", "FAILED", "ERROR"];
    let rank = |v: &str| RANK.iter().position(|r| *r == v).unwrap();
    let mut flagged: BTreeMap<String, String> = BTreeMap::new();
    for case in report["cases"].as_array().expect("cases") {
        let verdict = case["verdict"].as_str().unwrap();
        if verdict == "OK" || verdict == "BLOCKED" {
            continue;
        }
        let worst =
            flagged.entry(case["rule"].as_str().unwrap().to_owned()).or_insert(verdict.into());
        if rank(verdict) > rank(worst) {
            *worst = verdict.to_owned();
        }
    }
    flagged
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// The rules of one kind: `CLI-*` are the client's.
fn of_kind(rule: &str, kind: &str) -> bool {
    rule.starts_with("CLI-") == (kind == "client")
}

#[test]
fn each_student_is_flagged_on_what_its_fixture_breaks_and_nowhere_else() {
    let Some(g) = graded() else { return };
    let report = g.run.report();
    for s in &STUDENTS {
        let sub = submission(report, s.name);
        for (kind, known) in [("server", s.server), ("client", s.client)] {
            let cells: BTreeMap<&str, &str> = sub["rules"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(rule, _)| of_kind(rule, kind))
                .map(|(rule, v)| (rule.as_str(), v.as_str().unwrap()))
                .collect();
            let Some(known) = known else {
                assert!(cells.values().all(|v| v.is_empty()), "{}: no {kind}: {cells:?}", s.name);
                continue;
            };
            let part = part(sub, kind);
            assert_eq!(
                flagged(&part["report"]),
                map(known.flagged),
                "{} {kind} ({:?})\n{}",
                s.name,
                known.breaks,
                g.run.show()
            );
            assert_eq!(part["summary"]["exit_code"], known.code, "{} {kind}", s.name);
            // The matrix: the flagged rules with their verdict, OK elsewhere.
            for (rule, verdict) in &cells {
                let want = known.flagged.iter().find(|(r, _)| r == rule).map_or("OK", |(_, v)| v);
                assert_eq!(*verdict, want, "{} {rule}", s.name);
            }
        }
    }
}

#[test]
fn the_exit_code_and_the_terminal_say_who_conforms() {
    let Some(g) = graded() else { return };
    assert_eq!(g.run.code, 1, "{}", g.run.show());
    assert_eq!(g.run.report()["exit_code"], 1);
    // `good`, and `any-case`, whose mistakes are in SHOULD rules only.
    assert_eq!(g.run.report()["summary"]["conforming"], 2);
    assert!(submission(g.run.report(), "good")["conforms"].as_bool().unwrap());
    assert!(submission(g.run.report(), "any-case")["conforms"].as_bool().unwrap());
    let line = |name: &str, kind: &str| {
        g.run
            .stdout
            .lines()
            .find(|l| l.split_whitespace().take(2).eq([name, kind]))
            .unwrap_or_else(|| panic!("no line for {name} {kind}\n{}", g.run.stdout))
            .to_owned()
    };
    assert!(line("good", "server").contains("CONFORMS  "), "{}", line("good", "server"));
    assert!(line("bare-ok", "server").contains("fails: LOGOUT-1"), "{}", line("bare-ok", "server"));
    assert!(line("crash", "server").contains("UNTESTABLE"), "{}", line("crash", "server"));
    assert!(g.run.stdout.contains("2 of 6 submissions conform"), "{}", g.run.stdout);
}

#[test]
fn a_server_that_never_listens_or_never_answers_costs_only_itself() {
    let Some(g) = graded() else { return };
    let report = g.run.report();
    let crash = submission(report, "crash");
    let server = part(crash, "server");
    assert_eq!(server["summary"]["result"], "untestable");
    let why = server["summary"]["untestable"].as_str().unwrap();
    assert!(why.contains("exited with status 3"), "{why}");
    assert!(server["report"]["untestable"].as_str().unwrap().contains("No module named"));
    for (rule, cell) in crash["rules"].as_object().unwrap() {
        let want = if of_kind(rule, "server") { "UNTESTABLE" } else { "OK" };
        assert_eq!(cell, want, "crash {rule}\n{}", part(crash, "client")["report"]["rules"]);
    }
    // The silent server: every case ran, and every one that is not
    // blocked says it got no reply in time.
    let silent = part(submission(report, "silent"), "server");
    let cases = silent["report"]["cases"].as_array().unwrap();
    assert!(cases.len() >= 40);
    for case in cases.iter().filter(|c| c["verdict"] != "BLOCKED") {
        assert_ne!(case["verdict"], "OK");
        let message = case["message"].as_str().unwrap();
        assert!(message.contains("no reply within 0.3 s"), "{}: {message}", case["id"]);
    }
    // And the others were graded as if alone (see the first test).
    assert!(submission(report, "good")["conforms"].as_bool().unwrap());
}

#[test]
fn csv_and_markdown_are_the_matrix_of_the_json() {
    let Some(g) = graded() else { return };
    let report = g.run.report();
    let columns: Vec<&str> =
        report["columns"].as_array().unwrap().iter().map(|c| c["rule"].as_str().unwrap()).collect();
    let mut lines = g.csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..2], ["submission", "result"]);
    assert_eq!(&header[6..], &columns[..]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 6);
    for row in &rows {
        let sub = submission(report, row[0]);
        for (rule, cell) in columns.iter().zip(&row[6..]) {
            assert_eq!(sub["rules"][rule], *cell, "{} {rule}", row[0]);
        }
        let conforms = sub["conforms"].as_bool().unwrap();
        assert_eq!(row[1] == "conforms", conforms, "{row:?}");
    }
    let crash = rows.iter().find(|r| r[0] == "crash").unwrap();
    assert_eq!(crash[1], "untestable");
    // Markdown: a row per submission, a cell per rule.
    let table: Vec<&str> = g.markdown.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(table.len(), 7, "{}", g.markdown);
    let bare = table.iter().find(|l| l.starts_with("| bare-ok |")).unwrap();
    assert_eq!(bare.matches('|').count(), 4 + columns.len() + 1, "{bare}");
    assert!(bare.contains("| FAIL |"), "{bare}");
}

#[test]
fn junit_has_one_testsuite_per_submission_named_after_it() {
    let Some(g) = graded() else { return };
    let suites: Vec<&str> = g
        .junit
        .match_indices("<testsuite name=\"")
        .map(|(i, m)| {
            let rest = &g.junit[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(suites, ["good", "bare-ok", "strip", "any-case", "crash", "silent"]);
    let crash = &g.junit[g.junit.find("<testsuite name=\"crash\"").unwrap()..];
    let crash = &crash[..crash.find("</testsuite>").unwrap()];
    assert!(crash.contains("name=\"the server cannot be tested\""), "{crash}");
    assert!(crash.contains("<error"), "{crash}");
}

#[test]
fn the_page_shows_the_matrix_and_a_case_on_a_click_in_a_real_browser() {
    let Some(g) = graded() else { return };
    let html = std::fs::read_to_string(&g.html).unwrap();
    // Self-contained: nothing to fetch.
    for outside in ["http://", "https://", "<link", "src="] {
        assert!(!html.contains(outside), "the page refers to {outside}");
    }
    let Some(mut browser) = support::webdriver::Browser::start() else { return };
    browser.open(&format!("file://{}", g.html.display()));
    let columns = g.run.report()["columns"].as_array().unwrap().len();
    assert_eq!(browser.count("#matrix tbody tr"), 6);
    assert_eq!(browser.count("#matrix td.cell"), 6 * columns);
    // A click on a failing cell shows its case.
    browser.click("tr[data-submission='bare-ok'] td[data-rule='LOGOUT-1']");
    let panel = browser.text("#panel");
    assert!(panel.contains("LOGOUT-1.1"), "{panel}");
    assert!(panel.contains("FAILED"), "{panel}");
    assert!(panel.contains("Expected:") && panel.contains("Actual:"), "{panel}");
    assert!(panel.contains("Transcript:") && panel.contains("C1 >"), "{panel}");
    assert!(panel.contains("progjar-chat conform server --spawn"), "{panel}");
    assert!(panel.contains("--case LOGOUT-1.1"), "{panel}");
    // The student's own panel.
    browser.click("tr[data-submission='crash'] th.name");
    let panel = browser.text("#panel");
    assert!(panel.contains("Its server: untestable"), "{panel}");
    assert!(panel.contains("exited with status 3"), "{panel}");
    // The filters hide a level's columns.
    let should = "tr[data-submission='good'] td.l-SHOULD";
    let must = "tr[data-submission='good'] td.l-MUST";
    assert!(browser.displayed(should) && browser.displayed(must));
    browser.click("#show-should");
    assert!(!browser.displayed(should) && browser.displayed(must));
    browser.click("#show-should");
    // A screenshot of the page as loaded: not blank.
    browser.open(&format!("file://{}", g.html.display()));
    let (width, height, colours) = browser.screenshot_colours();
    assert!(width >= 800 && height >= 600, "{width}x{height}");
    assert!(colours >= 8, "only {colours} colours: a blank page?");
}

#[test]
fn a_submission_over_its_budget_is_cut_short_and_says_so() {
    if !have_python() {
        return;
    }
    let dir = temp_path("-budget");
    std::fs::create_dir_all(dir.join("silent")).unwrap();
    let manifest = dir.join("class.toml");
    std::fs::write(
        &manifest,
        format!(
            "timeout = \"1s\"\n[[submission]]\nname = \"silent\"\ndir = \"silent\"\nserver = \"{}\"\n",
            python_server(&["silent"])
        ),
    )
    .unwrap();
    let path = manifest.display().to_string();
    let run = conform_within(&["class", &path, "--budget", "4s"], Duration::from_secs(60));
    assert_eq!(run.code, 1, "{}", run.show());
    let server = part(submission(run.report(), "silent"), "server");
    // Cut short in its preflight or in its cases: either way it says so.
    let cut = match server["report"]["untestable"].as_str() {
        Some(why) => why.contains("time budget"),
        None => server["report"]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["message"].as_str().unwrap().contains("time budget of 4 s")),
    };
    assert!(cut, "{}", run.show());
}

#[test]
fn a_manifest_with_a_mistake_stops_at_once_with_its_line() {
    let dir = temp_path("-bad");
    std::fs::create_dir_all(dir.join("ana")).unwrap();
    let manifest = dir.join("class.toml");
    std::fs::write(
        &manifest,
        "server = \"x {port}\"\n\n[[submission]]\ndir = \"ana\"\nsevrer = \"y\"\n",
    )
    .unwrap();
    let path = manifest.display().to_string();
    let run = conform_within(&["class", &path], Duration::from_secs(30));
    assert_eq!(run.code, 2, "{}", run.show());
    assert!(run.stderr.contains("line 5") && run.stderr.contains("sevrer"), "{}", run.stderr);
}

/// A file of examples (as `conform explore --out` writes one) grades the
/// whole class on those examples alone, and every rerun command says so.
#[test]
fn a_class_is_graded_on_a_file_of_examples() {
    if !have_python() {
        return;
    }
    let dir = temp_path("-examples");
    for name in ["right", "ends-all"] {
        std::fs::create_dir_all(dir.join(name)).unwrap();
    }
    let examples = dir.join("01-LOGOUT-4.md");
    std::fs::write(
        &examples,
        "# A logout with an unknown token\n\n\
         ```example LOGOUT-4.1 MUST\n\
         C1> auth messi surabaya\\r\\n\n\
         C1< {\"status\": \"OK\", \"tokenid\": \"${T1:uuid}\"}\n\
         C2> logout bogus\\r\\n\n\
         C2<*\n\
         C1> inbox ${T1}\\r\\n\n\
         C1< {\"status\": \"OK\", \"messages\": {}}\n\
         ```\n",
    )
    .unwrap();
    let manifest = dir.join("class.toml");
    std::fs::write(
        &manifest,
        format!(
            "timeout = \"5s\"\n\
             [[submission]]\nname = \"right\"\ndir = \"right\"\nserver = \"{}\"\n\
             [[submission]]\nname = \"ends-all\"\ndir = \"ends-all\"\nserver = \"{}\"\n",
            python_server(&[]),
            python_server(&["logout-ends-all"]),
        ),
    )
    .unwrap();
    let (path, file) = (manifest.display().to_string(), examples.display().to_string());
    let run = conform_within(&["class", &path, "--examples", &file], Duration::from_secs(120));
    assert_eq!(run.code, 1, "{}", run.show());
    let report = run.report();
    for (name, verdict) in [("right", "OK"), ("ends-all", "FAILED")] {
        let server = &part(submission(report, name), "server")["report"];
        let cases = server["cases"].as_array().expect("cases");
        let ids: Vec<&str> = cases.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["LOGOUT-4.1"], "{name}: only the file's example runs");
        assert_eq!(cases[0]["verdict"], verdict, "{name}: {}", run.show());
        let rerun = cases[0]["rerun"].as_str().unwrap();
        assert!(rerun.contains(&format!("--examples {file}")), "{rerun}");
    }
}
