package main

import (
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/api"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/console"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// startConsole serves the operator console on --console-listen (nil, nil when it is off).
func startConsole(cfg *serveConfig, backend store.Backend, handler *api.Server, log *slog.Logger) (*http.Server, error) {
	if cfg.consoleListen == "" {
		return nil, nil
	}
	c, err := console.New(console.Config{Backend: backend, Token: cfg.consoleToken, Logger: log, Recorded: handler.Recorded})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.consoleListen)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           c,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { _ = srv.Serve(ln) }()
	log.Info("console listening", "addr", ln.Addr().String())
	return srv, nil
}
