package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/api"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/console"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/crypto"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/bolt"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/sweep"
)

// minTokenLen matches the plugin's rule for storeToken.
const minTokenLen = 32

type serveConfig struct {
	listen, token, encryptionKey, logLevel string
	store                                  backendFlags
	sweepInterval, shutdownTimeout         time.Duration
	sweepBatch                             int
	changeRetention                        time.Duration
	changeMax                              int64
	auditRetention                         time.Duration
	consoleListen, consoleToken            string
}

func parseServe(args []string, stderr io.Writer) (*serveConfig, error) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("sessionstore", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8181", "address to listen on")
	fs.StringVar(&c.token, "token", "", "bearer token the plugin presents (required, >= 32 bytes)")
	c.store.register(fs)
	fs.StringVar(&c.encryptionKey, "encryption-key", "", "base64 32-byte key encrypting stored Strapi credentials (required)")
	fs.DurationVar(&c.sweepInterval, "sweep-interval", 30*time.Second, "how often expired records are deleted")
	fs.IntVar(&c.sweepBatch, "sweep-batch", 1000, "expired records of each kind deleted per transaction")
	fs.DurationVar(&c.changeRetention, "change-retention", 10*time.Minute, "how long change-feed records (GET /v1/changes) are kept")
	fs.Int64Var(&c.changeMax, "change-max", 200_000, "at most this many change-feed records are kept")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may finish on SIGTERM")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug | info | warn | error")
	fs.DurationVar(&c.auditRetention, "audit-retention", 720*time.Hour, "how long audit events (GET /v1/audit, the console) are kept")
	fs.StringVar(&c.consoleListen, "console-listen", "", "address of the operator console, e.g. 127.0.0.1:8282 (off when empty)")
	fs.StringVar(&c.consoleToken, "console-token", "", "credential to sign in to the console (>= 32 bytes; required with --console-listen)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, errors.New("unexpected argument " + fs.Arg(0))
	}
	return c, nil
}

func runServe(args []string, stderr io.Writer) int {
	cfg, err := parseServe(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return failf(stderr, exitUsage, "%v", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return failf(stderr, exitUsage, "--log-level must be debug, info, warn or error")
	}
	if err := cfg.store.check(); err != nil {
		return failf(stderr, exitUsage, "%v", err)
	}
	if len(cfg.token) < minTokenLen {
		return failf(stderr, exitUsage, "--token (SESSIONSTORE_TOKEN) is required and must be at least %d bytes", minTokenLen)
	}
	key, err := crypto.ParseKey(cfg.encryptionKey)
	if err != nil {
		return failf(stderr, exitUsage, "--encryption-key (SESSIONSTORE_ENCRYPTION_KEY): %v (generate one with: openssl rand -base64 32)", err)
	}
	sealer, err := crypto.New(key)
	if err != nil {
		return failf(stderr, exitUsage, "--encryption-key: %v", err)
	}
	if cfg.sweepInterval <= 0 || cfg.sweepBatch <= 0 {
		return failf(stderr, exitUsage, "--sweep-interval and --sweep-batch must be positive")
	}
	if cfg.changeRetention <= 0 || cfg.changeMax <= 0 {
		return failf(stderr, exitUsage, "--change-retention and --change-max must be positive")
	}
	if cfg.auditRetention <= 0 {
		return failf(stderr, exitUsage, "--audit-retention must be positive")
	}
	if cfg.consoleListen != "" && len(cfg.consoleToken) < console.MinTokenLen {
		return failf(stderr, exitUsage, "--console-listen needs --console-token (SESSIONSTORE_CONSOLE_TOKEN) of at least %d bytes", console.MinTokenLen)
	}
	if cfg.consoleListen != "" && cfg.consoleToken == cfg.token {
		return failf(stderr, exitUsage, "--console-token must differ from --token")
	}

	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	// Mongo waits up to 30s for the database (and its indexes), interruptible by a signal; after
	// start every call has its own timeout and an unreachable database answers 503 until it is back.
	startCtx, stopStart := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	backend, err := openBackend(startCtx, &cfg.store, openOptions{lockTimeout: 5 * time.Second, log: log})
	stopStart()
	if errors.Is(err, bolt.ErrLocked) {
		return failf(stderr, exitError, "%s is locked: another sessionstore is using it", cfg.store.boltPath)
	}
	if err != nil {
		return failf(stderr, exitError, "%v", err)
	}
	if err := serve(cfg, backend, sealer, log); err != nil {
		log.Error("server stopped", "err", err)
		return exitError
	}
	return exitOK
}

// serve runs until SIGINT/SIGTERM, then drains in-flight requests, stops the sweeper and closes
// the backend (in that order: requests may still write).
func serve(cfg *serveConfig, backend store.Backend, sealer *crypto.Sealer, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	reg := prometheus.NewRegistry()
	metrics := api.NewMetrics(reg, backend)
	handler := api.New(api.Config{Backend: backend, Sealer: sealer, Token: cfg.token, Registry: reg, Metrics: metrics, Logger: log})

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		_ = backend.Close()
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Change-feed long-polls answer at once on shutdown instead of holding it up.
	srv.RegisterOnShutdown(handler.Shutdown)
	consoleSrv, err := startConsole(cfg, backend, handler, log)
	if err != nil {
		_ = ln.Close()
		_ = backend.Close()
		return err
	}

	sweepCtx, stopSweep := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	sweeper := &sweep.Sweeper{Backend: backend, Interval: cfg.sweepInterval, Batch: cfg.sweepBatch, Logger: log, OnSweep: metrics.OnSweep,
		ChangeRetention: cfg.changeRetention, ChangeMax: cfg.changeMax, AuditRetention: cfg.auditRetention}
	wg.Go(func() { sweeper.Run(sweepCtx) })

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", append([]any{"addr", ln.Addr().String()}, cfg.store.logAttrs()...)...)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-serveErr:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("in-flight requests cut off", "err", err)
	}
	if consoleSrv != nil {
		_ = consoleSrv.Shutdown(shutdownCtx)
	}
	stopSweep()
	wg.Wait()
	if err := backend.Close(); err != nil {
		return err
	}
	log.Info("stopped")
	if errors.Is(runErr, http.ErrServerClosed) {
		return nil
	}
	return runErr
}
