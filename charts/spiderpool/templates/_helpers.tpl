{{/* Labels shared by every object of the release. */}}
{{- define "spiderpool.labels" -}}
app.kubernetes.io/part-of: spiderpool
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "spiderpool-agent"). */}}
{{- define "spiderpool.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{/* An image reference from an image block: (dict "root" $ "image" .Values.spiderpoolAgent.image). */}}
{{- define "spiderpool.image" -}}
{{- $registry := .root.Values.global.imageRegistryOverride | default .image.registry -}}
{{- $ref := printf "%s/%s" $registry .image.repository -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}
{{- end }}

{{/* The webhook Service's DNS names, for the serving certificate. */}}
{{- define "spiderpool.webhookDnsNames" -}}
{{- $name := .Values.spiderpoolController.name -}}
{{- $ns := .Release.Namespace -}}
{{- list $name (printf "%s.%s" $name $ns) (printf "%s.%s.svc" $name $ns) (printf "%s.%s.svc.cluster.local" $name $ns) | toJson -}}
{{- end }}

{{/* Directory of the socket on the host: the agent mounts the directory, so a restarted agent replaces the socket. */}}
{{- define "spiderpool.socketHostDir" -}}
{{- dir .Values.global.ipamUNIXSocketHostPath -}}
{{- end }}

{{- define "spiderpool.probes" -}}
{{- $checking := .checking -}}
startupProbe:
  httpGet: {path: /v1/runtime/startup, port: {{ .port }}, scheme: HTTP}
  failureThreshold: {{ $checking.startupProbe.failureThreshold }}
  periodSeconds: {{ $checking.startupProbe.periodSeconds }}
livenessProbe:
  httpGet: {path: /v1/runtime/liveness, port: {{ .port }}, scheme: HTTP}
  failureThreshold: {{ $checking.livenessProbe.failureThreshold }}
  periodSeconds: {{ $checking.livenessProbe.periodSeconds }}
readinessProbe:
  httpGet: {path: /v1/runtime/readiness, port: {{ .port }}, scheme: HTTP}
  failureThreshold: {{ $checking.readinessProbe.failureThreshold }}
  periodSeconds: {{ $checking.readinessProbe.periodSeconds }}
{{- end }}

{{/* "true" when the agent works inside pods' network namespaces (IP conflict / gateway detection): it then gets
CAP_SYS_ADMIN (setns), CAP_NET_RAW (raw sockets), CAP_NET_ADMIN (link up) and the host's /var/run/netns. Anything else
that needs the same (the coordinator) adds its condition here. */}}
{{- define "spiderpool.agentEntersPodNetns" -}}
{{- if or .Values.ipam.enableIPConflictDetection .Values.ipam.enableGatewayDetection .Values.coordinator.agentPrivileges -}}true{{- end -}}
{{- end }}

{{/* The agent container's securityContext: the values', plus the capabilities of agentEntersPodNetns. */}}
{{- define "spiderpool.agentSecurityContext" -}}
{{- $context := deepCopy (.Values.spiderpoolAgent.securityContext | default dict) -}}
{{- if include "spiderpool.agentEntersPodNetns" . -}}
{{- $capabilities := deepCopy ($context.capabilities | default dict) -}}
{{- $added := concat ($capabilities.add | default list) (list "NET_ADMIN" "NET_RAW" "SYS_ADMIN") | uniq -}}
{{- $_ := set $capabilities "add" $added -}}
{{- $_ := set $context "capabilities" $capabilities -}}
{{- end -}}
{{- if .Values.coordinator.agentPrivileges -}}
{{- /* The coordinator writes the pod's sysctls (rp_filter, disable_ipv6): the runtime mounts /proc/sys read-only
in any container that is not privileged (upstream's agent is privileged). */ -}}
{{- $_ := set $context "privileged" true -}}
{{- $_ := set $context "allowPrivilegeEscalation" true -}}
{{- end -}}
{{- toYaml $context -}}
{{- end }}
