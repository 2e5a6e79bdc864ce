"""The run log: what a run writes to ``metrics.jsonl`` and the health rules that read it.

A lower room than both ``gankit.training`` (which writes the log and raises warnings live) and
``gankit.viz`` (whose report replays the same rules from the file), so neither imports the other.
"""

from gankit.runlog.health import Coverage, Health, HealthWarning, coverage, diversity, replay
from gankit.runlog.log import METRICS_FILE, RunLog, read_metrics

__all__ = [
    "METRICS_FILE",
    "Coverage",
    "Health",
    "HealthWarning",
    "RunLog",
    "coverage",
    "diversity",
    "read_metrics",
    "replay",
]
