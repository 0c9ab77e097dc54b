"""Files the package ships: the sample export and its settings (installed from data/ as the
package `funnel_sample`), found with importlib.resources so that `pip install .` works."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SAMPLE_HOME = Path(str(files("funnel_sample")))
SAMPLE_DIR = SAMPLE_HOME / "sample"
SAMPLE_CONFIG = SAMPLE_HOME / "funnel.toml"
