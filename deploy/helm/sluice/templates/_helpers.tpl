{{/* Names. */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.fullname" -}}
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

{{- define "sluice.serviceAccountName" -}}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "sluice.webhookServiceName" -}}
{{- printf "%s-webhook" (include "sluice.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.certSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "sluice.fullname" .)) .Values.certs.secretName }}
{{- end }}

{{/*
Namespaces the webhook never sees: kube-system, Sluice's own and webhook.excludeNamespaces. The
controller gets the same list (--excluded-namespaces): opted-in Deployments there are reported,
never released.
*/}}
{{- define "sluice.excludedNamespaces" -}}
{{- concat (list "kube-system" .Release.Namespace) .Values.webhook.excludeNamespaces | uniq | toJson }}
{{- end }}

{{/* The user name of the controller's own API writes (the webhook lets them through). */}}
{{- define "sluice.identity" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "sluice.serviceAccountName" .) }}
{{- end }}

{{- define "sluice.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Labels. */}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluice
{{- end }}

{{/*
Checks of values that the schema cannot express; every template includes it once through the
Deployment.
*/}}
{{- define "sluice.validate" -}}
{{- if not (has .Values.controller.defaultRouter .Values.routers) }}
{{- fail (printf "controller.defaultRouter %q must be one of routers %v" .Values.controller.defaultRouter .Values.routers) }}
{{- end }}
{{- range .Values.watchNamespaces }}
{{- if or (eq . "kube-system") (eq . $.Release.Namespace) }}
{{- fail (printf "watchNamespaces: %q is never sent to the webhook (kube-system and Sluice's own namespace are excluded)" .) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The namespaced permissions of the controller, as rules. Rendered into the ClusterRole, or into
a Role in each watched namespace. Router rules only for the routers in .Values.routers.
*/}}
{{- define "sluice.rules" -}}
# Opted-in Deployments (read, patch state and spec.paused) and their canary copies.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch", "update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch", "update"]
# Analysis: MetricTemplates are cached.
- apiGroups: ["sluice.dev"]
  resources: ["metrictemplates"]
  verbs: ["get", "list", "watch"]
# Alerts: an AlertProvider is read (uncached) when an alert is posted.
- apiGroups: ["sluice.dev"]
  resources: ["alertproviders"]
  verbs: ["get"]
{{- if $.secretsHere }}
# A Secret named by a MetricTemplate or an AlertProvider is read when its client is built.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
  {{- with $.Values.secrets.names }}
  resourceNames: {{ toJson . }}
  {{- end }}
{{- end }}
# Traffic: the user's Service is read; `<svc>-stable` and `<svc>-canary` are Sluice's own,
# around every isolated canary (every router's, and a blue/green release's with replicas).
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# The stable ReplicaSet's pod-template-hash pins `<svc>-stable`: listed
# (metadata only) by the steps that pin it, never watched or cached.
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["get", "list"]
{{- $routers := $.Values.routers }}
{{- if or (has "gatewayapi" $routers) (has "linkerd" $routers) }}
# gatewayapi, linkerd: the user's HTTPRoutes/GRPCRoutes, or Sluice's own mesh HTTPRoute.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes", "grpcroutes"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
{{- end }}
{{- if has "istio" $routers }}
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
{{- end }}
{{- if has "nginx" $routers }}
# nginx: the canary Ingress is Sluice's own; the user's is read.
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
{{- end }}
{{- if has "contour" $routers }}
- apiGroups: ["projectcontour.io"]
  resources: ["httpproxies"]
  verbs: ["get", "list", "watch", "update", "patch"]
{{- end }}
{{- if has "linkerd" $routers }}
- apiGroups: ["split.smi-spec.io"]
  resources: ["trafficsplits"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
{{- end }}
{{- if has "appmesh" $routers }}
- apiGroups: ["appmesh.k8s.aws"]
  resources: ["virtualrouters", "virtualnodes"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
{{- end }}
{{- end }}

{{/* The secret rule alone, for the namespaces of secrets.namespaces. */}}
{{- define "sluice.secretRules" -}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
  {{- with .Values.secrets.names }}
  resourceNames: {{ toJson . }}
  {{- end }}
{{- end }}

{{/* sluice-loadtester (loadtester.enabled): its own name and labels, so that no selector of
the controller's (Services, PodDisruptionBudget, anti-affinity) ever matches its pods. */}}
{{- define "sluice.loadtester.fullname" -}}
{{- printf "%s-loadtester" (include "sluice.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.loadtester.gateConfigMap" -}}
{{- default (printf "%s-gates" (include "sluice.loadtester.fullname" .)) .Values.loadtester.gateConfigMap }}
{{- end }}

{{- define "sluice.loadtester.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}-loadtester
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sluice.loadtester.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "sluice.loadtester.selectorLabels" . }}
app.kubernetes.io/component: loadtester
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluice
{{- end }}

{{- define "sluice.loadtester.image" -}}
{{- with .Values.loadtester.image }}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository (default $.Chart.AppVersion .tag) }}
{{- end }}
{{- end }}
{{- end }}
