"""`python -m pipeline.receive`: the same as `pipeline receive`."""

import argparse
import sys

from pipeline.receive.cli import DESCRIPTION, run

argparse.ArgumentParser(prog="python -m pipeline.receive", description=DESCRIPTION).parse_args()
sys.exit(run())
