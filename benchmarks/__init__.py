"""Benchmarks: `make bench` prints figures measured in one run; they are not pass/fail tests."""
