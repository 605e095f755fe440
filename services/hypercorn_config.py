"""hypercorn's settings for a Restate deployment, as the Restate SDK's own harness sets them:

    hypercorn services.app:app --config python:services.hypercorn_config --bind 0.0.0.0:9080

restate-server keeps one HTTP/2 connection to a deployment and runs every invocation
attempt as a stream on it. hypercorn's defaults would close that connection after 1,000
streams (`keep_alive_max_requests`), refuse more than 100 streams at once
(`h2_max_concurrent_streams`) and drop it after 5 s idle (`keep_alive_timeout`); Restate
then reconnects, or waits for a stream. `python -m services`, `LocalRestate` and `make run`
serve with these.
"""

#: never close the connection for having served many streams
keep_alive_max_requests = 2**31 - 1
#: as many concurrent invocation attempts as Restate sends
h2_max_concurrent_streams = 2**31 - 1
#: an idle connection stays open for the next invocation
keep_alive_timeout = 2**31 - 1
