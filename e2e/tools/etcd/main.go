// Command etcd is the etcd server, built from the published etcd server module so that
// Sluice's local control plane needs no downloaded binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
