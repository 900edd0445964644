"""nginx as the router on an SSH host, outside the app's compose project (pure builders).

Why outside: podman-compose recreates services that `depends_on` a recreated one, so an
nginx inside the project would restart with every release (design.md). Here nginx runs
from `<path>/router/` with its own `-c`/`-p`, listens on each published port and forwards to
the live slot's loopback port (see compose_render: P+10000 for slot a, P+20000 for b).

Switching is atomic: each slot has a complete config (`nginx-a.conf`, `nginx-b.conf`);
the candidate is checked with `nginx -t`, then `nginx.conf` (a symlink) is renamed over to
point at it, then `nginx -s reload` (started when it does not run). A reload drops no new
connection; `proxy_next_upstream` retries an idempotent request whose upstream just went.
The next issue (canary, blue-green) weights the two upstreams instead of switching.
"""
from __future__ import annotations

import posixpath
import shlex

from nself.deploy.compose_render import ReleaseFile, Slot, routed_ports, slots
from nself.plan import Step, put, shell

TIMEOUT = 30


def folder(base: str) -> str:
    return posixpath.join(base, "router")


def files(project, base: str) -> list[ReleaseFile]:
    """One complete nginx config per slot, paths relative to the router folder."""
    return [ReleaseFile(f"nginx-{slot.name}.conf", config(project, base, slot).encode())
            for slot in slots(project.name, "nginx").values()]


def upload(project, base: str, on: str) -> list[Step]:
    """The router folder and both slot configs on a host (the live one is not touched)."""
    router = folder(base)
    return [shell("prepare the router folder", f"mkdir -p {shlex.quote(router)}/tmp", on=on, timeout=TIMEOUT),
            *(put(f"upload the router config {f.path}", posixpath.join(router, f.path), f.data, on=on)
              for f in files(project, base))]


def config(project, base: str, slot: Slot) -> str:
    router = folder(base)
    temp = posixpath.join(router, "tmp")
    lines = ["# Written by nself (deploy, router nginx): do not edit, the next deploy replaces it.",
             "worker_processes 1;", f"pid {router}/nginx.pid;", f"error_log {router}/error.log warn;",
             "events { worker_connections 1024; }", "http {", "    access_log off;",
             *(f"    {kind}_temp_path {temp}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                    "scgi")),
             "    proxy_next_upstream error timeout http_502 http_503;",
             "    proxy_connect_timeout 5s;"]
    for service, published, _target, host_ip in routed_ports(project):
        upstream = f"{service}_{published}"
        listen = f"{host_ip}:{published}" if host_ip else str(published)
        lines += [f"    upstream {upstream} {{ server 127.0.0.1:{slot.port(published)}; }}",
                  f"    server {{ listen {listen}; location / {{ proxy_pass http://{upstream};",
                  "        proxy_set_header Host $host; proxy_set_header X-Forwarded-For $remote_addr; } }"]
    return "\n".join([*lines, "}", ""])


def switch(base: str, slot: Slot, on: str) -> Step:
    """Point nginx at `slot`: check the candidate, swap the symlink, reload (or start)."""
    router = folder(base)
    candidate, link = posixpath.join(router, f"nginx-{slot.name}.conf"), posixpath.join(router, "nginx.conf")
    q = shlex.quote
    nginx = f"nginx -p {q(router + '/')} -c {q(link)}"
    script = (f"nginx -q -t -p {q(router + '/')} -c {q(candidate)} && "
              f"ln -sfn nginx-{slot.name}.conf {q(router)}/.nginx.conf.new && "
              f"mv -Tf {q(router)}/.nginx.conf.new {q(link)} && "
              f"if [ -s {q(router)}/nginx.pid ] && kill -0 $(cat {q(router)}/nginx.pid) 2>/dev/null; "
              f"then {nginx} -s reload; else {nginx}; fi")
    return shell(f"point nginx at slot {slot.name}", script, on=on, timeout=TIMEOUT)


def live_slot_command(base: str) -> str:
    """Prints the slot nginx forwards to (empty before the first deploy)."""
    link = shlex.quote(posixpath.join(folder(base), "nginx.conf"))
    return f"readlink {link} 2>/dev/null | sed -n 's/^nginx-\\(.*\\)\\.conf$/\\1/p'"


def stop(base: str, on: str) -> Step:
    router = shlex.quote(folder(base))
    return shell("stop nginx", f"[ -s {router}/nginx.pid ] && kill $(cat {router}/nginx.pid) || true",
                 on=on, timeout=TIMEOUT, may_fail=True)
