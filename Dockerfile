# The icemesh catalog server image (docker-compose.yml's `catalog` service). The CLI and engines are in it too,
# so `docker compose run --rm catalog icemesh ...` works as a client.
FROM python:3.11-slim
WORKDIR /opt/icemesh
COPY pyproject.toml README.md ./
COPY icemesh ./icemesh
COPY dbt_icemesh ./dbt_icemesh
RUN pip install --no-cache-dir '.[duckdb]' boto3
RUN useradd --create-home --uid 1000 icemesh
USER icemesh
WORKDIR /home/icemesh
EXPOSE 8181
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8181/healthz', timeout=2)"
ENTRYPOINT []
CMD ["icemesh", "serve", "--host", "0.0.0.0"]
