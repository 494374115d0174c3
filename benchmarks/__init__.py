"""The project's benchmarks, run by ``streetlight bench …`` from a source checkout; not product code."""
