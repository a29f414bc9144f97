"""Outputs of a fitted model for people and programs: JSON, Markdown, HTML pages, tables.

Everything here formats what a result already holds; nothing is estimated.
"""
