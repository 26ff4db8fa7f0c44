"""The federated tests mirror the package in subfolders; their shared helpers
(``fl_helpers``, ``protection_helpers``) live here, importable from every subfolder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
