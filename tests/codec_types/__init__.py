"""Module-level types for the codec tests (importable by `module:qualname`,
also from a fresh process), the strict comparator, and the sample table."""
