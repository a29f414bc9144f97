"""Estimation engines (the package is not called ``fit`` so that it never shadows ``hlm.fit``)."""
