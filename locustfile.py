"""Run any loadwise scenario with plain Locust, the recorder attached:

    locust -f locustfile.py --scenario browse --shape step -u 50 -t 60s --host http://127.0.0.1:8000

`--scenario` takes a built-in name (browse, checkout, smoke) or the path of your own
locustfile; `--shape` a closed-model shape (constant, ramp, step, spike, soak, diurnal) or
an open-model rate shape with `--rate` (`locust -f locustfile.py --help` lists them). The run
directory lands in runs/<run_id>/ (see `--run-dir`).
"""

from loadwise.engine.entry import attach

attach(globals())
