//! A workload's status → where its rollout stands, as `kubectl rollout status` reads it.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};

use super::RolloutState;

fn generation(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> i64 {
    meta.generation.unwrap_or(0)
}

pub fn deployment(d: &Deployment) -> RolloutState {
    let generation = generation(&d.metadata);
    let Some(s) = &d.status else {
        return RolloutState {
            generation,
            tracked: true,
            ..Default::default()
        };
    };
    let observed = s.observed_generation.unwrap_or(0) >= generation;
    let want = d.spec.replicas.unwrap_or(1);
    let updated = s.updated_replicas.unwrap_or(0);
    let complete = observed
        && updated >= want
        && s.replicas.unwrap_or(0) <= updated
        && s.available_replicas.unwrap_or(0) >= updated;
    let failed = s.conditions.iter().flatten().find(|c| {
        c.type_.as_deref() == Some("Progressing")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    RolloutState {
        generation,
        tracked: true,
        complete,
        failed: failed.filter(|_| observed).map(|c| {
            c.message
                .clone()
                .unwrap_or_else(|| "ProgressDeadlineExceeded".into())
        }),
    }
}

pub fn statefulset(s: &StatefulSet) -> RolloutState {
    let generation = generation(&s.metadata);
    let on_delete = s
        .spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
        == Some("OnDelete");
    let Some(st) = &s.status else {
        return RolloutState {
            generation,
            tracked: !on_delete,
            ..Default::default()
        };
    };
    let want = s.spec.replicas.unwrap_or(1);
    let complete = st.observed_generation.unwrap_or(0) >= generation
        && st.ready_replicas.unwrap_or(0) >= want
        && st.updated_replicas.unwrap_or(0) >= want
        && st.update_revision.is_some()
        && st.update_revision == st.current_revision;
    RolloutState {
        generation,
        tracked: !on_delete,
        complete,
        failed: None,
    }
}

pub fn daemonset(d: &DaemonSet) -> RolloutState {
    let generation = generation(&d.metadata);
    let on_delete = d
        .spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
        == Some("OnDelete");
    let Some(st) = &d.status else {
        return RolloutState {
            generation,
            tracked: !on_delete,
            ..Default::default()
        };
    };
    let want = st.desired_number_scheduled;
    let complete = st.observed_generation.unwrap_or(0) >= generation
        && st.updated_number_scheduled.unwrap_or(0) >= want
        && st.number_available.unwrap_or(0) >= want;
    RolloutState {
        generation,
        tracked: !on_delete,
        complete,
        failed: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "d", "generation": 3},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn a_deployment_is_complete_when_every_replica_is_updated_and_available() {
        let done = dep(
            json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert!(deployment(&done).complete);
        let unseen = dep(
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert!(
            !deployment(&unseen).complete,
            "the controller has not seen generation 3"
        );
        let old_left = dep(
            json!({"observedGeneration": 3, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 3}),
        );
        assert!(!deployment(&old_left).complete, "an old replica still runs");
        let unavailable = dep(
            json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}),
        );
        assert!(!deployment(&unavailable).complete);
    }

    #[test]
    fn a_progress_deadline_is_a_failure_once_the_generation_is_seen() {
        let cond = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "took too long"}]);
        let failed = dep(
            json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 1, "conditions": cond}),
        );
        assert_eq!(deployment(&failed).failed.as_deref(), Some("took too long"));
        let stale = dep(json!({"observedGeneration": 2, "conditions": cond}));
        assert_eq!(
            deployment(&stale).failed,
            None,
            "the condition is about an older generation"
        );
    }

    #[test]
    fn statefulsets_and_daemonsets_follow_their_revisions_and_counts() {
        let s: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "s", "generation": 2},
            "spec": {"replicas": 1, "selector": {}, "serviceName": "s", "template": {}},
            "status": {"observedGeneration": 2, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1,
                       "currentRevision": "s-2", "updateRevision": "s-2"}
        }))
        .unwrap();
        assert!(statefulset(&s).complete && statefulset(&s).tracked);
        let d: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "d", "generation": 2},
            "spec": {"selector": {}, "template": {}, "updateStrategy": {"type": "OnDelete"}},
            "status": {"observedGeneration": 2, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
                       "numberMisscheduled": 0, "numberReady": 3, "updatedNumberScheduled": 1, "numberAvailable": 3}
        }))
        .unwrap();
        assert!(!daemonset(&d).tracked, "OnDelete never rolls by itself");
        assert!(!daemonset(&d).complete);
    }
}
