FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY detections ./detections
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system bucketwatch && mkdir /data && chown bucketwatch /data
USER bucketwatch
ENV DB_PATH=/data/bucketwatch.db PORT=3000
EXPOSE 3000
CMD ["python", "-m", "bot", "run"]
