"""Every compose service key, and whether the model carries it.

One registry drives the load-time warnings (nothing is dropped silently), the
documentation table in docs/compose-support.md and a coverage test against the
official schema.
"""
from __future__ import annotations

CARRIED = frozenset({
    "annotations", "build", "cap_add", "cap_drop", "command", "configs", "cpus",
    "depends_on", "deploy", "dns", "dns_search", "entrypoint", "env_file", "environment",
    "expose", "extends", "extra_hosts", "group_add", "healthcheck", "hostname", "image",
    "init", "labels", "links", "mem_limit", "mem_reservation", "network_mode", "networks",
    "pids_limit", "platform", "ports", "privileged", "profiles", "pull_policy", "read_only",
    "restart", "scale", "secrets", "shm_size", "stdin_open", "stop_grace_period",
    "stop_signal", "sysctls", "tmpfs", "tty", "ulimits", "user", "volumes", "working_dir",
})

# Keys the model does not carry, with the reason a user sees in the warning.
NOT_CARRIED = {
    "attach": "log attachment is a `docker compose up` option",
    "blkio_config": "block IO weights have no Kubernetes equivalent",
    "cgroup": "cgroup namespaces are chosen by the container runtime",
    "cgroup_parent": "the kubelet manages cgroups",
    "container_name": "Kubernetes names pods itself; the service name is the stable name",
    "cpu_count": "use deploy.resources (or cpus) for CPU",
    "cpu_percent": "use deploy.resources (or cpus) for CPU",
    "cpu_period": "CFS tuning has no pod-level setting",
    "cpu_quota": "use deploy.resources (or cpus) for CPU",
    "cpu_rt_period": "real-time scheduling has no pod-level setting",
    "cpu_rt_runtime": "real-time scheduling has no pod-level setting",
    "cpu_shares": "use deploy.resources.reservations.cpus for CPU requests",
    "cpuset": "CPU pinning belongs to the kubelet's CPU manager",
    "credential_spec": "Windows credential specs are not supported",
    "develop": "`develop` (watch) is a local development feature",
    "device_cgroup_rules": "device access needs a device plugin",
    "devices": "device access needs a device plugin",
    "dns_opt": "set pod dnsConfig options in an overlay patch",
    "domainname": "pods take their domain from the cluster",
    "external_links": "links to containers outside the project do not exist in a cluster",
    "gpus": "GPUs need a device plugin and resource limits (nvidia.com/gpu)",
    "ipc": "IPC namespace sharing is not supported",
    "isolation": "Windows isolation is not supported",
    "label_file": "labels from files are not read yet",
    "logging": "logging drivers do not exist in Kubernetes; use the cluster's log collection",
    "mac_address": "pods get their addresses from the cluster network",
    "mem_swappiness": "swap tuning has no pod-level setting",
    "memswap_limit": "swap limits have no pod-level setting",
    "models": "AI model attachments are not supported",
    "oom_kill_disable": "the kubelet decides OOM kills",
    "oom_score_adj": "the kubelet sets OOM scores from the QoS class",
    "pid": "PID namespace sharing is not supported (see shareProcessNamespace)",
    "post_start": "lifecycle hooks are not converted yet",
    "pre_stop": "lifecycle hooks are not converted yet",
    "provider": "compose provider services are not supported",
    "pull_refresh_after": "image refresh is a compose option",
    "runtime": "set a RuntimeClass in an overlay patch",
    "security_opt": "use the x-nself settings run_as_user, run_as_group and fs_group instead",
    "storage_opt": "storage driver options have no pod-level setting",
    "use_api_socket": "the Docker API socket does not exist in a cluster",
    "userns_mode": "user namespaces are set by the cluster",
    "uts": "UTS namespace sharing is not supported",
    "volumes_from": "mount the same volumes explicitly instead",
}

DEPLOY_CARRIED = frozenset({"mode", "replicas", "resources", "restart_policy", "update_config",
                            "rollback_config", "placement", "labels", "endpoint_mode"})
