"""``python -m llmfound`` runs the CLI."""

import sys

from llmfound.cli import main

sys.exit(main())
