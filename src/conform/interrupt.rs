//! How a run ends when it does not finish: a signal (Ctrl-C, SIGTERM,
//! SIGHUP) or a panic of the runner, and the reports marked incomplete.

use super::export;

/// How the run ended.
pub(super) enum Ended {
    /// Every selected case ran.
    Finished,
    /// Before the first case: the target cannot be tested (exit 2).
    Stopped(String),
    /// SIGINT, SIGTERM or SIGHUP: its name and number.
    Interrupted((&'static str, u8)),
    /// The runner panicked: the message.
    Crashed(String),
}

/// A run that ended before its last case.
pub(super) struct Incomplete {
    /// `SIGINT`, or what failed.
    pub(super) why: String,
    pub(super) signal: Option<&'static str>,
    /// The exit code: 128 + the signal's number, or 2.
    pub(super) code: u8,
}

/// The signals that end a run: SIGINT (Ctrl-C), SIGTERM, SIGHUP.
pub(super) struct Signals {
    #[cfg(unix)]
    pub(super) all: Vec<(tokio::signal::unix::Signal, &'static str, u8)>,
}

impl Signals {
    pub(super) fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                all: vec![
                    (signal(SignalKind::interrupt())?, "SIGINT", 2),
                    (signal(SignalKind::terminate())?, "SIGTERM", 15),
                    (signal(SignalKind::hangup())?, "SIGHUP", 1),
                ],
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next signal: its name and number.
    pub(super) async fn recv(&mut self) -> (&'static str, u8) {
        #[cfg(unix)]
        {
            std::future::poll_fn(|cx| {
                for (signal, name, number) in &mut self.all {
                    if signal.poll_recv(cx).is_ready() {
                        return std::task::Poll::Ready((*name, *number));
                    }
                }
                std::task::Poll::Pending
            })
            .await
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            ("SIGINT", 2)
        }
    }
}

/// Runs a run's work until it ends, a signal comes or it panics: the one
/// place every kind of run (single, class, explore) learns how it ended.
pub(super) async fn watch(work: impl std::future::Future<Output = Result<(), String>>) -> Ended {
    let mut signals = match Signals::new() {
        Ok(signals) => signals,
        Err(error) => return Ended::Stopped(format!("cannot watch for Ctrl-C: {error}")),
    };
    tokio::select! {
        biased;
        signal = signals.recv() => Ended::Interrupted(signal),
        result = CatchUnwind(Box::pin(work)) => match result {
            Ok(Ok(())) => Ended::Finished,
            Ok(Err(message)) => Ended::Stopped(message),
            Err(panic) => Ended::Crashed(panic),
        },
    }
}

/// A future whose panic is its output, as `Err(message)`.
pub(super) struct CatchUnwind<F>(pub(super) std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Ok(output)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(payload) => std::task::Poll::Ready(Err(payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into()))),
        }
    }
}

/// The `--junit` report of a run that did not finish: properties on its
/// test suite say so.
pub(super) fn mark_incomplete(
    xml: &str,
    incomplete: &Incomplete,
    run: usize,
    total: usize,
) -> String {
    let Some(start) = xml.find("  <testsuite ") else { return xml.to_owned() };
    let Some(end) = xml[start..].find('\n').map(|i| start + i + 1) else {
        return xml.to_owned();
    };
    let properties = format!(
        "    <properties>\n      <property name=\"incomplete\" value=\"true\"/>\n      <property name=\"why_incomplete\" value=\"{}\"/>\n      <property name=\"cases_run\" value=\"{run}\"/>\n      <property name=\"cases_selected\" value=\"{total}\"/>\n    </properties>\n",
        export::xml_escape(&incomplete.why)
    );
    format!("{}{properties}{}", &xml[..end], &xml[end..])
}
