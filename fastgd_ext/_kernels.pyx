# Cython kernels of fastgd: placeholder until the kernels land (issue 3).

def built():
    """True: the compiled extension is importable."""
    return True
