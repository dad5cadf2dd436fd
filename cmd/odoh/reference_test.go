package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/odohd/odoh/internal/flagdoc"
)

// TestREADMEReference: the README's table of the CLI's flags is the one
// the subcommands' flag definitions give (make docs rewrites it). A flag
// that several subcommands share, alike, is one row naming them all.
func TestREADMEReference(t *testing.T) {
	cmds := commands()
	var rows []flagdoc.Row
	for _, name := range order {
		doc := cmds[name].doc
		if doc.Flags == nil {
			continue
		}
		rs, err := flagdoc.Rows(doc.Flags, doc.EnvPrefix, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if doc.EnvPrefix == "" {
				r.Env = "" // keygen reads no environment
			}
			i := slices.IndexFunc(rows, func(o flagdoc.Row) bool {
				return o.Flag == r.Flag && o.Env == r.Env && o.Default == r.Default && o.Usage == r.Usage
			})
			if i >= 0 {
				rows[i].Section += ", " + name
				continue
			}
			r.Section = name
			rows = append(rows, r)
		}
	}
	slices.SortStableFunc(rows, func(a, b flagdoc.Row) int {
		if c := strings.Compare(a.Section, b.Section); c != 0 {
			return c
		}
		return strings.Compare(a.Flag, b.Flag)
	})
	flagdoc.CheckREADME(t, "../../README.md", "odoh", rows, nil)
}
