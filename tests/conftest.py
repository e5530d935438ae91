import sys
from pathlib import Path

# tests/ holds shared helpers (builders, strategies) imported by plain name.
sys.path.insert(0, str(Path(__file__).parent))
