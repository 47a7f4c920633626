"""The embedded demo target: a small shop over HTTP that loadwise tests and advisors run against."""
