package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sluice-dev/sluice/cmd/kubectl-sluice/flaggerimport"
	"github.com/sluice-dev/sluice/providers/builtin"
)

// importFlagger converts the Flagger objects of file ("-": stdin) and writes Sluice's to stdout
// and a finding per field without an equivalent to stderr. Only input that cannot be read is an
// error (exit 1): a field Sluice has no equivalent for is a line of the report.
func importFlagger(file string, o options, stdin io.Reader, stdout, stderr io.Writer) int {
	input, err := readInput(file, stdin)
	if err != nil {
		fmt.Fprintln(stderr, "kubectl sluice import:", err)
		return exitFailed
	}
	var deployments []byte
	if o.deployment != "" {
		if deployments, err = os.ReadFile(o.deployment); err != nil {
			fmt.Fprintln(stderr, "kubectl sluice import: --deployment:", err)
			return exitFailed
		}
	}
	res, err := flaggerimport.Convert(input, flaggerimport.Options{
		Deployments: deployments, MeshProvider: o.meshProvider, Routers: builtin.Routers().Catalog(),
	})
	if err != nil {
		fmt.Fprintf(stderr, "kubectl sluice import: %s: %v\n", file, err)
		return exitFailed
	}
	if err := flaggerimport.Write(stdout, res.Objects); err != nil {
		fmt.Fprintln(stderr, "kubectl sluice import:", err)
		return exitFailed
	}
	for _, f := range res.Findings {
		fmt.Fprintln(stderr, f)
	}
	return exitOK
}

func readInput(file string, stdin io.Reader) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(file)
}
