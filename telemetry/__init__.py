"""InfluxDB storage: batched writes, a durable spool, queries returning pandas frames."""
