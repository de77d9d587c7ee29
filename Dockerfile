# One image for every Sansuha process: the web server (gunicorn), the Celery worker and beat.
# The worker's torch picks the GPU when the container has one (docker-compose.yml reserves it)
# and falls back to the CPU otherwise; the web process never imports torch.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SANSUHA_MEDIA_ROOT=/data/media

WORKDIR /app

# Dependencies first, so that a code change does not reinstall torch.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files go into the image (hashed and compressed; whitenoise serves them). Settings need a
# secret key when DEBUG is off; this one exists only during the build.
RUN DJANGO_DEBUG=false DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput

# Not root. The media folder is created here with its owner, so that a fresh named volume mounted
# on it starts out writable by this user; the home folder holds torch's and matplotlib's caches.
RUN useradd --uid 1000 --create-home sansuha \
    && mkdir -p /data/media \
    && chown sansuha /data/media
USER sansuha

EXPOSE 8000
CMD ["gunicorn", "sansuha_site.wsgi", "--bind", "0.0.0.0:8000"]
