# One image for every perfsuite service: the Locust master and workers, the fault proxy and the
# demo bot. It holds exactly what `pip install .` installs (the wheel of pyproject.toml's package
# list, so no package can be left out) plus scenarios.yaml, the one file read at run time.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
# The dependencies first, from pyproject.toml alone: this layer stays cached while the code changes.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/pyproject.toml /tmp/requirements.txt
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels && pip check
LABEL org.opencontainers.image.title=perfsuite
WORKDIR /app
COPY scenarios.yaml ./
ENV PERFSUITE_CONFIG=/app/scenarios.yaml PYTHONUNBUFFERED=1
EXPOSE 8089 8000 5557 8474
CMD ["perfsuite", "--help"]
