"""Readers, writers and datasets for depth data (files -> arrays -> torch ``Dataset``)."""
