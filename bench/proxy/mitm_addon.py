"""mitmproxy addon for the egressgate proxy benchmark (bench/proxy, issue 11).

Does what egressgate does to a request on an intercepted route: removes the
agent's own credential headers (authorization, proxy-authorization,
x-api-key), then injects the host's token as `Authorization: Bearer ...`.
It also sends the bench host to the loopback upstream (bench_upstream), the
way egressgate's route `upstream.address` does: the host never resolves.
"""

from mitmproxy import ctx, http
from mitmproxy.proxy import server_hooks

STRIPPED = ("authorization", "proxy-authorization", "x-api-key")


class BenchInject:
    def __init__(self) -> None:
        self.authorization = ""
        self.host = ""
        self.address: tuple[str, int] | None = None

    def load(self, loader) -> None:
        loader.add_option("bench_token_file", str, "", "file holding the host token")
        loader.add_option("bench_upstream", str, "", "HOST=IP:PORT: where HOST is served")

    def configure(self, updated) -> None:
        if "bench_token_file" in updated and ctx.options.bench_token_file:
            with open(ctx.options.bench_token_file, encoding="utf-8") as f:
                self.authorization = "Bearer " + f.read().strip()
        if "bench_upstream" in updated and ctx.options.bench_upstream:
            self.host, _, addr = ctx.options.bench_upstream.partition("=")
            ip, _, port = addr.rpartition(":")
            self.address = (ip, int(port))

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        # The SNI and the certificate check stay on the host name; only
        # the address dialled changes.
        if self.address and data.server.address and data.server.address[0] == self.host:
            data.server.address = self.address

    def request(self, flow: http.HTTPFlow) -> None:
        for name in STRIPPED:
            if name in flow.request.headers:
                del flow.request.headers[name]
        if flow.request.pretty_host == self.host:
            # Fail closed, as egressgate does, if the token is missing.
            if not self.authorization:
                flow.response = http.Response.make(503, b"no host token\n")
                return
            flow.request.headers["authorization"] = self.authorization


addons = [BenchInject()]
