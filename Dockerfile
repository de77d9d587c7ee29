# Production image for both the web process and the Celery worker.
# Note: gunicorn, celery and a PostgreSQL driver join requirements.txt with the
# site issue; until then this image builds but cannot run docker-compose's commands.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

EXPOSE 8000
CMD ["gunicorn", "sansuha_site.wsgi", "--bind", "0.0.0.0:8000"]
