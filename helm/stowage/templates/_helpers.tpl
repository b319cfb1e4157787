{{- define "stowage.fullname" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "stowage.labels" -}}
app.kubernetes.io/name: stowage-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "stowage.selectorLabels" -}}
app.kubernetes.io/name: stowage-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "stowage.image" -}}
{{- printf "%s:%s" .repository (default $.appVersion .tag) -}}
{{- end -}}
