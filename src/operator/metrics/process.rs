//! The standard `process_*` series (what Prometheus' Go and Python clients export), read
//! from `/proc` at each scrape: CPU seconds, resident and virtual memory, open and maximum
//! file descriptors, start time. Where `/proc` is missing (not Linux) nothing is written.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};

#[derive(Debug, Default)]
pub struct ProcessCollector;

/// One reading of this process.
#[derive(Debug, Default, PartialEq)]
struct Reading {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
    max_fds: f64,
}

fn read() -> Option<Reading> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)? as f64;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    parse(&stat, &status, &boot, &limits, ticks, open_fds)
}

/// The fields of `/proc/self/stat` after the command name (which may hold spaces and `)`).
fn parse(
    stat: &str,
    status: &str,
    boot: &str,
    limits: &str,
    ticks: f64,
    open_fds: f64,
) -> Option<Reading> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // proc(5) numbers fields from 1; field 3 (state) is fields[0] here.
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    let kib = |key: &str| {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<f64>()
            .ok()
    };
    let btime = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<f64>()
        .ok()?;
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?;
    Some(Reading {
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        resident_bytes: kib("VmRSS:")? * 1024.0,
        virtual_bytes: kib("VmSize:")? * 1024.0,
        start_time_seconds: btime + field(22)? / ticks,
        open_fds,
        max_fds: max_fds.parse().unwrap_or(-1.0), // "unlimited"
    })
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(r) = read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(r.cpu_seconds);
        let e = encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?;
        cpu.encode(e)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                r.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                r.virtual_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                r.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                r.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                r.max_fds,
            ),
        ] {
            let g = ConstGauge::new(value);
            let e = encoder.encode_descriptor(name, help, None, g.metric_type())?;
            g.encode(e)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_as_proc5_describes_them() {
        let stat = "1234 (kube (re)loader) S 1 1234 1234 0 -1 4194560 2000 0 0 0 250 50 0 0 20 0 8 0 4200 123456789 5000";
        let status = "Name:\tkube-reloader\nVmSize:\t  120564 kB\nVmRSS:\t    8192 kB\n";
        let boot = "cpu  1 2 3\nbtime 1700000000\nprocesses 42\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1048576              1048576              files\n";
        let r = parse(stat, status, boot, limits, 100.0, 12.0).unwrap();
        assert_eq!(
            r,
            Reading {
                cpu_seconds: 3.0,
                resident_bytes: 8192.0 * 1024.0,
                virtual_bytes: 120564.0 * 1024.0,
                start_time_seconds: 1700000042.0,
                open_fds: 12.0,
                max_fds: 1048576.0,
            }
        );
    }

    #[test]
    fn this_process_reads() {
        let r = read().expect("/proc is there on Linux");
        assert!(r.resident_bytes > 0.0 && r.open_fds >= 3.0 && r.start_time_seconds > 1.6e9);
    }
}
