//! The kinds of objects the operator deals with: config objects (ConfigMap, Secret, CSI
//! SecretProviderClass) and
//! workloads (Deployment, StatefulSet, DaemonSet, CronJob, Job, Argo Rollout).

use std::fmt;

use crate::operator::model::custom_kinds::CustomId;

/// A kind of config object whose changes roll workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigKind {
    ConfigMap,
    Secret,
    /// A CSI SecretProviderClass, changed through its per-pod SecretProviderClassPodStatus.
    SecretProviderClass,
}

impl ConfigKind {
    pub const ALL: [ConfigKind; 3] = [
        ConfigKind::ConfigMap,
        ConfigKind::Secret,
        ConfigKind::SecretProviderClass,
    ];

    /// Position in per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Stakater's `resource_type` metric label: the API resource it watches for this kind.
    pub fn stakater_resource(self) -> &'static str {
        match self {
            ConfigKind::ConfigMap => "configmaps",
            ConfigKind::Secret => "secrets",
            ConfigKind::SecretProviderClass => "secretproviderclasspodstatuses",
        }
    }

    /// The suffix of stakater's env var and the `type` in its annotation JSON.
    pub fn stakater_type(self) -> &'static str {
        match self {
            ConfigKind::ConfigMap => "CONFIGMAP",
            ConfigKind::Secret => "SECRET",
            ConfigKind::SecretProviderClass => "SECRETPROVIDERCLASS",
        }
    }
}

impl ConfigKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigKind::ConfigMap => "ConfigMap",
            ConfigKind::Secret => "Secret",
            ConfigKind::SecretProviderClass => "SecretProviderClass",
        }
    }
}

impl fmt::Display for ConfigKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One config object, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigKey {
    pub kind: ConfigKind,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// A kind of workload that can be rolled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    CronJob,
    Job,
    Rollout,
    /// A kind declared by `--workload-kinds`.
    Custom(CustomId),
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::Job => "Job",
            WorkloadKind::Rollout => "Rollout",
            WorkloadKind::Custom(id) => id.get().kind,
        }
    }

    /// The kind's resource, for a dynamic API: a declared kind's as discovery found it.
    pub fn api_resource(self) -> kube::core::ApiResource {
        use kube::core::{ApiResource, GroupVersionKind};
        if let WorkloadKind::Custom(id) = self {
            return id.get().api_resource();
        }
        let api = self.api_version();
        let (group, version) = api.split_once('/').unwrap_or(("", api));
        ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, self.as_str()))
    }

    /// Where a kind read as a dynamic object keeps its pod template (a JSON pointer).
    pub fn template_pointer(self) -> Option<&'static str> {
        match self {
            WorkloadKind::Rollout => Some("/spec/template"),
            WorkloadKind::Custom(id) => Some(id.get().template),
            _ => None,
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet => {
                "apps/v1"
            }
            WorkloadKind::CronJob | WorkloadKind::Job => "batch/v1",
            WorkloadKind::Rollout => "argoproj.io/v1alpha1",
            WorkloadKind::Custom(id) => id.get().api_version,
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One workload, by kind, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadKey {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for WorkloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// Our field manager in every write (workloads, Events, state, Job records).
pub const FIELD_MANAGER: &str = "kube-reloader";
