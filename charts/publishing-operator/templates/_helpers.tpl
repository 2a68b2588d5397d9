{{/* Names: the usual Helm conventions (63 characters, the DNS label limit). */}}
{{- define "publishing-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "publishing-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "publishing-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "publishing-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "publishing-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "publishing-operator.labels" -}}
helm.sh/chart: {{ include "publishing-operator.chart" . }}
{{ include "publishing-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: publishing-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "publishing-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "publishing-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "publishing-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Seconds in a Go-style duration ("25s", "1m30s", "250ms"), the grammar of the operator's settings
(operator/publishing_operator/durations.py). Prints a float.
*/}}
{{- define "publishing-operator.durationSeconds" -}}
{{- $units := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 }}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ms|s|m|h)" . -1 }}
{{- $unit := regexFind "(ms|s|m|h)$" . }}
{{- $total = addf $total (mulf (trimSuffix $unit . | float64) (get $units $unit)) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
terminationGracePeriodSeconds: after SIGTERM the operator lets running steps finish for
settings.shutdownGrace, then closes its clients; kopf needs a few more seconds to stop its watchers
(2 s) and cancel what hangs (5 s). Kubernetes must not SIGKILL it before that.
*/}}
{{- define "publishing-operator.terminationGracePeriodSeconds" -}}
{{- $grace := include "publishing-operator.durationSeconds" .Values.settings.shutdownGrace | float64 }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add (ceil $grace | int) 15 }}
{{- else }}
{{- if le (.Values.terminationGracePeriodSeconds | float64) $grace }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be longer than settings.shutdownGrace (%s): Kubernetes would kill the operator while steps finish" .Values.terminationGracePeriodSeconds .Values.settings.shutdownGrace) }}
{{- end }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* Checks across values that values.schema.json cannot express. */}}
{{- define "publishing-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.settings.leaderElection) }}
{{- fail "replicaCount > 1 needs settings.leaderElection: without it every replica acts (no build is ever started twice, but the start-rate limit is per replica)" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled .Values.metrics.podMonitor.enabled }}
{{- fail "enable metrics.serviceMonitor or metrics.podMonitor, not both: Prometheus would scrape the operator twice" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor needs metrics.service.enabled" }}
{{- end }}
{{- if and (or .Values.metrics.serviceMonitor.enabled .Values.metrics.podMonitor.enabled) (eq (int .Values.settings.metricsPort) 0) }}
{{- fail "a ServiceMonitor or PodMonitor needs metrics: settings.metricsPort is 0" }}
{{- end }}
{{- end }}

{{/* The namespaces the operator serves, comma-separated (PUBLISHING_NAMESPACES; empty: all). */}}
{{- define "publishing-operator.namespaces" -}}
{{- join "," .Values.watchNamespaces }}
{{- end }}
