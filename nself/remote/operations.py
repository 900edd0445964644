"""What the server tasks do: commands and plans as data, run by the executor."""
from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path

from nself.errors import Exit, NselfError
from nself.plan import LOCAL, LocalRunner, Plan, Step, shell
from nself.remote.connection import connect, open_checked
from nself.remote.inventory import Server

# One command gathers the status facts; each line is KEY=VALUE (parsed, not scraped from prose).
STATUS = (
    "echo uptime=$(cut -d' ' -f1 /proc/uptime); "
    "echo load=$(cut -d' ' -f1-3 /proc/loadavg); "
    "echo disk=$(df -P / | awk 'NR==2 {print $5}'); "
    "echo memory=$(awk '/MemTotal/ {t=$2} /MemAvailable/ {a=$2} END {printf \"%d%%\", (t-a)*100/t}' /proc/meminfo); "
    "echo runtime=$( (command -v podman || command -v docker || echo none) | xargs basename)"
)


def parse_status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    if "uptime" in out:
        seconds = int(float(out["uptime"] or 0))
        out["uptime"] = f"{seconds // 86400}d {seconds % 86400 // 3600}h {seconds % 3600 // 60}m"
    return out


def ssh_argv(root: Path, server: Server, command: list[str] | None = None) -> list[str]:
    """The `ssh` command for an interactive session, with the same strict host keys."""
    argv = ["ssh", "-p", str(server.port), "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={root / '.nself' / 'known_hosts'} ~/.ssh/known_hosts"]
    if server.key:
        argv += ["-i", server.key, "-o", "IdentitiesOnly=yes"]
    argv.append(f"{server.user}@{server.host}")
    return argv + (command or [])


def logs_command(service: str | None, follow: bool, lines: int = 200) -> str:
    if not service:
        return f"journalctl --no-pager -n {lines}" + (" -f" if follow else "")
    name = shlex.quote(service)
    flags = f"--tail {lines}" + (" -f" if follow else "")
    return f"$( (command -v podman || command -v docker) ) logs {flags} {name}"


# In the background, a second later: the SSH session ends cleanly before the host goes down.
REBOOT = "nohup sh -c 'sleep 1; reboot' >/dev/null 2>&1 &"


def reboot_plan(server: Server, through_api: Step | None = None) -> Plan:
    """Reboot over SSH (sudo added by the runner when the inventory says so), or through the
    provider's API (`through_api`: an http step); the task then waits for SSH."""
    step = through_api or shell("reboot", REBOOT, on=server.name)
    return Plan(f"reboot {server.name}, then wait until SSH answers again", [step])


def reboot(root: Path, plan: Plan, server: Server, inventory: dict[str, Server], timeout: int = 300) -> float:
    """Run the reboot plan and wait until SSH answers again; returns the seconds it took."""
    from nself.remote.executor import run_on

    started = time.monotonic()
    if plan.steps[0].on == LOCAL:
        plan.run(LocalRunner())
    else:
        run_on(root, inventory, plan)
    time.sleep(2)

    def answers() -> None:
        again = connect(root, server, inventory)
        open_checked(again, server)
        again.run("true", hide=True, in_stream=False)
        again.close()

    wait_for_ssh(server, answers, started + timeout)
    return time.monotonic() - started


def wait_for_ssh(server: Server, probe: Callable[[], object], deadline: float) -> object:
    """Call `probe` until it succeeds; a changed host key stops the wait at once."""
    while True:
        try:
            return probe()
        except NselfError as exc:
            if exc.code == Exit.PERMISSION:
                raise                      # a new host key after a reboot is not to be ignored
            if time.monotonic() > deadline:
                raise NselfError(f"{server.name} does not answer SSH ({exc.message})", code=Exit.TIMEOUT,
                                 hint="check the host's console (provider panel)") from None
            time.sleep(1)
