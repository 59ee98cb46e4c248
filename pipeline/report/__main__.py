"""`python -m pipeline.report`: the same as `pipeline report`."""

import argparse
import sys

from pipeline.report.cli import add_command

parser = argparse.ArgumentParser(prog="python -m pipeline")
add_command(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(["report", *sys.argv[1:]])
sys.exit(args.handler(args))
