package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/internal/clidoc"
	"github.com/odohd/odoh/odoh"
)

type jsonConfig struct {
	KeyID string `json:"key_id"`
	KEM   string `json:"kem"`
	KDF   string `json:"kdf"`
	AEAD  string `json:"aead"`
	Hex   string `json:"config"`
}

type jsonTarget struct {
	Target  string       `json:"target"`
	MaxAge  int64        `json:"max_age"`
	Configs []jsonConfig `json:"configs"`
	// OHTTPKeys: an OHTTP resolver's gateway keys (Configs is empty).
	OHTTPKeys []jsonOHTTPKey `json:"ohttp_keys,omitempty"`
}

// jsonOHTTPKey is one OHTTP key configuration (RFC 9458 §3.1).
type jsonOHTTPKey struct {
	KeyID     uint8    `json:"key_id"`
	KEM       string   `json:"kem"`
	Symmetric []string `json:"symmetric"`
	Hex       string   `json:"key_config"`
}

func configsCommand() *subcommand {
	fs := newFlagSet("configs")
	var o clientFlags
	o.add(fs, client.DefaultTimeout)
	var jsonOut bool
	fs.BoolVar(&jsonOut, "json", false, "JSON output")
	doc := &clidoc.Command{
		Name:    "configs",
		Usage:   []string{"odoh configs [options]"},
		Summary: "print each target's configs: key id, suite and max-age",
		Intro: "Fetches the configs (public keys) of each -target as a query would, through " +
			"the proxy's tunnel by default, and prints them. Without -proxy they come from " +
			"the target directly: it sees your address, but no query follows. With -ohttp-relay " +
			"and -ohttp-doh it also prints the OHTTP gateway's key configurations, fetched as a " +
			"query fetches them.",
		Flags:     fs,
		Brief:     []string{"proxy", "target", "ca", "json"},
		Short:     shortTexts(map[string]string{"json": "JSON output"}),
		Values:    logValues,
		EnvPrefix: envPrefix,
		Examples: []clidoc.Example{
			{Command: "odoh configs -target odoh.example"},
			{Comment: "pin the key, then fetch configs through the relay alone", Command: "odoh configs -proxy relay.example -target odoh.example -json"},
		},
		More: "Every flag: odoh help configs, or odoh(1).",
	}
	return &subcommand{doc: doc, run: func(e *env, args []string) error {
		if len(args) != 0 {
			return usageErr("configs takes no arguments: give targets with -target")
		}
		if len(o.proxies) == 0 && !o.viaRelay {
			// Fetching configs from the target directly needs no proxy:
			// only the address is exposed, and no query follows.
			o.direct = true
		}
		logs, err := newDeferredLogger(o.log, e.stderr)
		if err != nil {
			return &exitError{2, err}
		}
		err = printConfigs(e, &o, logs, jsonOut)
		logs.flush(err)
		return err
	}}
}

func printConfigs(e *env, o *clientFlags, logs *deferredLogger, jsonOut bool) error {
	c, err := o.newClient(logs.logger)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(e.ctx, o.timeout)
	defer cancel()
	tcs, err := c.Configs(ctx)
	if err != nil {
		return err
	}
	out := []jsonTarget{}
	for _, tc := range tcs {
		jt := jsonTarget{Target: tc.Target, MaxAge: int64(tc.MaxAge / time.Second)}
		for _, cfg := range tc.Configs {
			s := cfg.Suite()
			b, _ := odoh.MarshalConfigs(cfg)
			jt.Configs = append(jt.Configs, jsonConfig{KeyID: hex.EncodeToString(cfg.KeyID()),
				KEM: s.KEM.String(), KDF: s.KDF.String(), AEAD: s.AEAD.String(), Hex: hex.EncodeToString(b)})
		}
		if len(tc.OHTTPKeys) > 0 {
			jt.Configs = []jsonConfig{}
		}
		for _, k := range tc.OHTTPKeys {
			b, _ := k.MarshalBinary()
			jk := jsonOHTTPKey{KeyID: k.KeyID(), KEM: k.KEM().String(), Hex: hex.EncodeToString(b)}
			for _, sym := range k.Symmetric() {
				jk.Symmetric = append(jk.Symmetric, sym.String())
			}
			jt.OHTTPKeys = append(jt.OHTTPKeys, jk)
		}
		out = append(out, jt)
	}
	if jsonOut {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	var b strings.Builder
	for _, jt := range out {
		if len(jt.OHTTPKeys) > 0 {
			fmt.Fprintf(&b, "ohttp %s (max-age %ds)\n", jt.Target, jt.MaxAge)
			for i, k := range jt.OHTTPKeys {
				fmt.Fprintf(&b, "  key %d: key_id %d kem %s symmetric %s\n    hex %s\n", i, k.KeyID, k.KEM, strings.Join(k.Symmetric, ","), k.Hex)
			}
			continue
		}
		fmt.Fprintf(&b, "target %s (max-age %ds)\n", jt.Target, jt.MaxAge)
		for i, c := range jt.Configs {
			fmt.Fprintf(&b, "  config %d: key_id %s suite %s/%s/%s\n    hex %s\n", i, c.KeyID, c.KEM, c.KDF, c.AEAD, c.Hex)
		}
	}
	_, err = fmt.Fprint(e.stdout, b.String())
	return err
}

// jsonStamp is a decoded stamp: the fields its protocol has.
type jsonStamp struct {
	Stamp        string   `json:"stamp"`
	Proto        string   `json:"proto"`
	Props        uint64   `json:"props"`
	Properties   []string `json:"properties"`
	Addr         string   `json:"addr,omitempty"`
	Host         string   `json:"host,omitempty"`
	Path         string   `json:"path,omitempty"`
	URL          string   `json:"url,omitempty"`
	Hashes       []string `json:"hashes,omitempty"`
	Bootstrap    []string `json:"bootstrap,omitempty"`
	PublicKey    string   `json:"public_key,omitempty"`
	ProviderName string   `json:"provider_name,omitempty"`
	// Usable says whether odoh can use the stamp (as -target or -proxy).
	Usable bool `json:"usable"`
}

func stampCommand() *subcommand {
	fs := newFlagSet("stamp")
	var targets, proxies urlList
	var dnssec, nolog, nofilter, jsonOut bool
	fs.Var(&targets, "target", "print the stamp of the target at `URL` (https://HOST[:PORT]/PATH, or HOST[:PORT] for /dns-query; repeatable)")
	fs.Var(&proxies, "proxy", "print the stamp of the proxy at `URL` (https://HOST[:PORT]/PATH, its URI template, or HOST[:PORT] for /dns-query; repeatable)")
	fs.BoolVar(&dnssec, "dnssec", false, "in printed stamps, say that the server validates DNSSEC")
	fs.BoolVar(&nolog, "nolog", false, "in printed stamps, say that the server keeps no logs")
	fs.BoolVar(&nofilter, "nofilter", false, "in printed stamps, say that the server does not filter answers")
	fs.BoolVar(&jsonOut, "json", false, "JSON output")
	doc := &clidoc.Command{
		Name:    "stamp",
		Usage:   []string{"odoh stamp [options] [sdns://…]"},
		Summary: "print DNS stamps for targets and proxies, or decode stamps",
		Intro: "Prints the DNS stamp of each -target and -proxy, and decodes each sdns:// " +
			"argument, of any protocol (DoH, DNSCrypt, …; odoh uses only ODoH stamps).",
		Flags:     fs,
		Brief:     []string{"target", "proxy", "nolog", "json"},
		EnvPrefix: envPrefix,
		Examples: []clidoc.Example{
			{Command: "odoh stamp -target https://odoh.example/dns-query -nolog"},
			{Command: "odoh stamp sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29tCi9kbnMtcXVlcnk"},
		},
		More: "Every flag: odoh help stamp, or odoh(1).",
	}
	return &subcommand{doc: doc, run: func(e *env, args []string) error {
		var props uint64
		if dnssec {
			props |= client.StampDNSSEC
		}
		if nolog {
			props |= client.StampNoLogs
		}
		if nofilter {
			props |= client.StampNoFilter
		}
		return runStamp(e, args, targets, proxies, props, jsonOut)
	}}
}

func runStamp(e *env, args []string, targets, proxies urlList, props uint64, jsonOut bool) error {
	var stamps []client.Stamp
	for _, s := range args {
		st, err := client.DecodeStamp(strings.TrimSpace(s))
		if err != nil {
			return &exitError{1, err}
		}
		stamps = append(stamps, st)
	}
	for _, t := range targets {
		t = expandTarget(t)
		u, err := url.Parse(t)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return usageErr("-target %q: want https://HOST[:PORT]/PATH, such as https://odoh.example/dns-query", t)
		}
		path := u.EscapedPath()
		if path == "" {
			path = odoh.QueryPath
		}
		stamps = append(stamps, client.Stamp{Proto: client.StampODoHTarget, Props: props, Host: u.Host, Path: path})
	}
	for _, p := range proxies {
		p = expandProxy(p)
		// A relay stamp holds host and path only; clients add the query.
		base := p
		if i := strings.Index(p, "{?"); i >= 0 && strings.HasSuffix(p, "}") {
			base = p[:i]
		}
		if strings.ContainsAny(base, "{}") {
			return usageErr("-proxy %q: a relay stamp can only express the query form {?targethost,targetpath}", p)
		}
		u, err := url.Parse(base)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
			return usageErr("-proxy %q: want https://HOST[:PORT]/PATH, such as https://relay.example/dns-query", p)
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		stamps = append(stamps, client.Stamp{Proto: client.StampODoHRelay, Props: props, Host: u.Host, Path: path})
	}
	if len(stamps) == 0 {
		return usageErr("stamp needs -target URL, -proxy URL or sdns:// arguments to decode")
	}
	out := []jsonStamp{}
	for i, st := range stamps {
		enc := ""
		usable := st.Proto == client.StampODoHTarget || st.Proto == client.StampODoHRelay
		if i < len(args) {
			enc = strings.TrimSpace(args[i])
		} else {
			var err error
			if enc, err = st.Encode(); err != nil {
				return usageErr("%s %s: %w", st.Proto, st.URL(), err)
			}
		}
		js := jsonStamp{Stamp: enc, Proto: protoID(st.Proto), Props: st.Props, Properties: propNames(st.Props),
			Addr: st.Addr, Host: st.Host, Path: st.Path, Bootstrap: st.Bootstrap, ProviderName: st.ProviderName, Usable: usable}
		if st.Host != "" && st.Path != "" {
			js.URL = st.URL()
		}
		for _, h := range st.Hashes {
			js.Hashes = append(js.Hashes, hex.EncodeToString(h))
		}
		if len(st.PublicKey) > 0 {
			js.PublicKey = hex.EncodeToString(st.PublicKey)
		}
		out = append(out, js)
	}
	if jsonOut {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	var b strings.Builder
	for _, s := range out {
		where := s.URL
		if where == "" {
			where = strings.TrimSpace(s.Host + " " + s.Addr)
		}
		fmt.Fprintf(&b, "%s\t%s\t%s", s.Proto, where, s.Stamp)
		if len(s.Properties) > 0 {
			fmt.Fprintf(&b, "\t%s", strings.Join(s.Properties, ","))
		}
		if !s.Usable {
			b.WriteString("\t(not ODoH: odoh cannot use it)")
		}
		b.WriteString("\n")
	}
	_, err := fmt.Fprint(e.stdout, b.String())
	return err
}

// protoID names a stamp protocol for scripts: odoh-target, odoh-relay,
// doh, dot, doq, dnscrypt, dnscrypt-relay or plain.
func protoID(p client.StampProto) string {
	return strings.NewReplacer(" ", "-", "plain-dns", "plain").Replace(strings.ToLower(p.String()))
}

// propNames names a stamp's property bits.
func propNames(p uint64) []string {
	out := []string{}
	for _, n := range []struct {
		bit  uint64
		name string
	}{{client.StampDNSSEC, "dnssec"}, {client.StampNoLogs, "nolog"}, {client.StampNoFilter, "nofilter"}} {
		if p&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

func keygenCommand() *subcommand {
	fs := newFlagSet("keygen")
	var out string
	var force bool
	fs.StringVar(&out, "out", "", "write the seed to `FILE` (or give FILE as the argument)")
	fs.BoolVar(&force, "force", false, "overwrite FILE if it exists")
	doc := &clidoc.Command{
		Name:    "keygen",
		Usage:   []string{"odoh keygen [-force] FILE", "odoh keygen -out FILE [-force]"},
		Summary: "write a new 32-byte target seed file (mode 0600)",
		Intro: "Writes 32 random bytes to FILE, readable by its owner only: the seed from " +
			"which odoh-target derives its keys. Give every replica of a target the same seed.",
		Flags: fs,
		Brief: []string{"out", "force"},
		Examples: []clidoc.Example{
			{Command: "odoh keygen /etc/odoh/seed"},
		},
	}
	return &subcommand{doc: doc, run: func(e *env, args []string) error {
		switch {
		case len(args) == 1 && out == "":
			out = args[0]
		case len(args) > 0 || out == "":
			return usageErr("keygen wants one FILE to write (or -out FILE)")
		}
		return keygen(e, out, force)
	}}
}

func keygen(e *env, out string, force bool) error {
	seed := make([]byte, odoh.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(out, flags, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists: give -force to overwrite it (every replica of the target must then get the new seed)", out)
		}
		return err
	}
	// An existing file keeps its mode with O_TRUNC: tighten it.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(seed); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// No key ID to show: odoh-target derives a new key from the seed for
	// every rotation period.
	fmt.Fprintf(e.stdout, "wrote %s (32-byte seed, mode 0600): give it to every odoh-target replica with -seed-file\n", out)
	return nil
}
