# One image for every perfsuite service: the Locust master and workers and the demo bot.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY perfsuite ./perfsuite
COPY locustfiles ./locustfiles
COPY redis_bench ./redis_bench
COPY baseline ./baseline
COPY demo_bot ./demo_bot
COPY scenarios.yaml ./
RUN pip install --no-cache-dir .
ENV PERFSUITE_CONFIG=/app/scenarios.yaml
EXPOSE 8089 8000
CMD ["perfsuite", "--help"]
