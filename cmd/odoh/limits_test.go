package main

import (
	"io"
	"strings"
	"testing"

	"github.com/odohd/odoh/internal/limitsdoc"
)

// TestLimitsTable: the README's limits table matches the stub's flags
// (the rows marked "stub"; "both" are the daemons' server flags).
func TestLimitsTable(t *testing.T) {
	var stub []limitsdoc.Row
	for _, r := range limitsdoc.ReadTable(t, "../../README.md") {
		if r.Daemon == "stub" {
			stub = append(stub, r)
		}
	}
	var usage strings.Builder
	fs := newFlagSet(&options{}, io.Discard)
	fs.SetOutput(&usage)
	fs.PrintDefaults()
	limitsdoc.Check(t, stub, "stub", usage.String())
}
