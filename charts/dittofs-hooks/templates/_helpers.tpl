{{/* The labels every object of the chart carries (the same as metacontroller/). */}}
{{- define "dittofs-hooks.labels" -}}
app.kubernetes.io/name: dittofs-hooks
app.kubernetes.io/part-of: dittofs
{{- end }}

{{/* The hook pods' selector. */}}
{{- define "dittofs-hooks.selector" -}}
app.kubernetes.io/name: dittofs-hooks
app.kubernetes.io/component: hook-server
{{- end }}

{{/* The Secret holding the webhook token, or nothing. */}}
{{- define "dittofs-hooks.tokenSecret" -}}
{{- if .Values.webhookToken.existingSecret -}}
{{ .Values.webhookToken.existingSecret }}
{{- else if .Values.webhookToken.value -}}
dittofs-hooks-token
{{- end }}
{{- end }}

{{- define "dittofs-hooks.scheme" -}}
{{ ternary "https" "http" .Values.tls.enabled }}
{{- end }}

{{/*
One webhook of a Metacontroller controller: the hook's route through its Service, the token
and the CA when set. Called with (list $ "/sync").
*/}}
{{- define "dittofs-hooks.webhook" -}}
{{- $root := index . 0 -}}
{{- $path := index . 1 -}}
url: {{ include "dittofs-hooks.scheme" $root }}://dittofs-hooks.{{ $root.Release.Namespace }}.svc.{{ $root.Values.clusterDomain }}:8080{{ $path }}
timeout: 10s
{{- with include "dittofs-hooks.tokenSecret" $root }}
authorization:
  secretRef:
    name: {{ . }}
    namespace: {{ $root.Release.Namespace }}
    key: token
{{- end }}
{{- if and $root.Values.tls.enabled $root.Values.tls.caBundle }}
caBundle:
  {{- toYaml $root.Values.tls.caBundle | nindent 2 }}
{{- end }}
{{- end }}
