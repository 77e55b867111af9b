// Package lint proves that the repository's golangci-lint configuration (.golangci.yml, run by
// `make lint`) enforces what it claims: its test plants a wrong import and a read of the clock
// in a copy of the tree and checks that each is reported by the linter meant to catch it.
package lint
