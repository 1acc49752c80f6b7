//! Test support: one real control plane per test run, a fresh namespace per test, the
//! operator in process or as the real binary, and waits with clear failure messages. The
//! modules, and what tests use of them:
//!
//! | module | for |
//! |---|---|
//! | `plane` | the shared plane, planes of a test's own, clients, kubectl and helm |
//! | `ns` | `TestNs` and the objects tests create in it |
//! | `markers` | env-var names, hashes and markers a reload leaves, read back |
//! | `wait` | `wait_for`, `until` and the waits tests share |
//! | `operator` | the operator in the test process |
//! | `binary` | the built binary as a child process (operator or in-pod) |
//! | `http` | a bare GET, `/metrics` samples, a local HTTP receiver |
//! | `proxy` | a TCP proxy in front of the API server that a test cuts |
//! | `refusal` | an admission policy refusing one kind of request |
//! | `chart` | the Helm chart tests' helpers |
//! | `pods` | workloads with pods, rollouts, pod events |
#![allow(dead_code, unused_imports)] // each test binary uses its own subset of these helpers

pub mod binary;
pub mod chart;
pub mod http;
pub mod markers;
pub mod ns;
pub mod operator;
pub mod plane;
pub mod pods;
pub mod proxy;
pub mod refusal;
pub mod wait;

pub use self::http::{
    Receiver, Request, Requests, first_request, free_addr, http_get, read_request, sample,
};
pub use binary::Binary;
pub use markers::{
    annotation, cm_hash, container_env, env_of, generation, has_env, job_env, marker_var,
    recorded_hash, rollouts, secret_hash,
};
pub use ns::{
    TestNs, app_deployment, app_pod, auto, auto_deployment, auto_using, change_config,
    change_job_secret, configmap, configmap_refs, create_config, create_job_with_secret, cronjob,
    deployment, deployment_generation, env_from, job, setup_auto_pair, state_shards, task_pod,
    unique, warnings,
};
pub use operator::{Operator, start_global_operator, start_operator, start_operator_as};
pub use plane::{
    OwnPlane, admin_client, api_server_host, apply_as_gitops, bin_dir, client_for, control_plane,
    helm, kubectl, repo_root, service_account_kubeconfig, try_tool,
};
pub use proxy::CutProxy;
pub use refusal::Refusal;
pub use wait::{
    SETTLE, WAIT, until, wait_env_value, wait_for, wait_job_recreated, wait_lease_holder,
    wait_marker, wait_no_marker, wait_warnings,
};
