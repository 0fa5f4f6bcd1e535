"""The canary that succeeds: one task, a second or two on either Airflow."""

from datetime import datetime

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task


@dag(dag_id="canary_ok", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def canary_ok():
    @task
    def hello() -> str:
        return "hello"

    hello()


canary_ok()
