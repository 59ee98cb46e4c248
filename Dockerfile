# The pipeline's image: `pipeline worker` by default; `pipeline receive`, `pipeline migrate`,
# `pipeline collect SOURCE` with another command. Built with `docker build -t
# passwordless-pipeline:0.1.0 .` at the repository's root (deploy/compose.yaml builds it).
#
# The base is pinned by tag and digest (the digest as public Dockerfiles pin this tag; check it
# with `docker buildx imagetools inspect python:3.11.14-slim-bookworm` and update both
# together). Every dependency installs as a wheel (pyproject.toml pins them): no compiler.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
# Editable: the package reads schemas/ and grafana/ beside itself (pipeline/settings.py,
# REPO_ROOT), so it stays at /app in the final image too.
RUN /opt/venv/bin/pip install --editable .

FROM ${PYTHON_IMAGE}
# A fixed uid, not root: Kubernetes' runAsNonRoot checks a number.
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin pipeline
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
COPY schemas ./schemas
COPY grafana ./grafana
# The only place it writes (Faust's data directory; the embedded warehouse, if used).
RUN mkdir -p /app/var && chown pipeline:pipeline /app/var
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIPELINE_STATE_DIR=/app/var/faust
USER 10001:10001
# The receiver's port, and /metrics, /healthz and /readyz (deploy/pipeline.env sets them).
EXPOSE 8088 9464
ENTRYPOINT ["pipeline"]
CMD ["worker"]
