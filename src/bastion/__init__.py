"""Bastion: an open-source trust-and-safety platform."""

__version__ = "0.1.0"
