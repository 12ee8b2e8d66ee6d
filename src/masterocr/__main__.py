"""`python -m masterocr ...` (and `torchrun -m masterocr train ...`)."""

import sys

from masterocr.cli import main

sys.exit(main())
