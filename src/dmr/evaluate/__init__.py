"""Measuring the router: cost–quality curves on outcome data (and, in ``dmr eval``, accuracy)."""
