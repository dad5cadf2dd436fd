package main

import (
	"testing"

	"github.com/odohd/odoh/internal/flagdoc"
)

// TestREADMEReference: the README's table of odoh-target's flags and environment
// variables is the one these flag definitions give (make docs rewrites it).
func TestREADMEReference(t *testing.T) {
	rows, err := flagdoc.Rows(newFlagSet(&config{}), "ODOH_TARGET", nil)
	flagdoc.CheckREADME(t, "../../README.md", "odoh-target", rows, err)
}
