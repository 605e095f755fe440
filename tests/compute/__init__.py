"""Tests of `landlord_restate.compute`: types, registry, the mock, and the docker provider
against a Docker daemon of the session's own."""
