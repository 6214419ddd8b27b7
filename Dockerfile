# allotment: the server in a container (docs/deploy.md). Two stages: the first builds the
# wheel, the second installs only that wheel and its dependencies on a slim Python.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir "hatchling>=1.21" \
    && pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin allotment \
    && mkdir /data \
    && chown allotment /data
# Every `allotment serve` flag is also an ALLOTMENT_<FLAG> variable; flags on the command win.
ENV ALLOTMENT_HOST=0.0.0.0 \
    ALLOTMENT_PORT=8080 \
    ALLOTMENT_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
USER allotment
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health/ready' % os.environ['ALLOTMENT_PORT'], timeout=4)"]
ENTRYPOINT ["allotment"]
CMD ["serve"]
