"""Written for Airflow 2: the names below moved or went away in Airflow 3 (ruff AIR3 finds them)."""

from datetime import datetime

from airflow import DAG
from airflow.operators.dummy import DummyOperator
from airflow.operators.python import PythonOperator


def build_segments() -> None:
    print("segments built")


with DAG("customer_360_segments", schedule_interval="@daily", start_date=datetime(2024, 1, 1),
         catchup=False) as dag:
    start = DummyOperator(task_id="start")
    segments = PythonOperator(task_id="segments", python_callable=build_segments)
    start >> segments
