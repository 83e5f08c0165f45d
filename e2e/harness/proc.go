// Package harness starts the real parts of Strapi Access Proxy (Traefik with the plugin loaded as a
// local plugin, the sessionstore binary, a real Strapi 5 or a fake one) as processes on 127.0.0.1,
// each on a free port, each logging to a file, and stops every one of them whatever happens.
package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Proc is one started process, in its own process group, its output appended to LogPath.
type Proc struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	logFile *os.File
}

// ProcSpec says how to start a process.
type ProcSpec struct {
	Name string
	Path string
	Args []string
	Dir  string
	Env  []string // added to os.Environ()
	Log  string   // log file (appended); default Env.Dir/<name>.log
}

// Start starts a process and registers it with the env.
func (e *Env) Start(spec ProcSpec) (*Proc, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, errors.New("env closed")
	}
	logPath := spec.Log
	if logPath == "" {
		logPath = filepath.Join(e.Dir, spec.Name+".log")
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "----- %s start %s: %s %s\n", spec.Name, time.Now().Format(time.RFC3339Nano), spec.Path, strings.Join(spec.Args, " "))
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout = f
	cmd.Stderr = f
	// Own process group (so the whole tree can be signalled), and killed by the kernel should this
	// process die without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p := &Proc{Name: spec.Name, LogPath: logPath, cmd: cmd, done: make(chan struct{}), logFile: f}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(f, "----- %s exited %s: %v\n", spec.Name, time.Now().Format(time.RFC3339Nano), p.err)
		f.Close()
		close(p.done)
	}()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p, nil
}

// Pid of the process.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited says whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the wait error once exited.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

func (p *Proc) signalGroup(sig syscall.Signal) {
	if p.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Kill sends SIGKILL to the process group and waits for the process.
func (p *Proc) Kill() {
	p.signalGroup(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *Proc) Stop(grace time.Duration) {
	if p.Exited() {
		p.signalGroup(syscall.SIGKILL) // leftovers of the group, if any
		return
	}
	p.signalGroup(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.signalGroup(syscall.SIGKILL)
		<-p.done
	}
	p.signalGroup(syscall.SIGKILL)
}

// Log returns the process log so far.
func (p *Proc) Log() string {
	raw, _ := os.ReadFile(p.LogPath)
	return string(raw)
}

// waitFor polls cond every interval until it returns true, an error, or timeout; it gives up early
// when p has exited.
func waitFor(timeout, interval time.Duration, p *Proc, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited before it was ready: %v", p.Name, p.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", timeout)
		}
		time.Sleep(interval)
	}
}
