//! `progjar-chat conform class`: a whole class graded in one command.
//!
//! | module | what it is |
//! |---|---|
//! | [`manifest`] | the submissions: a TOML manifest, or every folder of `--each` |
//! | [`run`] | one submission's server and client, bounded, within the class's slots |
//! | [`matrix`] | pure: submissions x rules, and a line per submission |
//! | [`tables`] | pure: `--csv` and `--markdown` |
//! | [`reports`] | pure: `--json` and `--junit` (one testsuite per submission) |
//! | [`html`] | pure: `--html`, one self-contained page from a template |
//!
//! Submissions run at once with each other (as many as `--jobs`), and so
//! do their cases; `--jobs` bounds the cases running at any moment across
//! the whole class.

mod html;
mod manifest;
mod matrix;
mod reports;
mod run;
mod tables;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::stream::StreamExt;

use self::manifest::{Defaults, Submission};
use self::run::{grade_submission, Shared, SubmissionRun};
use super::args::{check_report_paths, load_examples, load_spec};
use super::console::write_report;
use super::grade::Policy;
use super::interrupt::{self, Ended};
use super::matcher::Context;
use super::process::shell_quote;
use super::run::Slots;
use super::{fail, process};

/// Arguments of `progjar-chat conform class`.
#[derive(Debug, Args)]
pub(crate) struct ClassArgs {
    /// The class manifest, a TOML file (see below).
    #[arg(value_name = "MANIFEST", required_unless_present = "each", conflicts_with = "each")]
    manifest: Option<PathBuf>,
    /// Instead of a manifest: every folder matching this pattern is a submission,
    /// named after its folder, its commands run in it (`submissions/*`).
    #[arg(long, value_name = "GLOB")]
    each: Option<String>,
    /// The server command of every submission (a manifest's own wins); `{port}` is
    /// replaced by a free port.
    #[arg(long, value_name = "CMD")]
    server: Option<String>,
    /// The client command of every submission (a manifest's own wins); `{port}` is
    /// the reference server's port.
    #[arg(long, value_name = "CMD")]
    client: Option<String>,
    /// The users file of every submission, as with `conform server --users`.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// The expected failures of every submission, as with `conform server --expect`.
    #[arg(long, value_name = "FILE")]
    expect: Option<PathBuf>,
    /// How long to wait for any one reply, line or prompt [default: 2].
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// How long a server may take to accept connections.
    #[arg(long, default_value = "10", value_name = "DURATION", value_parser = crate::duration::parse_positive)]
    startup_timeout: Duration,
    /// The longest a submission's server, or its client, may have cases running
    /// (waiting for a slot is not counted): what is not run by then is ERROR,
    /// and the others go on.
    #[arg(long, default_value = "120", value_name = "DURATION", value_parser = crate::duration::parse_positive)]
    budget: Duration,
    /// How many cases run at once across the whole class (default: twice the processors).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Count NON-STRICT as FAILED, and SHOULD cases as MUST.
    #[arg(long)]
    strict: bool,
    /// Accept reply texts worded otherwise than the spec's.
    #[arg(long)]
    accept_wording: bool,
    /// Write everything (per submission, per rule, per case) as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the matrix (submissions x rules) as CSV to FILE.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write the matrix as a Markdown table to FILE.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Write JUnit XML to FILE: one testsuite per submission, named after it.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write one self-contained HTML page to FILE: the matrix, each case on a click,
    /// a page per submission.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Read the examples from this specification instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// Run the examples of FILE instead (e.g. one that `conform explore --out` wrote):
    /// every submission is graded on them.
    #[arg(long, value_name = "FILE", conflicts_with = "spec")]
    examples: Option<PathBuf>,
}

/// A report's text, made only when it is asked for.
type Render<'a> = dyn Fn() -> Result<String, String> + 'a;

/// Runs `progjar-chat conform class`.
pub(crate) fn main(args: ClassArgs) -> ExitCode {
    let flags = Defaults {
        server: args.server.clone(),
        client: args.client.clone(),
        users: args.users.clone(),
        expect: args.expect.clone(),
        timeout: args.timeout.clone(),
    };
    let class = match (&args.manifest, &args.each) {
        (Some(path), _) => manifest::from_manifest(path, &flags),
        (None, Some(pattern)) => manifest::from_each(pattern, &flags),
        (None, None) => return fail("give a manifest, or --each 'FOLDER/*' (see --help)"),
    };
    let class = match class {
        Ok(class) => class,
        Err(error) => return fail(error),
    };
    let reports = [&args.json, &args.csv, &args.markdown, &args.junit, &args.html];
    if let Err(message) = check_report_paths(&reports) {
        return fail(message);
    }
    if reports.iter().filter(|p| p.as_ref().is_some_and(|p| p.as_os_str() == "-")).count() > 1 {
        return fail("only one report can go to standard output (-)");
    }
    let to_stdout = reports.iter().any(|p| p.as_ref().is_some_and(|p| p.as_os_str() == "-"));
    let (mut spec, spec_name) = match load_spec(args.spec.as_deref()) {
        Ok(loaded) => loaded,
        Err(message) => return fail(message),
    };
    // Where the examples come from, as the rerun command must say it.
    let mut source = Vec::new();
    let spec_name = match &args.examples {
        Some(path) => match load_examples(path) {
            Ok(examples) => {
                spec.examples = examples;
                source = vec!["--examples".to_owned(), absolute_quoted(path)];
                path.display().to_string()
            }
            Err(message) => return fail(message),
        },
        None => {
            if let Some(path) = &args.spec {
                source = vec!["--spec".to_owned(), absolute_quoted(path)];
            }
            spec_name
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(format!("cannot start the runtime: {error}")),
    };
    let slots = args.jobs.map_or_else(Slots::for_this_machine, |n| Slots::new(n.into()));
    let shared = Shared {
        ctx: Context::from_spec(&spec),
        spec,
        slots,
        startup: args.startup_timeout,
        budget: args.budget,
        fixed_port: Arc::new(tokio::sync::Mutex::new(())),
    };
    let say = |line: String| {
        if to_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    say(format!(
        "Grading {} submissions against {spec_name}, {} cases at once",
        class.len(),
        shared.slots.count()
    ));
    let started = Instant::now();
    let _groups = process::GroupsGuard;
    let total = class.len();
    let mut graded: Vec<SubmissionRun> = Vec::with_capacity(total);
    let ended = runtime.block_on(interrupt::watch(async {
        // As many submissions at once as cases; each budget counts only
        // the time its submission has a case running, so that none is
        // spent waiting behind the others.
        let mut running = futures_util::stream::iter(class.iter().cloned())
            .map(|s: Submission| grade_submission(s, &shared))
            .buffer_unordered(shared.slots.count());
        while let Some(run) = running.next().await {
            say(format!("[{:>2}/{total}] {} done", graded.len() + 1, run.submission.name));
            graded.push(run);
        }
        Ok(())
    }));
    runtime.shutdown_timeout(Duration::from_millis(200));
    process::kill_all_groups();
    match ended {
        Ended::Finished => {}
        Ended::Stopped(message) => return fail(message),
        Ended::Interrupted((name, number)) => {
            eprintln!(
                "progjar-chat conform: interrupted by {name} after {} of {total} submissions: no report written",
                graded.len()
            );
            return ExitCode::from(128 + number);
        }
        Ended::Crashed(panic) => return fail(format!("the runner failed: {panic}")),
    }
    // The manifest's order.
    graded.sort_by_key(|g| class.iter().position(|s| s.name == g.submission.name));
    let policy = Policy { strict: args.strict, accept_wording: args.accept_wording };
    let matrix = matrix::matrix(&shared.spec, &graded, policy);
    say(String::new());
    for line in matrix::terminal_lines(&matrix) {
        say(line);
    }
    let conforming = matrix.rows.iter().filter(|r| r.conforms).count();
    let code = matrix.exit_code();
    say(format!(
        "\n{conforming} of {total} submissions conform; {:.1} s in all (exit code {code})",
        started.elapsed().as_secs_f64()
    ));
    let context = reports::Context {
        spec: &shared.spec,
        spec_name: &spec_name,
        policy,
        source: &source,
        timeout_default: flags.timeout.as_deref(),
        jobs: shared.slots.count(),
        exit_code: code,
    };
    let writes: [(&Option<PathBuf>, &Render<'_>); 5] = [
        (&args.json, &|| Ok(reports::json(&context, &graded, &matrix))),
        (&args.csv, &|| Ok(tables::csv(&matrix))),
        (&args.markdown, &|| Ok(tables::markdown(&matrix))),
        (&args.junit, &|| Ok(reports::junit(&context, &graded))),
        (&args.html, &|| html::page(&context, &graded, &matrix)),
    ];
    for (path, text) in writes {
        let Some(path) = path else { continue };
        let text = match text() {
            Ok(text) => text,
            Err(error) => return fail(format!("cannot write {}: {error}", path.display())),
        };
        if let Err(error) = write_report(path, &text) {
            return fail(format!("cannot write {}: {error}", path.display()));
        }
    }
    ExitCode::from(code)
}

/// A path as a rerun command gives it: absolute (the command starts with
/// `cd` into the submission's folder), quoted for a shell.
fn absolute_quoted(path: &std::path::Path) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    shell_quote(&path.display().to_string())
}
