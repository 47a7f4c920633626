"""Load shapes: what a run asks of the target over time, as pure values (no Locust).

`closed` holds the closed-model shapes (so many users, each waiting for its responses),
`rates` the open model's rate shapes (iterations arrive at a planned rate whatever the
target does), `base` what every shape shares and `catalog` the shapes by name, as
`--shape NAME --shape-param KEY=VALUE` build them. `loadwise.engine` runs them in Locust.
"""
