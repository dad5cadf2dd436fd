package daemon_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/odohd/odoh/internal/clidoc"
	"github.com/odohd/odoh/internal/daemon"
)

// A daemon's run: its own flags next to the server flags, its own handler
// and what it reloads on SIGHUP besides the certificate.
func Example() {
	run := func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		var flags daemon.ServerFlags
		fs := daemon.NewFlagSet("odoh-echo")
		flags.AddFlags(fs, "ODOH_ECHO", "127.0.0.1:9559")
		greeting := fs.String("greeting", "hello", "what to answer")
		doc := &clidoc.Command{Name: "odoh-echo", Usage: []string{"odoh-echo -cert FILE -key FILE"}, Flags: fs,
			Brief: []string{"listen", "greeting"}}
		if err := flags.Parse(fs, args, nil); err != nil {
			return daemon.FlagsError(stdout, stderr, doc, err)
		}
		return flags.Run("odoh-echo", "v0.1.0", stdout, stderr, func(logger *slog.Logger) error {
			d, err := daemon.New(daemon.Config{Flags: &flags, Logger: logger})
			if err != nil {
				return err
			}
			defer d.Close()
			h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, *greeting) })
			return d.Serve(ctx, daemon.Service{Name: "odoh-echo", Version: "v0.1.0", Handler: h,
				LogAttrs: []any{"greeting", *greeting}})
		})
	}
	// Without -cert and -key it refuses to start.
	code := run(context.Background(), []string{"-listen", "127.0.0.1:0"}, os.Stdout, os.Stdout)
	fmt.Println("exit", code)
	// Output:
	// odoh-echo: -cert FILE and -key FILE are required: the TLS certificate chain and its private key, in PEM; run 'odoh-echo -h' for usage
	// exit 2
}
