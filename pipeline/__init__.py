"""TriBERT reproduction: the importable data and evaluation library (stages call into it)."""
