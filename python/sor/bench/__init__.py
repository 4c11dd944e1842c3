"""Benchmarks of sor against peer order books."""
