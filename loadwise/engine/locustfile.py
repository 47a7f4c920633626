"""The locustfile `loadwise run` hands to Locust (the repository's ./locustfile.py is the same)."""

from loadwise.engine.entry import attach

attach(globals())
