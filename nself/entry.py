"""The `nself` console script. Shell completion (`nself --complete …`) is answered here,
before Invoke is imported: that import alone can cost more than a completion may take."""
import sys


def main() -> None:
    if sys.argv[1:2] == ["--complete"]:
        from nself.completion import fast

        sys.exit(fast.main(sys.argv[2:]))
    from nself.cli import main as run

    run()
