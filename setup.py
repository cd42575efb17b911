"""Shim for tooling that still calls setup.py; pyproject.toml holds all metadata."""

from setuptools import setup

setup()
