"""``python -m benchmarks.report`` (also ``python benchmarks/report`` once ``pip install -e .`` has installed the
project): see the package docstring."""
import sys

from benchmarks.report import main

sys.exit(main())
