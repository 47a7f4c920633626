# syntax=docker/dockerfile:1
# loadwise image for the Helm chart (deploy/helm/loadwise): the master Job and the
# worker Deployment both run it. Build: docker build -t loadwise:0.1.0 .

# Exact version tag: a floating tag would change the interpreter under a tested build.
FROM python:3.11.10-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A virtualenv is one directory to copy into the runtime stage, and it leaves the
# source tree (and whatever .dockerignore missed) behind in this stage.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY . .
RUN pip install --no-cache-dir .


FROM python:3.11.10-slim-bookworm

COPY --from=build /opt/venv /opt/venv

# Fixed ids: the chart's podSecurityContext (runAsUser/runAsGroup/fsGroup) uses 10001.
RUN groupadd --system --gid 10001 loadwise \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin loadwise \
    && install -d -o 10001 -g 10001 /app

# The chart mounts the root filesystem read-only, so home and caches point at /tmp
# (an emptyDir there).
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Outside Kubernetes the default --out (runs/) lands here: docker run -v "$PWD/runs:/app/runs" ...
WORKDIR /app
USER 10001:10001

# Master: 5557 (workers connect), 9646 (the exporter Prometheus scrapes).
EXPOSE 5557 9646

ENTRYPOINT ["loadwise"]
CMD ["--help"]
