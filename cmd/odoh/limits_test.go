package main

import (
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
	limitsdoc.CheckFlags(t, stub, "stub", commands()["stub"].doc.Flags)
}
