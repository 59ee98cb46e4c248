"""`python -m pipeline.collect SOURCE …`: the same as `pipeline collect SOURCE …`."""

import argparse
import sys

from pipeline.collect.cli import DESCRIPTION, add_arguments, run

parser = argparse.ArgumentParser(prog="python -m pipeline.collect", description=DESCRIPTION)
add_arguments(parser)
sys.exit(run(parser.parse_args()))
