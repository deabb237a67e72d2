"""Model services: catalog, pools, deploy, status, teardown and their SQL."""
