"""Builds the Cython extensions of engine/. Nothing else lives here.

Every ``engine/*.pyx`` becomes ``engine.<name>``. ``VOUCHERD_DEBUG=1`` builds
with line tracing, annotated HTML and ``-O0`` (for coverage and profiling).
"""

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("VOUCHERD_DEBUG") == "1"

macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if DEBUG else []
compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]

extensions = [
    Extension(
        f"engine.{pyx.stem}",
        [str(pyx)],
        define_macros=macros,
        extra_compile_args=compile_args,
    )
    for pyx in sorted(Path("engine").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        annotate=DEBUG,
        compiler_directives={
            "linetrace": DEBUG,
            "boundscheck": DEBUG,
            "wraparound": DEBUG,
            "cdivision": True,
            "embedsignature": True,
        },
    ),
)
