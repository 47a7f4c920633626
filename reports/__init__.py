"""Self-contained HTML reports of a run or a comparison (jinja2 + inline matplotlib SVG)."""
