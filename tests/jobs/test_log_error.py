"""The line a failed deployment's log is summed up by: the script's own error, not the server's wrapper."""

from jobs.errors import log_error

# The shape azmlinfsrv 1.5 writes when init() raises (a chained traceback, then the shutdown lines).
SERVER_LOG = """\
2026-11-29 13:01:02,000 I [12] azmlinfsrv - Starting up app insights client
Traceback (most recent call last):
  File "/app/score.py", line 95, in init
    raise ModelLoadError(f"the model expects columns the request schema does not have: {unknown}")
score.ModelLoadError: the model expects columns the request schema does not have: ['patient_id']

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File ".../azureml_inference_server_http/server/user_script.py", line 117, in invoke_init
    raise UserScriptException(ex) from ex
azureml_inference_server_http.server.user_script.UserScriptException: Caught an unhandled exception from the user script
2026-11-29 13:01:03,000 I [12] gunicorn.error - Worker exiting (pid: 12)
"""


def test_the_scripts_own_error_wins_over_the_servers_wrapper():
    assert log_error(SERVER_LOG) == (
        "ModelLoadError: the model expects columns the request schema does not have: ['patient_id']"
    )


def test_a_log_naming_only_the_wrapper_still_says_something():
    only_wrapper = SERVER_LOG.split("The above exception")[1]
    assert log_error(only_wrapper) == "UserScriptException: Caught an unhandled exception from the user script"


def test_the_last_error_of_a_plain_log_and_none_without_one():
    assert log_error("x\nModuleNotFoundError: No module named 'azureml.automl'\nbye") == (
        "ModuleNotFoundError: No module named 'azureml.automl'"
    )
    assert log_error("all good\n") is None
