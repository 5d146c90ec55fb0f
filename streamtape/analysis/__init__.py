"""Offline analysis of recorded cassettes: metrics, diff, stats, export, report, secrets.

Everything here computes and returns values; the ``cli`` package presents them. It is
built on the format-neutral `Summary`, so no function here branches on the API format.
"""
