//! kube-reloader benchmarks on the local control plane (see bench/README.md). Run through
//! `bench/run`, which starts the plane and builds the operator.

mod cluster;
mod operator;
mod report;
mod scenarios;

use std::path::PathBuf;

use clap::Parser;
use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::json;

use report::{Percentiles, Results, Rss};
use scenarios::{Ctx, Sizes};

#[derive(Parser)]
#[command(about = "Benchmarks a reloader on the local control plane")]
struct Args {
    /// Where results.json, results.md, results.png and operator logs go.
    #[arg(long)]
    out: PathBuf,
    /// Tiny sizes: a smoke test of the benchmark itself.
    #[arg(long)]
    quick: bool,
    /// Run one scenario only: s1, s2 (with s5), s3, s4, or soak (never part of a full run).
    #[arg(long)]
    scenario: Option<String>,
    /// The reloader under test; it must accept stakater's flags.
    #[arg(long)]
    operator: PathBuf,
    /// Whether the operator is kube-reloader (then its own flags are used where needed).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    ours: bool,
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    let kc = Kubeconfig::read_from(&args.kubeconfig).map_err(|e| e.to_string())?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let client = Client::try_from(config).map_err(|e| e.to_string())?;
    let sz = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let ctx = Ctx {
        client,
        kubeconfig: args.kubeconfig.clone(),
        operator: args.operator.clone(),
        is_ours: args.ours,
        out: args.out.clone(),
        run: format!("{}", secs % 1_000_000),
    };
    let wants = |s: &str| args.scenario.as_deref().is_none_or(|x| x == s);
    if args.scenario.as_deref() == Some("soak") {
        eprintln!(
            "==> soak: 10 changes/s across 50 workloads for {:?}",
            sz.soak
        );
        let samples = scenarios::soak(&ctx, &sz).await?;
        let mut csv = String::from("seconds,rss_mib,fds\n");
        for s in &samples {
            csv.push_str(&format!("{:.1},{:.2},{}\n", s.at_s, s.rss_mib, s.fds));
        }
        std::fs::write(args.out.join("soak.csv"), csv).map_err(|e| e.to_string())?;
        let (first, last) = (samples.first(), samples.last());
        if let (Some(a), Some(b)) = (first, last) {
            println!(
                "soak: RSS {:.1} -> {:.1} MiB, fds {} -> {} over {:.0}s; samples in soak.csv",
                a.rss_mib, b.rss_mib, a.fds, b.fds, b.at_s
            );
        }
        return Ok(());
    }
    let mut r = Results::default();
    if wants("s1") {
        eprintln!(
            "==> S1 latency: {} Deployments of {} pod(s), {} updates",
            sz.s1_workloads, sz.replicas, sz.s1_updates
        );
        let l = scenarios::s1_latency(&ctx, &sz).await?;
        r.api_requests_per_reload = Some(l.api_requests_per_reload);
        r.s1_latency_ms = Some(Percentiles::of(l.ms));
        r.s1_rollout_ms = Some(Percentiles::of(l.rollout_ms));
        r.s1_pods_per_replica = Some(l.pods_per_replica);
    }
    if wants("s2") {
        eprintln!(
            "==> S2 memory and S5 idle: {} ConfigMaps and {} Secrets of {} bytes, {} Deployments",
            sz.s2_configs, sz.s2_configs, sz.s2_bytes, sz.s2_workloads
        );
        let m = scenarios::s2_memory_and_s5_idle(&ctx, &sz).await?;
        r.s2_rss_mib = Some(Rss {
            steady: m.steady_mib,
            peak: m.peak_mib,
        });
        r.s2_ready_s = Some(m.ready_s);
        r.s5_idle_cpu_s = Some(m.idle_cpu_s);
    }
    if wants("s3") {
        eprintln!(
            "==> S3 fan-out: one Secret, {} Deployments of {} pod(s)",
            sz.s3_workloads, sz.replicas
        );
        let f = scenarios::s3_fanout(&ctx, &sz, None).await?;
        r.s3_fanout_s = Some(f.written_s);
        r.s3_rollouts_s = Some(f.rolled_out_s);
        r.s3_pods_per_replica = Some(f.pods_per_replica);
        eprintln!(
            "==> S3 with waves: the same, --max-concurrent-rollouts={}",
            sz.s3_wave
        );
        let w = scenarios::s3_fanout(&ctx, &sz, Some(sz.s3_wave)).await?;
        eprintln!("    at most {} rolling at once", w.most_rolling);
        r.s3w_rollouts_s = Some(w.rolled_out_s);
        r.s3w_most_rolling = Some(w.most_rolling as f64);
        r.s3w_bound = Some(sz.s3_wave as f64);
    }
    if wants("s4") {
        eprintln!("==> S4 calm: a 5-change burst, then a Secret every 100 ms");
        let c = scenarios::s4_calm(&ctx, &sz).await?;
        r.s4_burst_rollouts = Some(c.burst_rollouts);
        r.s4_flap_rollouts = Some(c.flap_rollouts);
        eprintln!(
            "    flap: {} changes, {} rollouts",
            c.flap_changes, c.flap_rollouts
        );
    }
    r.meta = json!({
        "operator": args.operator.display().to_string(),
        "quick": args.quick,
        "machine": machine(),
        "unix_time": secs,
    });
    let json = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
    std::fs::write(args.out.join("results.json"), json + "\n").map_err(|e| e.to_string())?;
    let md = report::markdown(&r);
    std::fs::write(args.out.join("results.md"), &md).map_err(|e| e.to_string())?;
    let title = format!(
        "kube-reloader benchmark{} ({})",
        if args.quick { ", quick sizes" } else { "" },
        machine()
    );
    let svg = report::svg(&r, &title);
    std::fs::write(args.out.join("results.svg"), &svg).map_err(|e| e.to_string())?;
    if let Err(e) = report::png(&svg, &args.out.join("results.png")) {
        eprintln!("bench: no PNG ({e}); results.svg has the plot");
    }
    println!("{md}");
    println!("results in {}", args.out.display());
    Ok(())
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} cores, {model}")
}
