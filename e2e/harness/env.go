package harness

// An Env owns a working directory and the processes started in it, and makes sure they all end:
// with the test, or on a signal to the test binary.

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Env owns a working directory and the processes started in it. Close stops them all.
type Env struct {
	Dir  string
	Logf func(format string, args ...any)

	mu     sync.Mutex
	procs  []*Proc
	closed bool
	extra  []func() // other resources (fake servers) closed with the env
}

// NewEnv makes an environment rooted at dir (created if missing).
func NewEnv(dir string, logf func(string, ...any)) (*Env, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	e := &Env{Dir: dir, Logf: logf}
	registerEnv(e)
	return e, nil
}

// TB is the part of testing.TB the harness needs.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
}

// ForTest makes an env in the test's temp dir; when the test ends (pass, fail or panic) every process
// is stopped, and on failure every log file is printed.
func ForTest(t TB) *Env {
	t.Helper()
	e, err := NewEnv(t.TempDir(), t.Logf)
	if err != nil {
		t.Fatalf("harness env: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			e.DumpLogs(func(s string) { t.Logf("%s", s) })
		}
		e.Close()
	})
	return e
}

// OnClose registers f to run when the env closes (after its processes are stopped).
func (e *Env) OnClose(f func()) {
	e.mu.Lock()
	e.extra = append(e.extra, f)
	e.mu.Unlock()
}

// Close stops every process of the env (SIGTERM to its group, SIGKILL after a grace period).
func (e *Env) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	procs := append([]*Proc(nil), e.procs...)
	extra := e.extra
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func(p *Proc) { defer wg.Done(); p.Stop(5 * time.Second) }(p)
	}
	wg.Wait()
	for i := len(extra) - 1; i >= 0; i-- {
		extra[i]()
	}
	unregisterEnv(e)
}

// killAll is the emergency path (signal): SIGKILL to every group, no waiting.
func (e *Env) killAll() {
	e.mu.Lock()
	procs := append([]*Proc(nil), e.procs...)
	e.mu.Unlock()
	for _, p := range procs {
		p.signalGroup(syscall.SIGKILL)
	}
}

// DumpLogs passes each process log (its last 200 lines) to out.
func (e *Env) DumpLogs(out func(string)) {
	e.mu.Lock()
	procs := append([]*Proc(nil), e.procs...)
	e.mu.Unlock()
	seen := map[string]bool{}
	for _, p := range procs {
		if seen[p.LogPath] {
			continue
		}
		seen[p.LogPath] = true
		out(fmt.Sprintf("===== %s log (%s) =====\n%s", p.Name, p.LogPath, tailFile(p.LogPath, 200)))
	}
}

func tailFile(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// OnSignal, when set before the first env is made, replaces the default reaction to SIGINT/SIGTERM/
// SIGHUP (SIGKILL every process, exit 130): the demo uses it to stop everything gracefully.
var OnSignal func(os.Signal)

var (
	envsMu     sync.Mutex
	envs       = map[*Env]bool{}
	signalOnce sync.Once
)

func registerEnv(e *Env) {
	envsMu.Lock()
	envs[e] = true
	envsMu.Unlock()
	signalOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		go func() {
			sig := <-ch
			if OnSignal != nil {
				OnSignal(sig)
				return
			}
			fmt.Fprintf(os.Stderr, "\nharness: %v: stopping every started process\n", sig)
			KillAll()
			os.Exit(130)
		}()
	})
}

func unregisterEnv(e *Env) {
	envsMu.Lock()
	delete(envs, e)
	envsMu.Unlock()
}

// KillAll SIGKILLs every process of every open env.
func KillAll() {
	envsMu.Lock()
	list := make([]*Env, 0, len(envs))
	for e := range envs {
		list = append(list, e)
	}
	envsMu.Unlock()
	for _, e := range list {
		e.killAll()
	}
}
