package main

import (
	"testing"

	"github.com/odohd/odoh/internal/flagdoc"
)

// TestREADMEReference: the README's table of odoh-proxy's flags and environment
// variables is the one these flag definitions give (make docs rewrites it).
func TestREADMEReference(t *testing.T) {
	rows, err := flagdoc.Rows(newFlagSet(&config{}), "ODOH_PROXY", nil)
	flagdoc.CheckREADME(t, "../../README.md", "odoh-proxy", rows, err)
}
