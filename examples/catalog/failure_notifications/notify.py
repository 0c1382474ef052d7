"""`notify_failure`: an on_failure_callback for Slack and email. Not a DAG: a module other DAGs import."""

from __future__ import annotations


def describe(context) -> str:
    ti = context["task_instance"]
    return f":red_circle: {ti.dag_id}.{ti.task_id} failed (try {ti.try_number}): {ti.log_url}"


def notify_failure(context) -> None:
    from airflow.sdk import Variable

    text = describe(context)
    try:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        SlackWebhookHook(slack_webhook_conn_id="slack_alerts").send(text=text)
    except Exception as error:  # an alert must never hide the failure it reports
        print(f"Slack alert not sent: {error}")
    address = Variable.get("ALERT_EMAIL", default=None)
    if address:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        with SmtpHook() as smtp:
            smtp.send_email_smtp(to=address, subject=text[:120], html_content=text)
