package main

import "strings"

// urlList is a repeatable flag of URLs or URI templates. Like cli.Strings it
// accepts comma-separated lists (as ODOH_PROXY=a,b), but it never splits
// inside an RFC 6570 expression, whose variables are separated by commas
// too ({?targethost,targetpath}).
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

// Set appends the items of v, split at commas outside braces.
func (l *urlList) Set(v string) error {
	depth, start := 0, 0
	for i := 0; i <= len(v); i++ {
		if i < len(v) {
			switch v[i] {
			case '{':
				depth++
				continue
			case '}':
				depth--
				continue
			case ',':
				if depth > 0 {
					continue
				}
			default:
				continue
			}
		}
		if s := strings.TrimSpace(v[start:i]); s != "" {
			*l = append(*l, s)
		}
		start = i + 1
	}
	return nil
}
