{{/*
Object names. Truncated to 56 so "<fullname>-master" still fits a 63-character DNS
label (the Service name is the host the workers dial).
*/}}
{{- define "loadwise.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 56 | trimSuffix "-" -}}
{{- end -}}

{{/*
Always "<release>-<name>" (no shortening when the release name already contains the
chart name), so the Job is predictably "<release>-loadwise-master".
*/}}
{{- define "loadwise.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 56 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "loadwise.name" .) | trunc 56 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "loadwise.masterName" -}}
{{- printf "%s-master" (include "loadwise.fullname" .) -}}
{{- end -}}

{{- define "loadwise.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "loadwise.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* `loadwise k8s` finds a release's master by instance + component=master. */}}
{{- define "loadwise.selectorLabels" -}}
app.kubernetes.io/name: {{ include "loadwise.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "loadwise.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}

{{- define "loadwise.scenariosConfigMap" -}}
{{- .Values.scenarios.existingConfigMap | default (printf "%s-scenarios" (include "loadwise.fullname" .)) -}}
{{- end -}}

{{- define "loadwise.workerCount" -}}
{{- $n := .Values.workers.replicas | int -}}
{{- if lt $n 1 -}}
{{- fail (printf "workers.replicas must be at least 1 (got %v): the master waits for that many workers" .Values.workers.replicas) -}}
{{- end -}}
{{- $n -}}
{{- end -}}

{{- define "loadwise.ipv4Pattern" -}}
^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])
{{- end -}}

{{- define "loadwise.ipv4ToInt" -}}
{{- $o := splitList "." . -}}
{{- add (mul (atoi (index $o 0)) 16777216) (mul (atoi (index $o 1)) 65536) (mul (atoi (index $o 2)) 256) (atoi (index $o 3)) -}}
{{- end -}}

{{/*
Whether an IPv4 address lies in an IPv4 CIDR ("true" or ""): two addresses share a
/n network when they agree after dividing by 2^(32-n). Sprig has no CIDR functions.
*/}}
{{- define "loadwise.ipv4InCidr" -}}
{{- $parts := splitList "/" .cidr -}}
{{- $bits := atoi (index $parts 1) -}}
{{- if le $bits 32 -}}
{{- $block := 1 -}}
{{- range until (sub 32 $bits | int) }}{{ $block = mul $block 2 }}{{ end -}}
{{- $ip := include "loadwise.ipv4ToInt" .ip | atoi -}}
{{- $net := include "loadwise.ipv4ToInt" (index $parts 0) | atoi -}}
{{- if eq (div $ip $block) (div $net $block) }}true{{ end -}}
{{- end -}}
{{- end -}}

{{/*
target.host, refused unless its host is in allowedHosts: the same rule loadwise applies
at start (names case-insensitive and never resolved, IPs also by CIDR), except that
loopback is not implied, as it would only load the pod itself.
*/}}
{{- define "loadwise.targetHost" -}}
{{- $url := required "target.host is required (the base URL of the system under test)" .Values.target.host | toString -}}
{{- $parsed := urlParse (contains "://" $url | ternary $url (printf "http://%s" $url)) -}}
{{- $hostname := lower $parsed.hostname -}}
{{- if or (not (has $parsed.scheme (list "http" "https"))) (not $hostname) -}}
{{- fail (printf "target.host %q is not an http(s) URL" $url) -}}
{{- end -}}
{{- $ipv4 := regexMatch (printf "%s$" (include "loadwise.ipv4Pattern" .)) $hostname -}}
{{- $cidr := printf "%s/[0-9]{1,2}$" (include "loadwise.ipv4Pattern" .) -}}
{{- $allowed := false -}}
{{- range .Values.allowedHosts -}}
{{- $entry := lower (toString .) -}}
{{- if eq $entry $hostname -}}
{{- $allowed = true -}}
{{- else if and $ipv4 (regexMatch $cidr $entry) (include "loadwise.ipv4InCidr" (dict "ip" $hostname "cidr" $entry)) -}}
{{- $allowed = true -}}
{{- end -}}
{{- end -}}
{{- if not $allowed -}}
{{- fail (printf "target.host %q: host %q is not in allowedHosts %s; list it there if this load is intended" $url $hostname (toJson (.Values.allowedHosts | default list))) -}}
{{- end -}}
{{- $url -}}
{{- end -}}

{{/* Pod-level settings shared by the master and the workers. */}}
{{- define "loadwise.podCommon" -}}
# Neither the master nor the workers talk to the Kubernetes API.
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{/* Container settings shared by the master and the workers. */}}
{{- define "loadwise.containerCommon" -}}
image: {{ include "loadwise.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
# The root filesystem is read-only: everything that wants a home or a cache dir gets /tmp.
env:
  - name: HOME
    value: /tmp
  - name: MPLCONFIGDIR
    value: /tmp/matplotlib
  - name: PYTHONDONTWRITEBYTECODE
    value: "1"
{{- end -}}

{{- define "loadwise.scenariosVolume" -}}
- name: scenarios
  configMap:
    name: {{ include "loadwise.scenariosConfigMap" . }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end -}}

{{- define "loadwise.scenariosMount" -}}
- name: scenarios
  mountPath: /scenarios
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "loadwise.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
