// Command ferretdb runs FerretDB v1 (embedded, SQLite backend) as a MongoDB wire-protocol server for
// the tests, the benchmarks and the e2e suite of Strapi Access Proxy. It is a separate module so that
// FerretDB's dependencies never enter the session store's go.mod.
//
//	ferretdb --listen 127.0.0.1:27017 --data-dir ./ferretdata [--log-level warn]
//
// It prints "ferretdb listening on <addr>" on stdout once the listener accepts connections and runs
// until SIGINT/SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on (host:port)")
	dataDir := flag.String("data-dir", "./ferretdata", "directory of the SQLite databases (created)")
	level := flag.String("log-level", "warn", "debug, info, warn or error (logs on stderr)")
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb: bad --log-level:", err)
		os.Exit(2)
	}
	dir, err := filepath.Abs(*dataDir)
	if err == nil {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb: data dir:", err)
		os.Exit(1)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()

	// Announce readiness once the port accepts connections.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", *listen, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			fmt.Printf("ferretdb listening on %s\n", *listen)
			break
		}
		select {
		case <-done:
			fmt.Fprintln(os.Stderr, "ferretdb: stopped before listening (port in use?)")
			os.Exit(1)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "ferretdb: not listening after 30s")
			os.Exit(1)
		}
	}
	<-done
}
