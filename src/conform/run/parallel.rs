//! Cases at once: each case starts its own server or client on its own
//! port, so the cases of one run, and the runs of a class, need not wait
//! for each other. [`Slots`] bounds how many run at once (`--jobs`);
//! [`run_all`] runs a list of cases within them and reports each case in
//! the list's order, whatever order they end in, so that the text of a
//! run reads the same as one run case by case.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::conform::outcome::{CaseResult, Progress};
use crate::spec::Example;

/// How many cases may run at once. Clones share the slots: a class gives
/// one set to all its submissions, so `--jobs` bounds the whole class.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    semaphore: Arc<Semaphore>,
    count: usize,
}

impl Slots {
    /// `count` slots (at least one).
    pub(crate) fn new(count: usize) -> Self {
        let count = count.max(1);
        Self { semaphore: Arc::new(Semaphore::new(count)), count }
    }

    /// The default of a class: one per processor. More would start more
    /// programs at once than the processors can start in time, and a slow
    /// start must not become a verdict.
    pub(crate) fn for_this_machine() -> Self {
        Self::new(default_jobs())
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Waits for a free slot; it is given back when the permit is dropped.
    pub(crate) async fn take(&self) -> SemaphorePermit<'_> {
        self.semaphore.acquire().await.expect("the semaphore is never closed")
    }
}

impl Default for Slots {
    fn default() -> Self {
        Self::new(1)
    }
}

/// `conform class --jobs` when not given: the processors.
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `case(i)` for every example within `slots`, all at once or (when
/// they share a server or a port) one after the other, and reports the
/// start and end of each in the examples' order.
pub(super) async fn run_all<'e, F, Fut>(
    examples: &[&'e Example],
    at_once: bool,
    slots: &Slots,
    progress: &mut dyn FnMut(Progress<'_>),
    case: F,
) -> Vec<CaseResult>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = CaseResult>,
{
    let total = examples.len();
    let mut results = Vec::with_capacity(total);
    if total == 0 {
        return results;
    }
    if !at_once {
        for (index, example) in examples.iter().enumerate() {
            progress(Progress::Start { example, index, total });
            let result = {
                let _slot = slots.take().await;
                case(index).await
            };
            progress(Progress::Done { result: &result, index, total });
            results.push(result);
        }
        return results;
    }
    let case = &case;
    let mut running: FuturesUnordered<_> = (0..total)
        .map(|index| async move {
            let _slot = slots.take().await;
            (index, case(index).await)
        })
        .collect();
    let mut ready: BTreeMap<usize, CaseResult> = BTreeMap::new();
    let mut next = 0;
    progress(Progress::Start { example: examples[0], index: 0, total });
    while let Some((index, result)) = running.next().await {
        ready.insert(index, result);
        while let Some(result) = ready.remove(&next) {
            progress(Progress::Done { result: &result, index: next, total });
            results.push(result);
            next += 1;
            if next < total {
                progress(Progress::Start { example: examples[next], index: next, total });
            }
        }
    }
    results
}
