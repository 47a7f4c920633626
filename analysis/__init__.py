"""Pure analysis of a run directory: reading/writing it, percentiles, summaries."""
