{{- define "dockyard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dockyard.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dockyard.labels" -}}
{{ include "dockyard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "dockyard.scheme" -}}
{{- if .Values.tls.existingSecret }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}

{{/* The configuration file: the chart's base, the values' `config` merged over it. */}}
{{- define "dockyard.config" -}}
{{- $base := dict "version" "0.1" "http" (dict "addr" ":5000" "headers" (dict "X-Content-Type-Options" (list "nosniff"))) -}}
{{- if .Values.metrics.enabled -}}
{{- $_ := set $base.http "debug" (dict "addr" (printf ":%v" .Values.metrics.port) "prometheus" (dict "enabled" true "path" "/metrics")) -}}
{{- end -}}
{{- if .Values.tls.existingSecret -}}
{{- $_ := set $base.http "tls" (dict "certificate" "/certs/tls.crt" "key" "/certs/tls.key") -}}
{{- end -}}
{{- if .Values.s3.enabled -}}
{{- $s3 := dict "bucket" .Values.s3.bucket "region" .Values.s3.region -}}
{{- with .Values.s3.regionendpoint }}{{ $_ := set $s3 "regionendpoint" . }}{{ end -}}
{{- with .Values.s3.rootdirectory }}{{ $_ := set $s3 "rootdirectory" . }}{{ end -}}
{{- $_ := set $base "storage" (dict "s3" $s3 "redirect" (dict "disable" (not .Values.s3.redirect))) -}}
{{- else -}}
{{- $_ := set $base "storage" (dict "filesystem" (dict "rootdirectory" "/var/lib/registry")) -}}
{{- end -}}
{{- if .Values.auth.htpasswd.existingSecret -}}
{{- $auth := dict "htpasswd" (dict "path" "/auth/htpasswd" "realm" .Values.ingress.host) -}}
{{- if .Values.auth.tokenServer.enabled -}}
{{- $_ := set $auth "token" (dict "service" (.Values.auth.tokenServer.service | default .Values.ingress.host) "server" (dict "enabled" true "keys" "/var/lib/registry/registry-auth/keys")) -}}
{{- end -}}
{{- $_ := set $base "auth" $auth -}}
{{- end -}}
{{- mustMergeOverwrite $base (deepCopy .Values.config) | toYaml -}}
{{- end -}}
