"""Capacity models (USL, Amdahl, linear) as estimators, and the answers built on them."""
