"""Apache Airflow provider for The Cancer Imaging Archive."""

__version__ = "0.1.0"
