"""Development tools, run from the checkout (`python -m benchmarks.benchmark`): not part of the
installed package."""
