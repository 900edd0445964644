"""sync.watch: local file changes pushed to an environment, one sync per debounced batch.

The watching is `watchfiles` (Rust's notify: inotify on Linux, FSEvents on macOS): it groups
the changes of a burst (`debounce`, milliseconds: the longest a batch collects; a batch closes
earlier after 50 ms without a change) and yields each batch once, so a `git checkout` of 500
files is one sync, not 500. Each batch is one `sync.files` run (its own id, snapshot and
record), so `sync.rollback ENV --to ID` undoes any one of them. Changes that match
`sync.exclude` / `--exclude` (or watchfiles' defaults: .git, __pycache__, editor swap
files) start no sync. A Ctrl-C (or SIGTERM) while waiting ends the watch cleanly (exit 0); during
a sync it interrupts that sync as it would any other (exit 130, recorded).
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from pathlib import Path

STEP_MS = 50            # a batch closes after this long without a new change


def _filter(excludes: Sequence[str]):
    import watchfiles

    class Filter(watchfiles.DefaultFilter):
        """watchfiles' defaults, plus rsync-style patterns matched against the name and the path."""

        def __call__(self, change, path: str) -> bool:
            name = Path(path).name
            if any(fnmatch.fnmatch(name, x) or fnmatch.fnmatch(path, x) or f"/{x.strip('/')}/" in f"{path}/"
                   for x in excludes):
                return False
            return super().__call__(change, path)

    return Filter()


def batches(folders: Sequence[Path], excludes: Sequence[str], debounce_ms: int, stop_event=None) \
        -> Iterator[set[str]]:
    """The changed paths of each batch, until Ctrl-C/SIGTERM (or `stop_event`) ends the watch."""
    import watchfiles

    for changes in watchfiles.watch(*folders, watch_filter=_filter(excludes), debounce=debounce_ms,
                                    step=STEP_MS, stop_event=stop_event, raise_interrupt=False):
        yield {path for _, path in changes}
