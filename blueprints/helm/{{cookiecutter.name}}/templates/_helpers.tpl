{{/*
Helpers in `helm create`'s shape. nself writes the chart name in place of <CHARTNAME>.
Objects keep the compose service names (apps reach each other by them); the release
is carried in the labels, one release per namespace.
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "<CHARTNAME>.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* A release-qualified name, or fullnameOverride (63 characters at most). */}}
{{- define "<CHARTNAME>.fullname" -}}
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

{{/* Chart name and version for the helm.sh/chart label. */}}
{{- define "<CHARTNAME>.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object: (dict "root" $ "service" "<service name or empty>"). */}}
{{- define "<CHARTNAME>.labels" -}}
helm.sh/chart: {{ include "<CHARTNAME>.chart" .root }}
{{ include "<CHARTNAME>.selectorLabels" . }}
app.kubernetes.io/part-of: {{ include "<CHARTNAME>.name" .root }}
{{- with .root.Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/* Selector labels: (dict "root" $ "service" "<service name or empty>"). */}}
{{- define "<CHARTNAME>.selectorLabels" -}}
{{- with .service }}
app.kubernetes.io/name: {{ . }}
{{- end }}
app.kubernetes.io/instance: {{ .root.Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A secret value: (list $ "<secret name>" "<key>"). The values come from .Values.secretValues,
which `nself helm.install`/`upgrade`/`template` fill from the env files at render time (on
stdin, never in a file). A missing key fails the render naming the secret: an empty value
is allowed (required would refuse it), an absent one is not.
*/}}
{{- define "<CHARTNAME>.secretValue" -}}
{{- $all := (index . 0).Values.secretValues | default dict }}
{{- $secret := index $all (index . 1) | default dict }}
{{- if not (hasKey $secret (index . 2)) }}
{{- fail (printf "secret %s of %s is missing: install with nself helm.install (it reads the env files)" (index . 2) (index . 1)) }}
{{- end }}
{{- index $secret (index . 2) | toString | quote }}
{{- end }}
