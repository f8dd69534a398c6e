# syntax=docker/dockerfile:1
# dittofs-hooks: the Metacontroller hook service (gunicorn serving hooks.web.app:create_app()).
#   docker build -t dittofs-hooks:0.1.0 .
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp dittofs-hooks:0.1.0
# Both stages use the same base, pinned by exact Python and Debian release; pin it by digest
# as well (python:3.11.17-slim-bookworm@sha256:...) where builds must be reproducible.
ARG PYTHON_IMAGE=python:3.11.17-slim-bookworm

# --- builder: the project's wheel plus the locked wheels of its dependencies, in /wheels --
# The dependencies come from requirements.lock alone (exact versions, every file's hash; made
# by `make lock` from pyproject.toml's ranges): the image built tomorrow runs what the tests ran.
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements.lock ./
RUN pip download --require-hashes --no-deps --only-binary=:all: --dest /wheels -r requirements.lock \
 && cp requirements.lock /wheels/
COPY pyproject.toml README.md ./
COPY hooks ./hooks
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime: the wheels only, no build tools, no pip, no cache ----------------------------
FROM ${PYTHON_IMAGE}
ENV HOST=0.0.0.0 \
    PORT=8080 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A named user for the numeric uid, so that libraries asking for the user name find one.
RUN groupadd --system --gid 10001 dittofs \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin dittofs
# The wheels are bind-mounted from the builder, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels --require-hashes --no-deps -r /wheels/requirements.lock \
 && python -m pip install --no-index --no-deps /wheels/dittofs_hooks-*.whl \
 && python -m pip check \
 && python -m pip uninstall --yes setuptools wheel pip \
 && rm -rf /root/.cache
WORKDIR /app
COPY gunicorn.conf.py /app/gunicorn.conf.py
USER 10001:10001
EXPOSE 8080
CMD ["gunicorn", "--config", "gunicorn.conf.py", "hooks.web.app:create_app()"]
