"""Output: human text, tables and progress, or exactly one JSON document.

Everything a task prints goes through `Output`, which redacts secret values.
rich is imported only when a table or progress display is drawn on a TTY, so
start-up stays fast; without a TTY (CI, pipes) output is plain text.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TextIO

REDACTED = "[REDACTED]"
LEVELS = ("quiet", "normal", "verbose", "debug")


def redact(value: Any, secrets: Sequence[str], secret_keys: frozenset[str] = frozenset()) -> Any:
    """Replace secret values (and values under secret keys) anywhere in `value`."""
    if isinstance(value, str):
        for secret in secrets:
            if secret and secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, Mapping):
        return {k: REDACTED if k in secret_keys and v not in (None, "") else
                redact(v, secrets, secret_keys) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, secrets, secret_keys) for v in value]
    return value


@contextlib.contextmanager
def _no_interrupt() -> Iterator[None]:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Output:
    def __init__(self, *, json_mode: bool = False, verbosity: str = "normal",
                 stdout: TextIO | None = None, stderr: TextIO | None = None):
        self.json_mode = json_mode
        self.verbosity = verbosity if verbosity in LEVELS else "normal"
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._secrets: list[str] = []
        self._emitted = False
        self._gathered: list | None = None

    # -- secrets --------------------------------------------------------------
    def add_secrets(self, values: Iterable[str]) -> None:
        """Values that must never be printed (short ones would mask ordinary text)."""
        merged = set(self._secrets) | {v for v in values if v and len(v) >= 4}
        self._secrets = sorted(merged, key=len, reverse=True)

    def redact(self, value: Any, secret_keys: frozenset[str] = frozenset()) -> Any:
        return redact(value, self._secrets, secret_keys)

    @contextlib.contextmanager
    def verbatim(self) -> Iterator[None]:
        """Print without replacing secret values, for output built to hold none (renderers
        write references, views mask by key): replacing text there only corrupts it — a
        password "postgres" turned `image: postgres:16` into `image: [REDACTED]:16`."""
        saved, self._secrets = self._secrets, []
        try:
            yield
        finally:
            self._secrets = saved

    # -- text -----------------------------------------------------------------
    @property
    def is_tty(self) -> bool:
        return hasattr(self.stdout, "isatty") and self.stdout.isatty() and \
            os.environ.get("TERM") != "dumb"

    def _level(self, name: str) -> bool:
        return LEVELS.index(self.verbosity) >= LEVELS.index(name)

    def say(self, text: str = "") -> None:
        """Normal output: stdout, or stderr when stdout is reserved for JSON."""
        if self._level("normal"):
            print(self.redact(text), file=self.stderr if self.json_mode else self.stdout)

    def verbose(self, text: str) -> None:
        if self._level("verbose"):
            print(self.redact(text), file=self.stderr)

    def debug(self, text: str) -> None:
        if self._level("debug"):
            print(self.redact("debug: " + text), file=self.stderr)

    def warn(self, text: str) -> None:
        if self._level("normal"):
            print(self.redact("warning: " + text), file=self.stderr)

    def error(self, text: str) -> None:
        print(self.redact("error: " + text), file=self.stderr)

    # -- structured -------------------------------------------------------------
    def emit(self, document: Any, render=None) -> None:
        """The command's result: one JSON document with --json, else `render(document)`."""
        if self.json_mode and self._gathered is not None:
            self._gathered.append(document)
        elif self.json_mode:
            if self._emitted:
                raise RuntimeError("a command emits one JSON document")
            self._emitted = True
            json.dump(self.redact(document), self.stdout, indent=2, sort_keys=False, default=str)
            self.stdout.write("\n")
        elif render is not None:
            render(document)
        else:
            self.say(json.dumps(self.redact(document), indent=2, default=str))

    @contextlib.contextmanager
    def gathered(self, key: str) -> Iterator[None]:
        """A command made of several (sync.auto's entries, sync.pull's database and files):
        with --json the documents `emit` is given inside become one, `{key: [document, …]}`,
        emitted when the block ends without an error (the error is the command's result
        then); text output is unchanged."""
        self._gathered = []
        try:
            yield
            documents = self._gathered
        finally:
            self._gathered = None
        if self.json_mode:
            self.emit({key: documents})

    def event(self, document: Any) -> None:
        """One JSON line per event (watch modes). Ctrl-C waits until the line is out, so a
        consumer never reads half a document."""
        line = json.dumps(self.redact(document), default=str) + "\n"
        with _no_interrupt():
            self.stdout.write(line)
            self.stdout.flush()

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
        rows = [[self.redact("" if c is None else str(c)) for c in row] for row in rows]
        if not self._level("normal"):
            return
        if self.is_tty and not self.json_mode:
            from rich.console import Console
            from rich.table import Table

            table = Table(*columns, title=title, header_style="bold")
            for row in rows:
                table.add_row(*row)
            Console(file=self.stdout).print(table)
            return
        stream = self.stderr if self.json_mode else self.stdout
        widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
        if title:
            print(title, file=stream)
        for row in [list(columns), *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), file=stream)

    # -- progress ---------------------------------------------------------------
    @contextlib.contextmanager
    def spinner(self, text: str) -> Iterator[None]:
        if self.is_tty and self._level("normal") and not self.json_mode:
            from rich.console import Console

            with Console(file=self.stdout).status(self.redact(text)):
                yield
        else:
            self.verbose(text + " ...")
            yield

    @contextlib.contextmanager
    def progress(self, text: str, total: int) -> Iterator[Any]:
        """A progress bar; yields `advance(n=1)`."""
        if self.is_tty and self._level("normal") and not self.json_mode:
            from rich.progress import Progress

            with Progress(console=None) as bar:
                task = bar.add_task(self.redact(text), total=total)
                yield lambda n=1: bar.advance(task, n)
        else:
            done = [0]

            def advance(n: int = 1) -> None:
                done[0] += n
                self.verbose(f"{text}: {done[0]}/{total}")
            yield advance

    def step(self, index: int, total: int, text: str) -> None:
        """Step progress of a multi-step operation: `[2/5] Applying manifests`."""
        self.say(f"[{index}/{total}] {text}")
