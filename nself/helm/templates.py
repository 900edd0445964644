"""Converted objects → Helm templates.

Each object is dumped as YAML with sentinels where values belong; the sentinels
are then replaced by template expressions (`{{ $svc.image.repository }}`,
`{{- with $svc.resources }}` blocks, label includes). Literal text that happens
to contain `{{` is escaped so Helm passes it through unchanged.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Callable

from nself.helm.values import PROBES, WORKLOADS, main_container, pod_spec
from nself.k8s.convert import CONFIG_CHECKSUM
from nself.k8s.yamlout import dump

_SENTINEL = re.compile(r"^(?P<indent>\s*)(?P<dash>- )?(?P<key>[^\s:][^:]*): __H(?P<n>\d+)__$")
_KEY_SENTINEL = re.compile(r"^(?P<indent>\s*)__K(?P<n>\d+)__: .*$")


class Template:
    """One template file in the making."""

    def __init__(self, chart: str, service: str | None):
        self.chart = chart
        self.service = service
        self._values: list[str] = []            # __H<n>__: replacement builders
        self._builders: list[Callable[[str, str], str]] = []
        self._keys: list[Callable[[str], str]] = []

    def scalar(self, expression: str) -> str:
        """`key: {{ expression }}`."""
        return self.text(f"{{{{ {expression} }}}}")

    def text(self, value: str) -> str:
        """`key: <value>`, the value written as given (a template string)."""
        return self._add(lambda indent, key: f"{indent}{key}: {value}")

    def block(self, value: str) -> str:
        """`key: <toYaml value>` when the value is not empty, nothing otherwise."""
        def build(indent: str, key: str) -> str:
            inner = len(indent) + 2
            return (f"{indent}{{{{- with {value} }}}}\n{indent}{key}:\n"
                    f"{indent}  {{{{- toYaml . | nindent {inner} }}}}\n{indent}{{{{- end }}}}")
        return self._add(build)

    def mapping(self, value: str) -> str:
        """`key:` + one quoted entry per map item (ConfigMap data)."""
        def build(indent: str, key: str) -> str:
            return (f"{indent}{key}:\n{indent}  {{{{- range $k, $v := {value} }}}}\n"
                    f"{indent}  {{{{ $k }}}}: {{{{ $v | quote }}}}\n{indent}  {{{{- end }}}}")
        return self._add(build)

    def raw(self, builder: Callable[[str, str], str]) -> str:
        """`key: …` replaced by whatever `builder(indent, key)` returns."""
        return self._add(builder)

    def labels(self, service: str | None, selector: bool = False) -> str:
        helper = "selectorLabels" if selector else "labels"
        name = f'"{service}"' if service else '""'
        return self._key(lambda indent: f'{indent}{{{{- include "{self.chart}.{helper}" '
                                         f'(dict "root" $ "service" {name}) | nindent {len(indent)} }}}}')

    def _add(self, builder: Callable[[str, str], str]) -> str:
        self._builders.append(builder)
        return f"__H{len(self._builders) - 1}__"

    def _key(self, builder: Callable[[str], str]) -> str:
        self._keys.append(builder)
        return f"__K{len(self._keys) - 1}__"

    def render(self, obj: dict, header: str = "", footer: str = "") -> str:
        text = dump(obj).replace("{{", '{{ "{{" }}')  # literal braces pass through Helm
        lines = []
        for line in text.splitlines():
            match = _SENTINEL.match(line)
            if match:
                indent = match.group("indent") + ("  " if match.group("dash") else "")
                built = self._builders[int(match.group("n"))](indent, match.group("key"))
                if match.group("dash"):
                    raise ValueError("a sentinel may not start a list item")
                lines.append(built)
                continue
            match = _KEY_SENTINEL.match(line)
            if match:
                lines.append(self._keys[int(match.group("n"))](match.group("indent")))
                continue
            lines.append(line)
        return header + "\n".join(lines) + "\n" + footer


def _meta(t: Template, obj: dict, service: str | None) -> dict:
    """metadata with the helper labels plus the object's own extra labels."""
    meta = dict(obj["metadata"])
    extra = {k: v for k, v in meta.get("labels", {}).items()
             if not k.startswith("app.kubernetes.io/")}
    component = meta.get("labels", {}).get("app.kubernetes.io/component")
    if component:
        extra = {"app.kubernetes.io/component": component, **extra}
    meta = {"name": meta["name"], "namespace": t.scalar(".Release.Namespace"),
            "labels": {t.labels(service): "", **extra},
            **{k: v for k, v in meta.items() if k not in ("name", "labels")}}
    return meta


def _pod_labels(t: Template, template: dict, service: str) -> None:
    labels = template["metadata"]["labels"]
    extra = {k: v for k, v in labels.items() if not k.startswith("app.kubernetes.io/")}
    if "app.kubernetes.io/component" in labels:
        extra = {"app.kubernetes.io/component": labels["app.kubernetes.io/component"], **extra}
    template["metadata"]["labels"] = {t.labels(service): "", **extra}


def workload_template(chart: str, service: str, workload: dict) -> str:
    t = Template(chart, service)
    obj = copy.deepcopy(workload)
    obj["metadata"] = _meta(t, obj, service)
    spec = obj["spec"]
    if "selector" in spec:
        spec["selector"] = {"matchLabels": {t.labels(service, selector=True): ""}}
    if "replicas" in spec:
        spec["replicas"] = t.scalar("$svc.replicas")
    template = spec["jobTemplate"]["spec"]["template"] if obj["kind"] == "CronJob" else spec["template"]
    _pod_labels(t, template, service)
    annotations = template["metadata"].get("annotations", {})
    if CONFIG_CHECKSUM in annotations:   # the rendered ConfigMaps' hash: values changes roll pods
        annotations[CONFIG_CHECKSUM] = t.scalar(
            f'include (print $.Template.BasePath "/{service}/configmap.yaml") $ | sha256sum')
    pod = pod_spec(obj)
    for key in ("nodeSelector", "tolerations", "affinity"):
        pod[key] = t.block(f"$svc.{key}")
    pod["securityContext"] = t.block("$svc.podSecurityContext")
    container = main_container(pod, service)
    container["image"] = t.text('"{{ $svc.image.repository }}{{ with $svc.image.tag }}:{{ . }}{{ end }}'
                                  '{{ with $svc.image.digest }}@{{ . }}{{ end }}"')
    rest = {k: v for k, v in container.items() if k not in ("name", "image", "imagePullPolicy",
                                                             "resources", "securityContext", *PROBES)}
    ordered = {"name": container["name"], "image": container["image"],
               "imagePullPolicy": t.block("$svc.image.pullPolicy"), **rest,
               "resources": t.block("$svc.resources")}
    for probe in PROBES:
        ordered[probe] = t.block(f"$svc.probes.{probe}")
    ordered["securityContext"] = t.block("$svc.securityContext")
    pod["containers"] = [ordered if c is container else c for c in pod["containers"]]
    for claim in spec.get("volumeClaimTemplates", []):
        name = claim["metadata"]["name"]
        _claim_spec(t, claim["spec"], f'(index $svc.persistence "{name}")')
    return t.render(obj)


def _claim_spec(t: Template, spec: dict, ref: str) -> None:
    spec["accessModes"] = t.block(f"{ref}.accessModes")
    spec["resources"] = {"requests": {"storage": t.scalar(f"{ref}.size | quote")}}
    spec["storageClassName"] = t.block(f"{ref}.storageClass")


def svc_header(service: str) -> str:
    """The first line of every file of a service's templates."""
    return f'{{{{- $svc := index .Values.services "{service}" }}}}\n'


_PORTS = ("{indent}{key}:\n{indent}{{{{- range $svc.service.ports }}}}\n{indent}- name: {{{{ .name }}}}\n"
          "{indent}  port: {{{{ .port }}}}\n{indent}  targetPort: {{{{ .port }}}}\n"
          "{indent}  protocol: {{{{ .protocol }}}}\n{indent}{{{{- end }}}}")


def service_template(chart: str, service: str, obj: dict) -> str:
    t = Template(chart, service)
    obj = copy.deepcopy(obj)
    obj["metadata"] = _meta(t, obj, service)
    spec = obj["spec"]
    spec["type"] = t.block("$svc.service.type")
    spec["selector"] = {t.labels(service, selector=True): ""}
    spec["ports"] = t.raw(lambda indent, key: _PORTS.format(indent=indent, key=key))
    return t.render(obj)


def configmap_env_template(chart: str, service: str, obj: dict) -> str:
    t = Template(chart, service)
    obj = copy.deepcopy(obj)
    obj["metadata"] = _meta(t, obj, service)
    obj["data"] = t.mapping("$svc.env")
    return t.render(obj)


def pvc_template(chart: str, service: str, obj: dict) -> str:
    t = Template(chart, service)
    obj = copy.deepcopy(obj)
    ref = f'(index $svc.persistence "{obj["metadata"]["name"]}")'
    obj["metadata"] = _meta(t, obj, service)
    _claim_spec(t, obj["spec"], ref)
    return t.render(obj, header=f"{{{{- if {ref}.enabled }}}}\n", footer="{{- end }}\n")


def ingress_template(chart: str, service: str, obj: dict) -> str:
    backend = obj["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    port = backend["service"]["port"]["number"]
    return ("{{- if $svc.ingress.enabled }}\n"
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n"
            f"  name: {service}\n  namespace: {{{{ .Release.Namespace }}}}\n  labels:\n"
            f'    {{{{- include "{chart}.labels" (dict "root" $ "service" "{service}") | nindent 4 }}}}\n'
            "  {{- with $svc.ingress.annotations }}\n  annotations:\n    {{- toYaml . | nindent 4 }}\n"
            "  {{- end }}\nspec:\n  {{- with $svc.ingress.className }}\n  ingressClassName: {{ . }}\n"
            "  {{- end }}\n  rules:\n  {{- range $svc.ingress.hosts }}\n  - {{- with .host }}\n"
            "    host: {{ . | quote }}\n    {{- end }}\n    http:\n      paths:\n"
            "      {{- range .paths }}\n      - path: {{ .path }}\n        pathType: {{ .pathType }}\n"
            f"        backend:\n          service:\n            name: {service}\n"
            f"            port:\n              number: {port}\n      {{{{- end }}}}\n  {{{{- end }}}}\n"
            "  {{- with $svc.ingress.tls }}\n  tls:\n    {{- toYaml . | nindent 4 }}\n  {{- end }}\n"
            "{{- end }}\n")


def hpa_template(chart: str, service: str, obj: dict) -> str:
    target = obj["spec"]["scaleTargetRef"]
    return ("{{- if $svc.autoscaling.enabled }}\n"
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n"
            f"  name: {service}\n  namespace: {{{{ .Release.Namespace }}}}\n  labels:\n"
            f'    {{{{- include "{chart}.labels" (dict "root" $ "service" "{service}") | nindent 4 }}}}\n'
            f"spec:\n  scaleTargetRef:\n    apiVersion: {target['apiVersion']}\n"
            f"    kind: {target['kind']}\n    name: {target['name']}\n"
            "  minReplicas: {{ $svc.autoscaling.minReplicas }}\n"
            "  maxReplicas: {{ $svc.autoscaling.maxReplicas }}\n  metrics:\n  - type: Resource\n"
            "    resource:\n      name: cpu\n      target:\n        type: Utilization\n"
            "        averageUtilization: {{ $svc.autoscaling.targetCPUUtilizationPercentage }}\n"
            "{{- end }}\n")


def pdb_template(chart: str, service: str, obj: dict) -> str:
    return ("{{- if $svc.podDisruptionBudget.enabled }}\n"
            "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n"
            f"  name: {service}\n  namespace: {{{{ .Release.Namespace }}}}\n  labels:\n"
            f'    {{{{- include "{chart}.labels" (dict "root" $ "service" "{service}") | nindent 4 }}}}\n'
            "spec:\n  minAvailable: {{ $svc.podDisruptionBudget.minAvailable }}\n  selector:\n"
            "    matchLabels:\n"
            f'      {{{{- include "{chart}.selectorLabels" (dict "root" $ "service" "{service}") | nindent 6 }}}}\n'
            "{{- end }}\n")


def secret_template(chart: str, service: str | None, obj: dict) -> str:
    """Values come from `.Values.secretValues` at render time (nself supplies them from the
    env files); a missing one fails the render clearly (see `secretValue` in _helpers.tpl)."""
    t = Template(chart, service)
    name = obj["metadata"]["name"]
    obj = copy.deepcopy(obj)
    obj["metadata"] = _meta(t, obj, service)
    obj["stringData"] = {key: t.scalar(f'include "{chart}.secretValue" (list $ "{name}" "{key}")')
                         for key in obj["stringData"]}
    return t.render(obj)


def literal_template(chart: str, service: str | None, obj: dict) -> str:
    t = Template(chart, service)
    obj = copy.deepcopy(obj)
    obj["metadata"] = _meta(t, obj, service)
    if obj["kind"] == "RoleBinding":
        for subject in obj.get("subjects", []):
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = t.scalar(".Release.Namespace")
    return t.render(obj)


def is_workload(obj: dict) -> bool:
    return obj["kind"] in WORKLOADS
