"""`python -m hooks` and the `dittofs-hooks` console script: the command line in `hooks.tools.cli`."""
import sys

from hooks.tools import cli


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
