"""Layer 3's machine learning, numpy only at run time: ``features`` (hashed n-grams), ``head`` (the
classifier, saved as plain arrays), ``train`` (fitting and calibration), ``evaluate`` (metrics) and
``plots`` (matplotlib, optional). Nothing here is imported by ``import dmr``."""
