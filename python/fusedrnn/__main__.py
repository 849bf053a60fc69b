"""Command line: ``python -m fusedrnn info``."""

import argparse
import sys


def _info(_args):
    import fusedrnn

    for key, value in fusedrnn.info().items():
        print(f"{key:>8}: {value}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fusedrnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print the version and the backends of this build").set_defaults(
        run=_info
    )
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
