//! Cases at once: each case starts its own server or client on its own
//! port, so the cases of one run, and the runs of a class, need not wait
//! for each other. [`Slots`] bounds how many run at once (`--jobs`);
//! [`run_all`] runs a list of cases within them and reports each case in
//! the list's order, whatever order they end in, so that the text of a
//! run reads the same as one run case by case.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::conform::outcome::{CaseResult, Progress};
use crate::spec::Example;

/// How many cases may run at once. Clones share the slots: a class gives
/// one set to all its submissions, so `--jobs` bounds the whole class.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    semaphore: Arc<Semaphore>,
    count: usize,
    /// With [`Slots::clocked`]: the time its holders had a slot.
    clock: Option<Clock>,
}

/// How long the holders of some slots had at least one of them: what a
/// part of a class has cost the others, whatever the class made it wait
/// (its `--budget`). Waiting for a slot is not counted, so that a loaded
/// class does not cut a right submission short.
#[derive(Debug, Clone, Default)]
pub(crate) struct Clock(Arc<Mutex<ClockState>>);

#[derive(Debug, Default)]
struct ClockState {
    holders: usize,
    since: Option<Instant>,
    spent: Duration,
}

impl Clock {
    /// The time counted so far.
    pub(crate) fn spent(&self) -> Duration {
        let state = self.lock();
        state.spent + state.since.map_or(Duration::ZERO, |since| since.elapsed())
    }

    /// Ends when `budget` is spent.
    pub(crate) async fn spend(&self, budget: Duration) {
        loop {
            // The clock runs no faster than the wall: sleeping what is
            // left never oversleeps.
            let left = budget.saturating_sub(self.spent());
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left).await;
        }
    }

    fn start(&self) {
        let mut state = self.lock();
        if state.holders == 0 {
            state.since = Some(Instant::now());
        }
        state.holders += 1;
    }

    fn stop(&self) {
        let mut state = self.lock();
        state.holders -= 1;
        if state.holders == 0 {
            if let Some(since) = state.since.take() {
                state.spent += since.elapsed();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A slot, given back when dropped.
pub(crate) struct Slot<'a> {
    _permit: SemaphorePermit<'a>,
    clock: Option<&'a Clock>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(clock) = self.clock {
            clock.stop();
        }
    }
}

impl Slots {
    /// `count` slots (at least one).
    pub(crate) fn new(count: usize) -> Self {
        let count = count.max(1);
        Self { semaphore: Arc::new(Semaphore::new(count)), count, clock: None }
    }

    /// The same slots, and a new clock of the time its holders have one.
    pub(crate) fn clocked(&self) -> (Self, Clock) {
        let clock = Clock::default();
        (Self { clock: Some(clock.clone()), ..self.clone() }, clock)
    }

    /// The default: two per processor. A case spends most of its time
    /// waiting (for its program to start, for a reply), so one per
    /// processor leaves them idle; more than two only queue for them
    /// (measured on 2 processors, a class of 11: 34 s with 2 jobs, 27 s
    /// with 4 and with 8). A slow start is never a verdict: a server gets
    /// `--startup-timeout` to listen, a client to show its first prompt.
    pub(crate) fn for_this_machine() -> Self {
        Self::new(default_jobs())
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Waits for a free slot; it is given back when dropped.
    pub(crate) async fn take(&self) -> Slot<'_> {
        let permit = self.semaphore.acquire().await.expect("the semaphore is never closed");
        if let Some(clock) = &self.clock {
            clock.start();
        }
        Slot { _permit: permit, clock: self.clock.as_ref() }
    }
}

impl Default for Slots {
    fn default() -> Self {
        Self::new(1)
    }
}

/// `--jobs` when not given: twice the processors.
fn default_jobs() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_clock_counts_only_the_time_a_slot_is_held() {
        let slots = Slots::new(1);
        let (mine, clock) = slots.clocked();
        // Another part holds the only slot for 5 s: not counted.
        let other = slots.take().await;
        let waiting = tokio::spawn(async move {
            let _slot = mine.take().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(clock.spent(), Duration::ZERO);
        drop(other);
        waiting.await.unwrap();
        assert_eq!(clock.spent(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn slots_held_at_once_count_once() {
        let slots = Slots::new(2);
        let (mine, clock) = slots.clocked();
        let a = mine.take().await;
        let b = mine.take().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(a);
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(b);
        assert_eq!(clock.spent(), Duration::from_secs(4));
        // Spent up to a budget: at once when it is spent already.
        tokio::time::timeout(Duration::from_millis(1), clock.spend(Duration::from_secs(4)))
            .await
            .expect("spent already");
    }
}
