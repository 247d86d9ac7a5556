{{/* The name of every object: <release>-ipsync, or the release name when it already says ipsync. */}}
{{- define "ipsync.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels. app.kubernetes.io/name is the ServiceMonitor's jobLabel: job="ipsync", as the alerts expect. */}}
{{- define "ipsync.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ipsync.labels" -}}
{{ include "ipsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ipsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ipsync.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Where the configuration comes from: "secret", "configmap" or "" (endpoint and targetGroupArn). */}}
{{- define "ipsync.configSource" -}}
{{- if and .Values.existingSecret .Values.config -}}
{{- fail "set config or existingSecret, not both" -}}
{{- else if .Values.existingSecret -}}
secret
{{- else if .Values.config -}}
configmap
{{- end -}}
{{- end -}}
