// Command caddy is Caddy with its standard modules and lro_cancel.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/lro-cancel/lro_cancel"
)

func main() {
	caddycmd.Main()
}
