"""Cython kernels of fastgd (the fallback backend when numba is missing).

The compiled module is ``fastgd_ext._kernels``; ``fastgd.kernels.cython_kernels``
adapts it to fastgd's kernel interface.
"""
