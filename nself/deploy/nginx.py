"""nginx as the router on an SSH host, outside the app's compose project (pure builders).

Why outside: podman-compose recreates services that `depends_on` a recreated one, so an
nginx inside the project would restart with every release (design.md). Here nginx runs
from `<path>/router/` with its own `-c`/`-p`, listens on each published port and forwards to
the slots' loopback ports (see compose_render: P+10000 for slot a, P+20000 for b).

Switching is atomic: each slot has a complete config (`nginx-a.conf`, `nginx-b.conf`);
the candidate is checked with `nginx -t`, then `nginx.conf` (a symlink) is renamed over to
point at it, then `nginx -s reload` (started when it does not run). A reload drops no new
connection; `proxy_next_upstream` retries an idempotent request whose upstream just went
(a dying canary costs no failed GET).

A canary (or blue-green) *splits* instead: `canary-<slot>.conf` has a weighted upstream over
both slots (`weight=` per server: nginx's weighted round robin is exact with one worker),
the canary in `<slot>`. Which slot is the canary's is the host's business (the one that is not
in `<path>/slot`), so both variants are sent and the host checks the one it needs; the swap
is a second step, so a multi-host change can be checked everywhere before it reloads
anywhere. Split configs log every request in `analysis.LOG_FORMAT` to `router/access.log`,
which a new canary starts afresh (the previous one is kept as `access.log.1`).
"""
from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping

from nself.deploy.analysis import LOG_FORMAT
from nself.deploy.compose_render import ReleaseFile, Slot, compose_name, routed_ports, slots
from nself.plan import Step, put, shell

TIMEOUT = 30
DRAIN_SECONDS = 10
q = shlex.quote


def folder(base: str) -> str:
    return posixpath.join(base, "router")


def files(project, base: str) -> list[ReleaseFile]:
    """One complete nginx config per slot, paths relative to the router folder."""
    return [ReleaseFile(f"nginx-{slot.name}.conf", config(project, base, {slot: 100}).encode())
            for slot in slots(compose_name(project), "nginx").values()]


def upload(project, base: str, on: str) -> list[Step]:
    """The router folder and both slot configs on a host (the live one is not touched)."""
    router = folder(base)
    return [shell("prepare the router folder", f"mkdir -p {q(router)}/tmp", on=on, timeout=TIMEOUT),
            *(put(f"upload the router config {f.path}", posixpath.join(router, f.path), f.data, on=on)
              for f in files(project, base))]


def config(project, base: str, weights: Mapping[Slot, int], log: bool = False) -> str:
    """An nginx config forwarding each routed port to the slots in `weights` (slot → share,
    0–100; a slot at 0 is left out). `log`: every request in nself_json to router/access.log."""
    router = folder(base)
    temp = posixpath.join(router, "tmp")
    access = [f"    {LOG_FORMAT}", f"    access_log {router}/access.log nself_json;"] if log else \
        ["    access_log off;"]
    lines = ["# Written by nself (deploy, router nginx): do not edit, the next deploy replaces it.",
             "worker_processes 1;", f"pid {router}/nginx.pid;", f"error_log {router}/error.log warn;",
             "events { worker_connections 1024; }", "http {", *access,
             *(f"    {kind}_temp_path {temp}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                    "scgi")),
             "    proxy_next_upstream error timeout http_502 http_503;",
             "    proxy_connect_timeout 5s;"]
    live = [(slot, share) for slot, share in sorted(weights.items(), key=lambda item: item[0].name) if share > 0]
    for service, published, _target, host_ip in routed_ports(project):
        upstream = f"{service}_{published}"
        listen = f"{host_ip}:{published}" if host_ip else str(published)
        servers = " ".join(f"server 127.0.0.1:{slot.port(published)}" + (f" weight={share}" if len(live) > 1 else "")
                           + ";" for slot, share in live)
        lines += [f"    upstream {upstream} {{ {servers} }}",
                  f"    server {{ listen {listen}; location / {{ proxy_pass http://{upstream};",
                  "        proxy_set_header Host $host; proxy_set_header X-Forwarded-For $remote_addr; } }"]
    return "\n".join([*lines, "}", ""])


def split(project, base: str, canary: Slot, weight: int) -> str:
    """The config sending `weight` % to `canary` and the rest to the other slot (logged)."""
    stable = next(s for s in slots(compose_name(project), "nginx").values() if s.name != canary.name)
    return config(project, base, {stable: 100 - weight, canary: weight}, log=True)


def canary_addresses(project, canary: Slot) -> list[str]:
    """The upstream addresses of `canary`'s slot as nginx logs them ("127.0.0.1:28081")."""
    return [f"127.0.0.1:{canary.port(published)}" for _s, published, _t, _ip in routed_ports(project)]


# The slot that is not live: the canary's (or the new colour's).
_CANARY_SLOT = ('case "$(cat {base}/slot 2>/dev/null)" in a) c=b;; b) c=a;; '
                '*) echo "no live slot in {base}: deploy a release first" >&2; exit 1;; esac')


def check_split(project, base: str, weight: int, on: str) -> list[Step]:
    """Send both split variants for `weight` and `nginx -t` the one this host needs, left as
    `canary-<slot>.conf.new` (nothing live changes)."""
    router = folder(base)
    steps: list[Step] = [put(f"upload the {weight}% config with the canary in slot {slot.name}",
                             posixpath.join(router, f"canary-{slot.name}.conf.new"), split(project, base, slot, weight),
                             on=on) for slot in slots(compose_name(project), "nginx").values()]
    script = (_CANARY_SLOT.format(base=q(base))
              + f"; nginx -q -t -p {q(router + '/')} -c {q(router)}/canary-$c.conf.new")
    steps.append(shell(f"check the {weight}% config (nginx -t)", script, on=on, timeout=TIMEOUT))
    return steps


def apply_split(base: str, weight: int, on: str) -> Step:
    """Swap the checked split config in and reload: `weight` % now goes to the canary."""
    router = folder(base)
    script = (_CANARY_SLOT.format(base=q(base)) + f"; cd {q(router)} && mv -f canary-$c.conf.new canary-$c.conf && "
              "ln -sfn canary-$c.conf .nginx.conf.new && mv -Tf .nginx.conf.new nginx.conf && rm -f canary-*.conf.new"
              f" && {_reload(router)}")
    return shell(f"send {weight}% to the canary (swap the config, reload nginx)", script, on=on, timeout=TIMEOUT)


def switch(base: str, slot: Slot, on: str) -> Step:
    """Point nginx at `slot`: check the candidate, swap the symlink, reload (or start)."""
    router = folder(base)
    candidate, link = posixpath.join(router, f"nginx-{slot.name}.conf"), posixpath.join(router, "nginx.conf")
    script = (f"nginx -q -t -p {q(router + '/')} -c {q(candidate)} && "
              f"ln -sfn nginx-{slot.name}.conf {q(router)}/.nginx.conf.new && "
              f"mv -Tf {q(router)}/.nginx.conf.new {q(link)} && {_reload(router)}")
    return shell(f"point nginx at slot {slot.name}", script, on=on, timeout=TIMEOUT)


# After `nginx -s reload` returns, the master has only been signalled: until each old worker
# takes its QUIT (closing its listening sockets, renamed "… is shutting down"), it still accepts
# new connections with the old config. Wait (at most RELOAD_SECONDS) until no old worker does,
# so a switch is complete when its step returns; without pgrep, as before, no wait.
_SETTLED = ('i=0; while :; do serving=; for w in $old; do [ -e /proc/$w ] && '
            '! grep -qa "shutting down" /proc/$w/cmdline 2>/dev/null && serving=1; done; [ -z "$serving" ] && break; '
            '[ $i -ge {ticks} ] && {{ echo "nginx still serves the old config {seconds} s after the reload" >&2; '
            'exit 1; }}; sleep 0.02; i=$((i+1)); done')
RELOAD_SECONDS = 5


def _reload(router: str) -> str:
    """Reload nginx on router/nginx.conf and wait until its old workers stopped accepting, or
    start it when it does not run."""
    nginx = f"nginx -p {q(router + '/')} -c {q(router + '/nginx.conf')}"
    pid = f"{q(router)}/nginx.pid"
    settled = _SETTLED.format(ticks=RELOAD_SECONDS * 50, seconds=RELOAD_SECONDS)
    return (f"if [ -s {pid} ] && kill -0 $(cat {pid}) 2>/dev/null; then "
            f"old=$(command -v pgrep >/dev/null && pgrep -P $(cat {pid})); {nginx} -s reload && {{ {settled}; }}; "
            f"else {nginx}; fi")


def drain(base: str) -> str:
    """Wait (at most DRAIN_SECONDS) until nginx's old workers, which finish the requests they
    hold after a reload, are gone: only then may the slot they forward to be stopped."""
    pid = q(posixpath.join(folder(base), "nginx.pid"))
    return (f"i=0; while [ $i -lt {DRAIN_SECONDS * 5} ] && [ -s {pid} ] && command -v pgrep >/dev/null && "
            f"pgrep -P \"$(cat {pid})\" -f 'shutting down' >/dev/null; do sleep 0.2; i=$((i+1)); done")


def fresh_log(base: str, on: str) -> Step:
    """Start a new access log for a new canary (the last one kept as access.log.1), so what a
    canary's analysis reads is bounded by that canary's own traffic."""
    router = q(folder(base))
    return shell("start a fresh access log", f"cd {router} 2>/dev/null || exit 0; [ -f access.log ] && "
                 "mv -f access.log access.log.1; [ -s nginx.pid ] && kill -USR1 $(cat nginx.pid) 2>/dev/null; true",
                 on=on, timeout=TIMEOUT)


def read_log(project, base: str, offset: int, on: str) -> Step:
    """The access log's lines from byte `offset` that name the canary slot's upstreams (a
    pre-filter: `analysis.canary_requests` decides). Prints `slot=`, `size=` and `from=` (0
    when the log was started afresh) first."""
    log = q(posixpath.join(folder(base), "access.log"))
    # addresses are digits, dots and a colon: no quoting needed inside the case below
    patterns = {slot.name: " ".join(f"-e {a}" for a in canary_addresses(project, slot))
                for slot in slots(compose_name(project), "nginx").values()}
    script = (_CANARY_SLOT.format(base=q(base)) + f"; echo slot=$c; size=$(wc -c < {log} 2>/dev/null || echo 0); "
              f"off={int(offset)}; [ \"$size\" -lt $off ] && off=0; echo size=$size; echo from=$off; "
              f"case $c in a) p=\"{patterns['a']}\";; b) p=\"{patterns['b']}\";; esac; "
              f"tail -c +$((off + 1)) {log} 2>/dev/null | head -c $((size - off)) | grep -F $p; true")
    return shell("read the canary's requests from the access log", script, on=on, timeout=TIMEOUT)


def stop(base: str, on: str) -> Step:
    router = q(folder(base))
    return shell("stop nginx", f"[ -s {router}/nginx.pid ] && kill $(cat {router}/nginx.pid) || true",
                 on=on, timeout=TIMEOUT, may_fail=True)
