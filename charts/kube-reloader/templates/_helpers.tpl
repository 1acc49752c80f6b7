{{/* Names, labels and the operator's arguments. */}}

{{- define "kube-reloader.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kube-reloader.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "kube-reloader.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "kube-reloader.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The namespace of every namespaced object: `namespace`, else the release's. */}}
{{- define "kube-reloader.namespace" -}}
{{- .Values.namespace | default .Release.Namespace }}
{{- end }}

{{/* The name stakater's chart gives a release (no shortening when the release name already
holds the chart name), used as the `app` label so a stakater release's selector, and rules
that select its pods, keep matching. */}}
{{- define "kube-reloader.stakaterFullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (default "reloader" .Values.nameOverride) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The pod selector, as stakater's chart has it: app, release and reloader.matchLabels.
Selectors are immutable, so keeping stakater's lets `helm upgrade` take over a stakater
release of the same name in place (docs/migration.md). As a JSON object. */}}
{{- define "kube-reloader.selector" -}}
{{- $sel := dict "app" (include "kube-reloader.stakaterFullname" .) "release" .Release.Name }}
{{- toJson (merge $sel (.Values.reloader.matchLabels | default dict)) }}
{{- end }}

{{- define "kube-reloader.selectorLabels" -}}
{{- toYaml (fromJson (include "kube-reloader.selector" .)) }}
{{- end }}

{{/* Labels of every object: the recommended ones plus the selector, under the label maps in
`extra` (a list; nil entries are skipped). Given labels win, as in stakater's chart (a
monitor's `release: prometheus` must reach Prometheus), except on the pod template
(`pod: true`), where the selector must stay. As a JSON object. */}}
{{- define "kube-reloader.labelDict" -}}
{{- $ctx := .ctx }}
{{- $selector := fromJson (include "kube-reloader.selector" $ctx) }}
{{- $out := dict
  "app.kubernetes.io/name" (include "kube-reloader.name" $ctx)
  "app.kubernetes.io/instance" $ctx.Release.Name
  "app.kubernetes.io/version" $ctx.Chart.AppVersion
  "app.kubernetes.io/managed-by" $ctx.Release.Service
  "helm.sh/chart" (printf "%s-%s" $ctx.Chart.Name $ctx.Chart.Version | replace "+" "_") }}
{{- $out = merge $out $selector }}
{{- range .extra }}{{ $out = mergeOverwrite $out (. | default dict) }}{{ end }}
{{- if .pod }}{{ $out = mergeOverwrite $out $selector }}{{ end }}
{{- toJson $out }}
{{- end }}

{{/* labels: `include "kube-reloader.labels" .`, or with more label maps:
`include "kube-reloader.labels" (dict "ctx" . "extra" (list $a $b))` (and "pod" true for the
pod template). */}}
{{- define "kube-reloader.labels" -}}
{{- $args := . }}
{{- if not (hasKey . "ctx") }}{{ $args = dict "ctx" . "extra" list }}{{ end }}
{{- toYaml (fromJson (include "kube-reloader.labelDict" $args)) }}
{{- end }}

{{- define "kube-reloader.serviceAccountName" -}}
{{- $sa := .Values.reloader.serviceAccount }}
{{- if $sa.create }}
{{- default (include "kube-reloader.fullname" .) $sa.name }}
{{- else }}
{{- default "default" $sa.name }}
{{- end }}
{{- end }}

{{/* Whether image.* names stakater/Reloader's image, as a copied stakater values file does. */}}
{{- define "kube-reloader.stakaterImage" -}}
{{- $i := .Values.image }}
{{- if or (contains "stakater/reloader" ($i.repository | toString)) (contains "stakater/reloader" ($i.name | toString)) }}true{{ end }}
{{- end }}

{{/* The image: <global.imageRegistry>/<image.name> or image.repository, then @digest or
:tag. Where image.* names stakater's image (a copied stakater values file pins it), the
chart's own image at its appVersion is used instead, and NOTES.txt says so: stakater's
binary would not take kube-reloader's flags. The defaults repeat values.yaml's. */}}
{{- define "kube-reloader.image" -}}
{{- $i := .Values.image }}
{{- $own := not (include "kube-reloader.stakaterImage" .) }}
{{- $repo := ternary $i.repository "ghcr.io/kube-reloader/kube-reloader" $own }}
{{- $name := ternary $i.name "kube-reloader/kube-reloader" $own }}
{{- with .Values.global.imageRegistry }}{{ $repo = printf "%s/%s" (trimSuffix "/" .) $name }}{{ end }}
{{- if and $own $i.digest }}{{ printf "%s@%s" $repo $i.digest }}
{{- else }}{{ printf "%s:%s" $repo ((and $own $i.tag) | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/* global.imagePullSecrets and reloader.deployment.imagePullSecrets, each a name or a
{name: …} object (stakater accepts both), as [{name: …}]. As a JSON array. */}}
{{- define "kube-reloader.pullSecrets" -}}
{{- $out := list }}
{{- range concat (.Values.global.imagePullSecrets | default list) (.Values.reloader.deployment.imagePullSecrets | default list) }}
{{- if kindIs "string" . }}{{ $out = append $out (dict "name" .) }}
{{- else if .name }}{{ $out = append $out (dict "name" .name) }}
{{- end }}
{{- end }}
{{- toJson (uniq $out) }}
{{- end }}

{{/* A list or CSV value as a list of trimmed, non-empty strings. */}}
{{- define "kube-reloader.list" -}}
{{- $out := list }}
{{- $items := . }}
{{- if kindIs "string" . }}{{ $items = splitList "," . }}{{ end }}
{{- range $items }}{{ $s := trim (toString .) }}{{ if $s }}{{ $out = append $out $s }}{{ end }}{{ end }}
{{- toJson $out }}
{{- end }}

{{/* Namespaces watched in namespaced mode: the operator's own namespace plus
reloader.namespaces, de-duplicated and sorted (as stakater's chart). Empty in global mode. */}}
{{- define "kube-reloader.watchedNamespaces" -}}
{{- if .Values.reloader.watchGlobally }}
{{- toJson list }}
{{- else }}
{{- $ns := fromJsonArray (include "kube-reloader.list" .Values.reloader.namespaces) }}
{{- toJson (append $ns (include "kube-reloader.namespace" .) | uniq | sortAlpha) }}
{{- end }}
{{- end }}

{{/* The state shards' names, for RBAC resourceNames. */}}
{{- define "kube-reloader.stateNames" -}}
{{- $out := list }}
{{- range $i := until 64 }}{{ $out = append $out (printf "kube-reloader-state-%02d" $i) }}{{ end }}
{{- toJson $out }}
{{- end }}

{{- /* The Secrets holding Job re-creations in progress (src/operator/apply/job_records.rs). */ -}}
{{- define "kube-reloader.jobRecordNames" -}}
{{- $out := list }}
{{- range $i := until 16 }}{{ $out = append $out (printf "kube-reloader-jobs-%02d" $i) }}{{ end }}
{{- toJson $out }}
{{- end }}

{{- define "kube-reloader.args" -}}
{{- $r := .Values.reloader }}
{{- $args := list }}
{{- $watched := fromJsonArray (include "kube-reloader.watchedNamespaces" .) }}
{{- if $watched }}{{ $args = append $args (printf "--namespaces=%s" (join "," $watched)) }}{{ end }}
{{- if and $r.watchGlobally $r.ignoreNamespaces }}{{ $args = append $args (printf "--namespaces-to-ignore=%s" $r.ignoreNamespaces) }}{{ end }}
{{- if and $r.watchGlobally $r.namespaceSelector }}{{ $args = append $args (printf "--namespace-selector=%s" $r.namespaceSelector) }}{{ end }}
{{- if $r.resourceLabelSelector }}{{ $args = append $args (printf "--resource-label-selector=%s" $r.resourceLabelSelector) }}{{ end }}
{{- if $r.workloadSelector }}{{ $args = append $args (printf "--workload-selector=%s" $r.workloadSelector) }}{{ end }}
{{- if and $r.watchGlobally $r.namespaceOptIn }}{{ $args = append $args "--namespace-opt-in" }}{{ end }}
{{- $ignored := list }}
{{- if $r.ignoreSecrets }}{{ $ignored = append $ignored "secrets" }}{{ end }}
{{- if $r.ignoreConfigMaps }}{{ $ignored = append $ignored "configmaps" }}{{ end }}
{{- if $ignored }}{{ $args = append $args (printf "--resources-to-ignore=%s" (join "," $ignored)) }}{{ end }}
{{- $kinds := list }}
{{- if $r.ignoreJobs }}{{ $kinds = append $kinds "jobs" }}{{ end }}
{{- if $r.ignoreCronJobs }}{{ $kinds = append $kinds "cronjobs" }}{{ end }}
{{- if $kinds }}{{ $args = append $args (printf "--ignored-workload-types=%s" (join "," $kinds)) }}{{ end }}
{{- if ne $r.reloadStrategy "default" }}{{ $args = append $args (printf "--reload-strategy=%s" $r.reloadStrategy) }}{{ end }}
{{- if $r.reloadOnCreate }}{{ $args = append $args "--reload-on-create=true" }}{{ end }}
{{- if $r.reloadOnDelete }}{{ $args = append $args "--reload-on-delete=true" }}{{ end }}
{{- if $r.syncAfterRestart }}{{ $args = append $args "--sync-after-restart=true" }}{{ end }}
{{- if $r.autoReloadAll }}{{ $args = append $args "--auto-reload-all=true" }}{{ end }}
{{- if $r.isArgoRollouts }}{{ $args = append $args "--is-Argo-Rollouts=true" }}{{ end }}
{{- range $r.workloadKinds }}{{ $args = append $args (printf "--workload-kinds=%s/%s:%s" .apiVersion .kind .templatePath) }}{{ end }}
{{- if $r.enableCSIIntegration }}{{ $args = append $args "--enable-csi-integration=true" }}{{ end }}
{{- if $r.enableHA }}
{{- $args = append $args "--enable-ha=true" }}
{{- $le := $r.leaderElection }}
{{- $args = append $args (printf "--leader-election-id=%s" $le.id) }}
{{- $args = append $args (printf "--leader-election-lease-duration=%s" $le.leaseDuration) }}
{{- $args = append $args (printf "--leader-election-renew-deadline=%s" $le.renewDeadline) }}
{{- $args = append $args (printf "--leader-election-retry-period=%s" $le.retryPeriod) }}
{{- end }}
{{- if $r.logFormat }}{{ $args = append $args (printf "--log-format=%s" $r.logFormat) }}{{ end }}
{{- $args = append $args (printf "--log-level=%s" $r.logLevel) }}
{{- /* Only together with custom_annotations, where stakater's chart renders it: a carried-over
values file must not turn reloading off. */}}
{{- if and $r.webhookUrl $r.custom_annotations }}{{ $args = append $args (printf "--webhook-url=%s" $r.webhookUrl) }}{{ end }}
{{- $ann := dict "configmap" "configmap-annotation" "secret" "secret-annotation" "auto" "auto-annotation" "secret_auto" "secret-auto-annotation" "configmap_auto" "configmap-auto-annotation" "search" "auto-search-annotation" "match" "search-match-annotation" "ignore" "ignore-annotation" "pausePeriod" "pause-deployment-annotation" "pauseTime" "pause-deployment-time-annotation" }}
{{- $custom := $r.custom_annotations | default dict }}
{{- range $k, $flag := $ann }}
{{- with index $custom $k }}{{ $args = append $args (printf "--%s=%s" $flag .) }}{{ end }}
{{- end }}
{{- $args = append $args (printf "--coalesce-window=%s" $r.coalesce.window) }}
{{- $args = append $args (printf "--coalesce-max-delay=%s" $r.coalesce.maxDelay) }}
{{- $args = append $args (printf "--reload-rate=%v" $r.rateLimit.rate) }}
{{- $args = append $args (printf "--reload-burst=%v" $r.rateLimit.burst) }}
{{- $args = append $args (printf "--min-reload-interval=%s" $r.rateLimit.minReloadInterval) }}
{{- $args = append $args (printf "--write-concurrency=%v" $r.rateLimit.writeConcurrency) }}
{{- $args = append $args (printf "--live-engine-stall=%s" $r.liveness.engineStall) }}
{{- $args = append $args (printf "--live-watch-broken=%s" $r.liveness.watchBroken) }}
{{- if gt (int $r.waves.maxConcurrent) 0 }}
{{- $args = append $args (printf "--max-concurrent-rollouts=%v" $r.waves.maxConcurrent) }}
{{- $args = append $args (printf "--rollout-timeout=%s" $r.waves.timeout) }}
{{- end }}
{{- if $r.alerts.onReload }}{{ $args = append $args "--alert-on-reload=true" }}{{ end }}
{{- if $r.alerts.sink }}{{ $args = append $args (printf "--alert-sink=%s" $r.alerts.sink) }}{{ end }}
{{- if $r.alerts.additionalInfo }}{{ $args = append $args (printf "--alert-additional-info=%s" $r.alerts.additionalInfo) }}{{ end }}
{{- $args = append $args "--http-addr=:9090" }}
{{- range $r.deployment.extraArgs }}{{ $args = append $args . }}{{ end }}
{{- toJson $args }}
{{- end }}

{{/* Whether the chart makes a Secret for the alert URL and proxy. */}}
{{- define "kube-reloader.alertSecret" -}}
{{- $a := .Values.reloader.alerts }}
{{- if $a.existingSecret }}{{ $a.existingSecret }}
{{- else if or $a.webhookUrl $a.proxy }}{{ printf "%s-alerts" (include "kube-reloader.fullname" .) }}
{{- end }}
{{- end }}

{{/* Used only when reloader.deployment.resources is empty: values given are taken as they
are, with nothing merged in (a request above this limit must stay valid). */}}
{{- define "kube-reloader.defaultResources" -}}
{"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
{{- end }}

{{/* The Secret holding reloader.deployment.env.secret, when it has a value. */}}
{{- define "kube-reloader.envSecret" -}}
{{- $values := list }}
{{- range $k, $v := (.Values.reloader.deployment.env | default dict).secret }}{{ if not (empty $v) }}{{ $values = append $values $k }}{{ end }}{{ end }}
{{- if $values }}{{ printf "%s-env" (include "kube-reloader.fullname" .) }}{{ end }}
{{- end }}

{{/* A ServiceMonitor or PodMonitor (dict ctx, kind, m: its values), rendered only where the
monitoring.coreos.com/v1 API is served, as stakater's chart does. */}}
{{- define "kube-reloader.monitor" -}}
{{- $ := .ctx }}
{{- $m := .m }}
{{- $pod := eq .kind "PodMonitor" }}
{{- if and $m.enabled ($.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}
apiVersion: monitoring.coreos.com/v1
kind: {{ .kind }}
metadata:
  name: {{ include "kube-reloader.fullname" $ }}
  namespace: {{ $m.namespace | default (include "kube-reloader.namespace" $) }}
  labels:
    {{- include "kube-reloader.labels" (dict "ctx" $ "extra" (list $m.labels)) | nindent 4 }}
  {{- with $m.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "kube-reloader.selectorLabels" $ | nindent 6 }}
  namespaceSelector:
    matchNames: [{{ include "kube-reloader.namespace" $ }}]
  {{- with (ternary $m.podTargetLabels $m.targetLabels $pod) }}
  {{ ternary "podTargetLabels" "targetLabels" $pod }}:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{ ternary "podMetricsEndpoints" "endpoints" $pod }}:
  - port: http
    path: /metrics
    {{- with $m.interval }}
    interval: {{ . }}
    {{- end }}
    {{- with $m.timeout }}
    scrapeTimeout: {{ . }}
    {{- end }}
    {{- with $m.scheme }}
    scheme: {{ . }}
    {{- end }}
    {{- if kindIs "bool" $m.honorLabels }}
    honorLabels: {{ $m.honorLabels }}
    {{- end }}
    {{- range $key := list "tlsConfig" "bearerTokenSecret" "metricRelabelings" "relabelings" }}
    {{- with index $m $key }}
    {{ $key }}:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- end }}
    {{- with $m.bearerTokenFile }}
    bearerTokenFile: {{ . }}
    {{- end }}
{{- end }}
{{- end }}
