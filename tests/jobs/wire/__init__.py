"""Azure ML on the wire: the real MLClient, through its own azure-core transport, against a fake service.

azure-core's RequestsTransport runs as it does against Azure; only requests' HTTPAdapter.send, the last
step before a socket, is replaced (`wire` in fixtures.py), so the SDK's pipeline (its retry policy
honouring Retry-After, bearer-token policy, LRO polling, deserialisation, error mapping) is all real.
The answers are shaped after Microsoft's recorded sessions of azure-ai-ml's own e2e tests
(Azure/azure-sdk-assets, python/sdk/ml/azure-ai-ml/tests/recordings/); service.py names the recording
beside each answer.
"""
