"""Schemathesis hooks for api_fuzz.py: keep every request on this machine.

The admin API's assignments name model URIs, and the host downloads http(s), hf and s3 URIs. A generated URI could
name any host on the internet, so each one is pointed at 127.0.0.1 (port 9, where nothing listens: the model fails
at once with a clear reason) before the request is sent. Strings stay strings, so a case stays as valid or as
invalid as it was generated.
"""

import schemathesis

# the schemes the host fetches over the network (ModelFetcher lower-cases the URI before it compares)
_REMOTE = ("http://", "https://", "hf://", "s3://")
_LOCAL = "http://127.0.0.1:9/api-fuzz.gguf"


def _localize(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "uri" and isinstance(value, str) and value.lower().startswith(_REMOTE):
                node[key] = _LOCAL
            else:
                _localize(value)
    elif isinstance(node, list):
        for item in node:
            _localize(item)


@schemathesis.hook
def before_call(context, case, kwargs):
    _localize(case.body)
