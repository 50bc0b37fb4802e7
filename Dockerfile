# Layerwise in a virtual environment on a slim Debian-based Python, data in the /data volume,
# configured from the environment (see docs/deployment.md).
#
# BASE_IMAGE: any Debian-like image with `python3` (and its venv module). The default is Docker Hub's
# python:3.12-slim; the tests build on a debootstrapped Debian bookworm with Debian's own python3
# (tests/docker/), so nothing here may assume /usr/local/bin/python or a preinstalled pip.
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
# Optional settings for pip (a mirror, or a CA bundle in the base such as
# /etc/ssl/certs/ca-certificates.crt when an egress proxy re-signs TLS). Build arguments of this stage
# only: they never reach the final image. No credentials here: they would show in the build history.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_CERT
WORKDIR /src
COPY pyproject.toml README.md manifest.webmanifest ./
COPY server ./server
COPY templates ./templates
COPY static ./static
RUN python3 -m venv /opt/layerwise \
    && /opt/layerwise/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM ${BASE_IMAGE}
# The venv links to the base's python3, which is the same in both stages.
COPY --from=build /opt/layerwise /opt/layerwise
COPY deploy/docker-entrypoint.sh /usr/local/bin/layerwise-entrypoint
COPY deploy/docker-healthcheck.py /usr/local/lib/layerwise-healthcheck.py
RUN groupadd --system --gid 1000 layerwise \
    && useradd --system --uid 1000 --gid layerwise --home-dir /data --shell /usr/sbin/nologin layerwise \
    && mkdir -p /data && chown layerwise:layerwise /data \
    && chmod 0755 /usr/local/bin/layerwise-entrypoint
ENV PATH=/opt/layerwise/bin:$PATH \
    LAYERWISE_DATA_DIR=/data \
    LAYERWISE_HOST=0.0.0.0 \
    LAYERWISE_PORT=7913 \
    LAYERWISE_HTTPS_PORT=7914 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
# 7913: plain HTTP; 7914: Layerwise's own HTTPS, for phones (camera, installing the app).
EXPOSE 7913 7914
# No USER: the container starts as root only so that the entrypoint can hand /data to the layerwise
# user (uid 1000) -- Docker creates a missing bind-mount directory as root -- and then it drops root
# for good before Layerwise starts. `docker run --user 1000:1000` (compose `user:`) skips that step.
ENTRYPOINT ["layerwise-entrypoint"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/opt/layerwise/bin/python", "/usr/local/lib/layerwise-healthcheck.py"]
CMD ["layerwise", "serve"]
