package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvName returns the environment variable that ApplyEnv reads for the
// flag name under prefix: "ODOH_TARGET" and "seed-file" give
// "ODOH_TARGET_SEED_FILE" (upper case, dashes and dots become underscores).
func EnvName(prefix, name string) string {
	n := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
	if prefix == "" {
		return n
	}
	return prefix + "_" + n
}

// ApplyEnv sets every flag of fs that was not given on the command line
// from its environment variable (see EnvName), if that variable is set and
// not empty. Call it after fs.Parse. A value the flag rejects is an error
// naming the variable; all such errors are returned together.
// For a Strings flag the variable holds a comma-separated list.
func ApplyEnv(fs *flag.FlagSet, prefix string) error {
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		env := EnvName(prefix, f.Name)
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("invalid value %q for environment variable %s (flag -%s): %w", v, env, f.Name, err))
		}
	})
	return errors.Join(errs...)
}
