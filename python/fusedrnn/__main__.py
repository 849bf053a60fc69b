"""Command line: ``python -m fusedrnn demo`` (train an LSTM and a GRU forecaster and compare
them) and ``python -m fusedrnn info`` (what this build runs on)."""

import argparse
import sys


def _info(_args):
    import fusedrnn

    for key, value in fusedrnn.info().items():
        print(f"{key:>8}: {value}")
    return 0


def _positive(text):
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return n


def _demo(args):
    from fusedrnn import _demo

    _demo.run(steps=args.steps)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fusedrnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print the version and the backends of this build").set_defaults(
        run=_info
    )
    demo = sub.add_parser("demo", help="train an LSTM and a GRU to forecast a sine wave and "
                                       "compare them (under a minute)")
    demo.add_argument("--steps", type=_positive, default=600, help="Adam steps per model")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
