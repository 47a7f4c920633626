"""loadwise: Locust load tests that end in answers (SLO verdicts, regressions, capacity)."""

__version__ = "0.1.0"
