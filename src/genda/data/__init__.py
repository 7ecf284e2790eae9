"""Domains (uint8 tensors in memory), builders of embedded data, loaders of real data."""

from genda.data.domain import Domain, Split, domain_names, load_domain, register

__all__ = ["Domain", "Split", "domain_names", "load_domain", "register"]
