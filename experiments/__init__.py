"""Whole studies: loss comparisons, figures, run reports, collapse controls and Dask sweeps.

The top layer of the package: ``models`` <- ``training`` <- ``analysis`` <- ``experiments``
<- ``spiking_gan.cli`` (each imports only from the layers to its left).
"""
