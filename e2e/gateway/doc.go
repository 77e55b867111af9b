// Package gateway is a small Gateway API data plane for the local control plane: it runs a real
// proxy, Caddy (built from github.com/caddyserver/caddy/v2 by e2e/tools/caddy), on loopback and
// keeps it routing as one HTTPRoute says, so that a test can send real traffic through the
// weights a router wrote and count where it lands, instead of only reading the weights back.
//
//	API server ──poll 200 ms──▶ Gateway ──POST /load (admin API, 127.0.0.1)──▶ Caddy
//	 HTTPRoute, Services, pods                                                 │ reverse_proxy,
//	                                                                           │ weighted_round_robin
//	test ── GET / ──▶ Caddy listener (127.0.0.1:port) ──────────────────────────▶ <pod IP>:<port>
//	                                                           (a demoapp.Fleet server, say)
//
// Every 200 ms the gateway reads the HTTPRoute (gateway.networking.k8s.io/v1), the Services of
// its namespace and their pods, renders a Caddy JSON config and, when it differs from the one
// Caddy runs, pushes it through Caddy's admin API. Polling keeps it level-based: what Caddy
// runs is always a function of what the API server held at the last poll.
//
// # What is honoured
//
//   - Rules, in the Gateway API's precedence: a match with more header conditions is tried
//     first, then the HTTPRoute's order. A request matching no rule gets 404.
//   - Header matches, Exact (compared in full, case-sensitively; the name case-insensitively)
//     and RegularExpression (RE2, matched against the whole value, as Envoy-based
//     implementations do: "^v" matches only "v", not "v2"). All of a match's headers must
//     match; any of a rule's matches selects the rule.
//   - backendRefs to Services of the route's namespace, by port. A backendRef of weight W with
//     n ready endpoints becomes n Caddy upstreams of weight W/n each (integers in lowest terms;
//     see spreadWeights), balanced by Caddy's weighted_round_robin, so the weights are real
//     proxy weights. A backendRef of weight 0 gets no upstream. A backendRef with a weight but
//     no ready endpoint keeps its share, answered with 503 by a second Caddy listener, as a
//     Gateway API implementation answers for a backend without endpoints. A rule whose
//     backendRefs all have weight 0, or that has none, answers 503.
//
// Endpoints are computed from pods, not read from EndpointSlices: the API server refuses
// loopback addresses in EndpointSlices (and Endpoints), and the local control plane's pods all
// have one (127.x.y.z), so their Services have no endpoints. The gateway lists what the
// EndpointSlice controller would: pods matched by the Service's selector that are Running,
// Ready and not terminating (Running ones with publishNotReadyAddresses), at the Service port's
// targetPort (a number, a container port name, or the port itself).
//
// # What is not
//
// Hostnames and parentRefs are ignored: the gateway serves the one named HTTPRoute on its own
// listener, whatever the Host header. RequestMirror filters are ignored (no copy of the
// request is sent). Path matches other than PathPrefix "/" (the API's default), method and
// query matches, other filters, backend filters and backends that are not Services of the
// route's namespace are refused: the gateway keeps the previous config and reports the error
// through Err and the log, rather than send requests where the route does not. (Query matches
// would need a CEL expression matcher: Caddy's query matcher treats "*" as a wildcard and its
// vars_regexp matcher ORs the variables it tests.)
//
// Caddy listens on 127.0.0.1 only (admin API, the route's listener and the 503 listener, each on
// a free port), keeps its state in a temporary dir (removed by Stop) and writes its output, with
// the gateway's own "gateway:" lines, to LogPath, which a failing test can print with Log.
package gateway
