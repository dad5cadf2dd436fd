package cli

import "strings"

// Strings is a flag.Value collecting a list of strings. Each use of the
// flag adds to the list, and each value may itself be a comma-separated
// list, so "-allow-target a -allow-target b,c" and the environment value
// "a,b,c" both give [a b c]. Blank items are dropped and spaces around
// items trimmed. Start it empty and fill in defaults after parsing.
type Strings []string

// String returns the items joined with commas.
func (s *Strings) String() string {
	if s == nil {
		return ""
	}
	return strings.Join(*s, ",")
}

// Set appends the comma-separated items of v.
func (s *Strings) Set(v string) error {
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*s = append(*s, item)
		}
	}
	return nil
}
