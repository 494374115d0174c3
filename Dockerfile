# The platform image: `streetlight serve` (gateway, controller, API) and the other commands.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    STREETLIGHT_DATA_DIR=/var/lib/streetlight STREETLIGHT_API_HOST=0.0.0.0

WORKDIR /app
# dependencies first, so a code change does not reinstall them
COPY pyproject.toml README.md ./
RUN mkdir -p streetlight gateway controller telemetry simulators api runtime ops \
 && pip install --upgrade pip && pip install . && pip uninstall -y streetlight
COPY streetlight ./streetlight
COPY gateway ./gateway
COPY controller ./controller
COPY telemetry ./telemetry
COPY simulators ./simulators
COPY api ./api
COPY runtime ./runtime
COPY ops ./ops
RUN pip install --no-deps . \
 && useradd --system --uid 10001 --home /var/lib/streetlight streetlight \
 && mkdir -p /var/lib/streetlight && chown streetlight /var/lib/streetlight

USER streetlight
VOLUME ["/var/lib/streetlight"]
EXPOSE 8000
CMD ["streetlight", "serve", "--port", "8000"]
