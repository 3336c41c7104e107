"""crossrec.testing: conformance suites shipped with the package, for crossrec's own components and
for yours (they need pytest). :mod:`crossrec.testing.models` checks recommenders."""
