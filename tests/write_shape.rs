//! What one write does to a workload, against the real API server: a write that carries
//! several configs' markers (coalesced) leaves the order of containers and init containers
//! as it was on every write path, and under the annotations strategy it names the config
//! whose change came last, as stakater's last write does.

mod support;

use std::time::Duration;

use k8s_openapi::api::{
    apps::v1::Deployment,
    batch::v1::{CronJob, Job},
    core::v1::{ConfigMap, PodSpec},
};
use kube_reloader::operator::apply::markers::ReloadSource;
use serde_json::{Value, json};
use support::{
    TestNs, WAIT, auto, cm_hash, container_env, deployment, job, start_operator, wait_for,
    wait_job_recreated,
};

/// Long enough that changes 0.3 s apart land in one write.
const WINDOW: &str = "--coalesce-window=2s";

/// Three containers and two init containers, each regular one using its own ConfigMap.
fn three_containers() -> Value {
    let env_from = |n: &str| json!([{ "configMapRef": { "name": n } }]);
    json!({
        "initContainers": [
            { "name": "init-a", "image": "x", "envFrom": env_from("cm-a") },
            { "name": "init-b", "image": "x" }
        ],
        "containers": [
            { "name": "main", "image": "x", "envFrom": env_from("cm-a") },
            { "name": "side", "image": "x", "envFrom": env_from("cm-b") },
            { "name": "worker", "image": "x", "envFrom": env_from("cm-c") }
        ]
    })
}

fn names(spec: &PodSpec) -> (Vec<String>, Vec<String>) {
    let inits = spec.init_containers.iter().flatten();
    (
        spec.containers.iter().map(|c| c.name.clone()).collect(),
        inits.map(|c| c.name.clone()).collect(),
    )
}

fn env(spec: &PodSpec, container: &str, var: &str) -> Option<String> {
    container_env(&spec.containers, container, var)
}

fn expected_order() -> (Vec<String>, Vec<String>) {
    let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect();
    (v(&["main", "side", "worker"]), v(&["init-a", "init-b"]))
}

async fn create_configs(ns: &TestNs) {
    for n in ["cm-a", "cm-b", "cm-c"] {
        ns.create_cm(n, "1").await;
    }
}

/// Changes the ConfigMaps in this order, 0.3 s apart (one coalesced write).
async fn change(ns: &TestNs, configs: &[&str], value: &str) {
    for (i, n) in configs.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        ns.set_cm(n, value).await;
    }
}

async fn template(ns: &TestNs, name: &str) -> PodSpec {
    ns.get::<Deployment>(name).await.spec.template.spec.unwrap()
}

#[tokio::test]
async fn coalesced_env_var_writes_and_removals_keep_the_container_order() {
    let ns = TestNs::new("order").await;
    create_configs(&ns).await;
    let auto = json!({ "reloader.stakater.com/auto": "true" });
    ns.create::<Deployment>(deployment("w", auto, three_containers()))
        .await;
    let _op = start_operator(&ns, &[WINDOW, "--reload-on-delete=true"]).await;

    // Last container first, then the first: a patch listing them in that order would
    // move `main` behind the others.
    change(&ns, &["cm-c", "cm-a"], "2").await;
    let spec = wait_for("both env vars, in one write", WAIT, || async {
        let s = template(&ns, "w").await;
        let a = env(&s, "main", "STAKATER_CM_A_CONFIGMAP");
        let c = env(&s, "worker", "STAKATER_CM_C_CONFIGMAP");
        match (a, c) {
            (Some(_), Some(_)) => Ok(s),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(names(&spec), expected_order());
    assert_eq!(
        env(&spec, "main", "STAKATER_CM_A_CONFIGMAP"),
        Some(cm_hash("2"))
    );

    // All three in reverse order.
    change(&ns, &["cm-c", "cm-b", "cm-a"], "3").await;
    let spec = wait_for("three env vars at the new hash", WAIT, || async {
        let s = template(&ns, "w").await;
        let want = Some(cm_hash("3"));
        let all = env(&s, "main", "STAKATER_CM_A_CONFIGMAP") == want
            && env(&s, "side", "STAKATER_CM_B_CONFIGMAP") == want
            && env(&s, "worker", "STAKATER_CM_C_CONFIGMAP") == want;
        if all { Ok(s) } else { Err("not yet") }
    })
    .await;
    assert_eq!(names(&spec), expected_order());

    // Removals (`$patch: delete` entries) in one write.
    for n in ["cm-c", "cm-a"] {
        ns.api::<ConfigMap>()
            .delete(n, &Default::default())
            .await
            .expect("delete");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let spec = wait_for("both env vars removed", WAIT, || async {
        let s = template(&ns, "w").await;
        let a = env(&s, "main", "STAKATER_CM_A_CONFIGMAP");
        let c = env(&s, "worker", "STAKATER_CM_C_CONFIGMAP");
        match (a, c) {
            (None, None) => Ok(s),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(names(&spec), expected_order());
    assert!(env(&spec, "side", "STAKATER_CM_B_CONFIGMAP").is_some());
}

/// `three_containers` as a Job's pod.
fn three_containers_once() -> Value {
    let mut pod = three_containers();
    pod["restartPolicy"] = json!("Never");
    pod
}

fn cronjob(name: &str, annotations: Value) -> Value {
    support::cronjob(name, annotations, three_containers_once())
}

#[tokio::test]
async fn cronjob_templates_and_jobs_keep_the_container_order() {
    let ns = TestNs::new("order-jobs").await;
    create_configs(&ns).await;
    let mut patch = auto();
    patch["reloader.stakater.com/cronjob-reload-strategy"] = json!("patch");
    ns.create::<CronJob>(cronjob("patched", patch)).await;
    ns.create::<CronJob>(cronjob("runs", auto())).await;
    let job: Job = ns
        .create(job("once", auto(), three_containers_once()))
        .await;
    let _op = start_operator(&ns, &[WINDOW]).await;

    change(&ns, &["cm-c", "cm-a"], "2").await;
    let both = |s: &PodSpec| {
        env(s, "main", "STAKATER_CM_A_CONFIGMAP").is_some()
            && env(s, "worker", "STAKATER_CM_C_CONFIGMAP").is_some()
    };
    let spec = wait_for("the patched jobTemplate", WAIT, || async {
        let c = ns.get::<CronJob>("patched").await;
        let s = c.spec.job_template.spec.unwrap().template.spec.unwrap();
        if both(&s) { Ok(s) } else { Err("not yet") }
    })
    .await;
    assert_eq!(names(&spec), expected_order(), "CronJob jobTemplate patch");

    let made = wait_for("a Job made from the CronJob", WAIT, || async {
        let jobs = ns.list::<Job>().await;
        let from_cron = jobs.into_iter().find(|j| {
            let owners = j.metadata.owner_references.iter().flatten();
            owners.into_iter().any(|o| o.name == "runs")
        });
        from_cron.ok_or("none yet")
    })
    .await;
    let spec = made.spec.unwrap().template.spec.unwrap();
    assert!(both(&spec), "one Job with both markers");
    assert_eq!(names(&spec), expected_order(), "Job made from a CronJob");

    let recreated = wait_job_recreated(&ns, &job).await;
    let spec = recreated.spec.unwrap().template.spec.unwrap();
    assert!(both(&spec), "re-created once with both markers");
    assert_eq!(names(&spec), expected_order(), "re-created Job");
}

fn source(d: &Deployment) -> Option<ReloadSource> {
    let t = d.spec.template.metadata.as_ref()?;
    let v = t
        .annotations
        .as_ref()?
        .get("reloader.stakater.com/last-reloaded-from")?;
    serde_json::from_str(v).ok()
}

#[tokio::test]
async fn the_annotation_names_the_config_changed_last() {
    let ns = TestNs::new("lastsrc").await;
    for n in ["c1", "c2"] {
        ns.create_cm(n, "1").await;
    }
    let env_from =
        json!([{ "configMapRef": { "name": "c1" } }, { "configMapRef": { "name": "c2" } }]);
    let pod = json!({ "containers": [
        { "name": "app", "image": "x", "envFrom": env_from },
        { "name": "side", "image": "x" }
    ]});
    let auto = json!({ "reloader.stakater.com/auto": "true" });
    ns.create::<Deployment>(deployment("w", auto, pod)).await;
    let _op = start_operator(&ns, &[WINDOW, "--reload-strategy=annotations"]).await;

    change(&ns, &["c1"], "2").await;
    wait_for("c1 recorded at 2", WAIT, || async {
        let s = source(&ns.get::<Deployment>("w").await);
        match s {
            Some(s) if s.name == "c1" && s.hash == cm_hash("2") => Ok(()),
            other => Err(other),
        }
    })
    .await;
    // c1 to 3, c2 to 2, c1 back to 2: c1 is the last change, though the annotation
    // already records c1 at that hash.
    let before = ns.get::<Deployment>("w").await.metadata.generation;
    for (n, v) in [("c1", "3"), ("c2", "b2"), ("c1", "2")] {
        change(&ns, &[n], v).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let d = wait_for("a new write", WAIT, || async {
        let d = ns.get::<Deployment>("w").await;
        if d.metadata.generation > before {
            Ok(d)
        } else {
            Err(d.metadata.generation)
        }
    })
    .await;
    // Give a second write (if any) time to land before reading the final annotation.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let d2 = ns.get::<Deployment>("w").await;
    assert_eq!(
        d2.metadata.generation, d.metadata.generation,
        "one coalesced write"
    );
    let s = source(&d2).expect("the annotation");
    assert_eq!((s.name.as_str(), s.hash), ("c1", cm_hash("2")));
    let spec = d2.spec.template.spec.unwrap();
    assert_eq!(names(&spec).0, ["app", "side"]);
}
