{{/* The name of every object of the release. */}}
{{- define "fleetgate-agent.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fleetgate-agent.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "fleetgate-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "fleetgate-agent.caConfigMap" -}}
{{- .Values.hub.existingCaConfigMap | default (printf "%s-hub-ca" (include "fleetgate-agent.fullname" .)) -}}
{{- end -}}

{{- define "fleetgate-agent.tokenSecret" -}}
{{- .Values.existingBootstrapTokenSecret | default (printf "%s-bootstrap-token" (include "fleetgate-agent.fullname" .)) -}}
{{- end -}}

{{/* The --secrets flag the RBAC below grants. */}}
{{- define "fleetgate-agent.secretsFlag" -}}
{{- if eq .Values.secrets.mode "namespaces" -}}
namespaces={{ join "," .Values.secrets.namespaces }}
{{- else -}}
{{ .Values.secrets.mode }}
{{- end -}}
{{- end -}}

{{/* The subjects every binding names: the agent's ServiceAccount. */}}
{{- define "fleetgate-agent.subjects" -}}
- kind: ServiceAccount
  name: {{ .Values.serviceAccount.name }}
  namespace: {{ .Release.Namespace }}
{{- end -}}
