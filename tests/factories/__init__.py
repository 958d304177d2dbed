"""Synthetic test media (images, videos) shared by every test suite and the benchmarks."""
