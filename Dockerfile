# AffectLab's environment in an image: the pins of constraints.txt, installed by the Makefile's own targets, so
# the image and a `make` checkout cannot drift apart. docs/containers.md has the build and run commands.
#
#   docker build -t affectlab .                                              # CPU torch (the default)
#   docker build -t affectlab:cuda --build-arg TORCH_INDEX=https://pypi.org/simple .   # CUDA torch
#   docker run --rm affectlab                                                # make test
#   docker run --rm -v $PWD/runs:/app/runs -v $PWD/data:/app/data affectlab \
#       affectlab run --config configs/experiment/synth/supervised.yaml
#
# Why no nvidia/cuda base for the CUDA image: PyPI's torch wheel is the CUDA build and carries the CUDA libraries
# itself (the nvidia-* pins of constraints.txt); `docker run --gpus all` brings the host's driver. A CUDA base
# would only add a second, unused copy of those libraries and a second Python.
ARG BASE=python:3.11-slim
FROM ${BASE}

# Where the pinned torch==2.14.1 and torchvision==0.29.1 come from. The CPU index serves the same versions as
# 2.14.1+cpu (no CUDA libraries: an image a few GB smaller), which the pins `==2.14.1` accept; the CUDA build is
# PyPI's own wheel, the one constraints.txt was resolved with. It is an extra index: every other package still
# comes from PyPI at its pinned version.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

# make runs the install and the tests (the Makefile is the one recipe for both); nothing else is needed: every
# pinned package has a binary wheel for Python 3.11 on Linux.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The config key cache (runs/schema_cache.py) that `make` primes at install: kept in the image, not in root's
# home, so a container started with --user finds it too.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AFFECTLAB_CACHE_DIR=/app/.cache/affectlab

# What the install reads, copied before the rest so that editing a test or a doc does not reinstall torch: the
# Makefile's targets depend on pyproject.toml and constraints.txt, the editable install needs src/ and README.md
# (the package's readme), and the schema cache is primed from configs/.
COPY Makefile pyproject.toml constraints.txt README.md ./
COPY src ./src
COPY configs ./configs
# 1. the Makefile's venv; 2. torch and torchvision from the chosen index, at the pins; 3. the Makefile's install
# with the dev extra (its `pip install -c constraints.txt -e .`, facenet-pytorch --no-deps, the schema cache),
# which keeps the torch of step 2: it already satisfies `torch==2.14.1`.
RUN make .venv/bin/python PYTHON=python3 \
    && .venv/bin/pip install --quiet -c constraints.txt --extra-index-url "$TORCH_INDEX" \
        torch==2.14.1 torchvision==0.29.1 \
    && make .venv/.installed-dev PYTHON=python3

# What `make test` reads beside the package. COPY keeps the files' times, so make still finds its install
# targets newer than pyproject.toml and constraints.txt and goes straight to pytest.
COPY tests ./tests
COPY benchmarks ./benchmarks
COPY examples ./examples
COPY docs ./docs

# `affectlab ...` and `python ...` are the venv's; the run store (runs/) and generated data (data/) are relative
# to /app: mount them as volumes to keep them.
ENV PATH=/app/.venv/bin:$PATH
CMD ["make", "test", "PYTHON=python3"]
