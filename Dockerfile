# One image for every CodeTether process: `docker run IMAGE api`, `... worker`, `... migrate`.
# Build: docker build -t codetether .
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core ./core
COPY api ./api
COPY workflows ./workflows
COPY activities ./activities
COPY migrations ./migrations
COPY worker.py alembic.ini ./
RUN python -m pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CODETETHER_DATA_DIR=/data CODETETHER_API_HOST=0.0.0.0 CODETETHER_LOG_JSON=true
COPY --from=build /wheels /wheels
RUN python -m pip install /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data --create-home codetether
USER 10001:10001
WORKDIR /data
EXPOSE 8000 9464
ENTRYPOINT ["codetether"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
