// Command caddy is the Caddy web server with its standard modules, built from the published
// Caddy module (as Caddy's own cmd/caddy is) so that Sluice's data-plane tests need no
// downloaded binary. Caddy is a dependency here rather than the main module, so `caddy version`
// reports the version go.mod pins.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// The standard modules: the HTTP app, reverse_proxy, matchers, static_response, …
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() { caddycmd.Main() }
