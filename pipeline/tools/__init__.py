"""User tools behind the ``tribert`` command: inspect, separate and the bench group."""
