# Layerwise: slim Python base, non-root user, /data volume, configured from the environment.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md manifest.webmanifest ./
COPY server ./server
COPY templates ./templates
COPY static ./static
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /dist

FROM python:3.12-slim
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl \
    && useradd --system --uid 1000 --home-dir /data --shell /usr/sbin/nologin layerwise \
    && mkdir -p /data && chown layerwise /data
USER layerwise
ENV LAYERWISE_DATA_DIR=/data \
    LAYERWISE_HOST=0.0.0.0 \
    LAYERWISE_PORT=7913 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 7913
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:7913/healthz', timeout=4).status == 200 else 1)"
CMD ["layerwise", "serve"]
