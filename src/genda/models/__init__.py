"""Networks only: no optimisers, devices or files."""
