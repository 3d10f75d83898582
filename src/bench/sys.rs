//! What the report says about the machine and the server's memory, read
//! from `/proc` (Linux). Elsewhere every figure is simply absent.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

/// The machine the run was made on.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// Logical CPUs available to this process.
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub memory_kib: Option<u64>,
    pub kernel: Option<String>,
    /// The 1-minute load average when the bench started and ended: other
    /// work on the machine shows here.
    pub load_average_start: Option<f64>,
    pub load_average_end: Option<f64>,
}

impl Machine {
    pub(crate) fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model: cpuinfo
                .lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, model)| model.trim().to_owned()),
            memory_kib: kib_field(&meminfo, "MemTotal:"),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_owned()),
            load_average_start: load_average(),
            load_average_end: None,
        }
    }

    /// One line for the text report.
    pub(crate) fn summary(&self) -> String {
        let mut line = format!("{} CPUs", self.cpus);
        if let Some(model) = &self.cpu_model {
            line += &format!(" ({model})");
        }
        if let Some(kib) = self.memory_kib {
            line += &format!(", {:.1} GiB", kib as f64 / (1024.0 * 1024.0));
        }
        if let Some(load) = self.load_average_start {
            line += &format!(", load average {load:.2}");
        }
        line
    }
}

/// The 1-minute load average.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// A process's resident memory now and at its peak, in KiB.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` of process `pid`.
pub(crate) fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Memory { rss_kib: kib_field(&status, "VmRSS:")?, peak_kib: kib_field(&status, "VmHWM:")? })
}

/// Resets the peak (`VmHWM`) of process `pid` to its current RSS; false
/// when the kernel does not allow it.
pub(crate) fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// CPU time counters at one moment, to tell how much of the machine other
/// processes took during a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuTimes {
    /// Busy time of all CPUs, in clock ticks.
    all: u64,
    /// This process (the generator, and the baseline when it runs).
    own: u64,
    /// The server under test, when its pid is known.
    server: Option<u64>,
}

/// The kernel's clock tick for these counters (`USER_HZ`), 100 on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

impl CpuTimes {
    pub(crate) fn now(server_pid: Option<u32>) -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        // user nice system idle iowait irq softirq steal (guest is in user).
        let busy = [0, 1, 2, 5, 6, 7].iter().map(|&i| fields.get(i).copied().unwrap_or(0)).sum();
        Some(Self {
            all: busy,
            own: process_ticks("self")?,
            server: match server_pid {
                Some(pid) => Some(process_ticks(&pid.to_string())?),
                None => None,
            },
        })
    }

    /// How many CPUs' worth of time processes other than the generator and
    /// the server used from `start` to `self`, over `seconds`. Unknown when
    /// the server's own time is unknown (and it is not in this process).
    pub(crate) fn others_since(
        &self,
        start: &Self,
        seconds: f64,
        server_in_process: bool,
    ) -> Option<f64> {
        let server = match (self.server, start.server) {
            (Some(end), Some(begin)) => end.saturating_sub(begin),
            _ if server_in_process => 0,
            _ => return None,
        };
        let others = self.all.saturating_sub(start.all) as f64
            - self.own.saturating_sub(start.own) as f64
            - server as f64;
        (seconds > 0.0).then(|| (others / TICKS_PER_SECOND / seconds).max(0.0))
    }
}

/// utime + stime of a process (`self` or a pid), in clock ticks.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it do not.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the whole line are 12 and 13 after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Samples a process's RSS every few milliseconds on its own thread and
/// keeps the largest value, as a check on `VmHWM`.
pub(crate) struct RssSampler {
    stop: Arc<AtomicBool>,
    max_kib: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    pub(crate) fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max_kib = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, max_kib) = (Arc::clone(&stop), Arc::clone(&max_kib));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(now) = memory(pid) {
                        max_kib.fetch_max(now.rss_kib, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        Self { stop, max_kib, thread: Some(thread) }
    }

    /// Stops sampling; the largest RSS seen, in KiB.
    pub(crate) fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.max_kib.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields() {
        assert_eq!(kib_field("VmPeak:\t 10 kB\nVmRSS:\t  2048 kB\n", "VmRSS:"), Some(2048));
        assert_eq!(kib_field("VmRSS: x kB", "VmRSS:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_cpu_times() {
        let start = CpuTimes::now(Some(std::process::id())).unwrap();
        let end = CpuTimes::now(Some(std::process::id())).unwrap();
        assert!(end.all >= start.all && end.own >= start.own);
        assert!(end.others_since(&start, 1.0, false).unwrap() >= 0.0);
        assert!(CpuTimes::now(None).unwrap().others_since(&start, 1.0, false).is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_own_memory() {
        let me = memory(std::process::id()).unwrap();
        assert!(me.rss_kib > 0 && me.peak_kib >= me.rss_kib);
    }
}
