{{- define "fleetgate-hub.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fleetgate-hub.labels" -}}
app.kubernetes.io/part-of: fleetgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: call with (list $ "hub"|"envoy"|"ai-gateway"). */}}
{{- define "fleetgate-hub.selector" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: fleetgate-{{ index . 1 }}
app.kubernetes.io/instance: {{ $.Release.Name }}
{{- end -}}

{{/* The hub's ports inside its pod. */}}
{{- define "fleetgate-hub.agentPort" -}}9443{{- end -}}
{{- define "fleetgate-hub.dataPlanePort" -}}18000{{- end -}}
{{- define "fleetgate-hub.adminPort" -}}9090{{- end -}}
