# syntax=docker/dockerfile:1
# One image for every Dagster process of the docker-compose deployment (docker-compose.yml): the
# code server (default CMD), the webserver, the daemon, and the run containers the daemon starts
# through DockerRunLauncher (deploy/dagster.prod.yaml), which use the image the code server reports.
#
#   docker build -t podcast-intelligence:latest .
#   docker build -t podcast-intelligence:gpu --build-arg TORCH_EXTRA_INDEX_URL= .   # CUDA torch
#
# No .dockerignore is part of this change: the COPY lines below name what the image needs, so
# .venv/, data/ and .git/ never enter it (they still enter the build context; add a .dockerignore
# to speed builds up).
FROM python:3.11-slim

# Where torch comes from. pyproject.toml pins torch==2.13.0; from PyPI alone that is the CUDA
# build on Linux x86_64 (several GB of nvidia-* wheels). The CPU index serves 2.13.0+cpu, which
# satisfies the pin and is preferred over the PyPI build. The GPU image passes an empty value
# (PyPI's CUDA build, which also brings the cuBLAS/cuDNN wheels CTranslate2 needs) or a CUDA index
# such as https://download.pytorch.org/whl/cu128.
ARG TORCH_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Non-root user; uid fixed so volume ownership is predictable across rebuilds.
RUN groupadd --system --gid 10001 podcast \
    && useradd --system --uid 10001 --gid podcast --home-dir /home/podcast --create-home podcast

# espeak-ng speaks the weekly digest (the default text-to-speech backend).
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/dagster/app

# Package sources first, so the dependency layer is rebuilt only when they or pyproject.toml change.
COPY pyproject.toml README.md ./
COPY podcast_core/ podcast_core/
COPY podcast_assets/ podcast_assets/
COPY resources/ resources/
COPY sensors/ sensors/
COPY partitions/ partitions/

# The project with the offline model packages, plus the deployment libraries: dagster-postgres
# (instance storage), dagster-docker (DockerRunLauncher) and dagster-aws (S3 artifacts through
# S3Resource, S3ComputeLogManager for compute logs). Versions match dagster==1.13.27 pinned in
# pyproject.toml.
RUN pip install ${TORCH_EXTRA_INDEX_URL:+--extra-index-url "$TORCH_EXTRA_INDEX_URL"} \
        ".[offline-models]" \
        dagster-postgres==0.29.27 \
        dagster-docker==0.29.27 \
        dagster-aws==0.29.27

# The deployment files (instance config, workspaces). The demo corpus, scripts, tests and
# benchmarks stay out: `podcast demo` is a development tool and does not work from this image.
COPY dagster.yaml workspace.yaml ./
COPY deploy/ deploy/

# Instance config: deploy/dagster.prod.yaml (Postgres storage, S3 compute logs, queued runs,
# DockerRunLauncher).
ENV DAGSTER_HOME=/opt/dagster/dagster_home
RUN mkdir -p "$DAGSTER_HOME" && cp deploy/dagster.prod.yaml "$DAGSTER_HOME/dagster.yaml"

# Catalog, Dagster's local storage, and the artifacts (when PODCAST_ARTIFACT_ROOT is local; on
# S3, the corpus mirror and scratch files in /data/cache) live on the data volume; models are
# cached on their own volume. Both directories are created here owned by the runtime user, so
# a new named volume mounted on them starts with that ownership.
ENV PODCAST_DATA_DIR=/data \
    XDG_CACHE_HOME=/opt/dagster/cache \
    HF_HOME=/opt/dagster/cache/huggingface
# CTranslate2 (faster-whisper) loads cuBLAS/cuDNN from here when a CUDA torch build installed the
# nvidia-* wheels (GPU image); the paths do not exist in the CPU image and are then ignored.
ENV LD_LIBRARY_PATH=/usr/local/lib/python3.11/site-packages/nvidia/cublas/lib:/usr/local/lib/python3.11/site-packages/nvidia/cudnn/lib
RUN mkdir -p /data/dagster_storage "$XDG_CACHE_HOME" \
    && chown -R podcast:podcast /data "$XDG_CACHE_HOME" "$DAGSTER_HOME"

USER podcast

# 4000: code server (gRPC); 3000: webserver.
EXPOSE 4000 3000

# The code server; docker-compose.yml overrides the command for the webserver and the daemon, and
# DockerRunLauncher for run containers (`dagster api execute_run ...`).
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "podcast_assets.definitions"]
