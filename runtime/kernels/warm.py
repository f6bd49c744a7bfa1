"""Fill numba's on-disk cache with every kernel: ``python -m runtime.kernels.warm``.

Run it once where the runtime is installed (a Docker build step, after ``pip install
'forge-nn[fast]'``) so that loading a model compiles nothing. numba writes the cache next
to the sources, or under ``NUMBA_CACHE_DIR`` when that is set. Exits with status 1 and
the install hint when numba is missing.
"""
import sys

from . import _numba, numba_installed


def main():
    if not numba_installed():
        print("numba is not installed (optional [fast] extra): pip install 'forge-nn[fast]'",
              file=sys.stderr)
        return 1
    seconds = _numba.warm_cache()
    from . import _numba_rnn

    seconds += _numba_rnn.warm_cache()
    print(f"compiled or loaded {len(_numba._KERNELS)} numba kernels "
          f"in {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
