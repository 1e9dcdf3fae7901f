"""Command-line entry points: each parses absl flags and calls library functions, nothing more."""
