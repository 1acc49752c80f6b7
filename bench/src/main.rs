//! kube-reloader benchmarks on the local control plane (see bench/README.md). Run through
//! `bench/run`, which starts the plane and builds the operator.

mod audit;
mod cluster;
mod operator;
mod report;
mod scenarios;
mod sentinel;

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;
use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::json;

use operator::Subject;
use report::{Percentiles, Report, Results};
use scenarios::{Ctx, Plane, Profile, Sizes, calm, fanout, latency, memory, soak};

#[derive(Parser)]
#[command(about = "Benchmarks reloaders side by side on the local control plane")]
struct Args {
    /// Where results.json, results.md, results.png and operator logs go.
    #[arg(long)]
    out: PathBuf,
    /// Tiny sizes: a smoke test of the benchmark itself.
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Adds S2 at 200,000 configs.
    #[arg(long)]
    full: bool,
    /// Run one scenario only: s1, s2 (with s5), s3 (with its sizes and the ceiling), s4,
    /// ceiling (the ceiling alone), or soak (never part of a whole run).
    #[arg(long)]
    scenario: Option<String>,
    /// The reloader under test.
    #[arg(long)]
    operator: PathBuf,
    /// Whether --operator is kube-reloader (then its own flags are used where needed).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    ours: bool,
    /// A second reloader, measured in the same run on the same plane, started as
    /// stakater/Reloader is: no flags, scoped by KUBERNETES_NAMESPACE.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Where a reloader other than ours serves /metrics (stakater: :9090, always).
    #[arg(long, default_value = "127.0.0.1:9090")]
    operator_metrics: SocketAddr,
    /// The bench's own kubeconfig; the plane's folder beside it holds the operators'
    /// (`operator.kubeconfig`) and the audit log of their requests (`audit.log`).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// Writes in flight at once: kube-reloader's `--write-concurrency` (its default) and
    /// the ceiling's (0: all at once).
    #[arg(long, default_value_t = 16)]
    write_concurrency: usize,
    /// The commit measured, for the results.
    #[arg(long, default_value = "unknown")]
    commit: String,
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

fn subjects(args: &Args) -> Vec<Subject> {
    let name = |p: &PathBuf| {
        p.file_name()
            .map_or("other".into(), |n| n.to_string_lossy().into_owned())
    };
    let mut out = vec![Subject {
        label: if args.ours {
            "kube-reloader".into()
        } else {
            name(&args.operator)
        },
        slug: if args.ours { "ours" } else { "other" },
        binary: args.operator.clone(),
        ours: args.ours,
        metrics: args.operator_metrics,
    }];
    if let Some(other) = &args.compare {
        let mut label = name(other);
        if label == out[0].label {
            label.push_str(" (no flags)");
        }
        out.push(Subject {
            label,
            slug: "cmp",
            binary: other.clone(),
            ours: false,
            metrics: args.operator_metrics,
        });
    }
    out
}

async fn run(args: Args) -> Result<(), String> {
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    let client = client_of(&args.kubeconfig).await?;
    let profile = match (args.quick, args.full) {
        (true, _) => Profile::Quick,
        (_, true) => Profile::Full,
        _ => Profile::Standard,
    };
    let sz = Sizes::of(profile);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let plane_dir = args
        .kubeconfig
        .parent()
        .ok_or("the kubeconfig has no folder")?;
    let operator_kubeconfig = plane_dir.join("operator.kubeconfig");
    let audit_log = plane_dir.join("audit.log");
    for f in [&operator_kubeconfig, &audit_log] {
        if !f.exists() {
            return Err(format!(
                "{} is missing: the plane predates the bench's operator identity; \
                 restart it (hack/cluster down && hack/cluster up)",
                f.display()
            ));
        }
    }
    let plane = Plane {
        client,
        as_operator: client_of(&operator_kubeconfig).await?,
        operator_kubeconfig,
        audit_log,
        out: args.out.clone(),
        run: format!("{}", secs % 1_000_000),
    };
    let subjects = subjects(&args);
    let wants = |s: &str| args.scenario.as_deref().is_none_or(|x| x == s);
    if args.scenario.as_deref() == Some("soak") {
        let ctx = Ctx {
            plane: &plane,
            subject: &subjects[0],
        };
        return run_soak(&ctx, &sz, &args.out).await;
    }
    let mut results: Vec<Results> = subjects
        .iter()
        .map(|s| Results {
            label: s.label.clone(),
            s2_headline: sz.s2_headline,
            ..Default::default()
        })
        .collect();
    let mut ceiling = Vec::new();
    if wants("s1") {
        for (s, r) in subjects.iter().zip(&mut results) {
            eprintln!(
                "==> S1 latency [{}]: {} Deployments of {} pod(s), {} updates",
                s.label, sz.s1_workloads, sz.replicas, sz.s1_updates
            );
            let l = latency::run(&ctx(&plane, s), &sz).await?;
            r.api = Some(l.api);
            r.s1_latency_ms = Some(Percentiles::of(l.ms));
            r.s1_rollout_ms = Some(Percentiles::of(l.rollout_ms));
            r.s1_pods_per_replica = Some(l.pods_per_replica);
        }
    }
    if wants("s2") {
        for &configs in &sz.s2_configs {
            for (s, r) in subjects.iter().zip(&mut results) {
                let idle = configs == sz.s2_headline;
                eprintln!(
                    "==> S2 memory{} [{}]: {configs} configs of {} bytes, {} Deployments",
                    if idle { " and S5 idle" } else { "" },
                    s.label,
                    sz.s2_bytes,
                    configs / 20
                );
                let (point, cpu) = memory::run(&ctx(&plane, s), &sz, configs, idle).await?;
                r.s2.push(point);
                if cpu.is_some() {
                    r.s5_idle_cpu_s_per_min = cpu;
                }
            }
        }
    }
    let concurrency = args.write_concurrency;
    if args.scenario.as_deref() == Some("ceiling") {
        for &n in &sz.s3_growth {
            eprintln!(
                "==> S3 write ceiling: the bench patches {n} Deployments, {concurrency} at once"
            );
            ceiling.push(fanout::ceiling(&plane, n, concurrency).await?);
        }
    }
    if wants("s3") {
        for (s, r) in subjects.iter().zip(&mut results) {
            eprintln!(
                "==> S3 fan-out [{}]: one Secret, {} Deployments of {} pod(s)",
                s.label, sz.s3_workloads, sz.replicas
            );
            let f = fanout::with_pods(&ctx(&plane, s), &sz, concurrency, None).await?;
            r.s3_fanout_s = Some(f.written_s);
            r.s3_rollouts_s = Some(f.rolled_out_s);
            r.s3_pods_per_replica = Some(f.pods_per_replica);
            if s.ours {
                eprintln!(
                    "==> S3 with waves [{}]: the same, --max-concurrent-rollouts={}",
                    s.label, sz.s3_wave
                );
                let waves = Some(sz.s3_wave);
                let w = fanout::with_pods(&ctx(&plane, s), &sz, concurrency, waves).await?;
                eprintln!("    at most {} rolling at once", w.most_rolling);
                r.s3w_rollouts_s = Some(w.rolled_out_s);
                r.s3w_most_rolling = Some(w.most_rolling as f64);
                r.s3w_bound = Some(sz.s3_wave as f64);
            }
        }
        for &n in &sz.s3_growth {
            eprintln!(
                "==> S3 write ceiling: the bench patches {n} Deployments, {concurrency} at once"
            );
            ceiling.push(fanout::ceiling(&plane, n, concurrency).await?);
            for (s, r) in subjects.iter().zip(&mut results) {
                eprintln!("==> S3 at {n} Deployments without pods [{}]", s.label);
                r.s3_growth
                    .push(fanout::writes(&ctx(&plane, s), &sz, concurrency, n).await?);
            }
        }
    }
    if wants("s4") {
        for (s, r) in subjects.iter().zip(&mut results) {
            eprintln!(
                "==> S4 calm [{}]: a 5-change burst, then a Secret every 100 ms",
                s.label
            );
            let c = calm::run(&ctx(&plane, s), &sz).await?;
            r.s4_burst_rollouts = Some(c.burst_rollouts);
            r.s4_flap_rollouts = Some(c.flap_rollouts);
            eprintln!(
                "    flap: {} changes, {} rollouts",
                c.flap_changes, c.flap_rollouts
            );
        }
    }
    let report = Report {
        meta: json!({
            "operators": subjects.iter().map(|s| json!({
                "label": s.label, "binary": s.binary.display().to_string(), "ours": s.ours,
            })).collect::<Vec<_>>(),
            "profile": profile,
            "commit": args.commit,
            "machine": machine(),
            "unix_time": secs,
        }),
        ceiling,
        operators: results,
    };
    write(&report, &args, profile)
}

fn ctx<'a>(plane: &'a Plane, subject: &'a Subject) -> Ctx<'a> {
    Ctx { plane, subject }
}

fn write(report: &Report, args: &Args, profile: Profile) -> Result<(), String> {
    let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(args.out.join("results.json"), json + "\n").map_err(|e| e.to_string())?;
    let md = report::markdown(report);
    std::fs::write(args.out.join("results.md"), &md).map_err(|e| e.to_string())?;
    let names: Vec<&str> = report.operators.iter().map(|r| r.label.as_str()).collect();
    let title = format!(
        "{} ({profile:?} profile, {}, commit {})",
        names.join(" vs "),
        machine(),
        args.commit
    );
    let svg = report::svg(report, &title);
    std::fs::write(args.out.join("results.svg"), &svg).map_err(|e| e.to_string())?;
    if let Err(e) = report::png(&svg, &args.out.join("results.png")) {
        eprintln!("bench: no PNG ({e}); results.svg has the plot");
    }
    println!("{md}");
    println!("results in {}", args.out.display());
    Ok(())
}

async fn run_soak(ctx: &Ctx<'_>, sz: &Sizes, out: &std::path::Path) -> Result<(), String> {
    eprintln!(
        "==> soak [{}]: 10 changes/s across 50 workloads for {:?}",
        ctx.subject.label, sz.soak
    );
    let samples = soak::run(ctx, sz).await?;
    let mut csv = String::from("seconds,rss_mib,fds\n");
    for s in &samples {
        csv.push_str(&format!("{:.1},{:.2},{}\n", s.at_s, s.rss_mib, s.fds));
    }
    std::fs::write(out.join("soak.csv"), csv).map_err(|e| e.to_string())?;
    if let (Some(a), Some(b)) = (samples.first(), samples.last()) {
        println!(
            "soak: RSS {:.1} -> {:.1} MiB, fds {} -> {} over {:.0}s; samples in soak.csv",
            a.rss_mib, b.rss_mib, a.fds, b.fds, b.at_s
        );
    }
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

async fn client_of(kubeconfig: &std::path::Path) -> Result<Client, String> {
    let kc = Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    Client::try_from(config).map_err(|e| e.to_string())
}
