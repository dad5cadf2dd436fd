package main

import (
	"io"
	"testing"

	"github.com/odohd/odoh/internal/flagdoc"
)

// TestREADMEReference: the usage text documents every flag the CLI defines
// and no other, and the README's table of them is current (make docs
// rewrites it).
func TestREADMEReference(t *testing.T) {
	var o options
	rows, err := flagdoc.Rows(newFlagSet(&o, io.Discard), "ODOH", flagdoc.UsageText(usage))
	flagdoc.CheckREADME(t, "../../README.md", "odoh", rows, err)
}
