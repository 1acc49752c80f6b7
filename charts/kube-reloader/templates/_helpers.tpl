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

{{- define "kube-reloader.namespace" -}}
{{- .Release.Namespace }}
{{- end }}

{{- define "kube-reloader.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kube-reloader.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{- define "kube-reloader.labels" -}}
{{ include "kube-reloader.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | quote }}
{{- end }}

{{- define "kube-reloader.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kube-reloader.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* A list or CSV value as a list of trimmed, non-empty strings. */}}
{{- define "kube-reloader.list" -}}
{{- $out := list }}
{{- $items := . }}
{{- if kindIs "string" . }}{{ $items = splitList "," . }}{{ end }}
{{- range $items }}{{ $s := trim (toString .) }}{{ if $s }}{{ $out = append $out $s }}{{ end }}{{ end }}
{{- toJson $out }}
{{- end }}

{{/* Namespaces watched in namespaced mode: the release namespace plus reloader.namespaces,
de-duplicated and sorted (as stakater's chart). Empty in global mode. */}}
{{- define "kube-reloader.watchedNamespaces" -}}
{{- if .Values.reloader.watchGlobally }}
{{- toJson list }}
{{- else }}
{{- $ns := fromJsonArray (include "kube-reloader.list" .Values.reloader.namespaces) }}
{{- toJson (append $ns .Release.Namespace | uniq | sortAlpha) }}
{{- end }}
{{- end }}

{{/* The state shards' names, for RBAC resourceNames. */}}
{{- define "kube-reloader.stateNames" -}}
{{- $out := list }}
{{- range $i := until 64 }}{{ $out = append $out (printf "kube-reloader-state-%02d" $i) }}{{ end }}
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
{{- if $r.webhookUrl }}{{ $args = append $args (printf "--webhook-url=%s" $r.webhookUrl) }}{{ end }}
{{- $ann := dict "configmap" "configmap-annotation" "secret" "secret-annotation" "auto" "auto-annotation" "secret_auto" "secret-auto-annotation" "configmap_auto" "configmap-auto-annotation" "search" "auto-search-annotation" "match" "search-match-annotation" "ignore" "ignore-annotation" "pausePeriod" "pause-deployment-annotation" "pauseTime" "pause-deployment-time-annotation" }}
{{- range $k, $flag := $ann }}
{{- with index $r.custom_annotations $k }}{{ $args = append $args (printf "--%s=%s" $flag .) }}{{ end }}
{{- end }}
{{- $args = append $args (printf "--coalesce-window=%s" $r.coalesce.window) }}
{{- $args = append $args (printf "--coalesce-max-delay=%s" $r.coalesce.maxDelay) }}
{{- $args = append $args (printf "--reload-rate=%v" $r.rateLimit.rate) }}
{{- $args = append $args (printf "--reload-burst=%v" $r.rateLimit.burst) }}
{{- $args = append $args (printf "--min-reload-interval=%s" $r.rateLimit.minReloadInterval) }}
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
