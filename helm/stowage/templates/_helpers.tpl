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

{{- /* The router's own labels: never the operator's selector labels, so neither selects the other's pods. */}}
{{- define "stowage.routerSelectorLabels" -}}
app.kubernetes.io/name: stowage-router
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "stowage.routerLabels" -}}
{{ include "stowage.routerSelectorLabels" . }}
app.kubernetes.io/component: router
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "stowage.image" -}}
{{- /* toString: a tag given as `--set x.tag=9` arrives as a number */ -}}
{{- printf "%s:%s" .repository (toString (default $.appVersion .tag)) -}}
{{- end -}}

{{- /* The writes where LlmDeployments run: host and probe pods, Services, the admin token and TLS Secrets, events.
       A Role per managed namespace, or one ClusterRole when managedNamespaces is empty (every namespace). */}}
{{- define "stowage.workloadRules" -}}
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods/status"]
  verbs: ["get"]
# A CPU host whose planned memory grows is resized in place (Kubernetes 1.33+), not replaced.
- apiGroups: [""]
  resources: ["pods/resize"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# The hosts' admin token and TLS certificate: read by name only; the certificate is renewed in place. create
# cannot be limited by resourceNames (the name is not known when the request is authorized), so it is a rule of
# its own.
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: ["stowage-admin-token"{{ if .Values.adminTls.enabled }}, "stowage-host-tls"{{ end }}]
  verbs: ["get", "delete"]   # deleted when the namespace's last LlmDeployment goes
{{- if .Values.adminTls.enabled }}
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: ["stowage-host-tls"]
  verbs: ["update"]
{{- end }}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if .Values.hostPods.disruptionBudget.enabled }}
# One PodDisruptionBudget of the host pods per namespace (stowage-hosts), deleted with the last LlmDeployment there.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  resourceNames: ["stowage-hosts"]
  verbs: ["get", "update", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["create"]
{{- end }}
{{- end -}}

{{/* The ConfigMap of the router's routes: from router.manifests, or written by the operator from the LlmRoutes. */}}
{{- define "stowage.routerRoutes" -}}
{{- printf "%s-router-routes" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end }}
