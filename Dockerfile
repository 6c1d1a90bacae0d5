FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY lightsms ./lightsms
COPY core ./core
COPY simulator ./simulator
COPY producers ./producers
COPY worker ./worker
COPY consumers ./consumers
COPY cli ./cli
COPY devtools ./devtools
COPY examples ./examples
RUN pip install --no-cache-dir . && useradd --create-home sms
USER sms
CMD ["celery", "-A", "worker", "worker", "--loglevel=INFO"]
