package main

import (
	"flag"
	"io"
	"os"
	"strings"
)

// envPrefix is prepended to the upper-cased, underscored flag name.
const envPrefix = "SESSIONSTORE_"

// envName returns the variable that can set a flag: bolt-path → SESSIONSTORE_BOLT_PATH.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills every flag not given on the command line from its
// environment variable.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = &envError{name: envName(f.Name), err: e}
			}
		}
	})
	return err
}

type envError struct {
	name string
	err  error
}

func (e *envError) Error() string { return "invalid " + e.name + ": " + e.err.Error() }
